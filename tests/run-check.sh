#!/bin/bash
# The whole suite: the FUSE contract tests on the mock backend, cmocka unit
# tests (ASan/UBSan), then the bats integration tests against real mounts
# and real tiny guests. Ends with one line:
# "N passed, N failed".
set -u
cd "$(dirname "$0")/.."
passed=0 failed=0 skipped=0
log=$(mktemp)
trap 'rm -f "$log"' EXIT

count_tap() { # TAP on stdin, echoed through; counts into $log
	local p=0 f=0 s=0 line
	while IFS= read -r line; do
		printf '%s\n' "$line"
		case "$line" in
		"ok "*"# skip"* | "ok "*"# SKIP"*) s=$((s + 1)) ;;
		"ok "*) p=$((p + 1)) ;;
		"not ok "*) f=$((f + 1)) ;;
		esac
	done
	echo "$p $f $s" >"$log"
}

run_counted() { # name, command...
	local name=$1 rc p f s t0=$SECONDS
	shift
	echo "# $name"
	set -o pipefail
	"$@" 2>&1 | count_tap
	rc=$?
	set +o pipefail
	echo "# $name: $((SECONDS - t0)) s"
	read -r p f s <"$log"
	# A runner that died (a sanitizer abort, say) is a failure even if
	# every test it printed passed.
	if [ "$rc" -ne 0 ] && [ "$f" -eq 0 ]; then
		echo "not ok - $name exited with status $rc"
		f=1
	fi
	passed=$((passed + p)) failed=$((failed + f)) skipped=$((skipped + s))
}

# The FUSE contract on the mock backend first: seconds, and no guest.
run_counted "contract" bats --tap tests/contract
# The Python driver's names and its behaviour on mock mounts: seconds.
run_counted "python" python3 tests/python/tap.py
for t in "$@"; do
	run_counted "unit: $t" env CMOCKA_MESSAGE_OUTPUT=TAP "$t"
done
# The fuzz targets over their corpora (make fuzz runs them for long).
if [ -n "${FUZZ_BINS:-}" ]; then
	# shellcheck disable=SC2086
	run_counted "fuzz corpora" tests/fuzz/replay.sh $FUZZ_BINS
fi
# --timing: each test's duration on its line, to keep the suite well under 30 minutes
run_counted "integration" bats --tap --timing tests/integration
if [ "$skipped" -gt 0 ]; then
	echo "$passed passed, $failed failed, $skipped skipped"
else
	echo "$passed passed, $failed failed"
fi
# A suite that counted nothing did not run.
[ "$failed" -eq 0 ] && [ "$passed" -gt 0 ]
