#!/usr/bin/env bats
# A terminal in the guest through jobs/: ctl "tty ROWS COLS" runs a job's
# command on a pty (machine/agent/pty.c), "winsize" resizes it, and
# attestfs-shell drives it from a local terminal (run/attestfs-shell.c). On
# the mock the guest's pty is one of the host's, under the host's /bin/sh.

load helpers
load shell-session

SHELL_BIN=$TOP/attestfs-shell

@test "attestfs-shell: a pty in the guest, its size, resizes, Ctrl-C, job control, the status, the terminal restored" {
	assert_shell_session "$M"
}

@test "attestfs-shell with stdin from a script: the commands run, Ctrl-D at its end, the status comes back" {
	run "$SHELL_BIN" -c 'exec sh' "$M" < <(printf 'tty\necho "sum $((2 + 3))"\nexit 3\n')
	assert_equal "$status" 3
	assert_output --regexp '/dev/pts/[0-9]+'
	assert_output --partial $'sum 5\r'
	# without exit: the end of the script is a Ctrl-D at the prompt, and
	# sh exits with its last command's status
	run "$SHELL_BIN" -d "$W" -c 'exec sh' "$M" < <(printf 'pwd; false\n')
	assert_equal "$status" 1
	assert_output --partial "$W"$'\r'
	# VMS and a name
	VMS=${M%/*} run "$SHELL_BIN" -c 'exit 5' m </dev/null
	assert_equal "$status" 5
	run ls "$M/jobs"
	assert_output ''
}

@test "attestfs-shell: a machine that is not there is 125 with the reason; a bad command line is 2" {
	run "$SHELL_BIN" "$M/../nosuch" </dev/null
	assert_equal "$status" 125
	assert_output --partial 'attestfs-shell:'
	run "$SHELL_BIN"
	assert_equal "$status" 2
}

@test "job ctl tty and winsize: bad values are EINVAL with the reason in log; winsize needs a running tty job" {
	mkdir "$M/jobs/t"
	refused() {
		fsop write "$M/jobs/t/ctl" "$1"
		assert_failure
		assert_steps "write $2"
		assert_logged "$3"
	}
	refused 'tty' EINVAL "job t: tty: '' is not ROWS COLS (1..9999 each)"
	refused 'tty 0 80' EINVAL "job t: tty: '0 80' is not ROWS COLS"
	refused 'tty 24' EINVAL "job t: tty: '24' is not ROWS COLS"
	refused 'tty 24 80 1' EINVAL "job t: tty: '24 80 1' is not ROWS COLS"
	refused 'tty -1 80' EINVAL "job t: tty: '-1 80' is not ROWS COLS"
	refused 'tty 24 10000' EINVAL "job t: tty: '24 10000' is not ROWS COLS"
	refused 'winsize 24 80' EINVAL 'job t: winsize: not a tty job'
	fsop write "$M/jobs/t/ctl" 'tty 24 80'
	assert_success
	refused 'winsize 24 80' ESRCH 'job t: winsize: it is not running'
	# a refused value leaves the good one
	refused 'tty x y' EINVAL "job t: tty: 'x y' is not ROWS COLS"
	echo 'stty size; read x; stty size' >"$M/jobs/t/cmd"
	refused 'tty 30 90' EBUSY "job t: ctl 'tty' only before cmd"
	refused 'winsize 0 1' EINVAL "job t: winsize: '0 1' is not ROWS COLS"
	# the first stty has answered (the stream blocks until it has)
	run head -c 7 "$M/jobs/t/stdout"
	assert_output $'24 80\r'
	fsop write "$M/jobs/t/ctl" 'winsize 50 132'
	assert_success
	# stdin stays open: its end would hang the terminal up (below)
	exec 4>"$M/jobs/t/stdin"
	echo go >&4
	run cat "$M/jobs/t/exit"
	exec 4>&-
	assert_output 0
	run cat "$M/jobs/t/stdout"
	assert_output $'24 80\r\ngo\r\n50 132\r'
	rmdir "$M/jobs/t"
}

@test "a tty job's stdin closed: the terminal hangs up, the command gets SIGHUP (129)" {
	mkdir "$M/jobs/h"
	echo 'tty 24 80' >"$M/jobs/h/ctl"
	echo 'echo up; sleep 1000' >"$M/jobs/h/cmd"
	run head -c 3 "$M/jobs/h/stdout"
	assert_output $'up\r'
	exec 4>"$M/jobs/h/stdin"
	exec 4>&-
	run cat "$M/jobs/h/exit"
	assert_output 129
	rmdir "$M/jobs/h"
}
