# shellcheck shell=bash
# tests/bench/lib.sh: what every part of `make bench` shares, sourced by
# tests/bench/bench.sh and by a rows.d script run by itself
# (tests/bench/nixos.sh), so a figure is computed, rounded and written one
# way only. The caller sets ROWS (the JSON-lines file bench_row appends to).

# say TEXT: progress to stderr.
say() { printf '# %s\n' "$*" >&2; }

# field FILE KEY N: the Nth value of the line "KEY v1 v2 ..." of FILE.
field() {
	awk -v k="$2" -v n="$3" '$1 == k { v = $(n + 1) } END { if (v == "") exit 1; print v }' "$1"
}

# bench_stats < NUMBERS: "MEDIAN P99 MAX N" of one number a line, by the
# nearest-rank rule of tests/bench/stats.h (the p-quantile of n sorted values
# is the ceil(p * n)-th), printed as they came in.
bench_stats() {
	sort -g | awk '
	function rank(p,   k) { k = int(p * n); if (k < p * n) k++; if (k < 1) k = 1; return v[k] }
	{ v[++n] = $1 }
	END { if (!n) exit 1; print rank(0.5), rank(0.99), v[n], n }'
}

# bench_ms_pairs < "T0 T1" lines (seconds, as $EPOCHREALTIME gives them):
# one duration in ms a line, to 3 decimals as the C clients print them.
bench_ms_pairs() {
	awk '{ printf "%.3f\n", ($2 - $1) * 1000 }'
}

# bench_row KEY=VALUE...: one row of the table and the JSON. Keys: id,
# figure, unit, rounds, median, p99 (the figures), target ("median <= 5",
# clauses joined by ", ", each FIELD OP NUMBER on this row's fields; none:
# an information row), reference (text), and any other figure (numbers
# stay numbers). result=skip|error overrides the verdict. A row that cannot
# be written ends the bench (exit 2).
bench_row() {
	local args=() kv
	for kv in "$@"; do
		args+=(--arg "${kv%%=*}" "${kv#*=}")
	done
	jq -nc "${args[@]}" '$ARGS.named | with_entries(.value = (.value as $v | ($v | tonumber?) // $v))' \
		>>"$ROWS" || { say "bench failed: bench_row $*"; exit 2; }
}

# calc EXPR: awk arithmetic, one decimal.
calc() { awk "BEGIN { printf \"%.1f\", $1 }"; }

# bench_wait_mount VMS LOG: until attestfs (started in the background, its
# output in LOG) has mounted VMS; says why not after 10 s.
bench_wait_mount() {
	for _ in $(seq 200); do
		[ -e "$1/ctl" ] && return 0
		sleep 0.05
	done
	say "attestfs did not mount $1: $(tail -n 5 "$2")"
	return 1
}

# bench_settle VMS M: until M's guest has settled (systemd's start jobs done,
# as a test that waits for multi-user.target sees it; at once where there is
# no systemd), at most 300 s.
bench_settle() {
	(exec 3<>"$1/$2/wait" &&
		printf 'timeout=300 succeeds systemctl is-system-running --wait; true' >&3 &&
		cat <&3) >/dev/null
}

# bench_stop_mount VMS DAEMON STATE: what a row script started, gone: its
# mount at VMS, its daemon (pid DAEMON, may be empty; it halts its machines
# on the unmount, given 10 s), then any QEMU left behind, by the pidfiles
# under STATE/*/ (only a pid that still is a QEMU).
bench_stop_mount() {
	local vms=$1 daemon=$2 state=$3 f pid
	if awk -v d="$vms" '$5 == d { f = 1 } END { exit !f }' /proc/self/mountinfo; then
		fusermount3 -u "$vms" 2>/dev/null || fusermount3 -uz "$vms" 2>/dev/null
	fi
	if [ -n "$daemon" ]; then
		for _ in $(seq 100); do
			kill -0 "$daemon" 2>/dev/null || break
			sleep 0.1
		done
		kill -9 "$daemon" 2>/dev/null
	fi
	for f in "$state"/*/qemu*.pid; do
		[ -e "$f" ] || continue
		pid=$(cat "$f" 2>/dev/null)
		[ -n "$pid" ] && grep -qs qemu "/proc/$pid/cmdline" && kill -9 "$pid" 2>/dev/null
	done
	return 0
}
