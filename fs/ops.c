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
 * Kinds and their files (rows in fs/nodes.c):
 *	value      rendered once at open, read by offset from that snapshot
 *	control    each write(2) is one message; parked until the action ends
 *	tx         exec, wait, qmp: writes are joined, reads stream the result
 *	stream     jobs/<j>/stdout, stderr: parked until there is more
 *	job value  jobs/<j>/exit: parked until the job ends, then a value
 *	files      the guest's paths: every call parked on the shell pool
 * Generated files are direct_io with size 0 (and nonseekable for tx and
 * streams), so read(2) returns exactly what the handler returns. FLUSH never
 * does anything: bash sends one before the first write.
 */
#include "fs/fs.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <time.h>
#include <unistd.h>

#include "common/util.h"
#include "fs/nodes.h"
#include "fs/park.h"
#include "machine/guestpath.h"

#define NAME_LIMIT 255
#define FIXED_TIMEOUT 1.0      /* seconds; nodes that never change */
#define UNKNOWN_INO 0xffffffffu  /* d_ino of entries without a node yet */
#define SHUTDOWN_WAIT_MS 5000
#define MISS_SLOTS 2048          /* missing paths logged: a hash set... */
#define MISS_MAX 1024            /* ...this full at most */
#define MISS_PENDING 32          /* lookup misses not yet logged */
#define MISS_SETTLE_MS 1000      /* ...until no mkdir/create came this long */

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
	pthread_mutex_t opens_lock;  /* guards the opens list */
	struct fs_open *opens;
	size_t attest_len;       /* `. attest.sh` reads st_size bytes */
	pthread_mutex_t misses_lock; /* guards misses, n_misses, pending */
	uint64_t misses[MISS_SLOTS]; /* hashes of the lookups logged missing */
	size_t n_misses;
	struct fs_miss pending[MISS_PENDING];
};

struct fs_dirent {
	char *name;
	const struct fs_row *row;
	size_t machine;          /* FS_MACHINE entries */
};

/* Per open file (and open directory), in fi->fh. */
struct fs_open {
	pthread_mutex_t lock;    /* guards snap*, off, reading */
	pthread_cond_t idle;     /* reading went back to 0 */
	struct fs_mount *mnt;
	const struct fs_node *node;
	struct machine *m;
	int accmode;
	char *snap;              /* value files, job exit: the content */
	size_t snap_len;
	int have_snap;
	struct mtx *tx;          /* exec, wait, qmp */
	struct console_view *console; /* console: read from disk, no copy */
	uint64_t off;            /* streams: bytes handed out so far */
	uint64_t reading;        /* the parked read's id, 0 if none */
	struct fs_dirent *ents;  /* directories: the listing at opendir */
	size_t n_ents;
	struct fs_open *prev, *next;  /* mnt->opens */
};

static struct fs_mount *
mnt_of(fuse_req_t req)
{
	return fuse_req_userdata(req);
}

/* A machine/ result as a positive errno for fuse_reply_err. */
static int
err_of(int result)
{
	return result < 0 && result > -4096 ? -result : EIO;
}

static struct machine *
node_machine(struct fs_mount *mnt, const struct fs_node *n)
{
	if (n->machine == FS_NO_MACHINE)
		return NULL;
	return vmset_machine(mnt->vms, n->machine);
}

static int
machine_index(struct vmset *vms, const char *name, size_t *out)
{
	struct machine *m;
	size_t i;

	for (i = 0; (m = vmset_machine(vms, i)); i++) {
		if (!machine_removed(m) && !strcmp(machine_name(m), name)) {
			*out = i;
			return 0;
		}
	}
	return -ENOENT;
}

/* Jobs and guest files come and go: the kernel must ask again. */
static double
row_timeout(const struct fs_row *row)
{
	switch (row->type) {
	case FS_UNIT:
		/* Resolving a unit name costs a systemctl in the guest (about
		 * 0.15 s under TCG); units seldom vanish, and their files are
		 * read afresh at every open anyway. */
		return 5.0;
	case FS_JOB:
	case FS_JOB_CMD:
	case FS_JOB_STDIN:
	case FS_JOB_CTL:
	case FS_JOB_STDOUT:
	case FS_JOB_STDERR:
	case FS_JOB_EXIT:
	case FS_FILE:
	case FS_UNIT_STATE:
	case FS_UNIT_SUBSTATE:
	case FS_UNIT_PROPERTIES:
	case FS_UNIT_LOG:
	case FS_UNIT_CTL:
	case FS_SNAPSHOT:
		return 0.0;
	default:
		return FIXED_TIMEOUT;
	}
}

/* A node below jobs/<j>/ whose job was removed. */
static int
job_gone(struct machine *m, const struct fs_node *n)
{
	return n->job && n->row->type >= FS_JOB && n->row->type <= FS_JOB_EXIT &&
	       (!m || machine_job_exists(m, n->job) <= 0);
}

/* ---- refusals in the machine's log ---- */

/* dir's path below its machine's directory, then name: "jobs/x/cmd". */
static char *
rel_path(struct fs_mount *mnt, const struct fs_node *dir, const char *name)
{
	const struct fs_node *n;
	struct strbuf sb;
	char *up[8];
	int depth = 0;

	sb_init(&sb);
	if (dir->row->type == FS_FILE || dir->row->type == FS_FILES) {
		sb_addf(&sb, "files%s", dir->path);
	} else {
		for (n = dir; n && n->row->type != FS_MACHINE && depth < 8;
		     n = fs_nodes_get(mnt->nodes, n->parent))
			up[depth++] = n->name;
		while (depth--)
			sb_addf(&sb, "%s%s", sb.len ? "/" : "", up[depth]);
	}
	if (name)
		sb_addf(&sb, "%s%s", sb.len && sb.data[sb.len - 1] != '/' ?
				     "/" : "", name);
	return sb_detach(&sb, NULL);
}

/* What was missing or refused, in words (the errno's own text is vague). */
static const char *
refusal_reason(const struct fs_node *dir, const char *name, int err)
{
	enum fs_type t = dir->row->type;

	if (err == EACCES) {
		if (t == FS_FILE || t == FS_FILES)
			return "permission denied in the guest";
		return !(dir->mode & 0444) ? "the file is write-only" :
		       !(dir->mode & 0222) ? "the file is read-only" :
					     "permission denied";
	}
	if (name && t == FS_JOBS)
		return "no such job (mkdir names one)";
	if (name && t == FS_UNITS)
		return "no such unit in the guest";
	if (name && t == FS_SNAPSHOTS)
		return "no such snapshot";
	if (t == FS_FILE || t == FS_FILES)
		return "no such file in the guest";
	if (dir->job && t >= FS_JOB && t <= FS_JOB_EXIT)
		return "no such job (it was removed)";
	if (dir->job && t >= FS_UNIT && t <= FS_UNIT_CTL)
		return "no such unit in the guest";
	return "no such file";
}

static uint64_t
miss_hash(size_t machine, const char *path)
{
	uint64_t h = 1469598103934665603ull;
	const char *c;

	for (c = path; *c; c++)
		h = (h ^ (unsigned char)*c) * 1099511628211ull;
	h = (h ^ machine) * 1099511628211ull;
	return h + !h;
}

