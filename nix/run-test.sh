# shellcheck shell=bash disable=SC2154 # the derivation's attributes arrive as variables
# The builder of the derivations of lib.makeTest (nix/make-test.nix), run by
# bash in the build sandbox. $mode says which:
#   run          check the script, mount attestfs with attestfs-run, run the
#                script; its failure fails the build; $out holds one fixed
#                line, so that `nix build --rebuild` can run it again
#   artifacts    the same, but the build always succeeds: $out holds the
#                script's status, its and the daemon's output (output.log:
#                the console lines are there), each machine's log, the
#                console logs, the events and whatever the script saved in
#                $ARTIFACTS (screenshots)
#   interactive  $out/bin/attestfs-interactive-NAME: attestfs-run with an
#                interactive shell on the same machines (run outside Nix);
#                for Python ($language) bin/nixos-test-driver, which runs
#                attestfs-test-driver -I there (.driverInteractive)
#   driver       Python: bin/nixos-test-driver, the test outside Nix
#                (.driver)
# $language is shell (bash runs the script) or python (attestfs-test-driver,
# the NixOS driver's API over the mount).
# Bash stays the top process to the end (no exec of the last command): Nix
# 2.8 SIGKILLs a builder whose last process closes stderr before it exits.
set -u
machines=$TMPDIR/machines.json
script=$TMPDIR/test.sh
[ "$language" = python ] && script=$TMPDIR/test.py
driver=$attestfs/bin/attestfs-test-driver
cp "$machinesJsonPath" "$machines"
cp "$testScriptPath" "$script"

say() {
	printf '%s: %s\n' "$testName" "$*" >&2
}

# pyflakes' builtins: the driver's symbols (attestfs_nixos.pinned), each
# machine by its Python name, machine when there is one, the VLANs.
python_builtins() {
	python3 - "$machines" "$attestfs/lib/attestfs/python" <<-'PY'
		import json, re, sys
		sys.path.insert(0, sys.argv[2])
		from attestfs_nixos.pinned import PINNED_SYMBOLS
		ms = json.load(open(sys.argv[1]))["machines"]
		names = set(PINNED_SYMBOLS) | {"machine"} if len(ms) == 1 else set(PINNED_SYMBOLS)
		names |= {re.sub(r"^[^A-Za-z_]|[^A-Za-z0-9_]", "_", n) for n in ms}
		names |= {"vlan%d" % v for m in ms.values() for v in m.get("vlans", [])}
		print(",".join(sorted(names)))
	PY
}

check_python() {
	local builtins
	if [ ! -e "$driver" ]; then
		say "attestfs-test-driver is not in $attestfs/bin (the Python driver)"
		return 1
	fi
	if ! python3 -c 'import ast, sys; ast.parse(open(sys.argv[1]).read(), sys.argv[1])' "$script"; then
		say "testScript: syntax error (Python)"
		return 1
	fi
	[ -n "$lint" ] || return 0
	if ! python3 -c 'import pyflakes' 2>/dev/null; then
		say "testScript: not linted (no pyflakes here; skipLint = true says so)"
		return 0
	fi
	builtins=$(python_builtins) || return 1
	if ! PYFLAKES_BUILTINS=$builtins python3 -m pyflakes "$script"; then
		say "testScript: pyflakes found problems (skipLint = true to skip)"
		return 1
	fi
}

# As nixpkgs lints its Python test scripts: a script that cannot run fails
# before any machine boots.
check_script() {
	if [ "$language" = python ]; then
		check_python
		return
	fi
	if ! bash -n "$script"; then
		say "testScript: syntax error (bash -n)"
		return 1
	fi
	if [ -n "$lint" ] && command -v shellcheck >/dev/null 2>&1; then
		if ! shellcheck -s bash -S warning -e SC1091 "$script"; then
			say "testScript: shellcheck found problems (skipLint = true to skip)"
			return 1
		fi
	fi
	return 0
}

