#!/usr/bin/env bats
# jobs/ (exact exit codes, stderr, stdin, kill), files/ (ls, cat, cp both
# ways), qmp, console, events, info and config.json on one tiny guest.

load helpers

setup_file() { mount_tiny_a; }
teardown_file() { umount_attestfs; }

@test "a job gives its exact exit status, stdout and stderr separately" {
	mkdir "$VMS/a/jobs/j1"
	run ls "$VMS/a/jobs/j1"
	assert_output --partial exit
	echo 'echo out-line; echo err-line >&2; exit 7' >"$VMS/a/jobs/j1/cmd"
	run cat "$VMS/a/jobs/j1/exit"
	assert_output 7
	run cat "$VMS/a/jobs/j1/stdout"
	assert_output out-line
	run cat "$VMS/a/jobs/j1/stderr"
	assert_output err-line
	rmdir "$VMS/a/jobs/j1"
	run ls "$VMS/a/jobs"
	assert_output ''
}

@test "a job reads its stdin until the stdin file is closed" {
	mkdir "$VMS/a/jobs/rev"
	echo 'tr a-z A-Z' >"$VMS/a/jobs/rev/cmd"
	printf 'hello\nworld\n' >"$VMS/a/jobs/rev/stdin"
	run cat "$VMS/a/jobs/rev/exit"
	assert_output 0
	run cat "$VMS/a/jobs/rev/stdout"
	assert_output $'HELLO\nWORLD'
	rmdir "$VMS/a/jobs/rev"
}

@test "a job's ctl sets env and dir first, and kill gives 128+signal" {
	mkdir "$VMS/a/jobs/k"
	echo 'env GREETING=hi there' >"$VMS/a/jobs/k/ctl"
	echo 'dir /proc' >"$VMS/a/jobs/k/ctl"
	echo 'echo "$GREETING in $(pwd)"; exec sleep 100' >"$VMS/a/jobs/k/cmd"
	run bash -c 'echo "env X=1" > "$0/a/jobs/k/ctl"' "$VMS"
	assert_failure
	echo 'kill TERM' >"$VMS/a/jobs/k/ctl"
	run cat "$VMS/a/jobs/k/exit"
	assert_output 143
	run cat "$VMS/a/jobs/k/stdout"
	assert_output 'hi there in /proc'
	rmdir "$VMS/a/jobs/k"
}

@test "a job's stdout streams while it runs" {
	mkdir "$VMS/a/jobs/s"
	echo 'for i in 1 2 3; do echo tick-$i; sleep 0.3; done' >"$VMS/a/jobs/s/cmd"
	run cat "$VMS/a/jobs/s/stdout"
	assert_output $'tick-1\ntick-2\ntick-3'
	run cat "$VMS/a/jobs/s/exit"
	assert_output 0
	rmdir "$VMS/a/jobs/s"
}

# How many command shells the guest has (all but shell 0); info says
# "shells READY/TOTAL".
command_shells() {
	echo $(($(sed -n 's|^shells [0-9]*/||p' "$VMS/a/info") - 1))
}

@test "rmdir of a job while its cmd is still starting: the mount lives on" {
	# Hold every command shell, so that the start is queued at the rmdir.
	n=$(command_shells)
	[ "$n" -ge 1 ]
	pids=()
	for i in $(seq "$n"); do
		tx "$VMS/a/exec" 'touch /tmp/blk.$$; while [ ! -L /tmp/gate ]; do sleep 0.05; done' &
		pids+=($!)
	done
	wait_until 120 sh -c '[ "$(ls "$0" | grep -c "^blk\.")" -eq "$1" ]' \
		"$VMS/a/files/tmp" "$n"
	mkdir "$VMS/a/jobs/race"
	(echo 'exec sleep 77.5' >"$VMS/a/jobs/race/cmd") 2>"$BATS_TEST_TMPDIR/err" &
	starting=$!
	wait_until 60 grep -q 'job race: exec sleep 77.5' "$VMS/a/log"
	rmdir "$VMS/a/jobs/race"
	ln -s x "$VMS/a/files/tmp/gate"
	rc=0
	wait "$starting" || rc=$?
	[ "$rc" -ne 0 ]
	run cat "$BATS_TEST_TMPDIR/err"
	assert_output --partial 'No such file'
	for p in "${pids[@]}"; do wait "$p"; done
	run grep 'job race: removed while it started' "$VMS/a/log"
	assert_success
	# What it started is killed and cleaned up in the guest.
	tx "$VMS/a/wait" "timeout=60 succeeds ! pgrep -f 'sleep 77[.]5' && ! test -e /tmp/.attestfs.j/race"
	assert_equal "$(tx "$VMS/a/exec" 'echo alive')" alive
	tx "$VMS/a/exec" 'rm -f /tmp/gate /tmp/blk.*'
}

