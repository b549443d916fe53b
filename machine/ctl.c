/* The control messages: a machine's ctl and the mount's /ctl. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "machine/internal.h"

static void
cancel_stop_waiter(struct mreq *r)
{
	struct machine *m = r->priv_machine;

	mreq_unlink(&m->stop_waiters, r);
	mreq_finish(m, r, -EINTR);
}

/* ---- control messages ------------------------------------------------ */

static void
ctl_start(struct machine *m, char **argv, struct mreq *r)
{
	machine_start_locked(m, r);
}

static void
park_stop(struct machine *m, struct mreq *r)
{
	mreq_park(m, r, cancel_stop_waiter, NULL);
	r->priv_next = m->stop_waiters;
	m->stop_waiters = r;
}

/*
 * The machine goes down (halt, shutdown: -EHOSTDOWN): every parked wait on
 * the guest and every command, queued or running, fails now instead of
 * waiting for the VMM to go, and none of them can boot it again.
 */
static void
fail_parked(struct machine *m, int err)
{
	struct cmd *c;
	size_t i;

	waiters_fail_guest(m, err);
	mop_fail_vmm(m, err);
	while ((c = m->queue))
		cmd_abandon(c, err);
	for (i = 0; i < m->n_shells; i++) {
		c = m->shells[i].cur;
		if (c && !c->cancelled)
			cmd_abandon(c, err);
	}
}

static void
ctl_halt(struct machine *m, char **argv, struct mreq *r)
{
	struct mop *launch;

	if (m->state == MS_STOPPED || m->state == MS_CRASHED) {
		if (m->state == MS_CRASHED)
			machine_set_state(m, MS_STOPPED, "halted");
		mreq_finish(m, r, 0);
		return;
	}
	launch = mop_find(m, "launch");
	m->state = MS_STOPPING;
	m->shutdown_by = 0;
	vmset_event(m->set, m->cfg.name, "stopping", "halt");
	machine_log_line(m, "halt");
	fail_parked(m, -EHOSTDOWN);
	if (launch) {
		mop_drop(m, launch, 0);
		machine_set_state(m, MS_STOPPED, "halted before launch");
		mreq_finish(m, r, 0);
		return;
	}
	machine_halt_locked(m);
	park_stop(m, r);
}

static void
ctl_shutdown(struct machine *m, char **argv, struct mreq *r)
{
	struct cmd *c;

	if (m->state == MS_STOPPED || m->state == MS_CRASHED) {
		mreq_finish(m, r, 0);
		return;
	}
	if (m->state != MS_RUNNING) {
		/* No shell to ask: as the NixOS driver would, just stop it. */
		ctl_halt(m, argv, r);
		return;
	}
	m->state = MS_STOPPING;
	vmset_event(m->set, m->cfg.name, "stopping", "shutdown");
	machine_log_line(m, "shutdown: asking the guest to power off");
	fail_parked(m, -EHOSTDOWN);
	c = cmd_new(m, "poweroff", 8, 1);
	c->deadline = now_mono_ms() + (int64_t)m->timeout * 1000;
	m->shutdown_by = c->deadline;
	cmd_submit(c);
	cmd_put(c);
	park_stop(m, r);
}

static void
ctl_reboot(struct machine *m, char **argv, struct mreq *r)
{
	if (m->state != MS_RUNNING) {
		machine_logl(m, "reboot: the machine is %s, not running",
			 mstate_name(m->state));
		mreq_finish(m, r, m->state == MS_STARTING ? -EBUSY : -EHOSTDOWN);
		return;
	}
	shellpool_send_raw(m, "reboot\n");
	m->reboot_asked = 1;
	shellpool_reset(m);
	machine_set_state(m, MS_STARTING, "reboot");
	m->started_ms = now_mono_ms();
	machine_start_locked(m, r);
}

/* A verb on the running VMM: the supervisor runs it, in order. */
static void
ctl_queue(struct machine *m, const char *verb, mop_run_fn *run,
	  struct mreq *r)
{
	struct mop *op = mop_new(verb, run, r);

	op->mo_vmm = 1;
	mop_push(m, op);
}

static void
run_crash(struct machine *m, struct mop *op)
{
	struct backend *be = m->be;
	struct mreq *r;

	if (!be) {
		machine_log_line(m, "crash: the machine is not running");
		mop_finish(m, op, -EHOSTDOWN);
		return;
	}
	machine_log_line(m, "crash: killing the VMM");
	machine_unlock(m);
	m->ops->kill(be);
	machine_lock(m);
	r = mop_take_req(op);
	/* Done once the VMM's exit is seen (it may have been already). */
	if (r && m->be == be)
		park_stop(m, r);
	else if (r)
		mreq_finish(m, r, 0);
}

static void
ctl_crash(struct machine *m, char **argv, struct mreq *r)
{
	ctl_queue(m, "crash", run_crash, r);
}

