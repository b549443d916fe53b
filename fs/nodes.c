/*
 * The node table: which names exist where (rows), and the inode numbers the
 * kernel holds for them (nodes). No FUSE here: the kinds the rows point at
 * live in the fs/ file of each kind.
 */
#include "fs/nodes.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "common/util.h"
#include "machine/machine.h"

#define DIR_MODE (S_IFDIR | 0755)
#define RO (S_IFREG | 0444)
#define WO (S_IFREG | 0200)
#define RW (S_IFREG | 0600)

#define GONE_JOB "no such job (it was removed)"
#define GONE_UNIT "no such unit in the guest"
#define GONE_FILE "no such file in the guest"

/* Names that come and go with a job, a unit, a snapshot or the guest. */
#define JOB_FILE .flags = FS_ROW_UNCACHED | FS_ROW_IN_JOB, .enoent = GONE_JOB
#define UNIT_FILE .flags = FS_ROW_UNCACHED, .enoent = GONE_UNIT

const struct fs_row fs_row_root = {
	.name = "/", .type = FS_ROOT, .ops = &fs_kind_root, .mode = DIR_MODE,
	.dir = FS_ROOT, .child = &fs_row_machine,
};
const struct fs_row fs_row_machine = {
	.type = FS_MACHINE, .ops = &fs_kind_machine, .mode = DIR_MODE,
	.dir = FS_ROOT,
};
const struct fs_row fs_row_job = {
	.type = FS_JOB, .ops = &fs_kind_job, .mode = DIR_MODE, .dir = FS_JOBS,
	.flags = FS_ROW_UNCACHED | FS_ROW_IN_JOB | FS_ROW_KEY,
	.enoent = GONE_JOB,
};
const struct fs_row fs_row_file = {
	.type = FS_FILE, .ops = &fs_kind_guest, .mode = 0, .dir = FS_FILES,
	.flags = FS_ROW_UNCACHED | FS_ROW_GUEST, .child = &fs_row_file,
	.enoent = GONE_FILE,
};
const struct fs_row fs_row_snapshot = {
	.type = FS_SNAPSHOT, .ops = &fs_kind_snapshot, .mode = RO,
	.dir = FS_SNAPSHOTS, .flags = FS_ROW_UNCACHED | FS_ROW_KEY,
};
/* Resolving a unit name costs a systemctl in the guest (about 0.15 s under
 * TCG); units seldom vanish, and their files are read afresh at every open
 * anyway. */
const struct fs_row fs_row_unit = {
	.type = FS_UNIT, .ops = &fs_kind_unit, .mode = DIR_MODE,
	.dir = FS_UNITS, .flags = FS_ROW_KEY, .timeout = 5.0,
	.enoent = GONE_UNIT,
};

/* A fixed row: name, type, kind, mode, the directory it is listed in. */
#define ROW(n, t, k, md, d, ...) \
	{ .name = n, .type = t, .ops = &k, .mode = md, .dir = d, __VA_ARGS__ }

