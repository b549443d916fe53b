/*
 * files/: the guest's own file system. Every call is parked on the
 * machine's shell pool; the guest checks permissions and answers stat.
 *
 *	$ cat /vms/a/files/etc/hostname
 *	a
 *	$ echo hi > /vms/a/files/tmp/x; mv /vms/a/files/tmp/x /vms/a/files/y
 *	$ ln -s /etc /vms/a/files/tmp/etc      # targets stay inside files/
 *	$ mv /vms/a/files/y /vms/b/files/tmp/   # between machines: a copy
 */
#include "fs/internal.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>

#include "common/util.h"
#include "machine/guestpath.h"

static char *
files_path(const struct fs_node *dir, const char *name)
{
	if (!strcmp(dir->path, "/"))
		return xasprintf("/%s", name);
	return xasprintf("%s/%s", dir->path, name);
}

/* The guest's stat in p's result; -1: none, and p is answered. */
static int
reply_stat(struct fs_preq *p, struct guest_stat *gs)
{
	struct mreq *r = &p->mr;
	int ret = r->result;

	if (ret >= 0 && (!r->data || r->len != sizeof(*gs)))
		ret = -EIO;
	if (ret < 0) {
		fs_reply_fail(p, machine_reply_errno(ret));
		return -1;
	}
	memcpy(gs, r->data, sizeof(*gs));
	return 0;
}

static void
guest_attr(struct fs_mount *mnt, uint64_t ino, const struct guest_stat *gs,
	   struct stat *st)
{
	fs_fixed_attr(mnt, ino, gs->mode, st);
	st->st_size = (off_t)gs->size;
	st->st_blocks = (blkcnt_t)((gs->size + 511) / 512);
	st->st_mtim.tv_sec = gs->mtime;
	st->st_mtim.tv_nsec = 0;
	st->st_ctim = st->st_mtim;
	st->st_atim = st->st_mtim;
}

/* Attributes of what was just made or truncated: now as its time. */
static void
new_attr(struct fs_mount *mnt, uint64_t ino, mode_t mode, struct stat *st)
{
	fs_fixed_attr(mnt, ino, mode, st);
	st->st_mtim.tv_sec = time(NULL);
	st->st_mtim.tv_nsec = 0;
}

static void
reply_status(struct fs_preq *p)
{
	if (p->mr.result < 0)
		fs_reply_fail(p, machine_reply_errno(p->mr.result));
	else
		fuse_reply_err(p->req, 0);
}

/* ---- lookup and attributes ---- */

static void
reply_lookup(struct fs_preq *p)
{
	struct fs_mount *mnt = fs_mnt(p->req);
	const struct fs_node *n;
	struct guest_stat gs;
	struct stat st;

	if (reply_stat(p, &gs) < 0)
		return;
	n = fs_nodes_ref(mnt->nodes, p->ino, &fs_row_file, p->name, 0,
			 gs.mode);
	if (!n) {
		fs_reply_fail(p, ENOENT);
		return;
	}
	guest_attr(mnt, n->ino, &gs, &st);
	fs_reply_entry(p->req, mnt, n, &st);
}

static int
guest_lookup(fuse_req_t req, struct fs_mount *mnt, const struct fs_node *dir,
	     const char *name, size_t *index)
{
	struct fs_preq *p;

	/* a guest file that is no directory */
	if (!S_ISDIR(dir->mode))
		return -ENOTDIR;
	p = fs_preq_new(mnt->park, req, reply_lookup);
	p->op = "lookup";
	p->ino = dir->ino;
	p->name = xstrdup(name);
	p->path = files_path(dir, name);
	fs_park_begin(p);
	machine_file_stat(fs_node_machine(mnt, dir), p->path, &p->mr);
	fs_park_commit(p);
	return FS_REPLIED;
}

static void
reply_getattr(struct fs_preq *p)
{
	struct fs_mount *mnt = fs_mnt(p->req);
	struct guest_stat gs;
	struct stat st;

	if (reply_stat(p, &gs) < 0)
		return;
	guest_attr(mnt, p->ino, &gs, &st);
	fuse_reply_attr(p->req, &st, 0.0);
}

static void
guest_getattr(fuse_req_t req, struct fs_mount *mnt, const struct fs_node *n)
{
	struct fs_preq *p = fs_preq_new(mnt->park, req, reply_getattr);

	p->ino = n->ino;
	fs_park_begin(p);
	machine_file_stat(fs_node_machine(mnt, n), n->path, &p->mr);
	fs_park_commit(p);
}

