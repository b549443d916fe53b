/*
 * A machine's lifecycle: its states, the backend's callbacks, launch and
 * halt, and the supervisor thread that runs lifecycle actions, deadlines
 * and waits.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>

#include "machine/internal.h"

#define BANNER_HINT_MS 30000

static void
cancel_start_waiter(struct mreq *r)
{
	struct machine *m = r->priv_machine;

	mreq_unlink(&m->start_waiters, r);
	mreq_finish(m, r, -EINTR);
}

/* In order: the pool serves (or hvc0 alone), then the networks are set up
 * (their script runs on the pool). */
static const struct hold_step hold_steps[] = {
	{ bootstrap_hold_start, bootstrap_reset, bootstrap_check },
	{ net_hold_start, net_reset, NULL },
};

#define N_HOLD_STEPS (sizeof(hold_steps) / sizeof(hold_steps[0]))

static int
holds_running(struct machine *m)
{
	size_t i;

	for (i = 0; i < N_HOLD_STEPS; i++)
		if (hold_steps[i].hold(m))
			return 1;
	return 0;
}

static void
holds_reset(struct machine *m)
{
	size_t i;

	for (i = N_HOLD_STEPS; i-- > 0;)
		hold_steps[i].reset(m);
}

static void
holds_check(struct machine *m, int64_t now, int64_t *next)
{
	size_t i;

	for (i = 0; i < N_HOLD_STEPS; i++)
		if (hold_steps[i].check)
			hold_steps[i].check(m, now, next);
}

void
hold_cmd_submit(struct machine *m, struct cmd **slot,
		const struct strbuf *script, int64_t deadline,
		void (*on_update)(struct cmd *c))
{
	struct cmd *c = cmd_new(m, script->data, script->len, 1);

	c->deadline = deadline;
	c->on_update = on_update;
	c->ctx = m;
	*slot = c;
	cmd_submit(c);
}

void
hold_cmd_forget(struct cmd **slot)
{
	struct cmd *c = *slot;

	if (!c)
		return;
	*slot = NULL;
	c->on_update = NULL;
	c->ctx = NULL;
	if (c->state == CMD_QUEUED)
		cmd_cancel(c, -ECANCELED);
	cmd_put(c);
}

void
machine_set_state(struct machine *m, enum mstate st, const char *why)
{
	if (m->state == st)
		return;
	/* The guest's shells may answer while launch() has yet to return
	 * (a loaded host, a restore): until the supervisor has the VMM
	 * (vmm_launched) the machine is not running, else snapshot, pause
	 * or qmp right after the start would find no VMM (EHOSTDOWN). */
	if (st == MS_RUNNING && m->state == MS_STARTING &&
	    (!m->be || holds_running(m)))
		return;
	m->state = st;
	if (st != MS_STARTING)
		m->reboot_asked = 0;
	if (st == MS_STARTING || st == MS_STOPPED || st == MS_CRASHED)
		holds_reset(m);
	if (st == MS_RUNNING) {
		/* Commands held while it started may go now. */
		shellpool_kick(m);
		mreq_finish_all(m, &m->start_waiters, 0);
		if (m->set->opt.foreground)
			fprintf(stderr, "%s: running (%lld ms after launch)\n",
				m->cfg.name,
				(long long)(now_mono_ms() - m->started_ms));
	}
	if (st == MS_STOPPED || st == MS_CRASHED) {
		mreq_finish_all(m, &m->start_waiters, -EIO);
		mreq_finish_all(m, &m->stop_waiters, 0);
		/* Nothing parked may boot it again (halt failed them already). */
		waiters_fail_guest(m, machine_gone_errno(m));
	}
	machine_log_line(m, why ? why : mstate_name(st));
	vmset_event(m->set, m->cfg.name, mstate_name(st), why);
	pthread_cond_broadcast(&m->cond);
}

/* ---- backend callbacks (backend threads, no lock held) --------------- */

static void run_launch(struct machine *m, struct mop *op);

/* A reboot whose VMM ended cleanly with the guest's reset, as Firecracker
 * does: the reboot goes on in a new VMM. With the lock. */
static int
reboot_relaunch(struct machine *m, int status)
{
	int asked = m->reboot_asked;

	m->reboot_asked = 0;
	if (!asked || m->state != MS_STARTING || !WIFEXITED(status) ||
	    WEXITSTATUS(status) != 0)
		return 0;
	machine_log_line(m, "the VMM ended with the guest's reset: starting "
			 "a new one");
	mop_push_front(m, mop_new("launch", run_launch, NULL));
	pthread_cond_broadcast(&m->cond);
	return 1;
}

