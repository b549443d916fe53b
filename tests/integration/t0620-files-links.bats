#!/usr/bin/env bats
# files/ never leads to the host: guest symlinks that climb with ".." (relative
# or after the root of an absolute target) are clamped at the guest root, for
# cat, cp, cp -a, tar, find -L and writes. Words from the user that look like
# options stay words in the guest. The command files live in a private
# directory, not in the guest's /tmp: on the virtserialport pool and on hvc0.

load helpers

setup_file() {
	mount_attestfs "{\"machines\": {$(tiny_machine a),
		\"h\": {\"kernel\": \"$GUESTS/tiny-hvc0/vmlinuz\", \"initrd\": \"$GUESTS/tiny-hvc0/initrd.gz\",
			\"append\": \"console=ttyS0 quiet panic=-1\", \"shell_channel\": \"virtconsole\", \"shells\": 1}}}"
	echo start >"$VMS/a/ctl"
	# What the links would reach on the host if they were followed as the
	# guest wrote them: files/tmp/esc/../../../../.. is $WORK.
	echo host-canary >"$WORK/canary"
	mkdir -p "$WORK/hostdir"
	echo host-secret >"$WORK/hostdir/secret"
	tx "$VMS/a/exec" 'mkdir -p /tmp/esc /hostdir && echo guest-canary > /canary &&
		echo guest-file > /hostdir/guestfile &&
		ln -s ../../../../../canary /tmp/esc/rel &&
		ln -s /../../../canary /tmp/esc/abs &&
		ln -s ../../../../../hostdir /tmp/esc/dir'
}

teardown_file() {
	umount_attestfs
}

@test "the escaping links would reach the host's files unclamped" {
	# the premise: rel followed on the host as the guest wrote it leaves
	# files/ for $WORK; so did abs, once read back as "../../" + its target
	# without the leading '/'
	assert_equal "$(realpath -m "$VMS/a/files/tmp/esc/../../../../../canary")" "$WORK/canary"
	assert_equal "$(tx "$VMS/a/exec" 'readlink /tmp/esc/rel; readlink /tmp/esc/abs')" \
		$'../../../../../canary\n/../../../canary'
}

@test "readlink gives the target clamped at the guest root, relative to the link" {
	assert_equal "$(readlink "$VMS/a/files/tmp/esc/rel")" ../../canary
	assert_equal "$(readlink "$VMS/a/files/tmp/esc/abs")" ../../canary
	assert_equal "$(readlink "$VMS/a/files/tmp/esc/dir")" ../../hostdir
}

@test "cat and cp through an escaping link read the guest's file" {
	assert_equal "$(cat "$VMS/a/files/tmp/esc/rel")" guest-canary
	assert_equal "$(cat "$VMS/a/files/tmp/esc/abs")" guest-canary
	cp "$VMS/a/files/tmp/esc/rel" "$BATS_TEST_TMPDIR/copy"
	assert_equal "$(cat "$BATS_TEST_TMPDIR/copy")" guest-canary
	run ls "$VMS/a/files/tmp/esc/dir/"
	assert_output guestfile
}

@test "find -L walks only the guest" {
	run find -L "$VMS/a/files/tmp/esc"
	assert_success
	assert_output --partial "/tmp/esc/dir/guestfile"
	refute_output --partial secret
	refute_output --partial hostdir/secret
}

