#!/usr/bin/env bats
# The errno table (DESIGN.md §2): each failure is one exact errno a shell
# shows well, and the words behind it go to <m>/log.

load helpers

# refused FILE TEXT ERRNO LOGGED: a control write fails with ERRNO and
# LOGGED is in m's log.
refused() {
	fsop write "$1" "$2"
	assert_failure
	assert_steps "write $3"
	assert_logged "$4"
}

@test "EINVAL and the reason in log: malformed ctl writes" {
	refused "$M/ctl" bogus EINVAL "ctl: unknown command 'bogus'"
	refused "$M/ctl" 'timeout x' EINVAL "ctl: timeout: 'x' is not a positive number"
	refused "$M/ctl" 'timeout 0' EINVAL "ctl: timeout: '0' is not a positive number"
	refused "$M/ctl" 'start now' EINVAL 'ctl:'
	refused "$M/ctl" 'snapshot' EINVAL 'ctl:'
	# and bash says it in words
	run bash -c 'echo bogus >"$1"' sh "$M/ctl"
	assert_failure
	assert_output --partial 'write error: Invalid argument'
	run cat "$M/status"
	assert_output running
}

@test "EINVAL: a condition that does not parse fails its write and every later read" {
	fsop tx "$M/wait" 'bogus'
	assert_failure
	assert_steps 'write EINVAL' 'read EINVAL' 'again EINVAL'
	assert_logged "wait: unknown condition 'bogus'"
}

@test "EINVAL: a NUL byte in a command runs nothing" {
	printf 'touch %s/ran\0' "$W" | "$FSOP" tx "$M/exec" - 2>"$W/steps" || true
	stderr=$(cat "$W/steps")
	assert_steps 'write EINVAL' 'read EINVAL' 'again EINVAL'
	assert_logged 'a NUL byte at byte'
	[ ! -e "$W/ran" ]
}

