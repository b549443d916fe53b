#!/usr/bin/env bats
# jobs/ (exact exit codes, stderr, stdin, kill), files/ (ls, cat, cp both
# ways), qmp, console, events, info and config.json on one tiny guest.

load helpers

setup_file() {
	mount_attestfs "{\"machines\": {$(tiny_machine a)}}"
	echo start >"$VMS/a/ctl"
}

teardown_file() {
	umount_attestfs
}

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
	assert_equal "$(readlink "$VMS/a/files/tmp/ln/abs")" ../../tmp/ln/t
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
