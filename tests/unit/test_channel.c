/*
 * Connections a backend hands over (backend_events.channel, as the vsock
 * dialer does): the mock's "mock.vsock" mode boots on them, and a
 * connection handed over to a running machine, with the test playing the
 * guest behind it, is resynchronised whether the shell there lives on
 * (SYNC), is new and greets (banner), or is new and its banner went to
 * nobody (BARE); a clone's shell 0 is running only once its resume script
 * has run.
 */
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <sys/eventfd.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include "backends/vsock.h"
#include "common/sock.h"
#include "machine/internal.h"
#include "tests/unit/harness.h"

static int
setup(void **state)
{
	return fixture_setup(state, "{\"machines\": {"
			     "\"m\": {\"backend\": \"mock\", \"shells\": 1},"
			     "\"v\": {\"backend\": \"mock\", \"shells\": 3,"
			     " \"append\": \"mock.vsock\"}}}", 20, 0);
}

static int
teardown(void **state)
{
	return fixture_teardown(state);
}

static int
run(struct machine *m, const char *cmd, struct strbuf *out)
{
	return tx_run(m, MTX_EXEC, cmd, out);
}

/* The mock boots on handed-over socket pairs: commands run, on every shell
 * at once, and nothing connected to the shells' listening sockets. */
static void
test_mock_vsock_boots_on_handed_over_channels(void **state)
{
	struct fixture *f = *state;
	struct machine *v = vmset_find(f->set, "v");
	struct strbuf out;
	size_t i;

	sb_init(&out);
	assert_int_equal(run(v, "echo over vsock", &out), 0);
	assert_string_equal(out.data, "over vsock\n");
	sb_free(&out);
	machine_lock(v);
	for (i = 0; i < v->n_shells; i++)
		assert_int_equal(v->shells[i].adopted, 1);
	machine_unlock(v);
}

/* What the guest side of fd received, until a line starting with last
 * (NULL: what there is after a short while: nothing more is due). */
static void
read_until(int fd, const char *last, struct strbuf *got)
{
	char buf[65536];

	for (;;) {
		struct pollfd p = { .fd = fd, .events = POLLIN };
		const char *nl;
		ssize_t n;

		if (got->len && got->data[got->len - 1] == '\n' && last) {
			got->data[got->len - 1] = '\0';
			nl = strrchr(got->data, '\n');
			got->data[got->len - 1] = '\n';
			if (!strncmp(nl ? nl + 1 : got->data, last,
				     strlen(last)))
				return;
		}
		if (poll(&p, 1, last ? HARNESS_CALL_SECS * 1000 : 200) != 1) {
			assert_null(last);
			return;
		}
		n = recv(fd, buf, sizeof(buf), 0);
		assert_true(n > 0);
		sb_add(got, buf, (size_t)n);
	}
}

/* The tag of the last "PREFIX<n>" in got. */
static long long
tag_after(const struct strbuf *got, const char *prefix)
{
	const char *p = got->data, *q, *at = NULL;

	while ((q = strstr(p, prefix))) {
		at = q + strlen(prefix);
		p = at;
	}
	assert_non_null(at);
	return strtoll(at, NULL, 10);
}

/* With m's lock: wait for a change; a hang lets go of the lock (the
 * dialer's callback takes it while the test is torn down) and fails. */
static void
wait_change(struct machine *m, const struct timespec *ts)
{
	if (pthread_cond_timedwait(&m->cond, &m->lock, ts) == ETIMEDOUT) {
		size_t len;
		char *log;

		machine_unlock(m);
		log = machine_render(m, MACHINE_VIEW_LOG, &len);
		fail_msg("a machine did not get there in %d s; log:\n%s",
			 HARNESS_CALL_SECS, log);
	}
}

static void
wait_ready(struct machine *m, size_t i)
{
	struct timespec ts;

	mono_deadline(&ts, HARNESS_CALL_SECS * 1000);
	machine_lock(m);
	while (!m->shells[i].ready)
		wait_change(m, &ts);
	machine_unlock(m);
}

static int
occurrences(const struct strbuf *sb, const char *s)
{
	const char *p = sb->data;
	int n = 0;

	while (p && (p = strstr(p, s))) {
		n++;
		p += strlen(s);
	}
	return n;
}

