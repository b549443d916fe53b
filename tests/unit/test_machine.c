/*
 * The machine state machine and the shell protocol end to end on the mock
 * backend, whose "guest" is the host's own /bin/sh.
 */
#include <pthread.h>
#include <sys/eventfd.h>
#include <sys/stat.h>
#include <unistd.h>

#include "machine/internal.h"
#include "tests/unit/harness.h"

static int
setup(void **state)
{
	return fixture_setup(state, "{\"machines\": {\"m\": {\"backend\": "
			     "\"mock\"}, \"other\": {\"backend\": \"mock\"}}}",
			     20, 0);
}

static char *
render(struct machine *m, enum machine_view v)
{
	size_t len;

	return machine_render(m, v, &len);
}

/* Run cmd through an exec transaction; *out gets all stdout. */
static int
run(struct machine *m, const char *cmd, struct strbuf *out)
{
	return tx_run(m, MTX_EXEC, cmd, out);
}

static int
wait_for(struct machine *m, const char *cond, struct strbuf *out)
{
	struct mtx *tx = machine_tx_open(m, MTX_WAIT);
	struct call c;
	int ret = machine_tx_write(tx, cond, strlen(cond));

	if (ret < 0) {
		machine_tx_close(tx);
		return ret;
	}
	call_init(&c, 4096);
	machine_tx_read(tx, &c.r);
	ret = call_wait(&c);
	if (out && c.r.len)
		sb_add(out, c.r.data, c.r.len);
	free(c.r.data);
	machine_tx_close(tx);
	return ret;
}

static void
test_start_exec_status(void **state)
{
	struct fixture *f = *state;
	struct strbuf out;
	char *s;

	s = render(f->m, MACHINE_VIEW_STATUS);
	assert_string_equal(s, "stopped\n");
	free(s);
	assert_int_equal(ctl(f->m, "start"), 0);
	s = render(f->m, MACHINE_VIEW_STATUS);
	assert_string_equal(s, "running\n");
	free(s);

	sb_init(&out);
	assert_int_equal(run(f->m, "printf 'a\\0b'; echo; echo err >&2", &out), 0);
	assert_int_equal(out.len, 4);
	assert_memory_equal(out.data, "a\0b\n", 4);
	sb_free(&out);

	sb_init(&out);
	assert_int_equal(run(f->m, "echo before; exit 3", &out), -EREMOTEIO);
	assert_string_equal(out.data, "before\n");
	sb_free(&out);
	s = render(f->m, MACHINE_VIEW_LOG);
	assert_non_null(strstr(s, "exit status 3"));
	assert_non_null(strstr(s, "exec stderr: err"));
	free(s);
}

static void
test_exec_starts_a_stopped_machine(void **state)
{
	struct fixture *f = *state;
	struct strbuf out;

	sb_init(&out);
	assert_int_equal(run(f->m, "echo auto", &out), 0);
	assert_string_equal(out.data, "auto\n");
	sb_free(&out);
}

static void
test_bad_ctl_is_einval_with_reason(void **state)
{
	struct fixture *f = *state;
	char *s;

	assert_int_equal(ctl(f->m, "frobnicate now"), -EINVAL);
	assert_int_equal(ctl(f->m, "timeout soon"), -EINVAL);
	assert_int_equal(ctl(f->m, "start\nhalt"), -EINVAL);
	s = render(f->m, MACHINE_VIEW_LOG);
	assert_non_null(strstr(s, "unknown command 'frobnicate'"));
	assert_non_null(strstr(s, "'soon' is not a positive number"));
	free(s);
	s = render(f->m, MACHINE_VIEW_STATUS);
	assert_string_equal(s, "stopped\n");
	free(s);
}

static void
test_waits(void **state)
{
	struct fixture *f = *state;
	struct strbuf out;

	/* A status wait never starts anything. */
	assert_int_equal(wait_for(f->m, "timeout=1 status running", NULL),
			 -ETIMEDOUT);
	assert_int_equal(wait_for(f->m, "sometime soon", NULL), -EINVAL);
	assert_int_equal(wait_for(f->m, "console [", NULL), -EINVAL);
	assert_int_equal(ctl(f->m, "start"), 0);
	sb_init(&out);
	assert_int_equal(wait_for(f->m, "status running", &out), 0);
	assert_string_equal(out.data, "status running\n");
	sb_free(&out);
	assert_int_equal(wait_for(f->m, "timeout=1 file /nonexistent/x", NULL),
			 -ETIMEDOUT);
	sb_init(&out);
	assert_int_equal(wait_for(f->m, "succeeds echo held", &out), 0);
	assert_string_equal(out.data, "held\n");
	sb_free(&out);
	assert_int_equal(wait_for(f->m, "fails false", NULL), 0);
	assert_int_equal(wait_for(f->m, "console booted m", NULL), 0);
}

/*
 * Found while writing tests/fuzz/fuzz_wait: "console ((a{255}){255}){255}" made
 * regcomp take 19 s and 3.4 GB with the machine's lock held, and
 * "(a{32767}){32767}" more than the host has: one write to wait could take
 * the whole mount down. Such expressions (and back-references, whose
 * matching is exponential) are refused at once.
 */
static void
test_huge_regex_wait_is_einval(void **state)
{
	struct fixture *f = *state;
	char *s;

	assert_int_equal(wait_for(f->m, "timeout=1 console (a{100}){100}{10}",
				  NULL), -EINVAL);
	assert_int_equal(wait_for(f->m, "timeout=1 screen (a*)*\\1", NULL),
			 -EINVAL);
	assert_int_equal(wait_for(f->m, "console ((a{255}){255}){255}", NULL),
			 -EINVAL);
	s = render(f->m, MACHINE_VIEW_LOG);
	assert_non_null(strstr(s, "too big"));
	free(s);
}

static int
job_ctl(struct machine *m, const char *msg)
{
	struct call c;

	call_init(&c, 0);
	machine_job_write(m, "j", JOB_CTL, msg, strlen(msg), &c.r);
	return call_wait(&c);
}

