#!/usr/bin/env bats
# The fake VMMs with the real tiny guest behind them (QEMU/TCG): boot through the API, a shell
# over the hybrid vsock, pause and resume, a snapshot loaded by a new process, and the process
# ending with the guest. No attestfs mount: the fakes are tested as the backends will use them.
# (tests/contract/t0100-fakes.bats covers the refusals without a guest.)

load helpers
load ../fakes/fakes

setup_file() {
	[ -e "$GUESTS/tiny/initrd.gz" ] || return 0
	# the ELF kernel the microVMs boot: the cache's (build.sh), else extracted here
	export VMLINUX=$GUESTS/tiny/vmlinux
	if [ ! -e "$VMLINUX" ]; then
		VMLINUX=$BATS_FILE_TMPDIR/vmlinux
		"$TOP/tests/guest/extract-vmlinux" "$GUESTS/tiny/vmlinuz" "$VMLINUX"
	fi
}

setup() {
	[ -e "$GUESTS/tiny/initrd.gz" ] || skip "no tiny guest in $GUESTS (make guest)"
	T=$BATS_TEST_TMPDIR
	INITRD=$GUESTS/tiny/initrd.gz
	# a data disk the guest reads back as /dev/vda
	printf 'disk-marker-42' >"$T/disk.raw"
	truncate -s 1M "$T/disk.raw"
}

teardown() {
	fake_stop_all
}

# shell UDS CMD: CMD in the guest over the vsock (retried while the guest boots)
shell() {
	"$FAKES/vsock-shell" --wait "$TEST_TIMEOUT" "$@"
}

# serial_until SOCKET TEXT: reads the serial socket until TEXT appears
serial_until() {
	timeout "$TEST_TIMEOUT" python3 - "$1" "$2" <<-'EOF'
		import socket, sys
		s = socket.socket(socket.AF_UNIX); s.connect(sys.argv[1]); buf = b""
		while sys.argv[2].encode() not in buf:
		    d = s.recv(4096)
		    if not d: sys.exit("serial closed")
		    buf += d
	EOF
}

@test "fake-firecracker: boot, vsock shell, pause, snapshot, load in a new process, SendCtrlAltDel" {
	fake_start fc a --id a
	run api a PUT /machine-config '{"vcpu_count": 1, "mem_size_mib": 256}'
	assert_output '204 '
	run api a PUT /boot-source "{\"kernel_image_path\": \"$VMLINUX\", \"initrd_path\": \"$INITRD\", \"boot_args\": \"console=ttyS0 quiet panic=-1 reboot=k pci=off\"}"
	assert_output '204 '
	run api a PUT /drives/data '{"drive_id": "data", "is_root_device": false, "path_on_host": "disk.raw", "is_read_only": false}'
	assert_output '204 '
	run api a PUT /vsock '{"guest_cid": 3, "uds_path": "v.sock"}'
	assert_output '204 '
	run api a PUT /actions '{"action_type": "InstanceStart"}'
	assert_output '204 '
	run shell "$T/v.sock" 'echo hi; head -c 14 /dev/vda; echo; echo before >/tmp/marker'
	assert_success
	assert_output $'hi\ndisk-marker-42'
	grep -q 'attestfs tiny guest: backdoor on 4 ports' "$T/a.out" # the console: its stdout

	run api a PATCH /vm '{"state": "Paused"}'
	assert_output '204 '
	run api a PUT /snapshot/create '{"snapshot_path": "snap", "mem_file_path": "mem"}'
	assert_output '204 '
	grep -q 'vsock: reset' "$T/a.log"
	run api a PATCH /vm '{"state": "Resumed"}'
	assert_output '204 '
	run shell "$T/v.sock" 'cat /tmp/marker; echo after >/tmp/marker'
	assert_output 'before'

	run api a PUT /actions '{"action_type": "SendCtrlAltDel"}'
	assert_output '204 '
	fake_wait_exit a
	assert_equal "$FAKE_RC" 0
	test ! -e "$T/a.sock"

	rm "$T/v.sock" # left behind, as Firecracker leaves it
	fake_start fc b
	run api b PUT /snapshot/load '{"snapshot_path": "snap", "mem_backend": {"backend_type": "File", "backend_path": "mem"}, "resume_vm": true}'
	assert_output '204 '
	run shell "$T/v.sock" 'cat /tmp/marker'
	assert_success
	assert_output 'before'
	run api b PUT /actions '{"action_type": "SendCtrlAltDel"}'
	assert_output '204 '
	fake_wait_exit b
	assert_equal "$FAKE_RC" 0
	test ! -e "$T/b.sock"
}

ch_config() {
	printf '{"payload": {"kernel": "%s", "initramfs": "%s", "cmdline": "console=ttyS0 quiet panic=-1"}, "cpus": {"boot_vcpus": 1, "max_vcpus": 1}, "memory": {"size": 268435456}, "disks": [{"path": "disk.raw", "readonly": false, "image_type": "Raw"}], "serial": {"mode": "Socket", "socket": "%s"}, "console": {"mode": "Off"}, "vsock": {"cid": 3, "socket": "%s"}}' \
		"$VMLINUX" "$INITRD" "$1" "$2"
}

