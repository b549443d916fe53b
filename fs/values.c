/*
 * Values: files rendered once at open and then read by offset from that
 * copy, so every reader sees one consistent snapshot (as lxcfs does).
 *
 *	$ cat /vms/a/status                 machine_render(MACHINE_VIEW_STATUS)
 *	running
 *	$ cat /vms/events                   every machine's state changes
 *	$ . /vms/attest.sh                  st_size is its true length
 *	$ cat /vms/a/snapshots/s1           name, bytes, time; rm removes it
 */
#include "fs/internal.h"

#include <errno.h>
#include <stdlib.h>

#include "common/util.h"

/* Render at open for readers; NULL from the renderer: EIO. */
static int
open_rendered(struct fs_open *of,
	      char *(*render)(struct fs_open *of, size_t *len))
{
	if (!fs_want_read(of->accmode))
		return 0;
	of->snap = render(of, &of->snap_len);
	if (!of->snap)
		return -EIO;
	of->have_snap = 1;
	return 0;
}

static void
value_read(struct fs_open *of, fuse_req_t req, size_t size, off_t off)
{
	if (!of->have_snap) {
		fuse_reply_err(req, EBADF);
		return;
	}
	fs_reply_slice(req, of->snap, of->snap_len, (uint64_t)off, size);
}

/* status, info, log, config.json: the row says which view */
static char *
render_view(struct fs_open *of, size_t *len)
{
	return of->m ? machine_render(of->m,
				      (enum machine_view)of->node->row->arg,
				      len)
		     : NULL;
}

static int
value_open(struct fs_open *of, fuse_req_t req, struct fuse_file_info *fi)
{
	return open_rendered(of, render_view);
}

/* The log explains refusals: the reader sees the ones still pending. */
static int
log_open(struct fs_open *of, fuse_req_t req, struct fuse_file_info *fi)
{
	fs_miss_flush(of->mnt, of->m, 0);
	return open_rendered(of, render_view);
}

static char *
render_events(struct fs_open *of, size_t *len)
{
	return vmset_render_events(of->mnt->vms, len);
}

static int
events_open(struct fs_open *of, fuse_req_t req, struct fuse_file_info *fi)
{
	return open_rendered(of, render_events);
}

static char *
render_attest_sh(struct fs_open *of, size_t *len)
{
	return vmset_render_attest_sh(of->mnt->vms, len);
}

static int
attest_sh_open(struct fs_open *of, fuse_req_t req, struct fuse_file_info *fi)
{
	return open_rendered(of, render_attest_sh);
}

/* bash's `source` reads exactly st_size bytes: give the library its true
 * size (it never changes during a mount). */
static void
attest_sh_attr(struct fs_mount *mnt, const struct fs_node *n,
	       struct stat *st)
{
	st->st_size = (off_t)mnt->attest_len;
}

/* ---- snapshots/<s> ---- */

static char *
render_snapshot(struct fs_open *of, size_t *len)
{
	struct guest_stat gs;
	struct strbuf sb;

	sb_init(&sb);
	if (of->m && machine_snapshot_stat(of->m, of->node->job, &gs) == 0)
		sb_addf(&sb, "name %s\nbytes %llu\ntime %lld\n", of->node->job,
			(unsigned long long)gs.size, (long long)gs.mtime);
	return sb_detach(&sb, len);
}

static int
snapshot_open(struct fs_open *of, fuse_req_t req, struct fuse_file_info *fi)
{
	return open_rendered(of, render_snapshot);
}

/* ls -l shows the snapshot's size and time */
static void
snapshot_attr(struct fs_mount *mnt, const struct fs_node *n, struct stat *st)
{
	struct machine *m = vmset_machine(mnt->vms, n->machine);
	struct guest_stat gs;

	if (m && machine_snapshot_stat(m, n->job, &gs) == 0) {
		st->st_size = (off_t)gs.size;
		st->st_blocks = (blkcnt_t)((gs.size + 511) / 512);
		st->st_mtim.tv_sec = gs.mtime;
		st->st_mtim.tv_nsec = 0;
		st->st_ctim = st->st_mtim;
	}
}

static int
snapshot_lookup(fuse_req_t req, struct fs_mount *mnt,
		const struct fs_node *dir, const char *name, size_t *index)
{
	struct guest_stat gs;

	if (machine_snapshot_stat(fs_node_machine(mnt, dir), name, &gs) < 0)
		return -ENOENT;
	return 0;
}

static void
snapshot_unlink(fuse_req_t req, struct fs_mount *mnt,
		const struct fs_node *dir, const char *name)
{
	int ret = machine_snapshot_remove(fs_node_machine(mnt, dir), name);
	int err = ret < 0 ? machine_reply_errno(ret) : 0;

	if (err)
		fs_log_refusal(mnt, dir, name, "unlink", err);
	fuse_reply_err(req, err);
}

const struct fs_ops fs_kind_value = {
	.name = "value",
	.flags = FS_F_DIRECT_IO,
	.open = value_open,
	.read = value_read,
};

const struct fs_ops fs_kind_log = {
	.name = "log",
	.flags = FS_F_DIRECT_IO,
	.open = log_open,
	.read = value_read,
};

const struct fs_ops fs_kind_events = {
	.name = "events",
	.flags = FS_F_DIRECT_IO,
	.open = events_open,
	.read = value_read,
};

const struct fs_ops fs_kind_attest_sh = {
	.name = "attest.sh",
	.flags = FS_F_DIRECT_IO,
	.open = attest_sh_open,
	.read = value_read,
	.attr = attest_sh_attr,
};

const struct fs_ops fs_kind_snapshot = {
	.name = "snapshot",
	.flags = FS_F_DIRECT_IO,
	.open = snapshot_open,
	.read = value_read,
	.attr = snapshot_attr,
	.lookup = snapshot_lookup,
	.unlink = snapshot_unlink,
};