/* With misses_lock: log a pending miss, once per path, MISS_MAX at most. */
static void
miss_log(struct fs_mount *mnt, struct fs_miss *ms)
{
	size_t i;

	for (i = ms->hash % MISS_SLOTS;
	     mnt->misses[i] && mnt->misses[i] != ms->hash;
	     i = (i + 1) % MISS_SLOTS)
		;
	if (!mnt->misses[i] && mnt->n_misses < MISS_MAX) {
		mnt->misses[i] = ms->hash;
		machine_log(ms->m, "%s: %s", ms->path, ms->reason);
		if (++mnt->n_misses == MISS_MAX)
			machine_log(ms->m, "%d missing paths logged; no more "
				    "will be", MISS_MAX);
	}
	free(ms->path);
	ms->path = NULL;
	ms->m = NULL;
}

/*
 * Log the pending misses of m (NULL: all) that have settled, or all of
 * them (settled 0): at a read of the log and at unmount.
 */
static void
miss_flush(struct fs_mount *mnt, struct machine *m, int settled)
{
	int64_t now = now_mono_ms();
	size_t i;

	pthread_mutex_lock(&mnt->misses_lock);
	for (i = 0; i < MISS_PENDING; i++) {
		struct fs_miss *ms = &mnt->pending[i];

		if (ms->m && (!m || ms->m == m) &&
		    (!settled || now - ms->when >= MISS_SETTLE_MS))
			miss_log(mnt, ms);
	}
	pthread_mutex_unlock(&mnt->misses_lock);
}

/* The kernel looks a name up before it makes it: that miss is no failure. */
static void
miss_made(struct fs_mount *mnt, const struct fs_node *dir, const char *name)
{
	char *path = rel_path(mnt, dir, name);
	uint64_t h = miss_hash(dir->machine, path);
	size_t i;

	pthread_mutex_lock(&mnt->misses_lock);
	for (i = 0; i < MISS_PENDING; i++) {
		struct fs_miss *ms = &mnt->pending[i];

		if (ms->m && ms->hash == h && !strcmp(ms->path, path)) {
			free(ms->path);
			ms->path = NULL;
			ms->m = NULL;
		}
	}
	pthread_mutex_unlock(&mnt->misses_lock);
	free(path);
}

/* A lookup miss waits a moment: a mkdir or create of it may follow. */
static void
miss_add(struct fs_mount *mnt, struct machine *m, const struct fs_node *dir,
	 char *path, const char *reason)
{
	struct fs_miss *slot = NULL;
	uint64_t h = miss_hash(dir->machine, path);
	size_t i;

	miss_flush(mnt, NULL, 1);
	pthread_mutex_lock(&mnt->misses_lock);
	for (i = 0; i < MISS_PENDING; i++) {
		struct fs_miss *ms = &mnt->pending[i];

		if (ms->m && ms->hash == h && !strcmp(ms->path, path)) {
			ms->when = now_mono_ms();
			pthread_mutex_unlock(&mnt->misses_lock);
			free(path);
			return;
		}
		if (!ms->m) {
			if (!slot || slot->m)
				slot = ms;
		} else if (!slot || (slot->m && ms->when < slot->when)) {
			slot = ms;
		}
	}
	if (slot->m)
		miss_log(mnt, slot);	/* the oldest goes now */
	slot->m = m;
	slot->path = path;
	slot->reason = reason;
	slot->hash = h;
	slot->when = now_mono_ms();
	pthread_mutex_unlock(&mnt->misses_lock);
}

/*
 * An ENOENT or EACCES answered for a path under a machine goes to its log
 * with the path, since the errno alone cannot say what was missing. op names
 * the operation asked for; NULL: a lookup. Every `test -e` and probing tool
 * looks up, and the kernel looks up each name it is about to make: a miss
 * is logged only when no mkdir or create of it followed, once per path, at
 * most MISS_MAX per mount.
 */
static void
log_refusal(struct fs_mount *mnt, const struct fs_node *dir,
	    const char *name, const char *op, int err)
{
	struct machine *m = dir ? node_machine(mnt, dir) : NULL;
	char *path;

	if ((err != ENOENT && err != EACCES) || !m)
		return;
	path = rel_path(mnt, dir, name);
	if (!op) {
		miss_add(mnt, m, dir, path, refusal_reason(dir, name, err));
		return;
	}
	machine_log(m, "%s %s: %s", op, path, refusal_reason(dir, name, err));
	free(path);
}

/* A parked request's error reply, logged when it is a refusal. */
static void
reply_fail(struct fs_preq *p, int err)
{
	if (p->op) {
		struct fs_mount *mnt = mnt_of(p->req);

		log_refusal(mnt, fs_nodes_get(mnt->nodes, p->ino), p->name,
			    strcmp(p->op, "lookup") ? p->op : NULL, err);
	}
	fuse_reply_err(p->req, err);
}

