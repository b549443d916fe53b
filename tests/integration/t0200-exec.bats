#!/usr/bin/env bats
# Commands through exec on a real tiny guest: output, status, bytes, quoting,
# concurrency, background children, and the errors a shell sees.

load helpers

# the guest agent streams the output (machine/agent/; guest_agent, the default);
# 128 MiB, so that an output larger than the guest's memory is quick to send
setup_file() { mount_tiny_a '"memory_mib": 128'; }
teardown_file() { umount_attestfs; }

@test "start returns when the machine is running" {
	run cat "$VMS/a/status"
	assert_output running
	run grep -E '^shells [1-9]/4$' "$VMS/a/info"
	assert_success
	run grep -E '^accel (tcg|kvm)$' "$VMS/a/info"
	assert_success
}

@test "under TCG the guest's CPU lacks what TCG runs slowly: erms, la57, smap" {
	grep -qx 'accel tcg' "$VMS/a/info" || skip "the guest runs under $(sed -n 's/^accel //p' "$VMS/a/info")"
	run tx "$VMS/a/exec" 'grep -m1 "^flags" /proc/cpuinfo'
	assert_output --partial ' sse2 '
	refute_output --regexp ' (erms|la57|smap)( |$)'
}

@test "exec returns stdout" {
	run tx "$VMS/a/exec" 'echo hello; uname -s'
	assert_success
	assert_output $'hello\nLinux'
}

@test "a failing command keeps its output and fails the read with EREMOTEIO" {
	run bash -c 'out=$( (exec 3<>"$0/a/exec"; printf "echo partial; exit 3" >&3; cat <&3) ); echo "rc=$? out=$out"' "$VMS"
	assert_output --partial 'Remote I/O error'
	assert_output --partial 'rc=1 out=partial'
	run grep 'exit status 3' "$VMS/a/log"
	assert_success
}

@test "stderr goes to the machine's log" {
	run tx "$VMS/a/exec" 'echo to-stderr-4711 >&2; echo out'
	assert_output out
	run grep -c 'to-stderr-4711' "$VMS/a/log"
	assert_output 1
}

@test "binary output is equal byte for byte" {
	tx "$VMS/a/exec" 'head -c 3000000 /dev/urandom > /tmp/blob; printf "\0\n\0" >> /tmp/blob'
	guest=$(tx "$VMS/a/exec" 'sha256sum /tmp/blob' | cut -d' ' -f1)
	host=$(tx "$VMS/a/exec" 'cat /tmp/blob' | sha256sum | cut -d' ' -f1)
	assert_equal "$host" "$guest"
	run tx "$VMS/a/exec" 'printf "no newline"'
	assert_output 'no newline'
}

@test "64 MiB of stdout stream through" {
	n=$(tx "$VMS/a/exec" 'head -c 67108864 /dev/zero' | wc -c)
	assert_equal "$n" 67108864
}

@test "an output larger than the guest's memory arrives whole" {
	# 150 MiB from a 128 MiB guest: staged in its tmpfs it could not fit
	run tx "$VMS/a/exec" "awk '/MemTotal/ { print (\$2 < 153600) }' /proc/meminfo"
	assert_output 1
	tx "$VMS/a/exec" 'yes attestfs-0123456789 | head -c 157286400' >"$BATS_TEST_TMPDIR/big"
	assert_equal "$(wc -c <"$BATS_TEST_TMPDIR/big")" 157286400
	want=$(yes attestfs-0123456789 | head -c 157286400 | sha256sum | cut -d' ' -f1)
	assert_equal "$(sha256sum <"$BATS_TEST_TMPDIR/big" | cut -d' ' -f1)" "$want"
	rm -f "$BATS_TEST_TMPDIR/big"
	run grep 'no guest agent' "$VMS/a/log"
	assert_failure
}

@test "exec output streams while the command still runs" {
	tx "$VMS/a/exec" 'rm -f /tmp/go'
	# the command ends only once the test, having read its first line,
	# says so: without streaming the first line would never come
	exec 4< <(tx "$VMS/a/exec" 'echo first; while [ ! -e /tmp/go ]; do sleep 0.1; done; echo second')
	reader=$!
	# (a deadline, not a delay: a broken stream fails instead of hanging)
	read -t "$TEST_TIMEOUT" -r line <&4
	assert_equal "$line" first
	tx "$VMS/a/exec" 'touch /tmp/go'
	read -t "$TEST_TIMEOUT" -r line <&4
	assert_equal "$line" second
	run cat <&4
	assert_output ''
	exec 4<&-
	wait "$reader" 2>/dev/null || true
}

@test "quoting survives: quotes, newlines, dollars, backslashes, UTF-8" {
	cmd=$'printf "%s|" \'single\' "double \\"q\\"" \'$HOME\' \'back\\\\slash\' "$(printf \'line1\\nline2\')" \'grüße ✓\''
	run tx "$VMS/a/exec" "$cmd"
	assert_success
	assert_output $'single|double "q"|$HOME|back\\\\slash|line1\nline2|grüße ✓|'
}

@test "20 concurrent execs from parallel shells do not mix" {
	for i in $(seq 1 20); do
		(tx "$VMS/a/exec" "echo start-$i; sleep 0.$((i % 5)); echo end-$i" >"$BATS_TEST_TMPDIR/out.$i") &
	done
	wait
	for i in $(seq 1 20); do
		assert_equal "$(cat "$BATS_TEST_TMPDIR/out.$i")" "$(printf 'start-%s\nend-%s' "$i" "$i")"
	done
}

@test "a background child holding stdout does not hang the command" {
	run timeout "$TEST_TIMEOUT" bash -c '(exec 3<>"$0/a/exec"; printf "sleep 300 & echo started" >&3; cat <&3)' "$VMS"
	assert_success
	assert_output started
	tx "$VMS/a/exec" 'killall sleep || true'
}

@test "a command past its timeout is killed and fails with ETIMEDOUT" {
	echo 'timeout 2' >"$VMS/a/ctl"
	run tx "$VMS/a/exec" 'exec sleep 30.5'
	echo 'timeout 900' >"$VMS/a/ctl"
	assert_failure
	assert_output --partial 'timed out'
	run tx "$VMS/a/wait" "timeout=$TEST_TIMEOUT "'fails ps | grep -q "[s]leep 30.5"'
	assert_success
}

@test "an interrupted command returns promptly and is killed in the guest" {
	SECONDS=0
	run timeout 2 bash -c '(exec 3<>"$0/a/exec"; printf "exec sleep 60.5" >&3; cat <&3)' "$VMS"
	assert_equal "$status" 124
	[ "$SECONDS" -le 4 ]
	run tx "$VMS/a/wait" "timeout=$TEST_TIMEOUT "'fails ps | grep -q "[s]leep 60.5"'
	assert_success
}

@test "bad ctl messages fail with EINVAL and the reason is in the log" {
	run bash -c 'echo frobnicate > "$0/a/ctl"' "$VMS"
	assert_failure
	assert_output --partial 'Invalid argument'
	run grep "unknown command 'frobnicate'" "$VMS/a/log"
	assert_success
	run bash -c 'echo "timeout soon" > "$0/a/ctl"' "$VMS"
	assert_failure
	run cat "$VMS/a/status"
	assert_output running
}
