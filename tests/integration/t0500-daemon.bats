#!/usr/bin/env bats
# The daemon cleans up after itself: SIGTERM leaves no QEMU and no mount.

load helpers

setup_file() {
	mount_attestfs "{\"machines\": {$(tiny_machine a)}}"
}

teardown_file() {
	umount_attestfs
}

@test "SIGTERM to the daemon: no QEMU left, the mount is gone" {
	echo start >"$VMS/a/ctl"
	qpid=$(sed -n 's/^pid //p' "$VMS/a/info")
	[ -n "$qpid" ]
	kill -0 "$qpid"
	dpid=$(cat "$WORK/daemon.pid")
	kill -TERM "$dpid"
	wait_until 30 sh -c "! kill -0 $dpid 2>/dev/null"
	run kill -0 "$qpid"
	assert_failure
	run mountpoint -q "$VMS"
	assert_failure
}
