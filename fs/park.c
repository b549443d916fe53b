/*
 * Parked FUSE requests. Three parties race for a parked request: the handler
 * that parked it (until fs_park_commit), machine/'s done callback, and
 * libfuse's interrupt callback. The table lock decides:
 *
 * - done before commit: done only marks the request; commit answers it,
 *   because libfuse's request must stay alive until the interrupt function
 *   is registered on it.
 * - the interrupt callback may run inside fuse_req_interrupt_func (libfuse
 *   calls it at once when the interrupt came first) or on another worker
 *   while done answers: it looks the request up by fuse_req_t under the lock
 *   and cancels only what is still in the table and not yet completed, so
 *   mreq_cancel never sees a finished mreq.
 * - the lock is recursive: mreq_cancel may complete the mreq inline, so done
 *   can run inside the interrupt callback, on the same thread.
 */
#include "fs/park.h"

#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "common/util.h"

#define PARK_BUCKETS 256

struct fs_park {
	pthread_mutex_t lock;  /* recursive; protects everything here and the
				  private fields of every fs_preq */
	pthread_cond_t idle;   /* n reached 0 */
	struct fs_preq *buckets[PARK_BUCKETS];  /* by fuse_req_t */
	size_t n;              /* in the table or being answered */
	uint64_t next_id;
	size_t n_soft;         /* requests whose interrupt was only SIGCHLD */
	int watching;          /* the watcher thread runs */
	int stopping;
	int shutting;          /* fs_park_cancel_all: the daemon goes down */
	pthread_cond_t soft_cond;  /* a request to watch, or stopping */
	pthread_t watcher;
};

static size_t
req_bucket(fuse_req_t req)
{
	uintptr_t v = (uintptr_t)req;

	return (size_t)((v >> 4) ^ (v >> 12)) % PARK_BUCKETS;
}

static struct fs_preq *
find_req(struct fs_park *pk, fuse_req_t req)
{
	struct fs_preq *p;

	for (p = pk->buckets[req_bucket(req)]; p; p = p->next)
		if (p->req == req)
			return p;
	return NULL;
}

/* Under the lock. The request stays counted until finish(). */
static void
unlink_req(struct fs_preq *p)
{
	struct fs_preq **pp = &p->park->buckets[req_bucket(p->req)];

	for (; *pp; pp = &(*pp)->next) {
		if (*pp == p) {
			*pp = p->next;
			break;
		}
	}
	p->next = NULL;
}

/* Answer and free; no table lock needed (p is out of the table). */
static void
finish(struct fs_preq *p)
{
	struct fs_park *pk = p->park;
	int shutting;

	pthread_mutex_lock(&pk->lock);
	shutting = pk->shutting;
	pthread_mutex_unlock(&pk->lock);
	/* Cancelled because the daemon halts every machine, not because the
	 * caller was interrupted: EINTR would make cat and others retry. */
	if (shutting && p->cancelled &&
	    p->mr.result == machine_errno(MACHINE_COND_INTERRUPTED))
		p->mr.result = machine_errno(MACHINE_COND_DOWN);
	p->reply(p);
	free(p->mr.data);
	free(p->name);
	free(p->path);
	free(p->buf);
	free(p);
	pthread_mutex_lock(&pk->lock);
	if (--pk->n == 0)
		pthread_cond_broadcast(&pk->idle);
	pthread_mutex_unlock(&pk->lock);
}

static void
preq_done(struct mreq *r)
{
	struct fs_preq *p = r->owner;
	struct fs_park *pk = p->park;

	pthread_mutex_lock(&pk->lock);
	p->completed = 1;
	if (p->active) {
		/* the handler answers it in fs_park_commit */
		pthread_mutex_unlock(&pk->lock);
		return;
	}
	unlink_req(p);
	if (p->soft) {
		p->soft = 0;
		pk->n_soft--;
	}
	pthread_mutex_unlock(&pk->lock);
	finish(p);
}

static void cancel_now(struct fs_preq *p);

/* Under the lock. */
static void
cancel_locked(struct fs_preq *p)
{
	if (p->completed || p->cancelled)
		return;
	if (p->active) {
		p->cancel_pending = 1;
		return;
	}
	cancel_now(p);
}

