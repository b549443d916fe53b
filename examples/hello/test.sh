#!/bin/bash
# A first attestfs test: boot a machine, run commands, wait, check, stop.
# Run it against a mount of examples/hello/machines.json:  VMS=/vms bash test.sh
set -eu
VMS=${VMS:-/vms}
. "$VMS/attest.sh"
step() { printf '\n== %s\n' "$*"; }

step "boot the machine (returns when its backdoor answers)"
echo start > "$VMS/hello/ctl"
cat "$VMS/hello/status"

step "run a command and check its output"
out=$(succeed hello 'uname -sr')
echo "$out"
case "$out" in Linux*) ;; *) echo "unexpected: $out"; exit 1 ;; esac

step "a command that fails is a failing read"
if succeed hello 'echo oops >&2; exit 3'; then
	echo "expected a failure"; exit 1
fi
grep 'exit status 3' "$VMS/hello/log" | tail -n 1

step "wait for something that happens later"
succeed hello '(sleep 1; echo ready > /tmp/ready) >/dev/null 2>&1 &'
wait_for_file hello /tmp/ready
succeed hello 'cat /tmp/ready'

step "the console so far"
tail -n 3 "$VMS/hello/console"

step "stop it"
echo halt > "$VMS/hello/ctl"
cat "$VMS/hello/status"
echo "PASS"
