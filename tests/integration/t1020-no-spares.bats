#!/usr/bin/env bats
# -o no_spares: no VMM waits to restore; a restore starts a new one, and the
# guest still continues from the saved state.

load helpers

setup_file() {
	mount_attestfs "{\"machines\": {$(tiny_machine a)}}" no_spares
	echo start >"$VMS/a/ctl"
}

teardown_file() {
	umount_attestfs
}

@test "without spares a restore starts a new VMM from the snapshot" {
	tx "$VMS/a/exec" 'echo before > /tmp/before'
	echo 'snapshot s1' >"$VMS/a/ctl"
	old=$(sed -n 's/^pid //p' "$VMS/a/info")
	tx "$VMS/a/exec" 'echo after > /tmp/after'
	run grep '^spare ' "$VMS/a/info"
	assert_failure
	echo 'restore s1' >"$VMS/a/ctl"
	[ "$(sed -n 's/^pid //p' "$VMS/a/info")" != "$old" ]
	run tx "$VMS/a/exec" 'cat /tmp/before; test -e /tmp/after && echo survived || echo gone'
	assert_output $'before\ngone'
	# the snapshot of a restored machine keeps its RAM as a file again
	echo 'snapshot s2' >"$VMS/a/ctl"
	run grep -E 'snapshot s2: saved .*RAM as a file' "$VMS/a/log"
	assert_success
	run ls "$STATE/a/qemu.spare"*.pid
	assert_failure
}
