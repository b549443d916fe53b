#!/usr/bin/env bats
# The firecracker backend on the tiny guest: boot, exec, waits, files,
# console, pause, snapshot/restore, clone, halt, crash, its config keys
# refused at mount, and a VMM error body in <m>/log.
#
# Here (t1500) against tests/fakes/fake-firecracker, which checks every
# request against Firecracker's published API and runs the guest under
# QEMU/TCG. t1501-firecracker-real.bats is this file again (a link): it
# runs against a real firecracker when FC_BINARY is set and /dev/kvm
# works, and skips with that reason otherwise.

load helpers
load firecracker

setup_file() {
	fc_setup || return 0
	# e's kernel becomes a bzImage after the mount checked it
	cp "$KERNEL" "$BATS_FILE_TMPDIR/e-kernel"
	# a raw data disk: the guest's /dev/vda
	printf 'fc-disk-1500' >"$BATS_FILE_TMPDIR/base.raw"
	truncate -s 1M "$BATS_FILE_TMPDIR/base.raw"
	mount_attestfs "{\"machines\": {$(fc_machine a "\"disks\": [\"$BATS_FILE_TMPDIR/base.raw\"]"), $(fc_machine e '' "$BATS_FILE_TMPDIR/e-kernel")}}"
	echo start >"$VMS/a/ctl"
}

teardown_file() { fc_teardown_file; }

@test "the tiny guest boots on firecracker; info names the VMM and its capabilities" {
	assert_equal "$(cat "$VMS/a/status")" running
	run cat "$VMS/a/info"
	assert_line 'backend firecracker'
	assert_line 'capabilities pause,snapshot,links,tapnet'
	assert_line --regexp '^vmm firecracker [0-9]+\.[0-9]+'
	assert_line --regexp '^shells [1-9]/[1-9]'
	pid=$(fc_pid a)
	kill -0 "$pid"
	# its requests were all accepted: nothing refused in the log
	run grep -i 'firecracker:' "$VMS/a/log"
	assert_failure
}

@test "exec: stdout, stderr to the log, the exit status" {
	run tx "$VMS/a/exec" 'echo hello; uname -s'
	assert_output $'hello\nLinux'
	run tx "$VMS/a/exec" 'echo to-stderr-1500 >&2; echo out'
	assert_output out
	run grep -c 'to-stderr-1500' "$VMS/a/log"
	assert_output 1
	run bash -c 'out=$( (exec 3<>"$0/a/exec"; printf "echo partial; exit 3" >&3; cat <&3) ); echo "rc=$? out=$out"' "$VMS"
	assert_output --partial 'Remote I/O error'
	assert_output --partial 'rc=1 out=partial'
	run grep 'exit status 3' "$VMS/a/log"
	assert_success
}

@test "the disk is a fresh writable copy of the raw base, which is never written" {
	run tx "$VMS/a/exec" 'head -c 12 /dev/vda'
	assert_output fc-disk-1500
	tx "$VMS/a/exec" 'printf guest-wrote-1 | dd of=/dev/vda conv=notrunc 2>/dev/null; sync'
	run tx "$VMS/a/exec" 'echo 3 >/proc/sys/vm/drop_caches; head -c 13 /dev/vda'
	assert_output guest-wrote-1
	run head -c 12 "$BATS_FILE_TMPDIR/base.raw"
	assert_output fc-disk-1500
}

@test "a wait blocks until the guest makes it true" {
	tx "$VMS/a/exec" 'rm -f /tmp/flag'
	(sleep 1; tx "$VMS/a/exec" 'touch /tmp/flag') &
	run tx "$VMS/a/wait" "timeout=$TEST_TIMEOUT file /tmp/flag"
	assert_success
	wait
}

@test "files/: a file written from the host is read back in the guest and the host" {
	printf 'fc-file-1500\n' >"$VMS/a/files/tmp/from-host"
	run tx "$VMS/a/exec" 'cat /tmp/from-host'
	assert_output fc-file-1500
	tx "$VMS/a/exec" 'echo from-guest > /tmp/from-guest'
	run cat "$VMS/a/files/tmp/from-guest"
	assert_output from-guest
}

@test "the serial console is the guest's ttyS0" {
	# /init's line, on the serial port (the kernel is quiet)
	run grep -a 'attestfs tiny guest: backdoor on' "$VMS/a/console"
	assert_success
	tx "$VMS/a/exec" 'echo console-marker-1500 > /dev/ttyS0'
	run tx "$VMS/a/wait" "timeout=$TEST_TIMEOUT console console-marker-1500"
	assert_success
}

@test "pause and resume (PATCH /vm)" {
	echo pause >"$VMS/a/ctl"
	assert_equal "$(cat "$VMS/a/status")" paused
	echo resume >"$VMS/a/ctl"
	assert_equal "$(cat "$VMS/a/status")" running
	run tx "$VMS/a/exec" 'echo after-resume'
	assert_output after-resume
}

