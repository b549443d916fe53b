#!/usr/bin/env bats
# A clone on a VLAN gets its own MAC, address and node number, and the
# machines on the VLAN reach it and its source alike.

load helpers

setup_file() {
	mount_attestfs "{\"machines\": {$(tiny_machine a '"vlans": [1]'), $(tiny_machine b '"vlans": [1]')}}"
	echo start-all >"$VMS/ctl"
}

teardown_file() {
	umount_attestfs
}

@test "a clone on a VLAN gets its own address" {
	echo 'clone c' >"$VMS/a/ctl"
	run grep -E '^address vlan1 ' "$VMS/c/info"
	assert_output 'address vlan1 192.168.1.3'
	run tx "$VMS/c/exec" 'ip -4 addr show | grep -o "192.168.1.[0-9]*/24"; cat /sys/class/net/eth1/address'
	assert_output $'192.168.1.3/24\n52:54:00:12:01:03'
	run tx "$VMS/b/wait" 'succeeds ping -c1 -W2 192.168.1.3 >/dev/null && ping -c1 -W2 192.168.1.1 >/dev/null && echo both'
	assert_output both
	run tx "$VMS/a/exec" 'ip -4 addr show | grep -o "192.168.1.[0-9]*/24"'
	assert_output '192.168.1.1/24'
}

@test "a clone that continues in a pre-started VMM gets its own address too" {
	# c's first command is done: a VMM may start for the next clone
	tx "$VMS/c/exec" true
	wait_until "$TEST_TIMEOUT" grep -qx 'clone_spare for-c' "$VMS/a/info"
	echo 'clone d for-c' >"$VMS/a/ctl"
	run grep -F 'its VMM was pre-started' "$VMS/d/log"
	assert_success
	run grep -E '^address vlan1 ' "$VMS/d/info"
	assert_output 'address vlan1 192.168.1.4'
	run tx "$VMS/d/exec" 'ip -4 addr show | grep -o "192.168.1.[0-9]*/24"; cat /sys/class/net/eth1/address; hostname'
	assert_output $'192.168.1.4/24\n52:54:00:12:01:04\nd'
	run tx "$VMS/b/wait" 'succeeds ping -c1 -W2 192.168.1.4 >/dev/null && ping -c1 -W2 192.168.1.3 >/dev/null && ping -c1 -W2 192.168.1.1 >/dev/null && echo all'
	assert_output all
	run tx "$VMS/a/exec" 'ip -4 addr show | grep -o "192.168.1.[0-9]*/24"'
	assert_output '192.168.1.1/24'
}
