/*
 * Transactions (exec, wait, qmp): written, then read on the same open file.
 * The waits' conditions, their checks and polls are in wait.c.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "machine/internal.h"
#include "machine/qmp_policy.h"

#define TX_MAX (1u << 20)
#define EXEC_OUT_CAP (1u << 20)

struct mtx {
	struct machine *m;
	enum mtx_kind kind;
	struct strbuf in;
	int started;
	struct cmd *cmd;          /* exec */
	struct waiter *w;         /* wait */
	struct strbuf result;     /* wait, qmp: the answer, served once */
	size_t served;
	int err;                  /* reported at the end (then EOF) */
	int write_err;            /* a write failed: nothing runs, reads fail */
	int err_reported;
	struct mreq *reading;     /* a parked read */
};

/* ---- wait (wait.c owns the condition) ---------------------------------- */

/* The wait ended (wait.c), with the lock: answer its parked read r. */
void
tx_wait_answer(struct machine *m, struct mreq *r, int err, const char *result)
{
	struct mtx *tx = r->priv_data;
	size_t n;

	if (!tx)
		return;
	tx->w = NULL;
	tx->reading = NULL;
	if (result)
		sb_adds(&tx->result, result);
	tx->err = err;
	if (err) {
		tx->err_reported = 1;
		mreq_finish(m, r, err);
		return;
	}
	n = tx->result.len < r->size ? tx->result.len : r->size;
	r->data = xmalloc(n + 1);
	memcpy(r->data, tx->result.data, n);
	r->len = n;
	tx->served = n;
	mreq_finish(m, r, 0);
}

static void
wait_read_cancel(struct mreq *r)
{
	struct mtx *tx = r->priv_data;
	struct waiter *w = tx->w;

	if (!w)
		return;
	tx->w = NULL;
	tx->reading = NULL;
	tx->err = -EINTR;
	tx->err_reported = 1;
	waiter_drop(tx->m, w);
	mreq_finish(tx->m, r, -EINTR);
}

static void
wait_start(struct mtx *tx, struct mreq *r)
{
	struct machine *m = tx->m;
	struct waiter *w;
	int ret;

	ret = waiter_new(m, tx->in.data ? tx->in.data : "", tx->in.len, &w);
	if (ret < 0) {
		tx->err = ret;
		tx->err_reported = 1;
		mreq_finish(m, r, ret);
		return;
	}
	tx->w = w;
	tx->reading = r;
	mreq_park(m, r, wait_read_cancel, tx);
	waiter_add(m, w, r);
}

/* ---- exec -------------------------------------------------------------- */

static void exec_serve(struct mtx *tx);

static void
exec_update(struct cmd *c)
{
	struct mtx *tx = c->ctx;

	if (tx && tx->reading)
		exec_serve(tx);
}

static void
log_stderr(struct machine *m, struct cmd *c)
{
	const char *p = c->errout.data, *end = p + c->errout.len;

	while (p && p < end) {
		const char *nl = memchr(p, '\n', (size_t)(end - p));
		size_t n = nl ? (size_t)(nl - p) : (size_t)(end - p);

		machine_logl(m, "exec stderr: %.*s", (int)n, p);
		p += n + 1;
	}
	if (c->err_dropped)
		machine_logl(m, "exec stderr: [... %llu bytes dropped: the log "
			     "keeps the first %u of each command's stderr; jobs/ "
			     "keep all of it ...]",
			     (unsigned long long)c->err_dropped, CMD_STDERR_KEEP);
}

/* With the lock: answer the parked read if there is something to say. */
static void
exec_serve(struct mtx *tx)
{
	struct machine *m = tx->m;
	struct cmd *c = tx->cmd;
	struct mreq *r = tx->reading;

	if (!r)
		return;
	if (c->out.len) {
		size_t n = c->out.len < r->size ? c->out.len : r->size;

		r->data = xmalloc(n);
		memcpy(r->data, c->out.data, n);
		r->len = n;
		sb_consume(&c->out, n);
		cmd_took_output(c);
		tx->reading = NULL;
		mreq_finish(m, r, 0);
		return;
	}
	if (c->state != CMD_DONE)
		return;
	tx->reading = NULL;
	if (tx->err_reported) {
		mreq_finish(m, r, 0);
		return;
	}
	tx->err_reported = 1;
	log_stderr(m, c);
	if (c->err) {
		machine_logl(m, "exec `%.200s`: %s", c->text,
			     c->err == -ETIMEDOUT ? "timed out (killed in the "
						    "guest)" :
			     c->err == -EINTR ? "interrupted" :
						 "the machine or its shell went away");
		mreq_finish(m, r, c->err);
	} else if (c->status) {
		machine_logl(m, "exec `%.200s`: exit status %d", c->text,
			     c->status);
		mreq_finish(m, r, -EREMOTEIO);
	} else {
		mreq_finish(m, r, 0);
	}
}

