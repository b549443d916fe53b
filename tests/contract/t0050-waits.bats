#!/usr/bin/env bats
# Parked waits (DESIGN.md §2, §3b): a `wait` read blocks until its condition
# holds, fails with ETIMEDOUT past its deadline, and a halt answers every
# parked command and wait on the guest at once with EHOSTDOWN (a wait on the
# machine's status stays: the status may still come).

load helpers

@test "wait file: parked until the file appears, then the line saying what held" {
	fsop_bg w tx "$M/wait" "file $W/flag"
	parked w
	touch "$W/flag"
	fsop_done w 'write ok' 'read EOF' 'again EOF'
	assert_output "file $W/flag"
}

@test "wait succeeds: parked until the command succeeds" {
	fsop_bg w tx "$M/wait" "succeeds test -e $W/flag"
	parked w
	touch "$W/flag"
	fsop_done w 'write ok' 'read EOF' 'again EOF'
}

@test "wait status: parked until the machine is in that state (pause from another process)" {
	fsop_bg w tx "$M/wait" 'status paused'
	parked w
	echo pause >"$M/ctl"
	fsop_done w 'write ok' 'read EOF' 'again EOF'
	assert_output 'status paused'
}

@test "a wait past its deadline fails with ETIMEDOUT, the reason in log" {
	fsop tx "$M/wait" "timeout=1 file $W/never"
	assert_failure
	assert_steps 'write ok' 'read ETIMEDOUT' 'again EOF'
	assert_logged "wait file $W/never: timed out"
	fsop tx "$M/wait" 'timeout=1 fails true'
	assert_steps 'write ok' 'read ETIMEDOUT' 'again EOF'
}

@test "a command past the machine's timeout fails with ETIMEDOUT and is killed in the guest" {
	# The deadline counts from the write: the command must be running by
	# then (else it is dropped unstarted, and no guest pid is written), so
	# a loaded host gets more than one second to start it.
	echo 'timeout 3' >"$M/ctl"
	fsop tx "$M/exec" "$(sleeper s)"
	assert_steps 'write ok' 'read ETIMEDOUT' 'again EOF'
	assert_gone "$(guest_pid s)"
	assert_logged 'timed out (killed in the guest)'
}

@test "halt answers parked guest waits and commands at once with EHOSTDOWN; nothing parked boots it again" {
	fsop_bg w1 tx "$M/wait" "file $W/never"
	fsop_bg w2 tx "$M/wait" 'status stopped'
	fsop_bg x tx "$M/exec" "$(sleeper s)"
	pid=$(guest_pid s)
	parked w1
	parked w2
	parked x
	fsop write "$M/ctl" halt
	assert_steps 'write ok'
	fsop_done w1 'write ok' 'read EHOSTDOWN' 'again EOF'
	fsop_done x 'write ok' 'read EHOSTDOWN' 'again EOF'
	# a status wait is about the machine, not the guest: it holds now
	fsop_done w2 'write ok' 'read EOF' 'again EOF'
	assert_output 'status stopped'
	assert_gone "$pid"
	run cat "$M/status"
	assert_output stopped
	# a status wait never starts the machine
	fsop tx "$M/wait" 'timeout=1 status running'
	assert_steps 'write ok' 'read ETIMEDOUT' 'again EOF'
	run cat "$M/status"
	assert_output stopped
	# a new command does
	fsop tx "$M/exec" 'echo again'
	assert_output again
}

@test "parked reads hold no worker: with 12 waits parked (libfuse has 10), status and exec still answer" {
	local i
	for i in $(seq 12); do
		fsop_bg "w$i" tx "$M/wait" "file $W/flag"
	done
	for i in $(seq 12); do
		parked "w$i"
	done
	run cat "$M/status"
	assert_output running
	fsop tx "$M/exec" 'echo served'
	assert_output served
	touch "$W/flag"
	for i in $(seq 12); do
		fsop_done "w$i" 'write ok' 'read EOF' 'again EOF'
	done
}
