#!/usr/bin/env bats
# The fake VMMs' own API (tests/fakes/fake-firecracker, fake-cloud-hypervisor): every request
# the real VMM refuses is refused with its status and body, the state machines hold, and the
# processes end as the real ones do. QEMU is tests/fakes/stub-qemu (QMP only): no guest, no
# VM lock, seconds. tests/integration/t1490-fakes.bats boots a real guest behind each fake.

load ../integration/helpers
load ../fakes/fakes

SERDE='An error occurred when deserializing the json body of a request: '
AFTER='The requested operation is not supported after starting the microVM.'
BEFORE='The requested operation is not supported before starting the microVM.'

setup() {
	T=$BATS_TEST_TMPDIR
	export FAKE_VMM_QEMU=$FAKES/stub-qemu
	fake_elf "$T/vmlinux"
}

teardown() {
	fake_stop_all
}

# fc_started NAME: a fake-firecracker with a kernel and a vsock, after InstanceStart
fc_started() {
	fake_start fc "$1"
	run api "$1" PUT /boot-source "{\"kernel_image_path\": \"$T/vmlinux\"}"
	assert_output '204 '
	run api "$1" PUT /vsock '{"guest_cid": 3, "uds_path": "v.sock"}'
	assert_output '204 '
	run api "$1" PUT /actions '{"action_type": "InstanceStart"}'
	assert_output '204 '
}

@test "fake-firecracker: GET /, /version, /machine-config and /vm/config answer 200 with JSON" {
	fake_start fc a --id vm-1
	run api a GET /
	assert_output '200 {"app_name": "Firecracker", "id": "vm-1", "state": "Not started", "vmm_version": "1.16.1"}'
	run api a GET /version
	assert_output '200 {"firecracker_version": "1.16.1"}'
	run api a GET /machine-config
	assert_output --partial '200 {"vcpu_count": 1, "mem_size_mib": 128,'
	run api a GET /vm/config
	assert_output --partial '200 {"balloon": null, "drives": [],'
}

@test "fake-firecracker: an unknown field is a 400 (serde deny_unknown_fields), also nested" {
	fake_start fc a
	run api a PUT /machine-config '{"vcpu_count": 1, "mem_size_mib": 256, "foo": 1}'
	assert_output --partial "400 {\"fault_message\": \"${SERDE}unknown field \`foo\`, expected one of"
	run api a PUT /drives/rootfs '{"drive_id": "rootfs", "is_root_device": true, "path_on_host": "d", "is_read_only": false, "rate_limiter": {"bandwidth": {"size": 1, "refill_time": 1, "x": 2}}}'
	assert_output --partial "${SERDE}unknown field \`x\`"
	run api a GET /machine-config
	assert_output --partial '"vcpu_count": 1, "mem_size_mib": 128,'
}

@test "fake-firecracker: a missing required field, a wrong type or value is a 400" {
	fake_start fc a
	run api a PUT /machine-config '{"mem_size_mib": 256}'
	assert_output "400 {\"fault_message\": \"${SERDE}missing field \`vcpu_count\`.\"}"
	run api a PUT /machine-config '{"vcpu_count": 64, "mem_size_mib": 256}'
	assert_output --partial '400 {"fault_message": '
	run api a PUT /vsock '{"guest_cid": 2, "uds_path": "v.sock"}'
	assert_output --partial '400 {"fault_message": '
	run api a PUT /actions '{"action_type": "Reboot"}'
	assert_output --partial "${SERDE}unknown variant \`Reboot\`"
	run api a PUT /boot-source '{"kernel_image_path": 7}'
	assert_output --partial "${SERDE}invalid type: integer \`7\`, expected string"
	test ! -e "$T/v.sock"
}

