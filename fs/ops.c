/*
 * The low-level FUSE operations: paths to nodes (fs/nodes.c), open files to
 * per-open state in fi->fh, bytes and errnos to machine/ calls. Anything that
 * can take long is parked (fs/park.c) and answered from the machine's thread.
 *
 *	$ ls /vms/a
 *	config.json  console  ctl  exec  files  info  jobs  log  status  wait
 *	$ echo start > /vms/a/ctl                 # returns once running
 *	$ cat /vms/a/status
 *	running
 *	$ ( exec 3<>/vms/a/exec; printf 'uname -s' >&3; cat <&3 )
 *	Linux
 *	$ mkdir /vms/a/jobs/web && echo 'httpd -f' > /vms/a/jobs/web/cmd
 *	$ timeout 1 cat /vms/a/jobs/web/exit; echo $?    # parked, interrupted
 *	124
 *	$ rmdir /vms/a/jobs/web
 *	$ cat /vms/a/files/etc/hostname
 *	a
 *
 * This file never asks what a node is: each operation calls the node's kind
 * (its row's struct fs_ops, fs/internal.h), implemented by kind in values.c,
 * control.c, transactions.c, streams.c, guestfs.c and dirs.c.
 * Generated files are direct_io with size 0 (and nonseekable for tx and
 * streams), so read(2) returns exactly what the handler returns. FLUSH never
 * does anything: bash sends one before the first write.
 */
#include "fs/internal.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/statvfs.h>
#include <unistd.h>

#include "common/util.h"

#define FIXED_TIMEOUT 1.0      /* seconds; nodes that never change */
#define SHUTDOWN_WAIT_MS 5000

struct fs_mount *
fs_mnt(fuse_req_t req)
{
	return fuse_req_userdata(req);
}

struct machine *
fs_node_machine(struct fs_mount *mnt, const struct fs_node *n)
{
	if (n->machine == FS_NO_MACHINE)
		return NULL;
	return vmset_machine(mnt->vms, n->machine);
}

/* Jobs and guest files come and go: the kernel must ask again. */
double
fs_row_timeout(const struct fs_row *row)
{
	if (row->flags & FS_ROW_UNCACHED)
		return 0.0;
	return row->timeout > 0 ? row->timeout : FIXED_TIMEOUT;
}

/* A node below jobs/<j>/ whose job was removed. */
static int
job_gone(struct machine *m, const struct fs_node *n)
{
	return n->job && (n->row->flags & FS_ROW_IN_JOB) &&
	       (!m || machine_job_exists(m, n->job) <= 0);
}

void
fs_fixed_attr(struct fs_mount *mnt, uint64_t ino, mode_t mode,
	      struct stat *st)
{
	const struct fs_node *n;

	memset(st, 0, sizeof(*st));
	st->st_ino = ino;
	st->st_mode = mode;
	st->st_nlink = S_ISDIR(mode) ? 2 : 1;
	st->st_uid = mnt->uid;
	st->st_gid = mnt->gid;
	st->st_blksize = 4096;
	st->st_atim = mnt->start;
	st->st_mtim = mnt->start;
	st->st_ctim = mnt->start;
	n = fs_nodes_get(mnt->nodes, ino);
	if (n && n->row && n->row->ops->attr)
		n->row->ops->attr(mnt, n, st);
}

/* Hand the kernel a node it holds one lookup reference on. */
void
fs_reply_entry(fuse_req_t req, struct fs_mount *mnt, const struct fs_node *n,
	       const struct stat *st)
{
	struct fuse_entry_param e;

	memset(&e, 0, sizeof(e));
	e.ino = n->ino;
	e.generation = n->generation;
	if (st)
		e.attr = *st;
	else
		fs_fixed_attr(mnt, n->ino, n->mode, &e.attr);
	e.attr.st_ino = n->ino;
	e.attr_timeout = fs_row_timeout(n->row);
	e.entry_timeout = fs_row_timeout(n->row);
	if (fuse_reply_entry(req, &e) < 0)
		fs_nodes_forget(mnt->nodes, n->ino, 1);  /* never arrived */
}

