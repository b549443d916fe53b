#!/usr/bin/env bats
# The cloud-hypervisor backend on the tiny guest: boot, exec, jobs, waits,
# files/, the console, pause, a VLAN (TAPs), snapshot/restore/clone, halt,
# crash, a bad key at mount and a VMM error. This file runs them against
# tests/fakes/fake-cloud-hypervisor (CH's API checked against its spec, a
# QEMU/TCG guest behind it); t1511-cloud-hypervisor-real.bats, a link to
# it, runs the same tests against a real cloud-hypervisor ($CH_BINARY) on
# KVM, and skips each with the reason where there is none.

load helpers

# The machine's VMM: the fake, or (t1511) the real binary.
ch_mode() {
	case $(basename "$BATS_TEST_FILENAME") in
	*-real.bats) echo real ;;
	*) echo fake ;;
	esac
}

# Why the real binary cannot run here, or nothing.
ch_real_missing() {
	local why="real cloud-hypervisor runs need CH_BINARY and a working /dev/kvm"
	if [ -z "${CH_BINARY:-}" ]; then
		echo "$why: CH_BINARY is not set"
	elif [ ! -x "$CH_BINARY" ]; then
		echo "$why: CH_BINARY=$CH_BINARY is not executable"
	elif [ ! -e /dev/kvm ]; then
		echo "$why: /dev/kvm does not exist"
	elif ! (exec 9<>/dev/kvm) 2>/dev/null; then
		echo "$why: /dev/kvm cannot be opened read-write"
	fi
}

# The ELF vmlinux CH boots: the cache's, else extracted from its bzImage
# into this file's own directory (the cache is only read).
ch_kernel() {
	if [ -e "$GUESTS/tiny/vmlinux" ]; then
		echo "$GUESTS/tiny/vmlinux"
		return
	fi
	"$TOP/tests/guest/extract-vmlinux" "$GUESTS/tiny/vmlinuz" \
		"$BATS_FILE_TMPDIR/vmlinux" >&2 || return 1
	echo "$BATS_FILE_TMPDIR/vmlinux"
}

# ch_machine NAME KERNEL [extra JSON members]
ch_machine() {
	printf '"%s": {"backend": "cloud-hypervisor", "kernel": "%s", "initrd": "%s", "append": "console=ttyS0 quiet panic=-1", "cloud-hypervisor": {"binary": "%s"}%s}' \
		"$1" "$2" "$GUESTS/tiny/initrd.gz" "$CH_BIN" "${3:+, $3}"
}

typed_reaches_guest() {
	printf 'typed-1510\n' >"$VMS/c/console"
	tx "$VMS/c/exec" 'cat /tmp/typed 2>/dev/null' | grep -q typed-1510
}

setup_file() {
	export CH_SKIP=
	if [ "$(ch_mode)" = real ]; then
		CH_SKIP=$(ch_real_missing)
		[ -z "$CH_SKIP" ] || return 0
		export CH_BIN=$CH_BINARY
	else
		export CH_BIN=$TOP/tests/fakes/fake-cloud-hypervisor
	fi
	KERNEL=$(ch_kernel)
	export KERNEL
	# A raw disk with a mark at its start; every boot gets a fresh copy.
	export DISK=$BATS_FILE_TMPDIR/data.img
	printf 'attestfs-ch-disk\n' >"$DISK"
	truncate -s 1M "$DISK"
	# k's kernel is spoiled after the mount: the VMM refuses it at boot.
	cp "$KERNEL" "$BATS_FILE_TMPDIR/vmlinux-k"
	mount_attestfs "{\"machines\": {$(ch_machine c "$KERNEL" "\"disks\": [\"$DISK\"], \"vlans\": [1]"), $(ch_machine k "$BATS_FILE_TMPDIR/vmlinux-k"), $(ch_machine n "$KERNEL" "\"vlans\": [1]")}}"
	echo start >"$VMS/c/ctl"
}

teardown_file() { umount_attestfs; }

setup() {
	[ -z "$CH_SKIP" ] || skip "$CH_SKIP"
}

@test "a cloud-hypervisor machine boots; info names the VMM and its capabilities" {
	assert_equal "$(cat "$VMS/c/status")" running
	run cat "$VMS/c/info"
	assert_line 'backend cloud-hypervisor'
	assert_line 'capabilities pause,snapshot,links,tapnet'
	assert_line --regexp '^vmm cloud-hypervisor .+'
	assert_line --regexp '^pid [1-9][0-9]*$'
	assert_line --regexp '^shells [1-9]/4$'
	run grep -E 'cloud-hypervisor .* \(pid [0-9]+\): booted' "$VMS/c/log"
	assert_success
}

