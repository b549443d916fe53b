#!/bin/bash
# make soak: many commands and waits over 4 tiny machines, in parallel
# clients, and the daemon's resident memory and open file descriptors must
# stay flat. Minutes, so not part of `make check`.
#
#   1. mount 4 tiny guests (TCG), start-all;
#   2. warm-up: SOAK_WARMUP commands (and a tenth as many waits), so every
#      pool, buffer and thread exists before the first measurement;
#   3. SOAK_COMMANDS commands and SOAK_WAITS waits in SOAK_ROUNDS rounds, 2
#      clients per machine; RSS and fds printed after every round;
#   4. fail if a client saw a wrong answer, if RSS grew more than
#      SOAK_RSS_SLACK_KIB after the warm-up, or if the fds grew at all.
#
# Every command's output is checked (`echo ID-N` must answer `ID-N`). The
# waits alternate between a host-side one (`status running`) and one that
# polls the guest (`succeeds test -d /tmp`).
#
# Knobs: SOAK_MOCK=1 (no guests: the mock backend), SOAK_COMMANDS (10000), SOAK_WAITS (1000), SOAK_ROUNDS (4),
# SOAK_WARMUP (400), SOAK_RSS_SLACK_KIB (2048), SOAK_KEEP=1 keeps the work
# directory. Exit status: 0 flat, 1 not flat or wrong answers, 2 the soak
# itself failed. Everything it started is stopped on exit.
set -u
cd "$(dirname "$0")/../.." || exit 2
TOP=$PWD
CACHE=${ATTESTFS_CACHE:-$HOME/.cache/attestfs}
GUESTS=$CACHE/guests
COMMANDS=${SOAK_COMMANDS:-10000}
WAITS=${SOAK_WAITS:-1000}
ROUNDS=${SOAK_ROUNDS:-4}
WARMUP=${SOAK_WARMUP:-400}
RSS_SLACK=${SOAK_RSS_SLACK_KIB:-2048}
MACHINES="a b c d"
PER_MACHINE=2 # clients; each machine has 3 command shells besides shell 0

say() { printf '# %s\n' "$*" >&2; }

for f in "$GUESTS/tiny/vmlinuz" "$GUESTS/tiny/initrd.gz"; do
	[ -r "$f" ] || { say "no tiny guest at $f (run make guest)"; exit 2; }
done
[ -x "$TOP/attestfs" ] || { say "no $TOP/attestfs (run make)"; exit 2; }

work=$(mktemp -d /tmp/attestfs-soak.XXXXXX) || exit 2
VMS=$work/vms
STATE=$work/state
daemon=

