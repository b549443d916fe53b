/*
 * Open files: the per-open state in fi->fh, the one parked read each may
 * have, and the replies the kinds share.
 */
#include "fs/internal.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>

#include "common/util.h"

struct fs_open *
fs_open_new(struct fs_mount *mnt, const struct fs_node *n, struct machine *m,
	    int accmode)
{
	struct fs_open *of = xcalloc(1, sizeof(*of));

	pthread_mutex_init(&of->lock, NULL);
	pthread_cond_init(&of->idle, NULL);
	of->mnt = mnt;
	of->node = n;
	of->m = m;
	of->accmode = accmode;
	pthread_mutex_lock(&mnt->opens_lock);
	of->next = mnt->opens;
	if (mnt->opens)
		mnt->opens->prev = of;
	mnt->opens = of;
	pthread_mutex_unlock(&mnt->opens_lock);
	return of;
}

/* Let go of what machine/ holds for this open file. */
void
fs_open_close(struct fs_open *of)
{
	if (of->node->row->ops->release)
		of->node->row->ops->release(of);
}

void
fs_open_free(struct fs_open *of)
{
	struct fs_mount *mnt = of->mnt;
	size_t i;

	pthread_mutex_lock(&mnt->opens_lock);
	if (of->prev)
		of->prev->next = of->next;
	else
		mnt->opens = of->next;
	if (of->next)
		of->next->prev = of->prev;
	pthread_mutex_unlock(&mnt->opens_lock);

	fs_open_close(of);
	for (i = 0; i < of->n_ents; i++)
		free(of->ents[i].name);
	free(of->ents);
	free(of->snap);
	pthread_cond_destroy(&of->idle);
	pthread_mutex_destroy(&of->lock);
	free(of);
}

/* Claim the one parked read an open file may have. */
static int
open_start_read(struct fs_open *of, uint64_t id)
{
	int ret = 0;

	pthread_mutex_lock(&of->lock);
	if (of->reading)
		ret = -EBUSY;
	else
		of->reading = id;
	pthread_mutex_unlock(&of->lock);
	return ret;
}

/* Called before the reply, so the caller's next read finds it free. */
void
fs_open_end_read(struct fs_open *of, uint64_t advance)
{
	pthread_mutex_lock(&of->lock);
	of->reading = 0;
	of->off += advance;
	pthread_cond_broadcast(&of->idle);
	pthread_mutex_unlock(&of->lock);
}

/*
 * Park a read of OF (one per open file: offsets mean nothing here); the
 * caller starts the machine/ call on p->mr and commits. NULL: answered.
 */
struct fs_preq *
fs_park_read(struct fs_open *of, fuse_req_t req, size_t size, off_t off,
	     fs_reply_fn reply)
{
	struct fs_preq *p = fs_preq_new(of->mnt->park, req, reply);
	int ret = open_start_read(of, p->id);

	if (ret < 0) {
		free(p);
		fuse_reply_err(req, -ret);
		return NULL;
	}
	p->op = "read";
	p->ino = of->node->ino;
	p->of = of;
	p->size = size;
	p->off = (uint64_t)off;
	p->mr.size = size;
	fs_park_begin(p);
	return p;
}

/*
 * Park a write of OF; the caller hands p->buf to machine/ and commits.
 * machine/ may keep the bytes until done: it gets our own copy (NUL
 * terminated, not counted).
 */
struct fs_preq *
fs_park_write(struct fs_open *of, fuse_req_t req, const char *buf,
	      size_t size, fs_reply_fn reply)
{
	struct fs_preq *p = fs_preq_new(of->mnt->park, req, reply);

	p->op = "write";
	p->ino = of->node->ino;
	p->buf = xmalloc(size + 1);
	memcpy(p->buf, buf, size);
	p->buf[size] = '\0';
	p->size = size;
	fs_park_begin(p);
	return p;
}

void
fs_reply_slice(fuse_req_t req, const char *buf, size_t len, uint64_t off,
	       size_t size)
{
	if (off >= len)
		fuse_reply_buf(req, NULL, 0);
	else
		fuse_reply_buf(req, buf + off,
			       len - off < size ? len - off : size);
}

void
fs_reply_data(struct fs_preq *p)
{
	struct mreq *r = &p->mr;

	if (r->result < 0)
		fs_reply_fail(p, machine_reply_errno(r->result));
	else
		fuse_reply_buf(p->req, r->data,
			       r->len < p->size ? r->len : p->size);
}

/* exec, wait, qmp and job streams: the bytes are counted before the reply
 * frees the next read */
void
fs_reply_stream(struct fs_preq *p)
{
	struct mreq *r = &p->mr;
	size_t len = r->result < 0 ? 0 : (r->len < p->size ? r->len : p->size);

	fs_open_end_read(p->of, len);
	fs_reply_data(p);
}

int
fs_want_read(int accmode)
{
	return accmode == O_RDONLY || accmode == O_RDWR;
}

int
fs_want_write(int accmode)
{
	return accmode == O_WRONLY || accmode == O_RDWR;
}

/* Files that keep nothing at open (their writes are whole messages). */
int
fs_open_plain(struct fs_open *of, fuse_req_t req, struct fuse_file_info *fi)
{
	return 0;
}

/* Write-only files: open refuses reading (check_access), so never called. */
void
fs_read_none(struct fs_open *of, fuse_req_t req, size_t size, off_t off)
{
	fuse_reply_err(req, EBADF);
}
