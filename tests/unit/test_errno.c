/*
 * machine/errno.c: the errno table of DESIGN.md, and a machine/ result as
 * the errno a FUSE reply carries.
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "machine/machine.h"

static void
test_table(void **state)
{
	(void)state;
	assert_int_equal(machine_errno(MACHINE_COND_DOWN), -EHOSTDOWN);
	assert_int_equal(machine_errno(MACHINE_COND_DIED), -EIO);
	assert_int_equal(machine_errno(MACHINE_COND_BUSY), -EBUSY);
	assert_int_equal(machine_errno(MACHINE_COND_TIMEOUT), -ETIMEDOUT);
	assert_int_equal(machine_errno(MACHINE_COND_INTERRUPTED), -EINTR);
	assert_int_equal(machine_errno(MACHINE_COND_UNSUPPORTED), -EOPNOTSUPP);
	assert_int_equal(machine_errno(MACHINE_COND_CMD_FAILED), -EREMOTEIO);
	assert_int_equal(machine_errno(MACHINE_COND_BAD_MESSAGE), -EINVAL);
	assert_int_equal(machine_errno(MACHINE_COND_NO_SUCH), -ENOENT);
	/* no condition is no errno a caller could act on */
	assert_int_equal(machine_errno((enum machine_cond)0), -EIO);
	assert_int_equal(machine_errno((enum machine_cond)999), -EIO);
}

static void
test_reply_errno(void **state)
{
	(void)state;
	assert_int_equal(machine_reply_errno(-ENOENT), ENOENT);
	assert_int_equal(machine_reply_errno(-EHOSTDOWN), EHOSTDOWN);
	assert_int_equal(machine_reply_errno(-4095), 4095);
	/* what is no -errno fails as EIO, never as success */
	assert_int_equal(machine_reply_errno(0), EIO);
	assert_int_equal(machine_reply_errno(12), EIO);
	assert_int_equal(machine_reply_errno(-4096), EIO);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_table),
		cmocka_unit_test(test_reply_errno),
	};

	return cmocka_run_group_tests_name("errno", tests, NULL, NULL);
}