/* A running machine's shell 0 gets a handed-over connection, the test's
 * sv[1] its guest end; the probe has come: *tag is its tag. */
static int
adopt(struct machine *m, long long *tag)
{
	struct strbuf got;
	int sv[2];

	assert_int_equal(run(m, "true", NULL), 0);
	assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv),
			 0);
	machine_lock(m);
	shellpool_adopt(m, 0, sv[0]);
	machine_unlock(m);
	sb_init(&got);
	read_until(sv[1], "if command -v _atx", &got);
	assert_int_equal(occurrences(&got, "then echo SYNC"), 1);
	*tag = tag_after(&got, "then echo SYNC");
	assert_int_equal(tag_after(&got, "else echo BARE"), *tag);
	sb_free(&got);
	machine_lock(m);
	assert_int_equal(m->shells[0].ready, 0);
	machine_unlock(m);
	return sv[1];
}

static void
say(int fd, const char *text)
{
	assert_int_equal(write_all(fd, text, strlen(text)), 0);
}

struct bg_run {
	struct machine *m;
	struct strbuf out;
	int ret;
};

static void *
bg_run_main(void *arg)
{
	struct bg_run *b = arg;

	b->ret = run(b->m, "echo hi", &b->out);
	return NULL;
}

/* The shell lives on (the VMM only reset the connection): it answers
 * SYNC, gets no prelude, and runs the next command. */
static void
test_living_shell_answers_the_probe(void **state)
{
	struct fixture *f = *state;
	struct bg_run b = { .m = f->m };
	struct strbuf got;
	pthread_t th;
	long long tag;
	char line[128];
	int fd = adopt(f->m, &tag);

	snprintf(line, sizeof(line), "SYNC%lld\n", tag);
	say(fd, line);
	wait_ready(f->m, 0);
	sb_init(&b.out);
	assert_int_equal(pthread_create(&th, NULL, bg_run_main, &b), 0);
	sb_init(&got);
	read_until(fd, "_atx ", &got);
	assert_int_equal(occurrences(&got, "_atmk()"), 0);
	tag = tag_after(&got, "_atx ");
	snprintf(line, sizeof(line), "\001P %lld 42\n\001o %lld 3\nhi\n"
		 "\001X %lld 0 3 0\n", tag, tag, tag);
	say(fd, line);
	pthread_join(th, NULL);
	assert_int_equal(b.ret, 0);
	assert_string_equal(b.out.data, "hi\n");
	sb_free(&b.out);
	sb_free(&got);
	close(fd);
}

/* A new shell whose banner nobody read: BARE, and it gets the prelude. */
static void
test_new_shell_without_banner_gets_the_prelude(void **state)
{
	struct fixture *f = *state;
	struct strbuf got;
	long long tag, sync;
	char line[64];
	int fd = adopt(f->m, &tag);

	snprintf(line, sizeof(line), "BARE%lld\n", tag);
	say(fd, line);
	sb_init(&got);
	read_until(fd, "echo SYNC", &got);
	assert_int_equal(occurrences(&got, "_atmk()"), 1);
	sync = tag_after(&got, "echo SYNC");
	assert_true(sync > tag);
	snprintf(line, sizeof(line), "SYNC%lld\n", sync);
	say(fd, line);
	wait_ready(f->m, 0);
	sb_free(&got);
	close(fd);
}

/* A new shell that greets: the prelude once; the probe it then runs
 * (before the prelude: BARE) changes nothing. */
static void
test_new_shell_with_banner_gets_one_prelude(void **state)
{
	struct fixture *f = *state;
	struct strbuf got;
	long long tag, sync;
	char line[64];
	int fd = adopt(f->m, &tag);

	say(fd, SHELL_BANNER "\n");
	sb_init(&got);
	read_until(fd, "echo SYNC", &got);
	sync = tag_after(&got, "echo SYNC");
	snprintf(line, sizeof(line), "BARE%lld\n", tag);
	say(fd, line);
	snprintf(line, sizeof(line), "SYNC%lld\n", sync);
	say(fd, line);
	wait_ready(f->m, 0);
	/* Nothing more came after the one prelude. */
	read_until(fd, NULL, &got);
	assert_int_equal(occurrences(&got, "_atmk()"), 1);
	sb_free(&got);
	close(fd);
}