@test "rmdir racing a starting cmd, many times: the mount serves the next" {
	for i in $(seq 30); do
		mkdir "$VMS/a/jobs/r$i"
		(echo 'exec sleep 78.5' >"$VMS/a/jobs/r$i/cmd") 2>/dev/null &
		rmdir "$VMS/a/jobs/r$i"
		wait $! || true
	done
	run ls "$VMS/a/jobs"
	assert_output ''
	assert_equal "$(cat "$VMS/a/status")" running
	mkdir "$VMS/a/jobs/after"
	echo 'echo still-here' >"$VMS/a/jobs/after/cmd"
	assert_equal "$(cat "$VMS/a/jobs/after/exit")" 0
	assert_equal "$(cat "$VMS/a/jobs/after/stdout")" still-here
	rmdir "$VMS/a/jobs/after"
	tx "$VMS/a/wait" "timeout=60 succeeds ! pgrep -f 'sleep 78[.]5' && ! ls -d /tmp/.attestfs.j/r* 2>/dev/null"
}

@test "a command over 1 MiB, or with a NUL byte, runs nothing" {
	run bash -c '( exec 3<>"$0/a/exec"; { printf "touch /tmp/big-ran #"; head -c 1048600 /dev/zero | tr "\0" x; } >&3; cat <&3 )' "$VMS"
	assert_failure
	assert_output --partial 'File too large'
	run bash -c '( exec 3<>"$0/a/exec"; printf "touch /tmp/nul-ran\0; true" >&3; cat <&3 )' "$VMS"
	assert_failure
	assert_output --partial 'Invalid argument'
	mkdir "$VMS/a/jobs/nul"
	run bash -c 'printf "touch /tmp/nul-job\0" >"$0/a/jobs/nul/cmd"' "$VMS"
	assert_failure
	assert_output --partial 'Invalid argument'
	rmdir "$VMS/a/jobs/nul"
	assert_equal "$(tx "$VMS/a/exec" 'ls /tmp/big-ran /tmp/nul-ran /tmp/nul-job 2>/dev/null | wc -l')" 0
	run cat "$VMS/a/log"
	assert_output --partial 'more than 1 MiB written; it will not run'
	assert_output --partial 'a NUL byte at byte 18 of the text'
	assert_output --partial 'job nul: a NUL byte in its cmd'
}

@test "ENOENT and EACCES leave a reason in log; a lookup only once" {
	run cat "$VMS/a/files/tmp/absent-9c"
	assert_failure
	for i in $(seq 20); do ! test -e "$VMS/a/files/tmp/absent-9c"; done
	run cat "$VMS/a/jobs/nojob/exit"
	assert_failure
	run cat "$VMS/a/ctl"
	assert_failure
	assert_output --partial 'Permission denied'
	run rm "$VMS/a/snapshots/nosnap"
	assert_failure
	# Names made at once were looked up first: that is no failure.
	mkdir "$VMS/a/jobs/made"
	rmdir "$VMS/a/jobs/made"
	echo x >"$VMS/a/files/tmp/made-9c"
	rm "$VMS/a/files/tmp/made-9c"
	ls "$VMS/a" "$VMS/a/jobs" "$VMS/a/files/tmp" >/dev/null
	run cat "$VMS/a/log"
	assert_line --regexp '^[0-9]+ files/tmp/absent-9c: no such file in the guest$'
	assert_equal "$(grep -c absent-9c "$VMS/a/log")" 1
	assert_line --regexp '^[0-9]+ jobs/nojob: no such job'
	assert_line --regexp '^[0-9]+ open for reading ctl: the file is write-only$'
	assert_line --regexp '^[0-9]+ snapshots/nosnap: no such snapshot$'
	refute_output --partial 'jobs/made'
	refute_output --partial 'made-9c'
}