static struct fs_open *
open_of(struct fuse_file_info *fi)
{
	return (struct fs_open *)(uintptr_t)fi->fh;
}

/* ---- lookup, attributes ---- */

static void
fs_lookup(fuse_req_t req, fuse_ino_t parent, const char *name)
{
	struct fs_mount *mnt = fs_mnt(req);
	const struct fs_node *dir = fs_nodes_get(mnt->nodes, parent), *n;
	const struct fs_row *row;
	struct machine *m;
	size_t machine = FS_NO_MACHINE;
	int notdir, ret;

	if (!dir) {
		fuse_reply_err(req, ENOENT);
		return;
	}
	if (strlen(name) > FS_NAME_LIMIT) {
		fuse_reply_err(req, ENAMETOOLONG);
		return;
	}
	m = fs_node_machine(mnt, dir);
	row = fs_row_child(dir->row, name, m ? machine_caps(m) : 0, &notdir);
	if (!row || job_gone(m, dir)) {
		if (!notdir)
			fs_log_refusal(mnt, dir, name, NULL, ENOENT);
		fuse_reply_err(req, notdir ? ENOTDIR : ENOENT);
		return;
	}
	/* a dynamic name: its kind says whether it exists */
	ret = row->ops->lookup ? row->ops->lookup(req, mnt, dir, name,
						  &machine) : 0;
	if (ret == FS_REPLIED)
		return;
	if (ret < 0) {
		fs_log_refusal(mnt, dir, name, NULL, -ret);
		fuse_reply_err(req, -ret);
		return;
	}
	n = fs_nodes_ref(mnt->nodes, parent, row, name, machine, 0);
	if (!n) {
		fuse_reply_err(req, ENOENT);
		return;
	}
	fs_reply_entry(req, mnt, n, NULL);
}

static void
fs_forget(fuse_req_t req, fuse_ino_t ino, uint64_t nlookup)
{
	fs_nodes_forget(fs_mnt(req)->nodes, ino, nlookup);
	fuse_reply_none(req);
}

static void
fs_forget_multi(fuse_req_t req, size_t count,
		struct fuse_forget_data *forgets)
{
	struct fs_mount *mnt = fs_mnt(req);
	size_t i;

	for (i = 0; i < count; i++)
		fs_nodes_forget(mnt->nodes, forgets[i].ino,
				forgets[i].nlookup);
	fuse_reply_none(req);
}

static void
fs_getattr(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
	struct fs_mount *mnt = fs_mnt(req);
	const struct fs_node *n = fs_nodes_get(mnt->nodes, ino);
	struct stat st;

	if (!n) {
		fuse_reply_err(req, ENOENT);
		return;
	}
	if (n->row->ops->getattr) {
		n->row->ops->getattr(req, mnt, n);
		return;
	}
	if (job_gone(fs_node_machine(mnt, n), n)) {
		fuse_reply_err(req, ENOENT);
		return;
	}
	fs_fixed_attr(mnt, ino, n->mode, &st);
	fuse_reply_attr(req, &st, fs_row_timeout(n->row));
}

/*
 * `echo x > ctl` truncates: atomic_o_trunc puts O_TRUNC in the open flags,
 * without it a SETATTR(size 0) follows the open. Both are no-ops on
 * generated files; on guest files size 0 truncates.
 */
static void
fs_setattr(fuse_req_t req, fuse_ino_t ino, struct stat *attr, int to_set,
	   struct fuse_file_info *fi)
{
	struct fs_mount *mnt = fs_mnt(req);
	const struct fs_node *n = fs_nodes_get(mnt->nodes, ino);
	const int owner = FUSE_SET_ATTR_MODE | FUSE_SET_ATTR_UID |
			  FUSE_SET_ATTR_GID;
	struct stat st;

