/*
 * Every buffer a guest or a client can grow has a bound, and reaching it is
 * visible (DESIGN §3b): the log, events, a wait's output, console input.
 * On the mock backend, whose "guest" is the host's /bin/sh.
 */
#include <pthread.h>
#include <sys/stat.h>
#include <unistd.h>

#include "machine/internal.h"
#include "tests/unit/harness.h"

static int
setup(void **state)
{
	static const char json[] = "{\"machines\": {\"m\": {\"backend\": "
				   "\"mock\"}, \"h\": {\"backend\": \"mock\", "
				   "\"shell_channel\": \"virtconsole\", "
				   "\"shells\": 1}}}";

	return fixture_setup(state, json, 60, 256 << 10);
}

static void
start(struct machine *m)
{
	assert_int_equal(ctl(m, "start"), 0);
}

static off_t
file_size(const char *dir, const char *name)
{
	char *path = xasprintf("%s/%s", dir, name);
	struct stat st;
	off_t n = stat(path, &st) == 0 ? st.st_size : -1;

	free(path);
	return n;
}

/* 20 commands with 1 MB of stderr each: the log keeps a bounded tail, each
 * command's stderr is cut with a marker, and the file on disk rotates. */
static void
test_log_is_bounded(void **state)
{
	struct fixture *f = *state;
	size_t len;
	char *log;
	int i;

	for (i = 0; i < 20; i++)
		assert_int_equal(tx_run(f->m, MTX_EXEC, "yes 'an error line' | "
					"head -c 1000000 >&2", NULL), 0);
	log = machine_render(f->m, MACHINE_VIEW_LOG, &len);
	assert_true(len <= (256u << 10) + 200);
	assert_memory_equal(log, "[... ", 5);
	assert_non_null(strstr(log, "bytes dropped; older lines are in "));
	assert_non_null(strstr(log, "exec stderr: [... 934464 bytes dropped: "
				    "the log keeps the first 65536"));
	free(log);
	assert_true(file_size(f->dir, "m/log") <= 256 << 10);
	assert_true(file_size(f->dir, "m/log.1") > 0);
	assert_true(file_size(f->dir, "m/log.1") <= 256 << 10);
}

/* Events keep their newest lines in memory and rotate on disk. */
static void
test_events_are_bounded(void **state)
{
	struct fixture *f = *state;
	size_t len;
	char *ev;
	int i;

	for (i = 0; i < 20000; i++)
		vmset_event(f->set, "m", "flood", "a detail of some length");
	ev = vmset_render_events(f->set, &len);
	assert_true(len < (256u << 10) + 200);
	assert_memory_equal(ev, "[... ", 5);
	assert_non_null(strstr(ev, "bytes dropped; older ones are in "));
	assert_non_null(strstr(ev, " m flood a detail of some length\n"));
	free(ev);
	assert_true(file_size(f->dir, "events") <= 256 << 10);
	assert_true(file_size(f->dir, "events.1") <= 256 << 10);
}

/* `wait succeeds` returns its command's output: the first 64 KiB of it,
 * and a marker when there was more. */
static void
test_wait_output_is_capped(void **state)
{
	struct fixture *f = *state;
	struct strbuf out;
	size_t len;
	int ret;

	sb_init(&out);
	start(f->m);
	ret = tx_run(f->m, MTX_WAIT, "timeout=30 succeeds yes | head -c 5000000",
		     &out);
	if (ret) {
		char *log = machine_render(f->m, MACHINE_VIEW_LOG, &len);

		fail_msg("wait: %d; log:\n%s", ret, log);
		free(log);
	}
	assert_true(out.len > (64u << 10));
	assert_true(out.len < (64u << 10) + 200);
	assert_non_null(strstr(out.data + (64u << 10), "[... 4934464 bytes "
						       "dropped: a wait returns"));
	sb_free(&out);
}

struct writer {
	struct machine *m;
	int result;
	sem_t done;
};

