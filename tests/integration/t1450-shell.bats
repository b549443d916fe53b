#!/usr/bin/env bats
# attestfs-shell on the tiny guest (busybox only: no script(1), no python):
# the pty comes from attestfs-pty, which the job's start uploads. The same
# terminal session as contract t0080 on the mock, driven through a host pty,
# plus a login shell and a full-screen program (busybox vi).

load helpers
load ../contract/shell-session

SHELL_BIN=$TOP/attestfs-shell

setup_file() { mount_tiny_a; }
teardown_file() { umount_attestfs; }

@test "attestfs-shell on the tiny guest: its pty, size, resizes, Ctrl-C, job control, the status, the terminal restored" {
	assert_shell_session "$VMS/a"
}

@test "attestfs-shell on the tiny guest: a login shell, and vi draws on the terminal and quits" {
	# the login shell (no -c): sh -l on a guest without bash
	run "$SHELL_BIN" "$VMS/a" < <(printf 'echo "shell $0 on $(tty)"\nexit 4\n')
	assert_equal "$status" 4
	assert_output --regexp 'shell -?sh on /dev/pts/[0-9]+'
	# a full-screen program: cursor addressing and the screen cleared, then :q
	run "$SHELL_BIN" -c 'vi /etc/hostname' "$VMS/a" < <(printf ':q!\r')
	assert_success
	assert_output --partial $'\e['
	assert_output --partial 'hostname'
}