	if (!n) {
		fuse_reply_err(req, ENOENT);
		return;
	}
	if ((to_set & FUSE_SET_ATTR_SIZE) && S_ISDIR(n->mode)) {
		fuse_reply_err(req, EISDIR);
		return;
	}
	if (n->row->ops->setattr) {
		n->row->ops->setattr(req, mnt, n, attr, to_set);
		return;
	}
	if (to_set & owner) {
		fuse_reply_err(req, EPERM);
		return;
	}
	if (job_gone(fs_node_machine(mnt, n), n)) {
		fuse_reply_err(req, ENOENT);
		return;
	}
	fs_fixed_attr(mnt, ino, n->mode, &st);
	fuse_reply_attr(req, &st, fs_row_timeout(n->row));
}

/* ---- open, read, write, release ---- */

/* The access the row's mode grants; root bypasses the mode bits without
 * default_permissions, so open checks them itself. */
static int
check_access(const struct fs_node *n, int accmode)
{
	if (fs_want_read(accmode) && !(n->mode & 0444))
		return -EACCES;
	if (fs_want_write(accmode) && !(n->mode & 0222))
		return -EACCES;
	return 0;
}

/* Refuse what the node cannot be opened as; 0 or a positive errno. */
static int
open_check(struct fs_mount *mnt, const struct fs_node *n, struct machine *m,
	   int accmode)
{
	int ret;

	if (S_ISDIR(n->mode) || !n->row->ops->open)
		return EISDIR;
	if (job_gone(m, n)) {
		fs_log_refusal(mnt, n, NULL, "open", ENOENT);
		return ENOENT;
	}
	if (n->row->ops->flags & FS_F_GUEST)
		return 0;
	ret = check_access(n, accmode);
	if (ret < 0)
		fs_log_refusal(mnt, n, NULL, fs_want_write(accmode) ?
			       "open for writing" : "open for reading", -ret);
	return -ret;
}

static void
fs_open(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
	struct fs_mount *mnt = fs_mnt(req);
	const struct fs_node *n = fs_nodes_get(mnt->nodes, ino);
	int accmode = fi->flags & O_ACCMODE;
	const struct fs_ops *ops;
	struct machine *m;
	struct fs_open *of;
	int ret;

	if (!n) {
		fuse_reply_err(req, ENOENT);
		return;
	}
	ops = n->row->ops;
	m = fs_node_machine(mnt, n);
	ret = open_check(mnt, n, m, accmode);
	if (ret) {
		fuse_reply_err(req, ret);
		return;
	}
	if (ops->flags & FS_F_DIRECT_IO)
		fi->direct_io = 1;
	if (!(ops->flags & FS_F_GUEST))
		fi->keep_cache = 0;
	of = fs_open_new(mnt, n, m, accmode);
	fi->fh = (uintptr_t)of;
	ret = ops->open(of, req, fi);
	if (ret == FS_REPLIED)
		return;
	if (ret < 0) {
		fs_open_free(of);
		fuse_reply_err(req, -ret);
		return;
	}
	if (ops->flags & FS_F_NONSEEKABLE)
		fi->nonseekable = 1;
	if (fuse_reply_open(req, fi) < 0)
		fs_open_free(of);
}

static void
fs_read(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off,
	struct fuse_file_info *fi)
{
	struct fs_open *of = open_of(fi);

	if (of->node->row->ops->read)
		of->node->row->ops->read(of, req, size, off);
	else
		fuse_reply_err(req, EBADF);
}

static void
fs_write(fuse_req_t req, fuse_ino_t ino, const char *buf, size_t size,
	 off_t off, struct fuse_file_info *fi)
{
	struct fs_open *of = open_of(fi);

	if (of->node->row->ops->write)
		of->node->row->ops->write(of, req, buf, size, off);
	else
		fuse_reply_err(req, EBADF);
}

/* Never act on FLUSH: bash sends one before the first write. */
static void
fs_flush(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
	fuse_reply_err(req, 0);
}

