#!/usr/bin/env bats
# The flake for real, in Nix's build sandbox, on a machine without nixpkgs:
# the stub of nix/stub-nixpkgs stands in for nixpkgs (the host's compiler,
# QEMU and tiny guest), with a private nix.conf (NIX_CONF_DIR; /etc/nix is
# left alone). attestfs builds in the sandbox, the hello example boots the
# tiny guest there and passes, a failing script fails its build.

load helpers

setup_file() {
	# bats 1.8 cannot skip in setup_file: mark it, skip in setup.
	export NIX_SKIP=""
	if ! command -v nix >/dev/null; then
		NIX_SKIP="nix is not installed (scripts/install-deps.sh installs nix-bin)"
	elif [ "$(id -u)" != 0 ]; then
		NIX_SKIP="needs root: without a nix-daemon only root can build in the local store"
	elif ! getent group nixbld >/dev/null; then
		NIX_SKIP="no nixbld group (scripts/install-deps.sh makes it)"
	elif [ ! -e "$GUESTS/tiny/initrd.gz" ]; then
		NIX_SKIP="the tiny guest is not built (make guest)"
	fi
	[ -z "$NIX_SKIP" ] || return 0
	export N=$BATS_FILE_TMPDIR
	# the flake as the repository has it (tracked and new files, no build output)
	mkdir -p "$N/src" "$N/stub/guests/tiny" "$N/conf"
	if git -C "$TOP" rev-parse 2>/dev/null; then
		(cd "$TOP" && git ls-files -z --cached --others --exclude-standard |
			xargs -0 cp --parents -t "$N/src")
	else
		(cd "$TOP" && tar --exclude=./build --exclude=./attestfs --exclude=./attestfs-ocr \
			--exclude=./attestfs-run -cf - .) | tar -xf - -C "$N/src"
	fi
	# the stub with the tiny guest dereferenced (its kernel is a link
	# out of its directory, which would dangle in the store)
	cp "$TOP/nix/stub-nixpkgs/flake.nix" "$N/stub/"
	cp -L "$GUESTS/tiny/vmlinuz" "$GUESTS/tiny/initrd.gz" "$N/stub/guests/tiny/"
	# /dev/fuse for the build user (the host's may be 0600)
	mknod -m 666 "$N/fuse" c 10 229
	cat >"$N/conf/nix.conf" <<-EOF
		build-users-group = nixbld
		sandbox = true
		sandbox-fallback = false
		experimental-features = nix-command flakes
		substituters =
		extra-sandbox-paths = /bin /usr /lib /lib64
		extra-sandbox-paths = /dev/fuse=$N/fuse
		extra-system-features = fuse
	EOF
	export NIX_CONF_DIR=$N/conf
}

setup() {
	[ -z "$NIX_SKIP" ] || skip "$NIX_SKIP"
}

# nixf ARGS... INSTALLABLE_SUFFIX: nix with the stub for nixpkgs
nixf() {
	local cmd=$1 attr=$2
	shift 2
	nix $cmd --override-input nixpkgs "path:$N/stub" "$@" "path:$N/src$attr"
}

# A store path that nothing keeps alive is deleted, so that the next build
# really runs (a cached pass proves nothing).
forget() { # ATTR
	local out
	out=$(nixf eval "#$1.outPath" --raw 2>/dev/null) || return 0
	nix store delete "$out" >/dev/null 2>&1 || true
}

@test "every .nix file parses (nix-instantiate --parse)" {
	for f in "$TOP/flake.nix" "$TOP"/nix/*.nix "$TOP"/nix/*/*.nix; do
		run nix-instantiate --parse "$f"
		assert_success
	done
}