@test "fake-firecracker: resource ids: the charset, and the path's id must be the body's" {
	touch "$T/disk"
	fake_start fc a
	run api a PUT /drives/a-b '{"drive_id": "a-b", "is_root_device": true, "path_on_host": "disk", "is_read_only": false}'
	assert_output '400 {"fault_message": "API Resource IDs can only contain alphanumeric characters and underscores."}'
	run api a PUT /drives/rootfs '{"drive_id": "other", "is_root_device": true, "path_on_host": "disk", "is_read_only": false}'
	assert_output '400 {"fault_message": "The id from the path does not match the id from the body!"}'
	run api a PUT /network-interfaces/eth0 '{"iface_id": "eth1", "host_dev_name": "tap0"}'
	assert_output '400 {"fault_message": "The id from the path does not match the id from the body! [eth0] [eth1]"}'
	run api a PUT /drives/rootfs '{"drive_id": "rootfs", "is_root_device": true, "path_on_host": "disk", "is_read_only": false}'
	assert_output '204 '
	run api a PUT /drives/missing '{"drive_id": "missing", "is_root_device": false, "path_on_host": "nope", "is_read_only": true}'
	assert_output --partial '400 {"fault_message": "Drive config error: Unable to create the block device: '
}

@test "fake-firecracker: a network interface needs an existing TAP" {
	fake_start fc a
	run api a PUT /network-interfaces/eth0 '{"iface_id": "eth0", "host_dev_name": "attestfs-notap", "guest_mac": "52:54:00:00:00:01"}'
	assert_output '400 {"fault_message": "Network config error: Could not create the network device: Open tap device failed: No such device (os error 19) Invalid TUN/TAP Backend provided by attestfs-notap. Check our documentation on setting up the network devices."}'
	run api a PUT /network-interfaces/eth0 '{"iface_id": "eth0", "host_dev_name": "tap0", "mtu": 20}'
	assert_output --partial '400 {"fault_message": '
	run api a GET /vm/config
	assert_output --partial '"network-interfaces": [],'
}

@test "fake-firecracker: an existing TAP is taken (in a network namespace of its own)" {
	unshare -n true 2>/dev/null || skip "no network namespace here (unshare -n)"
	# the fake inside a fresh namespace with one persistent TAP, as tapnet's VMMs run
	unshare -n sh -c 'ip tuntap add dev attap0 mode tap && cd "$1" &&
		exec "$2" --api-sock "$1/a.sock" </dev/null >"$1/a.out" 2>"$1/a.log"' \
		sh "$T" "$FAKES/fake-firecracker" &
	echo $! >"$T/a.pid"
	wait_until 30 test -S "$T/a.sock"
	run api a PUT /network-interfaces/eth0 '{"iface_id": "eth0", "host_dev_name": "attap0", "guest_mac": "52:54:00:00:00:01"}'
	assert_output '204 '
	run api a PUT /network-interfaces/eth1 '{"iface_id": "eth1", "host_dev_name": "attap1"}'
	assert_output --partial 'No such device (os error 19) Invalid TUN/TAP Backend provided by attap1.'
	run api a GET /vm/config
	assert_output --partial '"network-interfaces": [{"iface_id": "eth0", "host_dev_name": "attap0", "guest_mac": "52:54:00:00:00:01"}]'
}

@test "fake-firecracker: its parent gone, the fake exits and takes its QEMU with it" {
	local qpid
	sh -c 'cd "$1" && exec "$2" --api-sock "$1/p.sock" </dev/null >/dev/null 2>"$1/p.log" & echo $! >"$1/p.fakepid"; exec sleep 600' \
		sh "$T" "$FAKES/fake-firecracker" &
	echo $! >"$T/parent.pid"
	wait_until 30 test -S "$T/p.sock"
	api p PUT /boot-source "{\"kernel_image_path\": \"$T/vmlinux\"}"
	api p PUT /actions '{"action_type": "InstanceStart"}'
	qpid=$(sed -n 's/.*qemu: pid \([0-9]*\)$/\1/p' "$T/p.log")
	kill -0 "$qpid"
	kill "$(cat "$T/parent.pid")"
	wait_until 30 bash -c "! kill -0 $(cat "$T/p.fakepid") 2>/dev/null"
	wait_until 30 bash -c "! kill -0 $qpid 2>/dev/null"
	test ! -e "$T/p.sock"
	grep -q 'parent [0-9]* is gone' "$T/p.log"
}

@test "fake-firecracker: SIGKILLed, the fake still takes its QEMU with it (PR_SET_PDEATHSIG)" {
	local qpid
	fc_started a
	qpid=$(sed -n 's/.*qemu: pid \([0-9]*\)$/\1/p' "$T/a.log")
	kill -0 "$qpid"
	kill -9 "$(fake_pid a)"
	wait_until 30 bash -c "! kill -0 $qpid 2>/dev/null"
}

