/*
 * The supervisor's queue: every lifecycle action and every backend call of
 * a machine, in the order they were asked for. Only the supervisor thread
 * takes actions off it and runs them; everything else only queues. All
 * with the machine lock held.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "machine/internal.h"

static void
mop_free(struct mop *op)
{
	free(op->mo_arg);
	free(op->mo_arg2);
	free(op->mo_data);
	free(op);
}

/* The caller gave up: a queued action goes, a running one runs on, but its
 * result is nobody's. */
static void
mop_cancel(struct mreq *r)
{
	struct machine *m = r->priv_machine;
	struct mop *op = r->priv_data;

	op->mo_req = NULL;
	op->mo_ctx = NULL;
	if (op != m->mop_running)
		mop_drop(m, op, 0);
	mreq_finish(m, r, -EINTR);
}

struct mop *
mop_new(const char *verb, mop_run_fn *run, struct mreq *r)
{
	struct mop *op = xcalloc(1, sizeof(*op));

	op->mo_verb = verb;
	op->mo_run = run;
	op->mo_req = r;
	return op;
}

void
mop_push(struct machine *m, struct mop *op)
{
	struct mop **tail = &m->mops;

	while (*tail)
		tail = &(*tail)->mo_next;
	*tail = op;
	if (op->mo_req)
		mreq_park(m, op->mo_req, mop_cancel, op);
	pthread_cond_broadcast(&m->cond);
}

void
mop_push_front(struct machine *m, struct mop *op)
{
	op->mo_next = m->mops;
	m->mops = op;
	if (op->mo_req)
		mreq_park(m, op->mo_req, mop_cancel, op);
	pthread_cond_broadcast(&m->cond);
}

void
mop_finish(struct machine *m, struct mop *op, int result)
{
	struct mreq *r = mop_take_req(op);

	if (r)
		mreq_finish(m, r, result);
}

struct mreq *
mop_take_req(struct mop *op)
{
	struct mreq *r = op->mo_req;

	op->mo_req = NULL;
	return r;
}

struct mop *
mop_find(struct machine *m, const char *verb)
{
	struct mop *op;

	for (op = m->mops; op; op = op->mo_next)
		if (!strcmp(op->mo_verb, verb))
			return op;
	return NULL;
}

void
mop_drop(struct machine *m, struct mop *op, int err)
{
	struct mop **p;

	for (p = &m->mops; *p; p = &(*p)->mo_next) {
		if (*p == op) {
			*p = op->mo_next;
			break;
		}
	}
	mop_finish(m, op, err);
	mop_free(op);
}

void
mop_fail_vmm(struct machine *m, int err)
{
	struct mop *op, *next;

	for (op = m->mops; op; op = next) {
		next = op->mo_next;
		if (op->mo_vmm)
			mop_drop(m, op, err);
	}
	/* The running one finds out for itself: the VMM is gone or going. */
}

/* The supervisor: the oldest action, run with the lock (let go meanwhile). */
void
mop_run_next(struct machine *m)
{
	struct mop *op = m->mops;

	m->mops = op->mo_next;
	op->mo_next = NULL;
	m->mop_running = op;
	op->mo_run(m, op);
	m->mop_running = NULL;
	/* Whoever still waits gets an answer: run forgot nobody. */
	mop_finish(m, op, -EIO);
	mop_free(op);
}

/* Teardown, after the supervisor ended: nothing queued will run. */
void
mop_drop_all(struct machine *m, int err)
{
	while (m->mops)
		mop_drop(m, m->mops, err);
}
