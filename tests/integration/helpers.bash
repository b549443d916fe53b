# Shared set-up for the integration tests: a real attestfs mount over real
# tiny guests. Each .bats file mounts once (setup_file) and unmounts in
# teardown_file, which also runs when a test fails.

load '/usr/lib/bats/bats-support/load'
load '/usr/lib/bats/bats-assert/load'

TOP=$(cd "$BATS_TEST_DIRNAME/../.." && pwd)
ATTESTFS=$TOP/attestfs
CACHE=${ATTESTFS_CACHE:-$HOME/.cache/attestfs}
GUESTS=$CACHE/guests

# tiny_machine NAME [extra JSON members]: a config entry for the tiny guest.
tiny_machine() {
	printf '"%s": {"kernel": "%s", "initrd": "%s", "append": "console=ttyS0 quiet panic=-1"%s}' \
		"$1" "$GUESTS/tiny/vmlinuz" "$GUESTS/tiny/initrd.gz" "${2:+, $2}"
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

# mount_attestfs CONFIG_JSON [extra -o options]: mount at $VMS.
mount_attestfs() {
	export WORK=$BATS_FILE_TMPDIR
	export VMS=$WORK/vms
	export STATE=$WORK/state
	mkdir -p "$VMS"
	printf '%s\n' "$1" >"$WORK/machines.json"
	"$ATTESTFS" -f -o "config=$WORK/machines.json,state_dir=$STATE,accel=tcg${2:+,$2}" \
		"$VMS" >"$WORK/daemon.log" 2>&1 &
	echo $! >"$WORK/daemon.pid"
	if ! wait_until "$TEST_TIMEOUT" test -e "$VMS/ctl"; then
		cat "$WORK/daemon.log" >&3
		return 1
	fi
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
	if mountpoint -q "$VMS" 2>/dev/null; then
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
