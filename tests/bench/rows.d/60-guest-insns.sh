# shellcheck shell=bash
# the guest-instruction rows (issue 12): how many instructions a guest
# executes for one `true` through the mount, and for the subshell alone
# (fork, exit and wait) that each command runs in: on the tiny guest (busybox
# ash) and, where it is built, on the debian guest started as a stock NixOS
# VM (bash on the ports, as tests/bench/nixos.sh times it). QEMU counts them
# for us (build/guest-insns.so, a TCG plugin: an inline counter on each
# translation block). Under TCG the guest's time is mostly its instructions,
# and their count does not swing with the host's load as the timed rows do:
# a change to the guest side of the protocol shows here in one run. The
# machines run on their own mount, after the timed rows, one at a time.
# BENCH_ONLY=insns runs these rows alone.
GI_VMS=$ROW_DIR/vms
GI_DAEMON=

gi_cleanup() {
	bench_stop_mount "$GI_VMS" "$GI_DAEMON" "$ROW_DIR/state"
}
trap gi_cleanup EXIT

# gi_mark M LABEL N: what M's guest ran since its last mark, per N, into
# $ROW_DIR/prof-M/LABEL.txt ("-": counted, not written). The plugin takes
# the mark file when it has written the counts.
gi_mark() {
	local d=$ROW_DIR/prof-$1
	echo "$2 $3" >"$d/mark.tmp" && mv "$d/mark.tmp" "$d/mark" || return 1
	for _ in $(seq 500); do
		[ -e "$d/mark" ] || return 0
		sleep 0.02
	done
	say "guest instructions: the plugin in $1's QEMU took no mark for 10 s"
	return 1
}

# gi_exec M CMD: CMD's stdout, through the mount.
gi_exec() {
	(exec 3<>"$GI_VMS/$1/exec" && printf '%s' "$2" >&3 && cat <&3)
}

# gi_loop M BODY N: BODY N times in one command, as a test's loop runs.
gi_loop() {
	gi_exec "$1" "i=0; while [ \$i -lt $3 ]; do $2; i=\$((i + 1)); done" >/dev/null
}

# gi_wrapper FILE QEMU DIR: a QEMU that loads the plugin, writing to DIR.
gi_wrapper() {
	mkdir -p "$3" "$(dirname "$1")"
	printf '#!/bin/sh\nexec %q -plugin %q "$@"\n' "$2" \
		"$TOP/build/guest-insns.so,dir=$3" >"$1"
	chmod +x "$1"
}

# gi_mount QEMU [NIXOS_SCRIPT]: a (the tiny guest) through an ATTESTFS_QEMU
# wrapper; nixos, given its start script, whose QEMU is found first in PATH.
gi_mount() {
	local nixos=
	mkdir -p "$GI_VMS"
	gi_wrapper "$ROW_DIR/qemu" "$1" "$ROW_DIR/prof-a"
	if [ -n "${2:-}" ]; then
		gi_wrapper "$ROW_DIR/shim/qemu-system-x86_64" "$1" "$ROW_DIR/prof-nixos"
		nixos=$(printf ', "nixos": {"start_command": "%s", "shell_channel": "virtconsole"}' "$2")
	fi
	printf '{"machines": {%s%s}}\n' "$(machine_json a)" "$nixos" >"$ROW_DIR/machines.json"
	# accel=tcg: run-nixos-vm runs QEMU with -accel tcg (as in nixos.sh)
	PATH=$ROW_DIR/shim:$PATH ATTESTFS_QEMU=$ROW_DIR/qemu "$TOP/attestfs" -f \
		-o "config=$ROW_DIR/machines.json,state_dir=$ROW_DIR/state,accel=tcg" \
		"$GI_VMS" >"$ROW_DIR/daemon.log" 2>&1 &
	GI_DAEMON=$!
	bench_wait_mount "$GI_VMS" "$ROW_DIR/daemon.log"
}