/*
 * The kernel sends one INTERRUPT for any signal, even one the caller handles
 * and that should not abort anything: bash's SIGCHLD handler fires whenever a
 * background job of the script ends, and `echo start > ctl` must not fail
 * for that. So a request whose caller has only such signals pending is not
 * cancelled; it is watched instead, and cancelled as soon as another signal
 * (Ctrl-C, timeout's SIGTERM, SIGKILL) is pending. 1 = harmless, 0 = not,
 * -1 = cannot tell (cancel).
 */
static int
only_harmless_signals(pid_t pid)
{
	const unsigned long long harmless = 1ull << (SIGCHLD - 1) |
					    1ull << (SIGWINCH - 1) |
					    1ull << (SIGURG - 1) |
					    1ull << (SIGCONT - 1);
	unsigned long long pending = 0, v;
	char path[64], line[256];
	FILE *f;

	snprintf(path, sizeof(path), "/proc/%d/status", (int)pid);
	f = fopen(path, "re");
	if (!f)
		return -1;
	while (fgets(line, sizeof(line), f)) {
		if ((sscanf(line, "SigPnd: %llx", &v) == 1) ||
		    (sscanf(line, "ShdPnd: %llx", &v) == 1))
			pending |= v;
	}
	fclose(f);
	if (!pending)
		return -1;
	return (pending & ~harmless) == 0;
}

static void
cancel_now(struct fs_preq *p)
{
	if (p->soft) {
		p->soft = 0;
		p->park->n_soft--;
	}
	p->cancelled = 1;
	mreq_cancel(&p->mr);  /* may run preq_done inline: p may be gone */
}

static void *
watch_soft(void *arg)
{
	struct fs_park *pk = arg;

	pthread_mutex_lock(&pk->lock);
	while (!pk->stopping && pk->n_soft) {
		struct timespec ts;
		size_t b;

	again:
		for (b = 0; b < PARK_BUCKETS; b++) {
			struct fs_preq *p;

			for (p = pk->buckets[b]; p; p = p->next) {
				if (!p->soft || p->completed || p->cancelled)
					continue;
				if (only_harmless_signals(p->pid) != 1) {
					cancel_now(p);
					goto again;
				}
			}
		}
		mono_deadline(&ts, 100);
		pthread_cond_timedwait(&pk->soft_cond, &pk->lock, &ts);
	}
	pk->watching = 0;
	pthread_mutex_unlock(&pk->lock);
	return NULL;
}

/*
 * libfuse's interrupt callback. data is the table, never the request: the
 * request may have been answered (and freed) already.
 */
static void
park_interrupt(fuse_req_t req, void *data)
{
	struct fs_park *pk = data;
	struct fs_preq *p;

	pthread_mutex_lock(&pk->lock);
	p = find_req(pk, req);
	/* Registered only after the machine call, so cancelling is fine even
	 * while the handler is still inside fs_park_commit. */
	if (p && !p->completed && !p->cancelled && !p->soft) {
		if (p->pid > 0 && only_harmless_signals(p->pid) == 1) {
			p->soft = 1;
			pk->n_soft++;
			if (!pk->watching) {
				if (pk->watcher)
					pthread_join(pk->watcher, NULL);
				pk->watching = pthread_create(&pk->watcher, NULL,
							      watch_soft, pk) == 0;
				if (!pk->watching) {
					pk->watcher = 0;
					cancel_now(p);
				}
			}
		} else {
			cancel_now(p);
		}
	}
	pthread_mutex_unlock(&pk->lock);
}

struct fs_park *
fs_park_new(void)
{
	struct fs_park *pk = xcalloc(1, sizeof(*pk));
	pthread_mutexattr_t attr;

	pthread_mutexattr_init(&attr);
	pthread_mutexattr_settype(&attr, PTHREAD_MUTEX_RECURSIVE);
	pthread_mutex_init(&pk->lock, &attr);
	pthread_mutexattr_destroy(&attr);
	pthread_condattr_t ca;

	pthread_condattr_init(&ca);
	pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
	pthread_cond_init(&pk->idle, &ca);
	pthread_cond_init(&pk->soft_cond, &ca);
	pthread_condattr_destroy(&ca);
	return pk;
}

