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
	wait_until "$TEST_TIMEOUT" sh -c "! kill -0 $dpid 2>/dev/null"
	run kill -0 "$qpid"
	assert_failure
	run mountpoint -q "$VMS"
	assert_failure
}

@test "SIGKILL to the daemon: its QEMUs die with it, the next mount frees its RAM files" {
	umount_attestfs
	mkdir -p "$BATS_FILE_TMPDIR/ram"
	mount_attestfs "{\"machines\": {$(tiny_machine a)}}" "ram_dir=$BATS_FILE_TMPDIR/ram"
	echo start >"$VMS/a/ctl"
	qpid=$(sed -n 's/^pid //p' "$VMS/a/info")
	dpid=$(cat "$WORK/daemon.pid")
	stale=$(ls -d "$BATS_FILE_TMPDIR/ram"/attestfs-ram.*)
	[ -n "$(ls "$stale"/*.ram)" ]
	kill -KILL "$dpid"
	wait_until "$TEST_TIMEOUT" sh -c "! kill -0 $qpid 2>/dev/null"
	fusermount3 -u "$VMS"
	[ -d "$stale" ]
	mount_attestfs "{\"machines\": {$(tiny_machine a)}}" "ram_dir=$BATS_FILE_TMPDIR/ram"
	[ ! -e "$stale" ]
	run ls -d "$BATS_FILE_TMPDIR/ram"/attestfs-ram.*
	assert_success
	assert_equal "${#lines[@]}" 1
	run grep -F "removed $stale" "$WORK/daemon.log"
	assert_success
}
