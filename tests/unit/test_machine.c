/*
 * The machine state machine and the shell protocol end to end on the mock
 * backend, whose "guest" is the host's own /bin/sh.
 */
#include <errno.h>
#include <semaphore.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <sys/stat.h>
#include <unistd.h>
#include <cmocka.h>

#include "machine/machine.h"

struct call {
	struct mreq r;
	sem_t sem;
};

static void
call_done(struct mreq *r)
{
	struct call *c = (struct call *)r;

	sem_post(&c->sem);
}

static void
call_init(struct call *c, size_t size)
{
	memset(c, 0, sizeof(*c));
	c->r.done = call_done;
	c->r.size = size;
	sem_init(&c->sem, 0, 0);
}

static int
call_wait(struct call *c)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	ts.tv_sec += 30;
	assert_int_equal(sem_timedwait(&c->sem, &ts), 0);
	sem_destroy(&c->sem);
	return c->r.result;
}

struct fixture {
	char dir[64];
	struct vmset *set;
	struct machine *m;
};

static int
setup(void **state)
{
	struct fixture *f = calloc(1, sizeof(*f));
	struct attest_config cfg;
	struct vmset_options opt = { 0 };
	struct aerr err = { "" };
	char *json;

	strcpy(f->dir, "/tmp/attestfs-unit.XXXXXX");
	assert_non_null(mkdtemp(f->dir));
	json = xasprintf("{\"machines\": {\"m\": {\"backend\": \"mock\"}, "
			 "\"other\": {\"backend\": \"mock\"}}}");
	assert_int_equal(config_parse(json, "/t/machines.json", "/t", &cfg,
				      &err), 0);
	free(json);
	opt.state_dir = f->dir;
	opt.timeout = 20;
	opt.mountpoint = "/vms";
	assert_int_equal(vmset_create(&opt, &cfg, &f->set, &err), 0);
	f->m = vmset_find(f->set, "m");
	assert_non_null(f->m);
	*state = f;
	return 0;
}

static int
teardown(void **state)
{
	struct fixture *f = *state;

	vmset_destroy(f->set);
	remove_tree(f->dir);
	free(f);
	return 0;
}

static int
ctl(struct machine *m, const char *msg)
{
	struct call c;
	struct timespec ts;

	call_init(&c, 0);
	machine_ctl(m, msg, strlen(msg), &c.r);
	clock_gettime(CLOCK_REALTIME, &ts);
	ts.tv_sec += 30;
	if (sem_timedwait(&c.sem, &ts) != 0) {
		size_t len;
		char *log = machine_render(m, MACHINE_VIEW_LOG, &len);

		fail_msg("ctl '%s' did not finish; log:\n%s", msg, log);
	}
	sem_destroy(&c.sem);
	return c.r.result;
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
	struct mtx *tx = machine_tx_open(m, MTX_EXEC);
	int ret;

	assert_int_equal(machine_tx_write(tx, cmd, strlen(cmd)),
			 (int)strlen(cmd));
	for (;;) {
		struct call c;

		call_init(&c, 4096);
		machine_tx_read(tx, &c.r);
		ret = call_wait(&c);
		if (ret < 0 || c.r.len == 0) {
			free(c.r.data);
			break;
		}
		sb_add(out, c.r.data, c.r.len);
		free(c.r.data);
	}
	machine_tx_close(tx);
	return ret;
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
	assert_true(now_mono_ms() - t0 < 1000);
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
	p = xasprintf("%s/canary", outside);
	assert_int_equal(stat(p, &st), 0);     /* never touched */
	free(p);
	free(sd);
	remove_tree(base);
	remove_tree(outside);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_start_exec_status, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_exec_starts_a_stopped_machine,
						setup, teardown),
		cmocka_unit_test_setup_teardown(test_bad_ctl_is_einval_with_reason,
						setup, teardown),
		cmocka_unit_test_setup_teardown(test_waits, setup, teardown),
		cmocka_unit_test_setup_teardown(test_interrupt_kills_the_command,
						setup, teardown),
		cmocka_unit_test_setup_teardown(test_timeout_fails_with_etimedout,
						setup, teardown),
		cmocka_unit_test_setup_teardown(
			test_crash_then_eio_and_other_machine_served, setup,
			teardown),
		cmocka_unit_test_setup_teardown(test_concurrent_commands_do_not_mix,
						setup, teardown),
		cmocka_unit_test_setup_teardown(test_start_all, setup, teardown),
		cmocka_unit_test_setup_teardown(test_halt_fails_parked_calls,
						setup, teardown),
		cmocka_unit_test(test_state_dir_must_be_private),
		cmocka_unit_test(test_ram_reaper_follows_no_link),
	};

	return cmocka_run_group_tests_name("machine", tests, NULL, NULL);
}