@test "exec: stdout, the exit status, stderr in the log" {
	run tx "$VMS/c/exec" 'echo hello; uname -s'
	assert_success
	assert_output $'hello\nLinux'
	run bash -c 'out=$( (exec 3<>"$0/c/exec"; printf "echo partial; echo to-stderr-1510 >&2; exit 3" >&3; cat <&3) ); echo "rc=$? out=$out"' "$VMS"
	assert_output --partial 'Remote I/O error'
	assert_output --partial 'rc=1 out=partial'
	run grep 'exit status 3' "$VMS/c/log"
	assert_success
	run grep -c 'exec stderr: to-stderr-1510' "$VMS/c/log"
	assert_output 1
}

@test "a job gives its exit status, stdout and stderr separately" {
	mkdir "$VMS/c/jobs/j1"
	echo 'echo out-line; echo err-line >&2; exit 7' >"$VMS/c/jobs/j1/cmd"
	run cat "$VMS/c/jobs/j1/exit"
	assert_output 7
	run cat "$VMS/c/jobs/j1/stdout"
	assert_output out-line
	run cat "$VMS/c/jobs/j1/stderr"
	assert_output err-line
	rmdir "$VMS/c/jobs/j1"
}

@test "a wait blocks until the guest makes it true" {
	tx_bg w "$VMS/c/wait" "timeout=$TEST_TIMEOUT file /tmp/flag-1510"
	tx "$VMS/c/exec" 'touch /tmp/flag-1510'
	wait_until "$TEST_TIMEOUT" test -s "$BATS_TEST_TMPDIR/w.rc"
	assert_equal "$(cat "$BATS_TEST_TMPDIR/w.rc")" 0
	run tx "$VMS/c/wait" 'timeout=1 file /tmp/never-1510'
	assert_failure
	assert_output --partial 'timed out'
}

@test "files/: cp in both directions, byte for byte" {
	head -c 200000 /dev/urandom >"$BATS_TEST_TMPDIR/blob"
	cp "$BATS_TEST_TMPDIR/blob" "$VMS/c/files/tmp/blob"
	guest=$(tx "$VMS/c/exec" 'sha256sum /tmp/blob' | cut -d' ' -f1)
	assert_equal "$guest" "$(sha256sum <"$BATS_TEST_TMPDIR/blob" | cut -d' ' -f1)"
	cp "$VMS/c/files/tmp/blob" "$BATS_TEST_TMPDIR/back"
	cmp "$BATS_TEST_TMPDIR/blob" "$BATS_TEST_TMPDIR/back"
	run cat "$VMS/c/files/proc/sys/kernel/hostname"
	assert_output tiny
}

@test "the console is the guest's serial port, both ways" {
	console_mark c mark-1510-out
	run grep -c mark-1510-out "$VMS/c/console"
	assert_success
	assert_console_kept c mark-1510-out
	# input: what the host writes to console reaches the guest's ttyS0
	# (written until the reader in the guest has the tty open: typed
	# before that, the line is dropped, as on a real serial port)
	tx "$VMS/c/exec" '(head -n 1 /dev/ttyS0 >/tmp/typed.part && mv /tmp/typed.part /tmp/typed) </dev/null >/dev/null 2>&1 &'
	wait_until "$TEST_TIMEOUT" typed_reaches_guest
	run tx "$VMS/c/exec" 'cat /tmp/typed'
	assert_output typed-1510
}

@test "the disk is a fresh raw copy: the guest sees it, the base never changes" {
	run tx "$VMS/c/exec" 'head -c 16 /dev/vda'
	assert_output attestfs-ch-disk
	tx "$VMS/c/exec" 'printf scribbled-on-it | dd of=/dev/vda conv=notrunc 2>/dev/null; sync'
	run tx "$VMS/c/exec" 'head -c 15 /dev/vda'
	assert_output scribbled-on-it
	run head -c 16 "$DISK"
	assert_output attestfs-ch-disk
}

@test "screen, keys and qmp are not there; pause and resume are" {
	run ls "$VMS/c"
	refute_line screen.png
	refute_line keys
	refute_line qmp
	echo pause >"$VMS/c/ctl"
	assert_equal "$(cat "$VMS/c/status")" paused
	echo resume >"$VMS/c/ctl"
	assert_equal "$(cat "$VMS/c/status")" running
	run tx "$VMS/c/exec" 'echo after-resume'
	assert_output after-resume
}

@test "a VLAN: TAPs in the mount's namespace, traffic by name, block and unblock" {
	echo start >"$VMS/n/ctl"
	run grep -F 'TAP at1-1 on bridge atbr1' "$VMS/c/log"
	assert_success
	run tx "$VMS/n/exec" 'ping -c 1 -W 5 c >/dev/null && echo reached'
	assert_output reached
	echo block >"$VMS/c/ctl"
	run tx "$VMS/n/exec" 'ping -c 1 -W 2 c'
	assert_failure
	echo unblock >"$VMS/c/ctl"
	run tx "$VMS/n/wait" "timeout=$TEST_TIMEOUT "'succeeds ping -c 1 -W 2 c'
	assert_success
	echo halt >"$VMS/n/ctl"
}

