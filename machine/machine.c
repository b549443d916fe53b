/*
 * Machines: state, lifecycle (start, shutdown, halt, reboot, crash, pause),
 * the control messages, the log, the console, and the supervisor thread that
 * runs lifecycle actions, deadlines and waits for each machine.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <poll.h>
#include <sys/file.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "common/sock.h"
#include "machine/internal.h"

/* In memory (the files under state_dir keep more, up to log_max each). */
#define BOOT_CONSOLE_MAX (1u << 20)
#define LOG_KEEP (256u << 10)
#define EVENTS_KEEP (256u << 10)
#define LOG_LINE_MAX 4096
#define CONSOLE_LINE_MAX 4096
/* How long a console write waits for the guest to read its input. */
#define CONSOLE_WRITE_WAIT_MS 1000
#define BANNER_HINT_MS 30000

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
static int
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

static void
finish_all(struct machine *m, struct mreq **list, int result)
{
	while (*list) {
		struct mreq *r = *list;

		*list = r->priv_next;
		r->priv_next = NULL;
		mreq_finish(m, r, result);
	}
}

static void
cancel_start_waiter(struct mreq *r)
{
	struct machine *m = r->priv_machine;

	mreq_unlink(&m->start_waiters, r);
	mreq_finish(m, r, -EINTR);
}

static void
cancel_stop_waiter(struct mreq *r)
{
	struct machine *m = r->priv_machine;

	mreq_unlink(&m->stop_waiters, r);
	mreq_finish(m, r, -EINTR);
}

/* ---- log and events -------------------------------------------------- */

static void
log_line(struct machine *m, const char *text)
{
	size_t n = strlen(text), keep = n > LOG_LINE_MAX ? LOG_LINE_MAX : n;
	struct strbuf line;
	size_t pre;

	sb_init(&line);
	sb_addf(&line, "%lld ", (long long)now_unix_ms());
	pre = line.len;
	sb_add(&line, text, keep);
	if (keep < n)
		sb_addf(&line, " [... %zu bytes of this line dropped ...]",
			n - keep);
	sb_adds(&line, "\n");
	tailbuf_add(&m->log, line.data, line.len);
	rotfile_write(&m->log_file, line.data, line.len);
	if (m->set->opt.foreground)
		fprintf(stderr, "%s: %.*s\n", m->cfg.name,
			(int)(line.len - pre - 1), line.data + pre);
	sb_free(&line);
}

void
machine_logl(struct machine *m, const char *fmt, ...)
{
	struct strbuf sb;
	va_list ap;

	sb_init(&sb);
	va_start(ap, fmt);
	sb_vaddf(&sb, fmt, ap);
	va_end(ap);
	log_line(m, sb.data ? sb.data : "");
	sb_free(&sb);
}

void
machine_log(struct machine *m, const char *fmt, ...)
{
	struct strbuf sb;
	va_list ap;

	sb_init(&sb);
	va_start(ap, fmt);
	sb_vaddf(&sb, fmt, ap);
	va_end(ap);
	pthread_mutex_lock(&m->lock);
	log_line(m, sb.data ? sb.data : "");
	pthread_mutex_unlock(&m->lock);
	sb_free(&sb);
}

void
vmset_event(struct vmset *s, const char *machine, const char *event,
	    const char *detail)
{
	struct strbuf line;

	sb_init(&line);
	sb_addf(&line, "%lld %s %s", (long long)now_unix_ms(), machine, event);
	if (detail && *detail)
		sb_addf(&line, " %s", detail);
	sb_adds(&line, "\n");
	pthread_mutex_lock(&s->lock);
	tailbuf_add(&s->events, line.data, line.len);
	rotfile_write(&s->events_file, line.data, line.len);
	pthread_mutex_unlock(&s->lock);
	sb_free(&line);
}

void
machine_set_state(struct machine *m, enum mstate st, const char *why)
{
	if (m->state == st)
		return;
	/* The boot hook: a machine on VLANs is running once they are set up. */
	if (st == MS_RUNNING && m->state == MS_STARTING && net_hold_start(m))
		return;
	m->state = st;
	if (st == MS_STARTING || st == MS_STOPPED || st == MS_CRASHED)
		net_reset(m);
	if (st == MS_RUNNING) {
		/* Commands held while it started may go now. */
		shellpool_kick(m);
		finish_all(m, &m->start_waiters, 0);
		if (m->set->opt.foreground)
			fprintf(stderr, "%s: running (%lld ms after launch)\n",
				m->cfg.name,
				(long long)(now_mono_ms() - m->started_ms));
	}
	if (st == MS_STOPPED || st == MS_CRASHED) {
		finish_all(m, &m->start_waiters, -EIO);
		finish_all(m, &m->stop_waiters, 0);
		/* Nothing parked may boot it again (halt failed them already). */
		waiters_fail_guest(m, st == MS_CRASHED ? -EIO : -EHOSTDOWN);
	}
	log_line(m, why ? why : mstate_name(st));
	vmset_event(m->set, m->cfg.name, mstate_name(st), why);
	pthread_cond_broadcast(&m->cond);
}

/* ---- backend callbacks (backend threads, no lock held) --------------- */

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
	machine_set_state(m, m->state == MS_STOPPING ? MS_STOPPED : MS_CRASHED,
			  why);
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
		log_line(m, "the guest kernel panicked");
	}
	machine_unlock(m);
}

static void
on_backend_log(void *owner, const char *text)
{
	machine_log(owner, "%s", text);
}

static const struct backend_events events = {
	.exited = on_exited,
	.vm_event = on_vm_event,
	.log = on_backend_log,
};

/* ---- lifecycle --------------------------------------------------------- */

