#!/bin/sh
# Runs the cmocka unit tests (built with ASan and UBSan).
set -u
status=0
for t in "$@"; do
	echo "== $t"
	"$t" || status=1
done
exit $status
