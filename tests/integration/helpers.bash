# Shared set-up for the integration tests: a real attestfs mount over real
# tiny guests. Each .bats file mounts once (setup_file) and unmounts in
# teardown_file, which also runs when a test fails.

# bats-support and bats-assert, sourced file by file: their load.bash runs a
# $(dirname) per file, and bats loads them again for every test (that was
# 0.4 s a test here).
for f in /usr/lib/bats/bats-support/src/*.bash /usr/lib/bats/bats-assert/src/*.bash; do
	source "$f"
done
unset f

TOP=$(cd "$BATS_TEST_DIRNAME/../.." && pwd)
ATTESTFS=$TOP/attestfs
CACHE=${ATTESTFS_CACHE:-$HOME/.cache/attestfs}
GUESTS=$CACHE/guests

# tiny_machine NAME [extra JSON members]: a config entry for the tiny guest.
tiny_machine() {
	printf '"%s": {"kernel": "%s", "initrd": "%s", "append": "%s"%s}' \
		"$1" "$GUESTS/tiny/vmlinuz" "$GUESTS/tiny/initrd.gz" \
		"$(cat "$GUESTS/tiny/cmdline")" "${2:+, $2}"
}

# The deadline of anything a test waits for that should simply happen (a
# mount appears, a daemon exits, a guest comes back): never the behaviour
# under test. Derived from the suite's timeout, so a slow or loaded host
# scales every deadline at once: ATTESTFS_TEST_TIMEOUT=600 bats ...
# Waits end as soon as their condition holds: a long deadline costs nothing.
TEST_TIMEOUT=${ATTESTFS_TEST_TIMEOUT:-120}

# wait_until SECONDS CMD...: poll a condition (for set-up only, never for
# the behaviour under test, which blocks in the tree itself).
wait_until() {
	local deadline=$((SECONDS + $1))
	shift
	until "$@"; do
		[ "$SECONDS" -lt "$deadline" ] || return 1
		sleep 0.05
	done
}

# mount_attestfs CONFIG_JSON [extra -o options]: mount at $VMS, the daemon
# running in $WORK (MOUNT_WORK, default the file's temporary directory).
mount_attestfs() {
	export WORK=${MOUNT_WORK:-$BATS_FILE_TMPDIR}
	export VMS=$WORK/vms
	export STATE=$WORK/state
	# (mkdir -p fails on a mount point left dead by a killed daemon)
	mkdir "$VMS" 2>/dev/null || true
	printf '%s\n' "$1" >"$WORK/machines.json"
	(cd "$WORK" && exec "$ATTESTFS" -f \
		-o "config=$WORK/machines.json,state_dir=$STATE,accel=tcg${2:+,$2}" \
		"$VMS") >"$WORK/daemon.log" 2>&1 &
	echo $! >"$WORK/daemon.pid"
	if ! wait_until "$TEST_TIMEOUT" test -e "$VMS/ctl"; then
		cat "$WORK/daemon.log" >&3
		return 1
	fi
}

# mount_tiny_a [machine options]: the set-up most files share, one tiny
# guest, a, mounted at $VMS and running. Such a file's set-up is then
#   setup_file() { mount_tiny_a; }
#   teardown_file() { umount_attestfs; }
# and mount_tiny_a '"memory_mib": 128' gives a a smaller guest.
mount_tiny_a() {
	mount_attestfs "{\"machines\": {$(tiny_machine a "${1:-}")}}"
	echo start >"$VMS/a/ctl"
}

# Kill, by pid, every QEMU this mount started (if the daemon failed to).
kill_leftover_vmms() {
	local f pid
	for f in "$STATE"/*/qemu*.pid; do
		[ -e "$f" ] || continue
		pid=$(cat "$f" 2>/dev/null) || continue
		if [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null; then
			echo "# leftover VMM $pid from $f" >&3
			kill -9 "$pid" 2>/dev/null || true
		fi
	done
}

umount_attestfs() {
	local pid
	[ -n "${WORK:-}" ] || return 0
	# teardown_file after a failed setup_file: no test's teardown dumped
	[ -n "${BATS_SETUP_FILE_COMPLETED-1}" ] || dump_state
	pid=$(cat "$WORK/daemon.pid" 2>/dev/null || true)
	# by the mount table: a dead mount fails mountpoint(1)'s stat
	if awk -v d="$VMS" '$5 == d { f = 1 } END { exit !f }' /proc/self/mountinfo; then
		fusermount3 -u "$VMS" 2>/dev/null || fusermount3 -uz "$VMS" || true
	fi
	if [ -n "$pid" ]; then
		wait_until "$TEST_TIMEOUT" sh -c "! kill -0 $pid 2>/dev/null" ||
			kill -9 "$pid" 2>/dev/null || true
	fi
	kill_leftover_vmms
}

# tx FILE TEXT: one transaction on an exec/wait/qmp file.
tx() {
	(exec 3<>"$1" && printf '%s' "$2" >&3 && cat <&3)
}

