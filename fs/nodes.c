/*
 * The node table: which names exist where (rows), and the inode numbers the
 * kernel holds for them (nodes). No FUSE here, so tests/unit/test_nodes.c
 * runs it under the sanitizers.
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

const struct fs_row fs_row_root = { "/", FS_ROOT, FS_KIND_DIR, DIR_MODE,
				    FS_ROOT, 0, 0 };
const struct fs_row fs_row_machine = { NULL, FS_MACHINE, FS_KIND_DIR,
				       DIR_MODE, FS_ROOT, 0, 0 };
const struct fs_row fs_row_job = { NULL, FS_JOB, FS_KIND_DIR, DIR_MODE,
				   FS_JOBS, 0, 0 };
const struct fs_row fs_row_file = { NULL, FS_FILE, FS_KIND_FILES, 0,
				    FS_FILES, 0, 0 };
const struct fs_row fs_row_snapshot = { NULL, FS_SNAPSHOT, FS_KIND_VALUE, RO,
					FS_SNAPSHOTS, 0, 0 };
const struct fs_row fs_row_unit = { NULL, FS_UNIT, FS_KIND_DIR, DIR_MODE,
				    FS_UNITS, 0, 0 };

/* Every fixed name in the tree, listed in this order. */
static const struct fs_row rows[] = {
	/* /vms */
	{ "ctl", FS_VMS_CTL, FS_KIND_CONTROL, WO, FS_ROOT, 0, 0 },
	{ "events", FS_EVENTS, FS_KIND_VALUE, RO, FS_ROOT, 0, 0 },
	{ "attest.sh", FS_ATTEST_SH, FS_KIND_VALUE, RO, FS_ROOT, 0, 0 },
	/* /vms/<m> */
	{ "ctl", FS_CTL, FS_KIND_CONTROL, WO, FS_MACHINE, 0, 0 },
	{ "status", FS_STATUS, FS_KIND_VALUE, RO, FS_MACHINE, 0,
	  MACHINE_VIEW_STATUS },
	{ "info", FS_INFO, FS_KIND_VALUE, RO, FS_MACHINE, 0,
	  MACHINE_VIEW_INFO },
	{ "log", FS_LOG, FS_KIND_VALUE, RO, FS_MACHINE, 0, MACHINE_VIEW_LOG },
	{ "config.json", FS_CONFIG, FS_KIND_VALUE, RO, FS_MACHINE, 0,
	  MACHINE_VIEW_CONFIG },
	{ "console", FS_CONSOLE, FS_KIND_VALUE, S_IFREG | 0644, FS_MACHINE, 0,
	  MACHINE_VIEW_CONSOLE },
	{ "exec", FS_EXEC, FS_KIND_TX, RW, FS_MACHINE, 0, MTX_EXEC },
	{ "wait", FS_WAIT, FS_KIND_TX, RW, FS_MACHINE, 0, MTX_WAIT },
	{ "qmp", FS_QMP, FS_KIND_TX, RW, FS_MACHINE, BACKEND_CAP_QMP,
	  MTX_QMP },
	{ "screen.png", FS_SCREEN_PNG, FS_KIND_JOB_VALUE, RO, FS_MACHINE,
	  BACKEND_CAP_SCREENSHOT, 0 },
	{ "screen.txt", FS_SCREEN_TXT, FS_KIND_JOB_VALUE, RO, FS_MACHINE,
	  BACKEND_CAP_SCREENSHOT, 1 },
	{ "keys", FS_KEYS, FS_KIND_CONTROL, WO, FS_MACHINE, BACKEND_CAP_KEYS,
	  0 },
	{ "type", FS_TYPE, FS_KIND_CONTROL, WO, FS_MACHINE, BACKEND_CAP_KEYS,
	  0 },
	{ "jobs", FS_JOBS, FS_KIND_DIR, DIR_MODE, FS_MACHINE, 0, 0 },
	{ "files", FS_FILES, FS_KIND_FILES, DIR_MODE, FS_MACHINE, 0, 0 },
	{ "units", FS_UNITS, FS_KIND_DIR, DIR_MODE, FS_MACHINE, 0, 0 },
	{ "snapshots", FS_SNAPSHOTS, FS_KIND_DIR, DIR_MODE, FS_MACHINE,
	  BACKEND_CAP_SNAPSHOT, 0 },
	/* /vms/<m>/jobs/<j> */
	{ "cmd", FS_JOB_CMD, FS_KIND_CONTROL, WO, FS_JOB, 0, JOB_CMD },
	{ "stdin", FS_JOB_STDIN, FS_KIND_CONTROL, WO, FS_JOB, 0, JOB_STDIN },
	{ "ctl", FS_JOB_CTL, FS_KIND_CONTROL, WO, FS_JOB, 0, JOB_CTL },
	{ "stdout", FS_JOB_STDOUT, FS_KIND_STREAM, RO, FS_JOB, 0, JOB_STDOUT },
	{ "stderr", FS_JOB_STDERR, FS_KIND_STREAM, RO, FS_JOB, 0, JOB_STDERR },
	{ "exit", FS_JOB_EXIT, FS_KIND_JOB_VALUE, RO, FS_JOB, 0, JOB_EXIT },
	/* /vms/<m>/units/<u>: read from the guest once at the first read */
	{ "state", FS_UNIT_STATE, FS_KIND_JOB_VALUE, RO, FS_UNIT, 0,
	  UNIT_STATE },
	{ "substate", FS_UNIT_SUBSTATE, FS_KIND_JOB_VALUE, RO, FS_UNIT, 0,
	  UNIT_SUBSTATE },
	{ "properties", FS_UNIT_PROPERTIES, FS_KIND_JOB_VALUE, RO, FS_UNIT, 0,
	  UNIT_PROPERTIES },
	{ "log", FS_UNIT_LOG, FS_KIND_JOB_VALUE, RO, FS_UNIT, 0, UNIT_LOG },
	{ "ctl", FS_UNIT_CTL, FS_KIND_CONTROL, WO, FS_UNIT, 0, 0 },
};

#define N_ROWS (sizeof(rows) / sizeof(rows[0]))

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
fs_row_child(enum fs_type dir, const char *name, unsigned caps, int *notdir)
{
	const struct fs_row *r;

	*notdir = 0;
	switch (dir) {
	case FS_ROOT:
		r = fs_row_find(dir, name, caps);
		return r ? r : &fs_row_machine;
	case FS_MACHINE:
	case FS_JOB:
	case FS_UNIT:
		return fs_row_find(dir, name, caps);
	case FS_JOBS:
		return &fs_row_job;
	case FS_UNITS:
		return &fs_row_unit;
	case FS_SNAPSHOTS:
		return &fs_row_snapshot;
	case FS_FILES:
	case FS_FILE:
		/* a guest file that is no directory says so itself */
		return &fs_row_file;
	default:
		*notdir = 1;
		return NULL;
	}
}

struct fs_nodes {
	pthread_mutex_t lock;  /* guards everything here and nodes' private
				  fields */
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
	if (row->type == FS_FILES)
		return xstrdup("/");
	if (row->type != FS_FILE || !parent->path)
		return NULL;
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
	if (n && (n->row != row || (row->type == FS_FILE &&
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
	n->machine = row->type == FS_MACHINE ? machine : parent->machine;
	if (row->type == FS_JOB || row->type == FS_UNIT ||
	    row->type == FS_SNAPSHOT)
		n->job = xstrdup(name);
	else if (parent->job)
		n->job = xstrdup(parent->job);
	n->path = child_path(parent, row, name);
	n->mode = row->type == FS_FILE ? mode : row->mode;
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