/* With m's lock: until shell 0's worker has taken the answer to tag (its
 * SYNC is no longer tag). */
static void
wait_sync_taken(struct machine *m, long long tag)
{
	struct timespec ts;

	mono_deadline(&ts, HARNESS_CALL_SECS * 1000);
	while (m->shells[0].sync_tag == tag && !m->shells[0].ready)
		wait_change(m, &ts);
}

/*
 * A clone after snapshot/load: shell 0's first probe carries its resume
 * script (name, machine-id, clock, seed). On the fakes the port shell that
 * read EOF at the load drops what arrives before it is gone, and its
 * successor greets on the same connection: the SYNC of that greeting's
 * prelude must not make the clone running; the script comes again, and
 * its own SYNC does. (The test plays the guest: a real shell here would
 * rename the host.)
 */
static void
test_clone_resume_script_lost_with_the_first_shell(void **state)
{
	struct fixture *f = *state;
	struct machine *m = f->m;
	struct strbuf got;
	long long tag, sync;
	enum mstate st;
	char line[64];
	int sv[2], ready;

	assert_int_equal(run(m, "true", NULL), 0);
	assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv),
			 0);
	machine_lock(m);
	m->state = MS_STARTING;
	m->boot_restored = 1;
	m->is_clone = 1;
	shellpool_adopt(m, 0, sv[0]);
	machine_unlock(m);
	sb_init(&got);
	read_until(sv[1], "if command -v _atclk", &got);
	assert_int_equal(occurrences(&got, "'m' >/proc/sys/kernel/hostname"), 1);
	tag = tag_after(&got, "then echo SYNC");

	/* The line went with the old shell; the new one greets. */
	say(sv[1], SHELL_BANNER "\n");
	sb_free(&got);
	read_until(sv[1], "echo SYNC", &got);
	sync = tag_after(&got, "echo SYNC");
	assert_true(sync > tag);
	snprintf(line, sizeof(line), "SYNC%lld\n", sync);
	say(sv[1], line);
	machine_lock(m);
	wait_sync_taken(m, sync);
	ready = m->shells[0].ready;
	st = m->state;
	machine_unlock(m);
	assert_int_equal(ready, 0);
	assert_int_equal(st, MS_STARTING);

	sb_free(&got);
	read_until(sv[1], "if command -v _atclk", &got);
	assert_int_equal(occurrences(&got, "'m' >/proc/sys/kernel/hostname"), 1);
	assert_int_equal(occurrences(&got, ">/etc/machine-id"), 1);
	tag = tag_after(&got, "echo SYNC");
	snprintf(line, sizeof(line), "SYNC%lld\n", tag);
	say(sv[1], line);
	wait_ready(m, 0);
	machine_lock(m);
	st = m->state;
	machine_unlock(m);
	assert_int_equal(st, MS_RUNNING);
	sb_free(&got);
	close(sv[1]);
}

/* The probe answered, SYNC or BARE, ran the script: no second one. */
static void
test_clone_resume_script_once(void **state)
{
	struct fixture *f = *state;
	struct machine *m = f->m;
	struct strbuf got;
	long long tag, sync;
	enum mstate st;
	char line[64];
	const char *p;
	int sv[2];

	assert_int_equal(run(m, "true", NULL), 0);
	assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv),
			 0);
	machine_lock(m);
	m->state = MS_STARTING;
	m->boot_restored = 1;
	m->is_clone = 1;
	shellpool_adopt(m, 0, sv[0]);
	machine_unlock(m);
	sb_init(&got);
	read_until(sv[1], "if command -v _atclk", &got);
	tag = tag_after(&got, "then echo SYNC");
	/* A new shell whose banner went to nobody ran it. */
	snprintf(line, sizeof(line), "BARE%lld\n", tag);
	say(sv[1], line);
	read_until(sv[1], "echo SYNC", &got);
	sync = tag_after(&got, "echo SYNC");
	snprintf(line, sizeof(line), "SYNC%lld\n", sync);
	say(sv[1], line);
	wait_ready(m, 0);
	machine_lock(m);
	st = m->state;
	machine_unlock(m);
	assert_int_equal(st, MS_RUNNING);
	read_until(sv[1], NULL, &got);
	assert_int_equal(occurrences(&got, "/proc/sys/kernel/hostname"), 1);
	/* The agent sets the name and a machine-id; the builtins only
	 * where it cannot. */
	p = strstr(got.data, "&& _athost 'm' ");
	assert_non_null(p);
	p += strlen("&& _athost 'm' ");
	assert_int_equal(strspn(p, "0123456789abcdef"), 32);
	p += 32;
	assert_memory_equal(p, "; then :; else echo 'm' >/proc/sys/kernel/"
			    "hostname", 50);
	sb_free(&got);
	close(sv[1]);
}

