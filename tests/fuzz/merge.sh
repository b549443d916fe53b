#!/bin/bash
# After make fuzz: add to tests/fuzz/corpus/<target>/ the inputs of the
# working corpus (build/fuzz/corpus/<target>/) that reach code the seeds do
# not (new edges, not mere counts), at most 50 files per target, smallest
# first. Usage: merge.sh BINARY...
set -u
cd "$(dirname "$0")/../.."
for bin in "$@"; do
	name=$(basename "$bin")
	seeds=tests/fuzz/corpus/$name
	tmp=$(mktemp -d)
	cp "$seeds"/* "$tmp"/
	"$bin" -merge=1 -use_counters=0 -timeout=10 "$tmp" \
		"build/fuzz/corpus/$name" >"build/fuzz/log/$name.merge" 2>&1 ||
		{ echo "$name: merge failed"; rm -rf "$tmp"; continue; }
	room=$((50 - $(ls "$seeds" | wc -l)))
	added=0
	for f in $(ls -S -r "$tmp"); do
		[ -e "$seeds/$f" ] && continue
		if [ "$room" -le 0 ]; then
			echo "$name: more than 50 files; the rest left out"
			break
		fi
		cp "$tmp/$f" "$seeds/cov-${f:0:12}"
		room=$((room - 1)) added=$((added + 1))
	done
	echo "$name: $added inputs added, $(ls "$seeds" | wc -l) in the corpus"
	rm -rf "$tmp"
done