@test "fake-firecracker: before InstanceStart, the post-boot calls are refused" {
	fake_start fc a
	run api a PATCH /vm '{"state": "Paused"}'
	assert_output "400 {\"fault_message\": \"$BEFORE\"}"
	run api a PUT /actions '{"action_type": "SendCtrlAltDel"}'
	assert_output "400 {\"fault_message\": \"$BEFORE\"}"
	run api a PUT /snapshot/create '{"snapshot_path": "s", "mem_file_path": "m"}'
	assert_output "400 {\"fault_message\": \"$BEFORE\"}"
	run api a PUT /actions '{"action_type": "InstanceStart"}'
	assert_output '400 {"fault_message": "Start microvm error: Cannot start microvm without kernel configuration."}'
}

@test "fake-firecracker: a bzImage as the kernel is refused at InstanceStart (an ELF vmlinux is needed)" {
	fake_bzimage "$T/bzImage"
	fake_start fc a
	run api a PUT /boot-source "{\"kernel_image_path\": \"$T/bzImage\"}"
	assert_output '204 '
	run api a PUT /actions '{"action_type": "InstanceStart"}'
	assert_output '400 {"fault_message": "Start microvm error: Cannot load kernel due to invalid memory configuration or invalid kernel image: Kernel Loader: failed to load ELF kernel image"}'
	run api a GET /
	assert_output --partial '"state": "Not started"'
	run api a PUT /boot-source '{"kernel_image_path": "/nonexistent/vmlinux"}'
	assert_output '400 {"fault_message": "Boot source error: The kernel file cannot be opened: No such file or directory (os error 2)"}'
}

@test "fake-firecracker: InstanceStart once; after it, pre-boot calls are refused" {
	fc_started a
	run api a GET /
	assert_output --partial '"state": "Running"'
	run api a PUT /actions '{"action_type": "InstanceStart"}'
	assert_output "400 {\"fault_message\": \"$AFTER\"}"
	run api a PUT /machine-config '{"vcpu_count": 2, "mem_size_mib": 256}'
	assert_output "400 {\"fault_message\": \"$AFTER\"}"
	run api a PUT /logger '{"level": "Info"}'
	assert_output "400 {\"fault_message\": \"$AFTER\"}"
	run api a PUT /snapshot/load '{"snapshot_path": "s", "mem_backend": {"backend_type": "File", "backend_path": "m"}}'
	assert_output "400 {\"fault_message\": \"$AFTER\"}"
}

@test "fake-firecracker: snapshot/create only when Paused; pause and resume are idempotent" {
	fc_started a
	run api a PUT /snapshot/create '{"snapshot_path": "snap", "mem_file_path": "mem"}'
	assert_output '400 {"fault_message": "Create snapshot error: Cannot save the microVM state: Operation not allowed: save/restore unavailable while running"}'
	test ! -e "$T/snap"
	run api a PATCH /vm '{"state": "Paused"}'
	assert_output '204 '
	run api a PATCH /vm '{"state": "Paused"}'
	assert_output '204 '
	run api a GET /
	assert_output --partial '"state": "Paused"'
	run api a PUT /snapshot/create '{"snapshot_path": "snap", "mem_file_path": "mem"}'
	assert_output '204 '
	grep -q '"magic": "fake-firecracker snapshot v1"' "$T/snap"
	test -s "$T/mem"
	run api a PATCH /vm '{"state": "Resumed"}'
	assert_output '204 '
	run api a GET /
	assert_output --partial '"state": "Running"'
}

