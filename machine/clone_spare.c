/*
 * A pre-started VMM for a machine's next clone: paused, the snapshot the
 * last clone continued loaded (-incoming defer, -S), so that a clone costs
 * no process start and no load, only `cont` and the shells' resync.
 *
 * The clone's name, and so its state directory, is unknown until the clone
 * is asked for: the VMM starts in a neutral directory STATE/<m>+clone.N
 * ('+' is in no machine name), beside listening sockets of its own that it
 * connects to at once. A clone that takes it renames that directory to its
 * own (the sockets move with it, still listening), leaves a symlink at the
 * old name for the paths the VMM already holds (its overlays' names inside
 * QEMU, its log), and takes over the listening sockets, whose queued
 * connections its shell workers then accept.
 *
 * Lazy: only a machine that was cloned has one, and the next one starts
 * only after the clone's first command (or CLONE_SPARE_HOLD_MS): the TCG
 * warm-up of that command needs the host's cores more.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common/sock.h"
#include "machine/internal.h"

#define CLONE_SPARE_HOLD_MS 1000
/* While held, how often the supervisor looks at the clone's commands. */
#define CLONE_SPARE_POLL_MS 20

struct clone_spare {
	struct backend *be;
	char *snapshot;            /* the snapshot directory it loaded */
	char *dir;                 /* its own state directory */
	char *ram;                 /* a RAM file name of its own */
	struct machine_listeners ls;
};

static void
listeners_init(struct machine_listeners *ls)
{
	memset(ls, 0, sizeof(*ls));
	ls->console = -1;
	for (size_t i = 0; i < MACHINE_MAX_SHELLS; i++)
		ls->shells[i] = -1;
}

void
machine_listeners_close(struct machine_listeners *ls)
{
	if (ls->console >= 0)
		close(ls->console);
	for (size_t i = 0; i < MACHINE_MAX_SHELLS; i++)
		if (ls->shells[i] >= 0)
			close(ls->shells[i]);
	listeners_init(ls);
}

static void
cs_free(struct clone_spare *cs)
{
	machine_listeners_close(&cs->ls);
	free(cs->snapshot);
	free(cs->dir);
	free(cs->ram);
	free(cs);
}

/* Without the lock: the VMM goes, then its directory. */
static void
cs_destroy(struct machine *m, struct clone_spare *cs)
{
	if (cs->be)
		m->ops->destroy(cs->be);
	machine_listeners_close(&cs->ls);
	remove_tree(cs->dir);
	cs_free(cs);
}

static void
on_cspare_exited(void *owner, int status)
{
	struct machine *m = owner;

	machine_lock(m);
	m->cspare_dead = 1;
	machine_logl(m, "the VMM pre-started for a clone exited (status 0x%x)",
		     status);
	pthread_cond_broadcast(&m->cond);
	machine_unlock(m);
}

static void
on_cspare_event(void *owner, const char *name, const char *detail)
{
	(void)owner;
	(void)name;
	(void)detail;
}

static void
on_cspare_log(void *owner, const char *text)
{
	machine_log(owner, "pre-started VMM for a clone: %s", text);
}

static const struct backend_events cspare_events = {
	.exited = on_cspare_exited,
	.vm_event = on_cspare_event,
	.log = on_cspare_log,
};

/*
 * With the lock: m was cloned from the snapshot in dir; the clone nm (its
 * lock held too) runs its first command before the next spare starts.
 */
void
clone_spare_want(struct machine *m, const char *dir, struct machine *nm)
{
	if (!m->ops->incoming || !m->ops->set_owner || m->cfg.start_command ||
	    m->is_clone || m->set->opt.no_spares)
		return;
	/* Its NICs would be the source's: a TAP is one VMM's. */
	if ((m->ops->caps & BACKEND_CAP_TAPNET) && m->n_nics)
		return;
	/* The spare's shells reach the clone through listening sockets it
	 * connects to: QEMU's chardevs do; a microVM's vsock channels are
	 * dialled by the backend and handed to the machine instead. */
	if (strcmp(m->ops->name, "qemu"))
		return;
	if (!m->cspare_want || strcmp(m->cspare_want, dir)) {
		free(m->cspare_want);
		m->cspare_want = xstrdup(dir);
	}
	m->cspare_hold = nm;
	m->cspare_hold_cmds = nm->cmds_ended;
	m->cspare_hold_until = now_mono_ms() + CLONE_SPARE_HOLD_MS;
	pthread_cond_broadcast(&m->cond);
}