static void
fixed_attr(struct fs_mount *mnt, uint64_t ino, mode_t mode, struct stat *st)
{
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
	/* bash's `source` reads exactly st_size bytes: give the library its
	 * true size (it never changes during a mount). */
	const struct fs_node *n = fs_nodes_get(mnt->nodes, ino);

	if (n && n->row && n->row->type == FS_ATTEST_SH)
		st->st_size = (off_t)mnt->attest_len;
	if (n && n->row && n->row->type == FS_SNAPSHOT) {
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
}

static void
guest_attr(struct fs_mount *mnt, uint64_t ino, const struct guest_stat *gs,
	   struct stat *st)
{
	fixed_attr(mnt, ino, gs->mode, st);
	st->st_size = (off_t)gs->size;
	st->st_blocks = (blkcnt_t)((gs->size + 511) / 512);
	st->st_mtim.tv_sec = gs->mtime;
	st->st_mtim.tv_nsec = 0;
	st->st_ctim = st->st_mtim;
	st->st_atim = st->st_mtim;
}

/* Hand the kernel a node it holds one lookup reference on. */
static void
reply_entry(fuse_req_t req, struct fs_mount *mnt, const struct fs_node *n,
	    const struct stat *st)
{
	struct fuse_entry_param e;

	memset(&e, 0, sizeof(e));
	e.ino = n->ino;
	e.generation = n->generation;
	if (st)
		e.attr = *st;
	else
		fixed_attr(mnt, n->ino, n->mode, &e.attr);
	e.attr.st_ino = n->ino;
	e.attr_timeout = row_timeout(n->row);
	e.entry_timeout = row_timeout(n->row);
	if (fuse_reply_entry(req, &e) < 0)
		fs_nodes_forget(mnt->nodes, n->ino, 1);  /* never arrived */
}

static char *
files_path(const struct fs_node *dir, const char *name)
{
	if (!strcmp(dir->path, "/"))
		return xasprintf("/%s", name);
	return xasprintf("%s/%s", dir->path, name);
}

static int
is_files_dir(const struct fs_node *n)
{
	return n->row->type == FS_FILES ||
	       (n->row->type == FS_FILE && S_ISDIR(n->mode));
}

/* ---- open files ---- */

static struct fs_open *
open_new(struct fs_mount *mnt, const struct fs_node *n, struct machine *m,
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
static void
open_close(struct fs_open *of)
{
	if (of->tx) {
		machine_tx_close(of->tx);
		of->tx = NULL;
	}
	machine_console_close(of->console);
	of->console = NULL;
	if (of->node->row->type == FS_JOB_STDIN && of->accmode != O_RDONLY &&
	    of->m) {
		machine_job_stdin_close(of->m, of->node->job);
		of->accmode = O_RDONLY;
	}
}

static void
open_free(struct fs_open *of)
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

	open_close(of);
	for (i = 0; i < of->n_ents; i++)
		free(of->ents[i].name);
	free(of->ents);
	free(of->snap);
	pthread_cond_destroy(&of->idle);
	pthread_mutex_destroy(&of->lock);
	free(of);
}

static struct fs_open *
open_of(struct fuse_file_info *fi)
{
	return (struct fs_open *)(uintptr_t)fi->fh;
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
static void
open_end_read(struct fs_open *of, uint64_t advance)
{
	pthread_mutex_lock(&of->lock);
	of->reading = 0;
	of->off += advance;
	pthread_cond_broadcast(&of->idle);
	pthread_mutex_unlock(&of->lock);
}

static void
reply_slice(fuse_req_t req, const char *buf, size_t len, uint64_t off,
	    size_t size)
{
	if (off >= len)
		fuse_reply_buf(req, NULL, 0);
	else
		fuse_reply_buf(req, buf + off,
			       len - off < size ? len - off : size);
}

static void
reply_console(fuse_req_t req, struct console_view *v, uint64_t off,
	      size_t size)
{
	char *buf = xmalloc(size);
	ssize_t n = machine_console_pread(v, buf, size, off);

	if (n < 0)
		fuse_reply_err(req, err_of((int)n));
	else
		fuse_reply_buf(req, buf, (size_t)n);
	free(buf);
}

/* ---- replies to parked requests ---- */

/* A control message is taken whole or not at all: a short count would make
 * the writer send the rest as a second message. */
static void
reply_message(struct fs_preq *p)
{
	if (p->mr.result < 0)
		reply_fail(p, err_of(p->mr.result));
	else
		fuse_reply_write(p->req, p->size);
}

/* guest files: the bytes written */
static void
reply_write(struct fs_preq *p)
{
	int res = p->mr.result;

	if (res < 0)
		reply_fail(p, err_of(res));
	else
		/* 0 from machine/ means all of it: a write(2) that returns
		 * 0 would be retried forever */
		fuse_reply_write(p->req, res > 0 && (size_t)res < p->size ?
					 (size_t)res : p->size);
}

static void
reply_status(struct fs_preq *p)
{
	if (p->mr.result < 0)
		reply_fail(p, err_of(p->mr.result));
	else
		fuse_reply_err(p->req, 0);
}

static void
reply_data(struct fs_preq *p)
{
	struct mreq *r = &p->mr;

	if (r->result < 0)
		reply_fail(p, err_of(r->result));
	else
		fuse_reply_buf(p->req, r->data,
			       r->len < p->size ? r->len : p->size);
}

/* exec, wait, qmp and job streams */
static void
reply_stream(struct fs_preq *p)
{
	struct mreq *r = &p->mr;
	size_t len = r->result < 0 ? 0 : (r->len < p->size ? r->len : p->size);

	open_end_read(p->of, len);
	reply_data(p);
}

/* jobs/<j>/exit: keep the value for the reads after this one */
static void
reply_exit(struct fs_preq *p)
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
		reply_fail(p, err_of(r->result));
	else
		fuse_reply_buf(p->req, copy, n);
	free(copy);
}

static int
guest_stat_of(struct mreq *r, struct guest_stat *gs)
{
	if (r->result < 0)
		return r->result;
	if (!r->data || r->len != sizeof(*gs))
		return -EIO;
	memcpy(gs, r->data, sizeof(*gs));
	return 0;
}

/* units/<u>: systemd knows the name (full, short or an alias). */
static void
reply_lookup_unit(struct fs_preq *p)
{
	struct fs_mount *mnt = mnt_of(p->req);
	const struct fs_node *n;

	if (p->mr.result < 0) {
		reply_fail(p, err_of(p->mr.result));
		return;
	}
	n = fs_nodes_ref(mnt->nodes, p->ino, &fs_row_unit, p->name, 0, 0);
	if (!n) {
		reply_fail(p, ENOENT);
		return;
	}
	reply_entry(p->req, mnt, n, NULL);
}

static void
reply_lookup_file(struct fs_preq *p)
{
	struct fs_mount *mnt = mnt_of(p->req);
	const struct fs_node *n;
	struct guest_stat gs;
	struct stat st;
	int ret = guest_stat_of(&p->mr, &gs);

	if (ret < 0) {
		reply_fail(p, err_of(ret));
		return;
	}
	n = fs_nodes_ref(mnt->nodes, p->ino, &fs_row_file, p->name, 0,
			 gs.mode);
	if (!n) {
		reply_fail(p, ENOENT);
		return;
	}
	guest_attr(mnt, n->ino, &gs, &st);
	reply_entry(p->req, mnt, n, &st);
}

static void
reply_getattr_file(struct fs_preq *p)
{
	struct fs_mount *mnt = mnt_of(p->req);
	struct guest_stat gs;
	struct stat st;
	int ret = guest_stat_of(&p->mr, &gs);

	if (ret < 0) {
		reply_fail(p, err_of(ret));
		return;
	}
	guest_attr(mnt, p->ino, &gs, &st);
	fuse_reply_attr(p->req, &st, 0.0);
}

/* setattr size 0 on a guest file: the attributes after the truncation */
static void
reply_truncated(struct fs_preq *p)
{
	struct stat st;

	if (p->mr.result < 0) {
		reply_fail(p, err_of(p->mr.result));
		return;
	}
	fixed_attr(mnt_of(p->req), p->ino, p->mode, &st);
	st.st_mtim.tv_sec = time(NULL);
	st.st_mtim.tv_nsec = 0;
	st.st_ctim = st.st_mtim;
	fuse_reply_attr(p->req, &st, 0.0);
}

/* open(O_TRUNC) of a guest file: truncated, now open it */
static void
reply_open_truncated(struct fs_preq *p)
{
	if (p->mr.result < 0) {
		open_free(p->of);
		reply_fail(p, err_of(p->mr.result));
		return;
	}
	if (fuse_reply_open(p->req, &p->fi) < 0)
		open_free(p->of);  /* no release will come */
}

static void
reply_opendir_names(struct fs_preq *p, const struct fs_row *row)
{
	struct mreq *r = &p->mr;
	struct fs_open *of = p->of;
	size_t i = 0, cap = 0;

	if (r->result < 0) {
		open_free(of);
		reply_fail(p, err_of(r->result));
		return;
	}
	while (r->data && i < r->len) {
		const char *name = r->data + i;
		size_t n = strnlen(name, r->len - i);

		i += n + 1;
		if (!n || !strcmp(name, ".") || !strcmp(name, ".."))
			continue;
		if (of->n_ents == cap) {
			cap = cap ? 2 * cap : 16;
			of->ents = xrealloc(of->ents, cap * sizeof(*of->ents));
		}
		of->ents[of->n_ents].name = xasprintf("%.*s", (int)n, name);
		of->ents[of->n_ents].row = row;
		of->ents[of->n_ents].machine = FS_NO_MACHINE;
		of->n_ents++;
	}
	if (fuse_reply_open(p->req, &p->fi) < 0)
		open_free(of);
}

static void
reply_opendir_files(struct fs_preq *p)
{
	reply_opendir_names(p, &fs_row_file);
}

static void
reply_opendir_units(struct fs_preq *p)
{
	reply_opendir_names(p, &fs_row_unit);
}

/* mkdir in files/: a new guest directory */
static void
reply_mkdir_file(struct fs_preq *p)
{
	struct fs_mount *mnt = mnt_of(p->req);
	const struct fs_node *n;
	struct stat st;

	if (p->mr.result < 0) {
		reply_fail(p, err_of(p->mr.result));
		return;
	}
	n = fs_nodes_ref(mnt->nodes, p->ino, &fs_row_file, p->name, 0,
			 p->mode);
	if (!n) {
		reply_fail(p, ENOENT);
		return;
	}
	fixed_attr(mnt, n->ino, p->mode, &st);
	st.st_mtim.tv_sec = time(NULL);
	st.st_mtim.tv_nsec = 0;
	reply_entry(p->req, mnt, n, &st);
}

/* create in files/: a new empty guest file, open */
static void
reply_create_file(struct fs_preq *p)
{
	struct fs_mount *mnt = mnt_of(p->req);
	const struct fs_node *n;
	struct fuse_entry_param e;
	struct fs_open *of;

	if (p->mr.result < 0) {
		reply_fail(p, err_of(p->mr.result));
		return;
	}
	n = fs_nodes_ref(mnt->nodes, p->ino, &fs_row_file, p->name, 0,
			 p->mode);
	if (!n) {
		reply_fail(p, ENOENT);
		return;
	}
	of = open_new(mnt, n, node_machine(mnt, n), p->fi.flags & O_ACCMODE);
	p->fi.fh = (uintptr_t)of;
	p->fi.direct_io = 1;
	memset(&e, 0, sizeof(e));
	e.ino = n->ino;
	e.generation = n->generation;
	fixed_attr(mnt, n->ino, p->mode, &e.attr);
	e.attr.st_mtim.tv_sec = time(NULL);
	e.attr.st_mtim.tv_nsec = 0;
	if (fuse_reply_create(p->req, &e, &p->fi) < 0) {
		open_free(of);
		fs_nodes_forget(mnt->nodes, n->ino, 1);
	}
}

/* ---- lookup, attributes ---- */

static void
fs_lookup(fuse_req_t req, fuse_ino_t parent, const char *name)
{
	struct fs_mount *mnt = mnt_of(req);
	const struct fs_node *dir = fs_nodes_get(mnt->nodes, parent), *n;
	const struct fs_row *row;
	struct machine *m;
	size_t machine = FS_NO_MACHINE;
	int notdir;

	if (!dir) {
		fuse_reply_err(req, ENOENT);
		return;
	}
	if (strlen(name) > NAME_LIMIT) {
		fuse_reply_err(req, ENAMETOOLONG);
		return;
	}
	m = node_machine(mnt, dir);
	row = fs_row_child(dir->row->type, name, m ? machine_caps(m) : 0,
			   &notdir);
	if (!row || job_gone(m, dir)) {
		if (!notdir)
			log_refusal(mnt, dir, name, NULL, ENOENT);
		fuse_reply_err(req, notdir ? ENOTDIR : ENOENT);
		return;
	}
	switch (row->type) {
	case FS_MACHINE:
		if (machine_index(mnt->vms, name, &machine) < 0) {
			fuse_reply_err(req, ENOENT);
			return;
		}
		break;
	case FS_JOB:
		if (machine_job_exists(m, name) <= 0) {
			log_refusal(mnt, dir, name, NULL, ENOENT);
			fuse_reply_err(req, ENOENT);
			return;
		}
		break;
	case FS_SNAPSHOT: {
		struct guest_stat gs;

		if (machine_snapshot_stat(m, name, &gs) < 0) {
			log_refusal(mnt, dir, name, NULL, ENOENT);
			fuse_reply_err(req, ENOENT);
			return;
		}
		break;
	}
	case FS_UNIT: {
		struct fs_preq *p = fs_preq_new(mnt->park, req,
						reply_lookup_unit);

		p->op = "lookup";
		p->ino = parent;
		p->name = xstrdup(name);
		fs_park_begin(p);
		machine_unit_resolve(m, name, &p->mr);
		fs_park_commit(p);
		return;
	}
	case FS_FILE: {
		struct fs_preq *p;

		if (!is_files_dir(dir)) {
			fuse_reply_err(req, ENOTDIR);
			return;
		}
		p = fs_preq_new(mnt->park, req, reply_lookup_file);
		p->op = "lookup";
		p->ino = parent;
		p->name = xstrdup(name);
		p->path = files_path(dir, name);
		fs_park_begin(p);
		machine_file_stat(m, p->path, &p->mr);
		fs_park_commit(p);
		return;
	}
	default:
		break;
	}
	n = fs_nodes_ref(mnt->nodes, parent, row, name, machine, 0);
	if (!n) {
		fuse_reply_err(req, ENOENT);
		return;
	}
	reply_entry(req, mnt, n, NULL);
}

static void
fs_forget(fuse_req_t req, fuse_ino_t ino, uint64_t nlookup)
{
	fs_nodes_forget(mnt_of(req)->nodes, ino, nlookup);
	fuse_reply_none(req);
}

static void
fs_forget_multi(fuse_req_t req, size_t count,
		struct fuse_forget_data *forgets)
{
	struct fs_mount *mnt = mnt_of(req);
	size_t i;

	for (i = 0; i < count; i++)
		fs_nodes_forget(mnt->nodes, forgets[i].ino,
				forgets[i].nlookup);
	fuse_reply_none(req);
}

static void
fs_getattr(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
	struct fs_mount *mnt = mnt_of(req);
	const struct fs_node *n = fs_nodes_get(mnt->nodes, ino);
	struct machine *m;
	struct stat st;

	if (!n) {
		fuse_reply_err(req, ENOENT);
		return;
	}
	m = node_machine(mnt, n);
	if (n->row->type == FS_FILE) {
		struct fs_preq *p = fs_preq_new(mnt->park, req,
						reply_getattr_file);

		p->ino = ino;
		fs_park_begin(p);
		machine_file_stat(m, n->path, &p->mr);
		fs_park_commit(p);
		return;
	}
	if (job_gone(m, n)) {
		fuse_reply_err(req, ENOENT);
		return;
	}
	fixed_attr(mnt, ino, n->mode, &st);
	fuse_reply_attr(req, &st, row_timeout(n->row));
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
	struct fs_mount *mnt = mnt_of(req);
	const struct fs_node *n = fs_nodes_get(mnt->nodes, ino);
	const int owner = FUSE_SET_ATTR_MODE | FUSE_SET_ATTR_UID |
			  FUSE_SET_ATTR_GID;
	struct machine *m;
	struct fs_preq *p;
	struct stat st;

	if (!n) {
		fuse_reply_err(req, ENOENT);
		return;
	}
	m = node_machine(mnt, n);
	if ((to_set & FUSE_SET_ATTR_SIZE) && S_ISDIR(n->mode)) {
		fuse_reply_err(req, EISDIR);
		return;
	}
	if (n->row->type != FS_FILE) {
		if (to_set & owner) {
			fuse_reply_err(req, EPERM);
			return;
		}
		if (job_gone(m, n)) {
			fuse_reply_err(req, ENOENT);
			return;
		}
		fixed_attr(mnt, ino, n->mode, &st);
		fuse_reply_attr(req, &st, row_timeout(n->row));
		return;
	}

	/* Owners differ between host and guest: no chown, but let `mv` and
	 * `cp -p` set what is already there. */
	if (((to_set & FUSE_SET_ATTR_UID) && attr->st_uid != mnt->uid) ||
	    ((to_set & FUSE_SET_ATTR_GID) && attr->st_gid != mnt->gid)) {
		fuse_reply_err(req, EOPNOTSUPP);
		return;
	}
	if ((to_set & FUSE_SET_ATTR_MODE) && !(to_set & FUSE_SET_ATTR_SIZE)) {
		/* chmod in the guest (a symlink's own mode is not its own) */
		if (S_ISLNK(n->mode)) {
			fuse_reply_err(req, EOPNOTSUPP);
			return;
		}
		p = fs_preq_new(mnt->park, req, reply_getattr_file);
		p->op = "chmod";
		p->ino = ino;
		fs_park_begin(p);
		machine_file_chmod(m, n->path, attr->st_mode, &p->mr);
		fs_park_commit(p);
		return;
	}
	if ((to_set & FUSE_SET_ATTR_SIZE) && attr->st_size != 0) {
		fuse_reply_err(req, EOPNOTSUPP);
		return;
	}
	if (to_set & FUSE_SET_ATTR_SIZE) {
		p = fs_preq_new(mnt->park, req, reply_truncated);
		p->op = "truncate";
		p->ino = ino;
		p->mode = n->mode;
		fs_park_begin(p);
		machine_file_write(m, n->path, 0, NULL, 0, 1, &p->mr);
		fs_park_commit(p);
		return;
	}
	/* times: accepted and ignored (touch works), the guest's stat
	 * answers */
	p = fs_preq_new(mnt->park, req, reply_getattr_file);
	p->ino = ino;
	fs_park_begin(p);
	machine_file_stat(m, n->path, &p->mr);
	fs_park_commit(p);
}

/* ---- open, read, write, release ---- */

static int
want_read(int accmode)
{
	return accmode == O_RDONLY || accmode == O_RDWR;
}

static int
want_write(int accmode)
{
	return accmode == O_WRONLY || accmode == O_RDWR;
}

/* The access the row's mode grants; root bypasses the mode bits without
 * default_permissions, so open checks them itself. */
static int
check_access(const struct fs_node *n, int accmode)
{
	if (want_read(accmode) && !(n->mode & 0444))
		return -EACCES;
	if (want_write(accmode) && !(n->mode & 0222))
		return -EACCES;
	return 0;
}

static char *
render_value(struct fs_mount *mnt, const struct fs_node *n,
	     struct machine *m, size_t *len)
{
	switch (n->row->type) {
	case FS_EVENTS:
		return vmset_render_events(mnt->vms, len);
	case FS_ATTEST_SH:
		return vmset_render_attest_sh(mnt->vms, len);
	case FS_SNAPSHOT: {
		struct guest_stat gs;
		struct strbuf sb;

		sb_init(&sb);
		if (m && machine_snapshot_stat(m, n->job, &gs) == 0)
			sb_addf(&sb, "name %s\nbytes %llu\ntime %lld\n", n->job,
				(unsigned long long)gs.size,
				(long long)gs.mtime);
		return sb_detach(&sb, len);
	}
	default:
		return m ? machine_render(m, (enum machine_view)n->row->arg,
					  len)
			 : NULL;
	}
}

static void
fs_open(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
	struct fs_mount *mnt = mnt_of(req);
	const struct fs_node *n = fs_nodes_get(mnt->nodes, ino);
	int accmode = fi->flags & O_ACCMODE;
	struct machine *m;
	struct fs_open *of;
	int ret;

	if (!n) {
		fuse_reply_err(req, ENOENT);
		return;
	}
	m = node_machine(mnt, n);
	if (S_ISDIR(n->mode)) {
		fuse_reply_err(req, EISDIR);
		return;
	}
	if (job_gone(m, n)) {
		log_refusal(mnt, n, NULL, "open", ENOENT);
		fuse_reply_err(req, ENOENT);
		return;
	}
	if (n->row->kind != FS_KIND_FILES) {
		ret = check_access(n, accmode);
		if (ret < 0) {
			log_refusal(mnt, n, NULL, want_write(accmode) ?
				    "open for writing" : "open for reading",
				    -ret);
			fuse_reply_err(req, -ret);
			return;
		}
		fi->direct_io = 1;
		fi->keep_cache = 0;
	}

	switch (n->row->kind) {
	case FS_KIND_VALUE:
		if (n->row->type == FS_LOG)
			miss_flush(mnt, m, 0);	/* the reader sees them */
		of = open_new(mnt, n, m, accmode);
		if (want_read(accmode) && n->row->type == FS_CONSOLE && m) {
			/* Up to 2 x log_max: never copied whole into memory. */
			machine_console_open(m, &of->console);
		} else if (want_read(accmode)) {
			of->snap = render_value(mnt, n, m, &of->snap_len);
			if (!of->snap) {
				open_free(of);
				fuse_reply_err(req, EIO);
				return;
			}
			of->have_snap = 1;
		}
		break;
	case FS_KIND_CONTROL:
		of = open_new(mnt, n, m, accmode);
		break;
	case FS_KIND_TX:
		if (accmode == O_WRONLY) {
			/* it would run nothing: a transaction is read */
			machine_log(m, "%s: open it read-write (exec 3<>%s),"
				    " a write-only open runs nothing",
				    n->name, n->name);
			fuse_reply_err(req, EINVAL);
			return;
		}
		of = open_new(mnt, n, m, accmode);
		of->tx = machine_tx_open(m, (enum mtx_kind)n->row->arg);
		if (!of->tx) {
			open_free(of);
			fuse_reply_err(req, EIO);
			return;
		}
		fi->nonseekable = 1;
		break;
	case FS_KIND_STREAM:
		of = open_new(mnt, n, m, accmode);
		fi->nonseekable = 1;
		break;
	case FS_KIND_JOB_VALUE:
		of = open_new(mnt, n, m, accmode);
		break;
	case FS_KIND_FILES:
		of = open_new(mnt, n, m, accmode);
		fi->fh = (uintptr_t)of;
		fi->direct_io = 1;
		if ((fi->flags & O_TRUNC) && want_write(accmode)) {
			struct fs_preq *p = fs_preq_new(mnt->park, req,
							reply_open_truncated);

			p->op = "open";
			p->ino = ino;
			p->of = of;
			p->fi = *fi;
			fs_park_begin(p);
			machine_file_write(m, n->path, 0, NULL, 0, 1, &p->mr);
			fs_park_commit(p);
			return;
		}
		break;
	default:
		fuse_reply_err(req, EISDIR);
		return;
	}
	fi->fh = (uintptr_t)of;
	if (fuse_reply_open(req, fi) < 0)
		open_free(of);
}

static void
fs_read(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off,
	struct fuse_file_info *fi)
{
	struct fs_mount *mnt = mnt_of(req);
	struct fs_open *of = open_of(fi);
	const struct fs_node *n = of->node;
	struct fs_preq *p;
	int ret;

	switch (n->row->kind) {
	case FS_KIND_VALUE:
		if (of->console) {
			reply_console(req, of->console, (uint64_t)off, size);
			return;
		}
		if (!of->have_snap) {
			fuse_reply_err(req, EBADF);
			return;
		}
		reply_slice(req, of->snap, of->snap_len, (uint64_t)off, size);
		return;
	case FS_KIND_JOB_VALUE:
		pthread_mutex_lock(&of->lock);
		if (of->have_snap) {
			/* immutable once set */
			pthread_mutex_unlock(&of->lock);
			reply_slice(req, of->snap, of->snap_len,
				    (uint64_t)off, size);
			return;
		}
		pthread_mutex_unlock(&of->lock);
		p = fs_preq_new(mnt->park, req, reply_exit);
		break;
	case FS_KIND_TX:
	case FS_KIND_STREAM:
		p = fs_preq_new(mnt->park, req, reply_stream);
		break;
	case FS_KIND_FILES:
		p = fs_preq_new(mnt->park, req, reply_data);
		p->op = "read";
		p->ino = ino;
		p->size = size;
		p->mr.size = size;
		fs_park_begin(p);
		machine_file_read(of->m, n->path, (uint64_t)off, &p->mr);
		fs_park_commit(p);
		return;
	default:
		fuse_reply_err(req, EBADF);
		return;
	}

	/* one parked read per open file: offsets mean nothing here */
	ret = open_start_read(of, p->id);
	if (ret < 0) {
		free(p);
		fuse_reply_err(req, -ret);
		return;
	}
	p->op = "read";
	p->ino = ino;
	p->of = of;
	p->size = size;
	p->off = (uint64_t)off;
	p->mr.size = size;
	fs_park_begin(p);
	if (n->row->kind == FS_KIND_TX)
		machine_tx_read(of->tx, &p->mr);
	else if (n->row->type >= FS_UNIT_STATE && n->row->type <= FS_UNIT_LOG)
		machine_unit_read(of->m, n->job, (enum unit_file)n->row->arg,
				  &p->mr);
	else if (n->row->type == FS_SCREEN_PNG ||
		 n->row->type == FS_SCREEN_TXT)
		machine_screen_read(of->m, (int)n->row->arg, &p->mr);
	else
		machine_job_read(of->m, n->job, (enum job_file)n->row->arg,
				 n->row->kind == FS_KIND_STREAM ? of->off : 0,
				 &p->mr);
	fs_park_commit(p);
}

static void
fs_write(fuse_req_t req, fuse_ino_t ino, const char *buf, size_t size,
	 off_t off, struct fuse_file_info *fi)
{
	struct fs_mount *mnt = mnt_of(req);
	struct fs_open *of = open_of(fi);
	const struct fs_node *n = of->node;
	struct fs_preq *p;
	int ret;

	switch (n->row->kind) {
	case FS_KIND_VALUE:
		if (n->row->type != FS_CONSOLE || !want_write(of->accmode)) {
			fuse_reply_err(req, EBADF);
			return;
		}
		ret = machine_console_write(of->m, buf, size);
		if (ret < 0)
			fuse_reply_err(req, err_of(ret));
		else
			fuse_reply_write(req, (size_t)ret);
		return;
	case FS_KIND_TX:
		ret = machine_tx_write(of->tx, buf, size);
		if (ret < 0)
			fuse_reply_err(req, err_of(ret));
		else
			fuse_reply_write(req, size);
		return;
	case FS_KIND_CONTROL:
	case FS_KIND_FILES:
		break;
	default:
		fuse_reply_err(req, EBADF);
		return;
	}

	/* machine/ may keep the bytes until done: give it our own copy (NUL
	 * terminated, not counted) */
	p = fs_preq_new(mnt->park, req, n->row->kind == FS_KIND_CONTROL ?
					    reply_message : reply_write);
	p->op = "write";
	p->ino = ino;
	p->buf = xmalloc(size + 1);
	memcpy(p->buf, buf, size);
	p->buf[size] = '\0';
	p->size = size;
	fs_park_begin(p);
	switch (n->row->type) {
	case FS_VMS_CTL:
		vmset_ctl(mnt->vms, p->buf, size, &p->mr);
		break;
	case FS_CTL:
		machine_ctl(of->m, p->buf, size, &p->mr);
		break;
	case FS_JOB_CMD:
	case FS_JOB_STDIN:
	case FS_JOB_CTL:
		machine_job_write(of->m, n->job, (enum job_file)n->row->arg,
				  p->buf, size, &p->mr);
		break;
	case FS_UNIT_CTL:
		machine_unit_ctl(of->m, n->job, p->buf, size, &p->mr);
		break;
	case FS_KEYS:
		machine_keys(of->m, p->buf, size, &p->mr);
		break;
	case FS_TYPE:
		machine_type(of->m, p->buf, size, &p->mr);
		break;
	default: /* guest files */
		machine_file_write(of->m, n->path, (uint64_t)off, p->buf, size,
				   0, &p->mr);
		break;
	}
	fs_park_commit(p);
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
	open_free(of);
	fuse_reply_err(req, 0);
}

/* ---- directories ---- */

static void
dir_add(struct fs_open *of, size_t *cap, const char *name,
	const struct fs_row *row, size_t machine)
{
	if (of->n_ents == *cap) {
		*cap = *cap ? 2 * *cap : 16;
		of->ents = xrealloc(of->ents, *cap * sizeof(*of->ents));
	}
	of->ents[of->n_ents].name = xstrdup(name);
	of->ents[of->n_ents].row = row;
	of->ents[of->n_ents].machine = machine;
	of->n_ents++;
}

static void
fs_opendir(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
	struct fs_mount *mnt = mnt_of(req);
	const struct fs_node *n = fs_nodes_get(mnt->nodes, ino);
	const struct fs_row *row;
	struct machine *m;
	struct fs_open *of;
	size_t cap = 0, pos = 0, i;

	if (!n) {
		fuse_reply_err(req, ENOENT);
		return;
	}
	if (!S_ISDIR(n->mode)) {
		fuse_reply_err(req, ENOTDIR);
		return;
	}
	m = node_machine(mnt, n);
	if (job_gone(m, n)) {
		fuse_reply_err(req, ENOENT);
		return;
	}
	of = open_new(mnt, n, m, O_RDONLY);
	fi->fh = (uintptr_t)of;
	if (n->row->kind == FS_KIND_FILES) {
		struct fs_preq *p = fs_preq_new(mnt->park, req,
						reply_opendir_files);

		p->op = "list";
		p->ino = ino;
		p->of = of;
		p->fi = *fi;
		fs_park_begin(p);
		machine_file_list(m, n->path, &p->mr);
		fs_park_commit(p);
		return;
	}
	if (n->row->type == FS_UNITS) {
		struct fs_preq *p = fs_preq_new(mnt->park, req,
						reply_opendir_units);

		p->op = "list";
		p->ino = ino;
		p->of = of;
		p->fi = *fi;
		fs_park_begin(p);
		machine_unit_list(m, &p->mr);
		fs_park_commit(p);
		return;
	}

	while ((row = fs_row_next(n->row->type, m ? machine_caps(m) : 0,
				  &pos)))
		dir_add(of, &cap, row->name, row, FS_NO_MACHINE);
	if (n->row->type == FS_ROOT) {
		struct machine *mm;

		for (i = 0; (mm = vmset_machine(mnt->vms, i)); i++)
			if (!machine_removed(mm))
				dir_add(of, &cap, machine_name(mm),
					&fs_row_machine, i);
	} else if (n->row->type == FS_JOBS || n->row->type == FS_SNAPSHOTS) {
		char *names = NULL;
		size_t len = 0, at = 0;
		const struct fs_row *dyn = n->row->type == FS_JOBS ?
						   &fs_row_job : &fs_row_snapshot;

		if ((n->row->type == FS_JOBS ?
			     machine_job_list(m, &names, &len) :
			     machine_snapshot_list(m, &names, &len)) >= 0) {
			while (names && at < len) {
				size_t l = strnlen(names + at, len - at);

				if (l) {
					char *name = xasprintf("%.*s", (int)l,
							       names + at);

					dir_add(of, &cap, name, dyn,
						FS_NO_MACHINE);
					free(name);
				}
				at += l + 1;
			}
		}
		free(names);
	}
	if (fuse_reply_open(req, fi) < 0)
		open_free(of);
}

/*
 * Entries 0 and 1 are "." and "..", entry i + 2 is of->ents[i]; the offset
 * of an entry is the index of the next. readdirplus hands the kernel a
 * lookup reference on every entry it returns (but "." and ".."), except for
 * guest files: their type is unknown until a stat, so they go without a node
 * (ino 0) and the kernel looks them up.
 */
static void
readdir_common(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off,
	       struct fuse_file_info *fi, int plus)
{
	struct fs_mount *mnt = mnt_of(req);
	struct fs_open *of = open_of(fi);
	const struct fs_node *dir = of->node;
	char *buf = xmalloc(size);
	uint64_t *refs = NULL;
	size_t used = 0, n_refs = 0, i;

	if (plus)
		refs = xcalloc(of->n_ents + 1, sizeof(*refs));
	for (i = off < 0 ? 0 : (size_t)off; i < of->n_ents + 2; i++) {
		const struct fs_dirent *d = i >= 2 ? &of->ents[i - 2] : NULL;
		const char *name = i == 0 ? "." : i == 1 ? ".." : d->name;
		struct fuse_entry_param e;
		const struct fs_node *n = NULL;
		size_t need;

		memset(&e, 0, sizeof(e));
		e.attr.st_ino = i == 0 ? dir->ino : i == 1 ? dir->parent
							    : UNKNOWN_INO;
		e.attr.st_mode = d ? d->row->mode : S_IFDIR;
		if (!plus) {
			need = fuse_add_direntry(req, buf + used, size - used,
						 name, &e.attr, (off_t)i + 1);
			if (need > size - used)
				break;
			used += need;
			continue;
		}
		need = fuse_add_direntry_plus(req, NULL, 0, name, NULL, 0);
		if (need > size - used)
			break;
		if (d && d->row != &fs_row_file) {
			n = fs_nodes_ref(mnt->nodes, dir->ino, d->row, name,
					 d->machine, 0);
			if (n) {
				refs[n_refs++] = n->ino;
				e.ino = n->ino;
				e.generation = n->generation;
				fixed_attr(mnt, n->ino, n->mode, &e.attr);
				e.attr_timeout = row_timeout(n->row);
				e.entry_timeout = row_timeout(n->row);
			}
		}
		used += fuse_add_direntry_plus(req, buf + used, size - used,
					       name, &e, (off_t)i + 1);
	}
	if (fuse_reply_buf(req, buf, used) < 0) {
		/* the kernel never saw them: take the references back */
		for (i = 0; i < n_refs; i++)
			fs_nodes_forget(mnt->nodes, refs[i], 1);
	}
	free(refs);
	free(buf);
}

static void
fs_readdir(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off,
	   struct fuse_file_info *fi)
{
	readdir_common(req, ino, size, off, fi, 0);
}

static void
fs_readdirplus(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off,
	       struct fuse_file_info *fi)
{
	readdir_common(req, ino, size, off, fi, 1);
}

static void
fs_releasedir(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
	open_free(open_of(fi));
	fuse_reply_err(req, 0);
}

/* ---- jobs/ and files/: making and removing names ---- */

/* The directory a new name goes into, or an errno for the reply. */
static int
new_name_dir(struct fs_mount *mnt, fuse_ino_t parent, const char *name,
	     const struct fs_node **dir, struct machine **m)
{
	*dir = fs_nodes_get(mnt->nodes, parent);
	if (!*dir)
		return ENOENT;
	if (!S_ISDIR((*dir)->mode))
		return ENOTDIR;
	if (strlen(name) > NAME_LIMIT)
		return ENAMETOOLONG;
	*m = node_machine(mnt, *dir);
	if (!*m)
		return EPERM;
	return 0;
}

/* op: 'c' create (mode), 's' symlink to target, 'd' rmdir, else unlink */
static void
park_file_change(fuse_req_t req, struct fs_mount *mnt, fuse_ino_t parent,
		 const struct fs_node *dir, struct machine *m,
		 const char *name, mode_t mode, fs_reply_fn reply, int op,
		 const char *target)
{
	struct fs_preq *p = fs_preq_new(mnt->park, req, reply);

	p->op = op == 'c' ? (S_ISDIR(mode) ? "mkdir" : "create") :
		op == 's' ? "symlink" : op == 'd' ? "rmdir" : "unlink";
	p->ino = parent;
	p->name = xstrdup(name);
	p->path = files_path(dir, name);
	p->mode = mode;
	fs_park_begin(p);
	if (op == 'c')
		machine_file_create(m, p->path, mode, &p->mr);
	else if (op == 's')
		machine_file_symlink(m, target, p->path, &p->mr);
	else
		machine_file_remove(m, p->path, op == 'd', &p->mr);
	fs_park_commit(p);
}

static void
fs_mkdir(fuse_req_t req, fuse_ino_t parent, const char *name, mode_t mode)
{
	struct fs_mount *mnt = mnt_of(req);
	const struct fs_node *dir, *n;
	struct machine *m;
	int ret = new_name_dir(mnt, parent, name, &dir, &m);

	if (ret) {
		fuse_reply_err(req, ret);
		return;
	}
	miss_made(mnt, dir, name);
	if (dir->row->type == FS_JOBS) {
		ret = machine_job_create(m, name);
		if (ret < 0) {
			fuse_reply_err(req, err_of(ret));
			return;
		}
		n = fs_nodes_ref(mnt->nodes, parent, &fs_row_job, name,
				 FS_NO_MACHINE, 0);
		if (n)
			reply_entry(req, mnt, n, NULL);
		else
			fuse_reply_err(req, ENOENT);
		return;
	}
	if (is_files_dir(dir)) {
		park_file_change(req, mnt, parent, dir, m, name,
				 S_IFDIR | (mode & 07777), reply_mkdir_file,
				 'c', NULL);
		return;
	}
	fuse_reply_err(req, EPERM);
}

static void
fs_rmdir(fuse_req_t req, fuse_ino_t parent, const char *name)
{
	struct fs_mount *mnt = mnt_of(req);
	const struct fs_node *dir;
	struct machine *m;
	int ret;

	if (parent == FS_ROOT_INO) {
		/* A clone goes with rmdir once halted. */
		ret = vmset_remove(mnt->vms, name);
		fuse_reply_err(req, ret < 0 ? err_of(ret) : 0);
		return;
	}
	ret = new_name_dir(mnt, parent, name, &dir, &m);

	if (ret) {
		fuse_reply_err(req, ret);
		return;
	}
	if (dir->row->type == FS_JOBS) {
		ret = machine_job_remove(m, name);
		if (ret < 0)
			log_refusal(mnt, dir, name, "rmdir", err_of(ret));
		fuse_reply_err(req, ret < 0 ? err_of(ret) : 0);
		return;
	}

	if (is_files_dir(dir)) {
		park_file_change(req, mnt, parent, dir, m, name, 0,
				 reply_status, 'd', NULL);
		return;
	}
	fuse_reply_err(req, EPERM);
}

static void
fs_unlink(fuse_req_t req, fuse_ino_t parent, const char *name)
{
	struct fs_mount *mnt = mnt_of(req);
	const struct fs_node *dir;
	struct machine *m;
	int ret = new_name_dir(mnt, parent, name, &dir, &m);

	if (ret) {
		fuse_reply_err(req, ret);
		return;
	}
	if (dir->row->type == FS_SNAPSHOTS) {
		ret = machine_snapshot_remove(m, name);
		if (ret < 0)
			log_refusal(mnt, dir, name, "unlink", err_of(ret));
		fuse_reply_err(req, ret < 0 ? err_of(ret) : 0);
		return;
	}
	if (is_files_dir(dir)) {
		park_file_change(req, mnt, parent, dir, m, name, 0,
				 reply_status, 'f', NULL);
		return;
	}
	fuse_reply_err(req, EPERM);
}

static void
fs_create(fuse_req_t req, fuse_ino_t parent, const char *name, mode_t mode,
	  struct fuse_file_info *fi)
{
	struct fs_mount *mnt = mnt_of(req);
	const struct fs_node *dir;
	struct machine *m;
	struct fs_preq *p;
	int ret = new_name_dir(mnt, parent, name, &dir, &m);

	if (ret) {
		fuse_reply_err(req, ret);
		return;
	}
	if (!is_files_dir(dir)) {
		fuse_reply_err(req, EPERM);
		return;
	}
	miss_made(mnt, dir, name);
	p = fs_preq_new(mnt->park, req, reply_create_file);
	p->op = "create";
	p->ino = parent;
	p->name = xstrdup(name);
	p->path = files_path(dir, name);
	p->mode = S_IFREG | (mode & 07777);
	p->fi = *fi;
	fs_park_begin(p);
	machine_file_create(m, p->path, p->mode, &p->mr);
	fs_park_commit(p);
}

/*
 * rename in one machine's files/: the guest renames. The renamed inode keeps
 * its old path here, but files/ entries have no cache time, so the kernel
 * looks the new name up afresh. Between machines: EXDEV, mv copies.
 */
static void
fs_rename(fuse_req_t req, fuse_ino_t parent, const char *name,
	  fuse_ino_t newparent, const char *newname, unsigned int flags)
{
	struct fs_mount *mnt = mnt_of(req);
	const struct fs_node *a = fs_nodes_get(mnt->nodes, parent);
	const struct fs_node *b = fs_nodes_get(mnt->nodes, newparent);
	struct fs_preq *p;
	char *to;

	if (!a || !b || !is_files_dir(a) || !is_files_dir(b)) {
		fuse_reply_err(req, EPERM);
		return;
	}
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
	if (strlen(newname) > NAME_LIMIT) {
		fuse_reply_err(req, ENAMETOOLONG);
		return;
	}
	miss_made(mnt, b, newname);
	p = fs_preq_new(mnt->park, req, reply_status);
	p->op = "rename";
	p->ino = parent;
	p->name = xstrdup(name);
	p->path = files_path(a, name);
	to = files_path(b, newname);
	fs_park_begin(p);
	machine_file_rename(node_machine(mnt, a), p->path, to, &p->mr);
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
		reply_fail(p, err_of(r->result));
		return;
	}
	/* readlink(1) ends the target with exactly one newline */
	len = r->len;
	if (len && ((const char *)r->data)[len - 1] == '\n')
		len--;
	ret = guestpath_link_target(p->path, r->data, len, &out);
	if (ret < 0) {
		reply_fail(p, EIO);
		return;
	}
	fuse_reply_readlink(p->req, out);
	free(out);
}

