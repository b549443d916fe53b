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
#include <fcntl.h>
#include <signal.h>
#include <sys/eventfd.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <linux/vm_sockets.h>
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
	int hangup;             /* answer, then close at once */
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
	    write(fd, ok, sizeof(ok) - 1) == (ssize_t)sizeof(ok) - 1 &&
	    !f->hangup)
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

/* A guest shell that ends as soon as it is connected: dialed again and
 * again (after a back-off), each connection handed over; stop ends it. */
static void
test_short_lived_connections_are_dialed_again(void **state)
{
	struct vsock_dialer *d;
	struct aerr err = { "" };
	struct fake f;
	struct got g;

	fake_init(&f);
	got_init(&g);
	f.hangup = 1;
	fake_listen(&f, 0);
	assert_int_equal(vsock_dialer_start(f.path, ATTESTFS_VSOCK_PORT, 1,
					    &events, &g, &d, &err), 0);
	wait_count(&g.lock, &g.cond, &g.n, 4);
	vsock_dialer_stop(d);
	pthread_mutex_lock(&g.lock);
	for (int i = 0; i < g.n; i++) {
		assert_int_equal(g.index[i], 0);
		assert_banner(g.fds[i]);
		assert_eof(g.fds[i]);
	}
	pthread_mutex_unlock(&g.lock);
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

/* ---- the guest's listener (machine/agent/vsock-listen.c), on AF_UNIX --- */

#define LISTENER "build/agent/attestfs-vsock-listen"

/* In a forked child: the listener ends with this test process, also when
 * a failed assertion skipped its kill (it would hold our stdout open). */
static void
die_with_parent(void)
{
	prctl(PR_SET_PDEATHSIG, SIGKILL);
}

static pid_t
listener_start(const char *path)
{
	pid_t pid = fork();

	assert_true(pid >= 0);
	if (pid == 0) {
		die_with_parent();
		execl(LISTENER, LISTENER, "-u", path, "/bin/sh", "-c",
		      "echo 'Spawning backdoor root shell...'; exec /bin/sh",
		      (char *)NULL);
		_exit(127);
	}
	return pid;
}

/* The listener's socket, once it listens (polled: it is another process). */
static int
listener_connect(const char *path)
{
	struct timespec ts = { 0, 10 * 1000 * 1000 };
	int i, fd = -ENOENT;

	for (i = 0; i < HANG_SECS * 100; i++) {
		fd = sock_unix_connect(path);
		if (fd >= 0)
			return fd;
		nanosleep(&ts, NULL);
	}
	fail_msg("the listener did not listen on %s: %s", path, strerror(-fd));
	return -1;
}

/* A line from a shell, up to its newline. */
static void
read_line(int fd, char *buf, size_t size)
{
	size_t n = 0;

	while (n + 1 < size) {
		struct pollfd p = { .fd = fd, .events = POLLIN };

		assert_int_equal(poll(&p, 1, HANG_SECS * 1000), 1);
		assert_int_equal(recv(fd, buf + n, 1, 0), 1);
		if (buf[n] == '\n')
			break;
		n++;
	}
	buf[n] = '\0';
}

static void
say(int fd, const char *text)
{
	assert_int_equal(write_all(fd, text, strlen(text)), 0);
}

/* A new shell per connection, greeting first; a connection that ends
 * ends its shell, the others go on. */
static void
test_listener_runs_a_shell_per_connection(void **state)
{
	char dir[] = "/tmp/attestfs-vlisten.XXXXXX", path[64], line[128];
	char pid1[32], pid2[32], cmd[160];
	int a, b, status;
	pid_t lp;

	assert_non_null(mkdtemp(dir));
	snprintf(path, sizeof(path), "%s/l.sock", dir);
	lp = listener_start(path);
	a = listener_connect(path);
	b = listener_connect(path);
	read_line(a, line, sizeof(line));
	assert_string_equal(line, "Spawning backdoor root shell...");
	read_line(b, line, sizeof(line));
	assert_string_equal(line, "Spawning backdoor root shell...");
	say(a, "echo $$\n");
	say(b, "echo $$\n");
	read_line(a, pid1, sizeof(pid1));
	read_line(b, pid2, sizeof(pid2));
	assert_true(atoi(pid1) > 0 && atoi(pid2) > 0);
	assert_string_not_equal(pid1, pid2);
	/* Its own session: the host's end of a connection kills no other. */
	snprintf(cmd, sizeof(cmd), "[ \"$(cut -d' ' -f6 /proc/$$/stat)\" = "
		 "$$ ] && echo leader\n");
	say(b, cmd);
	read_line(b, line, sizeof(line));
	assert_string_equal(line, "leader");
	close(a);
	snprintf(cmd, sizeof(cmd), "while kill -0 %s 2>/dev/null; do sleep "
		 "0.05; done; echo gone\n", pid1);
	say(b, cmd);
	read_line(b, line, sizeof(line));
	assert_string_equal(line, "gone");
	close(b);
	kill(lp, SIGKILL);
	assert_int_equal(waitpid(lp, &status, 0), lp);
	unlink(path);
	rmdir(dir);
}

/* The command does not inherit the listener's ignored SIGCHLD: with it, the
 * kernel reaps children before a wait sees their status (the shells reset
 * it themselves; a command that is no shell would not). */
static void
test_listener_command_gets_default_sigchld(void **state)
{
	char dir[] = "/tmp/attestfs-vlisten.XXXXXX", path[64], line[128];
	unsigned long long ign;
	int fd, status;
	pid_t lp;

	assert_non_null(mkdtemp(dir));
	snprintf(path, sizeof(path), "%s/l.sock", dir);
	lp = fork();
	assert_true(lp >= 0);
	if (lp == 0) {
		die_with_parent();
		execl(LISTENER, LISTENER, "-u", path, "/bin/grep", "SigIgn",
		      "/proc/self/status", (char *)NULL);
		_exit(127);
	}
	fd = listener_connect(path);
	read_line(fd, line, sizeof(line));
	close(fd);
	kill(lp, SIGKILL);
	assert_int_equal(waitpid(lp, &status, 0), lp);
	unlink(path);
	rmdir(dir);
	assert_int_equal(sscanf(line, "SigIgn: %llx", &ign), 1);
	assert_int_equal(ign & (1ULL << (SIGCHLD - 1)), 0);
}

static void
test_listener_refuses_bad_arguments(void **state)
{
	static const char *const bad[][5] = {
		{ "1024", "sh", NULL },        /* not an absolute path */
		{ "port", "/bin/sh", NULL },
		{ "99999999999", "/bin/sh", NULL },
		{ "1024", NULL },
	};
	size_t i;
	int status;

	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		pid_t pid = fork();

		assert_true(pid >= 0);
		if (pid == 0) {
			int null = open("/dev/null", O_WRONLY);

			dup2(null, 2);
			execl(LISTENER, LISTENER, bad[i][0], bad[i][1],
			      (char *)NULL);
			_exit(127);
		}
		assert_int_equal(waitpid(pid, &status, 0), pid);
		assert_true(WIFEXITED(status));
		assert_int_equal(WEXITSTATUS(status), 2);
	}
}

