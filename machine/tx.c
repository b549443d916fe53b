/*
 * Transactions (exec, wait, qmp): written, then read on the same open file.
 * And the waits behind <m>/wait: conditions on the machine's status or
 * console wake on the event; conditions on the guest poll it, backing off
 * from 50 ms to 1 s, one command per poll.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "machine/internal.h"
#include "machine/qmp_policy.h"

#define TX_MAX (1u << 20)
#define EXEC_OUT_CAP (1u << 20)
/* A poll's output decides its verdict; `wait succeeds` returns it, this
 * much of it at most, and says so when there was more. */
#define POLL_OUT_KEEP (64u << 10)
#define POLL_FIRST_MS 50
#define POLL_MAX_MS 1000
#define WAIT_REGEX_MAX 2048

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

/* ---- parsing wait conditions ------------------------------------------- */

static const char *const status_words[] = { "stopped", "starting", "running",
					    "paused", "stopping", "crashed" };

struct wait_spec {
	enum wait_kind kind;
	int timeout;              /* 0 = the machine's */
	char *arg;
	char *want;               /* unit: state; port: "closed" */
	char *user;               /* unit: in this user's service manager */
};

static int
parse_wait(struct machine *m, const char *text, size_t len,
	   struct wait_spec *out)
{
	static const struct {
		const char *word;
		enum wait_kind kind;
	} kinds[] = {
		{ "status", WAIT_STATUS }, { "console", WAIT_CONSOLE },
		{ "succeeds", WAIT_SUCCEEDS }, { "fails", WAIT_FAILS },
		{ "file", WAIT_FILE }, { "unit", WAIT_UNIT },
		{ "port", WAIT_PORT }, { "screen", WAIT_SCREEN },
		{ "socket", WAIT_SOCKET },
	};
	char *s, *p, *word;
	size_t i;

