#!/bin/bash
# make check's part of the fuzzing: every fuzz target runs each input of its
# corpus (tests/fuzz/corpus/<target>/) once, in seconds. TAP, one line per
# target. Usage: replay.sh BINARY...
set -u
cd "$(dirname "$0")/../.."
echo "1..$#"
i=0
for bin in "$@"; do
	i=$((i + 1))
	name=$(basename "$bin")
	files=(tests/fuzz/corpus/"$name"/*)
	out=$("$bin" -timeout=10 "${files[@]}" 2>&1)
	rc=$?
	if [ "$rc" -eq 0 ] && [ -e "${files[0]}" ]; then
		echo "ok $i - fuzz corpus $name (${#files[@]} inputs)"
	else
		echo "not ok $i - fuzz corpus $name (status $rc)"
		tail -n 30 <<<"$out" | sed 's/^/# /'
	fi
done