/* Found while writing tests/fuzz/fuzz_ctl: atoi() read "4294967297" as 1. */
static void
test_job_timeout_is_checked(void **state)
{
	struct fixture *f = *state;

	assert_int_equal(machine_job_create(f->m, "j"), 0);
	assert_int_equal(job_ctl(f->m, "timeout 30\n"), 11);
	assert_int_equal(job_ctl(f->m, "timeout 4294967297"), -EINVAL);
	assert_int_equal(job_ctl(f->m, "timeout 30s"), -EINVAL);
	assert_int_equal(job_ctl(f->m, "timeout 0"), -EINVAL);
	assert_int_equal(machine_job_remove(f->m, "j"), 0);
}

static void
test_interrupt_kills_the_command(void **state)
{
	struct fixture *f = *state;
	struct mtx *tx;
	struct call c;
	/* A sleep nobody else runs, so pgrep finds only ours. */
	const char *cmd = "touch /tmp/attestfs-unit-victim; exec sleep 31.4159";
	struct strbuf out;
	int64_t t0;

	assert_int_equal(ctl(f->m, "start"), 0);
	tx = machine_tx_open(f->m, MTX_EXEC);
	machine_tx_write(tx, cmd, strlen(cmd));
	call_init(&c, 4096);
	machine_tx_read(tx, &c.r);
	assert_int_equal(wait_for(f->m, "file /tmp/attestfs-unit-victim", NULL),
			 0);
	t0 = now_mono_ms();
	mreq_cancel(&c.r);
	assert_int_equal(call_wait(&c), -EINTR);
	/* Not after the command (31 s) nor its deadline (20 s); a loaded
	 * host may take seconds to schedule the answer. */
	assert_true(now_mono_ms() - t0 < 10000);
	machine_tx_close(tx);
	/* The guest process is gone. */
	sb_init(&out);
	assert_int_equal(wait_for(f->m, "timeout=10 fails pgrep -f 'sleep 31.4159'",
				  NULL), 0);
	sb_free(&out);
	unlink("/tmp/attestfs-unit-victim");
}

static void
test_timeout_fails_with_etimedout(void **state)
{
	struct fixture *f = *state;
	struct strbuf out;

	assert_int_equal(ctl(f->m, "timeout 1"), 0);
	sb_init(&out);
	assert_int_equal(run(f->m, "sleep 20", &out), -ETIMEDOUT);
	sb_free(&out);
	assert_int_equal(ctl(f->m, "timeout 20"), 0);
	sb_init(&out);
	assert_int_equal(run(f->m, "echo next", &out), 0);
	assert_string_equal(out.data, "next\n");
	sb_free(&out);
}

/* Every shell ready (each SYNC wakes the supervisor) and the supervisor
 * asleep with nothing due for over 30 s. */
static int
supervisor_idle(struct machine *m)
{
	size_t i;

	for (i = 0; i < m->n_shells; i++)
		if (!m->shells[i].ready)
			return 0;
	return m->sup_wake_ms >= now_mono_ms() + 30000;
}

static void
supervisor_asleep(struct machine *m)
{
	int i;

	machine_lock(m);
	for (i = 0; i < 10000 && !supervisor_idle(m); i++) {
		machine_unlock(m);
		usleep(1000);
		machine_lock(m);
	}
	assert_true(supervisor_idle(m));
	machine_unlock(m);
}

/* A command's deadline before the sleeping supervisor's next wake-up (up to
 * a minute away) still holds: submitting it wakes the supervisor. */
static void
test_deadline_wakes_the_supervisor(void **state)
{
	struct fixture *f = *state;

	assert_int_equal(ctl(f->m, "start"), 0);
	/* the mock's console line would wake it */
	assert_int_equal(wait_for(f->m, "console mock: booted", NULL), 0);
	assert_int_equal(ctl(f->m, "timeout 1"), 0);
	supervisor_asleep(f->m);
	assert_int_equal(run(f->m, "sleep 20", NULL), -ETIMEDOUT);
}

/* An exec's output and end are answered by the shell's worker: the
 * sleeping supervisor is not woken for them (a context switch per command
 * and per read, which the guest's vCPU pays for on a busy host). */
static void
test_exec_wakes_no_supervisor(void **state)
{
	struct fixture *f = *state;
	unsigned long long before, after;
	struct strbuf out;
	int i;

	assert_int_equal(ctl(f->m, "start"), 0);
	assert_int_equal(wait_for(f->m, "console mock: booted", NULL), 0);
	/* Deadlines past its longest sleep (a minute), as the default's are:
	 * an earlier one wakes it, rightly. */
	assert_int_equal(ctl(f->m, "timeout 100"), 0);
	supervisor_asleep(f->m);
	machine_lock(f->m);
	before = f->m->sup_wakes;
	machine_unlock(f->m);
	sb_init(&out);
	for (i = 0; i < 10; i++)
		assert_int_equal(run(f->m, "echo quiet", &out), 0);
	machine_lock(f->m);
	after = f->m->sup_wakes;
	machine_unlock(f->m);
	assert_int_equal(out.len, 10 * 6);
	sb_free(&out);
	/* Woken for them it was twice per command (the read's answer, the
	 * end); a stray wake-up (a console line, a spurious return) may come
	 * on a loaded host. */
	if (after - before > 2)
		fail_msg("the supervisor woke %llu times for 10 execs",
			 after - before);
}

/* Every shell answered its prelude and runs nothing. */
static void
shells_idle(struct machine *m)
{
	int64_t end = now_mono_ms() + 10000;
	size_t i;

	machine_lock(m);
	for (;;) {
		for (i = 0; i < m->n_shells; i++)
			if (!m->shells[i].ready || m->shells[i].cur)
				break;
		if (i == m->n_shells || now_mono_ms() > end)
			break;
		machine_unlock(m);
		usleep(1000);
		machine_lock(m);
	}
	machine_unlock(m);
	assert_int_equal(i, m->n_shells);
}

/*
 * A command submitted while a shell idles goes out on that shell's socket
 * from the submitting thread, and no shell's worker is woken for it (a
 * hand-off and a context switch per command, ac72172). The test holds the
 * machine lock across the submit, so no worker can have sent it; each
 * slot's wake_fd is swapped for a fresh eventfd no worker polls, so a
 * wake-up stays counted there.
 */
