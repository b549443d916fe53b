#!/usr/bin/env bats
# Nothing a guest or a client does grows the daemon without bound (DESIGN
# §3b): the log, events, the console in memory and on disk, a wait's output,
# the hvc0 channel, console input nobody reads. Each test drives one case and
# then checks the daemon's peak resident memory (VmHWM, since the mount) and
# the marker that says what went. log_max is the smallest (64K) so that the
# files rotate within seconds.

load helpers

RSS_LIMIT_KIB=16384

setup_file() {
	# the guest agent streams the output (machine/agent/; guest_agent, the default)
	mount_attestfs "{\"machines\": {
		$(tiny_machine a),
		\"h\": {\"kernel\": \"$GUESTS/tiny-hvc0/vmlinuz\", \"initrd\": \"$GUESTS/tiny-hvc0/initrd.gz\",
			\"append\": \"console=ttyS0 quiet panic=-1\", \"shell_channel\": \"virtconsole\", \"shells\": 1}}}" \
		log_max=64K
}

teardown_file() {
	umount_attestfs
}

# The daemon's peak and current resident memory in KiB ("HWM RSS").
daemon_memory() {
	awk '/^VmHWM:/ { h = $2 } /^VmRSS:/ { r = $2 } END { print h, r }' \
		"/proc/$(cat "$WORK/daemon.pid")/status"
}

# Fails (and says so) when the daemon's peak passed the limit.
assert_daemon_small() {
	local hwm rss
	read -r hwm rss < <(daemon_memory)
	echo "# $BATS_TEST_DESCRIPTION: daemon VmHWM ${hwm} KiB, VmRSS ${rss} KiB" >&3
	[ "$hwm" -lt "$RSS_LIMIT_KIB" ] || {
		echo "daemon peak resident memory ${hwm} KiB >= ${RSS_LIMIT_KIB} KiB"
		return 1
	}
}

file_size() {
	stat -c %s "$1"
}

@test "20 commands with 1 MB of stderr each: the log keeps a bounded tail" {
	local i
	echo start >"$VMS/a/ctl"
	for i in $(seq 20); do
		tx "$VMS/a/exec" 'yes an error line | head -c 1000000 >&2'
	done
	run grep -c 'exec stderr: \[\.\.\. 934464 bytes dropped: the log keeps the first 65536' "$VMS/a/log"
	assert_output --regexp '^[0-9]+$'
	run head -1 "$VMS/a/log"
	assert_output --regexp '^\[\.\.\. [0-9]+ bytes dropped; older lines are in .*/a/log \.\.\.\]$'
	[ "$(file_size "$STATE/a/log")" -le 65536 ]
	[ "$(file_size "$STATE/a/log.1")" -le 65536 ]
	run head -1 "$STATE/a/log"
	assert_output --partial 'this file reached its bound of 65536 bytes and rotated'
	assert_daemon_small
}

@test "many events: the events file keeps a bounded tail and rotates on disk" {
	local i
	echo start >"$VMS/a/ctl"
	for i in $(seq 1000); do
		echo pause >"$VMS/a/ctl"
		echo resume >"$VMS/a/ctl"
	done
	run grep -c ' a paused' "$VMS/events"
	[ "$output" -gt 100 ]
	[ "$(file_size "$STATE/events")" -le 65536 ]
	[ "$(file_size "$STATE/events.1")" -le 65536 ]
	run head -1 "$STATE/events"
	assert_output --partial 'this file reached its bound'
	assert_daemon_small
}