static void
fs_release(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
	struct fs_open *of = open_of(fi);

	/* The kernel releases only after the last read returned; should a
	 * read still be parked, it is cancelled and awaited, because
	 * machine_tx_close must not find one. */
	pthread_mutex_lock(&of->lock);
	while (of->reading) {
		uint64_t id = of->reading;

		pthread_mutex_unlock(&of->lock);
		fs_park_cancel_id(of->mnt->park, id);
		pthread_mutex_lock(&of->lock);
		while (of->reading == id)
			pthread_cond_wait(&of->idle, &of->lock);
	}
	pthread_mutex_unlock(&of->lock);
	fs_open_free(of);
	fuse_reply_err(req, 0);
}

/* ---- directories ---- */

static void
fs_opendir(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
	struct fs_mount *mnt = fs_mnt(req);
	const struct fs_node *n = fs_nodes_get(mnt->nodes, ino);
	const struct fs_row *row;
	struct machine *m;
	struct fs_open *of;
	size_t pos = 0;
	int ret = 0;

	if (!n) {
		fuse_reply_err(req, ENOENT);
		return;
	}
	if (!S_ISDIR(n->mode)) {
		fuse_reply_err(req, ENOTDIR);
		return;
	}
	m = fs_node_machine(mnt, n);
	if (job_gone(m, n)) {
		fuse_reply_err(req, ENOENT);
		return;
	}
	of = fs_open_new(mnt, n, m, O_RDONLY);
	fi->fh = (uintptr_t)of;
	while ((row = fs_row_next(n->row->type, m ? machine_caps(m) : 0,
				  &pos)))
		fs_dir_add(of, row->name, row, FS_NO_MACHINE);
	if (n->row->ops->list)
		ret = n->row->ops->list(of, req, fi);
	if (ret == FS_REPLIED)
		return;
	if (fuse_reply_open(req, fi) < 0)
		fs_open_free(of);
}

static void
fs_readdir(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off,
	   struct fuse_file_info *fi)
{
	fs_dir_read(req, open_of(fi), size, off, 0);
}

static void
fs_readdirplus(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off,
	       struct fuse_file_info *fi)
{
	fs_dir_read(req, open_of(fi), size, off, 1);
}

static void
fs_releasedir(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
	fs_open_free(open_of(fi));
	fuse_reply_err(req, 0);
}

/* ---- making and removing names: the dynamic row's kind does it ---- */

/*
 * The directory a new name goes into and the kind of what is below it, or
 * 0 with a positive errno in *err.
 */
static const struct fs_ops *
name_dir(struct fs_mount *mnt, fuse_ino_t parent, const char *name,
	 const struct fs_node **dir, int *err)
{
	*dir = fs_nodes_get(mnt->nodes, parent);
	*err = !*dir ? ENOENT : !S_ISDIR((*dir)->mode) ? ENOTDIR :
	       strlen(name) > FS_NAME_LIMIT ? ENAMETOOLONG :
	       /* a machine's index that names none */
	       (*dir)->machine != FS_NO_MACHINE &&
	       !fs_node_machine(mnt, *dir) ? EPERM : 0;
	if (*err || !(*dir)->row->child)
		return NULL;
	return (*dir)->row->child->ops;
}

static void
fs_mkdir(fuse_req_t req, fuse_ino_t parent, const char *name, mode_t mode)
{
	struct fs_mount *mnt = fs_mnt(req);
	const struct fs_node *dir;
	int err;
	const struct fs_ops *ops = name_dir(mnt, parent, name, &dir, &err);

	if (err) {
		fuse_reply_err(req, err);
		return;
	}
	if (dir->machine != FS_NO_MACHINE)
		fs_miss_made(mnt, dir, name);
	if (ops && ops->mkdir)
		ops->mkdir(req, mnt, dir, name, mode);
	else
		fuse_reply_err(req, EPERM);
}