static void
test_submit_sends_to_an_idle_shell(void **state)
{
	struct fixture *f = *state;
	struct machine *m = f->m;
	int old_fd[8], woken = 0, shell;
	enum cmd_state st;
	size_t i, unsent;
	struct cmd *c;

	assert_int_equal(ctl(m, "start"), 0);
	shells_idle(m);
	assert_true(m->n_shells > 1 && m->n_shells <= 8);
	machine_lock(m);
	for (i = 0; i < m->n_shells; i++) {
		old_fd[i] = m->shells[i].wake_fd;
		m->shells[i].wake_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	}
	c = cmd_new(m, "echo direct", 11, 0);
	cmd_submit(c);
	st = c->state;
	shell = c->shell;
	unsent = shell >= 0 ? m->shells[shell].outq.len : 1;
	for (i = 0; i < m->n_shells; i++) {
		uint64_t v = 0;

		woken += read(m->shells[i].wake_fd, &v, sizeof(v)) > 0 && v;
		close(m->shells[i].wake_fd);
		m->shells[i].wake_fd = old_fd[i];
	}
	/* Without the direct send it is still queued: let a worker take it. */
	shellpool_kick(m);
	while (c->state != CMD_DONE)
		pthread_cond_wait(&m->cond, &m->lock);
	machine_unlock(m);
	assert_int_equal(st, CMD_RUNNING);
	assert_true(shell >= 0);
	assert_int_equal(unsent, 0);
	assert_int_equal(woken, 0);
	assert_int_equal(c->err, 0);
	assert_int_equal(c->status, 0);
	assert_string_equal(c->out.data, "direct\n");
	cmd_put(c);
}

static void
test_crash_then_eio_and_other_machine_served(void **state)
{
	struct fixture *f = *state;
	struct machine *other = vmset_find(f->set, "other");
	struct strbuf out;
	char *s;

	assert_int_equal(ctl(f->m, "start"), 0);
	assert_int_equal(ctl(other, "start"), 0);
	assert_int_equal(ctl(f->m, "crash"), 0);
	s = render(f->m, MACHINE_VIEW_STATUS);
	assert_string_equal(s, "crashed\n");
	free(s);
	sb_init(&out);
	assert_int_equal(run(f->m, "echo hi", &out), -EIO);
	assert_int_equal(run(other, "echo alive", &out), 0);
	assert_string_equal(out.data, "alive\n");
	sb_free(&out);
	assert_int_equal(ctl(f->m, "halt"), 0);
	assert_int_equal(ctl(f->m, "start"), 0);
	assert_int_equal(ctl(f->m, "halt"), 0);
	s = render(f->m, MACHINE_VIEW_STATUS);
	assert_string_equal(s, "stopped\n");
	free(s);
}

static void
test_concurrent_commands_do_not_mix(void **state)
{
	struct fixture *f = *state;
	struct mtx *tx[12];
	struct call c[12];
	int i;

	assert_int_equal(ctl(f->m, "start"), 0);
	for (i = 0; i < 12; i++) {
		char cmd[64];

		snprintf(cmd, sizeof(cmd), "sleep 0.%d; echo id-%d", i % 3, i);
		tx[i] = machine_tx_open(f->m, MTX_EXEC);
		machine_tx_write(tx[i], cmd, strlen(cmd));
		call_init(&c[i], 4096);
		machine_tx_read(tx[i], &c[i].r);
	}
	for (i = 0; i < 12; i++) {
		char want[32];

		snprintf(want, sizeof(want), "id-%d\n", i);
		assert_int_equal(call_wait(&c[i]), 0);
		assert_int_equal(c[i].r.len, strlen(want));
		assert_memory_equal(c[i].r.data, want, strlen(want));
		free(c[i].r.data);
		machine_tx_close(tx[i]);
	}
}

static void
test_start_all(void **state)
{
	struct fixture *f = *state;
	struct call c;
	char *s;

	call_init(&c, 0);
	vmset_ctl(f->set, "start-all\n", 10, &c.r);
	assert_int_equal(call_wait(&c), 0);
	s = render(vmset_find(f->set, "other"), MACHINE_VIEW_STATUS);
	assert_string_equal(s, "running\n");
	free(s);
	call_init(&c, 0);
	vmset_ctl(f->set, "start-some", 10, &c.r);
	assert_int_equal(call_wait(&c), -EINVAL);
	call_init(&c, 0);
	vmset_ctl(f->set, "halt-all", 8, &c.r);
	assert_int_equal(call_wait(&c), 0);
	s = vmset_render_events(f->set, &(size_t){ 0 });
	assert_non_null(strstr(s, " m running"));
	assert_non_null(strstr(s, " other stopped"));
	free(s);
}

/* An exec that holds a command shell until the gate file exists. */
static struct mtx *
hold_shell(struct machine *m, const char *gate, struct call *c)
{
	struct mtx *tx = machine_tx_open(m, MTX_EXEC);
	char *cmd = xasprintf("while [ ! -e %s ]; do sleep 0.01; done", gate);

	assert_int_equal(machine_tx_write(tx, cmd, strlen(cmd)),
			 (int)strlen(cmd));
	free(cmd);
	call_init(c, 4096);
	machine_tx_read(tx, &c->r);
	return tx;
}

static int
job_write(struct machine *m, const char *job, enum job_file f,
	  const char *msg)
{
	struct call c;

	call_init(&c, 0);
	machine_job_write(m, job, f, msg, strlen(msg), &c.r);
	return call_wait(&c);
}

/*
 * rmdir of a job while its cmd is still starting: the start must not touch
 * the removed job (it did: a use-after-free), the write ends with ENOENT,
 * and what it started in the guest is killed and cleaned up. The command
 * shells are held busy so that the start is still queued at the rmdir.
 */