@test "cp -a and tar copy the links out pointing inside the copied tree" {
	local out=$BATS_TEST_TMPDIR/root x=$BATS_TEST_TMPDIR/x l
	mkdir -p "$out/tmp" "$x"
	cp -a "$VMS/a/files/tmp/esc" "$out/tmp/"
	for l in rel abs dir; do
		assert_equal "$(readlink "$out/tmp/esc/$l")" "$(readlink "$VMS/a/files/tmp/esc/$l")"
		case $(realpath -m "$out/tmp/esc/$l") in
		"$out"/*) ;;
		*) fail "cp -a: $l leads to $(realpath -m "$out/tmp/esc/$l")" ;;
		esac
	done
	tar -C "$VMS/a/files" -cf "$BATS_TEST_TMPDIR/t.tar" tmp/esc
	run tar -tvf "$BATS_TEST_TMPDIR/t.tar"
	assert_output --partial 'tmp/esc/rel -> ../../canary'
	assert_output --partial 'tmp/esc/abs -> ../../canary'
	tar -C "$x" -xf "$BATS_TEST_TMPDIR/t.tar"
	for l in rel abs dir; do
		case $(realpath -m "$x/tmp/esc/$l") in
		"$x"/*) ;;
		*) fail "tar: $l leads to $(realpath -m "$x/tmp/esc/$l")" ;;
		esac
	done
}

@test "a write through an escaping link lands in the guest, never on the host" {
	echo written-rel >"$VMS/a/files/tmp/esc/rel"
	assert_equal "$(cat "$WORK/canary")" host-canary
	assert_equal "$(tx "$VMS/a/exec" 'cat /canary')" written-rel
	echo written-abs >"$VMS/a/files/tmp/esc/abs"
	assert_equal "$(cat "$WORK/canary")" host-canary
	assert_equal "$(tx "$VMS/a/exec" 'cat /canary')" written-abs
	echo new >"$VMS/a/files/tmp/esc/dir/newfile"
	[ ! -e "$WORK/hostdir/newfile" ] || fail "a file was made on the host"
	assert_equal "$(tx "$VMS/a/exec" 'cat /hostdir/newfile')" new
}

@test "names and link targets that look like options stay names" {
	ln -s -- -f "$VMS/a/files/tmp/dash-link"
	assert_equal "$(tx "$VMS/a/exec" 'readlink /tmp/dash-link')" -f
	assert_equal "$(readlink "$VMS/a/files/tmp/dash-link")" -f
	echo minus >"$VMS/a/files/tmp/-n"
	assert_equal "$(cat "$VMS/a/files/tmp/-n")" minus
	mv "$VMS/a/files/tmp/-n" "$VMS/a/files/tmp/-r"
	chmod 600 "$VMS/a/files/tmp/-r"
	assert_equal "$(tx "$VMS/a/exec" 'stat -c %a /tmp/-r; cat /tmp/-r')" $'600\nminus'
	mkdir "$VMS/a/files/tmp/-d"
	rmdir "$VMS/a/files/tmp/-d"
	rm "$VMS/a/files/tmp/-r" "$VMS/a/files/tmp/dash-link"
	assert_equal "$(tx "$VMS/a/exec" 'ls -A /tmp | grep -c "^-" || :')" 0
}

@test "a job's user that looks like an option is a user name, not an option to su" {
	mkdir "$VMS/a/jobs/u"
	# "su -s /bin/sh -c CMD -m" would run CMD as root, -m an option
	echo 'user -m' >"$VMS/a/jobs/u/ctl"
	echo 'id -u' >"$VMS/a/jobs/u/cmd"
	run cat "$VMS/a/jobs/u/exit"
	refute_output 0
	run cat "$VMS/a/jobs/u/stdout"
	refute_output 0
	run cat "$VMS/a/jobs/u/stderr"
	assert_output --partial -- '-m'
	rmdir "$VMS/a/jobs/u"
}

# no_tmp_files MACHINE: after a command, a file write and a job, nothing of
# attestfs sits directly in the guest's /tmp, and /run/attestfs is 0700 root
no_tmp_files() {
	local m=$1
	tx "$VMS/$m/exec" 'echo x' >/dev/null
	echo data >"$VMS/$m/files/tmp/written"
	mkdir "$VMS/$m/jobs/t"
	echo 'echo job' >"$VMS/$m/jobs/t/cmd"
	assert_equal "$(cat "$VMS/$m/jobs/t/exit")" 0
	assert_equal "$(cat "$VMS/$m/jobs/t/stdout")" job
	run tx "$VMS/$m/exec" 'ls -A /tmp; stat -c "%a %u %F" /run/attestfs; ls /run/attestfs'
	assert_success
	refute_output --partial .attestfs
	assert_line '700 0 directory'
	assert_line j
	rmdir "$VMS/$m/jobs/t"
}

@test "the command files are in a private 0700 directory, not in /tmp (pool)" {
	no_tmp_files a
}

@test "the command files are in a private 0700 directory, not in /tmp (hvc0)" {
	echo halt >"$VMS/a/ctl"
	echo start >"$VMS/h/ctl"
	no_tmp_files h
	echo halt >"$VMS/h/ctl"
}