/*
 * ---- end to end: the dialer, machine/ and a VMM's hybrid vsock ---------
 * The relay plays the VMM and its guest: one /bin/sh per channel on a
 * socket pair (greeting first, as the guests' shells do), joined to a host
 * connection that sent "CONNECT 1024\n" (one read) while it has none. A
 * reset closes the host connections: the shells live on (the fakes: port
 * shells), or are replaced by new ones (real Firecracker: a shell per
 * connection), whose banner may have gone to nobody.
 */
enum relay_reset { RESET_LIVING, RESET_NEW, RESET_NEW_SILENT };

#define RELAY_MAX 2

/* One guest shell: its end of the pair is ours (gfd), hfd the host's
 * connection joined to it, -1: none. */
struct gshell {
	pid_t pid;
	int gfd, hfd;
};

struct relay {
	char dir[64], path[96];
	int lfd, wake_fd;
	pthread_t thread;
	pthread_mutex_t lock;
	int stop, reset;
	enum relay_reset how;
	int n;
	struct gshell sh[RELAY_MAX];
};

static void
relay_spawn(struct gshell *g, int silent)
{
	int sv[2];

	assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv),
			 0);
	g->pid = fork();
	assert_true(g->pid >= 0);
	if (g->pid == 0) {
		/* Gone with the test process, also after a failed assertion. */
		prctl(PR_SET_PDEATHSIG, SIGKILL);
		dup2(sv[1], 0);
		dup2(sv[1], 1);
		execl("/bin/sh", "sh", "-c", "echo 'Spawning backdoor root "
		      "shell...'; exec /bin/sh", (char *)NULL);
		_exit(127);
	}
	close(sv[1]);
	g->gfd = sv[0];
	g->hfd = -1;
	if (silent) {
		/* Its banner went to nobody. */
		char buf[64];
		size_t n = 0;

		while (n < sizeof(SHELL_BANNER) &&
		       read(g->gfd, buf, 1) == 1 && buf[0] != '\n')
			n++;
	}
}

static void
relay_kill(struct gshell *g)
{
	kill(g->pid, SIGKILL);
	waitpid(g->pid, NULL, 0);
	close(g->gfd);
	if (g->hfd >= 0)
		close(g->hfd);
	g->hfd = -1;
}

/* With the lock: a reset as ordered. */
static void
relay_do_reset(struct relay *r)
{
	int i;

	r->reset = 0;
	for (i = 0; i < r->n; i++) {
		struct gshell *g = &r->sh[i];

		if (g->hfd >= 0)
			close(g->hfd);
		g->hfd = -1;
		if (r->how != RESET_LIVING) {
			relay_kill(g);
			relay_spawn(g, r->how == RESET_NEW_SILENT);
		}
	}
}

/* A host connection: joined to the first shell without one, else closed
 * without a reply (as a VMM does without a guest listener). */
static void
relay_accept(struct relay *r)
{
	static const char ok[] = "OK 1073741824\n";
	struct pollfd p;
	char buf[64];
	ssize_t n;
	int i, fd = accept4(r->lfd, NULL, NULL, SOCK_CLOEXEC);

	if (fd < 0)
		return;
	p = (struct pollfd){ .fd = fd, .events = POLLIN };
	n = poll(&p, 1, HARNESS_CALL_SECS * 1000) == 1 ?
		    recv(fd, buf, sizeof(buf), MSG_DONTWAIT) : -1;
	for (i = 0; i < r->n && r->sh[i].hfd >= 0; i++)
		;
	if (i < r->n && n == 13 && !memcmp(buf, "CONNECT 1024\n", 13) &&
	    write(fd, ok, sizeof(ok) - 1) == sizeof(ok) - 1)
		r->sh[i].hfd = fd;
	else
		close(fd);
}

