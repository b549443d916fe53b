/* Clones: `clone NEWNAME [SNAPSHOT]`, made by the source's supervisor. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "machine/internal.h"

/* ---- clones ------------------------------------------------------------ */

/* A new machine in the set; cfg is taken, and what it uses of pre. */
static int
vmset_add(struct vmset *s, struct machine_config *cfg,
	  struct machine_listeners *pre, struct machine **out,
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
	ret = machine_create(s, cfg, index + 1, pre, &nm, err);
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
		machine_log_line(m, "rmdir: halt the clone first");
		ret = -EBUSY;
	} else {
		__atomic_store_n(&m->removed, 1, __ATOMIC_RELEASE);
		vmset_event(s, m->cfg.name, "removed", NULL);
	}
	machine_unlock(m);
	return ret;
}

/* The snapshot a clone continues (malloc'd): the one named, or one taken
 * now. */
static char *
clone_snapshot(struct machine *m, struct mop *op)
{
	char *snap;

	if (op->mo_arg2)
		return xstrdup(op->mo_arg2);
	snap = xasprintf("for-%s", op->mo_arg);
	if (!snapshot_present(m, snap))
		snapshot_take(m, snap, 0);
	return snap;
}

/*
 * With the source's lock: the clone boots, and the request (if its caller
 * still waits) is the clone's now. The clone's lock is taken inside the
 * source's (nobody else holds both), so a cancel finds the request parked
 * on one machine or the other (mreq_cancel); the clone's supervisor
 * answers what completes here.
 */
static void
clone_boot(struct machine *m, struct mop *op, struct machine *nm,
	   const char *dir, struct backend *be, char *alias)
{
	pthread_mutex_lock(&nm->lock);
	nm->is_clone = 1;
	nm->clone_source_index = m->index;
	nm->alias_dir = alias;
	clone_spare_want(m, dir, nm);
	if (be) {
		machine_log_line(nm, "a clone of the snapshot (its VMM was "
				 "pre-started)");
		machine_adopt_vmm(nm, be, dir, mop_take_req(op));
	} else {
		/* Every clone maps the snapshot's RAM copy-on-write. */
		snapshot_prepare_launch(nm, dir, 1);
		machine_log_line(nm, "a clone of the snapshot");
		machine_start_locked(nm, mop_take_req(op));
	}
	pthread_cond_broadcast(&nm->cond);
	pthread_mutex_unlock(&nm->lock);
}

/* From the supervisor, with the lock (let go while the clone is made). */
static void
run_clone(struct machine *m, struct mop *op)
{
	char *snap = clone_snapshot(m, op), *dir, *alias = NULL;
	struct machine_listeners ls;
	struct machine_config cfg;
	struct machine *nm = NULL;
	struct backend *be;
	struct aerr err = { "" };
	int ret;

	if (!snapshot_present(m, snap)) {
		machine_log_line(m, "clone: the snapshot could not be taken");
		mop_finish(m, op, -EIO);
		free(snap);
		return;
	}
	machine_config_copy(&cfg, &m->cfg);
	free(cfg.name);
	cfg.name = xstrdup(op->mo_arg);
	machine_config_render_json(&cfg);
	dir = snapshot_path(m, snap);
	be = clone_spare_take(m, dir, op->mo_arg, &ls, &alias);
	machine_unlock(m);
	/* Its guest runs while the machine is made: nothing reaches it before
	 * the shells are accepted, and its own wake-up overlaps. */
	if (be && m->ops->incoming(be, &err) < 0) {
		machine_log(m, "clone %s: the pre-started VMM did not run (%s); "
			    "starting a new one", op->mo_arg, err.msg);
		m->ops->destroy(be);
		be = NULL;
		machine_listeners_close(&ls);
		err.msg[0] = '\0';
	}
	ret = vmset_add(m->set, &cfg, be ? &ls : NULL, &nm, &err);
	if (ret == 0) {
		/* Its own MACs and addresses on the source's VLANs. */
		ret = net_machine_init(m->set, nm, &err);
		if (ret < 0)
			__atomic_store_n(&nm->removed, 1, __ATOMIC_RELEASE);
	}
	if (be) {
		machine_listeners_close(&ls);
		if (ret < 0) {
			m->ops->destroy(be);
			be = NULL;
		}
	}
	machine_lock(m);
	if (ret < 0) {
		machine_log_line(m, err.msg[0] ? err.msg : "clone failed");
		mop_finish(m, op, ret);
		if (alias)
			unlink(alias);
		free(alias);
	} else {
		clone_boot(m, op, nm, dir, be, alias);
		machine_logl(m, "clone %s of snapshot %s", op->mo_arg, snap);
		vmset_event(m->set, op->mo_arg, "clone", m->cfg.name);
	}
	free(dir);
	free(snap);
}

/* A clone of that name is queued or being made. */
static int
clone_asked(struct machine *m, const char *name)
{
	struct mop *op = m->mop_running;

	if (op && !strcmp(op->mo_verb, "clone") && !strcmp(op->mo_arg, name))
		return 1;
	for (op = m->mops; op; op = op->mo_next)
		if (!strcmp(op->mo_verb, "clone") && !strcmp(op->mo_arg, name))
			return 1;
	return 0;
}

/*
 * clone NEWNAME [SNAPSHOT]: a new machine that continues the snapshot (one
 * taken now, without SNAPSHOT) with its own state directory, sockets,
 * console, disk overlays, node number, hostname and machine-id.
 */
void
clone_ctl(struct machine *m, char **argv, struct mreq *r)
{
	struct aerr err = { "" };
	struct mop *op;

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
	if (clone_asked(m, argv[1])) {
		machine_logl(m, "clone: %s is being made already", argv[1]);
		mreq_finish(m, r, -EEXIST);
		return;
	}
	op = mop_new("clone", run_clone, r);
	op->mo_arg = xstrdup(argv[1]);
	op->mo_arg2 = argv[2] ? xstrdup(argv[2]) : NULL;
	mop_push(m, op);
}