kill_leftover_vmms() {
	local f pid
	for f in "$STATE"/*/qemu*.pid; do
		[ -e "$f" ] || continue
		pid=$(cat "$f" 2>/dev/null) || continue
		if [ -n "$pid" ] && grep -qs qemu "/proc/$pid/cmdline"; then
			say "leftover VMM $pid from $f"
			kill -9 "$pid" 2>/dev/null
		fi
	done
}

cleanup() {
	local i
	if mountpoint -q "$VMS" 2>/dev/null; then
		fusermount3 -u "$VMS" 2>/dev/null || fusermount3 -uz "$VMS" 2>/dev/null
	fi
	if [ -n "$daemon" ]; then
		for ((i = 0; i < 1200; i++)); do
			kill -0 "$daemon" 2>/dev/null || break
			sleep 0.05
		done
		kill -9 "$daemon" 2>/dev/null
		wait "$daemon" 2>/dev/null
	fi
	kill_leftover_vmms
	if [ "${SOAK_KEEP:-0}" = 1 ]; then
		say "kept $work"
	else
		rm -rf "$work"
	fi
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

die() {
	say "soak failed: $*"
	tail -n 20 "$work/daemon.log" 2>/dev/null | sed 's/^/#   /' >&2
	exit 2
}

tiny() {
	# SOAK_MOCK=1: the host's sh plays the guests (checks the soak itself)
	if [ "${SOAK_MOCK:-0}" = 1 ]; then
		printf '"%s": {"backend": "mock"}' "$1"
		return
	fi
	printf '"%s": {"kernel": "%s", "initrd": "%s", "append": "%s", "accel": "tcg"}' \
		"$1" "$GUESTS/tiny/vmlinuz" "$GUESTS/tiny/initrd.gz" "$(cat "$GUESTS/tiny/cmdline")"
}
printf '{"machines": {%s, %s, %s, %s}}\n' "$(tiny a)" "$(tiny b)" "$(tiny c)" "$(tiny d)" \
	>"$work/machines.json"

rss_kib() { awk '$1 == "VmRSS:" { print $2 }' "/proc/$daemon/status"; }
n_fds() { ls "/proc/$daemon/fd" | wc -l; }

# client ID MACHINE COMMANDS WAITS: prints "ok N" or the wrong answers.
client() {
	local id=$1 m=$2 n=$3 w=$4 i out bad=0 every cond want
	every=$(((n + w - 1) / (w > 0 ? w : 1)))
	for ((i = 0; i < n; i++)); do
		out=$( (exec 3<>"$VMS/$m/exec" && printf 'echo %s-%s' "$id" "$i" >&3 && cat <&3) 2>&1)
		if [ "$out" != "$id-$i" ]; then
			bad=$((bad + 1))
			echo "client $id: command $i answered '$out'"
		fi
		if [ "$w" -gt 0 ] && [ $((i % every)) = 0 ]; then
			w=$((w - 1))
			if [ $((i / every % 2)) = 0 ]; then
				cond='status running' want='status running'
			else
				cond='succeeds test -d /tmp' want=''
			fi
			out=$( (exec 3<>"$VMS/$m/wait" && printf '%s' "$cond" >&3 && cat <&3) 2>&1)
			if [ "$out" != "$want" ]; then
				bad=$((bad + 1))
				echo "client $id: wait '$cond' answered '$out'"
			fi
		fi
	done
	# waits left over when n < w * every
	for ((; w > 0; w--)); do
		out=$( (exec 3<>"$VMS/$m/wait" && printf 'status running' >&3 && cat <&3) 2>&1)
		[ "$out" = 'status running' ] || { bad=$((bad + 1)); echo "client $id: wait answered '$out'"; }
	done
	echo "bad $bad"
}

# phase COMMANDS WAITS: one round over every client at once; 0 if every
# answer was right.
phase() {
	local n_clients=$((4 * PER_MACHINE)) k=0 m j pids=() bad=0 f
	for m in $MACHINES; do
		for ((j = 0; j < PER_MACHINE; j++)); do
			# the remainder goes to the first clients
			local c=$(($1 / n_clients + (k < $1 % n_clients ? 1 : 0)))
			local w=$(($2 / n_clients + (k < $2 % n_clients ? 1 : 0)))
			client "$m$j" "$m" "$c" "$w" >"$work/client.$k" 2>&1 &
			pids+=($!)
			k=$((k + 1))
		done
	done
	wait "${pids[@]}"
	for ((j = 0; j < k; j++)); do
		f=$work/client.$j
		if ! grep -qx 'bad 0' "$f"; then
			head -n 5 "$f" | sed 's/^/#   /' >&2
			bad=1
		fi
	done
	return $bad
}

mkdir -p "$VMS"
"$TOP/attestfs" -f -o "config=$work/machines.json,state_dir=$STATE,accel=tcg" "$VMS" \
	>"$work/daemon.log" 2>&1 &
daemon=$!
for ((i = 0; i < 400; i++)); do
	[ -e "$VMS/ctl" ] && break
	kill -0 "$daemon" 2>/dev/null || die "the daemon exited"
	sleep 0.05
done
[ -e "$VMS/ctl" ] || die "no mount"
t0=$SECONDS
echo start-all >"$VMS/ctl" || die "start-all failed"
say "4 tiny machines running after $((SECONDS - t0)) s; daemon pid $daemon"

t0=$SECONDS
phase "$WARMUP" $((WARMUP / 10)) || die "wrong answers in the warm-up"
rss0=$(rss_kib) fds0=$(n_fds)
say "after the warm-up ($WARMUP commands, $((WARMUP / 10)) waits, $((SECONDS - t0)) s): RSS $rss0 KiB, $fds0 fds"
printf '%-28s %10s %6s %8s\n' phase 'RSS KiB' fds seconds
printf '%-28s %10s %6s %8s\n' start "$rss0" "$fds0" 0

t_all=$SECONDS wrong=0 done_c=0 done_w=0
for ((r = 0; r < ROUNDS; r++)); do
	c=$((COMMANDS / ROUNDS + (r < COMMANDS % ROUNDS ? 1 : 0)))
	w=$((WAITS / ROUNDS + (r < WAITS % ROUNDS ? 1 : 0)))
	t0=$SECONDS
	phase "$c" "$w" || wrong=1
	done_c=$((done_c + c)) done_w=$((done_w + w))
	printf '%-28s %10s %6s %8s\n' "$done_c commands, $done_w waits" "$(rss_kib)" "$(n_fds)" $((SECONDS - t0))
done
rss1=$(rss_kib) fds1=$(n_fds)
secs=$((SECONDS - t_all))
say "$COMMANDS commands and $WAITS waits over 4 machines in $secs s"
say "daemon RSS: $rss0 KiB at start, $rss1 KiB at the end ($((rss1 - rss0)) KiB)"
say "daemon fds: $fds0 at start, $fds1 at the end"
status=0
if [ "$wrong" != 0 ]; then
	say "FAIL: some answers were wrong (above)"
	status=1
fi
if [ $((rss1 - rss0)) -gt "$RSS_SLACK" ]; then
	say "FAIL: RSS grew by more than $RSS_SLACK KiB"
	status=1
fi
if [ "$fds1" -gt "$fds0" ]; then
	say "FAIL: open file descriptors grew"
	ls -l "/proc/$daemon/fd" | sed 's/^/#   /' >&2
	status=1
fi
[ "$status" = 0 ] && say "PASS: flat"
exit $status
