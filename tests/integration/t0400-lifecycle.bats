#!/usr/bin/env bats
# halt, shutdown, reboot, crash, kill -9 of the VMM: the status follows, a
# dead machine fails calls with EIO, and the other machine is still served.

load helpers

setup_file() {
	mount_attestfs "{\"machines\": {$(tiny_machine a), $(tiny_machine b)}}"
	echo start-all >"$VMS/ctl"
}

teardown_file() {
	umount_attestfs
}

qemu_pid() { sed -n 's/^pid //p' "$VMS/$1/info"; }

@test "start-all boots every machine" {
	assert_equal "$(cat "$VMS/a/status")" running
	assert_equal "$(cat "$VMS/b/status")" running
	run grep -c ' running' "$VMS/events"
	assert_output 2
}

@test "crash: status crashed, exec fails with EIO, the other machine still answers" {
	echo crash >"$VMS/a/ctl"
	assert_equal "$(cat "$VMS/a/status")" crashed
	run tx "$VMS/a/exec" 'echo hi'
	assert_failure
	assert_output --partial 'Input/output error'
	run tx "$VMS/b/exec" 'echo still here'
	assert_output 'still here'
}

@test "a crashed machine starts again" {
	echo start >"$VMS/a/ctl"
	run tx "$VMS/a/exec" 'echo back'
	assert_output back
}

@test "kill -9 of QEMU: status crashed, the other machine is served" {
	pid=$(qemu_pid a)
	[ -n "$pid" ]
	kill -9 "$pid"
	run tx "$VMS/a/wait" 'timeout=30 status crashed'
	assert_success
	run tx "$VMS/b/exec" 'echo fine'
	assert_output fine
	run grep 'killed by signal 9' "$VMS/a/log"
	assert_success
}

@test "reboot returns when the guest is back" {
	echo start >"$VMS/a/ctl"
	tx "$VMS/a/exec" 'touch /tmp/before-reboot'
	echo reboot >"$VMS/a/ctl"
	assert_equal "$(cat "$VMS/a/status")" running
	run tx "$VMS/a/exec" 'test -e /tmp/before-reboot && echo survived || echo fresh'
	assert_output fresh
}

@test "shutdown powers off from inside the guest" {
	pid=$(qemu_pid a)
	echo shutdown >"$VMS/a/ctl"
	assert_equal "$(cat "$VMS/a/status")" stopped
	run kill -0 "$pid"
	assert_failure
}

@test "halt stops the VMM at once" {
	pid=$(qemu_pid b)
	echo halt >"$VMS/b/ctl"
	assert_equal "$(cat "$VMS/b/status")" stopped
	run kill -0 "$pid"
	assert_failure
}

@test "a command on a stopped machine starts it first" {
	run tx "$VMS/b/exec" 'echo auto'
	assert_output auto
	assert_equal "$(cat "$VMS/b/status")" running
}

# The pid of a process of ours parked in the mount (a FUSE request the
# daemon has not answered yet), among the children of $1.
parked_child() {
	local c
	for c in $(pgrep -P "$1"); do
		grep -q request_wait_answer "/proc/$c/wchan" 2>/dev/null && return 0
		parked_child "$c" && return 0
	done
	return 1
}

@test "halt ends parked waits and commands at once (EHOSTDOWN); they boot nothing" {
	echo start >"$VMS/a/ctl"
	# Under bats' set -e a failing tx ends the subshell: record it with if.
	(if tx "$VMS/a/wait" 'file /nonexistent/never' 2>"$BATS_TEST_TMPDIR/wait.err"
	 then echo 0; else echo $?; fi >"$BATS_TEST_TMPDIR/wait.rc") &
	waiter=$!
	(if tx "$VMS/a/exec" 'sleep 300' 2>"$BATS_TEST_TMPDIR/exec.err"
	 then echo 0; else echo $?; fi >"$BATS_TEST_TMPDIR/exec.rc") &
	runner=$!
	wait_until 30 parked_child "$waiter"
	wait_until 30 parked_child "$runner"
	echo halt >"$VMS/a/ctl"
	wait "$waiter" "$runner"
	assert_equal "$(cat "$BATS_TEST_TMPDIR/wait.rc")" 1
	assert_equal "$(cat "$BATS_TEST_TMPDIR/exec.rc")" 1
	run cat "$BATS_TEST_TMPDIR/wait.err"
	assert_output --partial 'Host is down'
	run cat "$BATS_TEST_TMPDIR/exec.err"
	assert_output --partial 'Host is down'
	assert_equal "$(cat "$VMS/a/status")" stopped
	# Nothing parked is left to boot it again.
	run tx "$VMS/a/wait" 'timeout=3 status starting'
	assert_failure
	assert_output --partial 'timed out'
	assert_equal "$(cat "$VMS/a/status")" stopped
}
