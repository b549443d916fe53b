#!/usr/bin/env bats
# O_TRUNC and FLUSH (DESIGN.md §7): `echo x > file` opens with O_TRUNC (a
# setattr of size 0 without atomic_o_trunc), and bash's redirections close
# dups, so a FLUSH comes before the first WRITE and after each later one.
# None of them is a message: only write(2) and read(2) act.

load helpers

@test "echo > ctl from bash: O_TRUNC open, a FLUSH before the WRITE, the action runs" {
	run bash -c 'echo "timeout 55" >"$1/ctl"' sh "$M"
	assert_success
	run grep -x 'timeout 55' "$M/info"
	assert_success
	# no FLUSH was taken for an (empty) message
	refute_logged 'ctl:'
}

@test ": > ctl (O_TRUNC, no write) does nothing and succeeds" {
	run bash -c ': >"$1/ctl"' sh "$M"
	assert_success
	run cat "$M/status"
	assert_output running
	refute_logged 'ctl:'
}

@test "truncate(1) of ctl (a setattr of size 0) is accepted and does nothing" {
	run truncate -s 0 "$M/ctl"
	assert_success
	run cat "$M/status"
	assert_output running
}

@test "exec and wait opened with O_RDWR|O_TRUNC are ordinary transactions" {
	fsop txt "$M/exec" 'echo truncated'
	assert_success
	assert_output truncated
	assert_steps 'write ok' 'read EOF' 'again EOF'
	fsop txt "$M/wait" 'status running'
	assert_success
	assert_output 'status running'
}

@test "exec: FLUSHes before, between and after the writes run no empty command" {
	# each `exec N>&3 N>&-` is a dup and a close: one FLUSH
	run bash -c '
		exec 3<>"$1"
		exec 4>&3 4>&-
		printf "echo fl" >&3
		exec 4>&3 4>&-
		printf "ushed" >&3
		exec 4>&3 4>&-
		cat <&3' sh "$M/exec"
	assert_success
	assert_output flushed
}

@test "wait: a FLUSH before the write is no (empty, invalid) condition" {
	run bash -c 'exec 3<>"$1"; exec 4>&3 4>&-; printf "status running" >&3; cat <&3' sh "$M/wait"
	assert_success
	assert_output 'status running'
	refute_logged 'unknown condition'
}

@test "echo cmd > exec (write-only) is refused at open with EINVAL and the reason, and runs nothing" {
	run bash -c 'echo "touch $2/ran" >"$1"' sh "$M/exec" "$W"
	assert_failure
	assert_output --partial 'Invalid argument'
	assert_logged 'open it read-write'
	fsop write "$M/exec" "touch $W/ran"
	assert_steps 'open EINVAL'
	[ ! -e "$W/ran" ]
}