void
fs_park_free(struct fs_park *pk)
{
	if (!pk)
		return;
	pthread_mutex_lock(&pk->lock);
	pk->stopping = 1;
	pthread_cond_broadcast(&pk->soft_cond);
	pthread_mutex_unlock(&pk->lock);
	if (pk->watcher)
		pthread_join(pk->watcher, NULL);
	pthread_cond_destroy(&pk->soft_cond);
	pthread_cond_destroy(&pk->idle);
	pthread_mutex_destroy(&pk->lock);
	free(pk);
}

struct fs_preq *
fs_preq_new(struct fs_park *pk, fuse_req_t req, fs_reply_fn reply)
{
	struct fs_preq *p = xcalloc(1, sizeof(*p));

	p->req = req;
	p->reply = reply;
	p->park = pk;
	p->mr.done = preq_done;
	p->mr.owner = p;
	p->pid = fuse_req_ctx(req)->pid;
	pthread_mutex_lock(&pk->lock);
	p->id = ++pk->next_id;
	pthread_mutex_unlock(&pk->lock);
	return p;
}

void
fs_park_begin(struct fs_preq *p)
{
	struct fs_park *pk = p->park;
	size_t b = req_bucket(p->req);

	pthread_mutex_lock(&pk->lock);
	p->active = 1;
	p->next = pk->buckets[b];
	pk->buckets[b] = p;
	pk->n++;
	pthread_mutex_unlock(&pk->lock);
}

void
fs_park_commit(struct fs_preq *p)
{
	struct fs_park *pk = p->park;

	pthread_mutex_lock(&pk->lock);
	if (p->completed) {
		/* done came inline: nobody can interrupt it any more */
		unlink_req(p);
		pthread_mutex_unlock(&pk->lock);
		finish(p);
		return;
	}
	pthread_mutex_unlock(&pk->lock);

	/* Calls park_interrupt at once if the interrupt already came. The
	 * request cannot be answered meanwhile: done defers to us. */
	fuse_req_interrupt_func(p->req, park_interrupt, pk);

	pthread_mutex_lock(&pk->lock);
	p->active = 0;
	if (p->completed) {
		unlink_req(p);
		pthread_mutex_unlock(&pk->lock);
		finish(p);
		return;
	}
	if (p->cancel_pending)
		cancel_locked(p);  /* p may be gone after this */
	pthread_mutex_unlock(&pk->lock);
}

void
fs_park_cancel_id(struct fs_park *pk, uint64_t id)
{
	size_t b;

	pthread_mutex_lock(&pk->lock);
	for (b = 0; b < PARK_BUCKETS; b++) {
		struct fs_preq *p;

		for (p = pk->buckets[b]; p; p = p->next) {
			if (p->id == id) {
				cancel_locked(p);
				goto out;
			}
		}
	}
out:
	pthread_mutex_unlock(&pk->lock);
}

size_t
fs_park_cancel_all(struct fs_park *pk, int timeout_ms)
{
	struct timespec deadline;
	size_t b, left;

	pthread_mutex_lock(&pk->lock);
	pk->shutting = 1;
	/* a cancel may complete inline and unlink its entry: rescan */
again:
	for (b = 0; b < PARK_BUCKETS; b++) {
		struct fs_preq *p;

		for (p = pk->buckets[b]; p; p = p->next) {
			if (!p->completed && !p->cancelled &&
			    !p->cancel_pending) {
				cancel_locked(p);
				goto again;
			}
		}
	}
	mono_deadline(&deadline, timeout_ms);
	while (pk->n) {
		if (pthread_cond_timedwait(&pk->idle, &pk->lock, &deadline) ==
		    ETIMEDOUT)
			break;
	}
	left = pk->n;
	pthread_mutex_unlock(&pk->lock);
	return left;
}

size_t
fs_park_count(struct fs_park *pk)
{
	size_t n;

	pthread_mutex_lock(&pk->lock);
	n = pk->n;
	pthread_mutex_unlock(&pk->lock);
	return n;
}