void
machine_start_locked(struct machine *m, struct mreq *r)
{
	switch (m->state) {
	case MS_RUNNING:
	case MS_PAUSED:
		if (r)
			mreq_finish(m, r, 0);
		return;
	case MS_STOPPING:
		log_line(m, "start: the machine is stopping");
		if (r)
			mreq_finish(m, r, -EBUSY);
		return;
	case MS_STARTING:
		break;
	case MS_STOPPED:
	case MS_CRASHED:
		if (m->removed) {
			log_line(m, "start: the clone was removed (rmdir)");
			if (r)
				mreq_finish(m, r, -ENOENT);
			return;
		}
		m->launch_pending = 1;
		m->state = MS_STARTING;
		m->started_ms = now_mono_ms();
		vmset_event(m->set, m->cfg.name, "starting", NULL);
		log_line(m, "starting");
		break;
	}
	if (r) {
		mreq_park(m, r, cancel_start_waiter, NULL);
		r->priv_next = m->start_waiters;
		m->start_waiters = r;
	}
	pthread_cond_broadcast(&m->cond);
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
			log_line(m, "the clone was removed (rmdir)");
			return -ENOENT;
		}
		machine_start_locked(m, NULL);
		return 0;
	}
	if (m->state == MS_CRASHED) {
		log_line(m, "the machine crashed; `echo start > ctl` boots it "
			 "again");
		return -EIO;
	}
	if (m->state == MS_STOPPING)
		return -EHOSTDOWN;
	return 0;
}

/* The snapshot files of a launch: used (or not), let go. */
static void
launch_files_forget(struct machine *m)
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
		log_line(m, err->msg[0] ? err->msg : "launch failed");
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
	if (m->set->opt.foreground)
		fprintf(stderr, "%s: booting, waiting for the backdoor banner\n",
			m->cfg.name);
}

static void
do_launch(struct machine *m)
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
	launch_files_forget(m);
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
	sb_free(&m->boot_console);
	m->boot_restored = 1;
	free(m->boot_snapshot);
	m->boot_snapshot = xstrdup(dir);
	m->vmm_exited = 0;
	m->state = MS_STOPPED;
	machine_start_locked(m, r);
	m->launch_pending = 0;
	/* Its connections may be accepted already (no VMM ran meanwhile). */
	shellpool_resync(m);
	m->ops->set_owner(be, &events, m);
	machine_unlock(m);
	ret = m->ops->incoming(be, &err);
	if (ret < 0)
		m->ops->destroy(be);
	/* The VMM it replaces (killed): reaped while the shells resync, and
	 * before forwards need its host ports. */
	if (old)
		m->ops->destroy(old);
	machine_lock(m);
	vmm_launched(m, be, ret, &err);
}

static void
do_halt(struct machine *m)
{
	struct backend *be = m->be;

	if (!be)
		return;
	machine_unlock(m);
	if (m->ops->quit(be) < 0)
		m->ops->kill(be);
	machine_lock(m);
}

static void clone_run(struct machine *m);

static void *
supervisor(void *arg)
{
	struct machine *m = arg;
	int hinted = 0;

	machine_lock(m);
	while (!m->stopping) {
		int64_t now = now_mono_ms(), next = now + 60000;
		size_t i;

		if (m->launch_pending) {
			m->launch_pending = 0;
			hinted = 0;
			do_launch(m);
			continue;
		}
		if (m->halt_pending) {
			m->halt_pending = 0;
			do_halt(m);
			continue;
		}
		if (m->snapshot_pending) {
			snapshot_take_run(m, 1);
			continue;
		}
		if (m->restore_pending) {
			snapshot_restore_run(m);
			continue;
		}
		if (m->clones) {
			clone_run(m);
			continue;
		}
		if (spare_needed(m)) {
			spare_run(m);
			continue;
		}
		/* Deadlines of commands, queued or running. */
		for (struct cmd *c = m->queue, *n; c; c = n) {
			n = c->next;
			if (c->deadline && now >= c->deadline)
				cmd_cancel(c, -ETIMEDOUT);
			else if (c->deadline && c->deadline < next)
				next = c->deadline;
		}
		for (i = 0; i < m->n_shells; i++) {
			struct cmd *c = m->shells[i].cur;

			if (!c || !c->deadline || c->cancelled)
				continue;
			if (now >= c->deadline)
				cmd_cancel(c, -ETIMEDOUT);
			else if (c->deadline < next)
				next = c->deadline;
		}
		if (m->state == MS_STARTING && m->start_waiters) {
			int64_t limit = m->started_ms + (int64_t)m->timeout * 1000;

			if (now >= limit) {
				log_line(m, "start: no backdoor banner before the "
					 "timeout; check the guest's backdoor "
					 "service");
				finish_all(m, &m->start_waiters, -ETIMEDOUT);
			} else if (limit < next) {
				next = limit;
			}
		}
		if (m->state == MS_STARTING && !hinted &&
		    now - m->started_ms >= BANNER_HINT_MS) {
			hinted = 1;
			log_line(m, "still no backdoor banner after 30 s; is the "
				 "guest's backdoor service running? (see "
				 "console)");
		} else if (m->state == MS_STARTING && !hinted &&
			   m->started_ms + BANNER_HINT_MS < next) {
			next = m->started_ms + BANNER_HINT_MS;
		}
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
		struct timespec ts;
		int64_t wait_ms = next - now_mono_ms();

		if (wait_ms <= 0)
			continue;
		mono_deadline(&ts, wait_ms);
		pthread_cond_timedwait(&m->cond, &m->lock, &ts);
	}
	machine_unlock(m);
	return NULL;
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
	if (m->state == MS_STOPPED || m->state == MS_CRASHED) {
		if (m->state == MS_CRASHED)
			machine_set_state(m, MS_STOPPED, "halted");
		mreq_finish(m, r, 0);
		return;
	}
	m->state = MS_STOPPING;
	vmset_event(m->set, m->cfg.name, "stopping", "halt");
	log_line(m, "halt");
	fail_parked(m, -EHOSTDOWN);
	if (m->launch_pending) {
		m->launch_pending = 0;
		machine_set_state(m, MS_STOPPED, "halted before launch");
		mreq_finish(m, r, 0);
		return;
	}
	m->halt_pending = 1;
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
	log_line(m, "shutdown: asking the guest to power off");
	fail_parked(m, -EHOSTDOWN);
	c = cmd_new(m, "poweroff", 8, 1);
	c->deadline = now_mono_ms() + (int64_t)m->timeout * 1000;
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
	shellpool_reset(m);
	machine_set_state(m, MS_STARTING, "reboot");
	m->started_ms = now_mono_ms();
	machine_start_locked(m, r);
}

