#!/usr/bin/env bats
# Interrupted reads (DESIGN.md §2, §7): a parked read answers a signal at
# once (never D state until the deadline), the daemon stays healthy, and the
# command behind an interrupted exec is killed in the guest. The mock's
# guest is the host, so the command's own pid shows it.

load helpers

@test "a parked wait killed by timeout(1) returns at once; the daemon stays healthy" {
	run timeout 1 "$FSOP" tx "$M/wait" "timeout=$TEST_TIMEOUT file $W/never"
	assert_equal "$status" 124
	# it ended on the signal: had the daemon ignored the interrupt, the
	# caller would have sat in D state until the wait's own deadline
	refute_logged 'timed out'
	assert_healthy
}

@test "a parked exec killed with SIGKILL returns; its guest command is killed" {
	fsop_bg s tx "$M/exec" "$(sleeper s)"
	pid=$(guest_pid s)
	parked s
	kill -KILL "$(cat "$W/s.pid")"
	wait_until "$TEST_TIMEOUT" test -s "$W/s.rc" || fail "the killed reader never returned"
	assert_equal "$(cat "$W/s.rc")" 137
	assert_gone "$pid"
	assert_logged 'interrupted; killing it in the guest'
	assert_healthy
}

@test "a handled signal fails the parked exec's read with EINTR; its guest command is killed" {
	fsop_bg s tx "$M/exec" "$(sleeper s)"
	pid=$(guest_pid s)
	parked s
	kill -USR1 "$(cat "$W/s.pid")"
	fsop_done s 'write ok' 'read EINTR' 'again EOF'
	assert_gone "$pid"
	assert_healthy
}

@test "a handled signal fails a parked wait's read with EINTR" {
	fsop_bg w tx "$M/wait" "file $W/never"
	parked w
	kill -USR1 "$(cat "$W/w.pid")"
	fsop_done w 'write ok' 'read EINTR' 'again EOF'
	assert_healthy
}

@test "Ctrl-C on a bash reading exec: the shell returns, the command is killed" {
	# (a background job ignores SIGINT unless told otherwise)
	env --default-signal=INT bash -c 'exec 3<>"$1"; printf "%s" "$2" >&3; exec cat <&3' \
		sh "$M/exec" "$(sleeper s)" \
		>"$W/cat.out" 2>&1 3>&- &
	reader=$!
	pid=$(guest_pid s)
	wait_until "$TEST_TIMEOUT" test "$(cat /proc/$reader/wchan 2>/dev/null)" = request_wait_answer
	kill -INT "$reader"
	wait_until "$TEST_TIMEOUT" ended "$reader" || fail "the reader never returned"
	rc=0
	wait "$reader" || rc=$?
	assert_equal "$rc" 130
	assert_gone "$pid"
	assert_healthy
}