/* Every fixed name in the tree, listed in this order. */
static const struct fs_row rows[] = {
	/* /vms */
	ROW("ctl", FS_VMS_CTL, fs_kind_vms_ctl, WO, FS_ROOT),
	ROW("events", FS_EVENTS, fs_kind_events, RO, FS_ROOT),
	ROW("attest.sh", FS_ATTEST_SH, fs_kind_attest_sh, RO, FS_ROOT),
	/* /vms/<m> */
	ROW("ctl", FS_CTL, fs_kind_ctl, WO, FS_MACHINE),
	ROW("status", FS_STATUS, fs_kind_value, RO, FS_MACHINE,
	    .arg = MACHINE_VIEW_STATUS),
	ROW("info", FS_INFO, fs_kind_value, RO, FS_MACHINE,
	    .arg = MACHINE_VIEW_INFO),
	ROW("log", FS_LOG, fs_kind_log, RO, FS_MACHINE,
	    .arg = MACHINE_VIEW_LOG),
	ROW("config.json", FS_CONFIG, fs_kind_value, RO, FS_MACHINE,
	    .arg = MACHINE_VIEW_CONFIG),
	ROW("console", FS_CONSOLE, fs_kind_console, S_IFREG | 0644, FS_MACHINE,
	    .arg = MACHINE_VIEW_CONSOLE),
	ROW("exec", FS_EXEC, fs_kind_tx, RW, FS_MACHINE, .arg = MTX_EXEC),
	ROW("wait", FS_WAIT, fs_kind_tx, RW, FS_MACHINE, .arg = MTX_WAIT),
	ROW("qmp", FS_QMP, fs_kind_tx, RW, FS_MACHINE,
	    .caps = BACKEND_CAP_QMP, .arg = MTX_QMP),
	ROW("screen.png", FS_SCREEN_PNG, fs_kind_screen, RO, FS_MACHINE,
	    .caps = BACKEND_CAP_SCREENSHOT, .arg = 0),
	ROW("screen.txt", FS_SCREEN_TXT, fs_kind_screen, RO, FS_MACHINE,
	    .caps = BACKEND_CAP_SCREENSHOT, .arg = 1),
	ROW("keys", FS_KEYS, fs_kind_keys, WO, FS_MACHINE,
	    .caps = BACKEND_CAP_KEYS),
	ROW("type", FS_TYPE, fs_kind_type, WO, FS_MACHINE,
	    .caps = BACKEND_CAP_KEYS),
	ROW("jobs", FS_JOBS, fs_kind_jobs, DIR_MODE, FS_MACHINE,
	    .child = &fs_row_job,
	    .enoent_child = "no such job (mkdir names one)"),
	ROW("files", FS_FILES, fs_kind_files, DIR_MODE, FS_MACHINE,
	    .flags = FS_ROW_GUEST, .child = &fs_row_file, .enoent = GONE_FILE),
	ROW("units", FS_UNITS, fs_kind_units, DIR_MODE, FS_MACHINE,
	    .child = &fs_row_unit, .enoent_child = GONE_UNIT),
	ROW("snapshots", FS_SNAPSHOTS, fs_kind_snapshots, DIR_MODE, FS_MACHINE,
	    .caps = BACKEND_CAP_SNAPSHOT, .child = &fs_row_snapshot,
	    .enoent_child = "no such snapshot"),
	/* /vms/<m>/jobs/<j> */
	ROW("cmd", FS_JOB_CMD, fs_kind_job_write, WO, FS_JOB, .arg = JOB_CMD,
	    JOB_FILE),
	ROW("stdin", FS_JOB_STDIN, fs_kind_job_stdin, WO, FS_JOB,
	    .arg = JOB_STDIN, JOB_FILE),
	ROW("ctl", FS_JOB_CTL, fs_kind_job_write, WO, FS_JOB, .arg = JOB_CTL,
	    JOB_FILE),
	ROW("stdout", FS_JOB_STDOUT, fs_kind_job_stream, RO, FS_JOB,
	    .arg = JOB_STDOUT, JOB_FILE),
	ROW("stderr", FS_JOB_STDERR, fs_kind_job_stream, RO, FS_JOB,
	    .arg = JOB_STDERR, JOB_FILE),
	ROW("exit", FS_JOB_EXIT, fs_kind_job_exit, RO, FS_JOB, .arg = JOB_EXIT,
	    JOB_FILE),
	/* /vms/<m>/units/<u>: read from the guest once at the first read */
	ROW("state", FS_UNIT_STATE, fs_kind_unit_file, RO, FS_UNIT,
	    .arg = UNIT_STATE, UNIT_FILE),
	ROW("substate", FS_UNIT_SUBSTATE, fs_kind_unit_file, RO, FS_UNIT,
	    .arg = UNIT_SUBSTATE, UNIT_FILE),
	ROW("properties", FS_UNIT_PROPERTIES, fs_kind_unit_file, RO, FS_UNIT,
	    .arg = UNIT_PROPERTIES, UNIT_FILE),
	ROW("log", FS_UNIT_LOG, fs_kind_unit_file, RO, FS_UNIT,
	    .arg = UNIT_LOG, UNIT_FILE),
	ROW("ctl", FS_UNIT_CTL, fs_kind_unit_ctl, WO, FS_UNIT, UNIT_FILE),
};

#define N_ROWS (sizeof(rows) / sizeof(rows[0]))

static const struct fs_row *const dynamic_rows[] = {
	&fs_row_root, &fs_row_machine, &fs_row_job, &fs_row_file,
	&fs_row_snapshot, &fs_row_unit,
};

#define N_DYNAMIC (sizeof(dynamic_rows) / sizeof(dynamic_rows[0]))

const struct fs_row *
fs_row_next(enum fs_type dir, unsigned caps, size_t *pos)
{
	while (*pos < N_ROWS) {
		const struct fs_row *r = &rows[(*pos)++];

		if (r->dir == dir && (r->caps & caps) == r->caps)
			return r;
	}
	return NULL;
}

const struct fs_row *
fs_row_find(enum fs_type dir, const char *name, unsigned caps)
{
	const struct fs_row *r;
	size_t pos = 0;

	while ((r = fs_row_next(dir, caps, &pos)))
		if (!strcmp(r->name, name))
			return r;
	return NULL;
}

