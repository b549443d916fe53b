/*
 * One guest command on behalf of one request: files/ and jobs/ use it. The
 * command's result is turned into the reply by a handler, with the lock held.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "machine/guestcall.h"

struct guest_call {
	struct mreq *r;
	struct cmd *c;
	guest_call_fn fn;
	void *arg;
};

static void
gc_end(struct guest_call *gc, int result)
{
	struct machine *m = gc->c->m;
	struct mreq *r = gc->r;

	gc->c->on_update = NULL;
	gc->c->ctx = NULL;
	cmd_put(gc->c);
	free(gc);
	if (r)
		mreq_finish(m, r, result);
}

static void
gc_update(struct cmd *c)
{
	struct guest_call *gc = c->ctx;
	int result;

	if (c->state != CMD_DONE)
		return;
	if (c->err)
		result = c->err;
	else
		result = gc->fn(c, gc->r, gc->arg);
	gc_end(gc, result);
}

static void
gc_cancel(struct mreq *r)
{
	struct guest_call *gc = r->priv_data;

	cmd_cancel(gc->c, -EINTR);
	/* cmd_cancel may already have ended it through gc_update. */
	if (r->priv_cancel)
		gc_end(gc, -EINTR);
}

void
guest_call(struct machine *m, const char *text, size_t len, int control,
	   guest_call_fn fn, void *arg, struct mreq *r)
{
	struct guest_call *gc;
	int ret;

	machine_lock(m);
	ret = machine_needs_guest(m, r);
	if (ret < 0) {
		mreq_finish(m, r, ret);
		machine_unlock(m);
		return;
	}
	gc = xcalloc(1, sizeof(*gc));
	gc->r = r;
	gc->fn = fn;
	gc->arg = arg;
	gc->c = cmd_new(m, text, len, control);
	gc->c->on_update = gc_update;
	gc->c->ctx = gc;
	gc->c->deadline = now_mono_ms() + (int64_t)m->timeout * 1000;
	mreq_park(m, r, gc_cancel, gc);
	cmd_submit(gc->c);
	machine_unlock(m);
}

int
guest_errno(const struct cmd *c)
{
	static const struct {
		const char *text;
		int err;
	} table[] = {
		{ "No such file", ENOENT },
		{ "not found", ENOENT },
		{ "Permission denied", EACCES },
		{ "Is a directory", EISDIR },
		{ "Not a directory", ENOTDIR },
		{ "Directory not empty", ENOTEMPTY },
		{ "File exists", EEXIST },
		{ "Read-only file system", EROFS },
		{ "No space left", ENOSPC },
		{ "Operation not permitted", EPERM },
	};
	size_t i;

	if (c->status == 0)
		return 0;
	for (i = 0; i < sizeof(table) / sizeof(table[0]); i++)
		if (c->errout.data && strstr(c->errout.data, table[i].text))
			return -table[i].err;
	return -EIO;
}

void
guest_call_quoted(struct machine *m, const char *before, const char *word,
		  const char *after, int control, guest_call_fn fn, void *arg,
		  struct mreq *r)
{
	struct strbuf sb;

	sb_init(&sb);
	sb_adds(&sb, before);
	sb_add_shell_quoted(&sb, word, strlen(word));
	sb_adds(&sb, after);
	guest_call(m, sb.data, sb.len, control, fn, arg, r);
	sb_free(&sb);
}

int
guest_output_done(struct cmd *c, struct mreq *r, void *arg)
{
	int err = guest_errno(c);

	if (err)
		return err;
	if (c->out_dropped) {
		/* A listing or link cut short would be wrong, not shorter. */
		machine_logl(c->m, "`%.100s`: more than %zu bytes of output; "
			     "not served", c->text, c->out_keep);
		return -EFBIG;
	}
	r->len = c->out.len;
	r->data = sb_detach(&c->out, NULL);
	return 0;
}