/* The clone whose first command comes first has not run it yet. Its
 * count is read without its lock (the source's is held): a stale value
 * only delays the spare by one poll. */
static int
cspare_held(struct machine *m, int64_t now)
{
	if (!m->cspare_hold_until)
		return 0;
	if (now >= m->cspare_hold_until ||
	    __atomic_load_n(&m->cspare_hold->cmds_ended, __ATOMIC_RELAXED) !=
	    m->cspare_hold_cmds) {
		m->cspare_hold_until = 0;
		m->cspare_hold = NULL;
		return 0;
	}
	return 1;
}

void
clone_spare_deadline(struct machine *m, int64_t now, int64_t *next)
{
	int64_t t;

	if (!m->cspare_want || m->cspare || !cspare_held(m, now))
		return;
	t = now + CLONE_SPARE_POLL_MS;
	if (m->cspare_hold_until < t)
		t = m->cspare_hold_until;
	if (t < *next)
		*next = t;
}

int
clone_spare_needed(struct machine *m)
{
	if (m->cspare)
		return m->cspare_dead || !m->cspare_want ||
		       strcmp(m->cspare->snapshot, m->cspare_want);
	return m->cspare_want && !cspare_held(m, now_mono_ms());
}

/* With the lock: none any more; forget = and want none. */
void
clone_spare_drop(struct machine *m, int forget)
{
	struct clone_spare *cs = m->cspare;

	if (forget) {
		free(m->cspare_want);
		m->cspare_want = NULL;
	}
	m->cspare = NULL;
	m->cspare_dead = 0;
	if (!cs)
		return;
	m->cspare_busy++;
	machine_unlock(m);
	cs_destroy(m, cs);
	machine_lock(m);
	m->cspare_busy--;
	pthread_cond_broadcast(&m->cond);
}

/* The sockets the VMM will connect to: bound before it starts. */
static int
cs_listen(struct machine *m, struct clone_spare *cs, const char **paths,
	  char **console, struct aerr *err)
{
	size_t i;
	int fd;

	*console = xasprintf("%s/console.sock", cs->dir);
	fd = sock_listen_unix(*console, err);
	if (fd < 0)
		return fd;
	cs->ls.console = fd;
	for (i = 0; i < m->n_shells && i < MACHINE_MAX_SHELLS; i++) {
		char *p = xasprintf("%s/shell.%zu.sock", cs->dir, i);

		fd = sock_listen_unix(p, err);
		paths[i] = p;
		if (fd < 0)
			return fd;
		cs->ls.shells[i] = fd;
		cs->ls.n_shells = i + 1;
	}
	return 0;
}

/* Without the lock: start the VMM of cs (dir, snapshot set) for m. */
static int
cs_launch(struct machine *m, struct clone_spare *cs,
	  const struct backend_launch *base, struct aerr *err)
{
	const char *paths[MACHINE_MAX_SHELLS] = { NULL };
	struct backend_launch l = *base;
	struct snapshot_files f;
	char *console = NULL, *tag;
	int ret;

	remove_tree(cs->dir);
	ret = mkdir_p(cs->dir, 0700);
	if (ret < 0) {
		aerr_set(err, "mkdir %s: %s", cs->dir, strerror(-ret));
		return ret;
	}
	ret = cs_listen(m, cs, paths, &console, err);
	tag = strrchr(cs->dir, '/') + 1;
	snapshot_files(m, cs->snapshot, &f);
	l.cfg.name = tag;
	l.state_dir = cs->dir;
	l.console_path = console;
	l.shell_paths = paths;
	/* Its MACs are the snapshot's until the clone's set-up changes
	 * them: the command line's are not used. */
	l.node = 0;
	l.incoming = f.state;
	l.disk_bases = (const char *const *)f.disks;
	l.incoming_ram = f.ram;
	/* Every clone maps the snapshot's RAM copy-on-write. */
	l.ram_private = 1;
	l.ram_path = cs->ram;
	l.defer_incoming = 1;
	l.vmm_tag = NULL;
	l.events = &cspare_events;
	l.owner = m;
	if (ret == 0)
		ret = m->ops->launch(&l, &cs->be, err);
	snapshot_files_free(&f);
	for (size_t i = 0; i < MACHINE_MAX_SHELLS; i++)
		free((char *)paths[i]);
	free(console);
	return ret;
}

