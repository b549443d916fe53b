#!/usr/bin/env bats
# attestfs-run: the mount in a private user, mount and pid namespace, the
# test's status, the global timeout, and one-line reasons when the machine
# cannot do it (no /dev/fuse, /dev/fuse not openable, no user namespaces).

load helpers

RUN=$TOP/attestfs-run

setup() {
	D=$BATS_TEST_TMPDIR
	# the mock backend: the host's /bin/sh plays the guest, no VM
	printf '{"machines": {"m": {"backend": "mock"}}}\n' >"$D/mock.json"
}

need_root() {
	[ "$(id -u)" = 0 ] || skip "needs root (runuser, unshare -m, mknod)"
}

# A world-readable copy of the tiny guest and a config for it, so that an
# unprivileged user can boot it ($HOME/.cache is not theirs).
public_tiny() {
	P=$(mktemp -d /tmp/attestfs-run-test.XXXXXX)
	chmod 755 "$P"
	cp -L "$GUESTS/tiny/vmlinuz" "$GUESTS/tiny/initrd.gz" "$P/"
	printf '{"machines": {"hello": {"kernel": "vmlinuz", "initrd": "initrd.gz", "append": "%s", "memory_mib": 256}}}\n' \
		"$(cat "$GUESTS/tiny/cmdline")" \
		>"$P/machines.json"
	chmod 644 "$P"/*
}

# as_nobody CMD...: run as nobody with a 0666 /dev/fuse bound over the
# host's in a private mount namespace (the host's may be 0600).
as_nobody() {
	mknod -m 666 "$P/fuse" c 10 229
	unshare -m sh -c 'mount --bind "$1/fuse" /dev/fuse && shift &&
		exec runuser -u nobody -- env TMPDIR=/tmp "$@"' sh "$P" "$@"
}

teardown() {
	dump_if_failed
	[ -z "${P:-}" ] || rm -rf "$P"
}

@test "no arguments: the usage and status 2" {
	run "$RUN"
	assert_equal "$status" 2
	assert_output --partial 'usage: attestfs-run'
}

@test "the test sees the mount at VMS and its status is ours" {
	run "$RUN" "$D/mock.json" sh -c 'cat "$VMS/m/status"; echo "$VMS" >'"$D/vms"'; exit 7'
	assert_equal "$status" 7
	assert_line stopped
	assert_line --partial 'attestfs: mounted 1 machines'
	# the mount lived only in the private namespace, and is gone
	vms=$(cat "$D/vms")
	run grep -F " $vms " /proc/mounts
	assert_failure
	[ ! -e "$vms" ]
}

@test "a test killed by a signal: 128 + the signal" {
	run "$RUN" "$D/mock.json" sh -c 'kill -KILL $$'
	assert_equal "$status" 137
}

@test "the daemon's output goes to -l LOG, the test's stdin is the caller's" {
	run bash -c "echo 'cat \"\$VMS/m/status\"' | '$RUN' -l '$D/daemon.log' '$D/mock.json' bash -s"
	assert_success
	assert_output stopped
	run grep 'attestfs: mounted 1 machines' "$D/daemon.log"
	assert_success
}

@test "an interactive shell on a terminal owns it (reads, job control)" {
	command -v script >/dev/null || skip "no script(1)"
	run bash -c "printf 'cat \"\$VMS/m/status\"; sleep 0.1 & wait; exit 5\n' |
		timeout $TEST_TIMEOUT script -qec \"'$RUN' -l '$D/daemon.log' '$D/mock.json' bash --norc -i\" /dev/null"
	assert_equal "$status" 5
	assert_line --partial stopped
	refute_output --partial 'no job control'
}

@test "global_timeout: the test is stopped and the status is 124" {
	run timeout "$TEST_TIMEOUT" "$RUN" -o global_timeout=1 "$D/mock.json" \
		sh -c 'sleep 50; echo not reached'
	assert_equal "$status" 124
	assert_output --partial 'global timeout: the test ran longer than 1 s'
	refute_output --partial 'not reached'
}

@test "SIGTERM: the test is stopped, the machines halted, status 143" {
	"$RUN" "$D/mock.json" sh -c "touch '$D/started'; sleep 50; touch '$D/survived'" \
		>"$D/out" 2>&1 &
	pid=$!
	wait_until "$TEST_TIMEOUT" test -e "$D/started"
	kill -TERM "$pid"
	rc=0
	wait "$pid" || rc=$?
	assert_equal "$rc" 143
	run cat "$D/out"
	assert_output --partial 'Terminated, stopping the test'
	assert_output --partial 'halting every machine'
	[ ! -e "$D/survived" ]
}

@test "a config the daemon refuses: its reason and status 125" {
	printf '{"machines": {"m": {"backend": "nope"}}}\n' >"$D/bad.json"
	run timeout "$TEST_TIMEOUT" "$RUN" "$D/bad.json" true
	assert_equal "$status" 125
	assert_output --partial 'before it mounted'
}

@test "a missing /dev/fuse: one line and status 125" {
	need_root
	run timeout "$TEST_TIMEOUT" unshare -m sh -c 'mount -t tmpfs none /dev && exec "$@"' sh \
		"$RUN" "$D/mock.json" true
	assert_equal "$status" 125
	assert_output 'attestfs-run: /dev/fuse does not exist (load the fuse module; in a Nix build, add /dev/fuse to extra-sandbox-paths)'
}

@test "a /dev/fuse the user cannot open: one line and status 125" {
	need_root
	mknod -m 600 "$D/fuse" c 10 229
	run timeout "$TEST_TIMEOUT" unshare -m sh -c 'mount --bind "$1" /dev/fuse && shift &&
		exec runuser -u nobody -- "$@"' sh "$D/fuse" "$RUN" "$D/mock.json" true
	assert_equal "$status" 125
	assert_output 'attestfs-run: /dev/fuse (mode 0600, owner 0) cannot be opened by uid 65534: make it 0666 as udev does'
}

@test "a kernel that refuses user namespaces: one line and status 125" {
	need_root
	# user.max_user_namespaces is per user namespace: 0 in a child one
	run timeout "$TEST_TIMEOUT" unshare -Ur sh -c \
		'echo 0 >/proc/sys/user/max_user_namespaces && exec "$@"' sh \
		"$RUN" "$D/mock.json" true
	assert_equal "$status" 125
	assert_output --partial 'attestfs-run: the kernel refuses a new user namespace'
	assert_equal "${#lines[@]}" 1
}

@test "examples/hello boots the tiny guest through attestfs-run as root" {
	need_root
	run "$RUN" -o accel=tcg "$TOP/examples/hello/machines.json" \
		bash "$TOP/examples/hello/test.sh"
	assert_success
	assert_output --partial 'hello # '
	assert_output --partial PASS
}

@test "an unprivileged user mounts and boots the tiny guest, no setuid helper" {
	need_root
	public_tiny
	cp "$TOP/examples/hello/test.sh" "$P/test.sh"
	chmod 755 "$P/test.sh"
	run as_nobody "$RUN" -o accel=tcg "$P/machines.json" sh -c \
		'bash "$1" && id -u' sh "$P/test.sh"
	assert_success
	assert_output --partial 'hello # '
	assert_output --partial PASS
	# root of its own namespace only
	assert_line 0
}