@test "EFBIG: a command over 1 MiB runs nothing; one of exactly 1 MiB runs" {
	local pad
	# "touch FILE #xxxx...": 1 MiB + 1 bytes in all
	pad=$((1048576 + 1 - ${#W} - 12))
	{ printf 'touch %s/ran #' "$W"; head -c "$pad" /dev/zero | tr '\0' x; } >"$W/big"
	assert_equal "$(wc -c <"$W/big")" 1048577
	run --separate-stderr "$FSOP" tx "$M/exec" - <"$W/big"
	assert_failure
	assert_steps 'write EFBIG' 'read EFBIG' 'again EFBIG'
	assert_logged 'more than 1 MiB written'
	[ ! -e "$W/ran" ]
	# one byte less is 1 MiB: it runs
	head -c 1048576 "$W/big" | "$FSOP" tx "$M/exec" - 2>"$W/steps"
	stderr=$(cat "$W/steps")
	assert_steps 'write ok' 'read EOF' 'again EOF'
	[ -e "$W/ran" ]
}

@test "ENOENT: a machine that does not exist" {
	fsop write "$VMS/nosuch/ctl" start
	assert_steps 'open ENOENT'
	fsop tx "$VMS/nosuch/exec" 'echo x'
	assert_steps 'open ENOENT'
	fsop read "$VMS/nosuch/status"
	assert_steps 'open ENOENT'
	run ls "$VMS/nosuch"
	assert_failure
	assert_output --partial 'No such file or directory'
}

@test "EHOSTDOWN: actions that need a running machine, on a halted one" {
	echo halt >"$M/ctl"
	refused "$M/ctl" pause EHOSTDOWN 'pause: the machine is stopped'
	refused "$M/ctl" crash EHOSTDOWN 'crash: the machine is not running'
	fsop write "$M/ctl" resume
	assert_steps 'write EHOSTDOWN'
	run cat "$M/status"
	assert_output stopped
}

@test "EIO: the VMM killed under a parked command; the machine is crashed" {
	fsop_bg x tx "$M/exec" "$(sleeper s)"
	pid=$(guest_pid s)
	parked x
	vmm=$(sed -n 's/^pid //p' "$M/info")
	# the mock's "VMM" is a child of our daemon: make sure before killing
	is_ours "$vmm"
	kill -KILL "$vmm"
	fsop_done x 'write ok' 'read EIO' 'again EOF'
	# The shell's end (the exec's EIO) may come before the daemon sees
	# the VMM's exit (a loaded host: 74 ms once): wait for the state.
	fsop tx "$M/wait" 'status crashed'
	assert_output 'status crashed'
	run cat "$M/status"
	assert_output crashed
	assert_logged 'the VMM was killed by signal 9'
	assert_gone "$pid"
	# a guest wait on the crashed machine: EIO at once
	fsop tx "$M/wait" "file $W/never"
	assert_steps 'write ok' 'read EIO' 'again EOF'
}

@test "EIO: ctl crash under a parked wait" {
	fsop_bg w tx "$M/wait" "file $W/never"
	parked w
	fsop write "$M/ctl" crash
	assert_steps 'write ok'
	fsop_done w 'write ok' 'read EIO' 'again EOF'
	run cat "$M/status"
	assert_output crashed
}

@test "EOPNOTSUPP: what the mock backend cannot do, with the reason in log" {
	refused "$M/ctl" 'snapshot s1' EOPNOTSUPP 'snapshot: the mock backend has no snapshots'
	refused "$M/ctl" 'restore s1' EOPNOTSUPP 'restore: the mock backend has no snapshots'
	refused "$M/ctl" 'clone c1' EOPNOTSUPP 'clone: the mock backend has no snapshots'
	refused "$M/ctl" 'forward tcp:1:22' EOPNOTSUPP 'forward: the mock backend cannot forward ports'
	refused "$M/ctl" block EOPNOTSUPP 'block: the mock backend has no link control'
	refused "$M/ctl" unblock EOPNOTSUPP 'unblock: the mock backend has no link control'
	run ls "$VMS"
	refute_line c1
	fsop tx "$M/wait" 'timeout=1 screen login'
	assert_steps 'write ok' 'read EOPNOTSUPP' 'again EOF'
	assert_logged 'screen: the mock backend has no screen'
}

@test "a backend without screen, keyboard, QMP or snapshots has no such files (ENOENT, not listed)" {
	local f
	for f in screen.png screen.txt keys type qmp snapshots; do
		fsop read "$M/$f"
		assert_steps 'open ENOENT'
		run ls "$M"
		refute_line "$f"
	done
}

@test "reboot on the mock restarts its shells and runs nothing of the host's" {
	fsop tx "$M/exec" 'echo $$'
	local before=$output
	fsop write "$M/ctl" reboot
	assert_steps 'write ok'
	fsop tx "$M/exec" 'echo $$'
	assert_steps 'write ok' 'read EOF' 'again EOF'
	[ -n "$output" ] && [ "$output" != "$before" ] ||
		fail "the shell after the reboot is the one before: $output"
	[ ! -e "$HOST_POWER" ] || fail "$(cat "$HOST_POWER")"
}

@test "shutdown of a guest that does not power off: ETIMEDOUT after the machine's timeout, then halted" {
	local standin
	standin=$(find "$STATE" -path '*/mock-bin/poweroff' | head -n1)
	[ -n "$standin" ] || fail "no mock stand-in for poweroff under $STATE"
	printf '#!/bin/sh\nexit 0\n' >"$standin"
	echo 'timeout 1' >"$M/ctl"
	fsop write "$M/ctl" shutdown
	assert_failure
	assert_steps 'write ETIMEDOUT'
	assert_logged 'shutdown: the guest did not power off within 1 s; halting it'
	wait_until "$TEST_TIMEOUT" grep -qx stopped "$M/status"
	[ ! -e "$HOST_POWER" ] || fail "$(cat "$HOST_POWER")"
}
