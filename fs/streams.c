/*
 * Streams and files that are ready later: reads park until machine/ has
 * bytes. The console is read by offset from disk; a job's stdout and stderr
 * stream (nonseekable); jobs/<j>/exit, units/<u>/state... and screen.png
 * are read once, at the first read, and kept for the reads after it.
 *
 *	$ tail -c 2000 /vms/a/console
 *	$ cat /vms/a/jobs/web/stdout        blocks for more until the job ends
 *	$ cat /vms/a/jobs/web/exit          blocks until the job ends
 *	$ cat /vms/a/units/sshd/state       systemctl in the guest
 *	$ cp /vms/a/screen.png /tmp         a screenshot taken at this read
 */
#include "fs/internal.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "common/util.h"

/* ---- console ---- */

/* Up to 2 x log_max: never copied whole into memory. */
static int
console_open(struct fs_open *of, fuse_req_t req, struct fuse_file_info *fi)
{
	if (!fs_want_read(of->accmode))
		return 0;
	if (!of->m)
		return -EIO;
	machine_console_open(of->m, &of->console);
	return 0;
}

static void
console_read(struct fs_open *of, fuse_req_t req, size_t size, off_t off)
{
	char *buf;
	ssize_t n;

	if (!of->console) {
		fuse_reply_err(req, EBADF);
		return;
	}
	buf = xmalloc(size);
	n = machine_console_pread(of->console, buf, size, (uint64_t)off);
	if (n < 0)
		fuse_reply_err(req, machine_reply_errno((int)n));
	else
		fuse_reply_buf(req, buf, (size_t)n);
	free(buf);
}

/* Typed into the guest's console, as far as it takes it. */
static void
console_write(struct fs_open *of, fuse_req_t req, const char *buf,
	      size_t size, off_t off)
{
	int ret;

	if (!fs_want_write(of->accmode)) {
		fuse_reply_err(req, EBADF);
		return;
	}
	ret = machine_console_write(of->m, buf, size);
	if (ret < 0)
		fuse_reply_err(req, machine_reply_errno(ret));
	else
		fuse_reply_write(req, (size_t)ret);
}

static void
console_release(struct fs_open *of)
{
	machine_console_close(of->console);
	of->console = NULL;
}

/* ---- streams: exec, wait, qmp, jobs/<j>/stdout, stderr ---- */

/* Every read parks until machine/ has more (ops->start), then the next. */
void
fs_read_stream(struct fs_open *of, fuse_req_t req, size_t size, off_t off)
{
	struct fs_preq *p = fs_park_read(of, req, size, off,
					 fs_reply_stream);

	if (!p)
		return;
	of->node->row->ops->start(of, &p->mr);
	fs_park_commit(p);
}

/* From where the last read of this open file ended. */
static void
start_job_stream(struct fs_open *of, struct mreq *r)
{
	machine_job_read(of->m, of->node->job,
			 (enum job_file)of->node->row->arg, of->off, r);
}

/* ---- read once: jobs/<j>/exit, units/<u>/state..., screen.png ---- */

/* Keep the value for the reads after this one. */
static void
reply_once(struct fs_preq *p)
{
	struct mreq *r = &p->mr;
	struct fs_open *of = p->of;
	char *copy = NULL;
	size_t n = 0;

	pthread_mutex_lock(&of->lock);
	if (r->result >= 0) {
		of->snap = r->data ? r->data : xstrdup("");
		of->snap_len = r->data ? r->len : 0;
		of->have_snap = 1;
		r->data = NULL;
		if (p->off < of->snap_len) {
			n = of->snap_len - p->off;
			if (n > p->size)
				n = p->size;
			copy = xmalloc(n);
			memcpy(copy, of->snap + p->off, n);
		}
	}
	of->reading = 0;
	pthread_cond_broadcast(&of->idle);
	pthread_mutex_unlock(&of->lock);

	if (r->result < 0)
		fs_reply_fail(p, machine_reply_errno(r->result));
	else
		fuse_reply_buf(p->req, copy, n);
	free(copy);
}

/* The kept value, or a read parked until ops->start's call completes. */
void
fs_read_once(struct fs_open *of, fuse_req_t req, size_t size, off_t off)
{
	struct fs_preq *p;

	pthread_mutex_lock(&of->lock);
	if (of->have_snap) {
		/* immutable once set */
		pthread_mutex_unlock(&of->lock);
		fs_reply_slice(req, of->snap, of->snap_len, (uint64_t)off,
			       size);
		return;
	}
	pthread_mutex_unlock(&of->lock);
	p = fs_park_read(of, req, size, off, reply_once);
	if (!p)
		return;
	of->node->row->ops->start(of, &p->mr);
	fs_park_commit(p);
}

static void
start_job_exit(struct fs_open *of, struct mreq *r)
{
	machine_job_read(of->m, of->node->job,
			 (enum job_file)of->node->row->arg, 0, r);
}

static void
start_unit_file(struct fs_open *of, struct mreq *r)
{
	machine_unit_read(of->m, of->node->job,
			  (enum unit_file)of->node->row->arg, r);
}

/* screen.png (arg 0) or its text, screen.txt (arg 1) */
static void
start_screen(struct fs_open *of, struct mreq *r)
{
	machine_screen_read(of->m, of->node->row->arg, r);
}

const struct fs_ops fs_kind_console = {
	.name = "console",
	.flags = FS_F_DIRECT_IO,
	.open = console_open,
	.read = console_read,
	.write = console_write,
	.release = console_release,
};

const struct fs_ops fs_kind_job_stream = {
	.name = "job stream",
	.flags = FS_F_DIRECT_IO | FS_F_NONSEEKABLE,
	.open = fs_open_plain,
	.read = fs_read_stream,
	.start = start_job_stream,
};

const struct fs_ops fs_kind_job_exit = {
	.name = "job exit",
	.flags = FS_F_DIRECT_IO,
	.open = fs_open_plain,
	.read = fs_read_once,
	.start = start_job_exit,
};

const struct fs_ops fs_kind_unit_file = {
	.name = "unit file",
	.flags = FS_F_DIRECT_IO,
	.open = fs_open_plain,
	.read = fs_read_once,
	.start = start_unit_file,
};

const struct fs_ops fs_kind_screen = {
	.name = "screen",
	.flags = FS_F_DIRECT_IO,
	.open = fs_open_plain,
	.read = fs_read_once,
	.start = start_screen,
};
