#!/bin/bash
# tests/bench/nixos.sh: the stock-NixOS-guest rows of `make bench` (DESIGN.md
# §5): `true` from bash (a subshell and cat, as a test script runs it)
# through the mount, on the debian guest started as a stock NixOS test VM
# (run-nixos-vm: NixOS's backdoor, bash on hvc0; attestfs's devices in
# QEMU_OPTS), once with the pool attestfs starts on the virtserialports from
# hvc0 (machine/bootstrap.c) and once on hvc0 alone ("shells": 1).
# The floor rows time the same bash shape where nothing has to be asked:
# against a plain file (the client's part alone: its subshell, open, write,
# fork and exec of cat, EOF at once) and through the mount on a mock
# machine (the host's sh answers), beside the mock's C client; so a row
# less the plain-file floor is the guest's and the daemon's part.
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

# nixos_bash_rounds NAME FILE: ROUNDS of `true` from bash as a test script
# runs it (a subshell, exec 3<>FILE, printf, cat), after WARMUP; "MEDIAN
# P99 MAX N" in ms. A round that fails (hvc0 loses bytes when the host is
# slow: EIO) is counted in $ROW_DIR/NAME.errors, not timed; more than half
# fails the row.
nixos_bash_rounds() {
	local name=$1 file=$2 i t0 out times=$ROW_DIR/$1.times errs=0
	: >"$times"
	for ((i = 0; i < WARMUP + ROUNDS; i++)); do
		t0=$EPOCHREALTIME
		# shellcheck disable=SC2034 # read, as a test reads it
		if ! out=$(exec 3<>"$file" && printf true >&3 && cat <&3); then
			errs=$((errs + 1))
			say "$name: round $i failed; $(tail -n 2 "${file%/*}/log" 2>/dev/null | tr '\n' ' ')"
			[ $errs -le $((ROUNDS / 2)) ] || return 1
			continue
		fi
		[ $i -lt "$WARMUP" ] || echo "$t0 $EPOCHREALTIME" >>"$times"
	done
	echo "$errs" >"$ROW_DIR/$name.errors"
	bench_ms_pairs <"$times" | bench_stats
}

# nixos_host_floor: the client's part of the rows: the same rounds against
# a plain file, no guest and no mount (the write lands in it, cat starts
# after it and reads EOF at once). "MEDIAN P99 MAX N" in ms.
nixos_host_floor() {
	: >"$ROW_DIR/plain"
	nixos_bash_rounds floor "$ROW_DIR/plain"
}

# nixos_mock: the same rounds through the mount on a mock machine (the
# host's own sh answers: no guest), then from the C client; "MEDIAN P99 MAX
# N" of the bash rounds, the C client's figures in $ROW_DIR/mock.nofork.
nixos_mock() {
	local stats
	echo start >"$NIXOS_VMS/mock/ctl" || return 1
	stats=$(nixos_bash_rounds mock "$NIXOS_VMS/mock/exec") || return 1
	"$TOP/build/bench-mount-client" true "$NIXOS_VMS/mock/exec" "$ROUNDS" "$WARMUP" \
		>"$ROW_DIR/mock.nofork" || say "mock: the C client failed"
	echo halt >"$NIXOS_VMS/mock/ctl"
	echo "$stats"
}

# nixos_machine M: boot it, time `true`, halt it; "BOOT_MS MEDIAN P99 MAX N".
nixos_machine() {
	local m=$1 t0 boot stats
	t0=$EPOCHREALTIME
	echo start >"$NIXOS_VMS/$m/ctl" || return 1
	boot=$(awk -v a="$t0" -v b="$EPOCHREALTIME" 'BEGIN { printf "%.0f", (b - a) * 1000 }')
	say "$m: running after $boot ms; $(grep '^channel ' "$NIXOS_VMS/$m/info")"
	# The backdoor answers while systemd still starts services (as NixOS's,
	# wanted by multi-user.target): time the settled guest.
	bench_settle "$NIXOS_VMS" "$m" || say "$m: the guest did not settle; timing it all the same"
	stats=$(nixos_bash_rounds "$m" "$NIXOS_VMS/$m/exec") || return 1
	# The same rounds from one process that forks nothing: what the row
	# above pays for the client's subshell and cat on this host.
	"$TOP/build/bench-mount-client" true "$NIXOS_VMS/$m/exec" "$ROUNDS" "$WARMUP" \
		>"$ROW_DIR/$m.nofork" || say "$m: the C client failed; no fork-free figure"
	sed -n 's/^channel //p' "$NIXOS_VMS/$m/info" >"$ROW_DIR/$m.channel"
	echo halt >"$NIXOS_VMS/$m/ctl"
	echo "$boot $stats"
}

# nixos_floor_rows FLOOR MOCK: the rows of what is not the guest's: the
# plain-file floor and the mock machine (four numbers each).
nixos_floor_rows() {
	local f_med f_p99 f_max f_n m_med m_p99 m_max m_n
	read -r f_med f_p99 f_max f_n <<<"$1"
	read -r m_med m_p99 m_max m_n <<<"$2"
	bench_row id=true_nixos_host_floor unit=ms rounds="$f_n" median="$f_med" p99="$f_p99" max="$f_max" \
		figure="the client's part: the same bash subshell + cat against a plain file (no guest, no mount; cat reads EOF at once): the floor of the stock-NixOS-guest rows on this host"
	[ -n "$m_med" ] || return 0
	bench_row id=true_nixos_mock unit=ms rounds="$m_n" median="$m_med" p99="$m_p99" max="$m_max" \
		errors="$(cat "$ROW_DIR/mock.errors")" \
		reference="the C client there: median $(field "$ROW_DIR/mock.nofork" true_ms 1 2>/dev/null || echo '?') ms" \
		figure="the same bash shape through the mount on a mock machine (the host's sh answers, no guest)"
}

# nixos_mount [SCRIPT]: attestfs on NIXOS_VMS with the machine mock and,
# given the debian guest's run-nixos-vm SCRIPT, pool and hvc0.
nixos_mount() {
	local guests=
	mkdir -p "$NIXOS_VMS"
	[ -z "${1:-}" ] || guests=$(printf '"pool": {"start_command": "%s", "shell_channel": "virtconsole"},
		"hvc0": {"start_command": "%s", "shell_channel": "virtconsole", "shells": 1},' "$1" "$1")
	printf '{"machines": {%s "mock": {"backend": "mock"}}}\n' "$guests" >"$ROW_DIR/machines.json"
	# accel=tcg: run-nixos-vm runs QEMU with -accel tcg; so told, attestfs tunes its -cpu max
	"$TOP/attestfs" -f -o "config=$ROW_DIR/machines.json,state_dir=$NIXOS_STATE,accel=tcg" \
		"$NIXOS_VMS" >"$ROW_DIR/daemon.log" 2>&1 &
	NIXOS_DAEMON=$!
	bench_wait_mount "$NIXOS_VMS" "$ROW_DIR/daemon.log"
}

# nixos_c_row ID M FIGURE: the C client's figures of machine M, if it ran.
nixos_c_row() {
	field "$ROW_DIR/$2.nofork" true_ms 1 >/dev/null 2>&1 || return 0
	bench_row id="$1" unit=ms rounds="$ROUNDS" \
		median="$(field "$ROW_DIR/$2.nofork" true_ms 1)" \
		p99="$(field "$ROW_DIR/$2.nofork" true_ms 2)" figure="$3"
}

nixos_rows() {
	local script=$GUESTS/debian/run-nixos-vm pool hvc0 ch floor mock=
	say "the host alone: $ROUNDS x the same subshell + cat on a plain file"
	floor=$(nixos_host_floor) || return 1
	[ "$BACKEND" != mock ] && [ -x "$script" ] || script=
	nixos_mount "$script" || return 1
	say "a mock machine through the mount: $ROUNDS x true from bash, then from a C client"
	mock=$(nixos_mock) || say "the mock machine failed; no mock row"
	if [ -z "$script" ]; then
		bench_row id=true_nixos result=skip \
			figure='`true` from bash (subshell + cat), stock NixOS-style guest: no debian guest (make guest-debian)'
		nixos_floor_rows "$floor" "$mock"
		return 0
	fi
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
		reference="hvc0 alone: median $hvc0_med ms; the NixOS driver: ~110-115 ms; less the floor below: the guest's and the daemon's part" \
		figure="\`true\` from bash (subshell + cat), stock NixOS-style guest (run-nixos-vm, bash on hvc0), shells started on the virtserialports from hvc0"
	bench_row id=true_nixos_hvc0 unit=ms rounds="$ROUNDS" median="$hvc0_med" p99="$hvc0_p99" \
		max="$hvc0_max" boot_ms="$hvc0_boot" errors="$(cat "$ROW_DIR/hvc0.errors")" \
		reference="the pool: median $pool_med ms" \
		figure="the same on hvc0 alone (\"shells\": 1: one shell, commands one at a time)"
	nixos_c_row true_nixos_c pool \
		"the same from a C client (open, write, read, close; no fork), the pool"
	nixos_c_row true_nixos_c_hvc0 hvc0 \
		"the same from a C client, hvc0 alone"
	nixos_floor_rows "$floor" "$mock"
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
