# Helpers for the tests of the fake VMMs themselves: tests/contract/t0100-fakes.bats (the API,
# QEMU replaced by tests/fakes/stub-qemu: no guest, no VM lock) and
# tests/integration/t1490-fakes.bats (a real tiny guest behind each fake, under the VM lock).
# Load after ../integration/helpers (bats-assert, $TOP, wait_until).

FAKES=$TOP/tests/fakes

# fake_start fc|ch NAME [ARGS...]: the fake with its API socket $T/NAME.sock, cwd $T, stdin
# /dev/null, stdout $T/NAME.out (the serial console), stderr $T/NAME.log; pid in $T/NAME.pid.
fake_start() {
	local kind=$1 name=$2 sock=$T/$2.sock
	shift 2
	case $kind in
	fc) set -- "$FAKES/fake-firecracker" --api-sock "$sock" "$@" ;;
	ch) set -- "$FAKES/fake-cloud-hypervisor" --api-socket "path=$sock" "$@" ;;
	esac
	(cd "$T" && exec "$@" </dev/null >"$T/$name.out" 2>"$T/$name.log") &
	echo $! >"$T/$name.pid"
	wait_until 30 test -S "$sock" || { cat "$T/$name.log"; return 1; }
}

fake_pid() { cat "$T/$1.pid"; }

# fake_exited NAME: the fake's process is gone (a zombie counts: it is our child)
fake_exited() {
	local pid
	pid=$(fake_pid "$1")
	[ ! -e "/proc/$pid" ] || grep -q '^[0-9]* (.*) Z' "/proc/$pid/stat" 2>/dev/null
}

# fake_wait_exit NAME: waits for the fake to exit by itself; its exit status in $FAKE_RC.
# Not under `run`: wait works only in the shell that started the fake.
fake_wait_exit() {
	FAKE_RC=0
	wait_until "$TEST_TIMEOUT" fake_exited "$1" || return 1
	wait "$(fake_pid "$1")" || FAKE_RC=$?
}

# fake_stop_all: every fake of this test killed (SIGTERM) and reaped; each QEMU it started (the
# "qemu: pid N" lines of its log) must be gone with it.
fake_stop_all() {
	local f name pid q
	for f in "$T"/*.pid; do
		[ -e "$f" ] || continue
		name=$(basename "$f" .pid)
		pid=$(cat "$f")
		kill "$pid" 2>/dev/null || true
		wait_until 30 fake_exited "$name" || kill -9 "$pid" 2>/dev/null || true
		wait "$pid" 2>/dev/null || true
		for q in $(sed -n 's/.*qemu: pid \([0-9]*\)$/\1/p' "$T/$name.log"); do
			if kill -0 "$q" 2>/dev/null && ! grep -q '^[0-9]* (.*) Z' "/proc/$q/stat" 2>/dev/null; then
				kill -9 "$q"
				fail "$name left its QEMU $q running"
			fi
		done
		rm -f "$f"
	done
}

# api NAME METHOD PATH [BODY]: one request; prints "STATUS BODY" (curl as the client).
api() {
	local name=$1 method=$2 path=$3 code
	local args=(-s -o "$T/reply" -w '%{http_code}' --unix-socket "$T/$name.sock" -X "$method"
		-H 'Content-Type: application/json' -H 'Expect:')
	[ $# -lt 4 ] || args+=(--data-binary "$4")
	code=$(curl "${args[@]}" "http://localhost$path") || return 1
	printf '%s %s\n' "$code" "$(cat "$T/reply")"
}

# ch NAME METHOD ENDPOINT [BODY]: api under Cloud Hypervisor's base /api/v1
ch() {
	local name=$1 method=$2 ep=$3
	shift 3
	api "$name" "$method" "/api/v1/$ep" "$@"
}

# an ELF header is all the fakes read of a kernel before QEMU (the stub) takes it
fake_elf() {
	printf '\177ELF\002\001\001\000' >"$1"
	head -c 4096 /dev/zero >>"$1"
}

# a bzImage's first bytes: the boot sector's MZ and the setup header's HdrS at 0x202
fake_bzimage() {
	head -c 514 /dev/zero >"$1"
	printf 'HdrS' >>"$1"
	head -c 4096 /dev/zero >>"$1"
}
