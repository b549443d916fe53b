/*
 * Refusals in the machine's log: an ENOENT or EACCES alone cannot say what
 * was missing, so the path and a reason go to <m>/log.
 *
 *	$ cat /vms/a/jobs/nosuch/exit
 *	cat: /vms/a/jobs/nosuch/exit: No such file or directory
 *	$ tail -1 /vms/a/log
 *	... jobs/nosuch: no such job (mkdir names one)
 *
 * Every `test -e` and probing tool looks up, and the kernel looks up each
 * name it is about to make: a lookup miss waits a moment (pending) and is
 * logged only when no mkdir or create of it followed, once per path, at most
 * FS_MISS_MAX per mount.
 */
#include "fs/internal.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "common/util.h"

#define MISS_SETTLE_MS 1000      /* ...until no mkdir/create came this long */

/* dir's path below its machine's directory, then name: "jobs/x/cmd". */
static char *
rel_path(struct fs_mount *mnt, const struct fs_node *dir, const char *name)
{
	const struct fs_node *n;
	struct strbuf sb;
	char *up[8];
	int depth = 0;

	sb_init(&sb);
	if (dir->row->flags & FS_ROW_GUEST) {
		sb_addf(&sb, "files%s", dir->path);
	} else {
		for (n = dir; n && n->row != &fs_row_machine && depth < 8;
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
	const struct fs_row *row = dir->row;

	if (err == EACCES) {
		if (row->flags & FS_ROW_GUEST)
			return "permission denied in the guest";
		return !(dir->mode & 0444) ? "the file is write-only" :
		       !(dir->mode & 0222) ? "the file is read-only" :
					     "permission denied";
	}
	if (name && row->enoent_child)
		return row->enoent_child;
	return row->enoent ? row->enoent : "no such file";
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

	for (i = ms->hash % FS_MISS_SLOTS;
	     mnt->misses[i] && mnt->misses[i] != ms->hash;
	     i = (i + 1) % FS_MISS_SLOTS)
		;
	if (!mnt->misses[i] && mnt->n_misses < FS_MISS_MAX) {
		mnt->misses[i] = ms->hash;
		machine_log(ms->m, "%s: %s", ms->path, ms->reason);
		if (++mnt->n_misses == FS_MISS_MAX)
			machine_log(ms->m, "%d missing paths logged; no more "
				    "will be", FS_MISS_MAX);
	}
	free(ms->path);
	ms->path = NULL;
	ms->m = NULL;
}

/*
 * Log the pending misses of m (NULL: all) that have settled, or all of
 * them (settled 0): at a read of the log and at unmount.
 */
void
fs_miss_flush(struct fs_mount *mnt, struct machine *m, int settled)
{
	int64_t now = now_mono_ms();
	size_t i;

	pthread_mutex_lock(&mnt->misses_lock);
	for (i = 0; i < FS_MISS_PENDING; i++) {
		struct fs_miss *ms = &mnt->pending[i];

		if (ms->m && (!m || ms->m == m) &&
		    (!settled || now - ms->when >= MISS_SETTLE_MS))
			miss_log(mnt, ms);
	}
	pthread_mutex_unlock(&mnt->misses_lock);
}

/* The kernel looks a name up before it makes it: that miss is no failure. */
void
fs_miss_made(struct fs_mount *mnt, const struct fs_node *dir,
	     const char *name)
{
	char *path = rel_path(mnt, dir, name);
	uint64_t h = miss_hash(dir->machine, path);
	size_t i;

	pthread_mutex_lock(&mnt->misses_lock);
	for (i = 0; i < FS_MISS_PENDING; i++) {
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

	fs_miss_flush(mnt, NULL, 1);
	pthread_mutex_lock(&mnt->misses_lock);
	for (i = 0; i < FS_MISS_PENDING; i++) {
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

void
fs_misses_free(struct fs_mount *mnt)
{
	size_t i;

	for (i = 0; i < FS_MISS_PENDING; i++)
		free(mnt->pending[i].path);
}

/*
 * An ENOENT or EACCES answered for a path under a machine goes to its log
 * with the path. op names the operation asked for; NULL: a lookup, which
 * waits (miss_add).
 */
void
fs_log_refusal(struct fs_mount *mnt, const struct fs_node *dir,
	       const char *name, const char *op, int err)
{
	struct machine *m = dir ? fs_node_machine(mnt, dir) : NULL;
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
void
fs_reply_fail(struct fs_preq *p, int err)
{
	if (p->op) {
		struct fs_mount *mnt = fs_mnt(p->req);

		fs_log_refusal(mnt, fs_nodes_get(mnt->nodes, p->ino), p->name,
			       strcmp(p->op, "lookup") ? p->op : NULL, err);
	}
	fuse_reply_err(p->req, err);
}
