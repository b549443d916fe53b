/*
 * fs/park: FUSE requests waiting for machine/ to complete an mreq.
 *
 * A handler that calls a blocking machine/ function does not wait for it:
 *
 *	p = fs_preq_new(park, req, reply_fn);   (fill p's context)
 *	fs_park_begin(p);                        p is in the table
 *	machine_xxx(..., &p->mr);                may complete p at once
 *	fs_park_commit(p);                       interrupts reach p now
 *
 * and returns; the worker thread is free again. When machine/ calls
 * p->mr.done, reply_fn answers the request from p->mr (on the machine's
 * thread, or on the handler's if done came before commit) and p is freed.
 * An interrupt (Ctrl-C, timeout(1)) finds p by its fuse_req_t in the table
 * and calls mreq_cancel(); machine/ then completes p with -EINTR.
 */
#ifndef ATTESTFS_FS_PARK_H
#define ATTESTFS_FS_PARK_H

#ifndef FUSE_USE_VERSION
#define FUSE_USE_VERSION 35
#endif

#include <fuse_lowlevel.h>
#include <stddef.h>
#include <stdint.h>

#include "machine/machine.h"

struct fs_park;
struct fs_open;
struct fs_preq;

/* Answers p->req from p->mr. Runs once, with no lock held. p->mr.data is
 * freed afterwards unless the function took it (set it to NULL). */
typedef void (*fs_reply_fn)(struct fs_preq *p);

struct fs_preq {
	struct mreq mr;          /* what machine/ completes */
	fuse_req_t req;
	fs_reply_fn reply;
	uint64_t id;             /* unique per mount, never reused */
	/* the handler's context for the reply; name, path, buf are freed
	 * with p */
	struct fs_open *of;
	uint64_t ino;            /* the node, or the parent of name */
	char *name;
	char *path;              /* guest path */
	char *buf;               /* the write's bytes, alive until done */
	const char *op;          /* "open", "unlink"...: an ENOENT or EACCES
				  * reply leaves a line in the machine's log;
				  * NULL: routine, nothing logged */
	size_t size;             /* read: bytes asked for */
	uint64_t off;            /* read: the request's offset */
	mode_t mode;
	struct fuse_file_info fi;
	/* private to park.c, under the table lock */
	struct fs_park *park;
	int active;              /* the handler has not committed yet */
	int completed;           /* done was called */
	int cancelled;           /* mreq_cancel was called */
	int cancel_pending;      /* cancel once the handler commits */
	int soft;                /* interrupted by SIGCHLD & co: watched */
	pid_t pid;               /* the caller (for its pending signals) */
	struct fs_preq *next;
};

struct fs_park *fs_park_new(void);
/* Only when nothing is parked (fs_park_cancel_all returned 0). */
void fs_park_free(struct fs_park *pk);

struct fs_preq *fs_preq_new(struct fs_park *pk, fuse_req_t req,
			    fs_reply_fn reply);
void fs_park_begin(struct fs_preq *p);
/* p may be gone when this returns: do not touch it afterwards. */
void fs_park_commit(struct fs_preq *p);

/* Cancel the parked request ID if it still waits (a release that finds a
 * read of its file still parked). */
void fs_park_cancel_id(struct fs_park *pk, uint64_t id);
/* At exit: cancel every parked request, wait up to timeout_ms for their
 * replies. Returns how many are still out. */
size_t fs_park_cancel_all(struct fs_park *pk, int timeout_ms);
/* Requests parked or being answered right now. */
size_t fs_park_count(struct fs_park *pk);

#endif