static void
on_exited(void *owner, int status)
{
	struct machine *m = owner;
	char why[128];

	if (WIFEXITED(status))
		snprintf(why, sizeof(why), "the VMM exited with status %d",
			 WEXITSTATUS(status));
	else if (WIFSIGNALED(status))
		snprintf(why, sizeof(why), "the VMM was killed by signal %d",
			 WTERMSIG(status));
	else
		snprintf(why, sizeof(why), "the VMM is gone");
	machine_lock(m);
	m->vmm_exited = 1;
	if (m->be)
		m->dead_be = m->be;
	m->be = NULL;
	shellpool_vmm_gone(m);
	if (!reboot_relaunch(m, status))
		machine_set_state(m, m->state == MS_STOPPING ? MS_STOPPED :
				  MS_CRASHED, why);
	machine_unlock(m);
}

static void
on_vm_event(void *owner, const char *name, const char *detail)
{
	struct machine *m = owner;

	machine_lock(m);
	vmset_event(m->set, m->cfg.name, name, detail);
	if (!strcmp(name, "RESET") &&
	    (m->state == MS_RUNNING || m->state == MS_PAUSED)) {
		shellpool_reset(m);
		machine_set_state(m, MS_STARTING, "the guest reset");
	} else if (!strcmp(name, "GUEST_PANICKED")) {
		machine_log_line(m, "the guest kernel panicked");
	}
	machine_unlock(m);
}

static void
on_backend_log(void *owner, const char *text)
{
	machine_log(owner, "%s", text);
}

static void
on_channel(void *owner, size_t index, int fd)
{
	struct machine *m = owner;

	machine_lock(m);
	shellpool_adopt(m, index, fd);
	machine_unlock(m);
}

static const struct backend_events events = {
	.exited = on_exited,
	.vm_event = on_vm_event,
	.log = on_backend_log,
	.channel = on_channel,
};

/* ---- lifecycle --------------------------------------------------------- */

/* How a stopped machine starts: its launch queued last or next, or none
 * (a VMM is there already). */
enum start_how { START_LAST, START_NEXT, START_ADOPT };

static void
start_begin(struct machine *m, enum start_how how)
{
	m->state = MS_STARTING;
	m->started_ms = now_mono_ms();
	holds_reset(m);
	vmset_event(m->set, m->cfg.name, "starting", NULL);
	machine_log_line(m, "starting");
	if (how == START_LAST)
		mop_push(m, mop_new("launch", run_launch, NULL));
	else if (how == START_NEXT)
		mop_push_front(m, mop_new("launch", run_launch, NULL));
}

static void
start_locked(struct machine *m, struct mreq *r, enum start_how how)
{
	switch (m->state) {
	case MS_RUNNING:
	case MS_PAUSED:
		if (r)
			mreq_finish(m, r, 0);
		return;
	case MS_STOPPING:
		machine_log_line(m, "start: the machine is stopping");
		if (r)
			mreq_finish(m, r, -EBUSY);
		return;
	case MS_STARTING:
		break;
	case MS_STOPPED:
	case MS_CRASHED:
		if (m->removed) {
			machine_log_line(m, "start: the clone was removed (rmdir)");
			if (r)
				mreq_finish(m, r, -ENOENT);
			return;
		}
		start_begin(m, how);
		break;
	}
	if (r) {
		mreq_park(m, r, cancel_start_waiter, NULL);
		r->priv_next = m->start_waiters;
		m->start_waiters = r;
	}
	pthread_cond_broadcast(&m->cond);
}

void
machine_start_locked(struct machine *m, struct mreq *r)
{
	start_locked(m, r, START_LAST);
}

/* A restore is one action: its launch comes before whatever is queued. */
void
machine_start_next(struct machine *m, struct mreq *r)
{
	start_locked(m, r, START_NEXT);
}

/*
 * Commands need the guest: a stopped machine is started first, as the NixOS
 * driver does. Returns 0 when the command may be queued, else -errno.
 */
int
machine_needs_guest(struct machine *m, struct mreq *r)
{
	if (m->state == MS_STOPPED) {
		if (m->removed) {
			machine_log_line(m, "the clone was removed (rmdir)");
			return -ENOENT;
		}
		machine_start_locked(m, NULL);
		return 0;
	}
	if (m->state == MS_CRASHED) {
		machine_log_line(m, "the machine crashed; `echo start > ctl` boots it "
			 "again");
		return machine_gone_errno(m);
	}
	if (m->state == MS_STOPPING)
		return machine_gone_errno(m);
	return 0;
}

/* The snapshot files of a launch: used (or not), let go. */
void
machine_launch_files_forget(struct machine *m)
{
	struct snapshot_files f = {
		.state = m->launch_incoming,
		.disks = m->launch_disks,
		.ram = m->launch_ram,
	};

	snapshot_files_free(&f);
	m->launch_incoming = NULL;
	m->launch_disks = NULL;
	m->launch_ram = NULL;
}