@test "snapshot and restore: Firecracker's own files, a new process" {
	tx "$VMS/a/exec" 'echo before > /tmp/before'
	pid=$(fc_pid a)
	echo 'snapshot s1' >"$VMS/a/ctl"
	[ -s "$STATE/a/snapshots/s1/state" ]
	# the shells came back after the vsock reset of the snapshot
	tx "$VMS/a/exec" 'echo after > /tmp/after; printf after-snap-2 | dd of=/dev/vda conv=notrunc 2>/dev/null; sync'
	echo 'restore s1' >"$VMS/a/ctl"
	assert_equal "$(cat "$VMS/a/status")" running
	run tx "$VMS/a/exec" 'cat /tmp/before; test -e /tmp/after && echo after-survived || echo after-gone'
	assert_output $'before\nafter-gone'
	# the disk as it was at the snapshot
	run tx "$VMS/a/exec" 'echo 3 >/proc/sys/vm/drop_caches; head -c 13 /dev/vda'
	assert_output guest-wrote-1
	[ "$(fc_pid a)" != "$pid" ]
	run kill -0 "$pid"
	assert_failure
}

@test "a clone continues the snapshot with its own name" {
	echo 'clone c1 s1' >"$VMS/a/ctl"
	assert_equal "$(cat "$VMS/c1/status")" running
	run tx "$VMS/c1/exec" 'cat /tmp/before; hostname'
	assert_output $'before\nc1'
	run tx "$VMS/a/exec" 'hostname'
	refute_output c1
	echo halt >"$VMS/c1/ctl"
}

@test "a VMM error body goes to <m>/log and the start fails with EIO" {
	cp "$GUESTS/tiny/vmlinuz" "$BATS_FILE_TMPDIR/e-kernel"
	run bash -c 'echo start > "$0/e/ctl"' "$VMS"
	assert_failure
	assert_output --partial 'Input/output error'
	run grep 'firecracker: PUT /actions: ' "$VMS/e/log"
	assert_success
	assert_output --partial 'kernel'
	assert_equal "$(cat "$VMS/e/status")" stopped
}

@test "crash: status crashed, exec fails with EIO; it starts again" {
	echo crash >"$VMS/a/ctl"
	assert_equal "$(cat "$VMS/a/status")" crashed
	run tx "$VMS/a/exec" 'echo hi'
	assert_failure
	assert_output --partial 'Input/output error'
	echo start >"$VMS/a/ctl"
	run tx "$VMS/a/exec" 'echo back'
	assert_output back
	# a new boot, a new copy of the base
	run tx "$VMS/a/exec" 'head -c 12 /dev/vda'
	assert_output fc-disk-1500
}

@test "reboot: the guest's reset ends Firecracker, and a new one boots it" {
	tx "$VMS/a/exec" 'touch /tmp/before-reboot'
	pid=$(fc_pid a)
	echo reboot >"$VMS/a/ctl"
	assert_equal "$(cat "$VMS/a/status")" running
	run tx "$VMS/a/exec" 'test -e /tmp/before-reboot && echo survived || echo fresh'
	assert_output fresh
	[ "$(fc_pid a)" != "$pid" ]
	run grep "the VMM ended with the guest's reset" "$VMS/a/log"
	assert_success
}

@test "shutdown: the guest powers off and Firecracker exits" {
	pid=$(fc_pid a)
	echo shutdown >"$VMS/a/ctl"
	assert_equal "$(cat "$VMS/a/status")" stopped
	run kill -0 "$pid"
	assert_failure
	echo start >"$VMS/a/ctl"
}

@test "halt: SendCtrlAltDel, and the process is gone" {
	pid=$(fc_pid a)
	echo halt >"$VMS/a/ctl"
	assert_equal "$(cat "$VMS/a/status")" stopped
	run kill -0 "$pid"
	assert_failure
	# the guest reset (not a kill after the wait)
	run grep 'did not reset' "$VMS/a/log"
	assert_failure
}

@test "bad firecracker keys are refused before mounting, with the key path" {
	dir=$BATS_TEST_TMPDIR
	mkdir -p "$dir/mnt"
	bad() {
		printf '{"machines": {%s}}\n' "$1" >"$dir/bad.json"
		run timeout 60 "$ATTESTFS" -f -o "config=$dir/bad.json,state_dir=$dir/state" "$dir/mnt"
		assert_failure
	}
	bad "$(printf '"x": {"backend": "firecracker", "firecracker": {"bogus": 1}, "kernel": "%s"}' "$KERNEL")"
	assert_output --partial 'machines.x.firecracker.bogus: unknown key'
	bad "$(printf '"x": {"backend": "firecracker", "firecracker": {"log_level": "loud"}, "kernel": "%s"}' "$KERNEL")"
	assert_output --partial 'machines.x.firecracker.log_level: expected one of Error'
	bad "$(fc_machine x '"shell_channel": "virtconsole"')"
	assert_output --partial 'machines.x.shell_channel: virtconsole is the qemu backend'"'"'s'
	bad "$(fc_machine x '' "$GUESTS/tiny/vmlinuz")"
	assert_output --partial 'machines.x.kernel: '
	assert_output --partial 'is a bzImage'
}
