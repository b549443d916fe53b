#!/usr/bin/env bats
# Transactions (DESIGN.md §2): a write then reads on one open file give that
# write's result; each open is its own transaction; the exit status and the
# command's stderr go where the contract says.

load helpers

@test "exec: write a command, read its stdout on the same fd; a second read is EOF" {
	fsop tx "$M/exec" 'printf "one\ntwo"'
	assert_success
	assert_equal "$output" "$(printf 'one\ntwo')"
	assert_steps 'write ok' 'read EOF' 'again EOF'
}

@test "exec from bash: exec 3<>, printf >&3, cat <&3 (the shape attest.sh uses)" {
	run tx "$M/exec" "echo \$((6 * 7))"
	assert_success
	assert_output 42
}

@test "exec: writes before the first read are joined into one command" {
	run bash -c 'exec 3<>"$1"; printf "echo jo" >&3; printf "ined" >&3; cat <&3' sh "$M/exec"
	assert_success
	assert_output joined
}

@test "exec: a non-zero exit fails the read with EREMOTEIO after the output; stderr goes to log" {
	fsop tx "$M/exec" 'echo kept; echo why-it-failed >&2; exit 3'
	assert_failure
	assert_output kept
	assert_steps 'write ok' 'read EREMOTEIO' 'again EOF'
	assert_logged 'why-it-failed'
	assert_logged 'exit status 3'
	# from bash: $(...) keeps the output, the shell sees the failure
	run --separate-stderr bash -c 'out=$(exec 3<>"$1"; printf "echo x; exit 1" >&3; cat <&3); echo "rc=$? out=$out"' sh "$M/exec"
	assert_output 'rc=1 out=x'
	assert_equal "$stderr" 'cat: -: Remote I/O error'
}

@test "two transactions on two fds of one file, run in parallel, do not mix" {
	# the first blocks until the second has run: they must run at once
	fsop_bg first tx "$M/exec" "timeout $TEST_TIMEOUT sh -c 'until [ -e $W/go ]; do sleep 0.01; done'; echo first"
	parked first
	fsop tx "$M/exec" "touch $W/go; echo second"
	assert_output second
	assert_steps 'write ok' 'read EOF' 'again EOF'
	fsop_done first 'write ok' 'read EOF' 'again EOF'
	assert_output first
}

@test "two fds opened and written before either is read keep their own commands" {
	run python3 -c '
import os, sys
a = os.open(sys.argv[1], os.O_RDWR)
b = os.open(sys.argv[1], os.O_RDWR)
os.write(a, b"echo A")
os.write(b, b"echo B")
print(os.read(b, 100).decode(), os.read(a, 100).decode(), end="")
' "$M/exec"
	assert_success
	assert_output "$(printf 'B\n A')"
}

@test "10 parallel transactions with 200 KiB outputs each get exactly their own bytes" {
	local i
	for i in $(seq 10); do
		tx_bg "p$i" "$M/exec" "yes id$i | head -c 204800"
	done
	for i in $(seq 10); do
		wait_until "$TEST_TIMEOUT" test -s "$BATS_TEST_TMPDIR/p$i.rc"
		assert_equal "$(cat "$BATS_TEST_TMPDIR/p$i.rc")" 0
		yes "id$i" | head -c 204800 | cmp - "$BATS_TEST_TMPDIR/p$i.out"
	done
}

@test "wait: write a condition, read the line saying what held" {
	fsop tx "$M/wait" 'status running'
	assert_success
	assert_output 'status running'
	assert_steps 'write ok' 'read EOF' 'again EOF'
	fsop tx "$M/wait" 'console booted'
	assert_output 'console mock: booted m'
}

@test "ctl: the result of an action is the result of its write(2)" {
	fsop write "$M/ctl" 'timeout 77'
	assert_success
	assert_steps 'write ok'
	run grep -x 'timeout 77' "$M/info"
	assert_success
	fsop write "$M/ctl" 'pause'
	assert_steps 'write ok'
	run cat "$M/status"
	assert_output paused
	fsop write "$M/ctl" 'resume'
	assert_steps 'write ok'
	run cat "$M/status"
	assert_output running
}

@test "exec: an open that is never read runs nothing" {
	run python3 -c '
import os, sys
fd = os.open(sys.argv[1], os.O_RDWR)
os.write(fd, ("touch " + sys.argv[2]).encode())
os.close(fd)
' "$M/exec" "$W/ran"
	assert_success
	# a later transaction on the same machine has run to its end
	fsop tx "$M/exec" 'echo later'
	assert_output later
	[ ! -e "$W/ran" ]
}
