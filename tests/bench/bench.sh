#!/bin/bash
# make bench: DESIGN.md §5 in one run on the tiny guest under TCG, printed as
# one markdown table (figure, measured, reference, target, result).
#
#   1. no FUSE: build/bench-client boots machine a itself (machine/ linked
#      directly) and times `true` round trips and a 64 MiB stdout.
#   2. the mount: attestfs over the same config; build/bench-mount-client times
#      the same things through the files (open O_RDWR, write, read to EOF,
#      close; one process, no fork per round), then `cat status` p99 while
#      machine b streams 64 MiB execs, then start-all and the daemon's VmRSS
#      with 4 running machines.
#
# Progress goes to stderr, the table to stdout. Exit status: 0 all targets
# met, 1 a target missed, 2 the bench itself failed. Everything it started is
# stopped on exit, failure or Ctrl-C.
#
# Knobs: BENCH_ROUNDS (200), BENCH_STATUS_ROUNDS (1500), BENCH_KEEP=1 keeps
# the work directory (logs, state) under /tmp.
set -u
cd "$(dirname "$0")/../.." || exit 2
TOP=$PWD
CACHE=${ATTESTFS_CACHE:-$HOME/.cache/attestfs}
GUESTS=$CACHE/guests
ROUNDS=${BENCH_ROUNDS:-200}
WARMUP=20
BYTES=67108864
STATUS_ROUNDS=${BENCH_STATUS_ROUNDS:-1500}
STATUS_GAP_US=1000
NIXOS_TRUE="~100-117 ms" # DESIGN.md: the NixOS driver's succeed("true")

CLIENT=$TOP/build/bench-mount-client
NOFUSE=$TOP/build/bench-client

say() { printf '# %s\n' "$*" >&2; }

make -s --no-print-directory attestfs build/bench-client build/bench-mount-client >&2 || exit 2
for f in "$GUESTS/tiny/vmlinuz" "$GUESTS/tiny/initrd.gz"; do
	[ -r "$f" ] || { say "no tiny guest at $f (run make guest)"; exit 2; }
done
command -v fusermount3 >/dev/null || { say "fusermount3 not found"; exit 2; }

work=$(mktemp -d /tmp/attestfs-bench.XXXXXX) || exit 2
VMS=$work/vms
STATE=$work/state
NOFUSE_STATE=$work/nofuse
daemon=
streamer=
nofuse=

