#!/usr/bin/env bats
# attestfs's own version (one definition: the VERSION file) and its man page:
# no mount, no guest.

load ../integration/helpers

@test "attestfs --version and -V print the VERSION file's version first" {
	local v
	v=$(cat "$TOP/VERSION")
	run "$ATTESTFS" --version
	assert_success
	assert_line --index 0 "attestfs $v (FUSE library version $(pkg-config --modversion fuse3))"
	run "$ATTESTFS" -V
	assert_success
	assert_line --index 0 --partial "attestfs $v "
}

@test "make install puts the man page, with the version, beside the programs" {
	local d=$BATS_TEST_TMPDIR/inst v
	v=$(cat "$TOP/VERSION")
	run make -C "$TOP" --no-print-directory install DESTDIR="$d" PREFIX=/usr
	assert_success
	test -x "$d/usr/bin/attestfs"
	grep -q "^\.TH ATTESTFS 1 .* \"attestfs $v\"" "$d/usr/share/man/man1/attestfs.1"
	run man -l "$d/usr/share/man/man1/attestfs.1"
	assert_success
	assert_output --partial 'EHOSTDOWN'
	assert_output --partial 'jobs/'
	refute_output --partial '@VERSION@'
}

@test "the man page lints clean (man --warnings; mandoc -T lint where installed)" {
	run bash -c "man --warnings -l '$TOP/build/man/attestfs.1' 2>&1 >/dev/null"
	assert_success
	assert_output ''
	if command -v mandoc >/dev/null; then
		run mandoc -T lint -W warning "$TOP/build/man/attestfs.1"
		assert_success
		assert_output ''
	fi
}
