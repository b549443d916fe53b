/* common/bounded.c: buffers that keep their tail, files that rotate once. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <cmocka.h>

#include "common/bounded.h"

static void
test_keep_tail_drops_whole_lines_first(void **state)
{
	struct strbuf sb;
	size_t dropped = 0, total = 0;
	char line[32];
	int i;

	sb_init(&sb);
	for (i = 0; i < 1000; i++) {
		int n = snprintf(line, sizeof(line), "line %04d\n", i);

		dropped += sb_add_keep_tail(&sb, 1000, line, (size_t)n);
		total += (size_t)n;
		assert_true(sb.len <= 1000);
	}
	/* Nothing is lost without being counted, and the newest stays. */
	assert_int_equal(dropped + sb.len, total);
	assert_memory_equal(sb.data, "line ", 5);
	assert_memory_equal(sb.data + sb.len - 10, "line 0999\n", 10);
	sb_free(&sb);
}

static void
test_keep_tail_of_one_huge_append(void **state)
{
	struct strbuf sb;
	char *big = malloc(10000);
	size_t dropped;

	memset(big, 'x', 10000);
	big[9999] = 'y';
	sb_init(&sb);
	sb_adds(&sb, "old\n");
	dropped = sb_add_keep_tail(&sb, 100, big, 10000);
	assert_int_equal(sb.len, 100);
	assert_int_equal(dropped, 4 + 9900);
	assert_int_equal(sb.data[99], 'y');
	free(big);
	sb_free(&sb);
}

static void
test_keep_head_counts_the_rest(void **state)
{
	struct strbuf sb;

	sb_init(&sb);
	assert_int_equal(sb_add_keep_head(&sb, 8, "12345", 5), 0);
	assert_int_equal(sb_add_keep_head(&sb, 8, "67890", 5), 2);
	assert_int_equal(sb_add_keep_head(&sb, 8, "abc", 3), 3);
	assert_string_equal(sb.data, "12345678");
	sb_free(&sb);
}

static void
test_tailbuf_marks_what_went(void **state)
{
	struct tailbuf tb;
	struct strbuf out;
	int i;

	tailbuf_init(&tb, 64);
	sb_init(&out);
	tailbuf_render(&tb, &out, NULL);
	assert_int_equal(out.len, 0);
	for (i = 0; i < 100; i++)
		tailbuf_add(&tb, "0123456789\n", 11);
	assert_true(tb.tb_sb.len <= 64);
	assert_int_equal(tb.tb_dropped + tb.tb_sb.len, 1100);
	tailbuf_render(&tb, &out, "older ones are in STATE/log");
	assert_non_null(strstr(out.data, "bytes dropped; older ones are in "
				      "STATE/log ...]\n0123456789\n"));
	tailbuf_free(&tb);
	sb_free(&out);
}

static off_t
file_size(const char *path)
{
	struct stat st;

	return stat(path, &st) == 0 ? st.st_size : -1;
}

static void
test_rotfile_rotates_once_with_a_marker(void **state)
{
	char dir[] = "/tmp/attestfs-bounded.XXXXXX", *path, *old, *text;
	struct rotfile rf;
	char chunk[1000];
	size_t len;
	int i;

	assert_non_null(mkdtemp(dir));
	path = xasprintf("%s/console.log", dir);
	old = xasprintf("%s.1", path);
	memset(chunk, 'c', sizeof(chunk));
	chunk[sizeof(chunk) - 1] = '\n';
	assert_int_equal(rotfile_open(&rf, path, 100000), 0);
	/* 1 MB through a 100 kB bound: two files of at most 100 kB remain. */
	for (i = 0; i < 1000; i++) {
		assert_int_equal(rotfile_write(&rf, chunk, sizeof(chunk)), 0);
		assert_true(file_size(path) <= 100000);
		assert_true(file_size(old) <= 100000);
	}
	assert_true(rf.rf_rotations >= 9);
	assert_int_equal(read_file(path, &text, &len), 0);
	assert_memory_equal(text, "[... this file reached its bound of 100000 "
			    "bytes and rotated", 58);
	assert_non_null(strstr(text, "the previous part is in console.log.1"));
	free(text);
	rotfile_close(&rf);
	/* Reopened, it goes on from its size. */
	assert_int_equal(rotfile_open(&rf, path, 100000), 0);
	assert_int_equal(rf.rf_size, (uint64_t)file_size(path));
	rotfile_close(&rf);
	unlink(path);
	unlink(old);
	rmdir(dir);
	free(path);
	free(old);
}

static void
test_rotfile_splits_a_write_past_the_bound(void **state)
{
	char dir[] = "/tmp/attestfs-bounded.XXXXXX", *path, *old;
	struct rotfile rf;
	char *big = malloc(300000);

	assert_non_null(mkdtemp(dir));
	path = xasprintf("%s/log", dir);
	old = xasprintf("%s.1", path);
	memset(big, 'b', 300000);
	/* Below the minimum: it counts as the minimum. */
	assert_int_equal(rotfile_open(&rf, path, 10), 0);
	assert_int_equal(rf.rf_max, ROTFILE_MIN);
	assert_int_equal(rotfile_write(&rf, big, 300000), 0);
	assert_true(file_size(path) <= ROTFILE_MIN);
	assert_true(file_size(old) <= ROTFILE_MIN);
	assert_true(rf.rf_dropped > 0);
	rotfile_close(&rf);
	unlink(path);
	unlink(old);
	rmdir(dir);
	free(path);
	free(old);
	free(big);
}

/* A full disk (here /dev/full) loses bytes from the file only with a count;
 * the first write that fits again starts with a line that says so. */
static void
test_rotfile_marks_what_a_full_disk_lost(void **state)
{
	char path[] = "/tmp/attestfs-unit-rf.XXXXXX";
	struct rotfile rf;
	char buf[256];
	int fd;
	ssize_t n;

	(void)state;
	assert_int_equal(rotfile_open(&rf, "/dev/full", 1 << 20), 0);
	assert_int_equal(rotfile_write(&rf, "hello\n", 6), -ENOSPC);
	assert_int_equal(rotfile_write(&rf, "world\n", 6), -ENOSPC);
	assert_int_equal(rf.rf_lost, 12);
	/* There is room again: a real file takes the place of /dev/full. */
	fd = mkstemp(path);
	assert_true(fd >= 0);
	close(rf.rf_fd);
	rf.rf_fd = fd;
	rf.rf_size = 0;
	assert_int_equal(rotfile_write(&rf, "again\n", 6), 0);
	assert_int_equal(rf.rf_lost, 0);
	n = pread(fd, buf, sizeof(buf) - 1, 0);
	assert_true(n > 0);
	buf[n] = '\0';
	assert_string_equal(buf, "\n[attestfs: 12 bytes of full lost: no room on "
			    "disk]\nagain\n");
	rotfile_close(&rf);
	unlink(path);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_keep_tail_drops_whole_lines_first),
		cmocka_unit_test(test_rotfile_marks_what_a_full_disk_lost),
		cmocka_unit_test(test_keep_tail_of_one_huge_append),
		cmocka_unit_test(test_keep_head_counts_the_rest),
		cmocka_unit_test(test_tailbuf_marks_what_went),
		cmocka_unit_test(test_rotfile_rotates_once_with_a_marker),
		cmocka_unit_test(test_rotfile_splits_a_write_past_the_bound),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
