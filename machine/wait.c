/*
 * The waits behind <m>/wait: conditions on the machine's status or console
 * wake on the event; conditions on the guest poll it, backing off from
 * 50 ms to 1 s, one command per poll. tx.c owns the transaction a wait is
 * read through, wait_parse.c the syntax; this file runs a wait to its end.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "machine/internal.h"

/* A poll's output decides its verdict; `wait succeeds` returns it, this
 * much of it at most, and says so when there was more. */
#define POLL_OUT_KEEP (64u << 10)
#define POLL_FIRST_MS 50
#define POLL_MAX_MS 1000

static int status_check(struct machine *m, struct waiter *w, int64_t now,
			int64_t *next);
static int console_check(struct machine *m, struct waiter *w, int64_t now,
			 int64_t *next);
static int polled_check(struct machine *m, struct waiter *w, int64_t now,
			int64_t *next);

/* Indexed by kind: what checks whether it holds (1 when the wait ended),
 * and whether a new wait needs the guest (and boots it). */
static const struct wait_check {
	int (*check)(struct machine *m, struct waiter *w, int64_t now,
		     int64_t *next);
	int guest;
} wait_checks[] = {
	[WAIT_STATUS] = { status_check, 0 },
	[WAIT_CONSOLE] = { console_check, 0 },
	[WAIT_SUCCEEDS] = { polled_check, 1 },
	[WAIT_FAILS] = { polled_check, 1 },
	[WAIT_FILE] = { polled_check, 1 },
	[WAIT_UNIT] = { polled_check, 1 },
	[WAIT_PORT] = { polled_check, 1 },
	[WAIT_SCREEN] = { polled_check, 1 },
	[WAIT_SOCKET] = { polled_check, 1 },
};

/* ---- waiters ----------------------------------------------------------- */

/*
 * A screen poll: OCR of a fresh screenshot (screen.c). Its done() runs
 * without the lock after the waiter may have ended: the waiter lets go of
 * it (w = NULL) and done() then only frees it.
 */
struct screen_poll {
	struct mreq r;
	struct machine *m;
	struct waiter *w;
	int done;
};

static void
screen_poll_done(struct mreq *r)
{
	struct screen_poll *sp = r->owner;
	struct machine *m = sp->m;

	machine_lock(m);
	if (sp->w) {
		sp->done = 1;
		pthread_cond_broadcast(&m->cond);
		sp = NULL;
	}
	machine_unlock(m);
	if (sp) {
		free(sp->r.data);
		free(sp);
	}
}

static void
screen_poll_submit(struct machine *m, struct waiter *w)
{
	struct screen_poll *sp = xcalloc(1, sizeof(*sp));

	sp->m = m;
	sp->w = w;
	sp->r.done = screen_poll_done;
	sp->r.owner = sp;
	sp->r.size = (size_t)1 << 20;
	w->shot = sp;
	screen_read_locked(m, 1, &sp->r);
}

static void
waiter_free(struct waiter *w)
{
	if (w->shot) {
		struct screen_poll *sp = w->shot;

		/* done() frees it; the OCR child dies with the cancel */
		sp->w = NULL;
		if (!sp->done && sp->r.priv_cancel && !sp->r.priv_cancelled) {
			sp->r.priv_cancelled = 1;
			sp->r.priv_cancel(&sp->r);
		} else if (sp->done) {
			free(sp->r.data);
			free(sp);
		}
	}
	if (w->poll) {
		w->poll->on_update = NULL;
		/* A machine going down takes the poll along: no kill. */
		if (w->m->state == MS_STOPPING)
			cmd_abandon(w->poll, -EINTR);
		else
			cmd_cancel(w->poll, -EINTR);
		cmd_put(w->poll);
	}
	if (w->has_re)
		regfree(&w->re);
	free(w->want);
	free(w->user);
	free(w->arg);
	free(w->result);
	free(w);
}

static void
waiter_unlink(struct machine *m, struct waiter *w)
{
	struct waiter **p;

	for (p = &m->waiters; *p; p = &(*p)->next) {
		if (*p == w) {
			*p = w->next;
			return;
		}
	}
}

void
waiter_drop(struct machine *m, struct waiter *w)
{
	waiter_unlink(m, w);
	w->r = NULL;
	waiter_free(w);
}

/* The wait is over: answer its reader. */
static void
waiter_end(struct machine *m, struct waiter *w, int err, char *result)
{
	waiter_unlink(m, w);
	w->done = 1;
	if (err)
		machine_logl(m, "wait %s %s: %s", wait_kind_name(w->kind),
			     w->arg, err == -ETIMEDOUT ? "timed out" :
							 strerror(-err));
	if (w->r)
		tx_wait_answer(m, w->r, err, result);
	free(result);
	w->r = NULL;
	waiter_free(w);
}

