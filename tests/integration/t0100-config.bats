#!/usr/bin/env bats
# A bad config is refused before anything is mounted, with the file, the key
# and the reason.

load helpers

setup() {
	WORK=$BATS_TEST_TMPDIR
	mkdir -p "$WORK/vms"
}

refuse() { # JSON, expected message part
	printf '%s\n' "$1" >"$WORK/bad.json"
	run "$ATTESTFS" -f -o "config=$WORK/bad.json,state_dir=$WORK/state" "$WORK/vms"
	assert_failure
	assert_output --partial "$WORK/bad.json"
	assert_output --partial "$2"
	run mountpoint -q "$WORK/vms"
	assert_failure
}

@test "a syntax error names the file and the position" {
	refuse '{"machines": {"a": {"backend": "mock",}}}' "invalid JSON"
}

@test "an unknown key is named, with a suggestion" {
	refuse '{"machines": {"a": {"backend": "mock", "cpu": 2}}}' 'machines.a: unknown key "cpu"'
}

@test "a wrong type is named" {
	refuse '{"machines": {"a": {"backend": "mock", "cpus": "two"}}}' 'machines.a.cpus: expected an integer'
}

@test "reserved names are refused" {
	refuse '{"machines": {"ctl": {"backend": "mock"}}}' 'machines.ctl: reserved name'
	refuse '{"machines": {"attest.sh": {"backend": "mock"}}}' 'reserved name'
}

@test "a missing kernel is named" {
	refuse '{"machines": {"a": {"kernel": "nope/vmlinuz"}}}' 'no such file'
}

@test "a missing config file is named" {
	run "$ATTESTFS" -f -o "config=$WORK/absent.json" "$WORK/vms"
	assert_failure
	assert_output --partial "absent.json"
}
