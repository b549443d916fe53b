#!/bin/bash
# make demo: mount examples/hello/machines.json (its paths lead to the tiny
# guest that `make guest` links at build/guests), run examples/hello/test.sh showing each step, unmount, and exit
# with the test's status.
set -u
cd "$(dirname "$0")/.."
work=$(mktemp -d /tmp/attestfs-demo.XXXXXX)
export VMS=$work/vms
mkdir -p "$VMS"
./attestfs -f -o "config=examples/hello/machines.json,state_dir=$work/state" "$VMS" 2>"$work/daemon.log" &
daemon=$!
cleanup() {
	fusermount3 -u "$VMS" 2>/dev/null
	wait "$daemon" 2>/dev/null
	rm -rf "$work"
}
trap cleanup EXIT
for _ in $(seq 200); do
	[ -e "$VMS/ctl" ] && break
	kill -0 "$daemon" 2>/dev/null || { cat "$work/daemon.log"; exit 1; }
	sleep 0.05
done
echo "mounted at $VMS"
bash examples/hello/test.sh
status=$?
echo "== daemon log"
cat "$work/daemon.log"
exit $status