static void
exec_read_cancel(struct mreq *r)
{
	struct mtx *tx = r->priv_data;

	tx->reading = NULL;
	tx->err_reported = 1;
	if (tx->cmd && tx->cmd->state != CMD_DONE) {
		machine_logl(tx->m, "exec `%.200s`: interrupted; killing it in "
			     "the guest", tx->cmd->text);
		cmd_cancel(tx->cmd, -EINTR);
	}
	mreq_finish(tx->m, r, -EINTR);
}

static void
exec_start(struct mtx *tx)
{
	struct machine *m = tx->m;
	struct cmd *c;
	int ret;

	c = cmd_new(m, tx->in.data ? tx->in.data : "", tx->in.len, 0);
	c->on_update = exec_update;
	c->ctx = tx;
	/* exec_update answers the reader; the supervisor only keeps the
	 * deadline, which cmd_submit tells it about. */
	c->quiet = 1;
	c->out_cap = EXEC_OUT_CAP;
	c->out_keep = 0;
	c->deadline = now_mono_ms() + (int64_t)m->timeout * 1000;
	tx->cmd = c;
	ret = machine_needs_guest(m, NULL);
	if (ret < 0) {
		c->state = CMD_DONE;
		c->err = ret;
		return;
	}
	cmd_submit(c);
}

/* ---- qmp ---------------------------------------------------------------- */

/*
 * The request as QEMU will get it (the JSON that passed qmp_policy, written
 * out again, so what was checked is what runs), malloc'd; or -errno with
 * the reason in log.
 */
static int
qmp_checked(struct mtx *tx, char **out)
{
	struct machine *m = tx->m;
	unsigned flags = m->set->opt.host_access ? QMP_POLICY_HOST_ACCESS : 0;
	json_object *req = NULL;
	char why[512];
	int ret;

	ret = qmp_policy_parse(tx->in.data ? tx->in.data : "", tx->in.len,
			       &req, why, sizeof(why));
	if (!ret)
		ret = qmp_policy_check(req, flags, why, sizeof(why));
	if (ret < 0) {
		machine_logl(m, "qmp: %s", why);
		json_object_put(req);
		return ret;
	}
	*out = xstrdup(json_object_to_json_string_ext(req,
			JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE));
	json_object_put(req);
	return 0;
}

/* The supervisor's part of qmp: the backend call, without the lock. */
static void
qmp_call(struct machine *m, struct mop *op)
{
	struct backend *be = m->be;
	struct aerr err = { "" };
	struct mtx *tx;
	char *reply = NULL;
	size_t n;
	int ret;

	if (!be || m->state == MS_STOPPING) {
		machine_logl(m, "qmp: the machine is %s", mstate_name(m->state));
		ret = -EHOSTDOWN;
		goto out;
	}
	machine_unlock(m);
	ret = m->ops->command(be, op->mo_arg, &reply, &err);
	machine_lock(m);
	if (ret < 0)
		machine_logl(m, "qmp: %s", err.msg[0] ? err.msg : strerror(-ret));
out:
	/* The transaction is gone once its reader gave up. */
	tx = op->mo_ctx;
	if (tx)
		tx->err_reported = 1;
	if (tx && ret == 0) {
		sb_adds(&tx->result, reply ? reply : "");
		if (!tx->result.len || tx->result.data[tx->result.len - 1] != '\n')
			sb_adds(&tx->result, "\n");
		n = tx->result.len < op->mo_req->size ? tx->result.len :
							op->mo_req->size;
		op->mo_req->data = xmalloc(n + 1);
		memcpy(op->mo_req->data, tx->result.data, n);
		op->mo_req->len = n;
		tx->served = n;
	}
	free(reply);
	mop_finish(m, op, ret);
}

/* With the lock: checked here, sent by the supervisor, in order with the
 * machine's other actions; the reader may give up at any time. */