static void
ctl_crash(struct machine *m, char **argv, struct mreq *r)
{
	if (!m->be) {
		log_line(m, "crash: the machine is not running");
		mreq_finish(m, r, -EHOSTDOWN);
		return;
	}
	log_line(m, "crash: killing the VMM");
	m->ops->kill(m->be);
	park_stop(m, r);
}

static void
ctl_pause(struct machine *m, char **argv, struct mreq *r)
{
	int ret;

	if (!(m->ops->caps & BACKEND_CAP_PAUSE)) {
		machine_logl(m, "pause: the %s backend cannot pause", m->ops->name);
		mreq_finish(m, r, -EOPNOTSUPP);
		return;
	}
	if (m->state != MS_RUNNING || !m->be) {
		machine_logl(m, "pause: the machine is %s", mstate_name(m->state));
		mreq_finish(m, r, -EHOSTDOWN);
		return;
	}
	ret = m->ops->pause(m->be);
	if (ret == 0)
		machine_set_state(m, MS_PAUSED, "paused");
	mreq_finish(m, r, ret);
}

static void
ctl_resume(struct machine *m, char **argv, struct mreq *r)
{
	int ret;

	if (m->state != MS_PAUSED || !m->be) {
		mreq_finish(m, r, m->state == MS_RUNNING ? 0 : -EHOSTDOWN);
		return;
	}
	ret = m->ops->resume(m->be);
	if (ret == 0)
		machine_set_state(m, shellpool_ready(m) ? MS_RUNNING : MS_STARTING,
				  "resumed");
	mreq_finish(m, r, ret);
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

static void ctl_clone(struct machine *m, char **argv, struct mreq *r);

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
	{ "clone", 1, 1, ctl_clone, "clone NEWNAME [SNAPSHOT]" },
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
		log_line(m, n == 0 ? "ctl: empty message (expected: " :
				     "ctl: one message per line, please "
				     "(expected: ");
		log_line(m, u.data);
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

/* ---- console ------------------------------------------------------- */

/*
 * Without the lock (only the console thread writes console.log): a write
 * the file refuses (its file system is full) loses those bytes from the
 * file only, never from waiters or the foreground. The log says so once;
 * the file marks the gap when there is room again (rotfile_write).
 */
static void
console_keep(struct machine *m, const char *buf, size_t n)
{
	uint64_t lost = m->console_file.rf_lost;
	int ret = rotfile_write(&m->console_file, buf, n);

	if (ret < 0 && !lost)
		machine_log(m, "console.log: %s; console bytes are not kept on "
			    "disk until there is room", strerror(-ret));
	else if (ret == 0 && lost)
		machine_log(m, "console.log: there is room again; the gap is "
			    "marked in it");
}

/* With the lock: the console grew by buf (it is on disk already). */
static void
console_bytes(struct machine *m, const char *buf, size_t n)
{
	size_t i, drop;
	struct waiter *w;

	/* What goes from the front must have been seen by every wait. */
	if (m->boot_console.len + n > BOOT_CONSOLE_MAX)
		waiters_console_check(m);
	drop = sb_add_keep_tail(&m->boot_console, BOOT_CONSOLE_MAX, buf, n);
	for (w = m->waiters; drop && w; w = w->next)
		w->console_pos = w->console_pos > drop ? w->console_pos - drop : 0;
	if (!m->set->opt.foreground)
		return;
	for (i = 0; i < n; i++) {
		/* A guest that never ends its line still gets printed. */
		if (buf[i] == '\n' || m->console_line.len >= CONSOLE_LINE_MAX) {
			fprintf(stderr, "%s # %s\n", m->cfg.name,
				m->console_line.data ? m->console_line.data : "");
			sb_free(&m->console_line);
		}
		if (buf[i] != '\n' && buf[i] != '\r')
			sb_add(&m->console_line, buf + i, 1);
	}
}

static void *
console_reader(void *arg)
{
	struct machine *m = arg;
	char buf[16384];

	for (;;) {
		int fd = accept4(m->console_listen, NULL, NULL, SOCK_CLOEXEC);

		if (fd < 0) {
			if (errno == EINTR || errno == ECONNABORTED)
				continue;
			break;
		}
		machine_lock(m);
		if (m->stopping) {
			machine_unlock(m);
			close(fd);
			break;
		}
		m->console_fd = fd;
		machine_unlock(m);
		for (;;) {
			ssize_t n = read(fd, buf, sizeof(buf));

			if (n < 0 && errno == EINTR)
				continue;
			if (n <= 0)
				break;
			/* Only this thread writes console.log: no lock for it. */
			console_keep(m, buf, (size_t)n);
			machine_lock(m);
			console_bytes(m, buf, (size_t)n);
			pthread_cond_broadcast(&m->cond);
			machine_unlock(m);
		}
		machine_lock(m);
		m->console_fd = -1;
		machine_unlock(m);
		close(fd);
	}
	return NULL;
}

/*
 * A guest that does not read its console would hold a FUSE worker here for
 * good (the kernel does not interrupt a write in progress): take what the
 * socket takes now, wait a bounded time for room, else EAGAIN.
 */
int
machine_console_write(struct machine *m, const char *buf, size_t len)
{
	struct pollfd pfd = { .events = POLLOUT };
	ssize_t n;
	int ret;

	machine_lock(m);
	pfd.fd = m->console_fd >= 0 ? dup(m->console_fd) : -1;
	machine_unlock(m);
	if (pfd.fd < 0) {
		machine_log(m, "console: the machine is not running");
		return -EHOSTDOWN;
	}
	for (;;) {
		n = send(pfd.fd, buf, len, MSG_DONTWAIT | MSG_NOSIGNAL);
		if (n >= 0 || (errno != EAGAIN && errno != EINTR))
			break;
		if (errno == EAGAIN &&
		    poll(&pfd, 1, CONSOLE_WRITE_WAIT_MS) == 0) {
			machine_log(m, "console: the guest has not read its "
				    "console input for %d ms (its buffer is "
				    "full): %zu bytes not taken, try again "
				    "later", CONSOLE_WRITE_WAIT_MS, len);
			errno = EAGAIN;
			break;
		}
	}
	ret = n >= 0 ? (int)n : -errno;
	close(pfd.fd);
	return ret;
}

struct console_view {
	int cv_fd[2];          /* console.log.1, console.log; -1: none */
	uint64_t cv_size[2];   /* as they were at open */
};

/* Both files as of one moment, without the lock: console.log is renamed to
 * console.log.1 at a rotation, so look again if it changed meanwhile. */
static void
console_view_fill(struct machine *m, struct console_view *v)
{
	char *cur = xasprintf("%s/console.log", m->dir);
	char *old = xasprintf("%s/console.log.1", m->dir);
	struct stat st[2], again;
	int tries, i;

	for (tries = 0; tries < 8; tries++) {
		v->cv_fd[1] = open(cur, O_RDONLY | O_CLOEXEC);
		v->cv_fd[0] = open(old, O_RDONLY | O_CLOEXEC);
		for (i = 0; i < 2; i++)
			if (v->cv_fd[i] >= 0 && fstat(v->cv_fd[i], &st[i]) < 0) {
				close(v->cv_fd[i]);
				v->cv_fd[i] = -1;
			}
		if (v->cv_fd[1] < 0 || (stat(cur, &again) == 0 &&
					again.st_ino == st[1].st_ino))
			break;
		for (i = 0; i < 2; i++)
			if (v->cv_fd[i] >= 0)
				close(v->cv_fd[i]);
	}
	for (i = 0; i < 2; i++)
		v->cv_size[i] = v->cv_fd[i] >= 0 ? (uint64_t)st[i].st_size : 0;
	free(cur);
	free(old);
}

int
machine_console_open(struct machine *m, struct console_view **out)
{
	struct console_view *v = xcalloc(1, sizeof(*v));

	console_view_fill(m, v);
	*out = v;
	return 0;
}

ssize_t
machine_console_pread(struct console_view *v, char *buf, size_t size,
		      uint64_t off)
{
	ssize_t n;
	int i = 0;

	if (off >= v->cv_size[0]) {
		off -= v->cv_size[0];
		i = 1;
	}
	if (off >= v->cv_size[i] || v->cv_fd[i] < 0)
		return 0;
	if (size > v->cv_size[i] - off)
		size = (size_t)(v->cv_size[i] - off);
	n = pread(v->cv_fd[i], buf, size, (off_t)off);
	return n < 0 ? -errno : n;
}

void
machine_console_close(struct console_view *v)
{
	int i;

	if (!v)
		return;
	for (i = 0; i < 2; i++)
		if (v->cv_fd[i] >= 0)
			close(v->cv_fd[i]);
	free(v);
}

/* ---- views ----------------------------------------------------------- */

const char *
machine_name(const struct machine *m)
{
	return m->cfg.name;
}

unsigned
machine_caps(const struct machine *m)
{
	return m->ops->caps;
}

char *
machine_render(struct machine *m, enum machine_view v, size_t *len)
{
	struct strbuf sb;
	size_t i, ready = 0;

	sb_init(&sb);
	machine_lock(m);
	switch (v) {
	case MACHINE_VIEW_STATUS:
		sb_addf(&sb, "%s\n", mstate_name(m->state));
		break;
	case MACHINE_VIEW_INFO:
		for (i = 0; i < m->n_shells; i++)
			ready += m->shells[i].ready ? 1 : 0;
		sb_addf(&sb, "name %s\nbackend %s\nstatus %s\n", m->cfg.name,
			m->ops->name, mstate_name(m->state));
		if (m->be) {
			/* pid and accel come from the backend's own lines. */
			sb_addf(&sb, "uptime_ms %lld\n",
				(long long)(now_mono_ms() - m->started_ms));
		}
		sb_addf(&sb, "shells %zu/%zu\nshell_channel %s\n", ready,
			m->n_shells,
			m->cfg.shell_channel == SHELL_CHANNEL_CONSOLE ?
				"virtconsole" : "virtserialport");
		sb_addf(&sb, "timeout %d\nboots %u\ncapabilities ", m->timeout,
			m->generation);
		backend_caps_render(m->ops->caps, &sb);
		sb_adds(&sb, "\nstate_dir ");
		sb_adds(&sb, m->dir);
		sb_adds(&sb, "\n");
		if (m->be)
			m->ops->info(m->be, &sb);
		if (m->boot_snapshot)
			sb_addf(&sb, "restored_from %s\n",
				strrchr(m->boot_snapshot, '/') + 1);
		/* A VMM waits, paused, to restore this snapshot at once. */
		if (m->spare && !m->spare_dead)
			sb_addf(&sb, "spare %s\n",
				strrchr(m->spare_snapshot, '/') + 1);
		net_render_info(m, &sb);
		break;
	case MACHINE_VIEW_LOG: {
		char *note = xasprintf("older lines are in %s/log", m->dir);

		tailbuf_render(&m->log, &sb, note);
		free(note);
		break;
	}
	case MACHINE_VIEW_CONFIG:
		sb_adds(&sb, m->cfg.json ? m->cfg.json : "{}\n");
		break;
	case MACHINE_VIEW_CONSOLE:
		/* This boot's tail: the whole console is machine_console_open's. */
		if (m->boot_console.len)
			sb_add(&sb, m->boot_console.data, m->boot_console.len);
		break;
	}
	machine_unlock(m);
	return sb_detach(&sb, len);
}

/* ---- creation and teardown ------------------------------------------- */

static int
machine_create(struct vmset *s, struct machine_config *cfg, unsigned index,
	       struct machine **out, struct aerr *err)
{
	struct machine *m = xcalloc(1, sizeof(*m));
	pthread_condattr_t ca;
	char *path;
	int ret;

	m->set = s;
	m->cfg = *cfg;
	memset(cfg, 0, sizeof(*cfg));
	m->index = index;
	m->state = MS_STOPPED;
	m->timeout = m->cfg.timeout ? m->cfg.timeout : s->opt.timeout;
	m->console_fd = -1;
	m->console_listen = -1;
	pthread_mutex_init(&m->lock, NULL);
	pthread_condattr_init(&ca);
	pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
	pthread_cond_init(&m->cond, &ca);
	pthread_condattr_destroy(&ca);
	tailbuf_init(&m->log, LOG_KEEP);
	m->log_file.rf_fd = -1;
	m->console_file.rf_fd = -1;
	sb_init(&m->boot_console);
	sb_init(&m->console_line);
	*out = m;

	m->ops = backend_find(m->cfg.backend ? m->cfg.backend : "qemu");
	if (!m->ops) {
		aerr_set(err, "machine %s: the %s backend is not available in "
			 "this build", m->cfg.name, m->cfg.backend);
		return -EOPNOTSUPP;
	}
	m->dir = xasprintf("%s/%s", s->state_dir, m->cfg.name);
	ret = mkdir_p(m->dir, 0700);
	if (ret < 0) {
		aerr_set(err, "mkdir %s: %s", m->dir, strerror(-ret));
		return ret;
	}
	path = xasprintf("%s/log", m->dir);
	rotfile_open(&m->log_file, path, s->opt.log_max);
	free(path);
	path = xasprintf("%s/console.log", m->dir);
	rotfile_open(&m->console_file, path, s->opt.log_max);
	free(path);
	m->console_path = xasprintf("%s/console.sock", m->dir);
	ret = sock_listen_unix(m->console_path, err);
	if (ret < 0)
		return ret;
	m->console_listen = ret;
	ret = shellpool_init(m, err);
	if (ret < 0)
		return ret;
	if (pthread_create(&m->console_thread, NULL, console_reader, m) != 0) {
		close(m->console_listen);
		m->console_listen = -1;
		aerr_set(err, "cannot start the console thread");
		return -EAGAIN;
	}
	if (pthread_create(&m->supervisor, NULL, supervisor, m) != 0) {
		aerr_set(err, "cannot start the supervisor thread");
		return -EAGAIN;
	}
	m->stopping = 0;
	log_line(m, "configured");
	return 0;
}

static void
machine_destroy(struct machine *m)
{
	struct backend *be, *dead;

	machine_lock(m);
	be = m->be;
	dead = m->dead_be;
	m->be = NULL;
	m->dead_be = NULL;
	if (be && m->state != MS_STOPPED)
		m->state = MS_STOPPING;
	machine_unlock(m);
	/* destroy() stops the VMM and waits: its exited callback runs first. */
	if (be)
		m->ops->destroy(be);
	if (dead)
		m->ops->destroy(dead);

	machine_lock(m);
	m->stopping = 1;
	shellpool_vmm_gone(m);
	waiters_fail(m, -EIO);
	finish_all(m, &m->start_waiters, -EIO);
	finish_all(m, &m->stop_waiters, 0);
	pthread_cond_broadcast(&m->cond);
	machine_unlock(m);

	if (m->supervisor)
		pthread_join(m->supervisor, NULL);
	machine_lock(m);
	spare_drop(m, 1);
	machine_unlock(m);
	screen_wait_idle(m);
	if (m->console_listen >= 0) {
		shutdown(m->console_listen, SHUT_RDWR);
		machine_lock(m);
		if (m->console_fd >= 0)
			shutdown(m->console_fd, SHUT_RDWR);
		machine_unlock(m);
		pthread_join(m->console_thread, NULL);
		close(m->console_listen);
	}
	shellpool_stop(m);
	jobs_free(m);
	/* Whatever completed during teardown. */
	machine_lock(m);
	machine_unlock(m);
	if (m->console_path)
		unlink(m->console_path);
	rotfile_close(&m->log_file);
	rotfile_close(&m->console_file);
	free(m->console_path);
	launch_files_forget(m);
	free(m->spare_snapshot);
	free(m->spare_want);
	free(m->boot_snapshot);
	free(m->snapshot_pending);
	free(m->restore_pending);
	while (m->clones) {
		struct clone_order *o = m->clones;

		m->clones = o->next;
		free(o->name);
		free(o->snapshot);
		free(o);
	}
	free(m->dir);
	tailbuf_free(&m->log);
	sb_free(&m->boot_console);
	sb_free(&m->console_line);
	net_machine_free(m);
	machine_config_free(&m->cfg);
	pthread_mutex_destroy(&m->lock);
	pthread_cond_destroy(&m->cond);
	free(m);
}

/* ---- the set of machines of one mount ------------------------------------ */

static void *
global_timer(void *arg)
{
	struct vmset *s = arg;
	struct timespec ts;
	int timed_out = 0;
	size_t i;

	mono_deadline(&ts, (int64_t)s->opt.global_timeout * 1000);
	pthread_mutex_lock(&s->lock);
	while (!s->stopping && !timed_out)
		timed_out = pthread_cond_timedwait(&s->timer_cond, &s->lock,
						   &ts) == ETIMEDOUT;
	pthread_mutex_unlock(&s->lock);
	if (!timed_out)
		return NULL;
	for (i = 0; vmset_machine(s, i); i++) {
		struct machine *m = vmset_machine(s, i);

		machine_lock(m);
		log_line(m, "global timeout: halting every machine");
		waiters_fail(m, -ETIMEDOUT);
		if (m->be) {
			m->state = MS_STOPPING;
			m->halt_pending = 1;
			pthread_cond_broadcast(&m->cond);
		}
		machine_unlock(m);
	}
	return NULL;
}

/*
 * A RAM directory whose daemon died without cleaning up (SIGKILL, a crash)
 * would hold guest RAM in memory until reboot. Each daemon keeps a lock on
 * its own directory's .owner; the next daemon removes those nobody holds.
 * A directory without .owner is being made right now: left alone.
 */
static void
ram_dirs_reap(const char *base)
{
	struct dirent *de;
	DIR *d = opendir(base);

	while (d && (de = readdir(d))) {
		struct stat st;
		int fd, owner;

		if (strncmp(de->d_name, "attestfs-ram.", 13))
			continue;
		/* base may be world-writable: by descriptor, no link followed,
		 * and only what is ours. */
		fd = openat(dirfd(d), de->d_name, O_RDONLY | O_DIRECTORY |
			    O_NOFOLLOW | O_CLOEXEC);
		if (fd < 0)
			continue;
		owner = -1;
		if (fstat(fd, &st) == 0 && st.st_uid == geteuid())
			owner = openat(fd, ".owner", O_RDWR | O_NOFOLLOW |
				       O_NONBLOCK | O_CLOEXEC);
		if (owner >= 0 && flock(owner, LOCK_EX | LOCK_NB) == 0 &&
		    remove_tree_at(dirfd(d), de->d_name) == 0)
			fprintf(stderr, "attestfs: removed %s/%s, left by a "
				"daemon that did not exit cleanly\n", base,
				de->d_name);
		if (owner >= 0)
			close(owner);
		close(fd);
	}
	if (d)
		closedir(d);
}

/*
 * The shell and QMP sockets live in state_dir: whoever can write there can
 * replace them. It must be a directory of the daemon's user that nobody else
 * may write to.
 */
static int
state_dir_check(const char *dir, struct aerr *err)
{
	struct stat st;

	if (lstat(dir, &st) < 0) {
		aerr_set(err, "state_dir %s: %s", dir, strerror(errno));
		return -errno;
	}
	if (!S_ISDIR(st.st_mode)) {
		aerr_set(err, "state_dir %s: not a directory", dir);
		return -ENOTDIR;
	}
	if (st.st_uid != geteuid()) {
		aerr_set(err, "state_dir %s: owned by uid %u, not by the "
			 "daemon's user (uid %u); its sockets would be open to "
			 "that user: use a directory of your own", dir,
			 (unsigned)st.st_uid, (unsigned)geteuid());
		return -EPERM;
	}
	if (st.st_mode & (S_IWGRP | S_IWOTH)) {
		aerr_set(err, "state_dir %s: writable by others (mode %04o); "
			 "its sockets could be replaced: chmod go-w %s", dir,
			 (unsigned)(st.st_mode & 07777), dir);
		return -EPERM;
	}
	return 0;
}

/* Shared memory when there is some: a RAM file on a disk would be written
 * back to it while the guest runs. */
static int
ram_dir_create(struct vmset *s, struct aerr *err)
{
	const char *base = s->opt.ram_dir;
	char *tmpl, *lock, *owner;
	int e;

	if (!base)
		base = access("/dev/shm", W_OK | X_OK) == 0 ? "/dev/shm" :
							      s->state_dir;
	ram_dirs_reap(base);
	tmpl = xasprintf("%s/attestfs-ram.XXXXXX", base);
	if (!mkdtemp(tmpl)) {
		e = errno;
		aerr_set(err, "ram_dir: mkdtemp %s: %s", tmpl, strerror(e));
		free(tmpl);
		return -e;
	}
	s->ram_dir = tmpl;
	s->opt.ram_dir = NULL;
	/* Locked before it has its name: .owner never exists unlocked. */
	lock = xasprintf("%s/.owner.new", tmpl);
	owner = xasprintf("%s/.owner", tmpl);
	s->ram_lock_fd = open(lock, O_RDWR | O_CREAT | O_EXCL | O_NOFOLLOW |
			      O_CLOEXEC, 0600);
	e = s->ram_lock_fd < 0 ? errno : 0;
	if (!e && (flock(s->ram_lock_fd, LOCK_EX | LOCK_NB) < 0 ||
		   rename(lock, owner) < 0))
		e = errno;
	if (e)
		aerr_set(err, "ram_dir: lock %s: %s", owner, strerror(e));
	free(lock);
	free(owner);
	return -e;
}

int
vmset_create(const struct vmset_options *opt, struct attest_config *cfg,
	     struct vmset **out, struct aerr *err)
{
	struct vmset *s = xcalloc(1, sizeof(*s));
	pthread_condattr_t ca;
	char *path;
	size_t i;
	int ret = 0;

	s->opt = *opt;
	if (s->opt.timeout <= 0)
		s->opt.timeout = cfg->timeout > 0 ? cfg->timeout : 900;
	if (s->opt.global_timeout <= 0)
		s->opt.global_timeout = 3600;
	s->ram_lock_fd = -1;
	s->state_dir = xstrdup(opt->state_dir);
	s->mountpoint = xstrdup(opt->mountpoint ? opt->mountpoint : "/vms");
	s->opt.state_dir = s->state_dir;
	s->opt.mountpoint = s->mountpoint;
	pthread_mutex_init(&s->lock, NULL);
	pthread_mutex_init(&s->add_lock, NULL);
	pthread_condattr_init(&ca);
	pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
	pthread_cond_init(&s->timer_cond, &ca);
	pthread_condattr_destroy(&ca);
	if (!s->opt.log_max)
		s->opt.log_max = VMSET_LOG_MAX_DEFAULT;
	tailbuf_init(&s->events, EVENTS_KEEP);
	s->events_file.rf_fd = -1;
	s->cfg = *cfg;
	memset(cfg, 0, sizeof(*cfg));
	*out = s;

	ret = mkdir_p(s->state_dir, 0700);
	if (ret < 0) {
		aerr_set(err, "mkdir %s: %s", s->state_dir, strerror(-ret));
		return ret;
	}
	ret = state_dir_check(s->state_dir, err);
	if (ret < 0)
		return ret;
	path = xasprintf("%s/events", s->state_dir);
	rotfile_open(&s->events_file, path, s->opt.log_max);
	free(path);
	ret = ram_dir_create(s, err);
	if (ret < 0)
		return ret;
	/* Room for clones up front: readers index it without a lock. */
	s->machines_cap = s->cfg.n_machines + VMSET_MAX_CLONES;
	s->machines = xcalloc(s->machines_cap, sizeof(*s->machines));
	for (i = 0; i < s->cfg.n_machines; i++) {
		ret = machine_create(s, &s->cfg.machines[i], (unsigned)i + 1,
				     &s->machines[i], err);
		s->n_machines = i + 1;
		if (ret < 0)
			return ret;
	}
	ret = net_start(s, err);
	if (ret < 0)
		return ret;
	if (pthread_create(&s->timer, NULL, global_timer, s) != 0) {
		aerr_set(err, "cannot start the global timer");
		return -EAGAIN;
	}
	return 0;
}

void
vmset_destroy(struct vmset *s)
{
	size_t i;

	if (!s)
		return;
	pthread_mutex_lock(&s->lock);
	s->stopping = 1;
	pthread_cond_broadcast(&s->timer_cond);
	pthread_mutex_unlock(&s->lock);
	if (s->timer)
		pthread_join(s->timer, NULL);
	for (i = 0; i < s->n_machines; i++)
		if (s->machines[i])
			machine_destroy(s->machines[i]);
	free(s->machines);
	/* The switches go after every VMM that used them. */
	net_stop(s);
	config_free(&s->cfg);
	rotfile_close(&s->events_file);
	tailbuf_free(&s->events);
	pthread_mutex_destroy(&s->lock);
	pthread_cond_destroy(&s->timer_cond);
	if (s->ram_dir)
		remove_tree(s->ram_dir);
	if (s->ram_lock_fd >= 0)
		close(s->ram_lock_fd);
	free(s->ram_dir);
	free(s->state_dir);
	free(s->mountpoint);
	free(s);
}

struct machine *
vmset_machine(struct vmset *s, size_t i)
{
	return i < __atomic_load_n(&s->n_machines, __ATOMIC_ACQUIRE) ?
		       s->machines[i] : NULL;
}

int
machine_removed(const struct machine *m)
{
	return __atomic_load_n(&m->removed, __ATOMIC_ACQUIRE);
}

/* ---- clones ------------------------------------------------------------ */

static int machine_create(struct vmset *s, struct machine_config *cfg,
			  unsigned index, struct machine **out,
			  struct aerr *err);
static void machine_destroy(struct machine *m);

static void
clone_cancel(struct mreq *r)
{
	struct machine *m = r->priv_machine;

	for (struct clone_order *o = m->clones; o; o = o->next)
		if (o->req == r)
			o->req = NULL;
	mreq_finish(m, r, -EINTR);
}

/* A new machine in the set; cfg is taken. */
static int
vmset_add(struct vmset *s, struct machine_config *cfg, struct machine **out,
	  struct aerr *err)
{
	struct machine *nm = NULL;
	unsigned index = 0;
	size_t i, n;
	int ret;

	pthread_mutex_lock(&s->add_lock);
	n = s->n_machines;
	if (n >= s->machines_cap) {
		aerr_set(err, "at most %d clones per mount", VMSET_MAX_CLONES);
		machine_config_free(cfg);
		ret = -ENOSPC;
		goto out;
	}
	/* The next free node number: existing machines keep theirs. */
	for (i = 0; i < n; i++)
		if (s->machines[i]->index > index)
			index = s->machines[i]->index;
	ret = machine_create(s, cfg, index + 1, &nm, err);
	if (ret < 0) {
		machine_destroy(nm);
		goto out;
	}
	s->machines[n] = nm;
	__atomic_store_n(&s->n_machines, n + 1, __ATOMIC_RELEASE);
	*out = nm;
out:
	pthread_mutex_unlock(&s->add_lock);
	return ret;
}

int
vmset_remove(struct vmset *s, const char *name)
{
	struct machine *m = vmset_find(s, name);
	int ret = 0;

	if (!m)
		return -ENOENT;
	machine_lock(m);
	if (!m->is_clone) {
		ret = -EPERM;
	} else if (m->state != MS_STOPPED && m->state != MS_CRASHED) {
		log_line(m, "rmdir: halt the clone first");
		ret = -EBUSY;
	} else {
		__atomic_store_n(&m->removed, 1, __ATOMIC_RELEASE);
		vmset_event(s, m->cfg.name, "removed", NULL);
	}
	machine_unlock(m);
	return ret;
}

/* From the supervisor, with the lock (let go while the clone is made). */
static void
clone_run(struct machine *m)
{
	struct clone_order *order = m->clones;
	char *name = order->name, *snap = order->snapshot, *dir;
	struct machine_config cfg;
	struct machine *nm = NULL;
	struct aerr err = { "" };
	struct mreq *r;
	int ret;

	m->clones = order->next;
	if (!snap) {
		snap = xasprintf("for-%s", name);
		if (!snapshot_present(m, snap)) {
			m->snapshot_pending = xstrdup(snap);
			m->snapshot_req = NULL;
			snapshot_take_run(m, 0);
		}
	}
	r = order->req;
	free(order);
	if (!snapshot_present(m, snap)) {
		log_line(m, "clone: the snapshot could not be taken");
		if (r)
			mreq_finish(m, r, -EIO);
		goto done;
	}
	machine_config_copy(&cfg, &m->cfg);
	free(cfg.name);
	cfg.name = xstrdup(name);
	machine_config_render_json(&cfg);
	dir = snapshot_path(m, snap);
	machine_unlock(m);
	ret = vmset_add(m->set, &cfg, &nm, &err);
	if (ret == 0) {
		/* Its own MACs and addresses on the source's VLANs. */
		ret = net_machine_init(m->set, nm, &err);
		if (ret < 0)
			__atomic_store_n(&nm->removed, 1, __ATOMIC_RELEASE);
	}
	if (ret == 0) {
		machine_lock(nm);
		nm->is_clone = 1;
		nm->clone_source_index = m->index;
		/* Every clone maps the snapshot's RAM copy-on-write. */
		snapshot_prepare_launch(nm, dir, 1);
		log_line(nm, "a clone of the snapshot");
		machine_start_locked(nm, r);
		r = NULL;
		machine_unlock(nm);
	}
	machine_lock(m);
	if (ret < 0) {
		log_line(m, err.msg[0] ? err.msg : "clone failed");
		if (r)
			mreq_finish(m, r, ret);
	} else {
		machine_logl(m, "clone %s of snapshot %s", name, snap);
		vmset_event(m->set, name, "clone", m->cfg.name);
	}
	free(dir);
done:
	free(name);
	free(snap);
}

/*
 * clone NEWNAME [SNAPSHOT]: a new machine that continues the snapshot (one
 * taken now, without SNAPSHOT) with its own state directory, sockets,
 * console, disk overlays, node number, hostname and machine-id.
 */
static void
ctl_clone(struct machine *m, char **argv, struct mreq *r)
{
	struct clone_order **tail;
	struct aerr err = { "" };

	if (!(m->ops->caps & BACKEND_CAP_SNAPSHOT)) {
		machine_logl(m, "clone: the %s backend has no snapshots",
			     m->ops->name);
		mreq_finish(m, r, -EOPNOTSUPP);
		return;
	}
	if (config_name_is_valid(argv[1], &err) < 0) {
		machine_logl(m, "clone: %s", err.msg);
		mreq_finish(m, r, -EINVAL);
		return;
	}
	if (vmset_find(m->set, argv[1])) {
		machine_logl(m, "clone: a machine %s exists already", argv[1]);
		mreq_finish(m, r, -EEXIST);
		return;
	}
	if (m->cfg.start_command) {
		machine_logl(m, "clone: clones of machines started by a script "
			     "are not supported (their 9p mounts keep QEMU from "
			     "saving them)");
		mreq_finish(m, r, -EOPNOTSUPP);
		return;
	}
	if (m->state != MS_RUNNING && !argv[2]) {
		machine_logl(m, "clone: without a snapshot name the machine must "
			     "be running");
		mreq_finish(m, r, -EHOSTDOWN);
		return;
	}
	if (argv[2] && !snapshot_present(m, argv[2])) {
		machine_logl(m, "clone: no snapshot '%s'", argv[2]);
		mreq_finish(m, r, -ENOENT);
		return;
	}
	/* Clones queue up: the source's part is quick, and each clone then
	 * boots on its own. */
	for (tail = &m->clones; *tail; tail = &(*tail)->next) {
		if (!strcmp((*tail)->name, argv[1])) {
			machine_logl(m, "clone: %s is being made already",
				     argv[1]);
			mreq_finish(m, r, -EEXIST);
			return;
		}
	}
	*tail = xcalloc(1, sizeof(**tail));
	(*tail)->name = xstrdup(argv[1]);
	(*tail)->snapshot = argv[2] ? xstrdup(argv[2]) : NULL;
	(*tail)->req = r;
	mreq_park(m, r, clone_cancel, NULL);
	pthread_cond_broadcast(&m->cond);
}

struct machine *
vmset_find(struct vmset *s, const char *name)
{
	size_t i;

	struct machine *m;

	for (i = 0; (m = vmset_machine(s, i)); i++)
		if (!machine_removed(m) && !strcmp(m->cfg.name, name))
			return m;
	return NULL;
}

char *
vmset_render_events(struct vmset *s, size_t *len)
{
	struct strbuf sb;
	char *note = NULL;

	sb_init(&sb);
	pthread_mutex_lock(&s->lock);
	if (s->events.tb_dropped)
		note = xasprintf("older ones are in %s", s->events_file.rf_path ?
							 s->events_file.rf_path :
							 "state_dir/events");
	tailbuf_render(&s->events, &sb, note);
	pthread_mutex_unlock(&s->lock);
	free(note);
	return sb_detach(&sb, len);
}

/* start-all and friends: one child request per machine, done when all are. */
struct group {
	pthread_mutex_t lock;
	struct mreq *outer;
	int pending;
	int total;
	int result;
	struct mreq *children;
};

static void
group_child_done(struct mreq *r)
{
	struct group *g = r->owner;
	int last;

	pthread_mutex_lock(&g->lock);
	if (r->result < 0 && g->result == 0)
		g->result = r->result;
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

/* g stays alive here: outer->done() cannot run while fs/ cancels it. */
static void
group_cancel(struct mreq *outer)
{
	struct group *g = outer->priv_data;
	size_t i, n = (size_t)g->total;

	for (i = 0; i < n; i++)
		mreq_cancel(&g->children[i]);
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
