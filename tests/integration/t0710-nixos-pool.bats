#!/usr/bin/env bats
# A stock NixOS guest gets the pool (machine/bootstrap.c): attestfs adds its
# attestfs.shell.N virtserialports to a virtconsole machine's VMM and, once
# the one shell on hvc0 answers, starts a shell on each of them from there.
# On tiny-hvc0 (busybox, NixOS's service body on hvc0) and on the debian guest
# as a stock NixOS test VM (run-nixos-vm: bash on hvc0, nothing on the
# ports). Without the ports (a start script that passes only some of
# QEMU_OPTS) hvc0 serves alone, as before, and the log says why.

load helpers

setup_file() {
	export WORK=$BATS_FILE_TMPDIR
	# An older start script: it passes the driver's sockets on, but not
	# the devices it does not know (the attestfs.shell virtserialports).
	cat >"$WORK/run-bare-vm" <<SCRIPT
#!/bin/sh
opts= dev=
for w in \$QEMU_OPTS; do
	if [ -n "\$dev" ]; then
		dev=
		case \$w in virtserialport,*) continue ;; esac
		opts="\$opts -device"
	fi
	if [ "\$w" = -device ]; then dev=1; continue; fi
	opts="\$opts \$w"
done
exec qemu-system-x86_64 -accel tcg -machine q35 -cpu max -m 256 \\
  -kernel $GUESTS/tiny-hvc0/vmlinuz -initrd $GUESTS/tiny-hvc0/initrd.gz \\
  -append "console=ttyS0 quiet panic=-1" \$opts "\$@"
SCRIPT
	chmod +x "$WORK/run-bare-vm"
	local nixdeb=
	if [ -x "$GUESTS/debian/run-nixos-vm" ]; then
		nixdeb=", \"nixdeb\": {\"start_command\": \"$GUESTS/debian/run-nixos-vm\",
			\"shell_channel\": \"virtconsole\"},
		\"nixhvc0\": {\"start_command\": \"$GUESTS/debian/run-nixos-vm\",
			\"shell_channel\": \"virtconsole\", \"shells\": 1, \"guest_agent\": false}"
	fi
	mount_attestfs "{\"machines\": {
		\"stock\": {\"kernel\": \"$GUESTS/tiny-hvc0/vmlinuz\", \"initrd\": \"$GUESTS/tiny-hvc0/initrd.gz\",
			\"append\": \"console=ttyS0 quiet panic=-1\", \"shell_channel\": \"virtconsole\"},
		\"bare\": {\"start_command\": \"$WORK/run-bare-vm\", \"shell_channel\": \"virtconsole\"}
		$nixdeb}}"
}

teardown_file() {
	umount_attestfs
}

# The CPU load of the hvc0 test: started and stopped by pid, also when it fails.
teardown() {
	local p
	for p in $(cat "$BATS_TEST_TMPDIR/hogs" 2>/dev/null); do
		kill "$p" 2>/dev/null || true
	done
	rm -f "$BATS_TEST_TMPDIR/hogs"
}

# concurrent M: two commands that each wait (bounded) for the other's file,
# B answering A only once it saw A's: both see it only when they run at once.
# Serialised, whichever runs first waits in vain, so A says "alone" in either
# order (B says "done" when A ran first, "alone" when it ran first itself).
concurrent() {
	local m=$1 t=$BATS_TEST_NUMBER
	tx "$VMS/$m/exec" "rm -f /tmp/a$t /tmp/b$t"
	tx_bg A "$VMS/$m/exec" "touch /tmp/a$t; i=0; while [ ! -e /tmp/b$t ] && [ \$i -lt 200 ]; do sleep 0.05; i=\$((i + 1)); done; [ -e /tmp/b$t ] && echo A-saw-B || echo A-alone"
	tx_bg B "$VMS/$m/exec" "i=0; while [ ! -e /tmp/a$t ] && [ \$i -lt 200 ]; do sleep 0.05; i=\$((i + 1)); done; if [ -e /tmp/a$t ]; then touch /tmp/b$t; echo B-done; else echo B-alone; fi"
	wait_until "$TEST_TIMEOUT" test -s "$BATS_TEST_TMPDIR/A.rc"
	wait_until "$TEST_TIMEOUT" test -s "$BATS_TEST_TMPDIR/B.rc"
	cat "$BATS_TEST_TMPDIR/A.out" "$BATS_TEST_TMPDIR/B.out"
}

