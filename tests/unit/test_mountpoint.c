/*
 * fs/mountpoint.c: which mount table entries count as a FUSE mount at a
 * mount point, so that only a dead FUSE mount is ever detached.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "fs/mountpoint.h"

static int
is_fuse(const char *table, const char *mountpoint)
{
	FILE *f = fmemopen((void *)table, strlen(table), "r");
	int ret;

	assert_non_null(f);
	ret = fs_mountinfo_is_fuse(f, mountpoint);
	fclose(f);
	return ret;
}

static const char table[] =
	"22 1 8:1 / / rw,relatime shared:1 - ext4 /dev/sda1 rw\n"
	"44 22 0:39 / /tmp/vms rw,nosuid,nodev,relatime - fuse.attestfs "
	"attestfs rw,user_id=0,group_id=0\n"
	"45 22 0:40 / /tmp/my\\040vms rw shared:7 master:2 - fuse sshfs rw\n"
	"46 22 0:41 / /tmp/blk rw - fuseblk /dev/sdb1 rw\n"
	"47 22 0:42 / /tmp/plain rw - tmpfs tmpfs rw\n"
	"48 22 0:43 / /tmp/fuse.like rw - tmpfs fuse.like rw\n";

static void
test_fuse_types(void **state)
{
	(void)state;
	assert_int_equal(is_fuse(table, "/tmp/vms"), 1);
	assert_int_equal(is_fuse(table, "/tmp/blk"), 1);
	assert_int_equal(is_fuse(table, "/tmp/plain"), 0);
	/* the type decides, not the names around it */
	assert_int_equal(is_fuse(table, "/tmp/fuse.like"), 0);
	assert_int_equal(is_fuse(table, "/"), 0);
}

static void
test_escaped_and_missing(void **state)
{
	(void)state;
	/* optional fields before the dash, a space escaped as \040 */
	assert_int_equal(is_fuse(table, "/tmp/my vms"), 1);
	assert_int_equal(is_fuse(table, "/tmp/my\\040vms"), 0);
	assert_int_equal(is_fuse(table, "/tmp/nothing"), 0);
	assert_int_equal(is_fuse(table, "/tmp"), 0);
	assert_int_equal(is_fuse("", "/tmp/vms"), 0);
	assert_int_equal(is_fuse("garbage\n1 2 3\n", "/tmp/vms"), 0);
}

static void
test_topmost_counts(void **state)
{
	static const char stacked[] =
		"44 22 0:39 / /vms rw - fuse.attestfs attestfs rw\n"
		"50 44 0:50 / /vms rw - tmpfs tmpfs rw\n";
	static const char stacked2[] =
		"50 22 0:50 / /vms rw - tmpfs tmpfs rw\n"
		"51 50 0:51 / /vms rw - fuse.attestfs attestfs rw\n";

	(void)state;
	assert_int_equal(is_fuse(stacked, "/vms"), 0);
	assert_int_equal(is_fuse(stacked2, "/vms"), 1);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_fuse_types),
		cmocka_unit_test(test_escaped_and_missing),
		cmocka_unit_test(test_topmost_counts),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
