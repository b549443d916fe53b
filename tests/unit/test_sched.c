/*
 * common/sched.c: the calling thread gets the short slice, keeps its nice,
 * and nothing it starts inherits the slice (a VMM forked by a thread that
 * has it would otherwise preempt everything it shares a core with).
 */
#include <errno.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>

#include "common/sched.h"

struct attr {
	uint32_t size, policy;
	uint64_t flags;
	int32_t nice;
	uint32_t prio;
	uint64_t runtime, deadline, period;
	uint32_t util_min, util_max;
};

/* This thread's slice in ns (0: the kernel's default is not reported). */
static uint64_t
slice_ns(void)
{
	struct attr a;

	memset(&a, 0, sizeof(a));
	if (syscall(SYS_sched_getattr, 0, &a, sizeof(a), 0) < 0)
		return 0;
	return a.runtime;
}

static void *
thread_slice(void *arg)
{
	*(uint64_t *)arg = slice_ns();
	return NULL;
}

static void
test_short_slice_not_inherited(void **state)
{
	uint64_t in_thread = 0;
	pthread_t t;
	pid_t pid;
	int status;

	assert_int_equal(setpriority(PRIO_PROCESS, 0, 3), 0);
	assert_int_equal(sched_short_slice(), 0);
	if (slice_ns() != SCHED_SHORT_SLICE_US * 1000ull)
		skip();  /* a kernel without custom slices (< 6.12) */
	assert_int_equal(getpriority(PRIO_PROCESS, 0), 3);

	pid = fork();
	assert_true(pid >= 0);
	if (pid == 0)
		_exit(slice_ns() == SCHED_SHORT_SLICE_US * 1000ull ? 1 : 0);
	assert_int_equal(waitpid(pid, &status, 0), pid);
	assert_true(WIFEXITED(status));
	assert_int_equal(WEXITSTATUS(status), 0);

	assert_int_equal(pthread_create(&t, NULL, thread_slice, &in_thread),
			 0);
	pthread_join(t, NULL);
	assert_int_not_equal(in_thread, SCHED_SHORT_SLICE_US * 1000ull);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_short_slice_not_inherited),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
