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
	/* A request moves between machines (a clone's start) only with both
	 * locks held: mreq_cancel reads which one without a lock. */
	__atomic_store_n(&r->priv_machine, m, __ATOMIC_RELEASE);
	r->priv_cancel = cancel;
	r->priv_data = data;
}

void
mreq_finish(struct machine *m, struct mreq *r, int result)
{
	r->priv_cancel = NULL;
	__atomic_store_n(&r->priv_machine, m, __ATOMIC_RELEASE);
	r->result = result;
	r->priv_next = m->done_list;
	m->done_list = r;
	/* Whoever unlocks next answers it; a thread that waits on the
	 * condition with the lock held needs the supervisor to. */
	if (!r->priv_quiet)
		pthread_cond_broadcast(&m->cond);
	r->priv_quiet = 0;
}

/*
 * fs/ calls this with its park lock held; that lock is recursive, so done()
 * may run here (fs/park.c). It must: the supervisor may be busy in a
 * backend call for a while, and the caller is answered EINTR at once.
 */
void
mreq_cancel(struct mreq *r)
{
	struct machine *m = __atomic_load_n(&r->priv_machine, __ATOMIC_ACQUIRE);

	if (!m) {
		/* A request spanning machines cancels its parts itself. */
		if (r->priv_cancel)
			r->priv_cancel(r);
		return;
	}
	machine_lock(m);
	if (r->priv_machine != m) {
		/* Handed to another machine meanwhile: cancel it there. */
		machine_unlock(m);
		mreq_cancel(r);
		return;
	}
	if (r->priv_cancel && !r->priv_cancelled) {
		r->priv_cancelled = 1;
		r->priv_cancel(r);
	}
	pthread_cond_broadcast(&m->cond);
	machine_unlock(m);
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