static void
test_job_removed_while_starting(void **state)
{
	struct fixture *f = *state;
	struct mtx *hold[3];
	struct call hc[3], c, ic;
	char gate[128], race[32], intr[32], after[32], *cmd, *cond, *s;
	int i;

	/* The mock's guest is this host: names of our own, per process. */
	snprintf(race, sizeof(race), "race%d", (int)getpid());
	snprintf(intr, sizeof(intr), "intr%d", (int)getpid());
	snprintf(after, sizeof(after), "after%d", (int)getpid());
	assert_int_equal(ctl(f->m, "start"), 0);
	snprintf(gate, sizeof(gate), "%s/gate", f->dir);
	for (i = 0; i < 3; i++)
		hold[i] = hold_shell(f->m, gate, &hc[i]);
	assert_int_equal(machine_job_create(f->m, race), 0);
	cmd = xasprintf("exec sleep 27.%d\n", (int)getpid());
	call_init(&c, 0);
	machine_job_write(f->m, race, JOB_CMD, cmd, strlen(cmd), &c.r);
	assert_int_equal(machine_job_remove(f->m, race), 0);
	assert_false(machine_job_exists(f->m, race));
	assert_int_equal(machine_job_remove(f->m, race), -ENOENT);
	/* The name is free again at once. */
	assert_int_equal(machine_job_create(f->m, race), 0);
	assert_int_equal(machine_job_remove(f->m, race), 0);
	/* An interrupted start ends the job: its exit says so at once. */
	assert_int_equal(machine_job_create(f->m, intr), 0);
	call_init(&ic, 0);
	machine_job_write(f->m, intr, JOB_CMD, "exec sleep 27.1829", 18,
			  &ic.r);
	mreq_cancel(&ic.r);
	assert_int_equal(call_wait(&ic), -EINTR);
	call_init(&ic, 64);
	machine_job_read(f->m, intr, JOB_EXIT, 0, &ic.r);
	assert_int_equal(call_wait(&ic), 0);
	assert_memory_equal(ic.r.data, "255\n", 4);
	free(ic.r.data);
	assert_int_equal(machine_job_remove(f->m, intr), 0);

	write_file_atomic(gate, "", 0);
	assert_int_equal(call_wait(&c), -ENOENT);
	for (i = 0; i < 3; i++) {
		assert_int_equal(call_wait(&hc[i]), 0);
		free(hc[i].r.data);
		machine_tx_close(hold[i]);
	}
	cond = xasprintf("timeout=10 fails pgrep -f 'sleep 27[.]%d$' || "
			 "test -e /tmp/.attestfs.j/%s", (int)getpid(), race);
	assert_int_equal(wait_for(f->m, cond, NULL), 0);
	free(cond);
	free(cmd);
	s = render(f->m, MACHINE_VIEW_LOG);
	cmd = xasprintf("job %s: removed while it started", race);
	assert_non_null(strstr(s, cmd));
	free(cmd);
	free(s);
	/* The machine still serves jobs. */
	assert_int_equal(machine_job_create(f->m, after), 0);
	assert_int_equal(job_write(f->m, after, JOB_CMD, "echo ok"), 7);
	call_init(&c, 64);
	machine_job_read(f->m, after, JOB_EXIT, 0, &c.r);
	assert_int_equal(call_wait(&c), 0);
	assert_memory_equal(c.r.data, "0\n", 2);
	free(c.r.data);
	assert_int_equal(machine_job_remove(f->m, after), 0);
	cond = xasprintf("timeout=10 fails test -e /tmp/.attestfs.j/%s", after);
	assert_int_equal(wait_for(f->m, cond, NULL), 0);
	free(cond);
}

/*
 * rmdir of a running job with a reader parked on each of its files, a
 * stdin write and a poll in flight: every parked caller is answered, none
 * after the job is gone, and the paths into the job answer ENOENT.
 */
static void
test_job_removed_with_everything_parked(void **state)
{
	struct fixture *f = *state;
	struct call rd[3], in;
	enum job_file files[3] = { JOB_STDOUT, JOB_STDERR, JOB_EXIT };
	char busy[32], *cmd;
	int i;

	snprintf(busy, sizeof(busy), "busy%d", (int)getpid());
	cmd = xasprintf("exec sleep 31.%d", (int)getpid());
	assert_int_equal(ctl(f->m, "start"), 0);
	assert_int_equal(machine_job_create(f->m, busy), 0);
	assert_int_equal(job_write(f->m, busy, JOB_CMD, cmd), (int)strlen(cmd));
	for (i = 0; i < 3; i++) {
		call_init(&rd[i], 4096);
		machine_job_read(f->m, busy, files[i], 0, &rd[i].r);
	}
	call_init(&in, 0);
	machine_job_write(f->m, busy, JOB_STDIN, "x", 1, &in.r);
	assert_int_equal(machine_job_remove(f->m, busy), 0);
	for (i = 0; i < 3; i++) {
		assert_int_equal(call_wait(&rd[i]), -ENOENT);
		free(rd[i].r.data);
	}
	call_wait(&in);
	assert_int_equal(job_write(f->m, busy, JOB_CTL, "kill"), -ENOENT);
	assert_int_equal(job_write(f->m, busy, JOB_STDIN, "y"), -ENOENT);
	call_init(&rd[0], 64);
	machine_job_read(f->m, busy, JOB_EXIT, 0, &rd[0].r);
	assert_int_equal(call_wait(&rd[0]), -ENOENT);
	machine_job_stdin_close(f->m, busy);
	free(cmd);
	cmd = xasprintf("timeout=10 fails pgrep -f 'sleep 31[.]%d$' || "
			"test -e /tmp/.attestfs.j/%s", (int)getpid(), busy);
	assert_int_equal(wait_for(f->m, cmd, NULL), 0);
	free(cmd);
}

static int
tx_read_once(struct mtx *tx)
{
	struct call c;

	call_init(&c, 4096);
	machine_tx_read(tx, &c.r);
	call_wait(&c);
	free(c.r.data);
	return c.r.result;
}

/*
 * A transaction that a write failed on runs nothing: not the 1 MiB that was
 * taken before the write over the limit, not a text with a NUL byte (the
 * shell would drop it and run the rest). Reads fail with the write's errno.
 */
