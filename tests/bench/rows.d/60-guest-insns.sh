# shellcheck shell=bash
# the guest-instruction rows (issue 12): how many instructions the tiny guest
# executes for one `true` through the mount, and for the subshell alone
# (fork, exit and wait in busybox ash) that each command runs in. QEMU
# counts them for us (build/guest-insns.so, a TCG plugin: an inline counter
# on each translation block). Under TCG the guest's time is mostly its
# instructions, and their count does not swing with the host's load as the
# timed rows do: a change to the guest side of the protocol shows here in
# one run. The machine runs alone on its own mount, after the timed rows.
# BENCH_ONLY=insns runs these rows alone.
GI_VMS=$ROW_DIR/vms
GI_PROF=$ROW_DIR/prof
GI_DAEMON=

gi_cleanup() {
	bench_stop_mount "$GI_VMS" "$GI_DAEMON" "$ROW_DIR/state"
}
trap gi_cleanup EXIT

# gi_mark LABEL N: what the guest ran since the last mark, per N, into
# $GI_PROF/LABEL.txt ("-": counted, not written). The plugin takes the mark
# file when it has written the counts.
gi_mark() {
	echo "$1 $2" >"$GI_PROF/mark.tmp" && mv "$GI_PROF/mark.tmp" "$GI_PROF/mark" || return 1
	for _ in $(seq 500); do
		[ -e "$GI_PROF/mark" ] || return 0
		sleep 0.02
	done
	say "guest instructions: the plugin took no mark for 10 s"
	return 1
}

# gi_exec CMD: CMD's stdout, through the mount.
gi_exec() {
	(exec 3<>"$GI_VMS/a/exec" && printf '%s' "$1" >&3 && cat <&3)
}

# gi_loop BODY N: BODY N times in one command, as ash runs a test's loop.
gi_loop() {
	gi_exec "i=0; while [ \$i -lt $2 ]; do $1; i=\$((i + 1)); done" >/dev/null
}

gi_mount() {
	local qemu=${ATTESTFS_QEMU:-qemu-system-x86_64}
	mkdir -p "$GI_VMS" "$GI_PROF"
	printf '#!/bin/sh\nexec %s -plugin %s,dir=%s "$@"\n' "$qemu" \
		"$TOP/build/guest-insns.so" "$GI_PROF" >"$ROW_DIR/qemu"
	chmod +x "$ROW_DIR/qemu"
	printf '{"machines": {%s}}\n' "$(machine_json a)" >"$ROW_DIR/machines.json"
	ATTESTFS_QEMU=$ROW_DIR/qemu "$TOP/attestfs" -f \
		-o "config=$ROW_DIR/machines.json,state_dir=$ROW_DIR/state" \
		"$GI_VMS" >"$ROW_DIR/daemon.log" 2>&1 &
	GI_DAEMON=$!
	bench_wait_mount "$GI_VMS" "$ROW_DIR/daemon.log" || return 1
	echo start >"$GI_VMS/a/ctl" || { say "guest instructions: a did not start: $(tail -n 3 "$ROW_DIR/state/a/log")"; return 1; }
}

# gi_top FILE: its kernel functions, "NAME INSNS" a line, as one line.
gi_top() {
	awk '$1 == "sym" { printf "%s%s %s", sep, $2, $3; sep = ", " } END { print "" }' "$1"
}

gi_rows() {
	local n=$ROUNDS t=$GI_PROF/true.txt s=$GI_PROF/subshells.txt l=$GI_PROF/loop.txt
	local insns kernel sub share
	if [ "$BACKEND" = mock ]; then
		bench_row id=guest_insns_true result=skip \
			figure="guest instructions per \`true\`: no guest (BENCH_BACKEND=mock)"
		return 0
	fi
	make -s --no-print-directory build/guest-insns.so >&2 || return 1
	if "${ATTESTFS_QEMU:-qemu-system-x86_64}" -plugin "$TOP/build/guest-insns.so" -version 2>&1 |
		grep -q 'invalid option'; then
		bench_row id=guest_insns_true result=skip \
			figure="guest instructions per \`true\`: this QEMU loads no TCG plugins"
		return 0
	fi
	gi_mount || return 1
	# The guest's own addresses (KASLR), for the plugin's kernel functions.
	gi_exec 'cat /proc/kallsyms' >"$GI_PROF/kallsyms" || return 1
	"$TOP/build/bench-mount-client" true "$GI_VMS/a/exec" "$WARMUP" 0 >/dev/null || return 1
	say "guest instructions: $n x true through the mount (C client), then $n subshells in one command"
	gi_mark - 1 &&
		"$TOP/build/bench-mount-client" true "$GI_VMS/a/exec" "$n" 0 >/dev/null &&
		gi_mark true "$n" &&
		gi_loop '( : ) & wait $!' "$n" && gi_mark subshells "$n" &&
		gi_loop ':' "$n" && gi_mark loop "$n" || return 1
	insns=$(field "$t" insns 1) && kernel=$(field "$t" kernel 1) &&
		sub=$(awk -v a="$(field "$s" insns 1)" -v b="$(field "$l" insns 1)" \
			'BEGIN { printf "%.0f", a - b }') || return 1
	share=$(calc "($insns - $sub) / $insns * 100")
	say "guest instructions per true: $insns ($(calc "$kernel / $insns * 100") % in the kernel, $(field "$t" tb_execs 1) blocks run, $(field "$t" translations 1) translated); the subshell alone $sub; the rest ($share %) is the protocol"
	say "  its kernel functions: $(gi_top "$t")"
	bench_row id=guest_insns_true unit="k insns" rounds="$n" median="$(calc "$insns / 1000")" \
		p99="$(calc "$insns / 1000")" kernel_pct="$(calc "$kernel / $insns * 100")" \
		tb_execs="$(field "$t" tb_execs 1)" translations="$(field "$t" translations 1)" \
		reference="the subshell alone: $(calc "$sub / 1000") k; the protocol's part: $share %" \
		figure="guest instructions per \`true\` through the mount, tiny guest (counted by QEMU: one count, not a time)"
	bench_row id=guest_insns_subshell unit="k insns" rounds="$n" median="$(calc "$sub / 1000")" \
		p99="$(calc "$sub / 1000")" \
		figure="guest instructions of the subshell alone: \`( : ) & wait \$!\` in busybox ash, less the loop around it"
}

gi_rows