# loops M: the port shells' respawn loops running in M's guest
loops() {
	tx "$VMS/$1/exec" "for p in /proc/[0-9]*; do tr '\\0' ' ' <\$p/cmdline; echo; done 2>/dev/null | grep -c 'attestfs-shel[l] /dev/vport'"
}

@test "tiny-hvc0: the stock backdoor on hvc0 starts the pool on the ports" {
	echo start >"$VMS/stock/ctl"
	run cat "$VMS/stock/info"
	assert_line 'shell_channel virtconsole'
	assert_line 'channel virtserialport (started from hvc0)'
	assert_line 'shells 4/4'
	# a command's shell reads a port, not hvc0
	run tx "$VMS/stock/exec" 'readlink /proc/$$/fd/0'
	assert_output --regexp '^/dev/vport[0-9]+p[0-9]+$'
	run grep -c 'shells: 4 on the attestfs.shell virtserialports, started from hvc0' "$VMS/stock/log"
	assert_output 1
	run loops stock
	assert_output 4
}

@test "tiny-hvc0: two commands run at once on the pool" {
	echo start >"$VMS/stock/ctl"
	run concurrent stock
	assert_output $'A-saw-B\nB-done'
}

@test "start script without the ports: hvc0 alone, commands one at a time, the log says why" {
	echo start >"$VMS/bare/ctl"
	run cat "$VMS/bare/info"
	assert_line --regexp '^channel virtconsole \((no virtserialport is named attestfs\.shell\.N in the guest|the guest has no /sys/class/virtio-ports .*)\)$'
	assert_line 'shells 1/1'
	run tx "$VMS/bare/exec" 'readlink /proc/$$/fd/0'
	assert_output /dev/hvc0
	run grep -F 'shells: hvc0 alone, commands one at a time (' "$VMS/bare/log"
	assert_success
	# serialised: the first of them waits for the other in vain (its bound)
	run concurrent bare
	assert_line --index 0 A-alone
	echo halt >"$VMS/bare/ctl"
}

@test "tiny-hvc0: a restore keeps the pool (the loops live on in guest RAM)" {
	echo start >"$VMS/stock/ctl"
	tx "$VMS/stock/exec" 'echo saved > /tmp/mark'
	echo 'snapshot p' >"$VMS/stock/ctl"
	tx "$VMS/stock/exec" 'echo changed > /tmp/mark'
	wait_until "$TEST_TIMEOUT" grep -qx 'spare p' "$VMS/stock/info"
	echo 'restore p' >"$VMS/stock/ctl"
	assert_equal "$(tx "$VMS/stock/exec" 'cat /tmp/mark')" saved
	run cat "$VMS/stock/info"
	assert_line 'restored_from p'
	assert_line 'channel virtserialport (started from hvc0)'
	# the same loops, none added by a second bootstrap
	run loops stock
	assert_output 4
	run concurrent stock
	assert_output $'A-saw-B\nB-done'
}

@test "tiny-hvc0: after a guest reboot the pool is started again" {
	echo start >"$VMS/stock/ctl"
	boots=$(sed -n 's/^boots //p' "$VMS/stock/info")
	tx "$VMS/stock/exec" 'touch /tmp/before-reboot'
	echo reboot >"$VMS/stock/ctl"
	run tx "$VMS/stock/exec" 'ls /tmp/before-reboot 2>&1 || echo rebooted'
	assert_output --partial rebooted
	run cat "$VMS/stock/info"
	assert_line 'channel virtserialport (started from hvc0)'
	run loops stock
	assert_output 4
	run concurrent stock
	assert_output $'A-saw-B\nB-done'
	echo halt >"$VMS/stock/ctl"
}

