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
#                interactive shell on the same machines (run outside Nix)
# Bash stays the top process to the end (no exec of the last command): Nix
# 2.8 SIGKILLs a builder whose last process closes stderr before it exits.
set -u
machines=$TMPDIR/machines.json
script=$TMPDIR/test.sh
cp "$machinesJsonPath" "$machines"
cp "$testScriptPath" "$script"

say() {
	printf '%s: %s\n' "$testName" "$*" >&2
}

# As nixpkgs lints its Python test scripts: a script that cannot run fails
# before any machine boots.
check_script() {
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
if [ "$mode" = artifacts ]; then
	# the script's and the daemon's output: to $out, then to the build log
	attestfs-run -o "$opts" "$machines" bash "$script" >"$TMPDIR/output.log" 2>&1 ||
		status=$?
	cat "$TMPDIR/output.log" >&2
else
	attestfs-run -o "$opts" "$machines" bash "$script" || status=$?
fi

if [ "$mode" = artifacts ]; then
	mkdir -p "$out"
	echo "$status" >"$out/status"
	cp "$TMPDIR/output.log" "$out/output.log"
	# logs and events, not the sockets, disks or RAM files
	(cd "$state" && find . -type f \( -name log -o -name 'console.log*' -o -name events \) \
		-exec cp --parents {} "$out/" \;)
	cp -r "$ARTIFACTS" "$out/files"
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
