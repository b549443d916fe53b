/*
 * Machines' locking and request completion: done() of a completed request
 * runs at the next machine_unlock, never with the lock held.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "machine/internal.h"

static const char *const state_names[] = {
	[MS_STOPPED] = "stopped", [MS_STARTING] = "starting",
	[MS_RUNNING] = "running", [MS_PAUSED] = "paused",
	[MS_STOPPING] = "stopping", [MS_CRASHED] = "crashed",
};

const char *
mstate_name(enum mstate s)
{
	return state_names[s];
}

/* ---- locking and request completion ---------------------------------- */

void
machine_lock(struct machine *m)
{
	pthread_mutex_lock(&m->lock);
}

void
machine_unlock(struct machine *m)
{
	struct mreq *list = m->done_list, *rev = NULL;

	m->done_list = NULL;
	pthread_mutex_unlock(&m->lock);
	while (list) {
		struct mreq *next = list->priv_next;

		list->priv_next = rev;
		rev = list;
		list = next;
	}
	while (rev) {
		struct mreq *next = rev->priv_next;

		rev->priv_next = NULL;
		rev->done(rev);
		rev = next;
	}
}

void
mreq_park(struct machine *m, struct mreq *r, void (*cancel)(struct mreq *r),
	  void *data)
{
	r->priv_machine = m;
	r->priv_cancel = cancel;
	r->priv_data = data;
}

void
mreq_finish(struct machine *m, struct mreq *r, int result)
{
	r->priv_cancel = NULL;
	r->priv_machine = m;
	r->result = result;
	r->priv_next = m->done_list;
	m->done_list = r;
	pthread_cond_broadcast(&m->cond);
}

/*
 * Called by fs/ with its own table lock held, so done() must not run here:
 * the supervisor thread calls it at its next unlock.
 */
void
mreq_cancel(struct mreq *r)
{
	struct machine *m = r->priv_machine;

	if (!m) {
		/* A request spanning machines cancels its parts itself. */
		if (r->priv_cancel)
			r->priv_cancel(r);
		return;
	}
	pthread_mutex_lock(&m->lock);
	if (r->priv_cancel && !r->priv_cancelled) {
		r->priv_cancelled = 1;
		r->priv_cancel(r);
	}
	pthread_cond_broadcast(&m->cond);
	pthread_mutex_unlock(&m->lock);
}

/* Remove r from a singly linked list of parked requests. */
int
mreq_unlink(struct mreq **list, struct mreq *r)
{
	for (; *list; list = &(*list)->priv_next) {
		if (*list == r) {
			*list = r->priv_next;
			r->priv_next = NULL;
			return 1;
		}
	}
	return 0;
}

void
mreq_finish_all(struct machine *m, struct mreq **list, int result)
{
	while (*list) {
		struct mreq *r = *list;

		*list = r->priv_next;
		r->priv_next = NULL;
		mreq_finish(m, r, result);
	}
}