static void
poll_update(struct cmd *c)
{
	/* The supervisor re-checks its waiters on every broadcast. */
	(void)c;
}

/* A poll did not hold: the next one after the back-off, which doubles. */
static void
poll_later(struct waiter *w, int64_t now)
{
	w->next_poll = now + w->poll_ms;
	w->poll_ms = w->poll_ms * 2 > POLL_MAX_MS ? POLL_MAX_MS : w->poll_ms * 2;
}

/* ---- status and console ------------------------------------------------- */

static int
status_check(struct machine *m, struct waiter *w, int64_t now, int64_t *next)
{
	if (strcmp(mstate_name(m->state), w->arg))
		return 0;
	waiter_end(m, w, 0, xasprintf("status %s\n", w->arg));
	return 1;
}

static char *
console_match(struct machine *m, struct waiter *w)
{
	struct strbuf *bc = &m->boot_console;

	while (w->console_pos < bc->len) {
		char *start = bc->data + w->console_pos;
		char *nl = memchr(start, '\n', bc->len - w->console_pos);
		size_t n = nl ? (size_t)(nl - start) : bc->len - w->console_pos;
		char *line = xmalloc(n + 1);

		memcpy(line, start, n);
		line[n] = '\0';
		if (n && line[n - 1] == '\r')
			line[n - 1] = '\0';
		if (regexec(&w->re, line, 0, NULL, 0) == 0) {
			if (nl)
				w->console_pos += n + 1;
			return line;
		}
		free(line);
		if (!nl)
			break;	/* a partial line: look again when it grows */
		w->console_pos += n + 1;
	}
	return NULL;
}

static int
console_check(struct machine *m, struct waiter *w, int64_t now, int64_t *next)
{
	char *hit = console_match(m, w), *res;

	if (!hit)
		return 0;
	res = xasprintf("console %s\n", hit);
	free(hit);
	waiter_end(m, w, 0, res);
	return 1;
}

/* ---- screen -------------------------------------------------------------- */

/* The first line of the screen's text that matches, malloc'd, or NULL. */
static char *
screen_match(struct waiter *w, const char *text, size_t len)
{
	const char *p = text, *end = text + len;

	while (p && p < end) {
		const char *nl = memchr(p, '\n', (size_t)(end - p));
		size_t n = nl ? (size_t)(nl - p) : (size_t)(end - p);
		char *line = xmalloc(n + 1);

		memcpy(line, p, n);
		line[n] = '\0';
		if (n && regexec(&w->re, line, 0, NULL, 0) == 0)
			return line;
		free(line);
		p = nl ? nl + 1 : NULL;
	}
	return NULL;
}

/* A guest wait cannot hold on a machine that is down: 1 when it ended. */
static int
guest_down(struct machine *m, struct waiter *w)
{
	if (m->state != MS_CRASHED && m->state != MS_STOPPED)
		return 0;
	waiter_end(m, w, machine_gone_errno(m), NULL);
	return 1;
}

/* The OCR in flight ended: 1 when the wait ended with it. */
static int
screen_shot_done(struct machine *m, struct waiter *w, int64_t now)
{
	struct screen_poll *sp = w->shot;
	int err = sp->r.result;
	char *hit;

	w->shot = NULL;
	hit = err < 0 ? NULL : screen_match(w, sp->r.data, sp->r.len);
	free(sp->r.data);
	free(sp);
	if (err < 0 && err != -EHOSTDOWN) {
		waiter_end(m, w, err, NULL);
		return 1;
	}
	if (hit) {
		waiter_end(m, w, 0, xasprintf("screen %s\n", hit));
		free(hit);
		return 1;
	}
	poll_later(w, now);
	return 0;
}

/* ---- the guest: commands, files, units, ports ---------------------------- */