@test "the builders' scripts pass shellcheck" {
	command -v shellcheck >/dev/null || skip "no shellcheck"
	run shellcheck "$TOP"/nix/*.sh
	assert_success
}

@test "nix flake show: the outputs, under the names a nixpkgs user gets" {
	run nixf "flake show" ""
	assert_success
	output=$(printf '%s\n' "$output" | sed 's/\x1b\[[0-9;]*m//g')
	for want in 'packages' 'default: package' 'checks' 'hello: derivation' \
		'unit: derivation' 'web-db: derivation' 'snapshots: derivation' 'lib' \
		'testInstrumentation: NixOS module' 'overlays' 'default: Nixpkgs overlay' \
		'devShells'; do
		assert_output --partial "$want"
	done
}

@test "nix flake check --no-build evaluates every output" {
	run nixf "flake check" "" --no-build
	assert_success
}

@test "the nixpkgs flavour evaluates: nodes become machines (a fake nixpkgs)" {
	fake=(--override-input nixpkgs "path:$N/src/nix/tests/fake-nixpkgs")
	run nix flake check --no-build "${fake[@]}" "path:$N/src"
	assert_success
	run nix eval --json "${fake[@]}" "path:$N/src#checks.x86_64-linux.web-db.config"
	assert_success
	assert_output --regexp '"web":\{"shells":4,"start_command":"/nix/store/[^"]*/bin/run-web-vm","vlans":\[1,2\]\}'
	assert_output --regexp '"db":\{[^}]*"vlans":\[2\]\}'
	run nix eval --raw "${fake[@]}" "path:$N/src#checks.x86_64-linux.hello.name"
	assert_line vm-test-run-hello
}

@test "attestfs builds in the sandbox with attestfs-run and attestfs-ocr" {
	forget packages.x86_64-linux.default
	start=$(date +%s%N)
	run nixf build "#packages.x86_64-linux.default" -L -o "$N/attestfs"
	echo "# attestfs built in the sandbox in $((($(date +%s%N) - start) / 1000000)) ms" >&3
	assert_success
	for b in attestfs attestfs-run attestfs-ocr; do
		[ -x "$N/attestfs/bin/$b" ]
	done
}

@test "attestfs-run mounts attestfs in the sandbox (a mock machine, no VM)" {
	forget legacyPackages.x86_64-linux.selfTests.mock
	run nixf build "#legacyPackages.x86_64-linux.selfTests.mock" -L --no-link
	assert_success
	assert_output --partial 'status: running'
	assert_output --regexp 'attestfs /build/attestfs-run\.[^ ]*/vms fuse\.attestfs rw'
	assert_output --partial 'pid 1: attestfs-run'
	assert_output --partial 'mock: passed'
}

@test "the hello example boots the tiny guest in the sandbox and passes" {
	forget checks.x86_64-linux.hello
	start=$(date +%s%N)
	run nixf build "#checks.x86_64-linux.hello" -L -o "$N/hello"
	echo "# the hello test built in $((($(date +%s%N) - start) / 1000000)) ms" >&3
	assert_success
	# really booted and ran: the guest's console and the script's steps
	assert_output --partial 'hello # '
	assert_output --partial '== run a command and check its output'
	assert_output --partial 'Linux 6.'
	assert_output --partial 'hello: passed'
	run cat "$N/hello/result"
	assert_output 'hello passed'
}

@test "a failing test script fails its build, after booting the guest" {
	start=$(date +%s%N)
	run nixf build "#legacyPackages.x86_64-linux.selfTests.failing" -L --no-link
	echo "# the failing test failed in $((($(date +%s%N) - start) / 1000000)) ms" >&3
	assert_failure
	assert_output --partial 'the guest answers: Linux'
	assert_output --partial 'a command that fails on purpose:'
	refute_output --partial 'not reached'
	assert_output --partial 'failing: the test script failed (exit status'
	assert_output --regexp "builder for '/nix/store/[^']*vm-test-run-failing.drv' failed"
}

@test "a script that does not parse fails before any machine boots" {
	run nixf build "#legacyPackages.x86_64-linux.selfTests.syntaxError" -L --no-link
	assert_failure
	assert_output --partial 'syntax-error: testScript: syntax error (bash -n)'
	refute_output --partial 'hello # '
}

@test "the artifacts of a failing test: its status and the logs" {
	forget legacyPackages.x86_64-linux.selfTests.failing.artifacts
	run nixf build "#legacyPackages.x86_64-linux.selfTests.failing.artifacts" -L -o "$N/art"
	assert_success
	run cat "$N/art/status"
	refute_output 0
	run grep -c . "$N/art/hello/console.log"
	assert_success
	run grep 'exit status 3' "$N/art/hello/log"
	assert_success
}

@test "nix flake check builds and runs every check" {
	run nixf "flake check" "" -L
	assert_success
}

@test "the interactive launcher: a shell on the test's machines" {
	command -v script >/dev/null || skip "no script(1)"
	run nixf build "#checks.x86_64-linux.hello.interactive" -o "$N/inter"
	assert_success
	run bash -c "printf 'echo \"machine: \$(cat \"\$VMS/hello/status\")\"; type succeed; exit 4\\n' |
		ATTESTFS_LOG='$N/inter.log' timeout $TEST_TIMEOUT script -qec '$N/inter/bin/attestfs-interactive-hello' /dev/null"
	assert_equal "$status" 4
	assert_output --partial 'machines: hello'
	assert_output --partial 'machine: stopped'
	assert_output --partial 'succeed is a function'
	run grep 'attestfs: mounted 1 machines' "$N/inter.log"
	assert_success
}