/* Bytes from one end to the other; 0 at the end. */
static int
relay_copy(int from, int to)
{
	char buf[65536];
	ssize_t n = read(from, buf, sizeof(buf));

	if (n <= 0)
		return 0;
	return write_all(to, buf, (size_t)n) == 0;
}

/* With the lock: what poll found on shell g. */
static void
relay_pump(struct gshell *g, const struct pollfd *pg, const struct pollfd *ph)
{
	if (g->hfd < 0)
		return;
	/* The host hung up, or its bytes cannot go on: the shell lives on
	 * (and its bytes wait for the next connection). */
	if ((ph->revents && !relay_copy(g->hfd, g->gfd)) ||
	    (pg->revents && !relay_copy(g->gfd, g->hfd))) {
		close(g->hfd);
		g->hfd = -1;
	}
}

static void *
relay_main(void *arg)
{
	struct relay *r = arg;
	int i;

	pthread_mutex_lock(&r->lock);
	while (!r->stop) {
		struct pollfd p[2 + 2 * RELAY_MAX] = {
			{ .fd = r->lfd, .events = POLLIN },
			{ .fd = r->wake_fd, .events = POLLIN },
		};

		for (i = 0; i < r->n; i++) {
			struct gshell *g = &r->sh[i];

			/* The guest's bytes wait while nobody is connected. */
			p[2 + 2 * i].fd = g->hfd >= 0 ? g->gfd : -1;
			p[2 + 2 * i].events = POLLIN;
			p[3 + 2 * i].fd = g->hfd;
			p[3 + 2 * i].events = POLLIN;
		}
		pthread_mutex_unlock(&r->lock);
		poll(p, (nfds_t)(2 + 2 * r->n), -1);
		pthread_mutex_lock(&r->lock);
		if (p[1].revents) {
			uint64_t v;

			assert_int_equal(read(r->wake_fd, &v, sizeof(v)),
					 sizeof(v));
		}
		if (r->reset) {
			relay_do_reset(r);
			continue;
		}
		if (p[0].revents)
			relay_accept(r);
		for (i = 0; i < r->n; i++)
			relay_pump(&r->sh[i], &p[2 + 2 * i], &p[3 + 2 * i]);
	}
	pthread_mutex_unlock(&r->lock);
	return NULL;
}

static void
relay_poke(struct relay *r)
{
	uint64_t one = 1;

	assert_int_equal(write(r->wake_fd, &one, sizeof(one)), sizeof(one));
}

static void
relay_start(struct relay *r, int n)
{
	struct aerr err = { "" };
	int i;

	memset(r, 0, sizeof(*r));
	strcpy(r->dir, "/tmp/attestfs-relay.XXXXXX");
	assert_non_null(mkdtemp(r->dir));
	snprintf(r->path, sizeof(r->path), "%s/v.sock", r->dir);
	r->lfd = sock_listen_unix(r->path, &err);
	assert_true(r->lfd >= 0);
	r->wake_fd = eventfd(0, EFD_CLOEXEC);
	pthread_mutex_init(&r->lock, NULL);
	r->n = n;
	for (i = 0; i < n; i++)
		relay_spawn(&r->sh[i], 0);
	assert_int_equal(pthread_create(&r->thread, NULL, relay_main, r), 0);
}

static void
relay_reset(struct relay *r, enum relay_reset how)
{
	pthread_mutex_lock(&r->lock);
	r->reset = 1;
	r->how = how;
	pthread_mutex_unlock(&r->lock);
	relay_poke(r);
}

static void
relay_stop(struct relay *r)
{
	int i;

	pthread_mutex_lock(&r->lock);
	r->stop = 1;
	pthread_mutex_unlock(&r->lock);
	relay_poke(r);
	pthread_join(r->thread, NULL);
	for (i = 0; i < r->n; i++)
		relay_kill(&r->sh[i]);
	close(r->lfd);
	close(r->wake_fd);
	unlink(r->path);
	rmdir(r->dir);
}

/* The end-to-end tests' dialer and relay, stopped also when a test fails
 * (before its machines go: the dialer calls into them). */