static void
run_pause(struct machine *m, struct mop *op)
{
	struct backend *be = m->be;
	int ret;

	if (m->state != MS_RUNNING || !be) {
		machine_logl(m, "pause: the machine is %s", mstate_name(m->state));
		mop_finish(m, op, -EHOSTDOWN);
		return;
	}
	machine_unlock(m);
	ret = m->ops->pause(be);
	machine_lock(m);
	/* Also when the caller gave up meanwhile: the state is the VMM's. */
	if (ret == 0 && m->be == be && m->state == MS_RUNNING)
		machine_set_state(m, MS_PAUSED, "paused");
	mop_finish(m, op, ret);
}

static void
ctl_pause(struct machine *m, char **argv, struct mreq *r)
{
	if (!(m->ops->caps & BACKEND_CAP_PAUSE)) {
		machine_logl(m, "pause: the %s backend cannot pause", m->ops->name);
		mreq_finish(m, r, -EOPNOTSUPP);
		return;
	}
	ctl_queue(m, "pause", run_pause, r);
}

static void
run_resume(struct machine *m, struct mop *op)
{
	struct backend *be = m->be;
	int ret;

	if (m->state != MS_PAUSED || !be) {
		mop_finish(m, op, m->state == MS_RUNNING ? 0 : -EHOSTDOWN);
		return;
	}
	machine_unlock(m);
	ret = m->ops->resume(be);
	machine_lock(m);
	if (ret == 0 && m->be == be && m->state == MS_PAUSED)
		machine_set_state(m, shellpool_ready(m) ? MS_RUNNING : MS_STARTING,
				  "resumed");
	mop_finish(m, op, ret);
}

static void
ctl_resume(struct machine *m, char **argv, struct mreq *r)
{
	ctl_queue(m, "resume", run_resume, r);
}

static void
ctl_timeout(struct machine *m, char **argv, struct mreq *r)
{
	int secs;

	if (secs_parse(argv[1], &secs) < 0) {
		machine_logl(m, "ctl: timeout: '%s' is not a positive number of "
			 "seconds", argv[1]);
		mreq_finish(m, r, -EINVAL);
		return;
	}
	m->timeout = secs;
	machine_logl(m, "timeout %d s", secs);
	mreq_finish(m, r, 0);
}

struct ctl_verb {
	const char *name;
	int nargs;
	int optargs;        /* how many more may follow */
	void (*fn)(struct machine *m, char **argv, struct mreq *r);
	const char *usage;
};

static const struct ctl_verb verbs[] = {
	{ "start", 0, 0, ctl_start, "start" },
	{ "shutdown", 0, 0, ctl_shutdown, "shutdown" },
	{ "halt", 0, 0, ctl_halt, "halt" },
	{ "reboot", 0, 0, ctl_reboot, "reboot" },
	{ "crash", 0, 0, ctl_crash, "crash" },
	{ "pause", 0, 0, ctl_pause, "pause" },
	{ "resume", 0, 0, ctl_resume, "resume" },
	{ "timeout", 1, 0, ctl_timeout, "timeout SECS" },
	{ "snapshot", 1, 0, snapshot_ctl_take, "snapshot NAME" },
	{ "restore", 1, 0, snapshot_ctl_restore, "restore NAME" },
	{ "clone", 1, 1, clone_ctl, "clone NEWNAME [SNAPSHOT]" },
	{ "block", 0, 0, net_ctl_block, "block" },
	{ "unblock", 0, 0, net_ctl_unblock, "unblock" },
	{ "forward", 1, 0, net_ctl_forward, "forward tcp:HOSTPORT:GUESTPORT" },
};

/* Split a message into words; the message must be one line. */
static int
split_words(const char *msg, size_t len, char **words, int max, char **buf)
{
	char *s, *save = NULL, *w;
	int n = 0;

	while (len && (msg[len - 1] == '\n' || msg[len - 1] == ' '))
		len--;
	if (memchr(msg, '\n', len) || memchr(msg, '\0', len))
		return -EINVAL;
	s = xmalloc(len + 1);
	memcpy(s, msg, len);
	s[len] = '\0';
	*buf = s;
	for (w = strtok_r(s, " \t", &save); w; w = strtok_r(NULL, " \t", &save)) {
		if (n == max)
			return -E2BIG;
		words[n++] = w;
	}
	return n;
}

static void
ctl_usage(struct strbuf *sb)
{
	size_t i;

	for (i = 0; i < sizeof(verbs) / sizeof(verbs[0]); i++)
		sb_addf(sb, "%s%s", i ? " | " : "", verbs[i].usage);
}