const struct fs_row *
fs_row_child(const struct fs_row *dir, const char *name, unsigned caps,
	     int *notdir)
{
	const struct fs_row *r = fs_row_find(dir->type, name, caps);

	/* a guest file that is no directory says so itself (its row has a
	 * child: the guest's next path component) */
	*notdir = !r && !dir->child && !S_ISDIR(dir->mode);
	if (r)
		return r;
	return dir->child;
}

const struct fs_row *
fs_row_each(size_t *pos)
{
	size_t i = (*pos)++;

	if (i < N_DYNAMIC)
		return dynamic_rows[i];
	if (i < N_DYNAMIC + N_ROWS)
		return &rows[i - N_DYNAMIC];
	return NULL;
}

struct fs_nodes {
	pthread_mutex_t lock;  /* protects everything here and the private
				  fields of every node */
	struct fs_node **slots;  /* by inode number; [0] unused */
	uint64_t *generations;   /* by inode number, bumped on reuse */
	size_t n_slots;
	uint64_t *free_inos;     /* a stack of numbers to reuse */
	size_t n_free;
	size_t n_nodes;
	struct fs_node **buckets;  /* (parent, name) -> node */
	size_t n_buckets;          /* a power of two */
};

static size_t
node_hash(uint64_t parent, const char *name)
{
	uint64_t h = 1469598103934665603ull ^ (parent * 0x9e3779b97f4a7c15ull);

	for (; *name; name++) {
		h ^= (unsigned char)*name;
		h *= 1099511628211ull;
	}
	return (size_t)(h ^ (h >> 29));
}

static void
hash_insert(struct fs_nodes *t, struct fs_node *n)
{
	size_t b = node_hash(n->parent, n->name) & (t->n_buckets - 1);

	n->hnext = t->buckets[b];
	t->buckets[b] = n;
	n->hashed = 1;
}

static void
hash_remove(struct fs_nodes *t, struct fs_node *n)
{
	size_t b = node_hash(n->parent, n->name) & (t->n_buckets - 1);
	struct fs_node **pp;

	if (!n->hashed)
		return;
	for (pp = &t->buckets[b]; *pp; pp = &(*pp)->hnext) {
		if (*pp == n) {
			*pp = n->hnext;
			break;
		}
	}
	n->hashed = 0;
	n->hnext = NULL;
}

static struct fs_node *
hash_find(struct fs_nodes *t, uint64_t parent, const char *name)
{
	size_t b = node_hash(parent, name) & (t->n_buckets - 1);
	struct fs_node *n;

	for (n = t->buckets[b]; n; n = n->hnext)
		if (n->parent == parent && !strcmp(n->name, name))
			return n;
	return NULL;
}

static void
hash_grow(struct fs_nodes *t)
{
	struct fs_node **old = t->buckets;
	size_t n_old = t->n_buckets, i;

	t->n_buckets *= 2;
	t->buckets = xcalloc(t->n_buckets, sizeof(*t->buckets));
	for (i = 0; i < n_old; i++) {
		struct fs_node *n = old[i], *next;

		for (; n; n = next) {
			next = n->hnext;
			hash_insert(t, n);
		}
	}
	free(old);
}

static uint64_t
ino_alloc(struct fs_nodes *t)
{
	uint64_t ino;

	if (t->n_free)
		return t->free_inos[--t->n_free];
	ino = t->n_slots;
	t->n_slots++;
	t->slots = xrealloc(t->slots, t->n_slots * sizeof(*t->slots));
	t->generations = xrealloc(t->generations,
				  t->n_slots * sizeof(*t->generations));
	t->free_inos = xrealloc(t->free_inos,
				t->n_slots * sizeof(*t->free_inos));
	t->slots[ino] = NULL;
	t->generations[ino] = 0;
	return ino;
}

static void
node_destroy(struct fs_node *n)
{
	free(n->name);
	free(n->job);
	free(n->path);
	free(n);
}

/* Free N, then its parent if N held the last reason to keep it. */
static void
node_release(struct fs_nodes *t, struct fs_node *n)
{
	while (n && n->ino != FS_ROOT_INO && !n->nlookup && !n->children) {
		struct fs_node *parent = t->slots[n->parent];

		hash_remove(t, n);
		t->slots[n->ino] = NULL;
		t->free_inos[t->n_free++] = n->ino;
		t->n_nodes--;
		node_destroy(n);
		if (parent)
			parent->children--;
		n = parent;
	}
}

