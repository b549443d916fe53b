/*
 * Snapshots: boot once, continue many times. A snapshot is a directory
 * STATE/<m>/snapshots/<name>/ holding the saved memory and device state and
 * the frozen disks. Restoring starts a new VMM from it: the guest's shells
 * survive (the daemon is connected before the guest runs, so they never see
 * a disconnect), the daemon resynchronises them without waiting for a
 * banner, then sets the guest's clock and reseeds its random numbers.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "machine/internal.h"

static int
snapshot_name_ok(const char *name)
{
	size_t n = strlen(name);

	if (!n || n > 64 || name[0] == '.')
		return 0;
	return strspn(name, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"
			    "0123456789_-.") == n;
}

static char *
snapshot_dir(struct machine *m, const char *name)
{
	return xasprintf("%s/snapshots/%s", m->dir, name);
}

char *
snapshot_path(struct machine *m, const char *name)
{
	return snapshot_dir(m, name);
}

static int snapshot_exists(struct machine *m, const char *name);

int
snapshot_present(struct machine *m, const char *name)
{
	return snapshot_name_ok(name) && snapshot_exists(m, name);
}

static int
snapshot_exists(struct machine *m, const char *name)
{
	char *state = xasprintf("%s/snapshots/%s/state", m->dir, name);
	int ok = access(state, R_OK) == 0;

	free(state);
	return ok;
}

static int
check_backend(struct machine *m, const char *verb, struct mreq *r)
{
	if (!(m->ops->caps & BACKEND_CAP_SNAPSHOT) || !m->ops->save) {
		machine_logl(m, "%s: the %s backend has no snapshots", verb,
			     m->ops->name);
		mreq_finish(m, r, -EOPNOTSUPP);
		return -1;
	}
	return 0;
}

static void
run_take(struct machine *m, struct mop *op)
{
	mop_finish(m, op, snapshot_take(m, op->mo_arg, 1));
}

void
snapshot_ctl_take(struct machine *m, char **argv, struct mreq *r)
{
	const char *name = argv[1];
	struct mop *op;

	if (check_backend(m, "snapshot", r) < 0)
		return;
	if (!snapshot_name_ok(name)) {
		machine_logl(m, "snapshot: '%s' is not a snapshot name "
			     "([A-Za-z0-9._-], at most 64)", name);
		mreq_finish(m, r, -EINVAL);
		return;
	}
	if (snapshot_exists(m, name)) {
		machine_logl(m, "snapshot: %s exists already (rm it first)", name);
		mreq_finish(m, r, -EEXIST);
		return;
	}
	if (m->state != MS_RUNNING || !m->be) {
		machine_logl(m, "snapshot: the machine is %s, not running",
			     mstate_name(m->state));
		mreq_finish(m, r, -EHOSTDOWN);
		return;
	}
	op = mop_new("snapshot", run_take, r);
	op->mo_arg = xstrdup(name);
	mop_push(m, op);
}

static void run_restore(struct machine *m, struct mop *op);

void
snapshot_ctl_restore(struct machine *m, char **argv, struct mreq *r)
{
	const char *name = argv[1];
	struct mop *op;

	if (check_backend(m, "restore", r) < 0)
		return;
	if (!snapshot_name_ok(name) || !snapshot_exists(m, name)) {
		machine_logl(m, "restore: no snapshot '%s'", name);
		mreq_finish(m, r, -ENOENT);
		return;
	}
	if (m->state == MS_STOPPING || mop_find(m, "launch")) {
		machine_logl(m, "restore: the machine is %s",
			     mstate_name(m->state));
		mreq_finish(m, r, -EBUSY);
		return;
	}
	op = mop_new("restore", run_restore, r);
	op->mo_arg = xstrdup(name);
	mop_push(m, op);
}

/* Disk-usage of a snapshot directory, in bytes actually allocated. */
static unsigned long long
dir_usage(const char *dir, long long *mtime)
{
	unsigned long long total = 0;
	struct dirent *de;
	DIR *d = opendir(dir);

	if (!d)
		return 0;
	while ((de = readdir(d))) {
		struct stat st;

		/* The RAM file is linked from elsewhere: count it. */
		if (fstatat(dirfd(d), de->d_name, &st,
			    strcmp(de->d_name, "ram") ? AT_SYMLINK_NOFOLLOW : 0)
		    < 0 || !S_ISREG(st.st_mode))
			continue;
		total += (unsigned long long)st.st_blocks * 512;
		if (!strcmp(de->d_name, "state") && mtime)
			*mtime = st.st_mtime;
	}
	closedir(d);
	return total;
}

