#!/usr/bin/env bats
# qmp is for tests, not for host access: what reads the machine passes, what
# runs host programs or writes host files (screendump, HMP migrate to exec:)
# fails with EPERM and the reason in log, unless the mount was given
# -o host_access. One tiny guest; the last test mounts again with the option.

load helpers

setup_file() { mount_tiny_a; }
teardown_file() { umount_attestfs; }

# hmp LINE: the JSON of human-monitor-command running LINE (no quotes or
# backslashes in LINE but the ones given as \").
hmp() {
	printf '{"execute": "human-monitor-command", "arguments": {"command-line": "%s"}}' "$1"
}

@test "qmp: query-status and qom-get pass; QEMU's own errors come back" {
	run tx "$VMS/a/qmp" '{"execute": "query-status", "id": "q1"}'
	assert_success
	assert_output --partial '"status":"running"'
	assert_output --partial '"id":"q1"'
	run tx "$VMS/a/qmp" '{"execute": "qom-get", "arguments": {"path": "/no-such-object", "property": "type"}}'
	assert_success
	assert_output --partial DeviceNotFound
}

@test "qmp: screendump to a host path is EPERM, reason in log, no file" {
	run tx "$VMS/a/qmp" "{\"execute\": \"screendump\", \"arguments\": {\"filename\": \"$WORK/shot.ppm\"}}"
	assert_failure
	assert_output --partial 'Operation not permitted'
	run grep -F "qmp: 'screendump' writes host files; refused without -o host_access" "$VMS/a/log"
	assert_success
	[ ! -e "$WORK/shot.ppm" ]
}

@test "qmp: HMP migrate to exec: runs nothing on the host, however it is spelled" {
	local line
	for line in "migrate \\\"exec:touch $WORK/pwned\\\"" \
		"  \\tmigrate -d \\\"exec:touch $WORK/pwned\\\"" \
		"migrate exec:touch\\t$WORK/pwned"; do
		run tx "$VMS/a/qmp" "$(hmp "$line")"
		assert_failure
		assert_output --partial 'Operation not permitted'
	done
	run grep -cF "qmp: HMP 'migrate' runs host programs (exec:) and writes host files; refused without -o host_access" "$VMS/a/log"
	assert_output 3
	run tx "$VMS/a/qmp" "$(hmp 'info status\nmigrate exec:true')"
	assert_failure
	assert_output --partial 'Invalid argument'
	[ ! -e "$WORK/pwned" ]
	run cat "$VMS/a/status"
	assert_output running
}

@test "qmp: HMP info status and sendkey pass (the NixOS driver's send_monitor_command)" {
	run tx "$VMS/a/qmp" "$(hmp '  info status')"
	assert_success
	assert_output --partial 'VM status: running'
	run tx "$VMS/a/qmp" "$(hmp 'sendkey shift')"
	assert_success
	assert_output --partial '"return"'
}

@test "qmp: a malformed request is EINVAL with the reason in log" {
	run tx "$VMS/a/qmp" '{"exec-oob": "query-status"}'
	assert_failure
	assert_output --partial 'Invalid argument'
	run tx "$VMS/a/qmp" '{"execute": "query-status"} {"execute": "quit"}'
	assert_failure
	assert_output --partial 'Invalid argument'
	run grep -F 'qmp: exec-oob is not supported' "$VMS/a/log"
	assert_success
	run grep -F 'qmp: one command per request' "$VMS/a/log"
	assert_success
	run cat "$VMS/a/status"
	assert_output running
}

@test "qmp: with -o host_access a screendump writes the host file" {
	umount_attestfs
	mount_attestfs "{\"machines\": {$(tiny_machine a)}}" host_access
	echo start >"$VMS/a/ctl"
	run tx "$VMS/a/qmp" "{\"execute\": \"screendump\", \"arguments\": {\"filename\": \"$WORK/shot.ppm\"}}"
	assert_success
	assert_output --partial '"return"'
	[ "$(head -c 2 "$WORK/shot.ppm")" = P6 ]
}
