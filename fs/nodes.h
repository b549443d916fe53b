/*
 * fs/nodes: the tree's shape and its inode numbers, without FUSE.
 *
 * A row says what a name is: its kind (a struct fs_ops, fs/internal.h: the
 * operations every file of that kind has), mode, and the machine/ call
 * behind it; the rows of a directory are a table, so a new file is a new
 * row, and a new kind of file a new struct fs_ops. A node is a
 * row the kernel has looked up: an inode number, the machine it belongs to,
 * its job or guest path, and a lookup count that FORGET takes back. Nodes are
 * created on lookup and freed when the count and their children are gone;
 * freed inode numbers are reused with a new generation.
 *
 * All functions lock the table; the fields of a node never change after it
 * was created, and the kernel's lookup reference keeps it alive while a
 * request on it is running, so callers read them without the lock.
 */
#ifndef ATTESTFS_FS_NODES_H
#define ATTESTFS_FS_NODES_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

/* What a file is. */
enum fs_type {
	FS_ROOT,
	FS_VMS_CTL,
	FS_EVENTS,
	FS_ATTEST_SH,
	FS_MACHINE,
	FS_CTL,
	FS_STATUS,
	FS_INFO,
	FS_LOG,
	FS_CONFIG,
	FS_CONSOLE,
	FS_EXEC,
	FS_WAIT,
	FS_QMP,
	FS_JOBS,
	FS_JOB,
	FS_JOB_CMD,
	FS_JOB_STDIN,
	FS_JOB_CTL,
	FS_JOB_STDOUT,
	FS_JOB_STDERR,
	FS_JOB_EXIT,
	FS_FILES,       /* files/ itself */
	FS_FILE,        /* anything below files/ */
	FS_UNITS,       /* units/ */
	FS_UNIT,        /* units/<u>/: any name systemd resolves */
	FS_UNIT_STATE,
	FS_UNIT_SUBSTATE,
	FS_UNIT_PROPERTIES,
	FS_UNIT_LOG,
	FS_UNIT_CTL,
	FS_SCREEN_PNG,  /* a screenshot taken at the first read */
	FS_SCREEN_TXT,  /* its text (OCR) */
	FS_KEYS,        /* w: key combinations */
	FS_TYPE,        /* w: text to type */
	FS_SNAPSHOTS,   /* snapshots/ */
	FS_SNAPSHOT,    /* snapshots/<name>: ls -l shows its size; rm */
};

struct fs_ops;  /* its kind: fs/internal.h */

/* Row flags: where a node stands in the tree. */
#define FS_ROW_UNCACHED 0x1  /* comes and goes: the kernel asks each time */
#define FS_ROW_IN_JOB   0x2  /* jobs/<j>/ and its files: gone with the job */
#define FS_ROW_KEY      0x4  /* its name is the job, unit or snapshot that
			      * it and its files act on (node->job) */
#define FS_ROW_GUEST    0x8  /* files/ and below: names a guest path */

struct fs_row {
	const char *name;  /* NULL for dynamic rows: machines, jobs, guest paths */
	enum fs_type type;
	const struct fs_ops *ops;  /* how it behaves: its kind */
	mode_t mode;       /* S_IFDIR/S_IFREG and permissions (FS_FILE: guest's) */
	enum fs_type dir;  /* the directory it is listed in */
	unsigned caps;     /* machine capabilities it needs; 0: always there */
	int arg;           /* enum machine_view, mtx_kind, job_file... */
	unsigned flags;    /* FS_ROW_* */
	double timeout;    /* entry and attribute cache (s); 0: the default,
			    * or none with FS_ROW_UNCACHED */
	/* directories: the row of any name not among the fixed rows */
	const struct fs_row *child;
	/* ENOENT in the machine's log: a missing name below this directory,
	 * then the node itself (or below it); NULL: "no such file" */
	const char *enoent_child;
	const char *enoent;
};

