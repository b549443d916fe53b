# The contract tier: the FUSE contract of DESIGN.md §2 and §7 on a mount of
# the mock backend, no guest, in seconds. Each file mounts one machine `m`
# (setup_file) and unmounts it in teardown_file, which also runs when a test
# fails; each test starts from a running `m` with the mount's timeout and
# leaves no process behind (setup, teardown).
#
# The mock has no VMM: the host's own /bin/sh plays the guest's backdoor
# shell, as root, ON THE HOST. So every command and every path a test hands
# to the "guest" stays inside the test's own temporary directory $W, and
# nothing that acts on the whole host is ever asked: never `shutdown` or
# `reboot` (the guest shell would run poweroff / reboot; setup_file puts
# harmless stand-ins first in the mock's PATH all the same), never files/
# outside $W.

bats_require_minimum_version 1.5.0
load ../integration/helpers

FSOP=$TOP/build/fsop # (tests/contract/fsop.c)

setup_file() {
	local bin=$BATS_FILE_TMPDIR/bin c
	# A guard, should anything ask the "guest" to power off (the daemon
	# itself does on shutdown and reboot): in the mock shells' PATH these
	# names only leave a note in $HOST_POWER.
	export HOST_POWER=$BATS_FILE_TMPDIR/host-power
	mkdir -p "$bin"
	for c in poweroff reboot halt shutdown systemctl init telinit; do
		printf '#!/bin/sh\necho "%s $*" >>"%s"\n' "$c" "$HOST_POWER" >"$bin/$c"
		chmod +x "$bin/$c"
	done
	# ATTESTFS_CONTRACT marks the daemon and everything it starts (the
	# mock "VM", its shells, their commands), and nothing else: teardown
	# finds leftovers by it.
	ATTESTFS_CONTRACT=$BATS_FILE_TMPDIR PATH=$bin:$PATH \
		mount_attestfs '{"machines": {"m": {"backend": "mock"}}}' "timeout=$TEST_TIMEOUT"
	export M=$VMS/m
}

teardown_file() {
	umount_attestfs
	assert_no_leftovers
	[ ! -e "$HOST_POWER" ] || fail "the mock's shell was asked: $(cat "$HOST_POWER")"
}

# setup: m running, with the mount's timeout; the log read from here on.
setup() {
	W=$BATS_TEST_TMPDIR
	case $(cat "$M/status") in
	paused) echo resume >"$M/ctl" ;;
	crashed) echo halt >"$M/ctl" ;;
	esac
	echo start >"$M/ctl"
	echo "timeout $TEST_TIMEOUT" >"$M/ctl"
	LOG_MARK=$(wc -l <"$M/log")
}

