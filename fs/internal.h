/*
 * fs/'s own structures, shared by its files; main.c sees only fs/fs.h.
 *
 * A row of the node table (fs/nodes.c) points at its kind: a struct fs_ops,
 * the operations and flags every file of that kind has. fs/ops.c answers
 * FUSE by calling the row's operations and never asks what a node is:
 *
 *	values.c        status, info, log, events, attest.sh, snapshots/<s>
 *	control.c       ctl, keys, type, jobs/<j>/cmd, stdin, ctl, units/<u>/ctl
 *	transactions.c  exec, wait, qmp: writes are joined, reads stream
 *	streams.c       console, jobs/<j>/stdout, stderr, and the files read
 *	                once when ready: jobs/<j>/exit, units/<u>/state...,
 *	                screen.png
 *	guestfs.c       files/ and below: the guest's own paths
 *	dirs.c          the directories: listings and dynamic names
 *	open.c          open files and the replies the kinds share
 *	refusals.c      ENOENT and EACCES explained in the machine's log
 */
#ifndef ATTESTFS_FS_INTERNAL_H
#define ATTESTFS_FS_INTERNAL_H

#include <pthread.h>
#include <sys/stat.h>
#include <time.h>

#include "fs/fs.h"
#include "fs/nodes.h"
#include "fs/park.h"

#define FS_NAME_LIMIT 255
#define FS_MISS_SLOTS 2048       /* missing paths logged: a hash set... */
#define FS_MISS_MAX 1024         /* ...this full at most */
#define FS_MISS_PENDING 32       /* lookup misses not yet logged */

/* An operation that answered (or parked) the request itself. */
#define FS_REPLIED 1

/* What a kind promises the kernel. */
#define FS_F_DIRECT_IO   0x1  /* read(2) returns what the handler returns */
#define FS_F_NONSEEKABLE 0x2  /* offsets mean nothing: tx and streams */
#define FS_F_GUEST       0x4  /* the guest decides access and attributes */

struct fs_open;

/*
 * A kind's operations. Every operation replies to req, except where it
 * returns: 0 then means the caller replies (open: fuse_reply_open, lookup:
 * the entry, list: the open directory), -errno the caller's error reply,
 * FS_REPLIED that the operation answered or parked it. NULL: the caller's
 * default (EBADF for read and write, EPERM for the namespace operations).
 */
struct fs_ops {
	const char *name;      /* the kind, for tests */
	unsigned flags;        /* FS_F_* */
	/* regular files: of is new and in fi->fh */
	int (*open)(struct fs_open *of, fuse_req_t req,
		    struct fuse_file_info *fi);
	void (*read)(struct fs_open *of, fuse_req_t req, size_t size,
		     off_t off);
	void (*write)(struct fs_open *of, fuse_req_t req, const char *buf,
		      size_t size, off_t off);
	/* the machine/ call behind a parked read (read = fs_read_stream or
	 * fs_read_once) or a message (write = fs_write_message) */
	void (*start)(struct fs_open *of, struct mreq *r);
	void (*send)(struct fs_open *of, const char *msg, size_t len,
		     struct mreq *r);
	/* let go of what machine/ holds for of; may run twice */
	void (*release)(struct fs_open *of);
	/* the fixed attributes, completed (sizes that are known) */
	void (*attr)(struct fs_mount *mnt, const struct fs_node *n,
		     struct stat *st);
	/* guest files: attributes from the guest */
	void (*getattr)(fuse_req_t req, struct fs_mount *mnt,
			const struct fs_node *n);
	void (*setattr)(fuse_req_t req, struct fs_mount *mnt,
			const struct fs_node *n, struct stat *attr,
			int to_set);
	void (*readlink)(fuse_req_t req, struct fs_mount *mnt,
			 const struct fs_node *n);
	/* directories: the names beyond the fixed rows (of->ents) */
	int (*list)(struct fs_open *of, fuse_req_t req,
		    struct fuse_file_info *fi);
	/*
	 * A dynamic row's namespace: does NAME exist below DIR (for a
	 * machine *index is its vmset index), make it, remove it.
	 */
	int (*lookup)(fuse_req_t req, struct fs_mount *mnt,
		      const struct fs_node *dir, const char *name,
		      size_t *index);
	void (*mkdir)(fuse_req_t req, struct fs_mount *mnt,
		      const struct fs_node *dir, const char *name,
		      mode_t mode);
	void (*rmdir)(fuse_req_t req, struct fs_mount *mnt,
		      const struct fs_node *dir, const char *name);
	void (*unlink)(fuse_req_t req, struct fs_mount *mnt,
		       const struct fs_node *dir, const char *name);
	void (*create)(fuse_req_t req, struct fs_mount *mnt,
		       const struct fs_node *dir, const char *name,
		       mode_t mode, struct fuse_file_info *fi);
	void (*symlink)(fuse_req_t req, struct fs_mount *mnt,
			const struct fs_node *dir, const char *name,
			const char *target);
	void (*rename)(fuse_req_t req, struct fs_mount *mnt,
		       const struct fs_node *from, const char *name,
		       const struct fs_node *to, const char *newname,
		       unsigned int flags);
};