/* The snapshot's RAM lives beside the machines' RAM (in memory, usually);
 * the snapshot directory links to it. */
static char *
snapshot_ram_path(struct machine *m, const char *name)
{
	return xasprintf("%s/%s.snapshot.%s.ram", m->set->ram_dir, m->cfg.name,
			 name);
}

/* From the supervisor, with the lock: 0 or -errno, the reason in log. */
int
snapshot_take(struct machine *m, const char *name, int want_spare)
{
	char *dir, *tmp, *ram, *link_path;
	struct backend *be = m->be;
	struct aerr err = { "" };
	int64_t t0 = now_mono_ms();
	int ret, ram_saved = 0;

	dir = snapshot_dir(m, name);
	tmp = xasprintf("%s/snapshots/.%s.tmp", m->dir, name);
	ram = snapshot_ram_path(m, name);
	link_path = xasprintf("%s/ram", tmp);
	if (!be) {
		ret = -EHOSTDOWN;
		machine_logl(m, "snapshot %s: the machine is gone", name);
		goto out;
	}
	if (snapshot_exists(m, name)) {
		/* Asked for twice, one after the other. */
		ret = -EEXIST;
		machine_logl(m, "snapshot: %s exists already (rm it first)",
			     name);
		goto out;
	}
	remove_tree(tmp);
	ret = mkdir_p(tmp, 0700);
	if (ret < 0) {
		machine_logl(m, "snapshot %s: mkdir %s: %s", name, tmp,
			     strerror(-ret));
		goto out;
	}
	/* The backend's callbacks take the lock: let go while QEMU works. */
	machine_unlock(m);
	ret = m->ops->save(be, tmp, ram, &ram_saved, &err);
	if (ret == 0 && ram_saved && symlink(ram, link_path) < 0) {
		ret = -errno;
		aerr_set(&err, "symlink %s: %s", link_path, strerror(errno));
	}
	if (ret == 0 && rename(tmp, dir) < 0)
		ret = -errno;
	machine_lock(m);
	if (ret < 0) {
		machine_logl(m, "snapshot %s: %s", name,
			     err.msg[0] ? err.msg : strerror(-ret));
		remove_tree(tmp);
		unlink(ram);
	} else {
		machine_logl(m, "snapshot %s: saved in %lld ms (%llu KiB%s)",
			     name, (long long)(now_mono_ms() - t0),
			     dir_usage(dir, NULL) / 1024,
			     ram_saved ? ", RAM as a file" : "");
		vmset_event(m->set, m->cfg.name, "snapshot", name);
		if (want_spare)
			spare_want(m, dir);
	}
out:
	free(dir);
	free(tmp);
	free(ram);
	free(link_path);
	return ret;
}

void
snapshot_files(struct machine *m, const char *dir, struct snapshot_files *f)
{
	struct stat st;
	size_t i;

	f->state = xasprintf("%s/state", dir);
	f->disks = xcalloc(m->cfg.n_disks + 1, sizeof(char *));
	for (i = 0; i < m->cfg.n_disks; i++)
		f->disks[i] = xasprintf("%s/disk.%zu.qcow2", dir, i);
	f->ram = xasprintf("%s/ram", dir);
	if (lstat(f->ram, &st) < 0) {
		/* RAM is in the state: the snapshot of a clone. */
		free(f->ram);
		f->ram = NULL;
	}
}

void
snapshot_files_free(struct snapshot_files *f)
{
	for (size_t i = 0; f->disks && f->disks[i]; i++)
		free(f->disks[i]);
	free(f->disks);
	free(f->state);
	free(f->ram);
	memset(f, 0, sizeof(*f));
}