@test "fake-firecracker: snapshot/load only on a fresh process; a failed load ends the process" {
	fc_started a
	api a PATCH /vm '{"state": "Paused"}'
	api a PUT /snapshot/create '{"snapshot_path": "snap", "mem_file_path": "mem"}'
	fake_start fc b
	run api b PUT /drives/rootfs '{"drive_id": "rootfs", "is_root_device": true, "path_on_host": "nope", "is_read_only": true}'
	assert_output --partial '400 {"fault_message": "Drive config error: '
	run api b PUT /snapshot/load '{"snapshot_path": "snap", "mem_backend": {"backend_type": "File", "backend_path": "mem"}}'
	assert_output '400 {"fault_message": "Load snapshot error: Loading a microVM snapshot not allowed after configuring boot-specific resources."}'
	fake_start fc c
	run api c PUT /snapshot/load '{"snapshot_path": "snap", "mem_file_path": "mem", "mem_backend": {"backend_type": "File", "backend_path": "mem"}}'
	assert_output --partial "400 {\"fault_message\": \"${SERDE}either \`mem_backend\` or \`mem_file_path\`"
	run api c PUT /snapshot/load '{"snapshot_path": "snap"}'
	assert_output --partial "400 {\"fault_message\": \"${SERDE}either"
	# the vsock socket of the snapshot is still there (a has it): the load fails, c exits
	run api c PUT /snapshot/load '{"snapshot_path": "snap", "mem_backend": {"backend_type": "File", "backend_path": "mem"}}'
	assert_output --partial 'Address already in use'
	fake_wait_exit c
	assert_equal "$FAKE_RC" 1
	test ! -e "$T/c.sock"
	fake_start fc d
	run api d PUT /snapshot/load '{"snapshot_path": "snap", "mem_backend": {"backend_type": "File", "backend_path": "mem"}, "vsock_override": {"uds_path": "v2.sock"}, "resume_vm": true}'
	assert_output '204 '
	test -S "$T/v2.sock"
	run api d GET /
	assert_output --partial '"state": "Running"'
	run api d PUT /snapshot/load '{"snapshot_path": "snap", "mem_file_path": "mem"}'
	assert_output "400 {\"fault_message\": \"$AFTER\"}"
}

@test "fake-firecracker: the logger once (its directory must exist); a stale vsock path is refused" {
	fake_start fc a
	run api a PUT /logger "{\"log_path\": \"$T/none/fc.log\"}"
	assert_output '400 {"fault_message": "Logger error: Failed to open target file: No such file or directory (os error 2)"}'
	run api a PUT /logger "{\"log_path\": \"$T/fc.log\", \"level\": \"Debug\"}"
	assert_output '204 '
	grep -q 'api: PUT /logger -> 204' "$T/fc.log"
	run api a PUT /logger "{\"log_path\": \"$T/fc.log\"}"
	assert_output --partial '400 {"fault_message": "Logger error: '
	touch "$T/stale.sock"
	run api a PUT /vsock '{"guest_cid": 3, "uds_path": "stale.sock"}'
	assert_output '400 {"fault_message": "Vsock config error: Cannot create backend for vsock device: Error binding to the host-side Unix socket: Address already in use (os error 98)"}'
}

@test "fake-firecracker: micro_http's own errors, an unknown path, a body-less PUT, a GET with a body" {
	fake_start fc a
	run api a GET /nope
	assert_output '400 {"fault_message": "Invalid request method and/or path: GET /nope."}'
	run api a DELETE /vm
	assert_output '400 {"fault_message": "Invalid request method and/or path: DELETE /vm."}'
	run api a PUT /actions
	assert_output '400 {"fault_message": "Empty PUT request."}'
	run api a GET / '{}'
	assert_output '400 {"fault_message": "GET request cannot have a body."}'
	run curl -s --unix-socket "$T/a.sock" -X PUT -H 'Content-Length: x' http://localhost/actions
	# micro_http formats it by hand: a raw newline inside the string
	assert_output $'{ "error": "Invalid header. Reason: Invalid value. Key: Content-Length; Value: x\nAll previous unanswered requests will be dropped." }'
	run curl -s --unix-socket "$T/a.sock" -X PUT -H 'Content-Type: application/json' --data-binary "{\"x\": \"$(head -c 60000 /dev/zero | tr '\0' a)\"}" http://localhost/actions
	assert_output $'{ "error": "Request payload with size 60009 is larger than the limit of 51200 allowed by server.\nAll previous unanswered requests will be dropped." }'
}