/* The kinds, each defined in the fs/ file that implements it. */
extern const struct fs_ops fs_kind_root;      /* dirs.c */
extern const struct fs_ops fs_kind_machine;
extern const struct fs_ops fs_kind_jobs;
extern const struct fs_ops fs_kind_job;
extern const struct fs_ops fs_kind_units;
extern const struct fs_ops fs_kind_unit;
extern const struct fs_ops fs_kind_snapshots;
extern const struct fs_ops fs_kind_value;     /* values.c */
extern const struct fs_ops fs_kind_log;
extern const struct fs_ops fs_kind_events;
extern const struct fs_ops fs_kind_attest_sh;
extern const struct fs_ops fs_kind_snapshot;
extern const struct fs_ops fs_kind_vms_ctl;   /* control.c */
extern const struct fs_ops fs_kind_ctl;
extern const struct fs_ops fs_kind_keys;
extern const struct fs_ops fs_kind_type;
extern const struct fs_ops fs_kind_job_write;
extern const struct fs_ops fs_kind_job_stdin;
extern const struct fs_ops fs_kind_unit_ctl;
extern const struct fs_ops fs_kind_tx;        /* transactions.c */
extern const struct fs_ops fs_kind_console;   /* streams.c */
extern const struct fs_ops fs_kind_job_stream;
extern const struct fs_ops fs_kind_job_exit;
extern const struct fs_ops fs_kind_unit_file;
extern const struct fs_ops fs_kind_screen;
extern const struct fs_ops fs_kind_files;     /* guestfs.c */
extern const struct fs_ops fs_kind_guest;

/* The dynamic rows. */
extern const struct fs_row fs_row_root;
extern const struct fs_row fs_row_machine;
extern const struct fs_row fs_row_job;
extern const struct fs_row fs_row_file;
extern const struct fs_row fs_row_unit;
extern const struct fs_row fs_row_snapshot;

/* The fixed row NAME in directory DIR, if the machine's CAPS allow it. */
const struct fs_row *fs_row_find(enum fs_type dir, const char *name,
				 unsigned caps);
/* Iterate the fixed rows of DIR: start with *pos = 0; NULL at the end. */
const struct fs_row *fs_row_next(enum fs_type dir, unsigned caps,
				 size_t *pos);
/*
 * The row NAME would have below a directory of row DIR: a fixed row, or the
 * dynamic row of that directory (fs_row_machine in the root, fs_row_job in
 * jobs/, fs_row_file in files/), whose existence the caller still checks.
 * NULL: nothing can be there (-ENOENT), or DIR is no directory (*notdir).
 */
const struct fs_row *fs_row_child(const struct fs_row *dir, const char *name,
				  unsigned caps, int *notdir);
/* Iterate every row, fixed and dynamic: start with *pos = 0. For tests. */
const struct fs_row *fs_row_each(size_t *pos);

struct fs_node {
	uint64_t ino;
	uint64_t generation;
	const struct fs_row *row;
	uint64_t parent;       /* inode number of the parent (root: 1) */
	char *name;
	size_t machine;        /* vmset index, for <m>/ and below */
	char *job;             /* jobs/<j>/, units/<u>/ and their files */
	char *path;            /* files/: absolute guest path ("/" for files/) */
	mode_t mode;           /* row->mode, or the guest's for FS_FILE */
	/* private to nodes.c, under the table lock */
	uint64_t nlookup;
	size_t children;
	int hashed;
	struct fs_node *hnext;
};

#define FS_ROOT_INO 1
#define FS_NO_MACHINE ((size_t)-1)  /* nodes outside any <m>/ */

struct fs_nodes;

struct fs_nodes *fs_nodes_new(void);
void fs_nodes_free(struct fs_nodes *t);

/* The node with inode number INO, or NULL. */
const struct fs_node *fs_nodes_get(struct fs_nodes *t, uint64_t ino);
/*
 * Find or create PARENT's child NAME of ROW and take one lookup reference
 * (what a LOOKUP, MKDIR or CREATE reply hands the kernel). MACHINE is the
 * vmset index for a machine directory (children inherit their parent's);
 * MODE is the guest's mode for FS_FILE (a guest path whose file type changed
 * gets a new node). NULL when PARENT is unknown.
 */
const struct fs_node *fs_nodes_ref(struct fs_nodes *t, uint64_t parent,
				   const struct fs_row *row, const char *name,
				   size_t machine, mode_t mode);
/* FORGET: drop N lookup references; the node goes at zero. */
void fs_nodes_forget(struct fs_nodes *t, uint64_t ino, uint64_t n);
/* How many nodes exist (the root included), for tests. */
size_t fs_nodes_count(struct fs_nodes *t);
/* The lookup count of INO (0 if unknown), for tests. */
uint64_t fs_nodes_nlookup(struct fs_nodes *t, uint64_t ino);

#endif