static void
test_tx_failed_write_runs_nothing(void **state)
{
	struct fixture *f = *state;
	char big_file[128], nul_file[128], *cmd, *s;
	size_t n = (1u << 20) - 100;
	struct strbuf out;
	struct mtx *tx;

	assert_int_equal(ctl(f->m, "start"), 0);
	snprintf(big_file, sizeof(big_file), "%s/big-ran", f->dir);
	snprintf(nul_file, sizeof(nul_file), "%s/nul-ran", f->dir);

	tx = machine_tx_open(f->m, MTX_EXEC);
	cmd = xmalloc(n);
	memset(cmd, ' ', n);
	memcpy(cmd, "touch ", 6);
	memcpy(cmd + 6, big_file, strlen(big_file));
	memcpy(cmd + 6 + strlen(big_file), "; #", 3);
	assert_int_equal(machine_tx_write(tx, cmd, n), (int)n);
	assert_int_equal(machine_tx_write(tx, cmd, 200), -EFBIG);
	assert_int_equal(machine_tx_write(tx, "true", 4), -EFBIG);
	assert_int_equal(tx_read_once(tx), -EFBIG);
	assert_int_equal(tx_read_once(tx), -EFBIG);
	machine_tx_close(tx);
	free(cmd);

	tx = machine_tx_open(f->m, MTX_EXEC);
	cmd = xasprintf("true; touch %s", nul_file);
	cmd[4] = '\0';
	assert_int_equal(machine_tx_write(tx, cmd, strlen(cmd + 5) + 5),
			 -EINVAL);
	assert_int_equal(tx_read_once(tx), -EINVAL);
	machine_tx_close(tx);
	free(cmd);

	tx = machine_tx_open(f->m, MTX_WAIT);
	assert_int_equal(machine_tx_write(tx, "sometime", 8), -EINVAL);
	assert_int_equal(machine_tx_write(tx, "status stopped", 14), -EINVAL);
	assert_int_equal(tx_read_once(tx), -EINVAL);
	machine_tx_close(tx);

	sb_init(&out);
	cmd = xasprintf("test ! -e %s && test ! -e %s", big_file, nul_file);
	assert_int_equal(run(f->m, cmd, &out), 0);
	free(cmd);
	sb_free(&out);
	s = render(f->m, MACHINE_VIEW_LOG);
	assert_non_null(strstr(s, "more than 1 MiB written"));
	assert_non_null(strstr(s, "a NUL byte at byte 4"));
	assert_non_null(strstr(s, "not run, a write to it failed"));
	free(s);
}

/* Issue 9.4: halt ends every parked wait and command at once, with
 * EHOSTDOWN, and none of them boots the machine again. */
static void
test_halt_fails_parked_calls(void **state)
{
	struct fixture *f = *state;
	struct mtx *wait_tx, *exec_tx;
	struct call w, e;
	const char *cond = "file /nonexistent/attestfs-never";
	const char *cmd = "exec sleep 27.1828";
	char *s;

	assert_int_equal(ctl(f->m, "start"), 0);
	wait_tx = machine_tx_open(f->m, MTX_WAIT);
	machine_tx_write(wait_tx, cond, strlen(cond));
	call_init(&w, 4096);
	machine_tx_read(wait_tx, &w.r);
	exec_tx = machine_tx_open(f->m, MTX_EXEC);
	machine_tx_write(exec_tx, cmd, strlen(cmd));
	call_init(&e, 4096);
	machine_tx_read(exec_tx, &e.r);

	assert_int_equal(ctl(f->m, "halt"), 0);
	assert_int_equal(call_wait(&w), -EHOSTDOWN);
	assert_int_equal(call_wait(&e), -EHOSTDOWN);
	free(w.r.data);
	free(e.r.data);
	machine_tx_close(wait_tx);
	machine_tx_close(exec_tx);
	s = render(f->m, MACHINE_VIEW_STATUS);
	assert_string_equal(s, "stopped\n");
	free(s);
	/* Nothing parked is left to boot it. */
	assert_int_equal(wait_for(f->m, "timeout=1 status starting", NULL),
			 -ETIMEDOUT);
	/* A new wait on the guest is a new call: it boots the machine. */
	assert_int_equal(wait_for(f->m, "succeeds true", NULL), 0);
}

/* Issue 9.7: the sockets live in state_dir; nobody else may write there. */
static void
test_state_dir_must_be_private(void **state)
{
	char dir[] = "/tmp/attestfs-unit-sd.XXXXXX";
	struct vmset_options opt = { .timeout = 5, .mountpoint = "/vms" };
	struct attest_config cfg;
	struct aerr err = { "" };
	struct vmset *set = NULL;
	const char *json = "{\"machines\": {\"m\": {\"backend\": \"mock\"}}}";

	(void)state;
	assert_non_null(mkdtemp(dir));
	assert_int_equal(chmod(dir, 0777), 0);
	assert_int_equal(config_parse(json, "/t/machines.json", "/t", &cfg,
				      &err), 0);
	opt.state_dir = dir;
	opt.ram_dir = dir;
	assert_int_equal(vmset_create(&opt, &cfg, &set, &err), -EPERM);
	assert_non_null(strstr(err.msg, "writable by others"));
	vmset_destroy(set);
	set = NULL;
	if (geteuid() == 0) {
		assert_int_equal(chmod(dir, 0700), 0);
		assert_int_equal(chown(dir, 65534, 65534), 0);
		assert_int_equal(config_parse(json, "/t/machines.json", "/t",
					      &cfg, &err), 0);
		assert_int_equal(vmset_create(&opt, &cfg, &set, &err), -EPERM);
		assert_non_null(strstr(err.msg, "owned by uid 65534"));
		vmset_destroy(set);
	}
	remove_tree(dir);
}

static void
write_file(const char *path, const char *text)
{
	FILE *fp = fopen(path, "w");

	assert_non_null(fp);
	fputs(text, fp);
	fclose(fp);
}

/* Issue 9.7: the reaper of a killed daemon's RAM directories works in a
 * world-writable directory: planted links must not make it touch anything
 * outside. */
