/*
 * fsop: system calls on the tree, each outcome printed with its errno's
 * name, for the contract tests (tests/contract/).
 *
 *	fsop tx FILE TEXT     a transaction: open O_RDWR, write TEXT, read to
 *	                      the end, then read once more (also after a
 *	                      failed write: its reads must fail too)
 *	fsop txt FILE TEXT    the same, opened O_RDWR|O_TRUNC
 *	fsop write FILE TEXT  open O_WRONLY|O_TRUNC (as `>` does), write TEXT
 *	fsop read FILE        open O_RDONLY, read to the end, then once more
 *
 * TEXT "-" is stdin. TEXT is written whole, resuming after a short write as
 * a shell's printf does. The bytes read go to stdout unchanged, in reads of
 * 1 MiB. Each step's outcome goes to stderr, one line each, at once (tests
 * wait for "write ok" to know that the read that follows is the one that
 * blocks):
 *	open ENOENT | write ok | write EFBIG | read EOF | read EREMOTEIO |
 *	again EOF | ...
 * SIGUSR1 interrupts a blocked read(2) (no SA_RESTART): it reports EINTR.
 * The exit status is 0 when no step failed, else 1.
 *
 * C rather than a script: the tier runs it a hundred times, and an
 * interpreter's start-up would be most of the tier's time.
 */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define FSOP_CHUNK (1 << 20)

static void
on_usr1(int sig)
{
	(void)sig;
}

static const char *
fsop_ename(int err)
{
	/* one number, two names on Linux: DESIGN.md's is EOPNOTSUPP */
	if (err == EOPNOTSUPP)
		return "EOPNOTSUPP";
	return strerrorname_np(err) ? strerrorname_np(err) : "E?";
}

static void
fsop_report(const char *step, const char *what)
{
	dprintf(2, "%s %s\n", step, what);
}

/* The whole of fd (a file or stdin) in memory. */
static char *
fsop_slurp(int fd, size_t *len)
{
	size_t cap = FSOP_CHUNK, n = 0;
	char *buf = malloc(cap);
	ssize_t r;

	for (;;) {
		if (!buf)
			exit(2);
		r = read(fd, buf + n, cap - n);
		if (r < 0 && errno == EINTR)
			continue;
		if (r <= 0)
			break;
		n += r;
		if (n == cap)
			buf = realloc(buf, cap *= 2);
	}
	*len = n;
	return buf;
}

/* 0, or the errno of the first failed write. */
static int
fsop_write_all(int fd, const char *p, size_t len)
{
	ssize_t w;

	while (len) {
		w = write(fd, p, len);
		if (w < 0)
			return errno;
		p += w;
		len -= w;
	}
	return 0;
}

/* Read to EOF: 0, or the errno of the first failed read. */
static int
fsop_read_all(int fd, char *buf)
{
	ssize_t r;

	for (;;) {
		r = read(fd, buf, FSOP_CHUNK);
		if (r < 0)
			return errno;
		if (r == 0)
			return 0;
		if (fsop_write_all(1, buf, r))
			exit(2);
	}
}

static int
fsop_flags(const char *op)
{
	if (!strcmp(op, "tx"))
		return O_RDWR;
	if (!strcmp(op, "txt"))
		return O_RDWR | O_TRUNC;
	if (!strcmp(op, "write"))
		return O_WRONLY | O_TRUNC;
	if (!strcmp(op, "read"))
		return O_RDONLY;
	return -1;
}

int
main(int argc, char **argv)
{
	struct sigaction sa = { .sa_handler = on_usr1 };
	int flags, fd, err, failed = 0;
	char *buf, *text;
	size_t len;

	flags = argc >= 3 ? fsop_flags(argv[1]) : -1;
	if (flags < 0 || (flags != O_RDONLY) != (argc == 4)) {
		fprintf(stderr, "usage: fsop tx|txt|write FILE TEXT | read FILE\n");
		return 2;
	}
	sigaction(SIGUSR1, &sa, NULL);
	fd = open(argv[2], flags);
	if (fd < 0) {
		fsop_report("open", fsop_ename(errno));
		return 1;
	}
	if (flags != O_RDONLY) {
		if (!strcmp(argv[3], "-")) {
			text = fsop_slurp(0, &len);
		} else {
			text = strdup(argv[3]);
			len = strlen(argv[3]);
		}
		err = fsop_write_all(fd, text, len);
		free(text);
		fsop_report("write", err ? fsop_ename(err) : "ok");
		if (flags == (O_WRONLY | O_TRUNC))
			return !!err;
		failed = !!err;
	}
	buf = malloc(FSOP_CHUNK);
	if (!buf)
		return 2;
	err = fsop_read_all(fd, buf);
	fsop_report("read", err ? fsop_ename(err) : "EOF");
	failed |= !!err;
	err = fsop_read_all(fd, buf);
	fsop_report("again", err ? fsop_ename(err) : "EOF");
	free(buf);
	return failed;
}
