#!/usr/bin/env bats
# Firecracker machines on a VLAN: TAP NICs in the mount's network namespace
# (backends/tapnet.h), one bridge per VLAN, fake-firecracker's QEMU on the
# TAPs. Addresses and /etc/hosts are machine/net.c's, as on QEMU.

load helpers
load firecracker

setup_file() {
	fc_setup || return 0
	mount_attestfs "{\"machines\": {$(fc_machine n1 '"vlans": [1]'), $(fc_machine n2 '"vlans": [1]')}}"
}

teardown_file() { fc_teardown_file; }

@test "a VLAN between two microVMs (TAPs in the mount's namespace): ping by name, block, unblock" {
	echo start >"$VMS/n1/ctl"
	echo start >"$VMS/n2/ctl"
	run tx "$VMS/n1/exec" 'ping -c 1 -W 5 n2 >/dev/null && echo ok'
	assert_output ok
	echo block >"$VMS/n2/ctl"
	run tx "$VMS/n1/exec" 'ping -c 1 -W 2 n2'
	assert_failure
	echo unblock >"$VMS/n2/ctl"
	run tx "$VMS/n1/wait" "timeout=$TEST_TIMEOUT "'succeeds ping -c 1 -W 2 n2'
	assert_success
	echo halt >"$VMS/n1/ctl"
	echo halt >"$VMS/n2/ctl"
}
