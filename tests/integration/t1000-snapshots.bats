#!/usr/bin/env bats
# snapshot and restore: the guest continues from the saved state, its shells
# survive, its clock is set again; snapshots/ lists them and rm deletes.

load helpers

setup_file() { mount_tiny_a; }
teardown_file() { umount_attestfs; }

@test "restore returns the guest to the saved state" {
	tx "$VMS/a/exec" 'echo before > /tmp/before'
	echo 'snapshot s1' >"$VMS/a/ctl"
	tx "$VMS/a/exec" 'echo after > /tmp/after'
	echo 'restore s1' >"$VMS/a/ctl"
	assert_equal "$(cat "$VMS/a/status")" running
	run tx "$VMS/a/exec" 'cat /tmp/before; test -e /tmp/after && echo after-survived || echo after-gone'
	assert_output $'before\nafter-gone'
	run grep -E ' a snapshot s1$' "$VMS/events"
	assert_success
}

@test "a restored guest's clock is set to now" {
	echo 'snapshot clock' >"$VMS/a/ctl"
	sleep 3 # the saved clock must fall behind for this to mean anything
	echo 'restore clock' >"$VMS/a/ctl"
	guest=$(tx "$VMS/a/exec" 'date +%s')
	host=$(date +%s)
	[ $((host - guest)) -le 1 ]
}

@test "snapshots/ lists them with their size; rm deletes, but not one in use" {
	run ls "$VMS/a/snapshots/"
	assert_line s1
	assert_line clock
	size=$(stat -c %s "$VMS/a/snapshots/s1")
	[ "$size" -gt 1000000 ]
	run rm "$VMS/a/snapshots/clock"
	assert_failure
	assert_output --partial 'Device or resource busy'
	echo 'restore s1' >"$VMS/a/ctl"
	rm "$VMS/a/snapshots/clock"
	run ls "$VMS/a/snapshots/"
	refute_line clock
}

@test "bad snapshot names and missing snapshots are refused with reasons" {
	run bash -c 'echo "snapshot ../x" > "$0/a/ctl"' "$VMS"
	assert_failure
	assert_output --partial 'Invalid argument'
	run bash -c 'echo "restore nope" > "$0/a/ctl"' "$VMS"
	assert_failure
	assert_output --partial 'No such file'
	run bash -c 'echo "snapshot s1" > "$0/a/ctl"' "$VMS"
	assert_failure
	assert_output --partial 'File exists'
	run grep "no snapshot 'nope'" "$VMS/a/log"
	assert_success
}

@test "the shells survive a restore: concurrent commands still do not mix" {
	echo 'restore s1' >"$VMS/a/ctl"
	for i in 1 2 3 4 5 6; do
		(tx "$VMS/a/exec" "echo id-$i" >"$BATS_TEST_TMPDIR/o.$i") &
	done
	wait
	for i in 1 2 3 4 5 6; do
		assert_equal "$(cat "$BATS_TEST_TMPDIR/o.$i")" "id-$i"
	done
}

@test "clones continue a snapshot, each on its own, with its own name" {
	echo 'restore s1' >"$VMS/a/ctl"
	echo 'clone c1 s1' >"$VMS/a/ctl"
	echo 'clone c2 s1' >"$VMS/a/ctl"
	run ls "$VMS"
	assert_line c1
	assert_line c2
	tx "$VMS/c1/exec" 'echo one > /tmp/mark'
	tx "$VMS/c2/exec" 'echo two > /tmp/mark'
	assert_equal "$(tx "$VMS/c1/exec" 'cat /tmp/mark; cat /tmp/before; hostname')" $'one\nbefore\nc1'
	assert_equal "$(tx "$VMS/c2/exec" 'cat /tmp/mark; hostname')" $'two\nc2'
	run tx "$VMS/a/exec" 'cat /tmp/mark'
	assert_failure
	# a clone's own identity: machine-id differs from its source when writable
	run grep -E '^pid [0-9]+$' "$VMS/c1/info"
	assert_success
}

# The pid of the VMM pre-started for $1's next clone, of snapshot $2.
clone_spare_pid() {
	local f pid
	grep -qx "clone_spare $2" "$VMS/$1/info" || return 1
	for f in "$STATE/$1"+clone.*/qemu.pid; do
		# a clone took the one behind a link
		[ -L "${f%/qemu.pid}" ] && continue
		pid=$(cat "$f" 2>/dev/null) || continue
		[ -n "$pid" ] && kill -0 "$pid" 2>/dev/null &&
			{ echo "$pid"; return 0; }
	done
	return 1
}