static void
test_ram_reaper_follows_no_link(void **state)
{
	char base[] = "/tmp/attestfs-unit-rd.XXXXXX";
	char outside[] = "/tmp/attestfs-unit-out.XXXXXX";
	struct vmset_options opt = { .timeout = 5, .mountpoint = "/vms" };
	struct attest_config cfg;
	struct aerr err = { "" };
	struct vmset *set = NULL;
	struct stat st;
	char *p, *sd;

	(void)state;
	assert_non_null(mkdtemp(base));
	assert_non_null(mkdtemp(outside));
	assert_int_equal(chmod(base, 01777), 0);
	p = xasprintf("%s/canary", outside);
	write_file(p, "keep me\n");
	free(p);
	/* A link posing as a RAM directory, to a directory outside. */
	p = xasprintf("%s/attestfs-ram.link", base);
	assert_int_equal(symlink(outside, p), 0);
	free(p);
	/* A stale RAM directory (nobody holds .owner) holding links out. */
	p = xasprintf("%s/attestfs-ram.stale", base);
	assert_int_equal(mkdir(p, 0700), 0);
	free(p);
	p = xasprintf("%s/attestfs-ram.stale/.owner", base);
	write_file(p, "");
	free(p);
	p = xasprintf("%s/attestfs-ram.stale/dir", base);
	assert_int_equal(symlink(outside, p), 0);
	free(p);
	p = xasprintf("%s/attestfs-ram.stale/file", base);
	sd = xasprintf("%s/canary", outside);
	assert_int_equal(symlink(sd, p), 0);
	free(sd);
	free(p);

	/* A stale-looking RAM directory of another user: not ours to remove
	 * (as root the old reaper would have). */
	if (geteuid() == 0) {
		p = xasprintf("%s/attestfs-ram.other", base);
		assert_int_equal(mkdir(p, 0700), 0);
		sd = xasprintf("%s/.owner", p);
		write_file(sd, "");
		assert_int_equal(chown(sd, 65534, 65534), 0);
		free(sd);
		assert_int_equal(chown(p, 65534, 65534), 0);
		free(p);
	}
	sd = xasprintf("%s/state", base);
	assert_int_equal(config_parse("{\"machines\": {\"m\": {\"backend\": "
				      "\"mock\"}}}", "/t/machines.json", "/t",
				      &cfg, &err), 0);
	opt.state_dir = sd;
	opt.ram_dir = base;
	assert_int_equal(vmset_create(&opt, &cfg, &set, &err), 0);
	vmset_destroy(set);

	p = xasprintf("%s/attestfs-ram.stale", base);
	assert_int_equal(lstat(p, &st), -1);   /* reaped */
	free(p);
	p = xasprintf("%s/attestfs-ram.link", base);
	assert_int_equal(lstat(p, &st), 0);    /* not ours to judge */
	assert_true(S_ISLNK(st.st_mode));
	free(p);
	p = xasprintf("%s/attestfs-ram.other", base);
	assert_int_equal(lstat(p, &st) == 0, geteuid() == 0);
	free(p);
	p = xasprintf("%s/canary", outside);
	assert_int_equal(stat(p, &st), 0);     /* never touched */
	free(p);
	free(sd);
	remove_tree(base);
	remove_tree(outside);
}

/* ---- the supervisor's queue, behind a backend that can be held ---------- */

/*
 * The mock backend with a gate: while the gate is closed, pause, save and
 * command (qmp) wait in it, as a stuck QMP would. Every call is logged.
 * no_shells: the next launches start a VMM whose guest never answers.
 * slow_launch: launch returns only once the guest answered, and waits in
 * the gate then, as a launch on a loaded host may.
 */
static struct {
	pthread_mutex_t lock;
	pthread_cond_t cond;
	int closed;
	int waiting;
	int no_shells;
	int slow_launch;
	struct strbuf calls;
} gate = { PTHREAD_MUTEX_INITIALIZER, PTHREAD_COND_INITIALIZER, 0, 0, 0, 0,
	   { NULL, 0, 0 } };

static void
gate_pass(const char *call, int held)
{
	pthread_mutex_lock(&gate.lock);
	sb_addf(&gate.calls, "%s ", call);
	gate.waiting += held;
	pthread_cond_broadcast(&gate.cond);
	while (held && gate.closed)
		pthread_cond_wait(&gate.cond, &gate.lock);
	gate.waiting -= held;
	pthread_mutex_unlock(&gate.lock);
}

static void
gate_set(int closed)
{
	pthread_mutex_lock(&gate.lock);
	gate.closed = closed;
	pthread_cond_broadcast(&gate.cond);
	pthread_mutex_unlock(&gate.lock);
}

/* Until n backend calls wait in the gate (at most 30 s). */
static void
gate_wait_for(int n)
{
	struct timespec ts;
	int ret = 0;

	clock_gettime(CLOCK_REALTIME, &ts);
	ts.tv_sec += 30;
	pthread_mutex_lock(&gate.lock);
	while (gate.waiting < n && ret == 0)
		ret = pthread_cond_timedwait(&gate.cond, &gate.lock, &ts);
	pthread_mutex_unlock(&gate.lock);
	assert_int_equal(ret, 0);
}

static int
gate_flag(int *flag)
{
	int v;

	pthread_mutex_lock(&gate.lock);
	v = *flag;
	pthread_mutex_unlock(&gate.lock);
	return v;
}

/* Until m's control shell answered (at most 30 s). */
static void
shell_answered(struct machine *m)
{
	struct timespec ts;

	mono_deadline(&ts, 30000);
	pthread_mutex_lock(&m->lock);
	while (!m->shells[0].ready &&
	       pthread_cond_timedwait(&m->cond, &m->lock, &ts) == 0)
		;
	pthread_mutex_unlock(&m->lock);
}

static int
gated_launch(const struct backend_launch *l, struct backend **out,
	     struct aerr *err)
{
	struct backend_launch mute;
	int ret;

	gate_pass("launch", 0);
	if (gate_flag(&gate.no_shells)) {
		mute = *l;
		mute.n_shells = 0;
		l = &mute;
	}
	ret = mock_backend_ops.launch(l, out, err);
	if (ret == 0 && gate_flag(&gate.slow_launch)) {
		shell_answered(l->owner);
		gate_pass("launched", 1);
	}
	return ret;
}

static int
gated_quit(struct backend *b)
{
	gate_pass("quit", 0);
	return mock_backend_ops.quit(b);
}

static int
gated_kill(struct backend *b)
{
	gate_pass("kill", 0);
	return mock_backend_ops.kill(b);
}

