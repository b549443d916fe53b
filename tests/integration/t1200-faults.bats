#!/usr/bin/env bats
# Faults: kill -9 of QEMU, of the guest's shell and of the daemon in the
# middle of a command; an unmount while commands run; a guest that never
# prints its banner; a state_dir on a full file system. After each: every
# caller got the errno DESIGN's table promises, no process of ours is left,
# no mount is left stale, the other machines are served, and what the
# console printed is on disk.

load helpers

# "mute" boots the hvc0 guest on virtserialports: it waits for an hvc0 that
# never comes, so its backdoor never prints the banner.
machines() {
	printf '{"machines": {%s, %s, "mute": {"kernel": "%s", "initrd": "%s", "append": "console=ttyS0 quiet panic=-1", "timeout": 5}}}' \
		"$(tiny_machine a)" "$(tiny_machine b)" \
		"$GUESTS/tiny-hvc0/vmlinuz" "$GUESTS/tiny-hvc0/initrd.gz"
}

start_a_b() {
	echo start >"$VMS/a/ctl" &
	echo start >"$VMS/b/ctl"
	wait $!
}

# A fresh mount with a and b running: a test that ends the daemon leaves
# none, and one that failed may leave anything.
remount() {
	umount_attestfs
	mount_attestfs "$(machines)"
	start_a_b
}

setup_file() {
	mount_attestfs "$(machines)"
	start_a_b
}

teardown_file() {
	umount_attestfs
	if mountpoint -q "$BATS_FILE_TMPDIR/state"; then
		umount "$BATS_FILE_TMPDIR/state"
	fi
}

@test "kill -9 of QEMU mid-command: the command and the wait fail with EIO, no QEMU is left" {
	console_mark a before-qemu-kill
	qpid=$(vmm_pid a)
	[ -n "$qpid" ]
	tx_bg cmd "$VMS/a/exec" 'touch /tmp/started-601; exec sleep 601'
	tx_bg wait "$VMS/a/wait" 'file /never'
	tx "$VMS/a/wait" "timeout=$TEST_TIMEOUT file /tmp/started-601"
	kill -9 "$qpid"
	tx_failed cmd 'Input/output error'
	tx_failed wait 'Input/output error'
	assert_equal "$(cat "$VMS/a/status")" crashed
	assert_no_vmm a "$qpid"
	run tx "$VMS/b/exec" 'echo b-served'
	assert_output b-served
	assert_console_kept a before-qemu-kill
	echo start >"$VMS/a/ctl"
	run tx "$VMS/a/exec" 'echo a-back'
	assert_output a-back
}

@test "kill -9 of the guest's shell mid-command: the command fails with EIO, the shell comes back" {
	start_a_b
	tx_bg cmd "$VMS/a/exec" 'echo $$ >/tmp/victim; exec sleep 602'
	tx "$VMS/a/wait" "timeout=$TEST_TIMEOUT file /tmp/victim"
	victim=$(tx "$VMS/a/exec" 'cat /tmp/victim')
	# from another shell of the pool: the backdoor shell running the command
	tx "$VMS/a/exec" "kill -9 $victim"
	tx_failed cmd 'Input/output error'
	assert_equal "$(cat "$VMS/a/status")" running
	run tx "$VMS/a/exec" 'echo shell-back; killall sleep || true'
	assert_output shell-back
	wait_until "$TEST_TIMEOUT" grep -qx 'shells 4/4' "$VMS/a/info"
	run tx "$VMS/b/exec" 'echo b-served'
	assert_output b-served
}

@test "a guest that never prints its banner: start and commands fail with ETIMEDOUT, halt leaves nothing" {
	start_a_b
	(
		rc=0
		bash -c 'echo start >"$0/mute/ctl"' "$VMS" 2>"$BATS_TEST_TMPDIR/start.err" || rc=$?
		echo "$rc" >"$BATS_TEST_TMPDIR/start.rc"
	) 3>&- &
	# while it waits for the banner, the others are served
	run tx "$VMS/b/exec" 'echo b-served'
	assert_output b-served
	wait_until "$TEST_TIMEOUT" test -s "$BATS_TEST_TMPDIR/start.rc"
	assert_equal "$(cat "$BATS_TEST_TMPDIR/start.rc")" 1
	run cat "$BATS_TEST_TMPDIR/start.err"
	assert_output --partial 'Connection timed out'
	run grep 'no backdoor banner before the timeout' "$VMS/mute/log"
	assert_success
	assert_equal "$(cat "$VMS/mute/status")" starting
	run tx "$VMS/mute/exec" 'echo never'
	assert_failure
	assert_output --partial 'Connection timed out'
	# its console says why, and it is on disk
	tx "$VMS/mute/wait" "timeout=$TEST_TIMEOUT console no backdoor"
	assert_console_kept mute 'no /dev/hvc0, no backdoor'
	qpid=$(vmm_pid mute)
	[ -n "$qpid" ]
	echo halt >"$VMS/mute/ctl"
	assert_equal "$(cat "$VMS/mute/status")" stopped
	assert_no_vmm mute "$qpid"
	run tx "$VMS/a/exec" 'echo a-served'
	assert_output a-served
}