@test "files/: ls, cat, and cp in both directions, byte for byte" {
	run ls "$VMS/a/files/"
	assert_output --partial proc
	assert_output --partial tmp
	run cat "$VMS/a/files/proc/sys/kernel/hostname"
	assert_output tiny
	head -c 300000 /dev/urandom >"$BATS_TEST_TMPDIR/blob"
	cp "$BATS_TEST_TMPDIR/blob" "$VMS/a/files/tmp/blob"
	guest=$(tx "$VMS/a/exec" 'sha256sum /tmp/blob' | cut -d' ' -f1)
	host=$(sha256sum <"$BATS_TEST_TMPDIR/blob" | cut -d' ' -f1)
	assert_equal "$guest" "$host"
	cp "$VMS/a/files/tmp/blob" "$BATS_TEST_TMPDIR/back"
	cmp "$BATS_TEST_TMPDIR/blob" "$BATS_TEST_TMPDIR/back"
	run stat -c %s "$VMS/a/files/tmp/blob"
	assert_output 300000
	run ls "$VMS/a/files/tmp/"
	assert_output --partial blob
	rm "$VMS/a/files/tmp/blob"
	run ls "$VMS/a/files/tmp/blob"
	assert_failure
	run cat "$VMS/a/files/nonexistent"
	assert_failure
	assert_output --partial 'No such file'
}

@test "files/: symlinks read and followed inside the guest, ln -s makes them" {
	tx "$VMS/a/exec" 'mkdir -p /tmp/ln && echo target > /tmp/ln/t && ln -s /tmp/ln/t /tmp/ln/abs && ln -s t /tmp/ln/rel'
	# an absolute target is the guest's: it reads back relative to the link
	assert_equal "$(readlink "$VMS/a/files/tmp/ln/abs")" t
	assert_equal "$(readlink "$VMS/a/files/tmp/ln/rel")" t
	assert_equal "$(cat "$VMS/a/files/tmp/ln/abs")" target
	assert_equal "$(cat "$VMS/a/files/tmp/ln/rel")" target
	ln -s /tmp/ln/t "$VMS/a/files/tmp/ln/made"
	assert_equal "$(tx "$VMS/a/exec" 'readlink /tmp/ln/made; cat /tmp/ln/made')" $'/tmp/ln/t\ntarget'
	run ln -s x "$VMS/a/files/tmp/ln/rel"
	assert_failure
	assert_output --partial 'File exists'
}

@test "files/: chmod and mv happen in the guest" {
	printf '#!/bin/sh\necho ran\n' >"$VMS/a/files/tmp/script"
	chmod 750 "$VMS/a/files/tmp/script"
	assert_equal "$(stat -c %a "$VMS/a/files/tmp/script")" 750
	assert_equal "$(tx "$VMS/a/exec" 'stat -c %a /tmp/script; /tmp/script')" $'750\nran'
	mv "$VMS/a/files/tmp/script" "$VMS/a/files/tmp/moved"
	assert_equal "$(tx "$VMS/a/exec" 'stat -c %a /tmp/moved; test -e /tmp/script || echo gone')" $'750\ngone'
	assert_equal "$(stat -c %a "$VMS/a/files/tmp/moved")" 750
	# rename(2) rules: a file does not replace a directory, nor go into it
	mkdir "$VMS/a/files/tmp/adir"
	# (rename(2) itself: mv checks this before it asks; perl-base is essential)
	run perl -e 'rename($ARGV[0], $ARGV[1]) or die "$!\n"' \
		"$VMS/a/files/tmp/moved" "$VMS/a/files/tmp/adir"
	assert_failure
	assert_output --partial 'Is a directory'
	assert_equal "$(tx "$VMS/a/exec" 'ls /tmp/adir | wc -l')" 0
	run chown 1234 "$VMS/a/files/tmp/moved"
	assert_failure
	assert_output --partial 'not supported'
}

@test "qmp is a transaction with QEMU's own reply" {
	run tx "$VMS/a/qmp" '{"execute": "query-status"}'
	assert_success
	assert_output --partial '"status":"running"'
	run tx "$VMS/a/qmp" '{"execute": "qom-get", "arguments": {"path": "/no-such-object", "property": "type"}}'
	assert_output --partial DeviceNotFound
}

@test "the console keeps the boot; events, info and config.json" {
	run grep 'backdoor on 4 ports' "$VMS/a/console"
	assert_success
	run grep -E '^[0-9]{13} a running' "$VMS/events"
	assert_success
	run cat "$VMS/a/info"
	assert_line 'backend qemu'
	assert_line 'status running'
	assert_line --regexp '^pid [0-9]+$'
	assert_line --regexp '^accel (tcg|kvm)$'
	run grep '"memory_mib": 256' "$VMS/a/config.json"
	assert_success
	run cat "$VMS/attest.sh"
	assert_output --partial "$VMS"
	run bash -c '. "$0/attest.sh"; succeed a echo via-library' "$VMS"
	assert_output via-library
}
