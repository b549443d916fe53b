#!/usr/bin/env bats
# <m>/wait: conditions block in read(2) until they hold, time out with
# ETIMEDOUT, and an interrupted waiter returns at once.

load helpers

setup_file() {
	mount_attestfs "{\"machines\": {$(tiny_machine a)}}"
}

teardown_file() {
	umount_attestfs
}

@test "a status wait does not start the machine and times out with ETIMEDOUT" {
	run tx "$VMS/a/wait" 'timeout=1 status running'
	assert_failure
	assert_output --partial 'Connection timed out'
	run cat "$VMS/a/status"
	assert_output stopped
	run grep 'timed out' "$VMS/a/log"
	assert_success
}

@test "a console wait wakes when the guest prints" {
	(tx "$VMS/a/wait" 'console backdoor on [0-9]+ ports' >"$BATS_FILE_TMPDIR/console.out") &
	waiter=$!
	echo start >"$VMS/a/ctl"
	wait "$waiter"
	run cat "$BATS_FILE_TMPDIR/console.out"
	assert_output --partial 'console '
	assert_output --partial 'backdoor on'
}

@test "succeeds polls until the command succeeds" {
	tx "$VMS/a/exec" 'rm -f /tmp/flag; (sleep 1; touch /tmp/flag) >/dev/null 2>&1 &'
	run tx "$VMS/a/wait" 'succeeds test -e /tmp/flag && echo yes'
	assert_success
	assert_output yes
}

@test "file and fails" {
	tx "$VMS/a/exec" '(sleep 1; touch /tmp/f2; rm -f /tmp/f3) >/dev/null 2>&1 & touch /tmp/f3'
	run tx "$VMS/a/wait" 'file /tmp/f2'
	assert_success
	run tx "$VMS/a/wait" 'fails test -e /tmp/f3'
	assert_success
}

@test "socket holds for a unix socket, not for a plain file" {
	tx "$VMS/a/exec" 'rm -f /dev/log; touch /tmp/plain; (sleep 1; syslogd -O /tmp/messages) >/dev/null 2>&1 &'
	run tx "$VMS/a/wait" 'socket /dev/log'
	assert_success
	assert_output 'socket /dev/log'
	run tx "$VMS/a/wait" 'timeout=2 socket /tmp/plain'
	assert_failure
	assert_output --partial 'timed out'
	tx "$VMS/a/exec" 'killall syslogd'
}

@test "a guest wait past its deadline fails with ETIMEDOUT" {
	SECONDS=0
	run tx "$VMS/a/wait" 'timeout=2 file /nonexistent'
	assert_failure
	assert_output --partial 'Connection timed out'
	[ "$SECONDS" -le 5 ]
}

@test "timeout(1) interrupts a wait promptly" {
	SECONDS=0
	run timeout 2 bash -c '(exec 3<>"$0/a/wait"; printf "file /never" >&3; cat <&3)' "$VMS"
	assert_equal "$status" 124
	[ "$SECONDS" -le 4 ]
	run cat "$VMS/a/status"
	assert_output running
}

@test "a malformed condition fails the write with EINVAL" {
	run bash -c '(exec 3<>"$0/a/wait"; printf "eventually maybe" >&3)' "$VMS"
	assert_failure
	assert_output --partial 'Invalid argument'
	run grep "unknown condition 'eventually'" "$VMS/a/log"
	assert_success
}
