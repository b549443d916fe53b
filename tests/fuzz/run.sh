#!/bin/bash
# make fuzz: each target for RUNS executions (or FUZZ_TIME seconds, default
# an hour, whichever comes first), one after the other at the lowest CPU
# priority. The seeds in tests/fuzz/corpus/<target>/ start a working corpus
# in build/fuzz/corpus/<target>/ (what the fuzzer adds stays out of the
# repo); a crash, leak or hang lands in build/fuzz/artifacts/.
# Usage: run.sh RUNS BINARY...
set -u
cd "$(dirname "$0")/../.."
runs=$1
shift
limit=${FUZZ_TIME:-3600}
status=0
# A smaller quarantine doubles the speed of the json-c heavy targets; a
# use after free within the same input is still caught.
export ASAN_OPTIONS=${ASAN_OPTIONS:-quarantine_size_mb=16}
mkdir -p build/fuzz/artifacts build/fuzz/log
for bin in "$@"; do
	name=$(basename "$bin")
	work=build/fuzz/corpus/$name
	log=build/fuzz/log/$name.log
	mkdir -p "$work"
	start=$(date +%s)
	nice -n 19 "$bin" -runs="$runs" -max_total_time="$limit" \
		-timeout=10 -print_final_stats=1 \
		-artifact_prefix="build/fuzz/artifacts/$name-" \
		"$work" "tests/fuzz/corpus/$name" >"$log" 2>&1
	rc=$?
	secs=$(($(date +%s) - start))
	execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log")
	rate=$(sed -n 's/^stat::average_exec_per_sec: *//p' "$log")
	last=$(grep -E '^#[0-9]+' "$log" | tail -1)
	cov=$(sed -n 's/.* cov: \([0-9]*\).*/\1/p' <<<"$last")
	ft=$(sed -n 's/.* ft: \([0-9]*\).*/\1/p' <<<"$last")
	corp=$(sed -n 's/.* corp: \([0-9]*\).*/\1/p' <<<"$last")
	if [ "$rc" -eq 0 ]; then
		verdict=ok
	else
		verdict="FAILED (status $rc, see $log)"
		status=1
	fi
	printf '%s: %s executions in %s s (%s exec/s), cov %s, ft %s, corpus %s: %s\n' \
		"$name" "${execs:-?}" "$secs" "${rate:-?}" "${cov:-?}" "${ft:-?}" \
		"${corp:-?}" "$verdict"
done
exit $status