void
snapshot_prepare_launch(struct machine *t, const char *dir, int ram_private)
{
	struct snapshot_files f;
	struct snapshot_files old = {
		.state = t->launch_incoming,
		.disks = t->launch_disks,
		.ram = t->launch_ram,
	};

	snapshot_files_free(&old);
	snapshot_files(t, dir, &f);
	t->launch_incoming = f.state;
	t->launch_disks = f.disks;
	t->launch_ram = f.ram;
	t->launch_ram_private = ram_private;
	free(t->boot_snapshot);
	t->boot_snapshot = xstrdup(dir);
}

/* The running VMM goes; its state is thrown away, so no need to let it
 * shut down. With a spare it is reaped once the spare runs; the shells
 * answer the spare's SYNC once they reconnect. */
static void
restore_drop_vmm(struct machine *m, struct backend *be, int spare)
{
	m->state = MS_STOPPING;
	m->be = NULL;
	m->boot_restored = spare;
	/* Its connections go now, with the lock: once the shell workers
	 * see them end they accept the spare's, which must then stay. */
	if (spare)
		shellpool_disconnect(m);
	shellpool_vmm_gone(m);
	net_reset(m);
	machine_unlock(m);
	if (spare) {
		/* No callbacks from it: it is out of the way now. */
		m->ops->set_owner(be, NULL, NULL);
		m->ops->kill(be);
	} else {
		m->ops->kill(be);
		m->ops->destroy(be);
	}
	machine_lock(m);
	if (spare)
		m->dead_be = be;
}

static void
run_restore(struct machine *m, struct mop *op)
{
	char *dir = snapshot_dir(m, op->mo_arg);
	struct backend *spare;
	struct mreq *r;

	machine_logl(m, "restore %s", op->mo_arg);
	spare = spare_take(m, dir);
	if (m->be)
		restore_drop_vmm(m, m->be, spare != NULL);
	m->state = MS_STOPPED;
	/* Its caller waits for the boot now (taken after the last unlock: a
	 * cancel meanwhile answered it). */
	r = mop_take_req(op);
	if (spare) {
		machine_adopt_vmm(m, spare, dir, r);
	} else {
		snapshot_prepare_launch(m, dir, 0);
		machine_start_next(m, r);
	}
	/* The next restore of it is as quick. */
	spare_want(m, dir);
	spare_hold(m);
	free(dir);
}

/*
 * A clone's own name and identity; names are [A-Za-z0-9_.-]. The
 * machine-id is the host's random number (id, or none): the guest's own
 * (/proc/sys/kernel/random/uuid) comes from the saved random state, which
 * the seed does not reseed at once, so every clone of one snapshot read
 * the same. The agent sets them (_athost); without it, or in a guest saved
 * with an older prelude, the shell's builtins write them.
 */
static void
resume_identity(struct machine *m, struct strbuf *sb, unsigned char *id)
{
	char hex[33] = "";

	if (id) {
		/* A version 4 UUID, as systemd makes them. */
		id[6] = (id[6] & 0x0f) | 0x40;
		id[8] = (id[8] & 0x3f) | 0x80;
		for (size_t i = 0; i < 16; i++)
			snprintf(hex + 2 * i, 3, "%02x", id[i]);
	}
	sb_addf(sb, "if command -v _athost >/dev/null 2>&1 && "
		"_athost '%s' %s; then :; else ", m->cfg.name, hex);
	sb_addf(sb, "echo '%s' >/proc/sys/kernel/hostname; "
		"echo '%s' >/etc/hostname 2>/dev/null; ",
		m->cfg.name, m->cfg.name);
	if (id)
		sb_addf(sb, "if [ -w /etc/machine-id ]; then echo %s "
			">/etc/machine-id; fi; ", hex);
	sb_adds(sb, "fi; ");
}

/*
 * Sent with the first SYNC of a continued guest, before anything else runs
 * in it: its clock stood still at the save, and every continuation would
 * share the saved random state; a clone needs its own name. Builtins where
 * they do: every new process is slow while TCG translates afresh.
 */
