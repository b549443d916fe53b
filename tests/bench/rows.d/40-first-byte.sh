# the first-byte row (issue 12): with the guest agent (the default), how soon
# a long command's first output reaches a reader through the mount. bash
# holds a/exec open (exec 3<>), writes `echo x; sleep 0.2` and times from
# that write to the first read returning ($EPOCHREALTIME, no fork per round),
# then reads to EOF. Nothing is subtracted: the time includes the command's
# start in the guest, which is what a reader waits for.
FB_VMS=$ROW_DIR/vms
FB_DAEMON=

fb_cleanup() {
	bench_stop_mount "$FB_VMS" "$FB_DAEMON" "$ROW_DIR/state"
}
trap fb_cleanup EXIT

# fb_rounds N: N rounds after a warm-up, one time in ms a line.
fb_rounds() {
	local i t0 t1 line
	for ((i = 0; i < 5 + $1; i++)); do
		exec 3<>"$FB_VMS/a/exec" || return 1
		printf 'echo x; sleep 0.2' >&3
		t0=$EPOCHREALTIME
		read -r -u 3 line || return 1
		t1=$EPOCHREALTIME
		while read -r -u 3 _; do :; done
		exec 3>&-
		[ "$line" = x ] || return 1
		[ "$i" -lt 5 ] || awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.3f\n", (b - a) * 1000 }'
	done
}

fb_row() {
	local n=$(((ROUNDS + 9) / 10)) stats med p99
	mkdir -p "$FB_VMS"
	printf '{"machines": {%s}}\n' "$(machine_json a)" >"$ROW_DIR/machines.json"
	"$TOP/attestfs" -f -o "config=$ROW_DIR/machines.json,state_dir=$ROW_DIR/state" \
		"$FB_VMS" >"$ROW_DIR/daemon.log" 2>&1 &
	FB_DAEMON=$!
	bench_wait_mount "$FB_VMS" "$ROW_DIR/daemon.log" || return 1
	echo start >"$FB_VMS/a/ctl" || return 1
	say "first byte: $n x 'echo x; sleep 0.2' through the mount"
	stats=$(fb_rounds "$n" | bench_stats) || return 1
	read -r med p99 _ <<<"$stats"
	bench_row id=first_byte_agent unit=ms rounds="$n" median="$med" p99="$p99" \
		target="median <= 50, p99 <= 50" \
		figure="first byte through the mount with the guest agent: \`echo x; sleep 0.2\`, from the exec write to the first read returning (bash, exec 3<>, nothing subtracted)"
}

fb_row