void
machine_ctl(struct machine *m, const char *msg, size_t len, struct mreq *r)
{
	char *words[9] = { NULL }, *buf = NULL;
	int n = split_words(msg, len, words, 8, &buf);
	size_t i;

	machine_lock(m);
	if (n <= 0) {
		struct strbuf u;

		sb_init(&u);
		ctl_usage(&u);
		machine_log_line(m, n == 0 ? "ctl: empty message (expected: " :
				     "ctl: one message per line, please "
				     "(expected: ");
		machine_log_line(m, u.data);
		sb_free(&u);
		mreq_finish(m, r, -EINVAL);
		goto out;
	}
	for (i = 0; i < sizeof(verbs) / sizeof(verbs[0]); i++) {
		if (strcmp(words[0], verbs[i].name))
			continue;
		if (n - 1 < verbs[i].nargs ||
		    n - 1 > verbs[i].nargs + verbs[i].optargs) {
			machine_logl(m, "ctl: '%s' takes %d argument(s): %s",
				 verbs[i].name, verbs[i].nargs, verbs[i].usage);
			mreq_finish(m, r, -EINVAL);
			goto out;
		}
		verbs[i].fn(m, words, r);
		/* The supervisor acts on what the verb asked for. */
		pthread_cond_broadcast(&m->cond);
		goto out;
	}
	{
		struct strbuf u;

		sb_init(&u);
		ctl_usage(&u);
		machine_logl(m, "ctl: unknown command '%s' (expected: %s)",
			 words[0], u.data);
		sb_free(&u);
	}
	mreq_finish(m, r, -EINVAL);
out:
	machine_unlock(m);
	free(buf);
}
/* start-all and friends: one child request per machine, done when all are. */
struct group {
	pthread_mutex_t lock;       /* pending and result */
	struct mreq *outer;
	int pending;
	int total;
	int result;
	struct mreq *children;
};

/* One part less to wait for (result: its result); the last one ends g. */
static void
group_put(struct group *g, int result)
{
	int last;

	pthread_mutex_lock(&g->lock);
	if (result < 0 && g->result == 0)
		g->result = result;
	last = --g->pending == 0;
	pthread_mutex_unlock(&g->lock);
	if (!last)
		return;
	g->outer->result = g->result;
	g->outer->priv_cancel = NULL;
	g->outer->done(g->outer);
	pthread_mutex_destroy(&g->lock);
	free(g->children);
	free(g);
}

static void
group_child_done(struct mreq *r)
{
	group_put(r->owner, r->result);
}

/* The children may finish inside mreq_cancel: g is held meanwhile. */
static void
group_cancel(struct mreq *outer)
{
	struct group *g = outer->priv_data;
	size_t i, n = (size_t)g->total;

	pthread_mutex_lock(&g->lock);
	g->pending++;
	pthread_mutex_unlock(&g->lock);
	for (i = 0; i < n; i++)
		mreq_cancel(&g->children[i]);
	group_put(g, 0);
}

/* The machines in the tree now (clones removed by rmdir are not): a
 * malloc'd array, its length in *n. */
static struct machine **
vmset_live(struct vmset *s, size_t *n)
{
	struct machine **live, *m;
	size_t i, k = 0, total = __atomic_load_n(&s->n_machines,
						 __ATOMIC_ACQUIRE);

	live = xcalloc(total ? total : 1, sizeof(*live));
	for (i = 0; i < total; i++) {
		m = s->machines[i];
		if (!machine_removed(m))
			live[k++] = m;
	}
	*n = k;
	return live;
}

void
vmset_ctl(struct vmset *s, const char *msg, size_t len, struct mreq *r)
{
	static const char *const names[] = { "start-all", "shutdown-all",
					     "halt-all" };
	static const char *const verbs_of[] = { "start", "shutdown", "halt" };
	size_t n = len, i, which, count;
	struct machine **live;
	struct group *g;

	while (n && (msg[n - 1] == '\n' || msg[n - 1] == ' '))
		n--;
	for (which = 0; which < 3; which++)
		if (strlen(names[which]) == n && !memcmp(msg, names[which], n))
			break;
	live = vmset_live(s, &count);
	if (which == 3) {
		for (i = 0; i < count; i++)
			machine_log(live[i], "/ctl: unknown command '%.*s' "
				    "(expected: start-all | shutdown-all | "
				    "halt-all)", (int)(n > 64 ? 64 : n), msg);
		free(live);
		r->result = -EINVAL;
		r->done(r);
		return;
	}
	if (!count) {
		free(live);
		r->result = 0;
		r->done(r);
		return;
	}
	g = xcalloc(1, sizeof(*g));
	pthread_mutex_init(&g->lock, NULL);
	g->outer = r;
	g->pending = (int)count;
	g->total = g->pending;
	r->priv_machine = NULL;
	r->priv_cancel = group_cancel;
	r->priv_data = g;
	g->children = xcalloc(count, sizeof(*g->children));
	for (i = 0; i < count; i++) {
		g->children[i].done = group_child_done;
		g->children[i].owner = g;
	}
	/* The children may all finish inline; g must not be touched after. */
	for (i = 0; i < count; i++) {
		const char *v = verbs_of[which];

		machine_ctl(live[i], v, strlen(v), &g->children[i]);
	}
	free(live);
}