# Python: bin/nixos-test-driver, as nixpkgs' .driver and .driverInteractive
python_launcher() {
	local bin=$out/bin/nixos-test-driver flag=""
	[ "$mode" = interactive ] && flag=--interactive
	mkdir -p "$out/bin" "$out/share"
	cp "$machines" "$out/share/machines.json"
	cp "$script" "$out/share/test.py"
	cat >"$bin" <<-SH
		#!$BASH
		# The test $testName outside Nix: attestfs-test-driver $flag over attestfs-run;
		# more arguments go to the driver (e.g. --keep-vm-state, -o DIR).
		export ATTESTFS_LOG=\${ATTESTFS_LOG:-\${TMPDIR:-/tmp}/attestfs-$testName.log}
		exec $attestfs/bin/attestfs-run -l "\$ATTESTFS_LOG" \\
			-o "global_timeout=86400${attestfsOptions:+,$attestfsOptions}" \\
			$out/share/machines.json $(command -v python3) $driver $flag "\$@" $out/share/test.py
	SH
	chmod 755 "$bin"
}

interactive() {
	local bin=$out/bin/attestfs-interactive-$testName
	mkdir -p "$out/bin" "$out/share"
	cp "$machines" "$out/share/machines.json"
	cp "$script" "$out/share/test.sh"
	cat >"$out/share/bashrc" <<-RC
		. "\$VMS/attest.sh"
		PS1='attestfs:$testName\\$ '
		echo "machines: \$(cd "\$VMS" && ls -d */ | tr -d / | tr '\\n' ' ')"
		echo "the test: bash $out/share/test.sh    daemon log: \$ATTESTFS_LOG"
	RC
	cat >"$out/bin/attestfs-interactive-$testName" <<-SH
		#!$BASH
		# An interactive shell against the machines of the test $testName.
		export ATTESTFS_LOG=\${ATTESTFS_LOG:-\${TMPDIR:-/tmp}/attestfs-$testName.log}
		exec $attestfs/bin/attestfs-run -l "\$ATTESTFS_LOG" \\
			-o "global_timeout=86400${attestfsOptions:+,$attestfsOptions}" \\
			$out/share/machines.json bash --rcfile $out/share/bashrc -i
	SH
	chmod 755 "$bin"
}

if [ "$language" = python ] && { [ "$mode" = interactive ] || [ "$mode" = driver ]; }; then
	check_script && python_launcher
	exit
fi
if [ "$mode" = interactive ]; then
	check_script && interactive
	exit
fi
check_script || exit 1

export HOME=$TMPDIR XDG_CACHE_HOME=$TMPDIR/cache
export ARTIFACTS=$TMPDIR/artifacts
mkdir -p "$ARTIFACTS"
state=$TMPDIR/state
status=0
say "running the test script against attestfs (attestfs-run)"
opts="state_dir=$state,global_timeout=$globalTimeout${attestfsOptions:+,$attestfsOptions}"
# the test: bash, or the Python driver (-o: its screenshots and copies; the
# JUnit XML goes to .artifacts, whose build succeeds also when the test fails)
test_cmd=(bash "$script")
if [ "$language" = python ]; then
	outdir=$TMPDIR/out
	[ "$mode" = artifacts ] && outdir=$ARTIFACTS
	mkdir -p "$outdir"
	test_cmd=(python3 "$driver" -o "$outdir" --junit-xml "$TMPDIR/junit.xml"
		--global-timeout "$globalTimeout" "$script")
fi
if [ "$mode" = artifacts ]; then
	# the script's and the daemon's output: to $out, then to the build log
	attestfs-run -o "$opts" "$machines" "${test_cmd[@]}" >"$TMPDIR/output.log" 2>&1 ||
		status=$?
	cat "$TMPDIR/output.log" >&2
else
	attestfs-run -o "$opts" "$machines" "${test_cmd[@]}" || status=$?
fi

if [ "$mode" = artifacts ]; then
	mkdir -p "$out"
	echo "$status" >"$out/status"
	cp "$TMPDIR/output.log" "$out/output.log"
	# logs and events, not the sockets, disks or RAM files
	(cd "$state" && find . -type f \( -name log -o -name 'console.log*' -o -name events \) \
		-exec cp --parents {} "$out/" \;)
	cp -r "$ARTIFACTS" "$out/files"
	[ ! -e "$TMPDIR/junit.xml" ] || cp "$TMPDIR/junit.xml" "$out/junit.xml"
	say "the test script exited with status $status; logs in $out"
	true
elif [ "$status" -ne 0 ]; then
	say "the test script failed (exit status $status)"
	exit "$status"
else
	mkdir -p "$out"
	echo "$testName passed" >"$out/result"
	say "passed"
fi
