#!/bin/bash
# tests/bench/nixos.sh: the stock-NixOS-guest rows of `make bench` (DESIGN.md
# §5): `true` from bash (a subshell and cat, as a test script runs it)
# through the mount, on the debian guest started as a stock NixOS test VM
# (run-nixos-vm: NixOS's backdoor, bash on hvc0; attestfs's devices in
# QEMU_OPTS), once with the pool attestfs starts on the virtserialports from
# hvc0 (machine/bootstrap.c) and once on hvc0 alone ("shells": 1).
#
# Run by itself (under the VM lock), it prints the rows as markdown and then
# as JSON, one object a line:
#   flock /tmp/attestfs-vm.lock tests/bench/nixos.sh
# Either way say, bench_stats and bench_row come from tests/bench/lib.sh
# (sourced by bench.sh when this is a rows.d script: ROW_DIR set).
# Knobs: BENCH_NIXOS_ROUNDS (standalone: 100; sourced: bench.sh's ROUNDS),
# ATTESTFS_CACHE (the guests), BENCH_KEEP=1 keeps the work directory.
set -u

if [ -z "${ROW_DIR:-}" ]; then
	NIXOS_STANDALONE=1
	cd "$(dirname "$0")/../.." || exit 2
	TOP=$PWD
	CACHE=${ATTESTFS_CACHE:-$HOME/.cache/attestfs}
	GUESTS=$CACHE/guests
	ROUNDS=${BENCH_NIXOS_ROUNDS:-100}
	WARMUP=10
	BACKEND=tiny
	make -s --no-print-directory attestfs build/bench-mount-client >&2 || exit 2
	ROW_DIR=$(mktemp -d /tmp/attestfs-bench-nixos.XXXXXX) || exit 2
	ROWS=$ROW_DIR/rows.jsonl
	# shellcheck source=tests/bench/lib.sh
	. "$TOP/tests/bench/lib.sh"
else
	NIXOS_STANDALONE=
	ROUNDS=${BENCH_NIXOS_ROUNDS:-$ROUNDS}
fi

NIXOS_VMS=$ROW_DIR/vms
NIXOS_STATE=$ROW_DIR/state
NIXOS_DAEMON=

nixos_cleanup() {
	bench_stop_mount "$NIXOS_VMS" "$NIXOS_DAEMON" "$NIXOS_STATE"
	if [ -n "$NIXOS_STANDALONE" ] && [ "${BENCH_KEEP:-0}" != 1 ]; then
		rm -rf "$ROW_DIR"
	fi
}
trap nixos_cleanup EXIT

# nixos_true M: ROUNDS of `true` from bash as a test script runs it, after
# WARMUP; "MEDIAN P99 MAX N" in ms.
# A round that fails (hvc0 loses bytes when the host is slow: EIO) is
# counted in $ROW_DIR/M.errors, not timed; more than half fails the row.
nixos_true() {
	local m=$1 i t0 out times=$ROW_DIR/$1.times errs=0
	: >"$times"
	for ((i = 0; i < WARMUP + ROUNDS; i++)); do
		t0=$EPOCHREALTIME
		# shellcheck disable=SC2034 # read, as a test reads it
		if ! out=$(exec 3<>"$NIXOS_VMS/$m/exec" && printf true >&3 && cat <&3); then
			errs=$((errs + 1))
			say "$m: round $i failed; $(tail -n 2 "$NIXOS_VMS/$m/log" | tr '\n' ' ')"
			[ $errs -le $((ROUNDS / 2)) ] || return 1
			continue
		fi
		[ $i -lt "$WARMUP" ] || echo "$t0 $EPOCHREALTIME" >>"$times"
	done
	echo "$errs" >"$ROW_DIR/$m.errors"
	bench_ms_pairs <"$times" | bench_stats
}

# nixos_host_floor: the same rounds on the host alone, no guest and no
# mount (/dev/null for exec): what the client's subshell and cat cost here.
# "MEDIAN P99 MAX N" in ms.
nixos_host_floor() {
	local i t0 out times=$ROW_DIR/floor.times
	: >"$times"
	for ((i = 0; i < WARMUP + ROUNDS; i++)); do
		t0=$EPOCHREALTIME
		# shellcheck disable=SC2034 # read, as the rounds above read it
		out=$(exec 3<>/dev/null && printf true >&3 && cat </dev/null)
		[ $i -lt "$WARMUP" ] || echo "$t0 $EPOCHREALTIME" >>"$times"
	done
	bench_ms_pairs <"$times" | bench_stats
}

# nixos_machine M: boot it, time `true`, halt it; "BOOT_MS MEDIAN P99 MAX N".
nixos_machine() {
	local m=$1 t0 boot stats
	t0=$EPOCHREALTIME
	echo start >"$NIXOS_VMS/$m/ctl" || return 1
	boot=$(awk -v a="$t0" -v b="$EPOCHREALTIME" 'BEGIN { printf "%.0f", (b - a) * 1000 }')
	say "$m: running after $boot ms; $(grep '^channel ' "$NIXOS_VMS/$m/info")"
	# The backdoor answers while systemd still starts services (as NixOS's,
	# wanted by multi-user.target): time the settled guest, as a test that
	# waits for multi-user.target first sees it.
	(exec 3<>"$NIXOS_VMS/$m/wait" && printf 'timeout=300 succeeds systemctl is-system-running --wait; true' >&3 &&
		cat <&3) >/dev/null || say "$m: the guest did not settle; timing it all the same"
	stats=$(nixos_true "$m") || return 1
	# The same rounds from one process that forks nothing: what the row
	# above pays for the client's subshell and cat on this host.
	"$TOP/build/bench-mount-client" true "$NIXOS_VMS/$m/exec" "$ROUNDS" "$WARMUP" \
		>"$ROW_DIR/$m.nofork" || say "$m: the C client failed; no fork-free figure"
	sed -n 's/^channel //p' "$NIXOS_VMS/$m/info" >"$ROW_DIR/$m.channel"
	echo halt >"$NIXOS_VMS/$m/ctl"
	echo "$boot $stats"
}