void
snapshot_resume_script(struct machine *m, struct strbuf *sb)
{
	unsigned char seed[64], id[16];
	int fd = open("/dev/urandom", O_RDONLY | O_CLOEXEC);
	ssize_t n = fd >= 0 ? read(fd, seed, sizeof(seed)) : -1;
	ssize_t nid = fd >= 0 ? read(fd, id, sizeof(id)) : -1;
	long long ms = now_unix_ms();

	if (fd >= 0)
		close(fd);
	/* The agent sets it to the millisecond without a new process; a
	 * guest saved with an older prelude (no _atclk) runs date(1). */
	sb_addf(sb, "if command -v _atclk >/dev/null 2>&1; then _atclk %lld %lld; "
		"else date -s @%lld >/dev/null 2>&1; fi; ", ms / 1000,
		ms % 1000 * 1000000, ms / 1000);
	if (n == (ssize_t)sizeof(seed)) {
		sb_adds(sb, "printf '");
		for (size_t i = 0; i < sizeof(seed); i++)
			sb_addf(sb, "\\%03o", seed[i]);
		sb_adds(sb, "' >/dev/urandom 2>/dev/null; ");
	}
	if (m->is_clone)
		resume_identity(m, sb, nid == (ssize_t)sizeof(id) ? id : NULL);
}

int
machine_snapshot_list(struct machine *m, char **names, size_t *len)
{
	char *base = xasprintf("%s/snapshots", m->dir);
	struct strbuf sb;
	struct dirent *de;
	DIR *d = opendir(base);
	int n = 0;

	sb_init(&sb);
	while (d && (de = readdir(d))) {
		if (de->d_name[0] == '.' || !snapshot_exists(m, de->d_name))
			continue;
		sb_add(&sb, de->d_name, strlen(de->d_name) + 1);
		n++;
	}
	if (d)
		closedir(d);
	free(base);
	*names = sb_detach(&sb, len);
	return n;
}

int
machine_snapshot_stat(struct machine *m, const char *name,
		      struct guest_stat *st)
{
	char *dir;
	long long mtime = 0;

	if (!snapshot_name_ok(name) || !snapshot_exists(m, name))
		return -ENOENT;
	dir = snapshot_dir(m, name);
	st->mode = S_IFREG | 0444;
	st->size = dir_usage(dir, &mtime);
	st->mtime = mtime;
	free(dir);
	return 0;
}

int
machine_snapshot_remove(struct machine *m, const char *name)
{
	char *dir, *ram;
	int ret = 0;

	if (!snapshot_name_ok(name) || !snapshot_exists(m, name))
		return -ENOENT;
	dir = snapshot_dir(m, name);
	for (size_t i = 0; ret == 0 && vmset_machine(m->set, i); i++) {
		struct machine *o = vmset_machine(m->set, i);

		machine_lock(o);
		if (o->boot_snapshot && !strcmp(o->boot_snapshot, dir) && o->be)
			ret = -EBUSY;
		machine_unlock(o);
		if (ret < 0)
			machine_log(m, "snapshot %s: in use by the running "
				    "machine %s (halt it first)", name,
				    o->cfg.name);
	}
	if (ret < 0) {
		free(dir);
		return ret;
	}
	/* A VMM waiting to restore it is no use now. */
	machine_lock(m);
	if ((m->spare_want && !strcmp(m->spare_want, dir)) ||
	    (m->spare_snapshot && !strcmp(m->spare_snapshot, dir)))
		spare_forget(m);
	/* ...and gone when rm returns: the supervisor destroys it. */
	while (m->spare_old && !m->stopping)
		pthread_cond_wait(&m->cond, &m->lock);
	clone_spare_forget(m, dir);
	machine_unlock(m);
	ram = snapshot_ram_path(m, name);
	ret = remove_tree(dir);
	if (ret == 0)
		unlink(ram);
	free(ram);
	free(dir);
	if (ret == 0)
		machine_log(m, "snapshot %s: removed", name);
	return ret;
}