static int
gated_pause(struct backend *b)
{
	gate_pass("pause", 1);
	return mock_backend_ops.pause(b);
}

static int
gated_resume(struct backend *b)
{
	gate_pass("resume", 0);
	return mock_backend_ops.resume(b);
}

static int
gated_command(struct backend *b, const char *json, char **reply,
	      struct aerr *err)
{
	gate_pass("qmp", 1);
	*reply = xstrdup("{\"return\": {}}");
	return 0;
}

/* A snapshot of the mock: only its state file. */
static int
gated_save(struct backend *b, const char *dir, const char *ram_out,
	   int *ram_saved, struct aerr *err)
{
	char *state = xasprintf("%s/state", dir);
	int ret;

	gate_pass("save", 1);
	*ram_saved = 0;
	ret = write_file_atomic(state, "mock", 4);
	free(state);
	return ret;
}

static struct backend_ops gated_ops;

/* m's backend is the gated mock (before it starts). */
static void
use_gated(struct machine *m)
{
	gated_ops = mock_backend_ops;
	gated_ops.caps |= BACKEND_CAP_QMP | BACKEND_CAP_SNAPSHOT;
	gated_ops.launch = gated_launch;
	gated_ops.quit = gated_quit;
	gated_ops.kill = gated_kill;
	gated_ops.pause = gated_pause;
	gated_ops.resume = gated_resume;
	gated_ops.command = gated_command;
	gated_ops.save = gated_save;
	pthread_mutex_lock(&gate.lock);
	sb_free(&gate.calls);
	gate.no_shells = 0;
	gate.slow_launch = 0;
	pthread_mutex_unlock(&gate.lock);
	gate_set(0);
	m->ops = &gated_ops;
}

static char *
gate_calls(void)
{
	char *s;

	pthread_mutex_lock(&gate.lock);
	s = xstrdup(gate.calls.data ? gate.calls.data : "");
	pthread_mutex_unlock(&gate.lock);
	return s;
}

/* A ctl write from a thread of its own, as a FUSE worker makes it: with
 * the old code the backend call ran (and blocked) inside machine_ctl. */
struct async_ctl {
	struct call c;
	struct machine *m;
	const char *msg;
	pthread_t th;
};

static void *
async_ctl_main(void *arg)
{
	struct async_ctl *a = arg;

	machine_ctl(a->m, a->msg, strlen(a->msg), &a->c.r);
	return NULL;
}

static void
async_ctl(struct async_ctl *a, struct machine *m, const char *msg)
{
	call_init(&a->c, 0);
	a->m = m;
	a->msg = msg;
	assert_int_equal(pthread_create(&a->th, NULL, async_ctl_main, a), 0);
}

static int
async_ctl_wait(struct async_ctl *a)
{
	int ret = call_wait(&a->c);

	pthread_join(a->th, NULL);
	return ret;
}

struct async_render {
	struct machine *m;
	char *out;
	sem_t sem;
};

static void *
async_render_main(void *arg)
{
	struct async_render *a = arg;

	a->out = render(a->m, MACHINE_VIEW_STATUS);
	sem_post(&a->sem);
	return NULL;
}

/* status, read on a thread of its own; NULL when it did not answer in
 * 30 s (it waits behind the backend). */
static char *
status_within(struct machine *m)
{
	struct async_render a = { .m = m };
	struct timespec ts;
	pthread_t th;

	sem_init(&a.sem, 0, 0);
	assert_int_equal(pthread_create(&th, NULL, async_render_main, &a), 0);
	clock_gettime(CLOCK_REALTIME, &ts);
	ts.tv_sec += 30;
	if (sem_timedwait(&a.sem, &ts) != 0) {
		pthread_detach(th);
		return NULL;
	}
	pthread_join(th, NULL);
	sem_destroy(&a.sem);
	return a.out;
}

/* Issue 11: a pause stuck in the backend holds neither status nor the
 * ctl write that queues the next verb; the verbs then run in order. */
static void
test_status_does_not_wait_behind_the_backend(void **state)
{
	struct fixture *f = *state;
	struct async_ctl pause, resume;
	char *s, *calls;

	use_gated(f->m);
	assert_int_equal(ctl(f->m, "start"), 0);
	gate_set(1);
	async_ctl(&pause, f->m, "pause");
	gate_wait_for(1);
	async_ctl(&resume, f->m, "resume");
	s = status_within(f->m);
	assert_non_null(s);
	assert_string_equal(s, "running\n");
	free(s);
	gate_set(0);
	assert_int_equal(async_ctl_wait(&pause), 0);
	assert_int_equal(async_ctl_wait(&resume), 0);
	calls = gate_calls();
	assert_non_null(strstr(calls, "pause resume"));
	free(calls);
	s = render(f->m, MACHINE_VIEW_STATUS);
	assert_string_equal(s, "running\n");
	free(s);
}

/* Issue 11: an interrupted pause or qmp, queued or running, answers
 * EINTR at once; the machine's state is still the VMM's. */
static void
test_interrupted_pause_and_qmp(void **state)
{
	struct fixture *f = *state;
	const char *req = "{\"execute\": \"query-status\"}";
	struct async_ctl pause;
	struct mtx *queued, *running;
	struct call q, rq;
	struct strbuf out;
	char *s;

	use_gated(f->m);
	assert_int_equal(ctl(f->m, "start"), 0);
	gate_set(1);
	async_ctl(&pause, f->m, "pause");
	gate_wait_for(1);
	/* Queued behind the pause: dropped. */
	queued = machine_tx_open(f->m, MTX_QMP);
	assert_int_equal(machine_tx_write(queued, req, strlen(req)),
			 (int)strlen(req));
	call_init(&q, 4096);
	machine_tx_read(queued, &q.r);
	mreq_cancel(&q.r);
	assert_int_equal(call_wait(&q), -EINTR);
	machine_tx_close(queued);
	/* Running: its caller goes, the pause goes on. */
	mreq_cancel(&pause.c.r);
	assert_int_equal(async_ctl_wait(&pause), -EINTR);
	gate_set(0);
	assert_int_equal(ctl(f->m, "resume"), 0);
	/* A qmp stuck in the backend, its reader gone (ASan: nothing
	 * touches the closed transaction when the reply comes). */
	gate_set(1);
	running = machine_tx_open(f->m, MTX_QMP);
	machine_tx_write(running, req, strlen(req));
	call_init(&rq, 4096);
	machine_tx_read(running, &rq.r);
	gate_wait_for(1);
	mreq_cancel(&rq.r);
	assert_int_equal(call_wait(&rq), -EINTR);
	machine_tx_close(running);
	gate_set(0);
	s = gate_calls();
	assert_string_equal(s, "launch pause resume qmp ");
	free(s);
	s = render(f->m, MACHINE_VIEW_STATUS);
	assert_string_equal(s, "running\n");
	free(s);
	sb_init(&out);
	assert_int_equal(run(f->m, "echo still", &out), 0);
	assert_string_equal(out.data, "still\n");
	sb_free(&out);
}