/* rmdir (is_dir) and unlink: the entry's kind removes it, or EPERM. */
static void
name_remove(fuse_req_t req, fuse_ino_t parent, const char *name, int is_dir)
{
	struct fs_mount *mnt = fs_mnt(req);
	const struct fs_node *dir;
	int err;
	const struct fs_ops *ops = name_dir(mnt, parent, name, &dir, &err);
	void (*remove)(fuse_req_t, struct fs_mount *, const struct fs_node *,
		       const char *) = !ops ? NULL :
				       is_dir ? ops->rmdir : ops->unlink;

	if (err)
		fuse_reply_err(req, err);
	else if (remove)
		remove(req, mnt, dir, name);
	else
		fuse_reply_err(req, EPERM);
}

static void
fs_rmdir(fuse_req_t req, fuse_ino_t parent, const char *name)
{
	name_remove(req, parent, name, 1);
}

static void
fs_unlink(fuse_req_t req, fuse_ino_t parent, const char *name)
{
	name_remove(req, parent, name, 0);
}

static void
fs_create(fuse_req_t req, fuse_ino_t parent, const char *name, mode_t mode,
	  struct fuse_file_info *fi)
{
	struct fs_mount *mnt = fs_mnt(req);
	const struct fs_node *dir;
	int err;
	const struct fs_ops *ops = name_dir(mnt, parent, name, &dir, &err);

	if (!err && (!ops || !ops->create))
		err = EPERM;
	if (err) {
		fuse_reply_err(req, err);
		return;
	}
	fs_miss_made(mnt, dir, name);
	ops->create(req, mnt, dir, name, mode, fi);
}

static void
fs_symlink(fuse_req_t req, const char *link, fuse_ino_t parent,
	   const char *name)
{
	struct fs_mount *mnt = fs_mnt(req);
	const struct fs_node *dir;
	int err;
	const struct fs_ops *ops = name_dir(mnt, parent, name, &dir, &err);

	if (!err && (!ops || !ops->symlink))
		err = EPERM;
	if (err) {
		fuse_reply_err(req, err);
		return;
	}
	fs_miss_made(mnt, dir, name);
	ops->symlink(req, mnt, dir, name, link);
}

/* Only within one kind of directory that can rename (files/). */
static void
fs_rename(fuse_req_t req, fuse_ino_t parent, const char *name,
	  fuse_ino_t newparent, const char *newname, unsigned int flags)
{
	struct fs_mount *mnt = fs_mnt(req);
	const struct fs_node *a = fs_nodes_get(mnt->nodes, parent);
	const struct fs_node *b = fs_nodes_get(mnt->nodes, newparent);
	const struct fs_row *child = a && S_ISDIR(a->mode) ? a->row->child :
							      NULL;

	if (!child || !child->ops->rename || !b || !S_ISDIR(b->mode) ||
	    b->row->child != child) {
		fuse_reply_err(req, EPERM);
		return;
	}
	child->ops->rename(req, mnt, a, name, b, newname, flags);
}

static void
fs_readlink(fuse_req_t req, fuse_ino_t ino)
{
	struct fs_mount *mnt = fs_mnt(req);
	const struct fs_node *n = fs_nodes_get(mnt->nodes, ino);

	if (!n || !n->row->ops->readlink || !S_ISLNK(n->mode)) {
		fuse_reply_err(req, n ? EINVAL : ENOENT);
		return;
	}
	n->row->ops->readlink(req, mnt, n);
}

/*
 * access(2) and `test -w`: without default_permissions root passes every
 * mode check in the kernel, so answer from the row's mode (guest files: the
 * guest decides when it is used).
 */
static void
fs_access(fuse_req_t req, fuse_ino_t ino, int mask)
{
	struct fs_mount *mnt = fs_mnt(req);
	const struct fs_node *n = fs_nodes_get(mnt->nodes, ino);
	int ret = 0;

	if (!n) {
		fuse_reply_err(req, ENOENT);
		return;
	}
	if (!(n->row->ops->flags & FS_F_GUEST)) {
		if ((mask & R_OK) && !(n->mode & 0444))
			ret = EACCES;
		if ((mask & W_OK) && !(n->mode & 0222))
			ret = EACCES;
		if ((mask & X_OK) && !(n->mode & 0111))
			ret = EACCES;
	}
	fuse_reply_err(req, ret);
}

