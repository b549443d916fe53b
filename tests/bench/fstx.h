/*
 * One exec transaction through the mount, as both bench clients time it:
 * open O_RDWR, write the command, read to EOF, close. Plain system calls,
 * no fork, so the figures are attestfs's and not the host's process
 * start-up.
 */
#ifndef ATTESTFS_BENCH_FSTX_H
#define ATTESTFS_BENCH_FSTX_H

#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <unistd.h>

#include "tests/bench/stats.h"

struct bench_fstx {
	double phase[4];	/* ms: open, write, read to EOF, close */
	double first_byte;	/* bench_now_ms() of the first byte, or 0 */
	/* each read's bytes, if set */
	void (*on_bytes)(struct bench_fstx *t, size_t n);
};

/* Bytes read, or -errno (a failed read: its errno, EREMOTEIO for a
 * non-zero exit). */
static inline long long
bench_fstx(const char *path, const char *cmd, struct bench_fstx *t)
{
	static char buf[128 * 1024];
	long long total = 0;
	size_t len = strlen(cmd);
	double t0 = bench_now_ms(), t1;
	ssize_t n;
	int fd, e;

	t->first_byte = 0;
	fd = open(path, O_RDWR);
	if (fd < 0)
		return -errno;
	t1 = bench_now_ms();
	t->phase[0] = t1 - t0;
	t0 = t1;
	n = write(fd, cmd, len);
	if (n != (ssize_t)len) {
		e = n < 0 ? errno : EIO;
		close(fd);
		return -e;
	}
	t1 = bench_now_ms();
	t->phase[1] = t1 - t0;
	t0 = t1;
	while ((n = read(fd, buf, sizeof(buf))) > 0) {
		if (!t->first_byte)
			t->first_byte = bench_now_ms();
		total += n;
		if (t->on_bytes)
			t->on_bytes(t, (size_t)n);
	}
	if (n < 0) {
		e = errno;
		close(fd);
		return -e;
	}
	t1 = bench_now_ms();
	t->phase[2] = t1 - t0;
	t0 = t1;
	if (close(fd) < 0)
		return -errno;
	t->phase[3] = bench_now_ms() - t0;
	return total;
}

#endif