char *
machine_ram_path(struct machine *m)
{
	if (!(m->ops->caps & BACKEND_CAP_SNAPSHOT) || m->cfg.start_command)
		return NULL;
	return xasprintf("%s/%s.%u.ram", m->set->ram_dir, m->cfg.name,
			 ++m->ram_seq);
}

void
machine_launch_params(struct machine *m, struct backend_launch *l,
		      const char **paths)
{
	size_t i;

	for (i = 0; i < m->n_shells && i < 16; i++)
		paths[i] = m->shells[i].path;
	memset(l, 0, sizeof(*l));
	machine_backend_config(&m->cfg, &l->cfg);
	l->state_dir = m->dir;
	l->console_path = m->console_path;
	l->shell_paths = paths;
	l->n_shells = m->n_shells;
	l->accel = m->cfg.accel ? m->cfg.accel :
				  (m->set->opt.accel ? m->set->opt.accel : "auto");
	l->node = m->index;
	l->nics = m->nics;
	l->n_nics = m->n_nics;
	l->tapnet = m->set->tapnet;
	l->events = &events;
	l->owner = m;
	l->incoming = m->launch_incoming;
	l->disk_bases = (const char *const *)m->launch_disks;
	l->incoming_ram = m->launch_ram;
	l->ram_private = m->launch_ram_private;
}

/* The VMM launched (ret 0) or not; with the lock. */
static void
vmm_launched(struct machine *m, struct backend *be, int ret,
	     const struct aerr *err)
{
	if (ret < 0) {
		machine_log_line(m, err->msg[0] ? err->msg : "launch failed");
		waiters_fail_guest(m, -EIO);
		machine_set_state(m, MS_STOPPED, "start failed");
		shellpool_vmm_gone(m);
		return;
	}
	if (m->vmm_exited) {
		/* It died before launch returned: on_exited saw no backend. */
		m->dead_be = be;
		return;
	}
	m->be = be;
	net_launched(m);
	/* Its control shell may have answered before launch() returned. */
	if (m->state == MS_STARTING && shellpool_ready(m))
		machine_set_state(m, MS_RUNNING, "the backdoor answered");
	if (m->set->opt.foreground && m->state == MS_STARTING)
		fprintf(stderr, "%s: booting, waiting for the backdoor banner\n",
			m->cfg.name);
}

static void
run_launch(struct machine *m, struct mop *op)
{
	const char *paths[16];
	struct backend_launch l;
	struct backend *be = NULL, *old = m->dead_be;
	struct aerr err = { "" };
	char *ram;
	int ret;

	/* A waiting spare would take this launch's socket connections. */
	spare_drop(m, 0);
	m->dead_be = NULL;
	m->generation++;
	m->banner_hinted = 0;
	sb_free(&m->boot_console);
	machine_launch_params(m, &l, paths);
	l.ram_path = ram = machine_ram_path(m);
	/* A restore is one launch; the next boot is an ordinary one. */
	m->boot_restored = m->launch_incoming != NULL;
	if (!m->boot_restored) {
		free(m->boot_snapshot);
		m->boot_snapshot = NULL;
	}
	m->vmm_exited = 0;
	machine_unlock(m);
	if (old)
		m->ops->destroy(old);
	ret = m->ops->launch(&l, &be, &err);
	machine_lock(m);
	machine_launch_files_forget(m);
	free(ram);
	vmm_launched(m, be, ret, &err);
}

void
machine_adopt_vmm(struct machine *m, struct backend *be, const char *dir,
		  struct mreq *r)
{
	struct backend *old = m->dead_be;
	struct aerr err = { "" };
	int ret;

	m->dead_be = NULL;
	m->generation++;
	m->banner_hinted = 0;
	sb_free(&m->boot_console);
	m->boot_restored = 1;
	free(m->boot_snapshot);
	m->boot_snapshot = xstrdup(dir);
	m->vmm_exited = 0;
	m->state = MS_STOPPED;
	start_locked(m, r, START_ADOPT);
	/* Its connections may be accepted already (no VMM ran meanwhile). */
	shellpool_resync(m);
	machine_unlock(m);
	m->ops->set_owner(be, &events, m);
	ret = m->ops->incoming(be, &err);
	if (ret < 0)
		m->ops->destroy(be);
	/* The VMM it replaces (killed): reaped while the shells resync, and
	 * before forwards need its host ports. */
	if (old)
		m->ops->destroy(old);
	machine_lock(m);
	/* A clone's control shell may have answered before it was adopted
	 * (machine_create queued its SYNC at once): vmm_launched sees it. */
	vmm_launched(m, be, ret, &err);
}