struct fs_nodes *
fs_nodes_new(void)
{
	struct fs_nodes *t = xcalloc(1, sizeof(*t));
	struct fs_node *root = xcalloc(1, sizeof(*root));

	pthread_mutex_init(&t->lock, NULL);
	t->n_buckets = 64;
	t->buckets = xcalloc(t->n_buckets, sizeof(*t->buckets));
	ino_alloc(t);  /* 0 is no inode */
	root->ino = ino_alloc(t);
	root->generation = 0;
	root->row = &fs_row_root;
	root->parent = FS_ROOT_INO;
	root->name = xstrdup("/");
	root->machine = FS_NO_MACHINE;
	root->mode = fs_row_root.mode;
	root->nlookup = 1;
	t->slots[root->ino] = root;
	t->n_nodes = 1;
	return t;
}

void
fs_nodes_free(struct fs_nodes *t)
{
	size_t i;

	if (!t)
		return;
	for (i = 0; i < t->n_slots; i++)
		if (t->slots[i])
			node_destroy(t->slots[i]);
	free(t->slots);
	free(t->generations);
	free(t->free_inos);
	free(t->buckets);
	pthread_mutex_destroy(&t->lock);
	free(t);
}

const struct fs_node *
fs_nodes_get(struct fs_nodes *t, uint64_t ino)
{
	const struct fs_node *n = NULL;

	pthread_mutex_lock(&t->lock);
	if (ino < t->n_slots)
		n = t->slots[ino];
	pthread_mutex_unlock(&t->lock);
	return n;
}

static char *
child_path(const struct fs_node *parent, const struct fs_row *row,
	   const char *name)
{
	if (!(row->flags & FS_ROW_GUEST))
		return NULL;
	if (!parent->path)
		return xstrdup("/");  /* files/ itself */
	if (!strcmp(parent->path, "/"))
		return xasprintf("/%s", name);
	return xasprintf("%s/%s", parent->path, name);
}

const struct fs_node *
fs_nodes_ref(struct fs_nodes *t, uint64_t parent_ino,
	     const struct fs_row *row, const char *name, size_t machine,
	     mode_t mode)
{
	struct fs_node *parent, *n;

	pthread_mutex_lock(&t->lock);
	parent = parent_ino < t->n_slots ? t->slots[parent_ino] : NULL;
	if (!parent) {
		pthread_mutex_unlock(&t->lock);
		return NULL;
	}
	n = hash_find(t, parent_ino, name);
	if (n && (n->row != row || (row == &fs_row_file &&
				    ((n->mode ^ mode) & S_IFMT)))) {
		/* Something else has the name now: the old node lives on
		 * until the kernel forgets it, unreachable by name. */
		hash_remove(t, n);
		n = NULL;
	}
	if (n) {
		n->nlookup++;
		pthread_mutex_unlock(&t->lock);
		return n;
	}

	n = xcalloc(1, sizeof(*n));
	n->ino = ino_alloc(t);
	n->generation = ++t->generations[n->ino];
	n->row = row;
	n->parent = parent_ino;
	n->name = xstrdup(name);
	n->machine = row == &fs_row_machine ? machine : parent->machine;
	if (row->flags & FS_ROW_KEY)
		n->job = xstrdup(name);
	else if (parent->job)
		n->job = xstrdup(parent->job);
	n->path = child_path(parent, row, name);
	n->mode = row == &fs_row_file ? mode : row->mode;
	n->nlookup = 1;
	parent->children++;
	t->slots[n->ino] = n;
	t->n_nodes++;
	if (t->n_nodes > 2 * t->n_buckets)
		hash_grow(t);
	hash_insert(t, n);
	pthread_mutex_unlock(&t->lock);
	return n;
}

void
fs_nodes_forget(struct fs_nodes *t, uint64_t ino, uint64_t count)
{
	struct fs_node *n;

	pthread_mutex_lock(&t->lock);
	n = ino < t->n_slots ? t->slots[ino] : NULL;
	if (n && ino != FS_ROOT_INO) {
		n->nlookup = count < n->nlookup ? n->nlookup - count : 0;
		node_release(t, n);
	}
	pthread_mutex_unlock(&t->lock);
}

size_t
fs_nodes_count(struct fs_nodes *t)
{
	size_t c;

	pthread_mutex_lock(&t->lock);
	c = t->n_nodes;
	pthread_mutex_unlock(&t->lock);
	return c;
}

uint64_t
fs_nodes_nlookup(struct fs_nodes *t, uint64_t ino)
{
	uint64_t c = 0;

	pthread_mutex_lock(&t->lock);
	if (ino < t->n_slots && t->slots[ino])
		c = t->slots[ino]->nlookup;
	pthread_mutex_unlock(&t->lock);
	return c;
}
