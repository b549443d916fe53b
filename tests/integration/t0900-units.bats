#!/usr/bin/env bats
# units/ on the debian guest: real systemd, real postgresql. Every file of a
# unit, name resolution (full, short, alias, with @ and .), ctl jobs that
# succeed and fail, and the unit and port waits.

load helpers

setup_file() {
	# bats 1.8 cannot skip in setup_file: mark it, skip in setup.
	if [ ! -e "$GUESTS/debian/base.img" ]; then
		export NO_DEBIAN=1
		return 0
	fi
	mount_attestfs "{\"machines\": {$(debian_machine db)}}"
	echo start >"$VMS/db/ctl"
}

setup() {
	[ -z "${NO_DEBIAN:-}" ] || skip "the debian guest is not built (make guest-debian)"
}

teardown_file() {
	umount_attestfs
}

@test "the user's example: cat units/postgres/state" {
	tx "$VMS/db/wait" 'unit postgres'
	run cat "$VMS/db/units/postgres/state"
	assert_output active
}

@test "a unit resolves by full name, without .service, and by alias" {
	run ls "$VMS/db/units/"
	assert_line 'postgresql.service'
	assert_line 'postgresql@15-main.service'
	assert_line 'systemd-journald.service'
	# a name with @ and . (Debian's per-cluster unit follows the server)
	run cat "$VMS/db/units/postgresql@15-main.service/state"
	assert_output active
	run cat "$VMS/db/units/postgresql@15-main/state"
	assert_output active
	run cat "$VMS/db/units/postgresql/substate"
	assert_output running
	# postgres is an alias systemd knows for the real server unit
	run grep -E '^Id=postgresql.service$' "$VMS/db/units/postgres/properties"
	assert_success
	run grep -E '^Names=.*postgres.service' "$VMS/db/units/postgres/properties"
	assert_success
	run ls "$VMS/db/units/postgres"
	assert_output $'ctl\nlog\nproperties\nstate\nsubstate'
}

@test "files/: Debian's /etc/os-release, a symlink, reads through" {
	assert_equal "$(readlink "$VMS/db/files/etc/os-release")" ../usr/lib/os-release
	run grep '^ID=debian$' "$VMS/db/files/etc/os-release"
	assert_success
}

@test "wait unit NAME user=NAME waits in that user's own service manager" {
	# alice's manager is not running until asked (no lingering at boot)
	run tx "$VMS/db/wait" 'timeout=3 unit attestfs-hello user=alice'
	assert_failure
	assert_output --partial 'timed out'
	tx "$VMS/db/exec" 'systemctl start user@1000.service'
	run tx "$VMS/db/wait" "timeout=$TEST_TIMEOUT unit attestfs-hello user=alice"
	assert_success
	assert_output 'unit attestfs-hello active user=alice'
	# the system's manager has no such unit
	run tx "$VMS/db/exec" 'systemctl show -p LoadState --value attestfs-hello'
	assert_output not-found
	run tx "$VMS/db/wait" 'unit attestfs-hello user=al;ice'
	assert_failure
	assert_output --partial 'Invalid argument'
}

@test "a unit that does not exist is ENOENT" {
	run cat "$VMS/db/units/no-such-unit/state"
	assert_failure
	assert_output --partial 'No such file or directory'
}

@test "the unit's journal is its log" {
	run grep -c 'ready to accept connections' "$VMS/db/units/postgres/log"
	assert_success
}

@test "ctl stop and start return when systemd is done; a stopped unit reads inactive" {
	echo stop >"$VMS/db/units/postgres/ctl"
	run cat "$VMS/db/units/postgres/state"
	assert_output inactive
	run tx "$VMS/db/wait" 'timeout=5 port 5432 closed'
	assert_success
	echo start >"$VMS/db/units/postgres/ctl"
	run cat "$VMS/db/units/postgres/state"
	assert_output active
	run tx "$VMS/db/wait" 'port 5432'
	assert_success
	run tx "$VMS/db/exec" "su postgres -c \"psql -tAc 'select 40 + 2'\""
	assert_output 42
}

@test "a failing job fails the ctl write with EREMOTEIO and says why in the log" {
	run bash -c 'echo start > "$0/db/units/attestfs-fail/ctl"' "$VMS"
	assert_failure
	assert_output --partial 'Remote I/O error'
	run grep 'systemctl start failed' "$VMS/db/log"
	assert_success
	run cat "$VMS/db/units/attestfs-fail.service/state"
	assert_output failed
}

@test "waiting for a failed unit fails at once instead of timing out" {
	SECONDS=0
	run tx "$VMS/db/wait" 'timeout=60 unit attestfs-fail'
	assert_failure
	assert_output --partial 'Remote I/O error'
	[ "$SECONDS" -lt 10 ]
	run grep 'the unit failed' "$VMS/db/log"
	assert_success
}

@test "waiting for an inactive unit with no pending job fails at once" {
	SECONDS=0
	run tx "$VMS/db/wait" 'timeout=60 unit no-such-unit'
	assert_failure
	[ "$SECONDS" -lt 10 ]
	run tx "$VMS/db/wait" 'unit attestfs-fail failed'
	assert_success
}

@test "port waits read the guest's socket table and time out" {
	run tx "$VMS/db/wait" 'port 5432'
	assert_output 'port 5432 open'
	run tx "$VMS/db/wait" 'timeout=2 port 5999'
	assert_failure
	assert_output --partial 'timed out'
	run bash -c '(exec 3<>"$0/db/wait"; printf "port 99999" >&3)' "$VMS"
	assert_failure
}

@test "a bad unit ctl message is EINVAL with the reason in the log" {
	run bash -c 'echo explode > "$0/db/units/postgres/ctl"' "$VMS"
	assert_failure
	assert_output --partial 'Invalid argument'
	run grep "unknown command 'explode'" "$VMS/db/log"
	assert_success
}

@test "snapshot and restore of a guest with a disk: the disk goes back too, services keep running" {
	tx "$VMS/db/exec" "echo kept > /root/kept; su postgres -c \"psql -qc 'create table t (x int)'\"; sync"
	echo 'snapshot db1' >"$VMS/db/ctl"
	tx "$VMS/db/exec" "echo lost > /root/lost; su postgres -c \"psql -qc 'insert into t values (1)'\"; sync"
	echo 'restore db1' >"$VMS/db/ctl"
	run tx "$VMS/db/exec" 'cat /root/kept; test -e /root/lost && echo lost-survived || echo lost-gone'
	assert_output $'kept\nlost-gone'
	run tx "$VMS/db/exec" "su postgres -c \"psql -tAc 'select count(*) from t'\""
	assert_output 0
	run cat "$VMS/db/units/postgres/state"
	assert_output active
}
