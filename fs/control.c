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

/* One write(2), one message: parked until ops->send's call completes. */
void
fs_write_message(struct fs_open *of, fuse_req_t req, const char *buf,
		 size_t size, off_t off)
{
	struct fs_preq *p = fs_park_write(of, req, buf, size, reply_message);

	of->node->row->ops->send(of, p->buf, size, &p->mr);
	fs_park_commit(p);
}

/* /vms/ctl: clones and machine-set verbs */
static void
send_vms_ctl(struct fs_open *of, const char *msg, size_t len,
	     struct mreq *r)
{
	vmset_ctl(of->mnt->vms, msg, len, r);
}

static void
send_ctl(struct fs_open *of, const char *msg, size_t len, struct mreq *r)
{
	machine_ctl(of->m, msg, len, r);
}

static void
send_keys(struct fs_open *of, const char *msg, size_t len, struct mreq *r)
{
	machine_keys(of->m, msg, len, r);
}

static void
send_type(struct fs_open *of, const char *msg, size_t len, struct mreq *r)
{
	machine_type(of->m, msg, len, r);
}

/* jobs/<j>/cmd, stdin, ctl: the row says which */
static void
send_job(struct fs_open *of, const char *msg, size_t len, struct mreq *r)
{
	machine_job_write(of->m, of->node->job,
			  (enum job_file)of->node->row->arg, msg, len, r);
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
send_unit_ctl(struct fs_open *of, const char *msg, size_t len,
	      struct mreq *r)
{
	machine_unit_ctl(of->m, of->node->job, msg, len, r);
}

#define CONTROL_KIND(n, fn) \
	.name = n, .flags = FS_F_DIRECT_IO, .open = fs_open_plain, \
	.read = fs_read_none, .write = fs_write_message, .send = fn

const struct fs_ops fs_kind_vms_ctl = { CONTROL_KIND("vms ctl",
						     send_vms_ctl) };
const struct fs_ops fs_kind_ctl = { CONTROL_KIND("ctl", send_ctl) };
const struct fs_ops fs_kind_keys = { CONTROL_KIND("keys", send_keys) };
const struct fs_ops fs_kind_type = { CONTROL_KIND("type", send_type) };
const struct fs_ops fs_kind_job_write = { CONTROL_KIND("job file",
						       send_job) };
const struct fs_ops fs_kind_job_stdin = {
	CONTROL_KIND("job stdin", send_job),
	.release = job_stdin_release,
};
const struct fs_ops fs_kind_unit_ctl = { CONTROL_KIND("unit ctl",
						      send_unit_ctl) };