@test "fake-firecracker: the headers: Server, keep-alive, Deprecation on a deprecated field" {
	fake_start fc a
	run curl -s -i --unix-socket "$T/a.sock" -X PUT -H 'Content-Type: application/json' \
		--data-binary '{"guest_cid": 3, "uds_path": "v.sock", "vsock_id": "vsock0"}' http://localhost/vsock
	assert_line --index 0 $'HTTP/1.1 204 \r' # micro_http: no reason phrase, no Date
	refute_output --partial 'Date:'
	assert_output --partial $'Server: Firecracker API\r'
	assert_output --partial $'Connection: keep-alive\r'
	assert_output --partial $'Deprecation: true\r'
	run curl -s -i --unix-socket "$T/a.sock" http://localhost/version
	refute_output --partial 'Deprecation'
}

@test "fake-firecracker: keep-alive, and Expect: 100-continue is answered before the body" {
	fake_start fc a
	run curl -s -o /dev/null -o /dev/null -w '%{num_connects} ' --unix-socket "$T/a.sock" http://localhost/ http://localhost/version
	assert_output '1 0 '
	run python3 - "$T/a.sock" <<-'EOF'
		import socket, sys
		s = socket.socket(socket.AF_UNIX); s.connect(sys.argv[1]); s.settimeout(10)
		body = b'{"action_type": "FlushMetrics"}'
		s.sendall(b"PUT /actions HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/json\r\n"
		          b"Expect: 100-continue\r\nContent-Length: %d\r\n\r\n" % len(body))
		print(s.recv(100).split(b"\r\n")[0].decode())   # before the body is sent
		s.sendall(body)
		print(s.recv(1000).split(b"\r\n")[0].decode())
	EOF
	assert_line --index 0 'HTTP/1.1 100 Continue'
	assert_line --index 1 'HTTP/1.1 400 ' # micro_http: no reason phrase
}

@test "fake-firecracker: SendCtrlAltDel ends the process (the guest resets), the API socket goes" {
	fc_started a
	run api a PUT /actions '{"action_type": "SendCtrlAltDel"}'
	assert_output '204 '
	fake_wait_exit a
	assert_equal "$FAKE_RC" 0
	test ! -e "$T/a.sock"
}

@test "fake-firecracker: vsock: no guest listener yet, or another port: closed without a reply" {
	fc_started a
	run "$FAKES/vsock-shell" "$T/v.sock" 'echo hi'
	assert_failure 3
	run "$FAKES/vsock-shell" --port 5000 "$T/v.sock" 'echo hi'
	assert_failure 3
	grep -q 'vsock: CONNECT 1024: no guest port open' "$T/a.log"
}

@test "fake-firecracker: the command line as Firecracker's: unknown flags exit 153; SIGTERM cleans up" {
	run "$FAKES/fake-firecracker" --api-sock "$T/x.sock" --config-file c.json
	assert_failure 153
	assert_output --partial "Found argument '--config-file' which wasn't expected"
	run "$FAKES/fake-firecracker" --version
	assert_output 'Firecracker v1.16.1'
	fake_start fc a --id t --level Debug --no-seccomp --boot-timer --show-level --show-log-origin \
		--log-path "$T/a.fclog"
	grep -q 'API socket' "$T/a.fclog"
	run "$FAKES/fake-firecracker" --api-sock "$T/a.sock"
	assert_failure 1
	assert_output --partial "Failed to open the API socket at: $T/a.sock."
	fc_started b
	kill "$(fake_pid b)"
	fake_wait_exit b
	assert_equal "$FAKE_RC" 143
	test ! -e "$T/b.sock"
}

# ---------------------------------------------------------------- Cloud Hypervisor

ch_config() { # the VmConfig the ch backend sends
	printf '{"payload": {"kernel": "%s", "cmdline": "console=ttyS0"}, "cpus": {"boot_vcpus": 1, "max_vcpus": 1}, "memory": {"size": 268435456}, "serial": {"mode": "Socket", "socket": "s.sock"}, "console": {"mode": "Off"}, "vsock": {"cid": 3, "socket": "v.sock"}%s}' \
		"${1:-$T/vmlinux}" "${2:+, $2}"
}

@test "fake-cloud-hypervisor: vmm.ping; no VM yet: 404 with CH's error array" {
	fake_start ch a
	run ch a GET vmm.ping
	assert_output --regexp '^200 \{"build_version": "v53.0.0-fake", "version": "53.0.0", "pid": [0-9]+, "features": \["kvm"\]\}$'
	run ch a GET vm.info
	assert_output '404 ["Error from API", "The VM info is not available", "VM is not created"]'
	for ep in vm.boot vm.pause vm.resume vm.shutdown vm.reboot vm.power-button; do
		run ch a PUT $ep
		assert_output --regexp '^404 \["Error from API", "(The VM could not [a-z ]+|Error triggering power button)", "VM is not created"\]$'
	done
	run ch a PUT vm.snapshot '{"destination_url": "file:///tmp"}'
	assert_output --partial '404 ["Error from API", "The VM could not be snapshotted"'
}

