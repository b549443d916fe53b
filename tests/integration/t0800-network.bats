#!/usr/bin/env bats
# Virtual networks: three tiny machines on two VLANs, b on both (a: vlan 1,
# b: vlans 1 and 2, c: vlan 2), and d on none. Addresses, MACs and /etc/hosts
# as the NixOS driver lays them out, traffic on each VLAN and none between a
# and c, start-all, block/unblock, forwards (fixed and picked ports, kept
# across a restart, on a machine without VLANs too), a reboot, and the
# switches gone after the unmount.

load helpers

setup_file() {
	mount_attestfs "{\"machines\": {$(tiny_machine a '"vlans": [1]'), $(tiny_machine b '"vlans": [1, 2]'), $(tiny_machine c '"vlans": [2]'), $(tiny_machine d)}}"
}

# Kill, by pid, the switches the daemon left (only if it failed to).
kill_leftover_switches() {
	local f pid
	for f in "$STATE"/vde*.pid; do
		[ -e "$f" ] || continue
		pid=$(cat "$f" 2>/dev/null) || continue
		if [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null &&
			[ "$(readlink "/proc/$pid/exe")" = "$(command -v vde_switch)" ]; then
			echo "# leftover vde_switch $pid from $f" >&3
			kill -9 "$pid" 2>/dev/null || true
		fi
	done
}

teardown_file() {
	umount_attestfs
	kill_leftover_switches
}

info_line() { sed -n "s/^$2 //p" "$VMS/$1/info"; }

# A port no TCP socket on the host uses (for the fixed-port forward).
free_port() {
	local p
	while :; do
		p=$((20000 + RANDOM % 40000))
		grep -qi ":$(printf %04X "$p") " /proc/net/tcp /proc/net/tcp6 || break
	done
	echo "$p"
}

# listening HOST_HEX PORT: a TCP socket listens on that address and port.
listening() {
	grep -qi " $1:$(printf %04X "$2") 00000000:0000 0A " /proc/net/tcp
}

@test "one vde_switch per VLAN under state_dir, answering before the mount" {
	for v in 1 2; do
		pid=$(cat "$STATE/vde$v.pid")
		run readlink "/proc/$pid/exe"
		assert_output "$(command -v vde_switch)"
		[ -S "$STATE/vde$v.ctl/ctl" ]
		run stat -c %a "$STATE/vde$v.ctl"
		assert_output 700
	done
	[ ! -e "$STATE/vde3.pid" ]
}

@test "a machine on no VLAN boots as before: no switch, no guest set-up" {
	echo start >"$VMS/d/ctl"
	run grep -c 'network' "$VMS/d/log"
	assert_output 0
	run grep -E '^(node|address|mac|link|forward) ' "$VMS/d/info"
	assert_failure
	run bash -c "echo block >'$VMS/d/ctl'"
	assert_failure
	assert_output --partial 'Invalid argument'
	grep -q 'block: the machine is on no VLAN' "$VMS/d/log"
}

@test "start-all boots the three in parallel; status shows progress meanwhile" {
	start=$(date +%s%N)
	echo start-all >"$VMS/ctl" &
	starter=$!
	# While it boots, status answers at once and says starting.
	wait_until "$TEST_TIMEOUT" grep -qx starting "$VMS/b/status"
	wait "$starter"
	ms=$((($(date +%s%N) - start) / 1000000))
	echo "# start-all of 3 tiny guests on VLANs (TCG, d idle meanwhile): $ms ms" >&3
	for m in a b c; do
		assert_equal "$(cat "$VMS/$m/status")" running
	done
	# running only once the networks were set up in the guest
	run grep -A1 'setting up networks' "$VMS/b/log"
	assert_output --partial 'network: vlan1 eth1 192.168.1.2'
}

@test "info: node, addresses, MACs and link state" {
	assert_equal "$(info_line a node)" 1
	assert_equal "$(info_line a address)" "vlan1 192.168.1.1"
	assert_equal "$(info_line a mac)" "vlan1 52:54:00:12:01:01"
	assert_equal "$(info_line a link)" up
	run info_line b address
	assert_output "vlan1 192.168.1.2
vlan2 192.168.2.2"
	run info_line b address6
	assert_output "vlan1 2001:db8:1::2
vlan2 2001:db8:2::2"
	run info_line b mac
	assert_output "vlan1 52:54:00:12:01:02
vlan2 52:54:00:12:02:02"
	assert_equal "$(info_line c address)" "vlan2 192.168.2.3"
	assert_equal "$(info_line c mac)" "vlan2 52:54:00:12:02:03"
}

@test "the guest NICs: eth0 user-mode, then one per VLAN by MAC, with the addresses" {
	run tx "$VMS/b/exec" 'cat /sys/class/net/eth0/address /sys/class/net/eth1/address /sys/class/net/eth2/address'
	assert_output "52:54:00:12:00:02
52:54:00:12:01:02
52:54:00:12:02:02"
	run tx "$VMS/b/exec" 'ip -4 addr show dev eth1; ip -4 addr show dev eth2; ip -6 addr show dev eth1'
	assert_output --partial 'inet 192.168.1.2/24'
	assert_output --partial 'inet 192.168.2.2/24'
	assert_output --partial 'inet6 2001:db8:1::2/64'
	run tx "$VMS/c/exec" 'ip -4 addr show dev eth1'
	assert_output --partial 'inet 192.168.2.3/24'
}

@test "/etc/hosts: every machine that shares a VLAN, at its first shared address" {
	run tx "$VMS/b/exec" 'grep attestfs /etc/hosts'
	assert_line '192.168.1.1 a # attestfs'
	assert_line '192.168.1.2 b # attestfs'
	assert_line '192.168.2.3 c # attestfs'
	assert_line '2001:db8:2::3 c # attestfs'
	run tx "$VMS/a/exec" 'grep attestfs /etc/hosts'
	assert_line '192.168.1.2 b # attestfs'
	refute_line --partial ' c '
	run tx "$VMS/c/exec" 'grep attestfs /etc/hosts'
	assert_line '192.168.2.2 b # attestfs'
	assert_line '192.168.2.3 c # attestfs'
	refute_line --partial ' a '
}

@test "traffic on each VLAN: ping and wget by name, IPv6 too" {
	tx "$VMS/b/exec" 'mkdir -p /www && echo page-of-b >/www/index.html && httpd -p 80 -h /www'
	run tx "$VMS/a/exec" 'ping -c 1 -W 5 b >/dev/null && wget -q -O- http://b/'
	assert_success
	assert_output page-of-b
	run tx "$VMS/c/exec" 'ping -c 1 -W 5 b >/dev/null && wget -q -O- http://b/'
	assert_success
	assert_output page-of-b
	run tx "$VMS/b/exec" 'ping -c 1 -W 5 c >/dev/null && ping -c 1 -W 5 2001:db8:1::1 >/dev/null && echo ok'
	assert_output ok
}

@test "no route between a and c, which share no VLAN" {
	run tx "$VMS/a/exec" 'ping -c 1 -W 2 192.168.2.3'
	assert_failure
	run tx "$VMS/c/exec" 'timeout 5 wget -q -O- http://192.168.1.2/'
	assert_failure
	run tx "$VMS/a/exec" 'ping -c 1 -W 2 c'
	assert_failure
}

@test "block cuts b's links, unblock restores them" {
	echo block >"$VMS/b/ctl"
	assert_equal "$(info_line b link)" down
	run tx "$VMS/a/exec" 'timeout 5 wget -q -O- http://b/'
	assert_failure
	run tx "$VMS/c/exec" 'ping -c 1 -W 2 b'
	assert_failure
	run tx "$VMS/b/exec" 'cat /sys/class/net/eth1/carrier /sys/class/net/eth2/carrier'
	assert_output "0
0"
	echo unblock >"$VMS/b/ctl"
	assert_equal "$(info_line b link)" up
	# The guests see the link come back a moment later.
	run tx "$VMS/a/wait" "timeout=$TEST_TIMEOUT "'succeeds timeout 5 wget -q -O- http://b/'
	assert_success
	run tx "$VMS/a/exec" 'wget -q -O- http://b/'
	assert_output page-of-b
	run tx "$VMS/c/wait" "timeout=$TEST_TIMEOUT "'succeeds ping -c 1 -W 2 b'
	assert_success
	grep -q 'block: VLAN links down' "$VMS/b/log"
}

@test "forward with a fixed host port, bound to 127.0.0.1" {
	port=$(free_port)
	echo "forward tcp:$port:80" >"$VMS/b/ctl"
	run info_line b forward
	assert_output "tcp:127.0.0.1:$port->80"
	run curl -fsS "http://127.0.0.1:$port/"
	assert_output page-of-b
	# on loopback only
	listening 0100007F "$port"
	run listening 00000000 "$port"
	assert_failure
	# the same host port twice: EEXIST, reason in log
	run bash -c "echo 'forward tcp:$port:80' >'$VMS/b/ctl'"
	assert_failure
	assert_output --partial 'File exists'
	echo "$port" >"$WORK/fixed-port"
}

@test "forward with port 0 picks a free port and info says which" {
	echo 'forward tcp:0:80' >"$VMS/b/ctl"
	run info_line b forward
	[ "${#lines[@]}" -eq 2 ]
	picked=$(sed -n 's/^tcp:127\.0\.0\.1:\([0-9]*\)->80$/\1/p' <<<"${lines[1]}")
	[ -n "$picked" ] && [ "$picked" -ne 0 ]
	[ "$picked" != "$(cat "$WORK/fixed-port")" ]
	run curl -fsS "http://127.0.0.1:$picked/"
	assert_output page-of-b
}

@test "bad forwards fail with EINVAL and the reason in log" {
	for bad in 'tcp:x:80' 'udp:1:80' 'tcp:70000:80' 'tcp:8080:0' 'tcp:8080' 'tcp::80'; do
		run bash -c "echo 'forward $bad' >'$VMS/b/ctl'"
		assert_failure
		assert_output --partial 'Invalid argument'
	done
	run bash -c "echo forward >'$VMS/b/ctl'"
	assert_failure
	grep -q "forward: expected tcp:HOSTPORT:GUESTPORT" "$VMS/b/log"
}

@test "after a restart the forwards are back, the links up, the guest set up again" {
	fixed=$(cat "$WORK/fixed-port")
	picked=$(info_line b forward | sed -n '2s/^tcp:127\.0\.0\.1:\([0-9]*\)->80$/\1/p')
	echo block >"$VMS/b/ctl"
	echo halt >"$VMS/b/ctl"
	run bash -c "echo block >'$VMS/b/ctl'"
	assert_failure
	assert_output --partial 'Host is down'
	echo start >"$VMS/b/ctl"
	assert_equal "$(info_line b link)" up
	run info_line b forward
	assert_output "tcp:127.0.0.1:$fixed->80
tcp:127.0.0.1:$picked->80"
	tx "$VMS/b/exec" 'mkdir -p /www && echo again >/www/index.html && httpd -p 80 -h /www'
	run curl -fsS "http://127.0.0.1:$fixed/"
	assert_output again
	run curl -fsS "http://127.0.0.1:$picked/"
	assert_output again
	run tx "$VMS/a/wait" "timeout=$TEST_TIMEOUT "'succeeds timeout 5 wget -q -O- http://b/'
	assert_success
	run tx "$VMS/b/exec" 'grep -c attestfs /etc/hosts'
	assert_output 6
}

@test "forward on a running machine without VLANs sets up its user-mode NIC first" {
	echo 'forward tcp:0:80' >"$VMS/d/ctl"
	port=$(info_line d forward | sed -n 's/^tcp:127\.0\.0\.1:\([0-9]*\)->80$/\1/p')
	[ -n "$port" ]
	grep -q 'network: user eth0 10.0.2.15' "$VMS/d/log"
	tx "$VMS/d/exec" 'mkdir -p /www && echo page-of-d >/www/index.html && httpd -p 80 -h /www'
	run curl -fsS "http://127.0.0.1:$port/"
	assert_output page-of-d
}

@test "a forward on a stopped machine comes up with its next start" {
	echo halt >"$VMS/d/ctl"
	port=$(free_port)
	echo "forward tcp:$port:81" >"$VMS/d/ctl"
	assert_equal "$(info_line d forward | sed -n 2p)" "tcp:127.0.0.1:$port->81"
	echo start >"$VMS/d/ctl"
	tx "$VMS/d/exec" 'mkdir -p /www && echo d-again >/www/index.html && httpd -p 81 -h /www'
	run curl -fsS "http://127.0.0.1:$port/"
	assert_output d-again
}

@test "after a reboot the guest is set up again" {
	tx "$VMS/b/exec" 'echo "10.9.9.9 stale # attestfs" >>/etc/hosts; touch /tmp/before'
	echo reboot >"$VMS/b/ctl"
	assert_equal "$(cat "$VMS/b/status")" running
	run tx "$VMS/b/exec" 'test -e /tmp/before || grep -c attestfs /etc/hosts'
	assert_output 6
	run tx "$VMS/b/exec" 'ip -4 addr show dev eth2'
	assert_output --partial 'inet 192.168.2.2/24'
	run tx "$VMS/c/wait" "timeout=$TEST_TIMEOUT "'succeeds ping -c 1 -W 2 b'
	assert_success
}

@test "unmount stops every vde_switch (by pid) and every QEMU" {
	s1=$(cat "$STATE/vde1.pid")
	s2=$(cat "$STATE/vde2.pid")
	q=$(info_line a pid)
	kill -0 "$s1" && kill -0 "$s2" && kill -0 "$q"
	umount_attestfs
	run kill -0 "$s1"
	assert_failure
	run kill -0 "$s2"
	assert_failure
	run kill -0 "$q"
	assert_failure
	[ ! -e "$STATE/vde1.ctl" ]
}
