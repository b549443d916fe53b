/*
 * The hybrid-vsock dialer (backends/vsock.c) against a fake VMM socket in
 * this process: a listener that reads the CONNECT line in one read (as
 * Firecracker does), refuses a number of connections by closing them
 * without a reply (the guest still boots), and answers the rest with
 * "OK <port>\n" and the shell's banner in the same write.
 */
#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>
#include <cmocka.h>

#include "backends/vsock.h"
#include "common/sock.h"

#define BANNER "Spawning backdoor root shell...\n"
#define MAX_CONNS 64
/* A hang, not a timing: the test fails after this long. */
#define HANG_SECS 30

struct fake {
	char dir[64];
	char path[96];
	int lfd;
	int stop_fd;
	pthread_t thread;
	pthread_mutex_t lock;
	pthread_cond_t cond;
	int refuse;             /* close this many without a reply */
	int attempts;           /* connections accepted */
	int bad_connect;        /* a CONNECT line not whole in one read */
	int conns[MAX_CONNS];   /* the answered ones, our side */
	int n_conns;
};

struct got {
	pthread_mutex_t lock;
	pthread_cond_t cond;
	int fds[MAX_CONNS];
	size_t index[MAX_CONNS];
	int n;
	int logs;
};

static void
on_channel(void *owner, size_t index, int fd)
{
	struct got *g = owner;

	pthread_mutex_lock(&g->lock);
	assert_true(g->n < MAX_CONNS);
	g->fds[g->n] = fd;
	g->index[g->n] = index;
	g->n++;
	pthread_cond_broadcast(&g->cond);
	pthread_mutex_unlock(&g->lock);
}

static void
on_log(void *owner, const char *text)
{
	struct got *g = owner;

	pthread_mutex_lock(&g->lock);
	g->logs++;
	pthread_mutex_unlock(&g->lock);
}

static const struct backend_events events = {
	.channel = on_channel,
	.log = on_log,
};

static void
deadline_in(struct timespec *ts, int secs)
{
	clock_gettime(CLOCK_REALTIME, ts);
	ts->tv_sec += secs;
}

/* Wait until *counter >= want under lock/cond; a hang fails the test. */
static void
wait_count(pthread_mutex_t *lock, pthread_cond_t *cond, const int *counter,
	   int want)
{
	struct timespec ts;

	deadline_in(&ts, HANG_SECS);
	pthread_mutex_lock(lock);
	while (*counter < want)
		if (pthread_cond_timedwait(cond, lock, &ts) == ETIMEDOUT) {
			pthread_mutex_unlock(lock);
			fail_msg("waited for %d, have %d", want, *counter);
		}
	pthread_mutex_unlock(lock);
}

static void
fake_serve_one(struct fake *f, int fd)
{
	static const char ok[] = "OK 1073741824\n" BANNER;
	char buf[64];
	struct pollfd p = { .fd = fd, .events = POLLIN };
	ssize_t n;
	int refuse;

	/* One read, as Firecracker's non-blocking parser does. */
	n = poll(&p, 1, HANG_SECS * 1000) == 1 ?
		    recv(fd, buf, sizeof(buf) - 1, MSG_DONTWAIT) : -1;
	pthread_mutex_lock(&f->lock);
	f->attempts++;
	if (n != 13 || memcmp(buf, "CONNECT 1024\n", 13)) {
		f->bad_connect++;
		refuse = 1;
	} else {
		refuse = f->refuse > 0;
		if (refuse)
			f->refuse--;
	}
	if (!refuse && f->n_conns < MAX_CONNS &&
	    write(fd, ok, sizeof(ok) - 1) == (ssize_t)sizeof(ok) - 1)
		f->conns[f->n_conns++] = fd;
	else
		close(fd);
	pthread_cond_broadcast(&f->cond);
	pthread_mutex_unlock(&f->lock);
}

static void *
fake_main(void *arg)
{
	struct fake *f = arg;

	for (;;) {
		struct pollfd p[2] = {
			{ .fd = f->lfd, .events = POLLIN },
			{ .fd = f->stop_fd, .events = POLLIN },
		};
		int fd;

		if (poll(p, 2, -1) < 0)
			continue;
		if (p[1].revents)
			return NULL;
		fd = accept4(f->lfd, NULL, NULL, SOCK_CLOEXEC);
		if (fd >= 0)
			fake_serve_one(f, fd);
	}
}

static void
fake_init(struct fake *f)
{
	memset(f, 0, sizeof(*f));
	strcpy(f->dir, "/tmp/attestfs-vsock.XXXXXX");
	assert_non_null(mkdtemp(f->dir));
	snprintf(f->path, sizeof(f->path), "%s/v.sock", f->dir);
	f->lfd = -1;
	pthread_mutex_init(&f->lock, NULL);
	pthread_cond_init(&f->cond, NULL);
}

/* The VMM's socket appears (after the dialer started, in some tests). */
static void
fake_listen(struct fake *f, int refuse)
{
	struct aerr err = { "" };

	f->refuse = refuse;
	f->lfd = sock_listen_unix(f->path, &err);
	assert_true(f->lfd >= 0);
	f->stop_fd = eventfd(0, EFD_CLOEXEC);
	assert_true(f->stop_fd >= 0);
	assert_int_equal(pthread_create(&f->thread, NULL, fake_main, f), 0);
}

