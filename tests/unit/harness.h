/*
 * What the unit tests and tests/bench/client.c share to drive machine/
 * without FUSE: a request whose done() posts a semaphore. With cmocka
 * (unless HARNESS_NO_CMOCKA is defined before this header): a vmset of
 * mock machines in a new temporary state directory, ctl messages and
 * whole transactions, each failing the test when it hangs.
 */
#ifndef ATTESTFS_TESTS_HARNESS_H
#define ATTESTFS_TESTS_HARNESS_H

#include <errno.h>
#include <semaphore.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "machine/machine.h"

/* How long a test waits for a request before it calls it a hang. */
#define HARNESS_CALL_SECS 60

struct call {
	struct mreq r;
	sem_t sem;
};

static inline void
call_done(struct mreq *r)
{
	sem_post(&((struct call *)r)->sem);
}

static inline void
call_init(struct call *c, size_t size)
{
	memset(c, 0, sizeof(*c));
	c->r.done = call_done;
	c->r.size = size;
	sem_init(&c->sem, 0, 0);
}

/* 0 once done() ran, within secs seconds (0: however long it takes), else
 * -ETIMEDOUT. */
static inline int
call_sem_wait(struct call *c, int secs)
{
	struct timespec ts;

	if (!secs)
		return sem_wait(&c->sem) == 0 ? 0 : -errno;
	clock_gettime(CLOCK_REALTIME, &ts);
	ts.tv_sec += secs;
	return sem_timedwait(&c->sem, &ts) == 0 ? 0 : -ETIMEDOUT;
}

#ifndef HARNESS_NO_CMOCKA
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

/* The request's result; a hang fails the test. */
static inline int
call_wait(struct call *c)
{
	assert_int_equal(call_sem_wait(c, HARNESS_CALL_SECS), 0);
	sem_destroy(&c->sem);
	return c->r.result;
}

struct fixture {
	char dir[64];
	struct vmset *set;
	struct machine *m;          /* the machine named "m" */
};

/* The machines of json (mock ones), state in a new directory; log_max 0:
 * the default. */
static inline int
fixture_setup(void **state, const char *json, int timeout, uint64_t log_max)
{
	struct fixture *f = calloc(1, sizeof(*f));
	struct attest_config cfg;
	struct vmset_options opt = { 0 };
	struct aerr err = { "" };

	strcpy(f->dir, "/tmp/attestfs-unit.XXXXXX");
	assert_non_null(mkdtemp(f->dir));
	assert_int_equal(config_parse(json, "/t/machines.json", "/t", &cfg,
				      &err), 0);
	opt.state_dir = f->dir;
	opt.timeout = timeout;
	opt.mountpoint = "/vms";
	opt.log_max = log_max;
	assert_int_equal(vmset_create(&opt, &cfg, &f->set, &err), 0);
	f->m = vmset_find(f->set, "m");
	assert_non_null(f->m);
	*state = f;
	return 0;
}

static inline int
fixture_teardown(void **state)
{
	struct fixture *f = *state;

	vmset_destroy(f->set);
	remove_tree(f->dir);
	free(f);
	return 0;
}

/* A ctl message's result; a hang fails the test and shows m's log. */
static inline int
ctl(struct machine *m, const char *msg)
{
	struct call c;

	call_init(&c, 0);
	machine_ctl(m, msg, strlen(msg), &c.r);
	if (call_sem_wait(&c, HARNESS_CALL_SECS) < 0) {
		size_t len;
		char *log = machine_render(m, MACHINE_VIEW_LOG, &len);

		fail_msg("ctl '%s' did not finish; log:\n%s", msg, log);
	}
	sem_destroy(&c.sem);
	return c.r.result;
}

/* A whole transaction (exec or wait): all it returns, appended to out
 * (may be NULL), and its result. */
static inline int
tx_run(struct machine *m, enum mtx_kind kind, const char *text,
       struct strbuf *out)
{
	struct mtx *tx = machine_tx_open(m, kind);
	int ret;

	assert_int_equal(machine_tx_write(tx, text, strlen(text)),
			 (int)strlen(text));
	for (;;) {
		struct call c;

		call_init(&c, 65536);
		machine_tx_read(tx, &c.r);
		ret = call_wait(&c);
		if (ret < 0 || c.r.len == 0) {
			free(c.r.data);
			break;
		}
		if (out)
			sb_add(out, c.r.data, c.r.len);
		free(c.r.data);
	}
	machine_tx_close(tx);
	return ret;
}
#endif

#endif
