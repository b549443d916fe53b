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

@test "without spares no VMM is pre-started for a clone either" {
	echo 'clone c1 s1' >"$VMS/a/ctl"
	tx "$VMS/c1/exec" true
	echo 'clone c2 s1' >"$VMS/a/ctl"
	assert_equal "$(tx "$VMS/c2/exec" hostname)" c2
	run grep -F 'pre-started' "$VMS/c2/log" "$VMS/a/log"
	assert_failure
	run grep '^clone_spare ' "$VMS/a/info"
	assert_failure
	run ls -d "$STATE/a+clone."*
	assert_failure
	for c in c1 c2; do
		echo halt >"$VMS/$c/ctl"
		rmdir "$VMS/$c"
	done
}