/* A lookup that found nothing: logged unless the name is made at once. */
struct fs_miss {
	struct machine *m;       /* NULL: a free slot */
	char *path;              /* below the machine: "files/tmp/x" */
	const char *reason;
	uint64_t hash;
	int64_t when;            /* monotonic ms */
};

struct fs_mount {
	struct vmset *vms;
	struct fs_nodes *nodes;
	struct fs_park *park;
	uid_t uid;               /* every file belongs to the mounting user */
	gid_t gid;
	struct timespec start;   /* times of the generated files */
	pthread_mutex_t opens_lock;  /* protects the opens list (the links
				      * of every fs_open in it) */
	struct fs_open *opens;
	size_t attest_len;       /* `. attest.sh` reads st_size bytes */
	pthread_mutex_t misses_lock; /* protects misses, n_misses and
				      * pending */
	uint64_t misses[FS_MISS_SLOTS]; /* hashes of the lookups logged
					 * missing */
	size_t n_misses;
	struct fs_miss pending[FS_MISS_PENDING];
};

struct fs_dirent {
	char *name;
	const struct fs_row *row;
	size_t machine;          /* machine directories: the vmset index */
};

/* Per open file (and open directory), in fi->fh. */
struct fs_open {
	pthread_mutex_t lock;    /* protects snap, snap_len, have_snap, off
				  * and reading once a read may be parked */
	pthread_cond_t idle;     /* reading went back to 0 */
	struct fs_mount *mnt;
	const struct fs_node *node;
	struct machine *m;
	int accmode;
	char *snap;              /* values, files read once: the content */
	size_t snap_len;
	int have_snap;
	struct mtx *tx;          /* exec, wait, qmp */
	struct console_view *console; /* console: read from disk, no copy */
	uint64_t off;            /* streams: bytes handed out so far */
	uint64_t reading;        /* the parked read's id, 0 if none */
	struct fs_dirent *ents;  /* directories: the listing at opendir */
	size_t n_ents;
	size_t ents_cap;
	struct fs_open *prev, *next;  /* mnt->opens */
};

/* ops.c: the mount, nodes, attributes */
struct fs_mount *fs_mnt(fuse_req_t req);
struct machine *fs_node_machine(struct fs_mount *mnt,
				const struct fs_node *n);
void fs_fixed_attr(struct fs_mount *mnt, uint64_t ino, mode_t mode,
		   struct stat *st);
void fs_reply_entry(fuse_req_t req, struct fs_mount *mnt,
		    const struct fs_node *n, const struct stat *st);
double fs_row_timeout(const struct fs_row *row);
/* open.c: open files */
int fs_want_read(int accmode);
int fs_want_write(int accmode);
struct fs_open *fs_open_new(struct fs_mount *mnt, const struct fs_node *n,
			    struct machine *m, int accmode);
void fs_open_close(struct fs_open *of);
void fs_open_free(struct fs_open *of);
void fs_open_end_read(struct fs_open *of, uint64_t advance);
struct fs_preq *fs_park_read(struct fs_open *of, fuse_req_t req,
			     size_t size, off_t off, fs_reply_fn reply);
struct fs_preq *fs_park_write(struct fs_open *of, fuse_req_t req,
			      const char *buf, size_t size,
			      fs_reply_fn reply);
void fs_reply_slice(fuse_req_t req, const char *buf, size_t len,
		    uint64_t off, size_t size);
void fs_reply_data(struct fs_preq *p);
void fs_reply_stream(struct fs_preq *p);
int fs_open_plain(struct fs_open *of, fuse_req_t req,
		  struct fuse_file_info *fi);
void fs_read_none(struct fs_open *of, fuse_req_t req, size_t size,
		  off_t off);

/* streams.c, control.c: the kinds' shared reads and writes */
void fs_read_stream(struct fs_open *of, fuse_req_t req, size_t size,
		    off_t off);
void fs_read_once(struct fs_open *of, fuse_req_t req, size_t size, off_t off);
void fs_write_message(struct fs_open *of, fuse_req_t req, const char *buf,
		      size_t size, off_t off);

/* dirs.c */
void fs_dir_add(struct fs_open *of, const char *name,
		const struct fs_row *row, size_t machine);
int fs_dir_list_guest(struct fs_open *of, fuse_req_t req,
		      struct fuse_file_info *fi);
void fs_dir_read(fuse_req_t req, struct fs_open *of, size_t size, off_t off,
		 int plus);

/* refusals.c */
void fs_log_refusal(struct fs_mount *mnt, const struct fs_node *dir,
		    const char *name, const char *op, int err);
void fs_reply_fail(struct fs_preq *p, int err);
void fs_miss_flush(struct fs_mount *mnt, struct machine *m, int settled);
void fs_miss_made(struct fs_mount *mnt, const struct fs_node *dir,
		  const char *name);
void fs_misses_free(struct fs_mount *mnt);

#endif