# Kill, by pid, any VMM a state dir's machines left behind.
kill_leftover_vmms() {
	local f pid
	for f in "$1"/*/qemu*.pid; do
		[ -e "$f" ] || continue
		pid=$(cat "$f" 2>/dev/null) || continue
		if [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null; then
			say "leftover VMM $pid from $f"
			kill -9 "$pid" 2>/dev/null
		fi
	done
}

# wait_gone PID SECONDS: wait for a child to exit, kill -9 it after SECONDS.
wait_gone() {
	local i
	for ((i = 0; i < $2 * 20; i++)); do
		kill -0 "$1" 2>/dev/null || break
		sleep 0.05
	done
	kill -9 "$1" 2>/dev/null
	wait "$1" 2>/dev/null
}

cleanup() {
	if [ -n "$streamer" ]; then
		kill "$streamer" 2>/dev/null
		wait_gone "$streamer" 10
		streamer=
	fi
	if [ -n "$nofuse" ]; then
		kill "$nofuse" 2>/dev/null
		wait_gone "$nofuse" 30
		nofuse=
	fi
	if mountpoint -q "$VMS" 2>/dev/null; then
		fusermount3 -u "$VMS" 2>/dev/null || fusermount3 -uz "$VMS" 2>/dev/null
	fi
	if [ -n "$daemon" ]; then
		wait_gone "$daemon" 60
		daemon=
	fi
	kill_leftover_vmms "$STATE"
	kill_leftover_vmms "$NOFUSE_STATE"
	if [ "${BENCH_KEEP:-0}" = 1 ]; then
		say "kept $work"
	else
		rm -rf "$work"
	fi
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

die() {
	say "bench failed: $*"
	if [ -s "$work/daemon.log" ]; then
		say "last lines of the daemon's output:"
		tail -n 20 "$work/daemon.log" | sed 's/^/#   /' >&2
	fi
	for f in "$STATE"/*/log "$NOFUSE_STATE"/*/log; do
		[ -s "$f" ] || continue
		say "last lines of $f:"
		tail -n 5 "$f" | sed 's/^/#   /' >&2
	done
	exit 2
}

# field FILE KEY N: the Nth value of the line "KEY v1 v2 ..." of FILE.
field() {
	awk -v k="$2" -v n="$3" '$1 == k { v = $(n + 1) } END { if (v == "") exit 1; print v }' "$1"
}

tiny() {
	printf '"%s": {"kernel": "%s", "initrd": "%s", "append": "console=ttyS0 quiet panic=-1", "accel": "tcg"}' \
		"$1" "$GUESTS/tiny/vmlinuz" "$GUESTS/tiny/initrd.gz"
}
printf '{"machines": {%s, %s, %s, %s}}\n' "$(tiny a)" "$(tiny b)" "$(tiny c)" "$(tiny d)" \
	>"$work/machines.json"

t_start=$SECONDS

# ---- 1. the same protocol without FUSE --------------------------------------
say "no FUSE: build/bench-client boots a, $WARMUP warm-up + $ROUNDS true, one 64 MiB stdout"
"$NOFUSE" "$work/machines.json" a "$ROUNDS" "$NOFUSE_STATE" >"$work/nofuse.out" 2>"$work/nofuse.err" &
nofuse=$!
wait "$nofuse"
rc=$?
nofuse=
[ "$rc" = 0 ] || { cat "$work/nofuse.err" >&2; die "bench-client exited $rc"; }
kill_leftover_vmms "$NOFUSE_STATE"
nf_med=$(field "$work/nofuse.out" true_ms 1) || die "no true_ms from bench-client"
nf_p99=$(field "$work/nofuse.out" true_ms 2) || die "no true_ms from bench-client"
nf_rate=$(field "$work/nofuse.out" stdout_mib_s 1) || die "no stdout_mib_s from bench-client"
say "no FUSE: true median $nf_med ms, p99 $nf_p99 ms; 64 MiB at $nf_rate MiB/s"

# ---- 2. the mount ---------------------------------------------------------------
mkdir -p "$VMS"
"$TOP/attestfs" -f -o "config=$work/machines.json,state_dir=$STATE,accel=tcg" "$VMS" \
	>"$work/daemon.log" 2>&1 &
daemon=$!
for ((i = 0; i < 400; i++)); do
	[ -e "$VMS/ctl" ] && break
	kill -0 "$daemon" 2>/dev/null || die "the daemon exited before mounting"
	sleep 0.05
done
[ -e "$VMS/ctl" ] || die "no mount after 20 s"

"$CLIENT" ctl "$VMS/a/ctl" start >"$work/boot.out" || die "start a"
boot_ms=$(field "$work/boot.out" ctl_ms 1) || die "no boot time"
say "mount: a running after $boot_ms ms"

say "mount: $WARMUP warm-up + $ROUNDS true on a/exec"
"$CLIENT" true "$VMS/a/exec" "$ROUNDS" "$WARMUP" >"$work/true.out" || die "true rounds"
m_med=$(field "$work/true.out" true_ms 1) || die "no true_ms"
m_p99=$(field "$work/true.out" true_ms 2) || die "no true_ms"
m_mean=$(field "$work/true.out" true_ms 3) || die "no true_ms"
phases=$(awk '$1 == "true_phase_median_ms" { printf "open %s, write %s, read %s, close %s", $2, $3, $4, $5 }' "$work/true.out")
say "mount: true median $m_med ms, p99 $m_p99 ms, mean $m_mean ms; phase medians (ms): $phases"

say "mount: snapshot a, then 10 x restore + first command"
"$CLIENT" ctl "$VMS/a/ctl" "snapshot bench" >"$work/snap.out" || die "snapshot"
snap_ms=$(field "$work/snap.out" ctl_ms 1) || die "no snapshot time"
"$CLIENT" restore "$VMS/a/ctl" "$VMS/a/exec" "$VMS/a/info" bench 10 >"$work/restore.out" || die "restore rounds"
r_med=$(field "$work/restore.out" restore_ms 1) || die "no restore_ms"
r_p99=$(field "$work/restore.out" restore_ms 2) || die "no restore_ms"
say "mount: snapshot in $snap_ms ms; restore to first command median $r_med ms, p99 $r_p99 ms"
say "mount: 5 x restore without a spare (a VMM waits for another snapshot)"
"$CLIENT" ctl "$VMS/a/ctl" "snapshot other" >/dev/null || die "snapshot other"
"$CLIENT" restore-cold "$VMS/a/ctl" "$VMS/a/exec" "$VMS/a/info" bench other 5 >"$work/restore-cold.out" ||
	die "restore rounds without a spare"
rc_med=$(field "$work/restore-cold.out" restore_ms 1) || die "no restore_ms"
say "mount: restore without a spare, median $rc_med ms"

say "mount: 64 MiB stdout on a/exec"
"$CLIENT" stdout "$VMS/a/exec" "$BYTES" >"$work/stdout.out" || die "64 MiB stdout"
m_rate=$(field "$work/stdout.out" stdout_mib_s 1) || die "no stdout_mib_s"
m_ttfb=$(field "$work/stdout.out" stdout_mib_s 2) || die "no stdout_mib_s"
say "mount: 64 MiB at $m_rate MiB/s, first byte after $m_ttfb ms"

say "mount: $STATUS_ROUNDS x cat a/status, idle"
"$CLIENT" status "$VMS/a/status" "$STATUS_ROUNDS" "$STATUS_GAP_US" >"$work/status-idle.out" ||
	die "status rounds"
si_p99=$(field "$work/status-idle.out" status_ms 2) || die "no status_ms"

"$CLIENT" ctl "$VMS/b/ctl" start >"$work/boot-b.out" || die "start b"
say "mount: b running after $(field "$work/boot-b.out" ctl_ms 1) ms; b streams 64 MiB execs"
"$CLIENT" stream "$VMS/b/exec" "$BYTES" >"$work/stream.out" 2>"$work/stream.err" &
streamer=$!
# The guest's command writes its stdout to tmpfs first; measure once bytes flow.
for ((i = 0; i < 1200; i++)); do
	grep -q '^flowing' "$work/stream.out" && break
	kill -0 "$streamer" 2>/dev/null || { cat "$work/stream.err" >&2; die "the streamer stopped"; }
	sleep 0.05
done
grep -q '^flowing' "$work/stream.out" || die "no byte from b's 64 MiB exec after 60 s"
say "mount: $STATUS_ROUNDS x cat a/status while b streams"
"$CLIENT" status "$VMS/a/status" "$STATUS_ROUNDS" "$STATUS_GAP_US" >"$work/status.out" ||
	die "status rounds under load"
kill -0 "$streamer" 2>/dev/null || { cat "$work/stream.err" >&2; die "the streamer stopped early"; }
kill -TERM "$streamer"
wait "$streamer"
rc=$?
streamer=
[ "$rc" = 0 ] || { cat "$work/stream.err" >&2; die "the streamer exited $rc"; }
s_med=$(field "$work/status.out" status_ms 1) || die "no status_ms"
s_p99=$(field "$work/status.out" status_ms 2) || die "no status_ms"
s_max=$(field "$work/status.out" status_ms 3) || die "no status_ms"
st_rate=$(field "$work/stream.out" stream_mib_s 1) || die "no stream_mib_s"
say "mount: status median $s_med ms, p99 $s_p99 ms, max $s_max ms (idle p99 $si_p99 ms); b streamed $st_rate MiB/s"

say "mount: start-all (c and d boot; a and b are running)"
"$CLIENT" ctl "$VMS/ctl" start-all >"$work/start-all.out" || die "start-all"
startall_ms=$(field "$work/start-all.out" ctl_ms 1) || die "no start-all time"
for m in a b c d; do
	st=$(cat "$VMS/$m/status") || die "cat $m/status"
	[ "$st" = running ] || die "$m is $st after start-all"
done
sleep 1 # let the guests settle into idle
rss_kb=$(awk '$1 == "VmRSS:" { print $2 }' "/proc/$daemon/status") || die "no VmRSS"
hwm_kb=$(awk '$1 == "VmHWM:" { print $2 }' "/proc/$daemon/status") || die "no VmHWM"
threads=$(awk '$1 == "Threads:" { print $2 }' "/proc/$daemon/status")
say "mount: 4 running after start-all ($startall_ms ms); daemon VmRSS $rss_kb kB, VmHWM $hwm_kb kB, $threads threads"

say "mount: 4 clones of a's snapshot, one after the other, until each answers"
t_clones=$(date +%s%3N)
for k in 1 2 3 4; do
	"$CLIENT" ctl "$VMS/a/ctl" "clone k$k bench" >/dev/null || die "clone k$k"
	"$CLIENT" true "$VMS/k$k/exec" 1 0 >/dev/null || die "first command on k$k"
done
clones_ms=$(( $(date +%s%3N) - t_clones ))
say "mount: 4 clones ready in $clones_ms ms"
for k in 1 2 3 4; do
	"$CLIENT" ctl "$VMS/k$k/ctl" halt >/dev/null || die "halt k$k"
	rmdir "$VMS/k$k" || die "rmdir k$k"
done

say "mount: 4 clones of a's snapshot asked for together, until each answers"
t_clones=$(date +%s%3N)
pids=()
for k in 5 6 7 8; do
	( "$CLIENT" ctl "$VMS/a/ctl" "clone k$k bench" >/dev/null &&
	  "$CLIENT" true "$VMS/k$k/exec" 1 0 >/dev/null ) &
	pids+=($!)
done
for p in "${pids[@]}"; do
	wait "$p" || die "a clone made together failed"
done
pclones_ms=$(( $(date +%s%3N) - t_clones ))
say "mount: 4 clones made together ready in $pclones_ms ms"

say "unmounting"
t_umount=$SECONDS
fusermount3 -u "$VMS" || die "fusermount3 -u"
wait_gone "$daemon" 60
daemon=
kill_leftover_vmms "$STATE"
say "unmounted in $((SECONDS - t_umount)) s; the bench took $((SECONDS - t_start)) s"

# ---- the table ------------------------------------------------------------------
awk -v m_med="$m_med" -v m_p99="$m_p99" -v nf_med="$nf_med" -v nf_p99="$nf_p99" \
	-v m_rate="$m_rate" -v nf_rate="$nf_rate" -v s_med="$s_med" -v s_p99="$s_p99" \
	-v s_max="$s_max" -v si_p99="$si_p99" -v st_rate="$st_rate" \
	-v rss_kb="$rss_kb" -v hwm_kb="$hwm_kb" -v boot_ms="$boot_ms" \
	-v startall_ms="$startall_ms" -v rounds="$ROUNDS" -v srounds="$STATUS_ROUNDS" \
	-v nixos="$NIXOS_TRUE" -v phases="$phases" -v m_ttfb="$m_ttfb" \
	-v r_med="$r_med" -v r_p99="$r_p99" -v snap_ms="$snap_ms" -v rc_med="$rc_med" \
	-v clones_ms="$clones_ms" -v pclones_ms="$pclones_ms" '
function verdict(ok) { if (ok) { pass++; return "pass" } fail++; return "**FAIL**" }
BEGIN {
	ovh = (m_med - nf_med) / nf_med * 100
	ovh99 = (m_p99 - nf_p99) / nf_p99 * 100
	ratio = m_rate / nf_rate * 100
	rss = rss_kb / 1024
	print "| figure | measured | reference | target | result |"
	print "| --- | --- | --- | --- | --- |"
	printf "| `true` round trip through the mount, tiny guest, TCG (%d rounds) | median %.2f ms, p99 %.2f ms | NixOS driver `succeed(\"true\")`: %s | median <= 10 ms | %s |\n",
		rounds, m_med, m_p99, nixos, verdict(m_med <= 10)
	printf "| the same without FUSE (build/bench-client, same guest, same run) | median %.2f ms, p99 %.2f ms | | | |\n",
		nf_med, nf_p99
	printf "| mount overhead vs no FUSE | %+.1f %% on the median (%+.1f %% on p99) | | <= 10 %% | %s |\n",
		ovh, ovh99, verdict(ovh <= 10)
	printf "| 64 MiB stdout through the mount vs no FUSE | %.1f vs %.1f MiB/s = %.0f %% | | >= 80 %% | %s |\n",
		m_rate, nf_rate, ratio, verdict(ratio >= 80)
	printf "| `cat status` p99 while b streams 64 MiB execs (%d rounds) | p99 %.2f ms (median %.2f, max %.2f; b at %.1f MiB/s) | idle p99 %.2f ms | < 5 ms | %s |\n",
		srounds, s_p99, s_med, s_max, st_rate, si_p99, verdict(s_p99 < 5)
	printf "| daemon VmRSS with 4 running machines | %.1f MiB (VmHWM %.1f MiB) | | < 16 MiB | %s |\n",
		rss, hwm_kb / 1024, verdict(rss < 16)
	printf "| boot, start -> running (tiny guest, TCG) | %.0f ms | start-all of c, d: %.0f ms | | info |\n",
		boot_ms, startall_ms
	printf "| restore a booted guest from a snapshot to its first command (10 rounds) | median %.0f ms, p99 %.0f ms (snapshot took %.0f ms) | plain QEMU: ~240 ms | < 150 ms | %s |\n",
		r_med, r_p99, snap_ms, verdict(r_med < 150)
	printf "| the same without a spare VMM waiting (a new QEMU per restore, 5 rounds) | median %.0f ms | plain QEMU: ~240 ms | | info |\n",
		rc_med
	printf "| 4 clones of one snapshot ready (made one after the other, each answered a command) | %.0f ms | boot: %.0f ms each | | info |\n",
		clones_ms, boot_ms
	printf "| 4 clones of one snapshot ready (asked for together, 2 cores) | %.0f ms | start-all of 2 tiny guests: %.0f ms | | info |\n",
		pclones_ms, startall_ms
	printf "\nWhere the time goes: a mount `true` (medians, ms): %s. The 64 MiB exec: first byte after %.0f ms (the guest writes stdout to tmpfs, then sends it base64); b streamed at %.1f MiB/s from its first byte.\n",
		phases, m_ttfb, st_rate
	printf "\n%d passed, %d failed\n", pass, fail
	exit (fail > 0 ? 1 : 0)
}'
