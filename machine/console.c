/*
 * A machine's console: the thread that reads it into console.log and the
 * waits, writes to it, and views of console.log.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <fcntl.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include "machine/internal.h"

/* In memory (console.log keeps more, up to log_max). */
#define BOOT_CONSOLE_MAX (1u << 20)
#define CONSOLE_LINE_MAX 4096
/* How long a console write waits for the guest to read its input. */
#define CONSOLE_WRITE_WAIT_MS 1000

/*
 * Without the lock (only the console thread writes console.log): a write
 * the file refuses (its file system is full) loses those bytes from the
 * file only, never from waiters or the foreground. The log says so once;
 * the file marks the gap when there is room again (rotfile_write).
 */
static void
console_keep(struct machine *m, const char *buf, size_t n)
{
	uint64_t lost = m->console_file.rf_lost;
	int ret = rotfile_write(&m->console_file, buf, n);

	if (ret < 0 && !lost)
		machine_log(m, "console.log: %s; console bytes are not kept on "
			    "disk until there is room", strerror(-ret));
	else if (ret == 0 && lost)
		machine_log(m, "console.log: there is room again; the gap is "
			    "marked in it");
}

/* With the lock: the console grew by buf (it is on disk already). */
static void
console_bytes(struct machine *m, const char *buf, size_t n)
{
	size_t i, drop;
	struct waiter *w;

	/* What goes from the front must have been seen by every wait. */
	if (m->boot_console.len + n > BOOT_CONSOLE_MAX)
		waiters_console_check(m);
	drop = sb_add_keep_tail(&m->boot_console, BOOT_CONSOLE_MAX, buf, n);
	for (w = m->waiters; drop && w; w = w->next)
		w->console_pos = w->console_pos > drop ? w->console_pos - drop : 0;
	if (!m->set->opt.foreground)
		return;
	for (i = 0; i < n; i++) {
		/* A guest that never ends its line still gets printed. */
		if (buf[i] == '\n' || m->console_line.len >= CONSOLE_LINE_MAX) {
			fprintf(stderr, "%s # %s\n", m->cfg.name,
				m->console_line.data ? m->console_line.data : "");
			sb_free(&m->console_line);
		}
		if (buf[i] != '\n' && buf[i] != '\r')
			sb_add(&m->console_line, buf + i, 1);
	}
}

void *
machine_console_reader(void *arg)
{
	struct machine *m = arg;
	char buf[16384];

	for (;;) {
		int fd = accept4(m->console_listen, NULL, NULL, SOCK_CLOEXEC);

		if (fd < 0) {
			if (errno == EINTR || errno == ECONNABORTED)
				continue;
			break;
		}
		machine_lock(m);
		if (m->stopping) {
			machine_unlock(m);
			close(fd);
			break;
		}
		m->console_fd = fd;
		machine_unlock(m);
		for (;;) {
			ssize_t n = read(fd, buf, sizeof(buf));

			if (n < 0 && errno == EINTR)
				continue;
			if (n <= 0)
				break;
			/* Only this thread writes console.log: no lock for it. */
			console_keep(m, buf, (size_t)n);
			machine_lock(m);
			console_bytes(m, buf, (size_t)n);
			pthread_cond_broadcast(&m->cond);
			machine_unlock(m);
		}
		machine_lock(m);
		m->console_fd = -1;
		machine_unlock(m);
		close(fd);
	}
	return NULL;
}

/*
 * A guest that does not read its console would hold a FUSE worker here for
 * good (the kernel does not interrupt a write in progress): take what the
 * socket takes now, wait a bounded time for room, else EAGAIN.
 */
int
machine_console_write(struct machine *m, const char *buf, size_t len)
{
	struct pollfd pfd = { .events = POLLOUT };
	ssize_t n;
	int ret;

	machine_lock(m);
	pfd.fd = m->console_fd >= 0 ? dup(m->console_fd) : -1;
	machine_unlock(m);
	if (pfd.fd < 0) {
		machine_log(m, "console: the machine is not running");
		return -EHOSTDOWN;
	}
	for (;;) {
		n = send(pfd.fd, buf, len, MSG_DONTWAIT | MSG_NOSIGNAL);
		if (n >= 0 || (errno != EAGAIN && errno != EINTR))
			break;
		if (errno == EAGAIN &&
		    poll(&pfd, 1, CONSOLE_WRITE_WAIT_MS) == 0) {
			machine_log(m, "console: the guest has not read its "
				    "console input for %d ms (its buffer is "
				    "full): %zu bytes not taken, try again "
				    "later", CONSOLE_WRITE_WAIT_MS, len);
			errno = EAGAIN;
			break;
		}
	}
	ret = n >= 0 ? (int)n : -errno;
	close(pfd.fd);
	return ret;
}

struct console_view {
	int cv_fd[2];          /* console.log.1, console.log; -1: none */
	uint64_t cv_size[2];   /* as they were at open */
};

/* Both files as of one moment, without the lock: console.log is renamed to
 * console.log.1 at a rotation, so look again if it changed meanwhile. */
static void
console_view_fill(struct machine *m, struct console_view *v)
{
	char *cur = xasprintf("%s/console.log", m->dir);
	char *old = xasprintf("%s/console.log.1", m->dir);
	struct stat st[2], again;
	int tries, i;

	for (tries = 0; tries < 8; tries++) {
		v->cv_fd[1] = open(cur, O_RDONLY | O_CLOEXEC);
		v->cv_fd[0] = open(old, O_RDONLY | O_CLOEXEC);
		for (i = 0; i < 2; i++)
			if (v->cv_fd[i] >= 0 && fstat(v->cv_fd[i], &st[i]) < 0) {
				close(v->cv_fd[i]);
				v->cv_fd[i] = -1;
			}
		if (v->cv_fd[1] < 0 || (stat(cur, &again) == 0 &&
					again.st_ino == st[1].st_ino))
			break;
		for (i = 0; i < 2; i++)
			if (v->cv_fd[i] >= 0)
				close(v->cv_fd[i]);
	}
	for (i = 0; i < 2; i++)
		v->cv_size[i] = v->cv_fd[i] >= 0 ? (uint64_t)st[i].st_size : 0;
	free(cur);
	free(old);
}

int
machine_console_open(struct machine *m, struct console_view **out)
{
	struct console_view *v = xcalloc(1, sizeof(*v));

	console_view_fill(m, v);
	*out = v;
	return 0;
}

ssize_t
machine_console_pread(struct console_view *v, char *buf, size_t size,
		      uint64_t off)
{
	ssize_t n;
	int i = 0;

	if (off >= v->cv_size[0]) {
		off -= v->cv_size[0];
		i = 1;
	}
	if (off >= v->cv_size[i] || v->cv_fd[i] < 0)
		return 0;
	if (size > v->cv_size[i] - off)
		size = (size_t)(v->cv_size[i] - off);
	n = pread(v->cv_fd[i], buf, size, (off_t)off);
	return n < 0 ? -errno : n;
}

void
machine_console_close(struct console_view *v)
{
	int i;

	if (!v)
		return;
	for (i = 0; i < 2; i++)
		if (v->cv_fd[i] >= 0)
			close(v->cv_fd[i]);
	free(v);
}