@test "a clone gets a new machine-id of 32 hex digits (written without a process)" {
	tx "$VMS/a/exec" 'echo 0123456789abcdef0123456789abcdef > /etc/machine-id'
	echo 'snapshot with-id' >"$VMS/a/ctl"
	echo 'clone i1 with-id' >"$VMS/a/ctl"
	id=$(tx "$VMS/i1/exec" 'cat /etc/machine-id')
	[[ $id =~ ^[0-9a-f]{32}$ ]]
	[ "$id" != 0123456789abcdef0123456789abcdef ]
	assert_equal "$(tx "$VMS/a/exec" 'cat /etc/machine-id')" 0123456789abcdef0123456789abcdef
	# the next clone continues in a VMM pre-started for it: its own too
	wait_until "$TEST_TIMEOUT" clone_spare_pid a with-id
	echo 'clone i2 with-id' >"$VMS/a/ctl"
	grep -qF 'its VMM was pre-started' "$VMS/i2/log"
	id2=$(tx "$VMS/i2/exec" 'cat /etc/machine-id')
	[[ $id2 =~ ^[0-9a-f]{32}$ ]]
	[ "$id2" != 0123456789abcdef0123456789abcdef ] && [ "$id2" != "$id" ]
	for c in i1 i2; do
		echo halt >"$VMS/$c/ctl"
		rmdir "$VMS/$c"
	done
	tx "$VMS/a/exec" 'rm /etc/machine-id'
	rm "$VMS/a/snapshots/with-id"
}

@test "without a snapshot name, clone takes one; a clone goes with halt and rmdir" {
	echo 'clone c3' >"$VMS/a/ctl"
	assert_equal "$(cat "$VMS/c3/status")" running
	run ls "$VMS/a/snapshots/"
	assert_line for-c3
	run rmdir "$VMS/c3"
	assert_failure
	assert_output --partial 'Device or resource busy'
	run rm "$VMS/a/snapshots/for-c3"
	assert_failure
	echo halt >"$VMS/c3/ctl"
	rmdir "$VMS/c3"
	run ls "$VMS"
	refute_line c3
	rm "$VMS/a/snapshots/for-c3"
	run rmdir "$VMS/a"
	assert_failure
	run bash -c 'echo "clone c1" > "$0/a/ctl"' "$VMS"
	assert_failure
	assert_output --partial 'File exists'
}

@test "a removed clone stays removed: start-all sees only the tree" {
	echo 'clone c4' >"$VMS/a/ctl"
	echo halt >"$VMS/c4/ctl"
	rmdir "$VMS/c4"
	echo start-all >"$VMS/ctl"
	assert_equal "$(cat "$VMS/a/status")" running
	run grep -c ' c4 starting' "$VMS/events"
	assert_output 1
	run ls "$VMS"
	refute_line c4
	for f in "$STATE"/c4/qemu*.pid; do
		[ -e "$f" ] || continue
		run kill -0 "$(cat "$f")"
		assert_failure
	done
	rm "$VMS/a/snapshots/for-c4"
}

# qom-get of guest_announce on $1's user-mode NIC, through its qmp file.
nic0_guest_announce() {
	tx "$VMS/$1/qmp" '{"execute": "qom-get", "arguments":
		{"path": "/machine/peripheral/nic0", "property": "guest_announce"}}'
}

# The pid of the VMM that waits, paused, to restore snapshot $2 of $1.
spare_pid() {
	local f pid cur
	grep -qx "spare $2" "$VMS/$1/info" || return 1
	cur=$(sed -n 's/^pid //p' "$VMS/$1/info")
	for f in "$STATE/$1"/qemu.spare*.pid; do
		pid=$(cat "$f" 2>/dev/null) || continue
		[ -n "$pid" ] && [ "$pid" != "$cur" ] && kill -0 "$pid" 2>/dev/null &&
			{ echo "$pid"; return 0; }
	done
	return 1
}

