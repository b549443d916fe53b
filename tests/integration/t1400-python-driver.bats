#!/usr/bin/env bats
# The Python driver (python/attestfs_nixos): the NixOS-style test scripts of
# tests/nixos-py/ run by attestfs-test-driver against one mount of `client`
# (the tiny guest) and `server` (the debian guest) on VLAN 1, booted once and
# reused by every script; lifecycle.py last. Then the driver's own mount from
# a NixOS start script (--start-scripts run-nixos-vm), with --junit-xml.
# Per-call timings of timings.py and of the same calls from attest.sh go to
# build/python-driver-timings.txt.

bats_require_minimum_version 1.5.0
load helpers

DRIVER=$TOP/python/bin/attestfs-test-driver
SCRIPTS=$TOP/tests/nixos-py

setup_file() {
	# bats 1.8 cannot skip in setup_file: mark it, skip in setup.
	if [ ! -e "$GUESTS/debian/base.img" ]; then
		export NO_DEBIAN=1
		return 0
	fi
	mount_attestfs "{\"machines\": {$(tiny_machine client '"vlans": [1]'), $(debian_machine server '"vlans": [1]')}}"
	echo start-all >"$VMS/ctl"
	export OUT=$BATS_FILE_TMPDIR/out
	mkdir -p "$OUT"
}

setup() {
	[ -z "${NO_DEBIAN:-}" ] || skip "the debian guest is not built (make guest-debian)"
}

teardown_file() {
	umount_attestfs
}

# py SCRIPT: run tests/nixos-py/SCRIPT on the mount; the driver's log (its
# stderr) is $stderr, and is shown when the test fails.
py() {
	run --separate-stderr env ATTESTFS_DAEMON_LOG="$WORK/daemon.log" \
		"$DRIVER" -o "$OUT" "$SCRIPTS/$1"
	if [ "$status" -ne 0 ]; then
		printf '%s\n' "$stderr" | tail -n 60
		return 1
	fi
}

@test "commands.py: execute, succeed, fail, waits on commands, retry, t, polling_condition" {
	py commands.py
	[[ "$stderr" == *"subtest: commands on client"* ]]
	[[ "$stderr" == *"(finished: subtest: commands on server, in "* ]]
}

@test "systemd.py: units (also a user's), jobs, ports and a unix socket on debian" {
	py systemd.py
	[[ "$stderr" == *'server: waiting for unit attestfs-hello.service with user alice'* ]]
}

@test "files.py: copies host <-> guests and wait_for_file" {
	py files.py
	[ "$(cat "$OUT/server/result.txt")" = from-server ]
	[ "$(cat "$OUT/client-dir/out/result.txt")" = from-client ]
}

@test "console_screen.py: console, screen (OCR), keys, ttys, monitor" {
	py console_screen.py
	[ -s "$OUT/client-screen.png" ]
}

@test "unsupported.py: X, switch_root, create_machine and a host-writing monitor command raise NotSupported" {
	py unsupported.py
	[[ "$stderr" == *"client: refused as expected: client: the guest has no X server"* ]]
}

@test "network.py (two machines): by name over VLAN 1, block/unblock, forward_port" {
	py network.py
}

@test "timings.py: per-call timings beside the same calls from attest.sh" {
	py timings.py
	bash_mode=$output
	ATTESTFS_NIXOS_SHELL=sh py timings.py
	f=$TOP/build/python-driver-timings.txt
	{
		echo "# $(date -u +%FT%TZ) tests/nixos-py/timings.py (median of 10, ms) and attest.sh (median of 20)"
		printf '%s\n%s\n' "$bash_mode" "$output" | grep '^TIMING '
		for m in client server; do
			for call in "succeed $m true" "wait_for_file $m /" "wait_until_succeeds $m true"; do
				ms=$(bash -c '. "$VMS/attest.sh"; n=20; for i in $(seq $n); do
					s=$(date +%s%N); '"$call"' >/dev/null; e=$(date +%s%N)
					echo $(((e - s) / 1000)); done | sort -n | sed -n 10p')
				echo "TIMING $m attest.sh '$call' $((ms / 1000)).$(((ms % 1000) / 100)) ms"
			done
		done
	} >"$f"
	sed 's/^/# /' "$f" >&3
	grep -q "TIMING server wait_for_unit('nginx') .* (guest shell mode bash)" "$f"
	grep -q "TIMING server succeed('true') .* (guest shell mode sh)" "$f"
}

@test "lifecycle.py (two machines): start_all, snapshot/restore/clone, reboot, crash, shutdown, join_all" {
	py lifecycle.py
	[ "$(cat "$VMS/client/status")" = stopped ]
	[ "$(cat "$VMS/server/status")" = stopped ]
}

@test "its own mount from a NixOS start script: --start-scripts run-nixos-vm, --junit-xml, exit 1 on failure" {
	printf '%s\n' 'with subtest("up"):' '    machine.succeed("true")' \
		'with subtest("name"):' '    t.assertEqual(machine.name, "nixos")' \
		'    machine.succeed("exit 3")' >"$BATS_TEST_TMPDIR/test.py"
	run --separate-stderr env -u VMS "$DRIVER" --start-scripts "$GUESTS/debian/run-nixos-vm" \
		-o "$BATS_TEST_TMPDIR" --junit-xml junit.xml "$BATS_TEST_TMPDIR/test.py"
	printf '%s\n' "$stderr" | tail -n 30
	[ "$status" -eq 1 ]
	[[ "$stderr" == *'RequestedAssertionFailed: command `exit 3` failed (exit code 3)'* ]]
	[[ "$stderr" == *'nixos # '* ]]   # the console, as the driver shows it
	grep -q '<testcase name="up"' "$BATS_TEST_TMPDIR/junit.xml"
	grep -q 'message="test case failed"' "$BATS_TEST_TMPDIR/junit.xml"
}