# gi_count M: start M, count $ROUNDS `true`s from the C client, then as
# many subshells and empty rounds of the same loop; halt M.
gi_count() {
	local m=$1 n=$ROUNDS
	echo start >"$GI_VMS/$m/ctl" ||
		{ say "guest instructions: $m did not start: $(tail -n 3 "$ROW_DIR/state/$m/log")"; return 1; }
	# A NixOS guest answers while systemd still starts services: count
	# the settled guest, as tests/bench/nixos.sh times it.
	bench_settle "$GI_VMS" "$m" || return 1
	# The guest's own addresses (KASLR), for the plugin's kernel functions.
	gi_exec "$m" 'cat /proc/kallsyms' >"$ROW_DIR/prof-$m/kallsyms" || return 1
	"$TOP/build/bench-mount-client" true "$GI_VMS/$m/exec" "$WARMUP" 0 >/dev/null || return 1
	say "guest instructions, $m: $n x true through the mount (C client), then $n subshells in one command"
	gi_mark "$m" - 1 &&
		"$TOP/build/bench-mount-client" true "$GI_VMS/$m/exec" "$n" 0 >/dev/null &&
		gi_mark "$m" true "$n" &&
		gi_loop "$m" '( : ) & wait $!' "$n" && gi_mark "$m" subshells "$n" &&
		gi_loop "$m" ':' "$n" && gi_mark "$m" loop "$n" || return 1
	# A command of 200 bytes, as a test's are (bash on a port takes it raw:
	# shell_command), from bash through the mount; only the guest counts.
	local i long
	long="true $(printf '%195s' '')"
	gi_mark "$m" - 1 || return 1
	for ((i = 0; i < n; i++)); do
		gi_exec "$m" "$long" || return 1
	done
	gi_mark "$m" long "$n" || return 1
	echo halt >"$GI_VMS/$m/ctl"
}

# gi_top FILE: its kernel functions, "NAME INSNS" a line, as one line.
gi_top() {
	awk '$1 == "sym" { printf "%s%s %s", sep, $2, $3; sep = ", " } END { print "" }' "$1"
}

# gi_row M ID SHELL GUEST: the rows of gi_count M.
gi_row() {
	local d=$ROW_DIR/prof-$1 id=$2 insns kernel sub share long
	insns=$(field "$d/true.txt" insns 1) && kernel=$(field "$d/true.txt" kernel 1) &&
		long=$(field "$d/long.txt" insns 1) &&
		sub=$(awk -v a="$(field "$d/subshells.txt" insns 1)" \
			-v b="$(field "$d/loop.txt" insns 1)" 'BEGIN { printf "%.0f", a - b }') ||
		return 1
	share=$(calc "($insns - $sub) / $insns * 100")
	say "guest instructions per true, $1: $insns ($(calc "$kernel / $insns * 100") % in the kernel, $(field "$d/true.txt" tb_execs 1) blocks run, $(field "$d/true.txt" translations 1) translated); the subshell alone $sub; the rest ($share %) is the protocol"
	say "  its kernel functions: $(gi_top "$d/true.txt")"
	bench_row id="$id" unit="k insns" rounds="$ROUNDS" median="$(calc "$insns / 1000")" \
		p99="$(calc "$insns / 1000")" kernel_pct="$(calc "$kernel / $insns * 100")" \
		tb_execs="$(field "$d/true.txt" tb_execs 1)" \
		translations="$(field "$d/true.txt" translations 1)" \
		reference="the subshell alone: $(calc "$sub / 1000") k; the protocol's part: $share %" \
		figure="guest instructions per \`true\` through the mount, $4 (counted by QEMU: one count, not a time)"
	bench_row id="${id%_true}_long" unit="k insns" rounds="$ROUNDS" \
		median="$(calc "$long / 1000")" p99="$(calc "$long / 1000")" \
		reference="\`true\`: $(calc "$insns / 1000") k" \
		figure="guest instructions per 200-byte command through the mount, $4"
	bench_row id="${id%_true}_subshell" unit="k insns" rounds="$ROUNDS" \
		median="$(calc "$sub / 1000")" p99="$(calc "$sub / 1000")" \
		figure="guest instructions of the subshell alone, $4: \`( : ) & wait \$!\` in $3, less the loop around it"
}

gi_rows() {
	local qemu script=$GUESTS/debian/run-nixos-vm
	if [ "$BACKEND" = mock ]; then
		bench_row id=guest_insns_true result=skip \
			figure="guest instructions per \`true\`: no guest (BENCH_BACKEND=mock)"
		return 0
	fi
	make -s --no-print-directory build/guest-insns.so >&2 || return 1
	# Resolved now: the shim below comes first in PATH.
	qemu=${ATTESTFS_QEMU:-$(command -v qemu-system-x86_64)} || return 1
	if "$qemu" -plugin "$TOP/build/guest-insns.so" -version 2>&1 | grep -q 'invalid option'; then
		bench_row id=guest_insns_true result=skip \
			figure="guest instructions per \`true\`: this QEMU loads no TCG plugins"
		return 0
	fi
	[ -x "$script" ] || script=
	gi_mount "$qemu" "$script" || return 1
	gi_count a || return 1
	gi_row a guest_insns_true "busybox ash" "tiny guest" || return 1
	if [ -z "$script" ]; then
		bench_row id=guest_insns_nixos_true result=skip \
			figure="guest instructions per \`true\`, stock NixOS-style guest: no debian guest (make guest-debian)"
		return 0
	fi
	gi_count nixos || return 1
	gi_row nixos guest_insns_nixos_true bash "stock NixOS-style guest (run-nixos-vm, the pool)"
}

gi_rows