/* A vsock socket bound to port (any CID), listening; -errno. */
static int
vsock_bound(unsigned port)
{
	struct sockaddr_vm sa = {
		.svm_family = AF_VSOCK,
		.svm_port = port,
		.svm_cid = VMADDR_CID_ANY,
	};
	int fd = socket(AF_VSOCK, SOCK_STREAM | SOCK_CLOEXEC, 0), ret;

	if (fd < 0)
		return -errno;
	if (bind(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0 ||
	    listen(fd, 1) < 0) {
		ret = -errno;
		close(fd);
		return ret;
	}
	return fd;
}

/* Has process pid a listening AF_VSOCK socket on port? */
static int
listening_on(pid_t pid, unsigned port)
{
	int pidfd = (int)syscall(SYS_pidfd_open, pid, 0), fd, found = 0;

	if (pidfd < 0)
		return 0;
	for (fd = 3; fd < 64 && !found; fd++) {
		struct sockaddr_vm sa;
		socklen_t len = sizeof(sa);
		int dup = (int)syscall(SYS_pidfd_getfd, pidfd, fd, 0), on = 0;
		socklen_t olen = sizeof(on);

		if (dup < 0)
			continue;
		if (getsockname(dup, (struct sockaddr *)&sa, &len) == 0 &&
		    sa.svm_family == AF_VSOCK && sa.svm_port == port &&
		    getsockopt(dup, SOL_SOCKET, SO_ACCEPTCONN, &on, &olen) == 0)
			found = on;
		close(dup);
	}
	close(pidfd);
	return found;
}

/* On AF_VSOCK itself (where the host has it; no transport is needed to
 * listen): the port is the one asked for, seen as taken both ways. */
static void
test_listener_binds_the_vsock_port(void **state)
{
	struct timespec ts = { 0, 10 * 1000 * 1000 };
	unsigned port = 40000 + (unsigned)getpid() % 20000;
	char arg[16];
	int fd, status, i;
	pid_t pid;

	fd = vsock_bound(port);
	if (fd == -EAFNOSUPPORT || fd == -EACCES || fd == -EPERM)
		skip();
	assert_true(fd >= 0);
	snprintf(arg, sizeof(arg), "%u", port);
	/* Taken: it says so and exits 1. */
	pid = fork();
	if (pid == 0) {
		int null = open("/dev/null", O_WRONLY);

		die_with_parent();
		dup2(null, 2);
		execl(LISTENER, LISTENER, arg, "/bin/true", (char *)NULL);
		_exit(127);
	}
	for (i = 0; i < HANG_SECS * 100 && !waitpid(pid, &status, WNOHANG);
	     i++)
		nanosleep(&ts, NULL);
	if (i == HANG_SECS * 100) {
		kill(pid, SIGKILL);
		waitpid(pid, &status, 0);
		fail_msg("it listens on another port than %u", port);
	}
	assert_true(WIFEXITED(status));
	assert_int_equal(WEXITSTATUS(status), 1);
	close(fd);
	/* Free: it listens on it (its socket, looked at through a pidfd:
	 * binding the port to see would race with its own bind). */
	pid = fork();
	if (pid == 0) {
		die_with_parent();
		execl(LISTENER, LISTENER, arg, "/bin/true", (char *)NULL);
		_exit(127);
	}
	for (i = 0; i < HANG_SECS * 100 && !listening_on(pid, port); i++)
		nanosleep(&ts, NULL);
	assert_true(listening_on(pid, port));
	kill(pid, SIGKILL);
	assert_int_equal(waitpid(pid, &status, 0), pid);
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
		cmocka_unit_test(test_short_lived_connections_are_dialed_again),
		cmocka_unit_test(test_bad_arguments),
		cmocka_unit_test(test_listener_runs_a_shell_per_connection),
		cmocka_unit_test(test_listener_command_gets_default_sigchld),
		cmocka_unit_test(test_listener_refuses_bad_arguments),
		cmocka_unit_test(test_listener_binds_the_vsock_port),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
