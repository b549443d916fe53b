#!/usr/bin/env bats
# attestfs-run -i: the mount, nothing booted, a shell with VMS, the Python
# API on PYTHONPATH and attestfs-shell on PATH, the daemon's output aside.
# Driven with stdin from a script (no terminal); the mock, no guest.

load ../integration/helpers

setup() {
	D=$BATS_TEST_TMPDIR
	printf '{"machines": {"m": {"backend": "mock"}}}\n' >"$D/mock.json"
}

teardown() {
	if [ -z "${BATS_TEST_COMPLETED:-}" ] && [ -e "$D/state/m/log" ]; then
		echo "# ---- m: log" >&3
		sed 's/^/# /' "$D/state/m/log" >&3
	fi
}

@test "attestfs-run -i: a shell with VMS, nothing booted, the shell's status; the daemon's output in ATTESTFS_LOG" {
	run "$TOP/attestfs-run" -i -o "state_dir=$D/state" "$D/mock.json" sh -i <<-'EOF'
		echo "status=$(cat "$VMS/m/status")"
		test -s "$ATTESTFS_LOG" && echo "log ok"
		attestfs-shell -c 'echo "guest tty $(tty)"; exit 2' m </dev/null
		echo "shell=$?"
		. "$VMS/attest.sh"; succeed m 'echo via attest.sh'
		exit 4
	EOF
	assert_equal "$status" 4
	# (an interactive sh prompts on stderr: "# " before each line)
	assert_output --partial 'status=stopped'
	assert_output --partial 'log ok'
	assert_output --regexp 'guest tty /dev/pts/[0-9]+'
	assert_output --partial 'shell=2'
	assert_output --partial 'via attest.sh'
	assert_output --partial 'attestfs-run: interactive. The machines are in $VMS'
	# the daemon's console lines are not in the shell's output
	refute_output --partial 'm # '
}

@test "attestfs-run -i: the Python API beside the binaries (source tree or make install) is importable" {
	local p=$BATS_TEST_TMPDIR/inst
	mkdir -p "$p/bin" "$p/lib/attestfs/python/attestfs_nixos"
	cp "$TOP/attestfs" "$TOP/attestfs-run" "$TOP/attestfs-shell" "$p/bin/"
	echo 'HERE = "installed"' >"$p/lib/attestfs/python/attestfs_nixos/__init__.py"
	# a shell named explicitly and not interactive: $SHELL differs between
	# machines, and an interactive one's prompt would share the output's lines
	PYTHONPATH=/elsewhere run "$p/bin/attestfs-run" -i "$D/mock.json" sh <<-'EOF'
		echo "PP=$PYTHONPATH"
		python3 -c 'import attestfs_nixos; print("api", attestfs_nixos.HERE)'
	EOF
	assert_success
	assert_line "PP=$p/lib/attestfs/python:/elsewhere"
	assert_line 'api installed'
	refute_output --partial '(not found here)'
}

@test "attestfs-run -i without a shell runs \$SHELL -i; without -i a TEST is required" {
	SHELL=/bin/sh run "$TOP/attestfs-run" -i "$D/mock.json" <<<'echo "in $0"; exit 6'
	assert_equal "$status" 6
	assert_output --partial 'in /bin/sh'
	run "$TOP/attestfs-run" "$D/mock.json"
	assert_equal "$status" 2
}
