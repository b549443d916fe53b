#!/bin/bash
# Boot once, fork many: five independent test cases, each in a fresh clone of
# one booted machine, and the time that saves against five boots.
#   VMS=/vms bash test.sh     (against a mount of examples/snapshots/machines.json)
set -eu
VMS=${VMS:-/vms}
. "$VMS/attest.sh"
ms() { date +%s%3N; }

t0=$(ms)
echo start > "$VMS/base/ctl"
boot_ms=$(( $(ms) - t0 ))
echo "booted base in $boot_ms ms"
succeed base 'echo "fixture data" > /srv.txt'
echo 'snapshot ready' > "$VMS/base/ctl"

# Asked for together, the clones start together; each write returns once
# its clone runs.
t0=$(ms)
pids=()
for i in 1 2 3 4 5; do
	echo "clone case$i ready" > "$VMS/base/ctl" &
	pids+=($!)
done
for p in "${pids[@]}"; do
	wait "$p"
done
clones_ms=$(( $(ms) - t0 ))

# Each case changes its own machine; none sees the others' changes.
for i in 1 2 3 4 5; do
	succeed "case$i" "test \"\$(cat /srv.txt)\" = 'fixture data' && echo $i >> /srv.txt"
	test "$(succeed "case$i" 'wc -l < /srv.txt')" = 2
	echo "case$i: passed on $(succeed "case$i" hostname)"
done

for i in 1 2 3 4 5; do
	echo halt > "$VMS/case$i/ctl"
	rmdir "$VMS/case$i"
done
echo halt > "$VMS/base/ctl"
echo "5 clones ready in $clones_ms ms; 5 boots would take about $((5 * boot_ms)) ms"
echo PASS