@test "a guest flooding its console: console.log rotates at its bound, cat console works" {
	local pid
	echo start >"$VMS/a/ctl"
	pid=$(tx "$VMS/a/exec" 'yes console-flood-line >/dev/ttyS0 2>/dev/null & echo $!')
	# Until the flood has filled the file a few times (about 130 KB/s).
	wait_until 120 grep -q '(3 so far)' "$STATE/a/console.log"
	[ "$(file_size "$STATE/a/console.log")" -le 65536 ]
	[ "$(file_size "$STATE/a/console.log.1")" -le 65536 ]
	run head -1 "$STATE/a/console.log"
	assert_output --partial 'this file reached its bound of 65536 bytes and rotated'
	# The console file: console.log.1, then console.log, marker in between.
	run grep -c 'the previous part is in console.log.1' "$VMS/a/console"
	[ "$output" -ge 1 ]
	run grep -c console-flood-line "$VMS/a/console"
	[ "$output" -gt 1000 ]
	# A console wait still sees what the flood prints meanwhile.
	run tx "$VMS/a/wait" 'timeout=60 console ^console-flood-line$'
	assert_success
	tx "$VMS/a/exec" "kill $pid"
	assert_daemon_small
}

@test "console input the guest does not read fails with EAGAIN, not a stuck writer" {
	echo start >"$VMS/a/ctl"
	# Nothing in the tiny guest reads ttyS0 (init holds it open): once
	# its buffer is full of lines, the serial port and the socket fill up.
	run timeout 120 bash -c 'yes | head -c 20000000 >"$0/a/console"' "$VMS"
	assert_failure
	assert_output --partial 'Resource temporarily unavailable'
	run grep 'console: the guest has not read its console input' "$VMS/a/log"
	assert_success
	assert_daemon_small
}

@test "wait succeeds with 5 MB of output returns the first 64 KiB and a marker" {
	run tx "$VMS/a/wait" 'succeeds yes | head -c 5000000'
	assert_success
	assert_line --regexp '^\[\.\.\. 4934464 bytes dropped: a wait returns the first 65536 of its command'
	[ "${#output}" -lt 66000 ]
	assert_daemon_small
}

# 24 MiB: the daemon's whole peak is held under 16 MiB, so it cannot have
# held the file or the output at once
@test "files/: a 24 MiB guest file is read in bounded pieces" {
	tx "$VMS/a/exec" 'yes 0123456789abcdef | head -c 25165824 >/tmp/big'
	want=$(yes 0123456789abcdef | head -c 25165824 | sha256sum | cut -d' ' -f1)
	got=$(sha256sum <"$VMS/a/files/tmp/big" | cut -d' ' -f1)
	assert_equal "$got" "$want"
	tx "$VMS/a/exec" 'rm /tmp/big'
	assert_daemon_small
}

@test "hvc0: 24 MiB of output arrives whole, paced by the reader" {
	echo start >"$VMS/h/ctl"
	want=$(yes 0123456789abcdef | head -c 25165824 | sha256sum | cut -d' ' -f1)
	got=$(tx "$VMS/h/exec" 'yes 0123456789abcdef | head -c 25165824' | sha256sum | cut -d' ' -f1)
	[ "$got" = "$want" ] || tail -20 "$VMS/h/log"
	assert_equal "$got" "$want"
	# A slow reader: the guest waits for it, nothing is dropped.
	got=$(tx "$VMS/h/exec" 'yes 0123456789abcdef | head -c 8388608' |
		(while c=$(dd bs=65536 count=1 status=none | base64 -w0) && [ -n "$c" ]; do
			printf %s "$c" | base64 -d; sleep 0.01; done) |
		sha256sum | cut -d' ' -f1)
	assert_equal "$got" "$(yes 0123456789abcdef | head -c 8388608 | sha256sum | cut -d' ' -f1)"
	run grep 'lost or garbled' "$VMS/h/log"
	assert_failure
	# ...streamed by the guest agent, paced by a window of answers
	run grep 'no guest agent' "$VMS/h/log"
	assert_failure
	# The one shell is free again.
	assert_equal "$(tx "$VMS/h/exec" 'echo after')" after
	assert_daemon_small
}

@test "hvc0: an interrupted big output is killed in the guest, the shell is free" {
	echo start >"$VMS/h/ctl"
	run bash -c 'exec 3<>"$0/h/exec"; printf "yes | head -c 100000000; echo done-not-expected" >&3; head -c 100000 <&3 >/dev/null' "$VMS"
	got=$(tx "$VMS/h/exec" 'echo free') || tail -20 "$VMS/h/log"
	assert_equal "$got" free
	assert_daemon_small
}