static void
fs_readlink(fuse_req_t req, fuse_ino_t ino)
{
	struct fs_mount *mnt = mnt_of(req);
	const struct fs_node *n = fs_nodes_get(mnt->nodes, ino);
	struct fs_preq *p;

	if (!n || n->row->type != FS_FILE || !S_ISLNK(n->mode)) {
		fuse_reply_err(req, n ? EINVAL : ENOENT);
		return;
	}
	p = fs_preq_new(mnt->park, req, reply_readlink);
	p->op = "readlink";
	p->ino = ino;
	p->path = xstrdup(n->path);
	fs_park_begin(p);
	machine_file_readlink(node_machine(mnt, n), p->path, &p->mr);
	fs_park_commit(p);
}

static void
fs_symlink(fuse_req_t req, const char *link, fuse_ino_t parent,
	   const char *name)
{
	struct fs_mount *mnt = mnt_of(req);
	const struct fs_node *dir;
	struct machine *m;
	int ret = new_name_dir(mnt, parent, name, &dir, &m);

	if (!ret && !is_files_dir(dir))
		ret = EPERM;
	if (!ret)
		miss_made(mnt, dir, name);
	if (ret)
		fuse_reply_err(req, ret);
	else
		park_file_change(req, mnt, parent, dir, m, name, S_IFLNK | 0777,
				 reply_mkdir_file, 's', link);
}