	memset(out, 0, sizeof(*out));
	while (len && (text[len - 1] == '\n' || text[len - 1] == ' '))
		len--;
	if (memchr(text, '\0', len)) {
		machine_logl(m, "wait: the condition contains a NUL byte");
		return -EINVAL;
	}
	s = xmalloc(len + 1);
	memcpy(s, text, len);
	s[len] = '\0';
	p = s;
	while (*p == ' ')
		p++;
	if (!strncmp(p, "timeout=", 8)) {
		char *end;
		long v = strtol(p + 8, &end, 10);

		if (end == p + 8 || *end != ' ' || v <= 0 || v > 86400 * 365) {
			machine_logl(m, "wait: bad timeout in '%s' (expected "
				     "timeout=SECS)", s);
			free(s);
			return -EINVAL;
		}
		out->timeout = (int)v;
		p = end;
		while (*p == ' ')
			p++;
	}
	word = p;
	while (*p && *p != ' ')
		p++;
	if (*p)
		*p++ = '\0';
	while (*p == ' ')
		p++;
	for (i = 0; i < sizeof(kinds) / sizeof(kinds[0]); i++)
		if (!strcmp(word, kinds[i].word))
			break;
	if (i == sizeof(kinds) / sizeof(kinds[0])) {
		machine_logl(m, "wait: unknown condition '%s' (expected: "
			     "[timeout=SECS] status WORD | console REGEX | "
			     "succeeds CMD | fails CMD | file PATH | unit NAME "
			     "[STATE] | port N [closed] | socket PATH | "
			     "screen REGEX)", word);
		free(s);
		return -EINVAL;
	}
	out->kind = kinds[i].kind;
	if (!*p) {
		machine_logl(m, "wait: '%s' needs an argument", word);
		free(s);
		return -EINVAL;
	}
	if (out->kind == WAIT_STATUS) {
		size_t j;

		for (j = 0; j < 6; j++)
			if (!strcmp(p, status_words[j]))
				break;
		if (j == 6) {
			machine_logl(m, "wait: unknown status '%s' (expected: "
				     "stopped | starting | running | paused | "
				     "stopping | crashed)", p);
			free(s);
			return -EINVAL;
		}
	}
	if ((out->kind == WAIT_CONSOLE || out->kind == WAIT_SCREEN) &&
	    regex_cost(p) > WAIT_REGEX_MAX) {
		/* regcomp would hold the lock for minutes and take gigabytes */
		machine_logl(m, "wait: regular expression '%.200s' too big: "
			     "repetitions expand it past %d elements, or it has "
			     "back-references", p, WAIT_REGEX_MAX);
		free(s);
		return -EINVAL;
	}
	if (out->kind == WAIT_CONSOLE || out->kind == WAIT_SCREEN) {
		regex_t re;
		int rc = regcomp(&re, p, REG_EXTENDED | REG_NOSUB);

		if (rc) {
			char msg[256];

			regerror(rc, &re, msg, sizeof(msg));
			machine_logl(m, "wait: bad regular expression '%s': %s",
				     p, msg);
			free(s);
			return -EINVAL;
		}
		regfree(&re);
	}
	if (out->kind == WAIT_UNIT || out->kind == WAIT_PORT) {
		char *second = strchr(p, ' '), *third = NULL, *user = NULL;

		if (second) {
			*second++ = '\0';
			while (*second == ' ')
				second++;
			third = strchr(second, ' ');
		}
		if (third) {
			*third++ = '\0';
			while (*third == ' ')
				third++;
		}
		/* unit NAME [STATE] [user=NAME] */
		if (out->kind == WAIT_UNIT && third &&
		    !strncmp(third, "user=", 5)) {
			user = third + 5;
			third = NULL;
		} else if (out->kind == WAIT_UNIT && second && !third &&
			   !strncmp(second, "user=", 5)) {
			user = second + 5;
			second = NULL;
		}
		if (third || (second && strchr(second, ' '))) {
			machine_logl(m, "wait: %s: unexpected '%s'", word,
				     third ? third : second);
			free(s);
			return -EINVAL;
		}
		if (user && (!*user || strspn(user, "abcdefghijklmnopqrstuvwxyz"
						    "ABCDEFGHIJKLMNOPQRSTUVWXYZ"
						    "0123456789_.-") != strlen(user))) {
			machine_logl(m, "wait: unit: bad user name '%s'", user);
			free(s);
			return -EINVAL;
		}
		if (out->kind == WAIT_PORT) {
			char *end;
			long port = strtol(p, &end, 10);

			if (*end || port <= 0 || port > 65535 ||
			    (second && strcmp(second, "closed"))) {
				machine_logl(m, "wait: port: expected 'port N "
					     "[closed]' with 1 <= N <= 65535");
				free(s);
				return -EINVAL;
			}
		} else if (second && strspn(second, "abcdefghijklmnopqrstuvwxyz-") !=
						 strlen(second)) {
			machine_logl(m, "wait: unit: bad state '%s'", second);
			free(s);
			return -EINVAL;
		}
		out->want = second && *second ? xstrdup(second) : NULL;
		out->user = user ? xstrdup(user) : NULL;
	}
	out->arg = xstrdup(p);
	free(s);
	return 0;
}

int
tx_wait_parse(struct machine *m, const char *text, size_t len)
{
	struct wait_spec spec;
	int ret = parse_wait(m, text, len, &spec);

	if (ret == 0) {
		free(spec.arg);
		free(spec.want);
		free(spec.user);
	}
	return ret;
}

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