static void *
console_writer(void *arg)
{
	struct writer *w = arg;
	static char buf[65536];
	int i, ret = 0;

	memset(buf, 'k', sizeof(buf));
	/* The mock guest never reads its console: the socket fills up. */
	for (i = 0; i < 1000 && ret >= 0; i++)
		ret = machine_console_write(w->m, buf, sizeof(buf));
	w->result = ret;
	sem_post(&w->done);
	return NULL;
}

/* A guest that does not read its console input fails the write with
 * EAGAIN and a reason, instead of holding the writer for good. */
static void
test_console_write_does_not_block(void **state)
{
	struct fixture *f = *state;
	struct writer w = { .m = f->m };
	struct timespec ts;
	struct call c;
	pthread_t t;
	size_t len;
	char *log;

	start(f->m);
	sem_init(&w.done, 0, 0);
	pthread_create(&t, NULL, console_writer, &w);
	clock_gettime(CLOCK_REALTIME, &ts);
	ts.tv_sec += 60;
	if (sem_timedwait(&w.done, &ts) != 0) {
		/* Unblock it so the test can end: the machine goes. */
		call_init(&c, 0);
		machine_ctl(f->m, "halt", 4, &c.r);
		call_wait(&c);
		pthread_join(t, NULL);
		fail_msg("a console write still blocks after 60 s");
	}
	pthread_join(t, NULL);
	assert_int_equal(w.result, -EAGAIN);
	log = machine_render(f->m, MACHINE_VIEW_LOG, &len);
	assert_non_null(strstr(log, "console: the guest has not read its "
				    "console input"));
	free(log);
	sem_destroy(&w.done);
}

/*
 * The single-shell channel (here the mock's /bin/sh with hvc0's framing):
 * 16 MB of stdout come in chunks paced by a slow reader, whole and in
 * order, and the daemon holds about a chunk beyond what the reader took,
 * not the whole output (which it did before the pacing).
 */
static void
test_lossy_channel_is_paced_by_the_reader(void **state)
{
	struct fixture *f = *state;
	struct machine *h = vmset_find(f->set, "h");
	const char *cmd = "seq -f %07.0f 0 1999999";
	struct mtx *tx;
	struct cmd *running = NULL;
	long lines = 0;
	char carry[16], want[16];
	size_t have = 0, total = 0;
	int ret;

	start(h);
	tx = machine_tx_open(h, MTX_EXEC);
	machine_tx_write(tx, cmd, strlen(cmd));
	for (;;) {
		struct call c;
		size_t i;

		call_init(&c, 65536);
		machine_tx_read(tx, &c.r);
		if (!running) {
			/* The command, queued or on the shell: watch it. */
			machine_lock(h);
			running = h->queue ? h->queue : h->shells[0].cur;
			assert_non_null(running);
			running->refs++;
			machine_unlock(h);
		}
		ret = call_wait(&c);
		if (ret < 0 || c.r.len == 0) {
			free(c.r.data);
			break;
		}
		/* Check it line by line: nothing whole is kept here. */
		for (i = 0; i < c.r.len; i++) {
			carry[have++] = c.r.data[i];
			if (have < 8)
				continue;
			snprintf(want, sizeof(want), "%07ld\n", lines++);
			assert_memory_equal(carry, want, 8);
			have = 0;
		}
		total += c.r.len;
		free(c.r.data);
		if (total < (4u << 20))
			usleep(2000);  /* slow at first: the guest must wait */
	}
	machine_tx_close(tx);
	assert_int_equal(ret, 0);
	assert_int_equal(lines, 2000000);
	assert_int_equal(have, 0);
	machine_lock(h);
	assert_true(running->out_peak <= (2u << 20) + 65536);
	cmd_put(running);
	machine_unlock(h);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_log_is_bounded, setup,
						fixture_teardown),
		cmocka_unit_test_setup_teardown(test_events_are_bounded, setup,
						fixture_teardown),
		cmocka_unit_test_setup_teardown(test_wait_output_is_capped,
						setup, fixture_teardown),
		cmocka_unit_test_setup_teardown(test_console_write_does_not_block,
						setup, fixture_teardown),
		cmocka_unit_test_setup_teardown(
			test_lossy_channel_is_paced_by_the_reader, setup,
			fixture_teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