@test "fake-cloud-hypervisor: vm.create checked against VmConfig; unknown fields ignored; once" {
	fake_start ch a
	run ch a PUT vm.create
	assert_output '400 ["Bad Request"]'
	run ch a PUT vm.create '{"cpus": {"boot_vcpus": 1, "max_vcpus": 1}}'
	assert_output '400 ["Error deserializing JSON", "missing field `payload`"]'
	run ch a PUT vm.create "$(ch_config "$T/vmlinux" '"memory": {"size": "big"}')"
	assert_output --partial '400 ["Error deserializing JSON", "invalid type'
	run ch a PUT vm.create '{"payload": {}, "vsock": {"cid": 2, "socket": "v.sock"}}'
	assert_output --partial '400 ["Error deserializing JSON", "invalid value at .vsock.cid'
	run ch a PUT vm.create "$(ch_config "$T/vmlinux" '"frobnicate": true')"
	assert_output '204 '
	run ch a GET vm.info
	assert_output --partial '"frobnicate": true}, "state": "Created"'
	run ch a PUT vm.create "$(ch_config)"
	assert_output '500 ["Error from API", "The VM could not be created", "VM is already created"]'
	run ch a GET vm.create
	assert_output '400 ["Bad Request"]'
	run ch a GET vm.nothing
	assert_output '404 '
}

@test "fake-cloud-hypervisor: wrong states are 500 (what the code emits, not the spec's 405)" {
	fake_start ch a
	ch a PUT vm.create "$(ch_config)"
	run ch a PUT vm.pause
	assert_output '500 ["Error from API", "The VM could not be paused", "Invalid VM state transition from Created (expected Running)"]'
	run ch a PUT vm.boot
	assert_output '204 '
	test -S "$T/v.sock"
	test -S "$T/s.sock"
	run ch a PUT vm.boot
	assert_output --partial '500 ["Error from API", "The VM could not boot", "Invalid VM state transition from Running'
	run ch a PUT vm.resume
	assert_output --partial '500 ["Error from API", "The VM could not resume"'
	run ch a PUT vm.snapshot "{\"destination_url\": \"file://$T\"}"
	assert_output --partial '500 ["Error from API", "The VM could not be snapshotted", "Invalid VM state transition from Running (expected Paused)"]'
	run ch a PUT vm.pause
	assert_output '204 '
	run ch a PUT vm.reboot
	assert_output --partial '500 ["Error from API", "The VM could not reboot"'
	run ch a GET vm.info
	assert_output --partial '"state": "Paused"'
}

@test "fake-cloud-hypervisor: a Pty console's path shows in vm.info, as CH reports it" {
	fake_start ch a
	ch a PUT vm.create "{\"payload\": {\"kernel\": \"$T/vmlinux\"}, \"serial\": {\"mode\": \"Null\"}, \"console\": {\"mode\": \"Pty\"}}"
	run ch a PUT vm.boot
	assert_output '204 '
	run ch a GET vm.info
	assert_output --partial '"console": {"mode": "Pty", "file": "/dev/pts/stub-con0"}'
}

@test "fake-cloud-hypervisor: a bzImage or a stale vsock socket fails vm.boot with 500; the VM stays Created" {
	fake_bzimage "$T/bzImage"
	fake_start ch a
	ch a PUT vm.create "$(ch_config "$T/bzImage")"
	run ch a PUT vm.boot
	assert_output '500 ["Error from API", "The VM could not boot", "Error loading kernel", "Failed to load ELF kernel image: Invalid ELF magic number"]'
	ch a PUT vm.delete
	touch "$T/v.sock"
	ch a PUT vm.create "$(ch_config)"
	run ch a PUT vm.boot
	assert_output --partial '500 ["Error from API", "The VM could not boot", "Error creating device manager", "[Errno 98] Address already in use"]'
	run ch a GET vm.info
	assert_output --partial '"state": "Created"'
	test ! -e "$T/s.sock"
}