@test "snapshot and restore: the guest returns to the saved state" {
	tx "$VMS/c/exec" 'echo before > /tmp/before'
	echo 'snapshot s1' >"$VMS/c/ctl"
	run tx "$VMS/c/exec" 'echo still-running'
	assert_output still-running
	tx "$VMS/c/exec" 'echo after > /tmp/after'
	echo 'restore s1' >"$VMS/c/ctl"
	assert_equal "$(cat "$VMS/c/status")" running
	run tx "$VMS/c/exec" 'cat /tmp/before; test -e /tmp/after && echo after-survived || echo after-gone'
	assert_output $'before\nafter-gone'
	run grep -E 'restored_from s1' "$VMS/c/info"
	assert_success
	# its size counts the saved RAM (CH's memory-ranges)
	size=$(stat -c %s "$VMS/c/snapshots/s1")
	[ "$size" -gt 1000000 ]
}

@test "a clone continues the snapshot with its own name and disk" {
	echo 'clone c1 s1' >"$VMS/c/ctl"
	tx "$VMS/c1/exec" 'echo clone-mark > /tmp/mark'
	run tx "$VMS/c1/exec" 'cat /tmp/before /tmp/mark; hostname'
	assert_output $'before\nclone-mark\nc1'
	run tx "$VMS/c/exec" 'test -e /tmp/mark && echo leaked || echo own'
	assert_output own
	echo halt >"$VMS/c1/ctl"
	rmdir "$VMS/c1"
}

@test "reboot returns when the guest is back, in the same VMM" {
	pid=$(vmm_pid c)
	tx "$VMS/c/exec" 'touch /tmp/before-reboot'
	echo reboot >"$VMS/c/ctl"
	assert_equal "$(cat "$VMS/c/status")" running
	run tx "$VMS/c/exec" 'test -e /tmp/before-reboot && echo survived || echo fresh'
	assert_output fresh
	# CH reboots a guest in its own process
	assert_equal "$(vmm_pid c)" "$pid"
}

@test "crash: status crashed, exec fails with EIO; start boots it again" {
	pid=$(vmm_pid c)
	echo crash >"$VMS/c/ctl"
	assert_equal "$(cat "$VMS/c/status")" crashed
	run tx "$VMS/c/exec" 'echo hi'
	assert_failure
	assert_output --partial 'Input/output error'
	assert_gone "$pid"
	echo start >"$VMS/c/ctl"
	run tx "$VMS/c/exec" 'echo back'
	assert_output back
	# a fresh copy of the base: what the last boot wrote is gone
	run tx "$VMS/c/exec" 'head -c 16 /dev/vda'
	assert_output attestfs-ch-disk
}

@test "halt stops the VMM: status stopped, its process gone" {
	pid=$(vmm_pid c)
	[ -n "$pid" ]
	echo halt >"$VMS/c/ctl"
	assert_equal "$(cat "$VMS/c/status")" stopped
	assert_gone "$pid"
	run grep -E '^halt$|halt' "$VMS/c/log"
	assert_success
}

@test "a VMM error: the reason in <m>/log, EIO for the caller" {
	printf 'not a kernel any more\n' >"$BATS_FILE_TMPDIR/vmlinux-k"
	run bash -c 'echo start >"$0/k/ctl"' "$VMS"
	assert_failure
	assert_output --partial 'Input/output error'
	assert_equal "$(cat "$VMS/k/status")" stopped
	run grep -F 'cloud-hypervisor: PUT /vm.boot: ' "$VMS/k/log"
	assert_success
	assert_output --partial 'ELF'
}

@test "a bad cloud-hypervisor key is refused before mounting, with its path" {
	local w=$BATS_TEST_TMPDIR
	mkdir -p "$w/vms"
	printf '{"machines": {"x": {"backend": "cloud-hypervisor", "kernel": "%s", "cloud-hypervisor": {"binary": "/nonexistent/ch"}}}}\n' \
		"$KERNEL" >"$w/bad.json"
	run "$ATTESTFS" -f -o "config=$w/bad.json,state_dir=$w/state" "$w/vms"
	assert_failure
	assert_output --partial "$w/bad.json: machines.x.cloud-hypervisor.binary: /nonexistent/ch (from this key): No such file or directory"
	printf '{"machines": {"x": {"backend": "cloud-hypervisor", "kernel": "%s", "accel": "tcg"}}}\n' \
		"$KERNEL" >"$w/bad.json"
	run "$ATTESTFS" -f -o "config=$w/bad.json,state_dir=$w/state" "$w/vms"
	assert_failure
	assert_output --partial "machines.x.accel: cloud-hypervisor runs guests on KVM only"
	printf '{"machines": {"x": {"backend": "cloud-hypervisor", "kernel": "%s"}}}\n' \
		"$GUESTS/tiny/vmlinuz" >"$w/bad.json"
	run "$ATTESTFS" -f -o "config=$w/bad.json,state_dir=$w/state" "$w/vms"
	assert_failure
	assert_output --partial "machines.x.kernel: $GUESTS/tiny/vmlinuz is a compressed bzImage"
	run mountpoint -q "$w/vms"
	assert_failure
}
