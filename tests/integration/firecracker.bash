# Shared by the firecracker files (t1500, t1501 = t1500 against a real
# firecracker, t1502): the tiny guest as a firecracker machine, the mode
# (fake or real) and its reason to skip, and the clean-up of leftover VMMs.

real_run() { [[ $BATS_TEST_FILENAME == *-real.bats ]]; }

# Why a real run cannot happen here, or nothing.
real_missing() {
	if [ -z "${FC_BINARY:-}" ]; then
		echo "a real firecracker run needs FC_BINARY (the firecracker binary)"
	elif ! [ -x "$FC_BINARY" ] && ! command -v "$FC_BINARY" >/dev/null; then
		echo "FC_BINARY=$FC_BINARY is not executable"
	elif ! [ -c /dev/kvm ]; then
		echo "a real firecracker run needs a working /dev/kvm (not a device here)"
	elif ! { exec 9<>/dev/kvm; } 2>/dev/null; then
		echo "a real firecracker run needs a working /dev/kvm (cannot open it)"
	fi
	exec 9>&- 2>/dev/null || true
}

# fc_machine NAME [extra JSON members]: the tiny guest on firecracker.
fc_machine() {
	printf '"%s": {"backend": "firecracker", %s"kernel": "%s", "initrd": "%s", "append": "console=ttyS0 quiet panic=-1"%s}' \
		"$1" "$FC_KEYS" "${3:-$KERNEL}" "$GUESTS/tiny/initrd.gz" "${2:+, $2}"
}

# fc_setup: FC_KEYS and KERNEL for fc_machine; in a real run without
# FC_BINARY or /dev/kvm, FC_SKIP says why and it returns 1 (each test's
# setup skips: bats 1.8 cannot skip in setup_file).
fc_setup() {
	export FC_SKIP=
	if real_run; then
		FC_SKIP=$(real_missing)
		[ -z "$FC_SKIP" ] || return 1
		export FC_KEYS=''
	else
		export FC_KEYS="\"firecracker\": {\"binary\": \"$TOP/tests/fakes/fake-firecracker\"}, "
	fi
	# Firecracker boots an ELF vmlinux, not the guests' bzImage.
	export KERNEL=$GUESTS/tiny/vmlinux
	if ! [ -e "$KERNEL" ]; then
		KERNEL=$BATS_FILE_TMPDIR/vmlinux
		"$TOP/tests/guest/extract-vmlinux" "$GUESTS/tiny/vmlinuz" "$KERNEL"
	fi
}

kill_leftover_fcs() {
	local f pid
	for f in "$STATE"/*/firecracker*.pid; do
		[ -e "$f" ] || continue
		pid=$(cat "$f" 2>/dev/null) || continue
		if [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null; then
			echo "# leftover firecracker $pid from $f" >&3
			kill -9 "$pid" 2>/dev/null || true
		fi
	done
	return 0
}

fc_teardown_file() {
	[ -z "$FC_SKIP" ] || return 0
	umount_attestfs
	kill_leftover_fcs
}

setup() {
	[ -z "$FC_SKIP" ] || skip "$FC_SKIP"
}

fc_pid() { sed -n 's/^pid //p' "$VMS/$1/info"; }