# teardown: the test's background calls and guest commands are gone (a
# failed test's are killed).
teardown() {
	local p
	dump_if_failed
	for p in $(cat "$W"/*.pid "$W"/*.gpid 2>/dev/null); do
		if [ -n "${BATS_TEST_COMPLETED:-}" ]; then
			wait_until "$TEST_TIMEOUT" ended "$p" && continue
			kill_ours "$p"
			fail "process $p of this test is still there"
		fi
		kill_ours "$p"
	done
}

# kill_ours PID: SIGKILL to PID if it is still an fsop of the test or a
# process of the mount (never a stranger that reused the pid).
kill_ours() {
	if is_ours "$1" 2>/dev/null ||
		[ "$(readlink "/proc/$1/exe" 2>/dev/null)" = "$FSOP" ]; then
		kill -9 "$1" 2>/dev/null || true
	fi
}

# ours: the pids of the processes the mount started that are still there.
ours() {
	grep -lzx "ATTESTFS_CONTRACT=$BATS_FILE_TMPDIR" /proc/[0-9]*/environ 2>/dev/null |
		cut -d/ -f3
}

# is_ours PID: PID was started by the mount (so the test may kill it).
is_ours() {
	grep -qzx "ATTESTFS_CONTRACT=$BATS_FILE_TMPDIR" "/proc/$1/environ"
}

none_of_ours() {
	[ -z "$(ours)" ]
}

# assert_no_leftovers: once the mount is gone, so is every process it
# started; any left is killed (by its pid) and fails the test.
assert_no_leftovers() {
	local left
	wait_until "$TEST_TIMEOUT" none_of_ours && return 0
	left=$(ours)
	ps -o pid,pgid,stat,args -p "$(echo $left | tr ' ' ,)" || true
	kill -9 $left 2>/dev/null || true
	fail "processes of the mount outlived it: $left"
}

# fsop OP FILE [TEXT]: one fsop call; $output is the bytes read,
# $stderr its steps (see fsop.c), $status its status.
fsop() {
	run --separate-stderr "$FSOP" "$@"
}

# assert_steps LINE...: the steps fsop reported, exactly.
assert_steps() {
	assert_equal "$stderr" "$(printf '%s\n' "$@")"
}

# fsop_bg ID OP FILE [TEXT]: fsop in the background; its bytes, steps and
# status land in $W/ID.{out,err,rc}, its pid in $W/ID.pid.
fsop_bg() {
	local o=$W/$1
	shift
	(
		"$FSOP" "$@" >"$o.out" 2>"$o.err" &
		echo $! >"$o.pid"
		rc=0
		wait $! || rc=$?
		echo "$rc" >"$o.rc"
	) 3>&- &
	wait_until "$TEST_TIMEOUT" test -s "$o.pid"
}

# blocked_in_read ID: the background fsop ID wrote its text and is now
# blocked in the read that follows, waiting for the daemon's answer.
blocked_in_read() {
	local o=$W/$1 pid
	pid=$(cat "$o.pid")
	grep -qx 'write ok' "$o.err" &&
		[ "$(cat "/proc/$pid/wchan" 2>/dev/null)" = request_wait_answer ]
}

# parked ID: wait until the background fsop ID is parked in its read.
parked() {
	wait_until "$TEST_TIMEOUT" blocked_in_read "$1" ||
		fail "fsop $1 never blocked in read: $(cat "$W/$1.err")"
}

# fsop_done ID STEP...: the background fsop ID ended (within the deadline)
# and reported exactly these steps; $output is what it read.
fsop_done() {
	local o=$W/$1
	shift
	wait_until "$TEST_TIMEOUT" test -s "$o.rc" ||
		fail "fsop $1 never returned: $(cat "$o.err")"
	stderr=$(cat "$o.err")
	output=$(cat "$o.out")
	assert_steps "$@"
}

# sleeper NAME: a guest command that records its pid in $W/NAME.gpid and
# then sleeps (long past any deadline here).
sleeper() {
	printf "sh -c 'echo \$\$ >%s/%s.gpid; exec sleep 1001'" "$W" "$1"
}

# guest_pid NAME: the pid a sleeper recorded, once it runs.
guest_pid() {
	wait_until "$TEST_TIMEOUT" test -s "$W/$1.gpid" ||
		fail "the guest command $1 never started"
	cat "$W/$1.gpid"
}

# ended PID: the process is gone or a zombie (a child of ours not yet waited
# for; kill -0 still sees it).
ended() {
	[ ! -e "/proc/$1" ] || [ "$(cut -d' ' -f3 "/proc/$1/stat" 2>/dev/null)" = Z ]
}

# assert_healthy: the daemon still answers at once and still runs commands.
assert_healthy() {
	kill -0 "$(cat "$WORK/daemon.pid")" || fail "the daemon died"
	run cat "$M/status"
	assert_output running
	fsop tx "$M/exec" 'echo alive'
	assert_output alive
	assert_steps 'write ok' 'read EOF' 'again EOF'
}

# log_now: m's log since the test's setup.
log_now() {
	tail -n +$((LOG_MARK + 1)) "$M/log"
}

# assert_logged TEXT: TEXT is in m's log (the reason behind an errno).
assert_logged() {
	log_now | grep -qF -- "$1" || fail "'$1' is not in $M/log: $(log_now | tail -n 5)"
}

# refute_logged TEXT: TEXT is not in m's log since setup.
refute_logged() {
	! log_now | grep -F -- "$1" || fail "'$1' is in $M/log"
}