/* setattr size 0 on a guest file: the attributes after the truncation */
static void
reply_truncated(struct fs_preq *p)
{
	struct stat st;

	if (p->mr.result < 0) {
		fs_reply_fail(p, machine_reply_errno(p->mr.result));
		return;
	}
	new_attr(fs_mnt(p->req), p->ino, p->mode, &st);
	st.st_ctim = st.st_mtim;
	fuse_reply_attr(p->req, &st, 0.0);
}

/* chmod in the guest (a symlink's own mode is not its own) */
static void
guest_chmod(fuse_req_t req, struct fs_mount *mnt, const struct fs_node *n,
	    mode_t mode)
{
	struct fs_preq *p;

	if (S_ISLNK(n->mode)) {
		fuse_reply_err(req, EOPNOTSUPP);
		return;
	}
	p = fs_preq_new(mnt->park, req, reply_getattr);
	p->op = "chmod";
	p->ino = n->ino;
	fs_park_begin(p);
	machine_file_chmod(fs_node_machine(mnt, n), n->path, mode, &p->mr);
	fs_park_commit(p);
}

static void
guest_setattr(fuse_req_t req, struct fs_mount *mnt, const struct fs_node *n,
	      struct stat *attr, int to_set)
{
	struct fs_preq *p;

	/* Owners differ between host and guest: no chown, but let `mv` and
	 * `cp -p` set what is already there. */
	if (((to_set & FUSE_SET_ATTR_UID) && attr->st_uid != mnt->uid) ||
	    ((to_set & FUSE_SET_ATTR_GID) && attr->st_gid != mnt->gid)) {
		fuse_reply_err(req, EOPNOTSUPP);
		return;
	}
	if ((to_set & FUSE_SET_ATTR_MODE) && !(to_set & FUSE_SET_ATTR_SIZE)) {
		guest_chmod(req, mnt, n, attr->st_mode);
		return;
	}
	if ((to_set & FUSE_SET_ATTR_SIZE) && attr->st_size != 0) {
		fuse_reply_err(req, EOPNOTSUPP);
		return;
	}
	if (to_set & FUSE_SET_ATTR_SIZE) {
		p = fs_preq_new(mnt->park, req, reply_truncated);
		p->op = "truncate";
		p->ino = n->ino;
		p->mode = n->mode;
		fs_park_begin(p);
		machine_file_write(fs_node_machine(mnt, n), n->path, 0, NULL, 0,
				   1, &p->mr);
		fs_park_commit(p);
		return;
	}
	/* times: accepted and ignored (touch works), the guest's stat
	 * answers */
	guest_getattr(req, mnt, n);
}

/* ---- open, read, write ---- */

/* open(O_TRUNC) of a guest file: truncated, now open it */
static void
reply_open_truncated(struct fs_preq *p)
{
	if (p->mr.result < 0) {
		fs_open_free(p->of);
		fs_reply_fail(p, machine_reply_errno(p->mr.result));
		return;
	}
	if (fuse_reply_open(p->req, &p->fi) < 0)
		fs_open_free(p->of);  /* no release will come */
}

static int
guest_open(struct fs_open *of, fuse_req_t req, struct fuse_file_info *fi)
{
	struct fs_preq *p;

	if (!(fi->flags & O_TRUNC) || !fs_want_write(of->accmode))
		return 0;
	p = fs_preq_new(of->mnt->park, req, reply_open_truncated);
	p->op = "open";
	p->ino = of->node->ino;
	p->of = of;
	p->fi = *fi;
	fs_park_begin(p);
	machine_file_write(of->m, of->node->path, 0, NULL, 0, 1, &p->mr);
	fs_park_commit(p);
	return FS_REPLIED;
}

static void
guest_read(struct fs_open *of, fuse_req_t req, size_t size, off_t off)
{
	struct fs_preq *p = fs_preq_new(of->mnt->park, req, fs_reply_data);

	p->op = "read";
	p->ino = of->node->ino;
	p->size = size;
	p->mr.size = size;
	fs_park_begin(p);
	machine_file_read(of->m, of->node->path, (uint64_t)off, &p->mr);
	fs_park_commit(p);
}