/* The VMM resets every connection (a snapshot). */
static void
fake_drop_all(struct fake *f)
{
	pthread_mutex_lock(&f->lock);
	for (int i = 0; i < f->n_conns; i++)
		if (f->conns[i] >= 0) {
			close(f->conns[i]);
			f->conns[i] = -1;
		}
	pthread_mutex_unlock(&f->lock);
}

static void
fake_fini(struct fake *f)
{
	uint64_t one = 1;

	if (f->lfd >= 0) {
		assert_int_equal(write(f->stop_fd, &one, sizeof(one)),
				 sizeof(one));
		pthread_join(f->thread, NULL);
		close(f->lfd);
		close(f->stop_fd);
	}
	fake_drop_all(f);
	unlink(f->path);
	rmdir(f->dir);
}

static void
got_init(struct got *g)
{
	memset(g, 0, sizeof(*g));
	pthread_mutex_init(&g->lock, NULL);
	pthread_cond_init(&g->cond, NULL);
}

static void
got_close(struct got *g)
{
	for (int i = 0; i < g->n; i++)
		close(g->fds[i]);
	g->n = 0;
}

/* What the shell sent first arrives whole on the handed-over fd. */
static void
assert_banner(int fd)
{
	char buf[64];
	ssize_t n;
	struct pollfd p = { .fd = fd, .events = POLLIN };

	assert_int_equal(poll(&p, 1, HANG_SECS * 1000), 1);
	n = recv(fd, buf, sizeof(buf), 0);
	assert_int_equal(n, (ssize_t)strlen(BANNER));
	assert_memory_equal(buf, BANNER, strlen(BANNER));
}

/* The end of a connection, as machine/ sees it. */
static void
assert_eof(int fd)
{
	char buf[64];
	struct pollfd p = { .fd = fd, .events = POLLIN };

	assert_int_equal(poll(&p, 1, HANG_SECS * 1000), 1);
	assert_true(recv(fd, buf, sizeof(buf), 0) <= 0);
}

static void
test_handshake_leaves_the_banner(void **state)
{
	static const char reply[] = "OK 1073741824\n" BANNER;
	char buf[64], why[128];
	int sv[2];

	assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
	/* Reply and banner in one segment, before the dialer even reads. */
	assert_int_equal(write(sv[1], reply, sizeof(reply) - 1),
			 sizeof(reply) - 1);
	assert_int_equal(vsock_handshake(sv[0], 1024, 5000, why, sizeof(why)),
			 0);
	assert_int_equal(recv(sv[1], buf, sizeof(buf), MSG_DONTWAIT), 13);
	assert_memory_equal(buf, "CONNECT 1024\n", 13);
	assert_banner(sv[0]);
	close(sv[0]);
	close(sv[1]);
}

static void
test_handshake_refusals(void **state)
{
	char why[128];
	int sv[2];

	/* No guest listener: closed without a reply. */
	assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
	shutdown(sv[1], SHUT_WR);
	assert_int_equal(vsock_handshake(sv[0], 1024, 5000, why, sizeof(why)),
			 -ECONNRESET);
	close(sv[0]);
	close(sv[1]);
	/* Something else answers. */
	assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
	assert_int_equal(write(sv[1], "HTTP/1.1 400\r\n", 14), 14);
	assert_int_equal(vsock_handshake(sv[0], 1024, 5000, why, sizeof(why)),
			 -EPROTO);
	assert_non_null(strstr(why, "HTTP/1.1 400"));
	close(sv[0]);
	close(sv[1]);
}

/* Each index once, whatever the order; each with its banner. */
static void
assert_each_index_once(struct got *g, int from, size_t n)
{
	int seen[8] = { 0 };

	pthread_mutex_lock(&g->lock);
	assert_int_equal(g->n - from, (int)n);
	for (int i = from; i < g->n; i++) {
		assert_true(g->index[i] < n);
		seen[g->index[i]]++;
		assert_banner(g->fds[i]);
	}
	pthread_mutex_unlock(&g->lock);
	for (size_t i = 0; i < n; i++)
		assert_int_equal(seen[i], 1);
}

/* The socket is not there yet, then the guest refuses a while: every
 * channel gets through, with the bytes after "OK". */
static void
test_dialer_waits_for_the_guest(void **state)
{
	struct vsock_dialer *d;
	struct aerr err = { "" };
	struct fake f;
	struct got g;

	fake_init(&f);
	got_init(&g);
	assert_int_equal(vsock_dialer_start(f.path, ATTESTFS_VSOCK_PORT, 3,
					    &events, &g, &d, &err), 0);
	fake_listen(&f, 7);
	wait_count(&g.lock, &g.cond, &g.n, 3);
	assert_each_index_once(&g, 0, 3);
	pthread_mutex_lock(&f.lock);
	assert_int_equal(f.bad_connect, 0);
	assert_int_equal(f.attempts, 10);
	pthread_mutex_unlock(&f.lock);
	vsock_dialer_stop(d);
	/* stop shuts the connections down: machine/ sees their end. */
	for (int i = 0; i < g.n; i++)
		assert_eof(g.fds[i]);
	got_close(&g);
	fake_fini(&f);
}