# nixos_floor_row MEDIAN P99 MAX N: after the rows it is the floor of
nixos_floor_row() {
	bench_row id=true_nixos_host_floor unit=ms rounds="$4" median="$1" p99="$2" max="$3" \
		figure="the host's own bash subshell + cat, no guest, no mount: the floor of the stock-NixOS-guest rows on this host"
}

nixos_rows() {
	local script=$GUESTS/debian/run-nixos-vm pool hvc0 ch floor
	say "the host alone: $ROUNDS x the same subshell + cat on /dev/null"
	floor=$(nixos_host_floor) || return 1
	if [ "$BACKEND" = mock ] || [ ! -x "$script" ]; then
		bench_row id=true_nixos result=skip \
			figure='`true` from bash (subshell + cat), stock NixOS-style guest: no debian guest (make guest-debian)'
		# shellcheck disable=SC2086 # four numbers
		nixos_floor_row $floor
		return 0
	fi
	mkdir -p "$NIXOS_VMS"
	printf '{"machines": {
		"pool": {"start_command": "%s", "shell_channel": "virtconsole"},
		"hvc0": {"start_command": "%s", "shell_channel": "virtconsole", "shells": 1}}}\n' \
		"$script" "$script" >"$ROW_DIR/machines.json"
	"$TOP/attestfs" -f -o "config=$ROW_DIR/machines.json,state_dir=$NIXOS_STATE" \
		"$NIXOS_VMS" >"$ROW_DIR/daemon.log" 2>&1 &
	NIXOS_DAEMON=$!
	for _ in $(seq 200); do
		[ -e "$NIXOS_VMS/ctl" ] && break
		sleep 0.05
	done
	[ -e "$NIXOS_VMS/ctl" ] || { say "attestfs did not mount: $(cat "$ROW_DIR/daemon.log")"; return 1; }

	say "stock NixOS-style guest (run-nixos-vm), pool from hvc0: $ROUNDS x true from bash"
	pool=$(nixos_machine pool) || return 1
	ch=$(cat "$ROW_DIR/pool.channel")
	say "stock NixOS-style guest, hvc0 alone: $ROUNDS x true from bash"
	hvc0=$(nixos_machine hvc0) || return 1
	read -r pool_boot pool_med pool_p99 pool_max _ <<<"$pool"
	read -r hvc0_boot hvc0_med hvc0_p99 hvc0_max _ <<<"$hvc0"
	bench_row id=true_nixos unit=ms rounds="$ROUNDS" median="$pool_med" p99="$pool_p99" \
		max="$pool_max" boot_ms="$pool_boot" errors="$(cat "$ROW_DIR/pool.errors")" \
		target="median <= 10" \
		reference="hvc0 alone: median $hvc0_med ms; the NixOS driver: ~110-115 ms" \
		figure="\`true\` from bash (subshell + cat), stock NixOS-style guest (run-nixos-vm, bash on hvc0), shells started on the virtserialports from hvc0"
	bench_row id=true_nixos_hvc0 unit=ms rounds="$ROUNDS" median="$hvc0_med" p99="$hvc0_p99" \
		max="$hvc0_max" boot_ms="$hvc0_boot" errors="$(cat "$ROW_DIR/hvc0.errors")" \
		reference="the pool: median $pool_med ms" \
		figure="the same on hvc0 alone (\"shells\": 1: one shell, commands one at a time)"
	if field "$ROW_DIR/pool.nofork" true_ms 1 >/dev/null 2>&1; then
		bench_row id=true_nixos_c unit=ms rounds="$ROUNDS" \
			median="$(field "$ROW_DIR/pool.nofork" true_ms 1)" \
			p99="$(field "$ROW_DIR/pool.nofork" true_ms 2)" \
			reference="hvc0 alone: median $(field "$ROW_DIR/hvc0.nofork" true_ms 1 2>/dev/null || echo '?') ms" \
			figure="the same from a C client (open, write, read, close; no fork): the row above less the client's subshell and cat"
	fi
	# shellcheck disable=SC2086 # four numbers
	nixos_floor_row $floor
	[ "${ch#virtserialport}" != "$ch" ] || { say "the pool did not come up: channel $ch"; return 1; }
}

nixos_rows || exit 1
if [ -n "$NIXOS_STANDALONE" ]; then
	echo "| figure | measured | reference | target |"
	echo "| --- | --- | --- | --- |"
	jq -r '"| \(.figure) | " + (if .median then "median \(.median) \(.unit), p99 \(.p99) \(.unit) (\(.rounds) rounds" + (if .errors != null then ", \(.errors) failed" else "" end) + (if .boot_ms != null then "; start -> running \(.boot_ms) ms" else "" end) + ")" else .result end) + " | \(.reference // "") | \(.target // "") |"' \
		"$ROWS"
	echo
	cat "$ROWS"
fi