@test "fake-cloud-hypervisor: snapshot when paused; restore only on a fresh VMM, from the config.json" {
	mkdir "$T/snap" "$T/rest"
	fake_start ch a
	ch a PUT vm.create "$(ch_config)"
	ch a PUT vm.boot
	ch a PUT vm.pause
	run ch a PUT vm.snapshot '{"destination_url": "file:///nonexistent/dir"}'
	assert_output --partial '500 ["Error from API", "The VM could not be snapshotted"'
	run ch a PUT vm.snapshot "{\"destination_url\": \"file://$T/snap\"}"
	assert_output '204 '
	test -s "$T/snap/config.json" && test -s "$T/snap/memory-ranges" && test -s "$T/snap/state.json"
	run ch a PUT vm.restore "{\"source_url\": \"file://$T/snap\"}"
	assert_output '404 ["Error from API", "The VM could not be restored", "VM is already created"]'
	# as the ch backend does: the paths rewritten in a copy of config.json, the rest linked
	sed 's/v\.sock/v2.sock/; s/s\.sock/s2.sock/' "$T/snap/config.json" >"$T/rest/config.json"
	ln -s ../snap/memory-ranges ../snap/state.json "$T/rest/"
	fake_start ch b
	run ch b PUT vm.restore "{\"source_url\": \"file://$T/rest\"}"
	assert_output '204 '
	test -S "$T/v2.sock" && test -S "$T/s2.sock"
	run ch b GET vm.info
	assert_output --partial '"state": "Paused"'
	assert_output --partial '"socket": "v2.sock"'
	run ch b PUT vm.resume
	assert_output '204 '
}

@test "fake-cloud-hypervisor: vm.shutdown keeps the VMM, vm.delete forgets the VM, vmm.shutdown exits" {
	fake_start ch a
	ch a PUT vm.create "$(ch_config)"
	ch a PUT vm.boot
	run ch a PUT vm.reboot
	assert_output '204 '
	grep -q 'qmp: event RESET' "$T/a.log" # returned after the reset, not before
	run ch a PUT vm.shutdown
	assert_output '204 '
	run ch a GET vm.info
	assert_output --partial '"state": "Created"'
	run ch a PUT vm.boot
	assert_output '204 '
	run ch a PUT vm.delete
	assert_output '204 '
	run ch a GET vm.info
	assert_output --partial '404 '
	run ch a PUT vmm.shutdown
	assert_output '204 '
	fake_wait_exit a
	assert_equal "$FAKE_RC" 0
	test ! -e "$T/a.sock"
}

@test "fake-cloud-hypervisor: vm.power-button: the guest powers off and the process exits" {
	fake_start ch a
	ch a PUT vm.create "$(ch_config)"
	ch a PUT vm.boot
	run ch a PUT vm.power-button
	assert_output '204 '
	fake_wait_exit a
	assert_equal "$FAKE_RC" 0
	test ! -e "$T/a.sock"
}

@test "fake-cloud-hypervisor: --api-socket path=X or X; other arguments are refused (exit 2)" {
	run "$FAKES/fake-cloud-hypervisor" --api-socket "path=$T/x.sock" --kernel k
	assert_failure 2
	assert_output --partial "unexpected argument '--kernel'"
	(cd "$T" && exec "$FAKES/fake-cloud-hypervisor" --api-socket "$T/a.sock" -v \
		</dev/null >"$T/a.out" 2>"$T/a.log") &
	echo $! >"$T/a.pid"
	wait_until 30 test -S "$T/a.sock"
	run ch a GET vmm.ping
	assert_output --partial '200 '
}

@test "the fakes' Python is pyflakes-clean" {
	/usr/bin/python3 -c 'import pyflakes' 2>/dev/null || skip "no pyflakes (python3-pyflakes)"
	run /usr/bin/python3 -m pyflakes "$FAKES"/fakevmm/*.py "$FAKES"/fake-firecracker \
		"$FAKES"/fake-cloud-hypervisor "$FAKES"/stub-qemu "$FAKES"/vsock-shell \
		"$TOP"/tests/guest/extract-vmlinux
	assert_success
	assert_output ''
}