@test "a restore continues in the VMM that was waiting for it" {
	echo 'snapshot quick' >"$VMS/a/ctl"
	tx "$VMS/a/exec" 'echo after > /tmp/after-quick'
	wait_until "$TEST_TIMEOUT" spare_pid a quick
	waiting=$(spare_pid a quick)
	echo 'restore quick' >"$VMS/a/ctl"
	assert_equal "$(sed -n 's/^pid //p' "$VMS/a/info")" "$waiting"
	assert_equal "$(sed -n 's/^restored_from //p' "$VMS/a/info")" quick
	# its NIC offers no guest announce: after the load QEMU would have
	# the guest announce it, in the guest's time of the first command
	run nic0_guest_announce a
	assert_output --regexp '"return": *false'
	run tx "$VMS/a/exec" 'test -e /tmp/after-quick && echo survived || echo gone; cat /tmp/before'
	assert_output $'gone\nbefore'
	# its shells are all back, and a new one waits for the next restore
	wait_until "$TEST_TIMEOUT" grep -qx 'shells 4/4' "$VMS/a/info"
	wait_until "$TEST_TIMEOUT" spare_pid a quick
	[ "$(spare_pid a quick)" != "$waiting" ]
}

@test "a spare that dies is not replaced until a restore asks again" {
	echo 'snapshot sd' >"$VMS/a/ctl"
	wait_until "$TEST_TIMEOUT" spare_pid a sd
	kill -9 "$(spare_pid a sd)"
	wait_until "$TEST_TIMEOUT" sh -c "! grep -qx 'spare sd' '$VMS/a/info'"
	run grep -F 'the pre-started VMM exited' "$VMS/a/log"
	assert_success
	echo 'restore sd' >"$VMS/a/ctl"
	assert_equal "$(tx "$VMS/a/exec" 'echo back')" back
	wait_until "$TEST_TIMEOUT" spare_pid a sd
	# one spare before the kill, one after the restore: none in between
	assert_equal "$(grep -c 'a VMM waits to restore sd ' "$VMS/a/log")" 2
}

@test "deleting a snapshot ends the VMM waiting for it" {
	echo 'snapshot gone-soon' >"$VMS/a/ctl"
	wait_until "$TEST_TIMEOUT" spare_pid a gone-soon
	waiting=$(spare_pid a gone-soon)
	rm "$VMS/a/snapshots/gone-soon"
	run kill -0 "$waiting"
	assert_failure
	run grep -x 'spare gone-soon' "$VMS/a/info"
	assert_failure
}

@test "clones map their snapshot's RAM file instead of copying it" {
	echo 'restore s1' >"$VMS/a/ctl"
	ram=$(readlink "$STATE/a/snapshots/s1/ram")
	before=$(md5sum <"$ram")
	echo 'clone m1 s1' >"$VMS/a/ctl"
	echo 'clone m2 s1' >"$VMS/a/ctl"
	for c in m1 m2; do
		pid=$(sed -n 's/^pid //p' "$VMS/$c/info")
		run grep -c 'a\.snapshot\.s1\.ram' "/proc/$pid/maps"
		assert_success
	done
	# copy-on-write: the clones' writes stay their own
	tx "$VMS/m1/exec" 'echo m1 > /tmp/who'
	assert_equal "$(tx "$VMS/m2/exec" 'cat /tmp/who 2>/dev/null || echo none')" none
	# ... and never reach the file the next clone starts from
	tx "$VMS/m2/exec" 'head -c 8000000 /dev/urandom > /tmp/noise'
	assert_equal "$(md5sum <"$ram")" "$before"
	for c in m1 m2; do
		echo halt >"$VMS/$c/ctl"
		rmdir "$VMS/$c"
	done
}