# ---- lib.runNixOSTest: nixpkgs' arguments, a Python testScript ----

need_python_driver() {
	[ -e "$TOP/python/bin/attestfs-test-driver" ] ||
		skip "the Python driver (python/, issue 14 item 1) is not in this tree"
}

@test "runNixOSTest with nixpkgs (a fake one) evaluates: nodes become machines, testScript takes the nodes, .driverInteractive" {
	fake=(--override-input nixpkgs "path:$N/src/nix/tests/fake-nixpkgs")
	t="path:$N/src#legacyPackages.x86_64-linux.selfTests.python"
	run nix eval --json "${fake[@]}" "$t.config"
	assert_success
	assert_output --regexp '"hello":\{"shells":4,"start_command":"/nix/store/[^"]*/bin/run-hello-vm"'
	run nix eval --raw "${fake[@]}" "$t.drvAttrs.testScript"
	assert_output --partial 'machine.wait_for_unit("multi-user.target")'
	assert_output --partial 'nodes, as nixpkgs passes them: hello'
	run nix eval --raw "${fake[@]}" "$t.drvAttrs.language"
	assert_line python
	run nix eval --raw "${fake[@]}" "$t.driverInteractive.name"
	assert_line nixos-test-driver-interactive-python
	run nix eval --raw "${fake[@]}" "$t.driver.name"
	assert_line nixos-test-driver-python
}

@test "runNixOSTest: a Python testScript runs in the sandbox (attestfs-test-driver, a mock machine); .artifacts has junit.xml" {
	need_python_driver
	forget legacyPackages.x86_64-linux.selfTests.python-mock
	run nixf build "#legacyPackages.x86_64-linux.selfTests.python-mock" -L --no-link
	assert_success
	assert_output --partial 'subtest: the mock answers'
	assert_output --partial 'python-mock: passed'
	forget legacyPackages.x86_64-linux.selfTests.python-mock.artifacts
	run nixf build "#legacyPackages.x86_64-linux.selfTests.python-mock.artifacts" -o "$N/pyart"
	assert_success
	run cat "$N/pyart/status"
	assert_output 0
	run grep -c '<testcase name="the mock answers"' "$N/pyart/junit.xml"
	assert_output 1
}

@test "runNixOSTest: a failing Python script fails its build; an undefined name fails pyflakes before anything boots" {
	need_python_driver
	run nixf build "#legacyPackages.x86_64-linux.selfTests.python-failing" -L --no-link
	assert_failure
	assert_output --partial 'the guest answers'
	refute_output --partial 'not reached'
	assert_output --partial 'python-failing: the test script failed (exit status'
	command -v pyflakes3 >/dev/null || /usr/bin/python3 -c 'import pyflakes' ||
		skip "no pyflakes on the host (python3-pyflakes)"
	run nixf build "#legacyPackages.x86_64-linux.selfTests.python-lint" -L --no-link
	assert_failure
	assert_output --partial "undefined name 'no_such_name'"
	assert_output --partial 'python-lint: testScript: pyflakes found problems'
	refute_output --partial 'm: starting'
}

@test "runNixOSTest: .driverInteractive opens the driver's REPL on the test's machines outside Nix" {
	need_python_driver
	run nixf build "#legacyPackages.x86_64-linux.selfTests.python-mock.driverInteractive" -o "$N/pyi"
	assert_success
	run bash -c "printf 'print(\"answer:\", machine.succeed(\"echo 42\").strip())\n' |
		ATTESTFS_LOG='$N/pyi.log' timeout $TEST_TIMEOUT '$N/pyi/bin/nixos-test-driver'"
	assert_success
	assert_output --partial 'answer: 42'
}

@test "runNixOSTest: hello-python, the hello example as a NixOS Python test, boots the tiny guest in the sandbox" {
	need_python_driver
	forget checks.x86_64-linux.hello-python
	run nixf build "#checks.x86_64-linux.hello-python" -L --no-link
	assert_success
	assert_output --partial 'hello # '
	assert_output --partial 'subtest: run a command and check its output'
	assert_output --regexp 'Linux [^ ]+ 6\.'
	assert_output --partial 'hello-python: passed'
}
