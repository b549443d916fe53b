/*
 * Control files: each write(2) is one message, parked until the action it
 * asks for is done, and taken whole or failed whole.
 *
 *	$ echo start > /vms/a/ctl                 returns once running
 *	$ echo 'clone b' > /vms/ctl
 *	$ echo 'ctrl-alt-delete' > /vms/a/keys
 *	$ echo 'httpd -f' > /vms/a/jobs/web/cmd   jobs/<j>/cmd, stdin, ctl
 *	$ echo restart > /vms/a/units/sshd/ctl
 */
#include "fs/internal.h"

#include <fcntl.h>

/* A control message is taken whole or not at all: a short count would make
 * the writer send the rest as a second message. */
static void
reply_message(struct fs_preq *p)
{
	if (p->mr.result < 0)
		fs_reply_fail(p, machine_reply_errno(p->mr.result));
	else
		fuse_reply_write(p->req, p->size);
}

/* /vms/ctl: clones and machine-set verbs */
static void
vms_ctl_write(struct fs_open *of, fuse_req_t req, const char *buf,
	      size_t size, off_t off)
{
	struct fs_preq *p = fs_park_write(of, req, buf, size,
					   reply_message);

	vmset_ctl(of->mnt->vms, p->buf, size, &p->mr);
	fs_park_commit(p);
}

static void
ctl_write(struct fs_open *of, fuse_req_t req, const char *buf, size_t size,
	  off_t off)
{
	struct fs_preq *p = fs_park_write(of, req, buf, size,
					   reply_message);

	machine_ctl(of->m, p->buf, size, &p->mr);
	fs_park_commit(p);
}

static void
keys_write(struct fs_open *of, fuse_req_t req, const char *buf, size_t size,
	   off_t off)
{
	struct fs_preq *p = fs_park_write(of, req, buf, size,
					   reply_message);

	machine_keys(of->m, p->buf, size, &p->mr);
	fs_park_commit(p);
}

static void
type_write(struct fs_open *of, fuse_req_t req, const char *buf, size_t size,
	   off_t off)
{
	struct fs_preq *p = fs_park_write(of, req, buf, size,
					   reply_message);

	machine_type(of->m, p->buf, size, &p->mr);
	fs_park_commit(p);
}

/* jobs/<j>/cmd, stdin, ctl: the row says which */
static void
job_write(struct fs_open *of, fuse_req_t req, const char *buf, size_t size,
	  off_t off)
{
	struct fs_preq *p = fs_park_write(of, req, buf, size,
					   reply_message);

	machine_job_write(of->m, of->node->job,
			  (enum job_file)of->node->row->arg, p->buf, size,
			  &p->mr);
	fs_park_commit(p);
}

/* The writer's close is the job's end of input. */
static void
job_stdin_release(struct fs_open *of)
{
	if (of->accmode != O_RDONLY && of->m) {
		machine_job_stdin_close(of->m, of->node->job);
		of->accmode = O_RDONLY;
	}
}

static void
unit_ctl_write(struct fs_open *of, fuse_req_t req, const char *buf,
	       size_t size, off_t off)
{
	struct fs_preq *p = fs_park_write(of, req, buf, size,
					   reply_message);

	machine_unit_ctl(of->m, of->node->job, p->buf, size, &p->mr);
	fs_park_commit(p);
}

#define CONTROL_KIND(n, w) \
	.name = n, .flags = FS_F_DIRECT_IO, .open = fs_open_plain, \
	.read = fs_read_none, .write = w

const struct fs_ops fs_kind_vms_ctl = { CONTROL_KIND("vms ctl",
						     vms_ctl_write) };
const struct fs_ops fs_kind_ctl = { CONTROL_KIND("ctl", ctl_write) };
const struct fs_ops fs_kind_keys = { CONTROL_KIND("keys", keys_write) };
const struct fs_ops fs_kind_type = { CONTROL_KIND("type", type_write) };
const struct fs_ops fs_kind_job_write = { CONTROL_KIND("job file",
						       job_write) };
const struct fs_ops fs_kind_job_stdin = {
	CONTROL_KIND("job stdin", job_write),
	.release = job_stdin_release,
};
const struct fs_ops fs_kind_unit_ctl = { CONTROL_KIND("unit ctl",
						      unit_ctl_write) };
