/*
 * A pre-started VMM per machine, paused and waiting (-incoming defer) for
 * the snapshot the machine was last saved to or restored from. Restoring it
 * then costs no process start, no device set-up and no RAM copy: only the
 * small device state is loaded. The spare connects to the machine's sockets
 * beside the running VMM; the daemon accepts those connections once the
 * running one is gone (shellpool.c, the console reader), so nothing is
 * handed over by hand.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "machine/internal.h"

/* After a restore, the next spare waits for the first command this long. */
#define SPARE_HOLD_MS 1000

static void
on_spare_exited(void *owner, int status)
{
	struct machine *m = owner;

	machine_lock(m);
	m->spare_dead = 1;
	machine_logl(m, "the pre-started VMM exited (status 0x%x)", status);
	pthread_cond_broadcast(&m->cond);
	machine_unlock(m);
}

static void
on_spare_event(void *owner, const char *name, const char *detail)
{
	(void)owner;
	(void)name;
	(void)detail;
}

static void
on_spare_log(void *owner, const char *text)
{
	machine_log(owner, "pre-started VMM: %s", text);
}

static const struct backend_events spare_events = {
	.exited = on_spare_exited,
	.vm_event = on_spare_event,
	.log = on_spare_log,
};

void
spare_want(struct machine *m, const char *dir)
{
	if (!m->ops->incoming || !m->ops->set_owner || m->cfg.start_command ||
	    m->is_clone || m->set->opt.no_spares)
		return;
	free(m->spare_want);
	m->spare_want = xstrdup(dir);
	pthread_cond_broadcast(&m->cond);
}

/*
 * After a restore the next spare waits until the first command has ended
 * (or SPARE_HOLD_MS passed): starting a VMM, copying the RAM and loading
 * the state take more CPU than that command, which runs while TCG
 * translates the guest afresh, and this host may have only two cores.
 */
void
spare_hold(struct machine *m)
{
	m->spare_hold_until = now_mono_ms() + SPARE_HOLD_MS;
	m->spare_hold_cmds = m->cmds_ended;
}

static int
spare_held(struct machine *m, int64_t now)
{
	if (m->spare_hold_until && (now >= m->spare_hold_until ||
				    m->cmds_ended != m->spare_hold_cmds))
		m->spare_hold_until = 0;
	return m->spare_hold_until != 0;
}

/* The supervisor's wake-up for a held spare. */
void
spare_deadline(struct machine *m, int64_t now, int64_t *next)
{
	if (m->spare_want && !m->spare && spare_held(m, now) &&
	    m->spare_hold_until < *next)
		*next = m->spare_hold_until;
}

int
spare_needed(struct machine *m)
{
	if (m->spare_old)
		return 1;
	if (m->spare)
		return m->spare_dead || !m->spare_want ||
		       strcmp(m->spare_snapshot, m->spare_want);
	/* Not while a boot or restore finishes: it would compete for CPU.
	 * (The supervisor asks only once its queue is empty.) */
	return m->spare_want != NULL && m->state != MS_STARTING &&
	       !spare_held(m, now_mono_ms());
}

void
spare_forget(struct machine *m)
{
	free(m->spare_want);
	m->spare_want = NULL;
	if (!m->spare)
		return;
	/* At most one: no new spare starts before the supervisor took it. */
	m->spare_old = m->spare;
	m->spare = NULL;
	m->spare_dead = 0;
	free(m->spare_snapshot);
	m->spare_snapshot = NULL;
	pthread_cond_broadcast(&m->cond);
}

void
spare_drop(struct machine *m, int forget)
{
	struct backend *be = m->spare, *old = m->spare_old;

	if (forget) {
		free(m->spare_want);
		m->spare_want = NULL;
	}
	m->spare_old = NULL;
	m->spare = NULL;
	m->spare_dead = 0;
	free(m->spare_snapshot);
	m->spare_snapshot = NULL;
	if (!be && !old)
		return;
	machine_unlock(m);
	if (old)
		m->ops->destroy(old);
	if (be)
		m->ops->destroy(be);
	machine_lock(m);
	pthread_cond_broadcast(&m->cond);
}

void
spare_run(struct machine *m)
{
	const char *paths[16];
	struct backend_launch l;
	struct backend *be = NULL;
	struct aerr err = { "" };
	struct snapshot_files f;
	char *dir, *tag, *ram;
	int64_t t0 = now_mono_ms();
	int ret;

	if (m->spare || m->spare_old) {
		/* A dead one is not replaced until the next snapshot or
		 * restore asks: whatever killed it may kill the next. */
		spare_drop(m, m->spare && m->spare_dead);
		return;
	}
	dir = xstrdup(m->spare_want);
	tag = xasprintf("spare%u", ++m->spare_seq);
	snapshot_files(m, dir, &f);
	machine_launch_params(m, &l, paths);
	l.incoming = f.state;
	l.disk_bases = (const char *const *)f.disks;
	l.incoming_ram = f.ram;
	l.ram_private = 0;
	l.ram_path = ram = machine_ram_path(m);
	l.defer_incoming = 1;
	l.vmm_tag = tag;
	l.events = &spare_events;
	/* An exit reported while launch() returns must stick. */
	m->spare_dead = 0;
	machine_unlock(m);
	ret = m->ops->launch(&l, &be, &err);
	machine_lock(m);
	snapshot_files_free(&f);
	free(ram);
	free(tag);
	if (ret < 0) {
		/* No retry loop: the next snapshot or restore asks again. */
		machine_logl(m, "pre-starting a VMM failed: %s",
			     err.msg[0] ? err.msg : strerror(-ret));
		free(m->spare_want);
		m->spare_want = NULL;
		free(dir);
		return;
	}
	m->spare = be;
	m->spare_snapshot = dir;
	machine_logl(m, "a VMM waits to restore %s (pre-started in %lld ms)",
		     strrchr(dir, '/') + 1, (long long)(now_mono_ms() - t0));
	if (!m->spare_want || strcmp(m->spare_want, dir))
		spare_drop(m, 0);
}

struct backend *
spare_take(struct machine *m, const char *dir)
{
	struct backend *be = m->spare;

	if (!be || m->spare_dead || strcmp(m->spare_snapshot, dir))
		return NULL;
	m->spare = NULL;
	free(m->spare_snapshot);
	m->spare_snapshot = NULL;
	return be;
}