/* the bytes written */
static void
reply_write(struct fs_preq *p)
{
	int res = p->mr.result;

	if (res < 0)
		fs_reply_fail(p, machine_reply_errno(res));
	else
		/* 0 from machine/ means all of it: a write(2) that returns
		 * 0 would be retried forever */
		fuse_reply_write(p->req, res > 0 && (size_t)res < p->size ?
					 (size_t)res : p->size);
}

static void
guest_write(struct fs_open *of, fuse_req_t req, const char *buf, size_t size,
	    off_t off)
{
	struct fs_preq *p = fs_park_write(of, req, buf, size, reply_write);

	machine_file_write(of->m, of->node->path, (uint64_t)off, p->buf, size,
			   0, &p->mr);
	fs_park_commit(p);
}

/* ---- making and removing names ---- */

/* The node of a name just made in the guest; NULL: answered (failed). */
static const struct fs_node *
made_node(struct fs_preq *p)
{
	struct fs_mount *mnt = fs_mnt(p->req);
	const struct fs_node *n;

	if (p->mr.result < 0) {
		fs_reply_fail(p, machine_reply_errno(p->mr.result));
		return NULL;
	}
	n = fs_nodes_ref(mnt->nodes, p->ino, &fs_row_file, p->name, 0,
			 p->mode);
	if (!n)
		fs_reply_fail(p, ENOENT);
	return n;
}

/* mkdir and symlink in files/ */
static void
reply_made(struct fs_preq *p)
{
	struct fs_mount *mnt = fs_mnt(p->req);
	const struct fs_node *n = made_node(p);
	struct stat st;

	if (!n)
		return;
	new_attr(mnt, n->ino, p->mode, &st);
	fs_reply_entry(p->req, mnt, n, &st);
}

/* create in files/: a new empty guest file, open */
static void
reply_created(struct fs_preq *p)
{
	struct fs_mount *mnt = fs_mnt(p->req);
	const struct fs_node *n = made_node(p);
	struct fuse_entry_param e;
	struct fs_open *of;

	if (!n)
		return;
	of = fs_open_new(mnt, n, fs_node_machine(mnt, n),
			 p->fi.flags & O_ACCMODE);
	p->fi.fh = (uintptr_t)of;
	p->fi.direct_io = 1;
	memset(&e, 0, sizeof(e));
	e.ino = n->ino;
	e.generation = n->generation;
	new_attr(mnt, n->ino, p->mode, &e.attr);
	if (fuse_reply_create(p->req, &e, &p->fi) < 0) {
		fs_open_free(of);
		fs_nodes_forget(mnt->nodes, n->ino, 1);
	}
}

/* A parked change of the name DIR/NAME; p->path is its guest path. */
static struct fs_preq *
park_change(fuse_req_t req, struct fs_mount *mnt, const struct fs_node *dir,
	    const char *name, const char *op, fs_reply_fn reply)
{
	struct fs_preq *p = fs_preq_new(mnt->park, req, reply);

	p->op = op;
	p->ino = dir->ino;
	p->name = xstrdup(name);
	p->path = files_path(dir, name);
	fs_park_begin(p);
	return p;
}

static void
guest_mkdir(fuse_req_t req, struct fs_mount *mnt, const struct fs_node *dir,
	    const char *name, mode_t mode)
{
	struct fs_preq *p = park_change(req, mnt, dir, name, "mkdir",
					reply_made);

	p->mode = S_IFDIR | (mode & 07777);
	machine_file_create(fs_node_machine(mnt, dir), p->path, p->mode,
			    &p->mr);
	fs_park_commit(p);
}

static void
guest_create(fuse_req_t req, struct fs_mount *mnt, const struct fs_node *dir,
	     const char *name, mode_t mode, struct fuse_file_info *fi)
{
	struct fs_preq *p = park_change(req, mnt, dir, name, "create",
					reply_created);

	p->mode = S_IFREG | (mode & 07777);
	p->fi = *fi;
	machine_file_create(fs_node_machine(mnt, dir), p->path, p->mode,
			    &p->mr);
	fs_park_commit(p);
}

static void
guest_symlink(fuse_req_t req, struct fs_mount *mnt, const struct fs_node *dir,
	      const char *name, const char *target)
{
	struct fs_preq *p = park_change(req, mnt, dir, name, "symlink",
					reply_made);

	p->mode = S_IFLNK | 0777;
	machine_file_symlink(fs_node_machine(mnt, dir), target, p->path,
			     &p->mr);
	fs_park_commit(p);
}