static void
poll_submit(struct machine *m, struct waiter *w, int64_t now)
{
	struct strbuf sb;
	struct cmd *c;

	sb_init(&sb);
	if (w->kind == WAIT_FILE || w->kind == WAIT_SOCKET) {
		sb_adds(&sb, w->kind == WAIT_FILE ? "test -e " : "test -S ");
		sb_add_shell_quoted(&sb, w->arg, strlen(w->arg));
	} else if (w->kind == WAIT_UNIT) {
		/* The state and how many jobs systemd has pending at all, as
		 * the NixOS driver decides "inactive for good". A user's
		 * units: in that user's own manager, as that user. */
		if (w->user) {
			sb_adds(&sb, "u=");
			sb_add_shell_quoted(&sb, w->user, strlen(w->user));
			sb_adds(&sb, "; i=$(id -u -- \"$u\") || exit 1; sc() { "
				     "runuser -u \"$u\" -- env "
				     "XDG_RUNTIME_DIR=/run/user/$i systemctl --user "
				     "\"$@\"; }; ");
		} else {
			sb_adds(&sb, "sc() { systemctl \"$@\"; }; ");
		}
		sb_adds(&sb, "s=$(SYSTEMD_COLORS=0 sc --no-pager show -p "
			     "ActiveState --value -- ");
		sb_add_shell_quoted(&sb, w->arg, strlen(w->arg));
		sb_adds(&sb, ") && j=$(sc --no-pager list-jobs --no-legend "
			     "| wc -l) && echo \"$s $j\"");
	} else if (w->kind == WAIT_PORT) {
		/* The guest's own socket table: a listener is state 0A. */
		sb_addf(&sb, "grep -qE '^ *[0-9]+: [0-9A-F]+:%04X [0-9A-F]+:[0-9A-F]+ "
			"0A ' /proc/net/tcp /proc/net/tcp6 2>/dev/null",
			atoi(w->arg));
	} else {
		sb_adds(&sb, w->arg);
	}
	c = cmd_new(m, sb.data, sb.len, w->kind != WAIT_SUCCEEDS &&
					       w->kind != WAIT_FAILS);
	sb_free(&sb);
	c->deadline = w->deadline;
	c->on_update = poll_update;
	c->ctx = w;
	c->out_cap = 0;
	c->out_keep = POLL_OUT_KEEP;
	cmd_submit(c);
	w->poll = c;
	(void)now;
}

/*
 * A unit poll's verdict: 1 held, 0 not yet, -EREMOTEIO never (it failed, or
 * it is inactive with no job pending anywhere, as the NixOS driver says).
 */
static int
unit_verdict(struct machine *m, struct waiter *w, struct cmd *c)
{
	const char *want = w->want ? w->want : "active";
	char state[64] = "";
	int jobs = -1;

	if (c->status || !c->out.data ||
	    sscanf(c->out.data, "%63s %d", state, &jobs) != 2)
		return 0;
	if (!strcmp(state, want))
		return 1;
	if (!strcmp(state, "failed")) {
		machine_logl(m, "wait unit %s: the unit failed", w->arg);
		return -EREMOTEIO;
	}
	if (!strcmp(state, "inactive") && jobs == 0 &&
	    strcmp(want, "inactive")) {
		machine_logl(m, "wait unit %s: the unit is inactive and there are "
			     "no pending jobs", w->arg);
		return -EREMOTEIO;
	}
	return 0;
}

/* A held poll's output for `wait succeeds|fails`, with a marker when it
 * was longer than the poll keeps. */
static char *
poll_output(struct cmd *c)
{
	struct strbuf sb;

	sb_init(&sb);
	if (c->out.len)
		sb_add(&sb, c->out.data, c->out.len);
	if (c->out_dropped)
		sb_addf(&sb, "%s[... %llu bytes dropped: a wait returns the first "
			"%u of its command's output ...]\n",
			sb.len && sb.data[sb.len - 1] != '\n' ? "\n" : "",
			(unsigned long long)c->out_dropped, POLL_OUT_KEEP);
	if (!sb.data)
		sb_adds(&sb, "");
	return sb_detach(&sb, NULL);
}

/* What a held guest wait answers, malloc'd. */
static char *
guest_result(struct waiter *w, struct cmd *c)
{
	switch (w->kind) {
	case WAIT_FILE:
		return xasprintf("file %s\n", w->arg);
	case WAIT_SOCKET:
		return xasprintf("socket %s\n", w->arg);
	case WAIT_PORT:
		return xasprintf("port %s %s\n", w->arg,
				 w->want ? "closed" : "open");
	case WAIT_UNIT:
		return xasprintf("unit %s %s%s%s\n", w->arg,
				 w->want ? w->want : "active",
				 w->user ? " user=" : "", w->user ? w->user : "");
	default:
		return poll_output(c);
	}
}

/*
 * Whether the poll c, which ran to its end, says the wait held: 1 held,
 * 0 not yet, -errno never.
 */
static int
guest_verdict(struct machine *m, struct waiter *w, struct cmd *c)
{
	if (c->err)
		return 0;
	switch (w->kind) {
	case WAIT_UNIT:
		return unit_verdict(m, w, c);
	case WAIT_PORT:
		return w->want ? c->status != 0 : c->status == 0;
	case WAIT_FAILS:
		return c->status != 0;
	default:
		return c->status == 0;
	}
}

/* The poll in flight ended: 1 when the wait ended with it. */
static int
guest_poll_done(struct machine *m, struct waiter *w, int64_t now)
{
	struct cmd *c = w->poll;
	int verdict;

	w->poll = NULL;
	if (c->err && c->err != -ETIMEDOUT && c->err != -EIO) {
		verdict = c->err;
		cmd_put(c);
		waiter_end(m, w, verdict, NULL);
		return 1;
	}
	verdict = guest_verdict(m, w, c);
	if (verdict) {
		char *res = verdict > 0 ? guest_result(w, c) : NULL;

		cmd_put(c);
		waiter_end(m, w, verdict < 0 ? verdict : 0, res);
		return 1;
	}
	cmd_put(c);
	poll_later(w, now);
	return 0;
}