/* The supervisor's part, with the lock (let go while the VMM starts). */
void
clone_spare_run(struct machine *m)
{
	const char *paths[MACHINE_MAX_SHELLS];
	struct backend_launch l;
	struct aerr err = { "" };
	struct clone_spare *cs;
	int64_t t0 = now_mono_ms();
	int ret;

	if (m->cspare) {
		/* A dead one is not replaced until the next clone asks. */
		clone_spare_drop(m, m->cspare_dead);
		return;
	}
	cs = xcalloc(1, sizeof(*cs));
	listeners_init(&cs->ls);
	cs->snapshot = xstrdup(m->cspare_want);
	cs->dir = xasprintf("%s/%s+clone.%u", m->set->state_dir, m->cfg.name,
			    ++m->cspare_seq);
	cs->ram = xasprintf("%s/%s+clone.%u.ram", m->set->ram_dir,
			    m->cfg.name, m->cspare_seq);
	machine_launch_params(m, &l, paths);
	m->cspare_dead = 0;
	m->cspare_busy++;
	machine_unlock(m);
	ret = cs_launch(m, cs, &l, &err);
	if (ret < 0) {
		cs_destroy(m, cs);
		cs = NULL;
	}
	machine_lock(m);
	m->cspare_busy--;
	pthread_cond_broadcast(&m->cond);
	if (ret < 0) {
		/* No retry loop: the next clone asks again. */
		machine_logl(m, "pre-starting a VMM for a clone failed: %s",
			     err.msg[0] ? err.msg : strerror(-ret));
		free(m->cspare_want);
		m->cspare_want = NULL;
		return;
	}
	m->cspare = cs;
	machine_logl(m, "a VMM waits to be a clone of %s (pre-started in "
		     "%lld ms)", strrchr(cs->snapshot, '/') + 1,
		     (long long)(now_mono_ms() - t0));
	if (!m->cspare_want || strcmp(m->cspare_want, cs->snapshot))
		clone_spare_drop(m, 0);
}

/*
 * With the lock: the spare for the snapshot in dir becomes the VMM of the
 * clone name: its directory is renamed to state_dir/name, and *ls gets its
 * listening sockets. NULL when there is none for dir, or when name's
 * directory exists already (a removed clone's): then the spare waits on.
 */
struct backend *
clone_spare_take(struct machine *m, const char *dir, const char *name,
		 struct machine_listeners *ls, char **alias)
{
	struct clone_spare *cs = m->cspare;
	struct backend *be;
	char *target;

	if (!cs || m->cspare_dead || strcmp(cs->snapshot, dir))
		return NULL;
	target = xasprintf("%s/%s", m->set->state_dir, name);
	if (access(target, F_OK) == 0)
		errno = EEXIST;
	if (errno != ENOENT || rename(cs->dir, target) < 0) {
		machine_logl(m, "clone %s: the pre-started VMM is not used "
			     "(%s: %s)", name, target, strerror(errno));
		free(target);
		return NULL;
	}
	/* The VMM knows its files by the old name. */
	if (symlink(target, cs->dir) < 0)
		machine_logl(m, "clone %s: symlink %s: %s", name, cs->dir,
			     strerror(errno));
	free(target);
	be = cs->be;
	*ls = cs->ls;
	*alias = cs->dir;
	cs->dir = NULL;
	listeners_init(&cs->ls);
	m->cspare = NULL;
	m->cspare_dead = 0;
	free(cs->snapshot);
	free(cs->ram);
	free(cs);
	return be;
}

/* With the lock, from any thread but the supervisor: none for the
 * snapshot in dir any more; returns once the supervisor destroyed it (or
 * the machine's threads end). */
void
clone_spare_forget(struct machine *m, const char *dir)
{
	if ((m->cspare_want && !strcmp(m->cspare_want, dir)) ||
	    (m->cspare && !strcmp(m->cspare->snapshot, dir))) {
		free(m->cspare_want);
		m->cspare_want = NULL;
		pthread_cond_broadcast(&m->cond);
	}
	/* One being started may be of dir too: it goes right after. */
	while ((m->cspare_busy || (m->cspare && !m->cspare_want)) &&
	       !m->stopping)
		pthread_cond_wait(&m->cond, &m->lock);
}

/* For info: the snapshot a clone spare waits with, or NULL. */
const char *
clone_spare_snapshot(struct machine *m)
{
	if (!m->cspare || m->cspare_dead)
		return NULL;
	return strrchr(m->cspare->snapshot, '/') + 1;
}