static struct vsock_dialer *e2e_dialer;
static struct relay e2e_relay;

static void
e2e_cleanup(void)
{
	vsock_dialer_stop(e2e_dialer);
	e2e_dialer = NULL;
	if (e2e_relay.n)
		relay_stop(&e2e_relay);
	e2e_relay.n = 0;
}

static int
e2e_teardown(void **state)
{
	e2e_cleanup();
	return fixture_teardown(state);
}

/* The machine's channel callback, as lifecycle.c's, counting. */
static int channels_handed;

static void
e2e_channel(void *owner, size_t index, int fd)
{
	struct machine *m = owner;

	machine_lock(m);
	channels_handed++;
	shellpool_adopt(m, index, fd);
	pthread_cond_broadcast(&m->cond);
	machine_unlock(m);
}

static const struct backend_events e2e_events = {
	.channel = e2e_channel,
};

/* Shell 0 is ready on the n-th connection handed over. */
static void
wait_ready_on(struct machine *m, int n)
{
	struct shell_slot *s = &m->shells[0];
	struct timespec ts;

	mono_deadline(&ts, HARNESS_CALL_SECS * 1000);
	machine_lock(m);
	while (channels_handed < n || s->pending_fd >= 0 || !s->ready ||
	       !s->adopted)
		wait_change(m, &ts);
	machine_unlock(m);
}

static pid_t
shell_pid(struct machine *m)
{
	struct strbuf out;
	pid_t pid;

	sb_init(&out);
	assert_int_equal(run(m, "echo $$", &out), 0);
	pid = (pid_t)atoi(out.data);
	sb_free(&out);
	return pid;
}

/* Through the dialer, commands run in the relay's shell; after each
 * reset the shell is ready again before it runs the next: the same one
 * (SYNC), a new one that greets, a new one whose banner nobody read. */
static void
test_dialer_machine_resync_after_resets(void **state)
{
	struct fixture *f = *state;
	struct aerr err = { "" };
	pid_t first, again;
	char *log;
	size_t len;

	assert_int_equal(run(f->m, "true", NULL), 0);
	relay_start(&e2e_relay, 1);
	channels_handed = 0;
	assert_int_equal(vsock_dialer_start(e2e_relay.path,
					    ATTESTFS_VSOCK_PORT, 1, &e2e_events,
					    f->m, &e2e_dialer, &err), 0);
	wait_ready_on(f->m, 1);
	first = shell_pid(f->m);
	assert_int_equal(first, e2e_relay.sh[0].pid);

	relay_reset(&e2e_relay, RESET_LIVING);
	wait_ready_on(f->m, 2);
	assert_int_equal(shell_pid(f->m), first);

	relay_reset(&e2e_relay, RESET_NEW);
	wait_ready_on(f->m, 3);
	again = shell_pid(f->m);
	assert_int_not_equal(again, first);
	assert_int_equal(again, e2e_relay.sh[0].pid);

	relay_reset(&e2e_relay, RESET_NEW_SILENT);
	wait_ready_on(f->m, 4);
	assert_int_equal(shell_pid(f->m), e2e_relay.sh[0].pid);
	assert_int_not_equal(e2e_relay.sh[0].pid, again);

	e2e_cleanup();
	log = machine_render(f->m, MACHINE_VIEW_LOG, &len);
	assert_null(strstr(log, "restarted while running"));
	free(log);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(
			test_mock_vsock_boots_on_handed_over_channels, setup,
			teardown),
		cmocka_unit_test_setup_teardown(
			test_living_shell_answers_the_probe, setup, teardown),
		cmocka_unit_test_setup_teardown(
			test_new_shell_without_banner_gets_the_prelude, setup,
			teardown),
		cmocka_unit_test_setup_teardown(
			test_new_shell_with_banner_gets_one_prelude, setup,
			teardown),
		cmocka_unit_test_setup_teardown(
			test_clone_resume_script_lost_with_the_first_shell,
			setup, teardown),
		cmocka_unit_test_setup_teardown(
			test_clone_resume_script_once, setup, teardown),
		cmocka_unit_test_setup_teardown(
			test_dialer_machine_resync_after_resets, setup,
			e2e_teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