static void
run_halt(struct machine *m, struct mop *op)
{
	struct backend *be = m->be;

	if (!be) {
		/* Nothing runs that could still stop it: it stopped. */
		if (m->state == MS_STOPPING)
			machine_set_state(m, MS_STOPPED, "halted");
		return;
	}
	/* Whatever ran after the halt was asked for (a restore) booted it
	 * again: the VMM's exit is a halt's, not a crash. */
	if (m->state != MS_STOPPING) {
		m->state = MS_STOPPING;
		vmset_event(m->set, m->cfg.name, "stopping", "halt");
	}
	machine_unlock(m);
	if (m->ops->quit(be) < 0)
		m->ops->kill(be);
	machine_lock(m);
}

void
machine_halt_locked(struct machine *m)
{
	m->state = MS_STOPPING;
	mop_push(m, mop_new("halt", run_halt, NULL));
}

/* Deadlines of commands, queued or running. */
static void
cmd_deadlines(struct machine *m, int64_t now, int64_t *next)
{
	struct cmd *c, *n;
	size_t i;

	for (c = m->queue; c; c = n) {
		n = c->next;
		if (c->deadline && now >= c->deadline)
			cmd_cancel(c, -ETIMEDOUT);
		else if (c->deadline && c->deadline < *next)
			*next = c->deadline;
	}
	for (i = 0; i < m->n_shells; i++) {
		c = m->shells[i].cur;
		if (!c || !c->deadline || c->cancelled)
			continue;
		if (now >= c->deadline)
			cmd_cancel(c, -ETIMEDOUT);
		else if (c->deadline < *next)
			*next = c->deadline;
	}
}

/* A boot that shows no banner: start calls time out, the log hints once. */
static void
start_deadlines(struct machine *m, int64_t now, int64_t *next)
{
	int64_t limit = m->started_ms + (int64_t)m->timeout * 1000;
	int64_t hint = m->started_ms + BANNER_HINT_MS;

	if (m->state != MS_STARTING)
		return;
	if (m->start_waiters && now >= limit) {
		machine_log_line(m, "start: no backdoor banner before the "
				 "timeout; check the guest's backdoor service");
		mreq_finish_all(m, &m->start_waiters, -ETIMEDOUT);
	} else if (m->start_waiters && limit < *next) {
		*next = limit;
	}
	if (m->banner_hinted)
		return;
	if (now >= hint) {
		m->banner_hinted = 1;
		machine_log_line(m, "still no backdoor banner after 30 s; is the "
				 "guest's backdoor service running? (see "
				 "console)");
	} else if (hint < *next) {
		*next = hint;
	}
}

/* A guest asked to power off that has not within the machine's timeout
 * is halted; who waits for the shutdown gets ETIMEDOUT. */
static void
shutdown_deadline(struct machine *m, int64_t now, int64_t *next)
{
	if (m->state != MS_STOPPING || !m->shutdown_by) {
		m->shutdown_by = 0;
		return;
	}
	if (now < m->shutdown_by) {
		if (m->shutdown_by < *next)
			*next = m->shutdown_by;
		return;
	}
	m->shutdown_by = 0;
	machine_logl(m, "shutdown: the guest did not power off within %d s; "
		     "halting it", m->timeout);
	mreq_finish_all(m, &m->stop_waiters, -ETIMEDOUT);
	machine_halt_locked(m);
}

/*
 * One per machine: runs the queued actions in order (the only caller of
 * the backend), keeps a spare VMM, and enforces the deadlines of commands,
 * boots, waits and jobs.
 */
void *
machine_supervisor(void *arg)
{
	struct machine *m = arg;
	struct timespec ts;

	machine_lock(m);
	while (!m->stopping) {
		int64_t now = now_mono_ms(), next = now + 60000;

		if (m->mops) {
			mop_run_next(m);
			continue;
		}
		if (spare_needed(m)) {
			spare_run(m);
			continue;
		}
		if (clone_spare_needed(m)) {
			clone_spare_run(m);
			continue;
		}
		cmd_deadlines(m, now, &next);
		start_deadlines(m, now, &next);
		holds_check(m, now, &next);
		shutdown_deadline(m, now, &next);
		spare_deadline(m, now, &next);
		clone_spare_deadline(m, now, &next);
		waiters_check(m, now, &next);
		jobs_check(m, now, &next);
		if (m->done_list) {
			/* Answer them, then look again: things may have moved
			 * while the lock was free. */
			machine_unlock(m);
			machine_lock(m);
			continue;
		}
		/* Sleep with the lock held since the checks: no lost wake-up. */
		next -= now_mono_ms();
		if (next <= 0)
			continue;
		mono_deadline(&ts, next);
		m->sup_wake_ms = now_mono_ms() + next;
		pthread_cond_timedwait(&m->cond, &m->lock, &ts);
		if (now_mono_ms() < m->sup_wake_ms)
			m->sup_wakes++;
		m->sup_wake_ms = 0;
	}
	machine_unlock(m);
	return NULL;
}