static void
guest_remove(fuse_req_t req, struct fs_mount *mnt, const struct fs_node *dir,
	     const char *name, int is_dir)
{
	struct fs_preq *p = park_change(req, mnt, dir, name,
					is_dir ? "rmdir" : "unlink",
					reply_status);

	machine_file_remove(fs_node_machine(mnt, dir), p->path, is_dir,
			    &p->mr);
	fs_park_commit(p);
}

static void
guest_rmdir(fuse_req_t req, struct fs_mount *mnt, const struct fs_node *dir,
	    const char *name)
{
	guest_remove(req, mnt, dir, name, 1);
}

static void
guest_unlink(fuse_req_t req, struct fs_mount *mnt, const struct fs_node *dir,
	     const char *name)
{
	guest_remove(req, mnt, dir, name, 0);
}

/*
 * rename in one machine's files/: the guest renames. The renamed inode keeps
 * its old path here, but files/ entries have no cache time, so the kernel
 * looks the new name up afresh. Between machines: EXDEV, mv copies.
 */
static void
guest_rename(fuse_req_t req, struct fs_mount *mnt, const struct fs_node *a,
	     const char *name, const struct fs_node *b, const char *newname,
	     unsigned int flags)
{
	struct fs_preq *p;
	char *to;

	if (a->machine != b->machine) {
		fuse_reply_err(req, EXDEV);
		return;
	}
	/* RENAME_NOREPLACE / EXCHANGE: not atomic through a shell; callers
	 * (mv) fall back to a plain rename on EINVAL. */
	if (flags) {
		fuse_reply_err(req, EINVAL);
		return;
	}
	if (strlen(newname) > FS_NAME_LIMIT) {
		fuse_reply_err(req, ENAMETOOLONG);
		return;
	}
	fs_miss_made(mnt, b, newname);
	p = park_change(req, mnt, a, name, "rename", reply_status);
	to = files_path(b, newname);
	machine_file_rename(fs_node_machine(mnt, a), p->path, to, &p->mr);
	fs_park_commit(p);
	free(to);
}

/*
 * A guest symlink's target, as seen from the mount: clamped at the guest root
 * and relative to the link (guestpath_link_target), so the kernel following
 * it on the host stays in files/, for relative and absolute targets alike.
 */
static void
reply_readlink(struct fs_preq *p)
{
	struct mreq *r = &p->mr;
	size_t len;
	char *out;
	int ret;

	if (r->result < 0) {
		fs_reply_fail(p, machine_reply_errno(r->result));
		return;
	}
	/* readlink(1) ends the target with exactly one newline */
	len = r->len;
	if (len && ((const char *)r->data)[len - 1] == '\n')
		len--;
	ret = guestpath_link_target(p->path, r->data, len, &out);
	if (ret < 0) {
		fs_reply_fail(p, EIO);
		return;
	}
	fuse_reply_readlink(p->req, out);
	free(out);
}

static void
guest_readlink(fuse_req_t req, struct fs_mount *mnt, const struct fs_node *n)
{
	struct fs_preq *p = fs_preq_new(mnt->park, req, reply_readlink);

	p->op = "readlink";
	p->ino = n->ino;
	p->path = xstrdup(n->path);
	fs_park_begin(p);
	machine_file_readlink(fs_node_machine(mnt, n), p->path, &p->mr);
	fs_park_commit(p);
}

/* files/ itself: a generated directory that lists the guest's root */
const struct fs_ops fs_kind_files = {
	.name = "files",
	.list = fs_dir_list_guest,
};

/* Anything below files/: the row of every guest path, file or directory */
const struct fs_ops fs_kind_guest = {
	.name = "guest file",
	.flags = FS_F_DIRECT_IO | FS_F_GUEST,
	.open = guest_open,
	.read = guest_read,
	.write = guest_write,
	.getattr = guest_getattr,
	.setattr = guest_setattr,
	.readlink = guest_readlink,
	.list = fs_dir_list_guest,
	.lookup = guest_lookup,
	.mkdir = guest_mkdir,
	.rmdir = guest_rmdir,
	.unlink = guest_unlink,
	.create = guest_create,
	.symlink = guest_symlink,
	.rename = guest_rename,
};
