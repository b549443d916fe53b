/*
 * common/util.c unlink_freeing_later: the name goes at once, the file's
 * data a little later on another thread (the RAM file of a VMM that a
 * restore replaced), and nothing is left open; links are never followed.
 */
#include <errno.h>
#include <dirent.h>
#include <fcntl.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>
#include <cmocka.h>

#include "common/util.h"

/* How many of this process's descriptors are open on a file of inode
 * ino (a deleted one too). */
static int
fds_on(ino_t ino)
{
	DIR *d = opendir("/proc/self/fd");
	struct dirent *de;
	struct stat st;
	int n = 0;

	assert_non_null(d);
	while ((de = readdir(d))) {
		if (de->d_name[0] == '.' || atoi(de->d_name) == dirfd(d))
			continue;
		if (fstatat(dirfd(d), de->d_name, &st, 0) == 0 &&
		    st.st_ino == ino)
			n++;
	}
	closedir(d);
	return n;
}

/* The case's directory, removed by its teardown even after a failed
 * assertion. */
static char *case_dir;

static char *
temp_dir(void)
{
	char *dir = xstrdup(access("/dev/shm", W_OK) == 0 ?
			    "/dev/shm/attestfs-unlink.XXXXXX" :
			    "/tmp/attestfs-unlink.XXXXXX");

	assert_non_null(mkdtemp(dir));
	free(case_dir);
	case_dir = xstrdup(dir);
	return dir;
}

static int
remove_case_dir(void **state)
{
	(void)state;
	if (case_dir)
		remove_tree(case_dir);
	free(case_dir);
	case_dir = NULL;
	return 0;
}

/* A file of n MiB of data. */
static void
make_file(const char *path, int mib)
{
	static char chunk[1 << 20];
	int fd = open(path, O_WRONLY | O_CREAT | O_EXCL, 0600), i;

	assert_true(fd >= 0);
	memset(chunk, 7, sizeof(chunk));
	for (i = 0; i < mib; i++)
		assert_int_equal(write(fd, chunk, sizeof(chunk)),
				 sizeof(chunk));
	close(fd);
}

/* Waits, bounded, until the freeing thread has let go of inode ino. */
static void
wait_no_fds(ino_t ino)
{
	int i;

	for (i = 0; i < 500 && fds_on(ino); i++)
		usleep(10000);
}

static void
test_name_goes_at_once_data_later(void **state)
{
	char *dir = temp_dir(), *path = xasprintf("%s/a.1.ram", dir);
	struct stat st;

	(void)state;
	make_file(path, 1);
	assert_int_equal(stat(path, &st), 0);
	assert_int_equal(unlink_freeing_later(path), 0);
	assert_int_equal(access(path, F_OK), -1);
	assert_int_equal(errno, ENOENT);
	/* The freeing thread lets go of it soon, and nobody else has it. */
	wait_no_fds(st.st_ino);
	assert_int_equal(fds_on(st.st_ino), 0);
	assert_int_equal(rmdir(dir), 0);
	free(path);
	free(dir);
}

static double
thread_cpu_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
	return ts.tv_sec * 1e3 + ts.tv_nsec / 1e6;
}

/* What a restore waited for: the caller's own CPU time, against a plain
 * unlink of the same file (CPU time, not wall time: a busy host slows
 * both alike). */
static void
test_caller_does_not_free(void **state)
{
	char *dir = temp_dir(), *a = xasprintf("%s/a", dir),
	     *b = xasprintf("%s/b", dir);
	double t0, plain, later;
	struct stat st;

	(void)state;
	make_file(a, 64);
	make_file(b, 64);
	assert_int_equal(stat(b, &st), 0);
	t0 = thread_cpu_ms();
	assert_int_equal(unlink(a), 0);
	plain = thread_cpu_ms() - t0;
	t0 = thread_cpu_ms();
	assert_int_equal(unlink_freeing_later(b), 0);
	later = thread_cpu_ms() - t0;
	print_message("unlink %.2f ms, unlink_freeing_later %.2f ms of CPU\n",
		      plain, later);
	assert_true(later * 4 < plain);
	wait_no_fds(st.st_ino);
	assert_int_equal(rmdir(dir), 0);
	free(a);
	free(b);
	free(dir);
}

static void
test_links_and_missing_files(void **state)
{
	char *dir = temp_dir(), *target = xasprintf("%s/target", dir),
	     *link = xasprintf("%s/link", dir);
	int fd = open(target, O_WRONLY | O_CREAT | O_EXCL, 0600);

	(void)state;
	assert_true(fd >= 0);
	close(fd);
	assert_int_equal(symlink(target, link), 0);
	/* The link goes, never what it names. */
	assert_int_equal(unlink_freeing_later(link), 0);
	assert_int_equal(access(target, F_OK), 0);
	assert_int_equal(unlink_freeing_later(link), -ENOENT);
	assert_int_equal(unlink_freeing_later(target), 0);
	assert_int_equal(rmdir(dir), 0);
	free(target);
	free(link);
	free(dir);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_teardown(test_name_goes_at_once_data_later,
					  remove_case_dir),
		cmocka_unit_test_teardown(test_caller_does_not_free,
					  remove_case_dir),
		cmocka_unit_test_teardown(test_links_and_missing_files,
					  remove_case_dir),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
