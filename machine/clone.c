/* Clones: `clone NEWNAME [SNAPSHOT]`, made by the source's supervisor. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "machine/internal.h"

/* ---- clones ------------------------------------------------------------ */

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
		machine_log_line(m, "rmdir: halt the clone first");
		ret = -EBUSY;
	} else {
		__atomic_store_n(&m->removed, 1, __ATOMIC_RELEASE);
		vmset_event(s, m->cfg.name, "removed", NULL);
	}
	machine_unlock(m);
	return ret;
}

/* From the supervisor, with the lock (let go while the clone is made). */
void
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
		machine_log_line(m, "clone: the snapshot could not be taken");
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
		machine_log_line(nm, "a clone of the snapshot");
		machine_start_locked(nm, r);
		r = NULL;
		machine_unlock(nm);
	}
	machine_lock(m);
	if (ret < 0) {
		machine_log_line(m, err.msg[0] ? err.msg : "clone failed");
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
void
clone_ctl(struct machine *m, char **argv, struct mreq *r)
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
