#!/usr/bin/env bats
# The examples users copy must pass as they are.

load helpers

teardown() {
	dump_if_failed
	umount_attestfs
}

run_example() { # DIR
	export WORK=$BATS_TEST_TMPDIR
	export VMS=$WORK/vms STATE=$WORK/state
	mkdir -p "$VMS"
	"$ATTESTFS" -f -o "config=$TOP/examples/$1/machines.json,state_dir=$STATE" "$VMS" \
		>"$WORK/daemon.log" 2>&1 &
	echo $! >"$WORK/daemon.pid"
	wait_until "$TEST_TIMEOUT" test -e "$VMS/ctl"
	run bash "$TOP/examples/$1/test.sh"
	umount_attestfs
}

@test "examples/hello passes" {
	run_example hello
	assert_success
	assert_output --partial PASS
}

@test "examples/postgres passes" {
	[ -e "$GUESTS/debian/base.img" ] || skip "the debian guest is not built"
	run_example postgres
	assert_success
	assert_output --partial 'select 6 * 7 -> 42'
	assert_output --partial PASS
}

@test "examples/snapshots passes" {
	run_example snapshots
	assert_success
	assert_output --partial '5 clones ready in'
	assert_output --partial PASS
}