/* ---- polling: the guest and the screen ---------------------------------- */

/* The poll in flight (a command, or the screen's OCR) has ended. */
static int
poll_ended(struct waiter *w)
{
	if (w->shot)
		return w->shot->done;
	return w->poll && w->poll->state == CMD_DONE;
}

/* A wait that polls, one poll at a time, backing off while it does not
 * hold; only a running machine is polled. */
static int
polled_check(struct machine *m, struct waiter *w, int64_t now, int64_t *next)
{
	int screen = w->kind == WAIT_SCREEN;

	if (guest_down(m, w))
		return 1;
	if (poll_ended(w) && (screen ? screen_shot_done(m, w, now) :
				       guest_poll_done(m, w, now)))
		return 1;
	if (!w->shot && !w->poll && now >= w->next_poll &&
	    m->state == MS_RUNNING) {
		if (screen)
			screen_poll_submit(m, w);
		else
			poll_submit(m, w, now);
	}
	/* Not running: the change to running wakes the supervisor
	 * (a past next_poll here would spin it, holding the lock). */
	if (!w->shot && !w->poll && m->state == MS_RUNNING &&
	    w->next_poll < *next)
		*next = w->next_poll;
	return 0;
}

/* ---- the machine's waits ------------------------------------------------- */

/* Check one waiter; 1 when it ended. */
static int
waiter_check(struct machine *m, struct waiter *w, int64_t now, int64_t *next)
{
	if (now >= w->deadline) {
		waiter_end(m, w, -ETIMEDOUT, NULL);
		return 1;
	}
	if (wait_checks[w->kind].check(m, w, now, next))
		return 1;
	if (w->deadline < *next)
		*next = w->deadline;
	return 0;
}

int
waiter_new(struct machine *m, const char *text, size_t len,
	   struct waiter **out)
{
	struct wait_spec spec;
	struct waiter *w;
	int64_t now = now_mono_ms();
	int ret;

	ret = wait_parse(m, text, len, &spec);
	if (ret < 0)
		return ret;
	if (wait_checks[spec.kind].guest) {
		/* A new wait on the guest boots a stopped machine, as a
		 * command does; a parked one never does (halt ends it). */
		ret = machine_needs_guest(m, NULL);
		if (ret < 0) {
			machine_logl(m, "wait: the machine is %s",
				     mstate_name(m->state));
			wait_spec_free(&spec);
			return ret;
		}
	}
	w = xcalloc(1, sizeof(*w));
	w->m = m;
	w->kind = spec.kind;
	w->arg = spec.arg;
	w->want = spec.want;
	w->user = spec.user;
	w->deadline = now + (int64_t)(spec.timeout ? spec.timeout : m->timeout) *
				    1000;
	w->poll_ms = POLL_FIRST_MS;
	w->next_poll = now;
	if (w->kind == WAIT_CONSOLE || w->kind == WAIT_SCREEN) {
		regcomp(&w->re, w->arg, REG_EXTENDED | REG_NOSUB);
		w->has_re = 1;
	}
	*out = w;
	return 0;
}

void
waiter_add(struct machine *m, struct waiter *w, struct mreq *r)
{
	int64_t now = now_mono_ms(), next = now + 60000;

	w->r = r;
	w->next = m->waiters;
	m->waiters = w;
	if (!waiter_check(m, w, now, &next))
		pthread_cond_broadcast(&m->cond);
}

void
waiters_check(struct machine *m, int64_t now, int64_t *next)
{
	struct waiter *w = m->waiters, *n;

	for (; w; w = n) {
		n = w->next;
		waiter_check(m, w, now, next);
	}
}

void
waiters_console_check(struct machine *m)
{
	int64_t now = now_mono_ms(), next = now;
	struct waiter *w = m->waiters, *n;

	for (; w; w = n) {
		n = w->next;
		if (w->kind == WAIT_CONSOLE)
			waiter_check(m, w, now, &next);
	}
}

void
waiters_fail(struct machine *m, int err)
{
	while (m->waiters)
		waiter_end(m, m->waiters, err, NULL);
}

/*
 * The machine is going down (halt, shutdown: -EHOSTDOWN) or died (-EIO):
 * every wait on the guest or its console ends now, so that none of them
 * boots it again. Status waits stay: they are about this very change.
 */
void
waiters_fail_guest(struct machine *m, int err)
{
	struct waiter *w, *n;

	for (w = m->waiters; w; w = n) {
		n = w->next;
		if (w->kind != WAIT_STATUS)
			waiter_end(m, w, err, NULL);
	}
}
