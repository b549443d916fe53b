#!/usr/bin/env bats
# Direct I/O (DESIGN.md §2, §7): read(2) returns what the daemon returns,
# however large and whatever the bytes, and generated files report size 0
# like procfs (only direct_io makes that work: the kernel would cut reads
# at st_size).

load helpers

# blob NAME SIZE: SIZE bytes, NULs first and binary after, at $W/NAME.
blob() {
	{
		head -c 4096 /dev/zero
		head -c $(($2 - 4096)) /dev/urandom
	} >"$W/$1"
}

@test "exec: 128 KiB + 1 of binary output, NULs included, comes back whole (cat, 128 KiB reads)" {
	blob b 131073
	tx "$M/exec" "cat $W/b" >"$W/out"
	cmp "$W/b" "$W/out"
}

@test "exec: 3 MiB + 7 of binary output, past the largest FUSE read, comes back whole (1 MiB reads)" {
	blob b $((3 * 1048576 + 7))
	"$FSOP" tx "$M/exec" "cat $W/b" >"$W/out" 2>"$W/steps"
	cmp "$W/b" "$W/out"
	stderr=$(cat "$W/steps")
	assert_steps 'write ok' 'read EOF' 'again EOF'
}

@test "exec: output without a trailing newline, and a reader that stops early" {
	fsop tx "$M/exec" 'printf "no newline"'
	assert_equal "$output" 'no newline'
	# head closes its end mid-stream: the daemon survives it
	run bash -c 'exec 3<>"$1"; printf "yes | head -c 10000000" >&3; head -c 10 <&3' sh "$M/exec"
	assert_output "$(yes | head -c 10)"
	assert_healthy
}

@test "generated files report size 0, and read whole all the same" {
	local f
	for f in "$VMS/ctl" "$VMS/events" "$M/ctl" "$M/status" "$M/info" "$M/log" \
		"$M/config.json" "$M/console" "$M/exec" "$M/wait"; do
		run stat -c %s "$f"
		assert_output 0
	done
	run cat "$M/status"
	assert_output running
	run cat "$M/config.json"
	assert_output --partial '"mock"'
	[ -n "$(cat "$M/info")" ] && [ -n "$(cat "$VMS/events")" ]
}

@test "attest.sh (rendered once at mount) reports its real size" {
	size=$(stat -c %s "$VMS/attest.sh")
	[ "$size" -gt 0 ]
	assert_equal "$(wc -c <"$VMS/attest.sh")" "$size"
}
