/*
 * A job's output: the host polls the job (one control command: its status
 * and output sizes), backing off from 50 ms to 1 s while somebody waits,
 * and serves the readers of jobs/<j>/stdout, stderr and exit from it.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "machine/guestcall.h"
#include "machine/jobs.h"

/* ---- polling ------------------------------------------------------------ */

static void job_poll_update(struct cmd *c);
static void reader_drop(struct job *j, struct job_reader *rd);

void
job_wake_polling(struct job *j)
{
	j->poll_ms = POLL_FIRST_MS;
	j->next_poll = now_mono_ms();
}

void
job_poll_start(struct job *j)
{
	struct machine *m = j->m;
	char *text;

	if (j->poll || j->state != JOB_RUNNING)
		return;
	if (m->state != MS_RUNNING || j->generation != m->generation) {
		/* The guest that ran it is gone. */
		j->state = JOB_DONE;
		j->status = 255;
		machine_logl(m, "job %s: lost with its guest", j->name);
		job_readers_serve(j);
		return;
	}
	text = xasprintf("d=" JOB_DIR "%s; cat $d/s 2>/dev/null || echo -; "
			 "wc -c < $d/o; wc -c < $d/e", j->name);
	j->poll = cmd_new(m, text, strlen(text), 1);
	free(text);
	j->refs++;
	j->poll->on_update = job_poll_update;
	j->poll->ctx = j;
	j->poll->deadline = now_mono_ms() + 30000;
	cmd_submit(j->poll);
}

static void
job_poll_update(struct cmd *c)
{
	struct job *j = c->ctx;
	struct machine *m = c->m;
	char st[32];
	unsigned long long o, e;

	if (c->state != CMD_DONE)
		return;
	j->poll = NULL;
	c->on_update = NULL;
	if (j->removed) {
		cmd_put(c);
		job_put(m, j);
		return;
	}
	if (!c->err && c->out.data &&
	    sscanf(c->out.data, "%31s %llu %llu", st, &o, &e) == 3) {
		int grew = o != j->size[0] || e != j->size[1];

		j->size[0] = o;
		j->size[1] = e;
		if (st[0] != '-') {
			j->state = JOB_DONE;
			j->status = j->timed_out ? 124 : atoi(st);
			machine_logl(m, "job %s: exited with status %d", j->name,
				     j->status);
		}
		if (grew)
			j->poll_ms = POLL_FIRST_MS;
		else if (j->poll_ms < POLL_MAX_MS)
			j->poll_ms *= 2;
	} else if (c->err == -EIO) {
		j->state = JOB_DONE;
		j->status = 255;
	}
	j->next_poll = now_mono_ms() + j->poll_ms;
	cmd_put(c);
	job_readers_serve(j);
	job_put(m, j);
}

/* ---- reading ------------------------------------------------------------ */

static void
reader_drop(struct job *j, struct job_reader *rd)
{
	struct job_reader **p;

	for (p = &j->readers; *p; p = &(*p)->next) {
		if (*p == rd) {
			*p = rd->next;
			break;
		}
	}
	free(rd);
}

static void
reader_cancel(struct mreq *r)
{
	struct job_reader *rd = r->priv_data;

	/* job_readers_serve() drops it; the request ends now. */
	rd->r = NULL;
	mreq_finish(r->priv_machine, r, -EINTR);
}

/* A guest read of a job's output file, answering r when done. */
static void
fetch_update(struct cmd *c)
{
	struct mreq *r = c->ctx;
	struct machine *m = c->m;

	if (c->state != CMD_DONE)
		return;
	c->on_update = NULL;
	if (c->err) {
		mreq_finish(m, r, c->err);
	} else {
		r->len = c->out.len;
		r->data = sb_detach(&c->out, NULL);
		mreq_finish(m, r, 0);
	}
	cmd_put(c);
}

static void
fetch_cancel(struct mreq *r)
{
	struct cmd *c = r->priv_data;

	c->on_update = NULL;
	cmd_cancel(c, -EINTR);
	cmd_put(c);
	mreq_finish(r->priv_machine, r, -EINTR);
}

static void
fetch_start(struct job *j, struct mreq *r, enum job_file f, uint64_t offset)
{
	char *text = xasprintf("tail -c +%" PRIu64 " " JOB_DIR "%s/%c | "
			       "head -c %zu", offset + 1, j->name,
			       f == JOB_STDERR ? 'e' : 'o', r->size);
	struct cmd *c = cmd_new(j->m, text, strlen(text), 0);

	free(text);
	c->deadline = now_mono_ms() + 60000;
	c->on_update = fetch_update;
	c->ctx = r;
	mreq_park(j->m, r, fetch_cancel, c);
	cmd_submit(c);
}

/* With the lock: answer the readers that can be answered. */
void
job_readers_serve(struct job *j)
{
	struct machine *m = j->m;
	struct job_reader *rd, *next;

	for (rd = j->readers; rd; rd = next) {
		struct mreq *r = rd->r;

		next = rd->next;
		if (!r) {
			reader_drop(j, rd);
			continue;
		}
		if (rd->f == JOB_EXIT) {
			if (j->state != JOB_DONE)
				continue;
			r->data = xasprintf("%d\n", j->status);
			r->len = strlen(r->data);
			reader_drop(j, rd);
			mreq_finish(m, r, 0);
			continue;
		}
		if (rd->offset < j->size[rd->f == JOB_STDERR]) {
			uint64_t offset = rd->offset;
			enum job_file f = rd->f;

			reader_drop(j, rd);
			fetch_start(j, r, f, offset);
		} else if (j->state == JOB_DONE) {
			reader_drop(j, rd);
			mreq_finish(m, r, 0);	/* the end */
		}
	}
	pthread_cond_broadcast(&m->cond);
}

void
machine_job_read(struct machine *m, const char *name, enum job_file f,
		 uint64_t offset, struct mreq *r)
{
	struct job_reader *rd, **p;
	struct job *j;

	r->data = NULL;
	r->len = 0;
	machine_lock(m);
	j = job_find(m, name);
	if (!j) {
		mreq_finish(m, r, -ENOENT);
		goto out;
	}
	if (j->state == JOB_CREATED) {
		machine_logl(m, "job %s: not started (write its cmd first)", name);
		mreq_finish(m, r, f == JOB_EXIT ? -ENOENT : 0);
		goto out;
	}
	rd = xcalloc(1, sizeof(*rd));
	rd->r = r;
	rd->f = f;
	rd->offset = offset;
	mreq_park(m, r, reader_cancel, rd);
	for (p = &j->readers; *p; p = &(*p)->next)
		;
	*p = rd;
	job_wake_polling(j);
	job_readers_serve(j);
	pthread_cond_broadcast(&m->cond);
out:
	machine_unlock(m);
}