@test "fake-cloud-hypervisor: boot, serial socket, vsock shell, snapshot, reboot, restore in a new process" {
	mkdir "$T/snap" "$T/rest"
	fake_start ch a
	run ch a PUT vm.create "$(ch_config s.sock v.sock)"
	assert_output '204 '
	run ch a PUT vm.boot
	assert_output '204 '
	run shell "$T/v.sock" 'echo hi; head -c 14 /dev/vda; echo; echo before >/tmp/marker'
	assert_success
	assert_output $'hi\ndisk-marker-42'
	# the boot's output was kept while no client was connected, and is replayed
	serial_until "$T/s.sock" 'attestfs tiny guest: backdoor on 4 ports'

	run ch a PUT vm.pause
	assert_output '204 '
	run ch a GET vm.info
	assert_output --partial '"state": "Paused"'
	run ch a PUT vm.snapshot "{\"destination_url\": \"file://$T/snap\"}"
	assert_output '204 '
	run ch a PUT vm.resume
	assert_output '204 '
	run shell "$T/v.sock" 'cat /tmp/marker; echo after >/tmp/marker; cat /proc/sys/kernel/random/boot_id >/tmp/boot'
	assert_output 'before'

	run ch a PUT vm.reboot
	assert_output '204 '
	run shell "$T/v.sock" 'test -e /tmp/boot || echo rebooted'
	assert_output 'rebooted'
	run ch a PUT vmm.shutdown
	assert_output '204 '
	fake_wait_exit a
	assert_equal "$FAKE_RC" 0
	test ! -e "$T/a.sock"

	# as the ch backend restores: config.json with this launch's paths, the rest linked
	sed 's/"s\.sock"/"s2.sock"/; s/"v\.sock"/"v2.sock"/' "$T/snap/config.json" >"$T/rest/config.json"
	ln -s ../snap/memory-ranges ../snap/state.json "$T/rest/"
	fake_start ch b
	run ch b PUT vm.restore "{\"source_url\": \"file://$T/rest\"}"
	assert_output '204 '
	run ch b PUT vm.resume
	assert_output '204 '
	run shell "$T/v2.sock" 'cat /tmp/marker'
	assert_success
	assert_output 'before'
	run ch b PUT vmm.shutdown
	assert_output '204 '
	fake_wait_exit b
	assert_equal "$FAKE_RC" 0
}

@test "fake-cloud-hypervisor: vm.power-button powers the guest off and the process exits" {
	zcat "$INITRD" | cpio -t --quiet 2>/dev/null | grep -q '/button\.ko$' ||
		skip "this tiny guest predates its ACPI power button (make guest)"
	fake_start ch a
	ch a PUT vm.create "$(ch_config s.sock v.sock)"
	ch a PUT vm.boot
	run shell "$T/v.sock" 'echo up'
	assert_output 'up'
	run ch a PUT vm.power-button
	assert_output '204 '
	fake_wait_exit a
	assert_equal "$FAKE_RC" 0
	test ! -e "$T/a.sock"
	grep -q 'qmp: event SHUTDOWN {"guest": true, "reason": "guest-shutdown"}' "$T/a.log"
}

@test "fake-firecracker: the debian (systemd) guest from a root drive; SendCtrlAltDel ends it" {
	local d=$GUESTS/debian
	[ -e "$d/base.img" ] || skip "no debian guest in $GUESTS (make guest-debian, as root)"
	cp --reflink=auto --sparse=always "$d/base.img" "$T/root.raw" # FC takes a raw, writable copy
	fake_start fc a
	api a PUT /machine-config '{"vcpu_count": 2, "mem_size_mib": 256}'
	api a PUT /boot-source "{\"kernel_image_path\": \"$VMLINUX\", \"initrd_path\": \"$d/initrd.gz\", \"boot_args\": \"console=ttyS0 quiet panic=-1 reboot=k pci=off\"}"
	run api a PUT /drives/rootfs '{"drive_id": "rootfs", "is_root_device": true, "path_on_host": "root.raw", "is_read_only": false}'
	assert_output '204 '
	api a PUT /vsock '{"guest_cid": 3, "uds_path": "v.sock"}'
	run api a PUT /actions '{"action_type": "InstanceStart"}'
	assert_output '204 '
	run shell "$T/v.sock" 'grep -o "root=/dev/vda rw" /proc/cmdline; systemctl is-system-running --wait'
	assert_success
	assert_output $'root=/dev/vda rw\nrunning'
	run api a PUT /actions '{"action_type": "SendCtrlAltDel"}'
	assert_output '204 '
	fake_wait_exit a
	assert_equal "$FAKE_RC" 0
	test ! -e "$T/a.sock"
}
