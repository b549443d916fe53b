#!/usr/bin/env bats
# A machine started by the run-debian-vm script that tests/guest generates in
# the style of nixpkgs' qemu-vm.nix, with attestfs's sockets in QEMU_OPTS.

load helpers

setup_file() {
	# bats 1.8 cannot skip in setup_file: mark it, skip in setup.
	if [ ! -x "$GUESTS/debian/run-debian-vm" ]; then
		export NO_DEBIAN=1
		return 0
	fi
	mount_attestfs "{\"machines\": {\"db\": {\"start_command\": \"$GUESTS/debian/run-debian-vm\"}}}"
}

setup() {
	[ -z "${NO_DEBIAN:-}" ] || skip "the debian guest is not built (make guest-debian)"
}

teardown_file() {
	umount_attestfs
}

@test "run-debian-vm boots with the driver's sockets and serves units" {
	echo start >"$VMS/db/ctl"
	run tx "$VMS/db/wait" 'unit postgres'
	assert_success
	run cat "$VMS/db/units/postgres/state"
	assert_output active
	run grep -E '^accel script$' "$VMS/db/info"
	assert_success
	pid=$(sed -n 's/^pid //p' "$VMS/db/info")
	run cat "/proc/$pid/comm"
	assert_output --partial qemu
	echo halt >"$VMS/db/ctl"
	run kill -0 "$pid"
	assert_failure
}
