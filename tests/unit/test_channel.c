/*
 * Connections a backend hands over (backend_events.channel, as the vsock
 * dialer does): the mock's "mock.vsock" mode boots on them, and a
 * connection handed over to a running machine, with the test playing the
 * guest behind it, is resynchronised whether the shell there lives on
 * (SYNC), is new and greets (banner), or is new and its banner went to
 * nobody (BARE).
 */
#include <poll.h>
#include <pthread.h>
#include <sys/socket.h>
#include <unistd.h>

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

static void
wait_ready(struct machine *m, size_t i)
{
	struct timespec ts;

	mono_deadline(&ts, HARNESS_CALL_SECS * 1000);
	machine_lock(m);
	while (!m->shells[i].ready)
		assert_int_equal(pthread_cond_timedwait(&m->cond, &m->lock,
							&ts), 0);
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
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