@test "SIGTERM to the daemon mid-command: the command and the wait fail with EHOSTDOWN, nothing is left" {
	start_a_b
	console_mark a before-sigterm
	dpid=$(cat "$WORK/daemon.pid")
	qa=$(vmm_pid a) qb=$(vmm_pid b)
	tx_bg cmd "$VMS/a/exec" 'touch /tmp/started-604; exec sleep 604'
	tx_bg wait "$VMS/b/wait" 'file /never'
	tx "$VMS/a/wait" "timeout=$TEST_TIMEOUT file /tmp/started-604"
	kill -TERM "$dpid"
	# halted, not interrupted: EINTR would make cat retry the read
	tx_failed cmd 'Host is down'
	tx_failed wait 'Host is down'
	assert_gone "$dpid"
	assert_no_vmm a "$qa"
	assert_no_vmm b "$qb"
	assert_not_mounted "$VMS"
	assert_console_kept a before-sigterm
}

@test "unmount while commands run: they finish, then the daemon exits and leaves nothing" {
	remount
	console_mark a before-unmount
	dpid=$(cat "$WORK/daemon.pid")
	qa=$(vmm_pid a) qb=$(vmm_pid b)
	tx "$VMS/a/exec" 'rm -f /tmp/go /tmp/running-*'
	# opened before the unmount, run after it: lets the commands end
	exec 7<>"$VMS/a/exec"
	printf 'touch /tmp/go' >&7
	# two of a's three command shells: the third serves the rest
	for i in 1 2; do
		tx_bg "cmd$i" "$VMS/a/exec" "touch /tmp/running-$i; while [ ! -e /tmp/go ]; do sleep 0.1; done; echo done-$i"
	done
	tx_bg cmdb "$VMS/b/exec" 'sleep 1; echo done-b'
	tx "$VMS/a/wait" "timeout=$TEST_TIMEOUT succeeds [ \$(ls /tmp/running-* | wc -l) = 2 ]"
	# busy: a plain unmount is refused and the tree still answers
	run fusermount3 -u "$VMS"
	assert_failure
	assert_equal "$(cat "$VMS/a/status")" running
	fusermount3 -uz "$VMS"
	assert_not_mounted "$VMS"
	run cat <&7
	assert_success
	exec 7<&-
	for i in 1 2 b; do
		wait_until "$TEST_TIMEOUT" test -s "$BATS_TEST_TMPDIR/cmd$i.rc"
		assert_equal "$(cat "$BATS_TEST_TMPDIR/cmd$i.out")" "done-$i"
		assert_equal "$(cat "$BATS_TEST_TMPDIR/cmd$i.rc")" 0
	done
	# the last file closed: the daemon halts everything and exits
	assert_gone "$dpid"
	assert_no_vmm a "$qa"
	assert_no_vmm b "$qb"
	assert_console_kept a before-unmount
}

@test "kill -9 of the daemon mid-command: the caller returns, QEMUs die, a new attestfs reclaims the mount point" {
	remount
	console_mark a before-daemon-kill
	dpid=$(cat "$WORK/daemon.pid")
	qa=$(vmm_pid a) qb=$(vmm_pid b)
	tx_bg cmd "$VMS/a/exec" 'touch /tmp/started-603; exec sleep 603'
	tx "$VMS/a/wait" "timeout=$TEST_TIMEOUT file /tmp/started-603"
	kill -9 "$dpid"
	# the kernel answers for a dead daemon
	tx_failed cmd 'cat: -:'
	assert_gone "$dpid"
	assert_no_vmm a "$qa"
	assert_no_vmm b "$qb"
	assert_console_kept a before-daemon-kill
	run stat "$VMS"
	assert_failure
	assert_output --partial 'Transport endpoint is not connected'
	mount_attestfs "$(machines)"
	run grep -F "$VMS: detached the dead FUSE mount" "$WORK/daemon.log"
	assert_success
	run awk -v d="$VMS" '$5 == d' /proc/self/mountinfo
	assert_equal "${#lines[@]}" 1
	run tx "$VMS/b/exec" 'echo served-again'
	assert_output served-again
}

@test "state_dir on a full file system: the machines are served, the console on disk keeps what it had and marks the gap" {
	[ "$(id -u)" = 0 ] || skip "mounting a small tmpfs needs root"
	umount_attestfs
	mkdir -p "$BATS_FILE_TMPDIR/state"
	mount -t tmpfs -o size=8m,mode=0700 tmpfs "$BATS_FILE_TMPDIR/state"
	mount_attestfs "$(machines)"
	start_a_b
	console_mark a before-full
	cp "$STATE/a/console.log" "$BATS_TEST_TMPDIR/before"
	dd if=/dev/zero of="$STATE/filler" bs=4k 2>/dev/null || true
	assert_equal "$(df --output=avail "$STATE" | tail -n 1 | tr -d ' ')" 0
	run tx "$VMS/a/exec" 'echo a-served; echo some-stderr >&2'
	assert_output a-served
	run tx "$VMS/b/exec" 'echo b-served'
	assert_output b-served
	# more than the free end of console.log's last page: the disk refuses
	# it, waiters still see it
	tx "$VMS/a/exec" 'head -c 9000 /dev/zero | tr "\0" x >/dev/ttyS0; echo >/dev/ttyS0'
	console_mark a while-full
	# what was on disk is intact
	cmp -n "$(stat -c %s "$BATS_TEST_TMPDIR/before")" "$BATS_TEST_TMPDIR/before" "$STATE/a/console.log"
	rm "$STATE/filler"
	console_mark a after-full
	assert_console_kept a after-full
	# the gap is visible on disk and in the log, never silent
	run grep -c 'bytes of console.log lost' "$STATE/a/console.log"
	assert_output 1
	run grep -F 'No space left on device' "$VMS/a/log"
	assert_success
}