static void
qmp_run(struct mtx *tx, struct mreq *r)
{
	struct machine *m = tx->m;
	struct mop *op;
	char *req = NULL;
	int ret;

	if (!(m->ops->caps & BACKEND_CAP_QMP)) {
		tx->err_reported = 1;
		mreq_finish(m, r, -EOPNOTSUPP);
		return;
	}
	ret = qmp_checked(tx, &req);
	if (ret < 0) {
		tx->err_reported = 1;
		mreq_finish(m, r, ret);
		return;
	}
	op = mop_new("qmp", qmp_call, r);
	op->mo_arg = req;
	op->mo_ctx = tx;
	op->mo_vmm = 1;
	mop_push(m, op);
}

/* ---- the transaction API ------------------------------------------------ */

struct mtx *
machine_tx_open(struct machine *m, enum mtx_kind kind)
{
	struct mtx *tx = xcalloc(1, sizeof(*tx));

	tx->m = m;
	tx->kind = kind;
	sb_init(&tx->in);
	sb_init(&tx->result);
	return tx;
}

int
machine_tx_write(struct mtx *tx, const char *buf, size_t len)
{
	struct machine *m = tx->m;
	const char *nul = memchr(buf, '\0', len);
	int ret = (int)len;

	machine_lock(m);
	if (tx->write_err) {
		ret = tx->write_err;
	} else if (tx->started) {
		machine_logl(m, "transaction: a write after the first read; open "
			     "the file again for another one");
		ret = -EBUSY;
	} else if (tx->in.len + len > TX_MAX) {
		machine_logl(m, "transaction: more than 1 MiB written; it will "
			     "not run");
		ret = -EFBIG;
	} else if (nul) {
		/* The shell would drop it silently and run something else. */
		machine_logl(m, "transaction: a NUL byte at byte %zu of the text; "
			     "it will not run", tx->in.len + (size_t)(nul - buf));
		ret = -EINVAL;
	} else {
		sb_add(&tx->in, buf, len);
		if (tx->kind == MTX_WAIT) {
			int r = tx_wait_parse(m, tx->in.data, tx->in.len);

			if (r < 0) {
				sb_free(&tx->in);
				ret = r;
			}
		}
	}
	/* A truncated or mangled text must never run, whatever reads it. */
	if (ret < 0 && !tx->started && !tx->write_err)
		tx->write_err = ret;
	machine_unlock(m);
	return ret;
}

void
machine_tx_read(struct mtx *tx, struct mreq *r)
{
	struct machine *m = tx->m;

	r->data = NULL;
	r->len = 0;
	machine_lock(m);
	if (tx->write_err) {
		if (!tx->started)
			machine_logl(m, "transaction: not run, a write to it "
				     "failed (%s)", strerror(-tx->write_err));
		tx->started = 1;
		mreq_finish(m, r, tx->write_err);
		machine_unlock(m);
		return;
	}
	if (!tx->started) {
		tx->started = 1;
		switch (tx->kind) {
		case MTX_EXEC:
			exec_start(tx);
			break;
		case MTX_WAIT:
			wait_start(tx, r);
			machine_unlock(m);
			return;
		case MTX_QMP:
			qmp_run(tx, r);
			machine_unlock(m);
			return;
		}
	}
	if (tx->kind == MTX_EXEC) {
		tx->reading = r;
		mreq_park(m, r, exec_read_cancel, tx);
		/* Answered where the output comes (a shell's worker, which
		 * unlocks at once): a wake-up of the supervisor per read and
		 * per command would only cost the guest a core on a busy host. */
		r->priv_quiet = 1;
		exec_serve(tx);
	} else if (tx->w) {
		/* A second reader while the wait runs. */
		machine_logl(m, "wait: already being read");
		mreq_finish(m, r, -EBUSY);
	} else {
		/* wait/qmp: the rest of the answer, then EOF. */
		size_t n = tx->result.len - tx->served;

		if (n > r->size)
			n = r->size;
		if (n) {
			r->data = xmalloc(n);
			memcpy(r->data, tx->result.data + tx->served, n);
			r->len = n;
			tx->served += n;
		}
		mreq_finish(m, r, 0);
	}
	machine_unlock(m);
}

void
machine_tx_close(struct mtx *tx)
{
	struct machine *m = tx->m;

	machine_lock(m);
	if (tx->cmd) {
		if (tx->cmd->state != CMD_DONE) {
			machine_logl(m, "exec `%.200s`: closed before it ended; "
				     "killing it in the guest", tx->cmd->text);
			cmd_cancel(tx->cmd, -EINTR);
		}
		tx->cmd->on_update = NULL;
		tx->cmd->ctx = NULL;
		cmd_put(tx->cmd);
	}
	if (tx->w)
		waiter_drop(m, tx->w);
	machine_unlock(m);
	sb_free(&tx->in);
	sb_free(&tx->result);
	free(tx);
}