@test "the next clone continues in a VMM pre-started for it, under its own name" {
	echo 'clone q1 s1' >"$VMS/a/ctl"
	tx "$VMS/q1/exec" true
	wait_until "$TEST_TIMEOUT" clone_spare_pid a s1
	waiting=$(clone_spare_pid a s1)
	echo 'clone q2 s1' >"$VMS/a/ctl"
	assert_equal "$(vmm_pid q2)" "$waiting"
	assert_equal "$(tx "$VMS/q2/exec" 'cat /tmp/before; hostname; cat /etc/hostname')" \
		$'before\nq2\nq2'
	run grep -F 'a clone of the snapshot (its VMM was pre-started)' "$VMS/q2/log"
	assert_success
	run nic0_guest_announce q2
	assert_output --regexp '"return": *false'
	# its directory is its own, with the VMM's files and sockets in it
	[ -d "$STATE/q2" ] && [ ! -L "$STATE/q2" ]
	[ -S "$STATE/q2/console.sock" ] && [ -S "$STATE/q2/shell.3.sock" ]
	assert_equal "$(cat "$STATE/q2/qemu.pid")" "$waiting"
	# every shell it connected before q2 existed serves q2
	wait_until "$TEST_TIMEOUT" grep -qx 'shells 4/4' "$VMS/q2/info"
	for i in 1 2 3 4 5 6; do
		(tx "$VMS/q2/exec" "echo id-$i" >"$BATS_TEST_TMPDIR/o.$i") &
	done
	wait
	for i in 1 2 3 4 5 6; do
		assert_equal "$(cat "$BATS_TEST_TMPDIR/o.$i")" "id-$i"
	done
	# its writes are its own
	tx "$VMS/q2/exec" 'echo q2 > /tmp/who'
	assert_equal "$(tx "$VMS/q1/exec" 'cat /tmp/who 2>/dev/null || echo none')" none
	# and another waits for the clone after it
	wait_until "$TEST_TIMEOUT" clone_spare_pid a s1
	[ "$(clone_spare_pid a s1)" != "$waiting" ]
	for c in q1 q2; do
		echo halt >"$VMS/$c/ctl"
		rmdir "$VMS/$c"
	done
}

@test "a clone named like a removed one starts a VMM of its own; the pre-started one waits on" {
	wait_until "$TEST_TIMEOUT" clone_spare_pid a s1
	waiting=$(clone_spare_pid a s1)
	# q2's directory is still there (rmdir hides the machine until unmount)
	echo 'clone q2 s1' >"$VMS/a/ctl"
	[ "$(vmm_pid q2)" != "$waiting" ]
	assert_equal "$(tx "$VMS/q2/exec" hostname)" q2
	assert_equal "$(clone_spare_pid a s1)" "$waiting"
	echo halt >"$VMS/q2/ctl"
	rmdir "$VMS/q2"
}

@test "deleting a snapshot ends the VMM pre-started for a clone of it" {
	echo 'snapshot cs' >"$VMS/a/ctl"
	echo 'clone r1 cs' >"$VMS/a/ctl"
	tx "$VMS/r1/exec" true
	wait_until "$TEST_TIMEOUT" clone_spare_pid a cs
	waiting=$(clone_spare_pid a cs)
	dir=$(dirname "$(grep -lx "$waiting" "$STATE"/a+clone.*/qemu.pid)")
	echo halt >"$VMS/r1/ctl"
	rmdir "$VMS/r1"
	rm "$VMS/a/snapshots/cs"
	run kill -0 "$waiting"
	assert_failure
	run grep -x 'clone_spare cs' "$VMS/a/info"
	assert_failure
	[ ! -e "$dir" ]
}

@test "clones asked for together all start; a clone's own snapshot restores" {
	echo 'restore s1' >"$VMS/a/ctl"
	pids=()
	for c in p1 p2 p3; do
		echo "clone $c s1" >"$VMS/a/ctl" &
		pids+=($!)
	done
	for p in "${pids[@]}"; do
		wait "$p"
	done
	for c in p1 p2 p3; do
		assert_equal "$(tx "$VMS/$c/exec" hostname)" "$c"
	done
	# a clone's RAM is a private mapping: its snapshot carries RAM inside
	tx "$VMS/p1/exec" 'echo kept > /tmp/p1'
	echo 'snapshot mine' >"$VMS/p1/ctl"
	tx "$VMS/p1/exec" 'echo later > /tmp/p1'
	echo 'restore mine' >"$VMS/p1/ctl"
	assert_equal "$(tx "$VMS/p1/exec" 'cat /tmp/p1; hostname')" $'kept\np1'
	# and a clone of the clone, from that snapshot
	echo 'clone p4 mine' >"$VMS/p1/ctl"
	assert_equal "$(tx "$VMS/p4/exec" 'cat /tmp/p1; hostname')" $'kept\np4'
	for c in p4 p1 p2 p3; do
		echo halt >"$VMS/$c/ctl"
		rmdir "$VMS/$c"
	done
}