/* Issue 11: snapshot, restore, halt, asked for while a snapshot is being
 * saved, run in that order (the pending flags ran the halt first, then
 * booted the machine again for the restore). */
static void
test_queue_keeps_order(void **state)
{
	struct fixture *f = *state;
	struct call snap, restore, halt;
	char *s;

	use_gated(f->m);
	assert_int_equal(ctl(f->m, "start"), 0);
	assert_int_equal(ctl(f->m, "snapshot s0"), 0);
	gate_set(1);
	call_init(&snap, 0);
	machine_ctl(f->m, "snapshot s1", 11, &snap.r);
	gate_wait_for(1);
	call_init(&restore, 0);
	machine_ctl(f->m, "restore s0", 10, &restore.r);
	call_init(&halt, 0);
	machine_ctl(f->m, "halt", 4, &halt.r);
	s = status_within(f->m);
	assert_string_equal(s, "stopping\n");
	free(s);
	/* A guest that answered before the supervisor took the halt would
	 * finish the restore's boot (a loaded host): this one never does. */
	pthread_mutex_lock(&gate.lock);
	gate.no_shells = 1;
	pthread_mutex_unlock(&gate.lock);
	gate_set(0);
	assert_int_equal(call_wait(&snap), 0);
	/* Its boot never finished: the halt came next. */
	assert_int_equal(call_wait(&restore), -EIO);
	assert_int_equal(call_wait(&halt), 0);
	s = gate_calls();
	assert_string_equal(s, "launch save save kill launch quit ");
	free(s);
	s = render(f->m, MACHINE_VIEW_STATUS);
	assert_string_equal(s, "stopped\n");
	free(s);
}

/*
 * A guest may answer before launch() has returned (a loaded host; a
 * restore, whose shells live on): the machine is running only once the
 * supervisor has its VMM, or a snapshot right after the start found none
 * (EHOSTDOWN; seen under load as a failure of test_queue_keeps_order).
 */
static void
test_running_only_once_launched(void **state)
{
	struct fixture *f = *state;
	struct async_ctl start;
	char *held;

	use_gated(f->m);
	pthread_mutex_lock(&gate.lock);
	gate.slow_launch = 1;
	pthread_mutex_unlock(&gate.lock);
	gate_set(1);
	async_ctl(&start, f->m, "start");
	gate_wait_for(1);
	held = status_within(f->m);
	gate_set(0);
	assert_int_equal(async_ctl_wait(&start), 0);
	assert_non_null(held);
	assert_string_equal(held, "starting\n");
	free(held);
	/* Running, with its VMM. */
	assert_int_equal(ctl(f->m, "snapshot s0"), 0);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_start_exec_status, setup,
						fixture_teardown),
		cmocka_unit_test_setup_teardown(test_exec_starts_a_stopped_machine,
						setup, fixture_teardown),
		cmocka_unit_test_setup_teardown(test_bad_ctl_is_einval_with_reason,
						setup, fixture_teardown),
		cmocka_unit_test_setup_teardown(test_waits, setup, fixture_teardown),
		cmocka_unit_test_setup_teardown(test_huge_regex_wait_is_einval,
						setup, fixture_teardown),
		cmocka_unit_test_setup_teardown(test_job_timeout_is_checked,
						setup, fixture_teardown),
		cmocka_unit_test_setup_teardown(test_interrupt_kills_the_command,
						setup, fixture_teardown),
		cmocka_unit_test_setup_teardown(test_timeout_fails_with_etimedout,
						setup, fixture_teardown),
		cmocka_unit_test_setup_teardown(test_deadline_wakes_the_supervisor,
						setup, fixture_teardown),
		cmocka_unit_test_setup_teardown(test_exec_wakes_no_supervisor,
						setup, fixture_teardown),
		cmocka_unit_test_setup_teardown(test_submit_sends_to_an_idle_shell,
						setup, fixture_teardown),
		cmocka_unit_test_setup_teardown(
			test_crash_then_eio_and_other_machine_served, setup,
			fixture_teardown),
		cmocka_unit_test_setup_teardown(test_concurrent_commands_do_not_mix,
						setup, fixture_teardown),
		cmocka_unit_test_setup_teardown(test_start_all, setup, fixture_teardown),
		cmocka_unit_test_setup_teardown(test_tx_failed_write_runs_nothing,
						setup, fixture_teardown),
		cmocka_unit_test_setup_teardown(test_job_removed_while_starting,
						setup, fixture_teardown),
		cmocka_unit_test_setup_teardown(
			test_job_removed_with_everything_parked, setup,
			fixture_teardown),
		cmocka_unit_test_setup_teardown(test_halt_fails_parked_calls,
						setup, fixture_teardown),
		cmocka_unit_test_setup_teardown(
			test_status_does_not_wait_behind_the_backend, setup,
			fixture_teardown),
		cmocka_unit_test_setup_teardown(test_interrupted_pause_and_qmp,
						setup, fixture_teardown),
		cmocka_unit_test_setup_teardown(test_queue_keeps_order, setup,
						fixture_teardown),
		cmocka_unit_test_setup_teardown(test_running_only_once_launched,
						setup, fixture_teardown),
		cmocka_unit_test(test_state_dir_must_be_private),
		cmocka_unit_test(test_ram_reaper_follows_no_link),
	};

	return cmocka_run_group_tests_name("machine", tests, NULL, NULL);
}
