#!/bin/bash
# A database test on a real systemd guest: wait for postgres, read its state,
# query it, stop and start the unit, read its journal.
#   VMS=/vms bash test.sh     (against a mount of examples/postgres/machines.json)
set -eu
VMS=${VMS:-/vms}
. "$VMS/attest.sh"
step() { printf '\n== %s\n' "$*"; }

step "boot db and wait for the database unit (its alias is postgres)"
echo start > "$VMS/db/ctl"
( exec 3<>"$VMS/db/wait"; printf 'unit postgres' >&3; cat <&3 )
test "$(cat "$VMS/db/units/postgres/state")" = active
echo "units/postgres/state: active"

step "run a query through exec"
out=$(succeed db "su postgres -c \"psql -tAc 'select 6 * 7'\"")
echo "select 6 * 7 -> $out"
test "$out" = 42

step "stop the unit: the write returns when systemd is done"
echo stop > "$VMS/db/units/postgres/ctl"
state=$(cat "$VMS/db/units/postgres/state")
echo "units/postgres/state: $state"
test "$state" = inactive
wait_for_closed_port db 5432

step "start it again"
echo start > "$VMS/db/units/postgres/ctl"
wait_for_open_port db 5432
test "$(cat "$VMS/db/units/postgres/state")" = active

step "its journal"
tail -n 4 "$VMS/db/units/postgres/log"

step "halt"
echo halt > "$VMS/db/ctl"
echo PASS