/* The wait is over: answer its reader. */
static void
waiter_end(struct machine *m, struct waiter *w, int err, char *result)
{
	struct mtx *tx = w->r ? w->r->priv_data : NULL;

	waiter_unlink(m, w);
	w->done = 1;
	if (err)
		machine_logl(m, "wait %s %s: %s", w->kind == WAIT_STATUS ? "status" :
			     w->kind == WAIT_CONSOLE ? "console" :
			     w->kind == WAIT_SUCCEEDS ? "succeeds" :
			     w->kind == WAIT_FAILS ? "fails" :
			     w->kind == WAIT_UNIT ? "unit" :
			     w->kind == WAIT_PORT ? "port" :
			     w->kind == WAIT_SCREEN ? "screen" :
			     w->kind == WAIT_SOCKET ? "socket" : "file", w->arg,
			     err == -ETIMEDOUT ? "timed out" : strerror(-err));
	if (tx) {
		tx->w = NULL;
		tx->reading = NULL;
		if (result)
			sb_adds(&tx->result, result);
		tx->err = err;
		if (err) {
			tx->err_reported = 1;
			mreq_finish(m, w->r, err);
		} else {
			struct mreq *r = w->r;
			size_t n = tx->result.len < r->size ? tx->result.len :
							       r->size;

			r->data = xmalloc(n + 1);
			memcpy(r->data, tx->result.data, n);
			r->len = n;
			tx->served = n;
			mreq_finish(m, r, 0);
		}
	}
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
guest_kind(enum wait_kind k)
{
	return k == WAIT_SUCCEEDS || k == WAIT_FAILS || k == WAIT_FILE ||
	       k == WAIT_SOCKET ||
	       k == WAIT_UNIT || k == WAIT_PORT;
}

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

/* A poll did not hold: the next one after the back-off, which doubles. */
static void
poll_later(struct waiter *w, int64_t now)
{
	w->next_poll = now + w->poll_ms;
	w->poll_ms = w->poll_ms * 2 > POLL_MAX_MS ? POLL_MAX_MS : w->poll_ms * 2;
}

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

/* Check one waiter; 1 when it ended. */
static int
waiter_check(struct machine *m, struct waiter *w, int64_t now, int64_t *next)
{
	char *hit;

	if (now >= w->deadline) {
		waiter_end(m, w, -ETIMEDOUT, NULL);
		return 1;
	}
	switch (w->kind) {
	case WAIT_STATUS:
		if (!strcmp(mstate_name(m->state), w->arg)) {
			waiter_end(m, w, 0, xasprintf("status %s\n", w->arg));
			return 1;
		}
		break;
	case WAIT_CONSOLE:
		hit = console_match(m, w);
		if (hit) {
			char *res = xasprintf("console %s\n", hit);

			free(hit);
			waiter_end(m, w, 0, res);
			return 1;
		}
		break;
	case WAIT_SCREEN:
		if (m->state == MS_CRASHED || m->state == MS_STOPPED) {
			waiter_end(m, w, m->state == MS_CRASHED ? -EIO :
				   -EHOSTDOWN, NULL);
			return 1;
		}
		if (w->shot && w->shot->done) {
			struct screen_poll *sp = w->shot;
			int err = sp->r.result;

			w->shot = NULL;
			hit = err < 0 ? NULL : screen_match(w, sp->r.data,
							    sp->r.len);
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
		}
		if (!w->shot && now >= w->next_poll && m->state == MS_RUNNING)
			screen_poll_submit(m, w);
		/* Not running: the change to running wakes the supervisor
		 * (a past next_poll here would spin it, holding the lock). */
		if (!w->shot && m->state == MS_RUNNING && w->next_poll < *next)
			*next = w->next_poll;
		break;
	case WAIT_SUCCEEDS:
	case WAIT_FAILS:
	case WAIT_FILE:
	case WAIT_SOCKET:
	case WAIT_UNIT:
	case WAIT_PORT:
		if (m->state == MS_CRASHED || m->state == MS_STOPPED) {
			waiter_end(m, w, m->state == MS_CRASHED ? -EIO :
				   -EHOSTDOWN, NULL);
			return 1;
		}
		if (w->poll && w->poll->state == CMD_DONE) {
			struct cmd *c = w->poll;
			int held;

			w->poll = NULL;
			if (c->err && c->err != -ETIMEDOUT && c->err != -EIO) {
				cmd_put(c);
				waiter_end(m, w, c->err, NULL);
				return 1;
			}
			if (w->kind == WAIT_UNIT && !c->err) {
				int r = unit_verdict(m, w, c);

				if (r) {
					cmd_put(c);
					waiter_end(m, w, r < 0 ? r : 0, r > 0 ?
						   xasprintf("unit %s %s%s%s\n", w->arg,
							     w->want ? w->want :
								       "active",
							     w->user ? " user=" : "",
							     w->user ? w->user : "") :
						   NULL);
					return 1;
				}
				held = 0;
			} else if (w->kind == WAIT_PORT) {
				held = !c->err && (w->want ? c->status != 0 :
							    c->status == 0);
			} else {
				held = !c->err &&
				       (w->kind == WAIT_FAILS ? c->status != 0 :
								c->status == 0);
			}
			if (held) {
				char *res;

				if (w->kind == WAIT_FILE)
					res = xasprintf("file %s\n", w->arg);
				else if (w->kind == WAIT_SOCKET)
					res = xasprintf("socket %s\n", w->arg);
				else if (w->kind == WAIT_PORT)
					res = xasprintf("port %s %s\n", w->arg,
							w->want ? "closed" :
								  "open");
				else
					res = poll_output(c);
				cmd_put(c);
				waiter_end(m, w, 0, res);
				return 1;
			}
			cmd_put(c);
			poll_later(w, now);
		}
		if (!w->poll && now >= w->next_poll && m->state == MS_RUNNING)
			poll_submit(m, w, now);
		if (!w->poll && m->state == MS_RUNNING && w->next_poll < *next)
			*next = w->next_poll;
		break;
	}
	if (w->deadline < *next)
		*next = w->deadline;
	return 0;
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

static void
wait_read_cancel(struct mreq *r)
{
	struct mtx *tx = r->priv_data;
	struct waiter *w = tx->w;

	if (!w)
		return;
	w->r = NULL;
	tx->w = NULL;
	tx->reading = NULL;
	tx->err = -EINTR;
	tx->err_reported = 1;
	waiter_unlink(tx->m, w);
	waiter_free(w);
	mreq_finish(tx->m, r, -EINTR);
}

static void
wait_start(struct mtx *tx, struct mreq *r)
{
	struct machine *m = tx->m;
	struct wait_spec spec;
	struct waiter *w;
	int64_t now = now_mono_ms(), next = now + 60000;
	int ret;

	ret = parse_wait(m, tx->in.data ? tx->in.data : "", tx->in.len, &spec);
	if (ret < 0) {
		tx->err = ret;
		tx->err_reported = 1;
		mreq_finish(m, r, ret);
		return;
	}
	if (guest_kind(spec.kind) || spec.kind == WAIT_SCREEN) {
		/* A new wait on the guest boots a stopped machine, as a
		 * command does; a parked one never does (halt ends it). */
		ret = machine_needs_guest(m, NULL);
		if (ret < 0) {
			machine_logl(m, "wait: the machine is %s",
				     mstate_name(m->state));
			free(spec.arg);
			free(spec.want);
			free(spec.user);
			tx->err_reported = 1;
			mreq_finish(m, r, ret);
			return;
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
	w->r = r;
	tx->w = w;
	tx->reading = r;
	mreq_park(m, r, wait_read_cancel, tx);
	w->next = m->waiters;
	m->waiters = w;
	if (!waiter_check(m, w, now, &next))
		pthread_cond_broadcast(&m->cond);
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
			struct wait_spec spec;
			int r = parse_wait(m, tx->in.data, tx->in.len, &spec);

			free(spec.arg);
			free(spec.want);
			free(spec.user);
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
	if (tx->w) {
		waiter_unlink(m, tx->w);
		tx->w->r = NULL;
		waiter_free(tx->w);
	}
	machine_unlock(m);
	sb_free(&tx->in);
	sb_free(&tx->result);
	free(tx);
}