/* A reset (the VMM closes them, as after a snapshot): each channel is
 * dialed again and handed over anew. */
static void
test_dialer_redials_after_a_reset(void **state)
{
	struct vsock_dialer *d;
	struct aerr err = { "" };
	struct fake f;
	struct got g;

	fake_init(&f);
	got_init(&g);
	fake_listen(&f, 0);
	assert_int_equal(vsock_dialer_start(f.path, ATTESTFS_VSOCK_PORT, 2,
					    &events, &g, &d, &err), 0);
	wait_count(&g.lock, &g.cond, &g.n, 2);
	assert_each_index_once(&g, 0, 2);
	/* The guest listener is away for a moment after the reset. */
	pthread_mutex_lock(&f.lock);
	f.refuse = 3;
	pthread_mutex_unlock(&f.lock);
	fake_drop_all(&f);
	wait_count(&g.lock, &g.cond, &g.n, 4);
	assert_each_index_once(&g, 2, 2);
	assert_eof(g.fds[0]);
	assert_eof(g.fds[1]);
	vsock_dialer_stop(d);
	got_close(&g);
	fake_fini(&f);
}

/* redial: the backend knows the VMM reset them (snapshot load); the old
 * connections end for machine/ too, new ones come. */
static void
test_redial_replaces_the_connections(void **state)
{
	struct vsock_dialer *d;
	struct aerr err = { "" };
	struct fake f;
	struct got g;

	fake_init(&f);
	got_init(&g);
	fake_listen(&f, 0);
	assert_int_equal(vsock_dialer_start(f.path, ATTESTFS_VSOCK_PORT, 2,
					    &events, &g, &d, &err), 0);
	wait_count(&g.lock, &g.cond, &g.n, 2);
	assert_each_index_once(&g, 0, 2);
	vsock_dialer_redial(d);
	wait_count(&g.lock, &g.cond, &g.n, 4);
	assert_each_index_once(&g, 2, 2);
	assert_eof(g.fds[0]);
	assert_eof(g.fds[1]);
	vsock_dialer_stop(d);
	got_close(&g);
	fake_fini(&f);
}

/* A guest that never listens: stop ends the retries; nothing is handed
 * over. And a handed-over fd machine/ shuts down is dialed again. */
static void
test_stop_while_retrying(void **state)
{
	struct vsock_dialer *d;
	struct aerr err = { "" };
	struct fake f;
	struct got g;

	fake_init(&f);
	got_init(&g);
	fake_listen(&f, 1 << 30);
	assert_int_equal(vsock_dialer_start(f.path, ATTESTFS_VSOCK_PORT, 4,
					    &events, &g, &d, &err), 0);
	wait_count(&f.lock, &f.cond, &f.attempts, 12);
	vsock_dialer_stop(d);
	assert_int_equal(g.n, 0);
	/* Closed without a reply is what a booting guest does: no log. */
	assert_int_equal(g.logs, 0);
	fake_fini(&f);
}

static void
test_owner_hangup_redials(void **state)
{
	struct vsock_dialer *d;
	struct aerr err = { "" };
	struct fake f;
	struct got g;

	fake_init(&f);
	got_init(&g);
	fake_listen(&f, 0);
	assert_int_equal(vsock_dialer_start(f.path, ATTESTFS_VSOCK_PORT, 1,
					    &events, &g, &d, &err), 0);
	wait_count(&g.lock, &g.cond, &g.n, 1);
	/* machine/ gives up on it (shellpool_disconnect). */
	pthread_mutex_lock(&g.lock);
	shutdown(g.fds[0], SHUT_RDWR);
	pthread_mutex_unlock(&g.lock);
	wait_count(&g.lock, &g.cond, &g.n, 2);
	assert_int_equal(g.index[1], 0);
	assert_banner(g.fds[1]);
	vsock_dialer_stop(d);
	got_close(&g);
	fake_fini(&f);
}

static void
test_bad_arguments(void **state)
{
	struct vsock_dialer *d;
	struct aerr err = { "" };

	assert_int_equal(vsock_dialer_start("/nonexistent", 1024, 0, &events,
					    NULL, &d, &err), -EINVAL);
	assert_null(d);
	assert_int_equal(vsock_dialer_start("", 1024, 1, &events, NULL, &d,
					    &err), -EINVAL);
	vsock_dialer_stop(NULL);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_handshake_leaves_the_banner),
		cmocka_unit_test(test_handshake_refusals),
		cmocka_unit_test(test_dialer_waits_for_the_guest),
		cmocka_unit_test(test_dialer_redials_after_a_reset),
		cmocka_unit_test(test_redial_replaces_the_connections),
		cmocka_unit_test(test_stop_while_retrying),
		cmocka_unit_test(test_owner_hangup_redials),
		cmocka_unit_test(test_bad_arguments),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