static void
fs_statfs(fuse_req_t req, fuse_ino_t ino)
{
	struct statvfs sv;

	memset(&sv, 0, sizeof(sv));
	sv.f_bsize = 4096;
	sv.f_frsize = 4096;
	sv.f_namemax = FS_NAME_LIMIT;
	fuse_reply_statfs(req, &sv);
}

static void
fs_init(void *userdata, struct fuse_conn_info *conn)
{
	/* O_TRUNC in the open flags, not a SETATTR (both are handled) */
	if (conn->capable & FUSE_CAP_ATOMIC_O_TRUNC)
		conn->want |= FUSE_CAP_ATOMIC_O_TRUNC;
	/* nothing here is cached by page: every read comes to us */
	conn->want &= ~FUSE_CAP_WRITEBACK_CACHE;
}

const struct fuse_lowlevel_ops fs_lowlevel_ops = {
	.init = fs_init,
	.lookup = fs_lookup,
	.forget = fs_forget,
	.forget_multi = fs_forget_multi,
	.getattr = fs_getattr,
	.setattr = fs_setattr,
	.mkdir = fs_mkdir,
	.unlink = fs_unlink,
	.rmdir = fs_rmdir,
	.rename = fs_rename,
	.readlink = fs_readlink,
	.symlink = fs_symlink,
	.open = fs_open,
	.read = fs_read,
	.write = fs_write,
	.flush = fs_flush,
	.release = fs_release,
	.opendir = fs_opendir,
	.readdir = fs_readdir,
	.readdirplus = fs_readdirplus,
	.releasedir = fs_releasedir,
	.statfs = fs_statfs,
	.access = fs_access,
	.create = fs_create,
};

/* ---- the mount state ---- */

struct fs_mount *
fs_mount_new(struct vmset *vms)
{
	struct fs_mount *mnt = xcalloc(1, sizeof(*mnt));

	mnt->vms = vms;
	mnt->nodes = fs_nodes_new();
	mnt->park = fs_park_new();
	mnt->uid = getuid();
	mnt->gid = getgid();
	clock_gettime(CLOCK_REALTIME, &mnt->start);
	pthread_mutex_init(&mnt->opens_lock, NULL);
	pthread_mutex_init(&mnt->misses_lock, NULL);
	free(vmset_render_attest_sh(vms, &mnt->attest_len));
	return mnt;
}

void
fs_mount_shutdown(struct fs_mount *mnt)
{
	struct fs_open *of;
	size_t left;

	fs_miss_flush(mnt, NULL, 0);
	left = fs_park_cancel_all(mnt->park, SHUTDOWN_WAIT_MS);
	if (left) {
		/* their replies may still touch open files: keep them */
		fprintf(stderr, "attestfs: %zu requests still parked at exit\n",
			left);
		return;
	}
	pthread_mutex_lock(&mnt->opens_lock);
	for (of = mnt->opens; of; of = of->next)
		fs_open_close(of);
	pthread_mutex_unlock(&mnt->opens_lock);
}

void
fs_mount_free(struct fs_mount *mnt)
{
	if (!mnt)
		return;
	if (fs_park_count(mnt->park)) {
		/* leaked on purpose: a late reply may still use them */
		return;
	}
	while (mnt->opens) {
		struct fs_open *of = mnt->opens;

		of->tx = NULL;  /* closed in fs_mount_shutdown */
		of->accmode = O_RDONLY;
		fs_open_free(of);
	}
	fs_misses_free(mnt);
	fs_nodes_free(mnt->nodes);
	fs_park_free(mnt->park);
	pthread_mutex_destroy(&mnt->opens_lock);
	pthread_mutex_destroy(&mnt->misses_lock);
	free(mnt);
}