/*
 * access(2) and `test -w`: without default_permissions root passes every
 * mode check in the kernel, so answer from the row's mode (guest files: the
 * guest decides when it is used).
 */
static void
fs_access(fuse_req_t req, fuse_ino_t ino, int mask)
{
	struct fs_mount *mnt = mnt_of(req);
	const struct fs_node *n = fs_nodes_get(mnt->nodes, ino);
	int ret = 0;

	if (!n) {
		fuse_reply_err(req, ENOENT);
		return;
	}
	if (n->row->type != FS_FILE) {
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
	sv.f_namemax = NAME_LIMIT;
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

	miss_flush(mnt, NULL, 0);
	left = fs_park_cancel_all(mnt->park, SHUTDOWN_WAIT_MS);
	if (left) {
		/* their replies may still touch open files: keep them */
		fprintf(stderr, "attestfs: %zu requests still parked at exit\n",
			left);
		return;
	}
	pthread_mutex_lock(&mnt->opens_lock);
	for (of = mnt->opens; of; of = of->next)
		open_close(of);
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
		open_free(of);
	}
	for (size_t i = 0; i < MISS_PENDING; i++)
		free(mnt->pending[i].path);
	fs_nodes_free(mnt->nodes);
	fs_park_free(mnt->park);
	pthread_mutex_destroy(&mnt->opens_lock);
	pthread_mutex_destroy(&mnt->misses_lock);
	free(mnt);
}