# debian_machine NAME [extra JSON members]: the debian systemd guest, booted
# from its read-only base image with a fresh overlay.
debian_machine() {
	printf '"%s": {"kernel": "%s", "initrd": "%s", "disks": ["%s"], "append": "%s", "cpus": 2, "memory_mib": 256%s}' \
		"$1" "$GUESTS/debian/vmlinuz" "$GUESTS/debian/initrd.gz" "$GUESTS/debian/base.img" \
		"$(cat "$GUESTS/debian/cmdline")" "${2:+, $2}"
}

# dump_state: what a failure needs to be understood from the test's output
# alone: the daemon's own output, then each machine's log and the tail of
# its console, read from state_dir (never through a mount that may hang).
dump_state() {
	local d
	[ -n "${WORK:-}" ] || return 0
	echo "# ---- daemon output ($WORK/daemon.log), last 60 lines"
	tail -n 60 "$WORK/daemon.log" 2>/dev/null || true
	for d in "${STATE:-/nonexistent}"/*/; do
		[ -e "$d/log" ] || continue
		echo "# ---- $(basename "$d"): log, last 60 lines"
		tail -n 60 "$d/log"
		echo "# ---- $(basename "$d"): console, last 3000 bytes"
		tail -c 3000 "$d/console.log" 2>/dev/null | tr -d '\033\r'
		echo
	done
}

# Every file gets this teardown; a file with its own calls it first.
dump_if_failed() {
	[ -n "${BATS_TEST_COMPLETED:-}" ] || dump_state
}

teardown() {
	dump_if_failed
}

# ---- faults: what must be true after a process dies or a disk fills ----

# vmm_pid M: the VMM pid the mount shows for M (empty when none runs).
vmm_pid() {
	sed -n 's/^pid //p' "$VMS/$1/info"
}

# vmm_pidfile_pids M: the pids in M's QEMU pidfiles (spares included),
# read from state_dir: they outlive the mount and the daemon.
vmm_pidfile_pids() {
	local f
	for f in "$STATE/$1"/qemu*.pid; do
		[ -s "$f" ] && cat "$f"
	done
	return 0
}

# assert_gone PID...: each process is gone within the suite's deadline (a
# zombie counts as there: its parent did not reap it).
assert_gone() {
	local p
	for p in "$@"; do
		[ -n "$p" ] || continue
		wait_until "$TEST_TIMEOUT" sh -c "! kill -0 $p 2>/dev/null" ||
			fail "process $p is still there: $(tr '\0' ' ' <"/proc/$p/cmdline" 2>/dev/null)"
	done
}

# assert_no_vmm M [PID...]: no QEMU of M is left, by its pidfiles under
# state_dir and by the pids given (taken before the fault).
assert_no_vmm() {
	local m=$1 p
	shift
	for p in "$@" $(vmm_pidfile_pids "$m"); do
		# a pidfile left by a killed QEMU may name a reused pid
		grep -qs qemu "/proc/$p/cmdline" || continue
		assert_gone "$p"
	done
}

# assert_not_mounted DIR: nothing is mounted on DIR, dead or alive.
assert_not_mounted() {
	run awk -v d="$1" '$5 == d' /proc/self/mountinfo
	assert_output ''
}

# console_mark M TEXT: the guest writes TEXT on its serial console; returns
# once the daemon has read it (so it was handed to the file on disk).
console_mark() {
	tx "$VMS/$1/exec" "echo $2 >/dev/ttyS0" >/dev/null &&
		tx "$VMS/$1/wait" "timeout=$TEST_TIMEOUT console $2" >/dev/null
}

# assert_console_kept M TEXT: TEXT is in M's console log on disk (rotated
# part included).
assert_console_kept() {
	cat "$STATE/$1"/console.log* 2>/dev/null | grep -qF -- "$2" ||
		fail "'$2' is not in $STATE/$1/console.log"
}

# tx_bg ID FILE TEXT: a transaction in the background; its stdout, stderr
# and exit status land in $BATS_TEST_TMPDIR/ID.{out,err,rc}.
tx_bg() {
	local o=$BATS_TEST_TMPDIR/$1
	(
		rc=0 # (bats runs tests under set -e)
		tx "$2" "$3" >"$o.out" 2>"$o.err" || rc=$?
		echo "$rc" >"$o.rc"
	) 3>&- &
}

# tx_failed ID MESSAGE: the background transaction ID answered (within the
# deadline), failed, and its error says MESSAGE (the errno's text).
tx_failed() {
	local o=$BATS_TEST_TMPDIR/$1
	wait_until "$TEST_TIMEOUT" test -s "$o.rc" ||
		fail "transaction $1 never answered"
	[ "$(cat "$o.rc")" != 0 ] ||
		fail "transaction $1 succeeded: $(cat "$o.out")"
	grep -qF -- "$2" "$o.err" ||
		fail "transaction $1 failed with '$(cat "$o.err")', not '$2'"
}