@test "debian as a stock NixOS VM (run-nixos-vm): bash on hvc0, the pool on the ports" {
	[ -x "$GUESTS/debian/run-nixos-vm" ] || skip "the debian guest is not built (make guest-debian)"
	echo start >"$VMS/nixdeb/ctl"
	run cat "$VMS/nixdeb/info"
	assert_line 'channel virtserialport (started from hvc0)'
	assert_line 'shells 4/4'
	run tx "$VMS/nixdeb/exec" 'hostname; systemctl is-active backdoor.service attestfs-backdoor.service; pgrep -fc -- "--norc /dev/hvc0"; readlink /proc/$$/fd/0'
	assert_line --index 0 nixos
	assert_line --index 1 active
	assert_line --index 2 inactive
	assert_line --index 3 1
	assert_line --index 4 --regexp '^/dev/vport[0-9]+p[0-9]+$'
	run concurrent nixdeb
	assert_output $'A-saw-B\nB-done'
	echo halt >"$VMS/nixdeb/ctl"
}

# bash reads its commands from the port a byte a syscall: a long command
# goes raw after a header line and bash takes it in one read -N
# (shell_command). _atxn leaves its text in $_atcm, which the command's
# subshell inherits: "raw" shows that way was taken. On hvc0 (a tty whose
# bytes may be lost) it never is.
@test "debian as a stock NixOS VM: a long command goes raw to bash on a port, the same command quoted on hvc0" {
	[ -x "$GUESTS/debian/run-nixos-vm" ] || skip "the debian guest is not built (make guest-debian)"
	local cmd want m
	cmd=$(cat <<'CMD'
printf '%s|' "$HOME" 'it'\''s' "a \"b\" \\c"; cat <<'EOF'
$x `y` \z
EOF
	echo "${_atcm:+raw}"; echo done # and enough bytes to go raw
CMD
)
	want=$(printf '%s\n' '/root|it'\''s|a "b" \c|$x `y` \z' raw done)
	[ ${#cmd} -ge 80 ]
	for m in nixdeb nixhvc0; do
		echo start >"$VMS/$m/ctl"
		run tx "$VMS/$m/exec" "$cmd"
		assert_success
		[ $m = nixdeb ] || want=${want/$'\nraw'/$'\n'}
		assert_output "$want"
		# and the next command, quoted, still finds the line after it
		run tx "$VMS/$m/exec" 'echo next'
		assert_output next
		echo halt >"$VMS/$m/ctl"
	done
}

# bash on hvc0 lost about one `true` in 10-40 on a busy host (EIO, "output
# was lost or garbled"): the staged path's output files were gone ('!').
# The per-command watchdog, killed with SIGTERM right after a quick command,
# had not run since its fork and so ran the shell's EXIT trap, which removes
# the shell's directory. Two busy loops on the host's cores make that window
# wide; no round may fail.
@test "debian as a stock NixOS VM, hvc0 alone under bash: 200 quick commands on a busy host, none lost" {
	[ -x "$GUESTS/debian/run-nixos-vm" ] || skip "the debian guest is not built (make guest-debian)"
	local i fails=0 out
	echo start >"$VMS/nixhvc0/ctl"
	run grep -E '^channel virtconsole' "$VMS/nixhvc0/info"
	assert_success
	for i in 1 2; do
		(while :; do :; done) &
		echo $! >>"$BATS_TEST_TMPDIR/hogs"
	done
	for ((i = 0; i < 200; i++)); do
		out=$(exec 3<>"$VMS/nixhvc0/exec" && printf true >&3 && cat <&3) || fails=$((fails + 1))
	done
	teardown
	run grep -c 'lost or garbled' "$VMS/nixhvc0/log"
	echo "# $fails of 200 failed; log: $output" >&3
	assert_equal "$fails" 0
	echo halt >"$VMS/nixhvc0/ctl"
}
