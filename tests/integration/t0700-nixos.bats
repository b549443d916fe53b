#!/usr/bin/env bats
# The NixOS paths: a guest with NixOS's stock instrumentation (one raw-tty
# shell on hvc0, where QEMU drops bytes when the host is slow), and a machine
# started by a run-<name>-vm style script with the sockets in QEMU_OPTS.

load helpers

setup_file() {
	export WORK=$BATS_FILE_TMPDIR
	# A start script in the style of nixpkgs' qemu-vm.nix run-<name>-vm.
	cat >"$WORK/run-scripted-vm" <<SCRIPT
#!/bin/sh
# as qemu-vm.nix: the VM's own arguments, then the driver's in \$QEMU_OPTS
exec qemu-system-x86_64 -accel tcg -machine q35 -cpu max -m 256 \\
  -kernel $GUESTS/tiny/vmlinuz -initrd $GUESTS/tiny/initrd.gz \\
  -append "console=ttyS0 quiet panic=-1 attestfs.hostname=scripted" \\
  \$QEMU_OPTS "\$@"
SCRIPT
	chmod +x "$WORK/run-scripted-vm"
	mount_attestfs "{\"machines\": {
		\"nixos\": {\"kernel\": \"$GUESTS/tiny-hvc0/vmlinuz\", \"initrd\": \"$GUESTS/tiny-hvc0/initrd.gz\",
			\"append\": \"console=ttyS0 quiet panic=-1\", \"shell_channel\": \"virtconsole\", \"shells\": 1},
		\"scripted\": {\"start_command\": \"$WORK/run-scripted-vm\"}}}"
}

teardown_file() {
	umount_attestfs
}

@test "hvc0: the stock NixOS backdoor answers commands" {
	echo start >"$VMS/nixos/ctl"
	run grep -E '^shell_channel virtconsole$' "$VMS/nixos/info"
	assert_success
	run tx "$VMS/nixos/exec" 'echo hello from hvc0; readlink /proc/$$/fd/0'
	assert_output $'hello from hvc0\n/dev/hvc0'
}

@test "hvc0: a restore through the waiting VMM resynchronises the one shell" {
	echo start >"$VMS/nixos/ctl"
	tx "$VMS/nixos/exec" 'echo saved > /tmp/mark'
	echo 'snapshot s' >"$VMS/nixos/ctl"
	tx "$VMS/nixos/exec" 'echo changed > /tmp/mark'
	wait_until "$TEST_TIMEOUT" grep -qx 'spare s' "$VMS/nixos/info"
	echo 'restore s' >"$VMS/nixos/ctl"
	assert_equal "$(tx "$VMS/nixos/exec" 'cat /tmp/mark')" saved
	assert_equal "$(sed -n 's/^restored_from //p' "$VMS/nixos/info")" s
}

@test "hvc0: exact bytes, statuses, and serialised concurrency" {
	tx "$VMS/nixos/exec" 'head -c 1000000 /dev/urandom > /tmp/blob'
	guest=$(tx "$VMS/nixos/exec" 'sha256sum /tmp/blob' | cut -d' ' -f1)
	# QEMU drops console bytes when the host falls behind (a loaded CI
	# host can): then the read must fail with EIO, never return wrong bytes.
	if tx "$VMS/nixos/exec" 'cat /tmp/blob' >"$BATS_TEST_TMPDIR/blob" 2>"$BATS_TEST_TMPDIR/err"; then
		host=$(sha256sum <"$BATS_TEST_TMPDIR/blob" | cut -d' ' -f1)
		assert_equal "$host" "$guest"
	else
		run cat "$BATS_TEST_TMPDIR/err"
		assert_output --partial 'Input/output error'
		run grep 'lost or garbled' "$VMS/nixos/log"
		assert_success
	fi
	run tx "$VMS/nixos/exec" 'exit 5'
	assert_failure
	for i in 1 2 3 4 5; do
		(tx "$VMS/nixos/exec" "echo n-$i" >"$BATS_TEST_TMPDIR/o.$i") &
	done
	wait
	for i in 1 2 3 4 5; do
		assert_equal "$(cat "$BATS_TEST_TMPDIR/o.$i")" "n-$i"
	done
}

@test "hvc0: a command past its deadline is killed in the guest, the shell is free again" {
	echo start >"$VMS/nixos/ctl"
	echo 'timeout 3' >"$VMS/nixos/ctl"
	run tx "$VMS/nixos/exec" 'sleep 60; echo late'
	assert_failure
	assert_output --partial 'timed out'
	# the one shell answers within the same 3 s: nothing is left running
	run tx "$VMS/nixos/exec" 'echo free'
	assert_success
	assert_output free
	# the victim is gone, and no watchdog leaves a process behind
	tx "$VMS/nixos/exec" true
	run tx "$VMS/nixos/exec" "ps | grep -c '[s]leep' || :"
	assert_output 0
	echo 'timeout 900' >"$VMS/nixos/ctl"
}

@test "start_command: a run-<name>-vm script boots with our sockets" {
	echo start >"$VMS/scripted/ctl"
	run tx "$VMS/scripted/exec" 'hostname'
	assert_output scripted
	# mounted with accel=tcg: the script's own -cpu max is tuned for TCG
	run tx "$VMS/scripted/exec" 'grep -m1 "^flags" /proc/cpuinfo'
	assert_output --partial ' sse2 '
	refute_output --regexp ' (erms|la57|smap)( |$)'
	run cat "$VMS/scripted/info"
	assert_line --regexp '^pid [0-9]+$'
	pid=$(sed -n 's/^pid //p' "$VMS/scripted/info")
	run cat "/proc/$pid/comm"
	assert_output --partial qemu
	# no snapshots: NixOS's scripts mount 9p, which QEMU cannot save
	run bash -c 'echo "snapshot s" > "$0/scripted/ctl"' "$VMS"
	assert_failure
	assert_output --partial 'not supported'
	run grep -F 'mount 9p exports' "$VMS/scripted/log"
	assert_success
	echo halt >"$VMS/scripted/ctl"
	run kill -0 "$pid"
	assert_failure
}
