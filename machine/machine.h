/*
 * machine/: the backend-agnostic engine behind the tree. fs/ calls only this
 * header; it never sees a backend, and nothing here knows about FUSE.
 *
 * Blocking calls take a struct mreq and complete it later, exactly once, from
 * a machine thread (or inline, before the call returns). fs/ parks the FUSE
 * request meanwhile; mreq_cancel() turns an interrupt into -EINTR promptly.
 */
#ifndef ATTESTFS_MACHINE_H
#define ATTESTFS_MACHINE_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "common/caps.h"
#include "common/util.h"
#include "machine/config.h"

struct vmset;
struct machine;
struct mtx;

struct mreq {
	/* Called exactly once; never with a machine lock held. */
	void (*done)(struct mreq *r);
	void *owner;     /* fs/'s own */
	int result;      /* 0 or -errno; for writes the bytes taken */
	char *data;      /* reads: malloc'd reply bytes, owned by the caller */
	size_t len;
	size_t size;     /* reads: at most this many bytes */
	/* private to machine/ */
	struct machine *priv_machine;
	struct mreq *priv_next;
	void (*priv_cancel)(struct mreq *r); /* called with the machine lock */
	void *priv_data;
	int priv_cancelled;
	int priv_quiet;  /* finished: wake no waiter (machine_unlock answers) */
};

/* From any thread, while r is not yet done (fs/ guarantees that). */
void mreq_cancel(struct mreq *r);

/* What stopped a request (machine/errno.c maps each to one errno). */
enum machine_cond {
	MACHINE_COND_DOWN = 1,     /* halted or halting, the daemon exits */
	MACHINE_COND_DIED,         /* the VMM or the guest died */
	MACHINE_COND_BUSY,         /* a conflicting transition is under way */
	MACHINE_COND_TIMEOUT,      /* a wait or command ran past its deadline */
	MACHINE_COND_INTERRUPTED,  /* the caller was interrupted */
	MACHINE_COND_UNSUPPORTED,  /* the backend cannot */
	MACHINE_COND_CMD_FAILED,   /* the guest command exited non-zero */
	MACHINE_COND_BAD_MESSAGE,  /* a message that does not parse */
	MACHINE_COND_NO_SUCH,      /* no such machine, unit, snapshot */
};
/* -errno of a condition. */
int machine_errno(enum machine_cond c);
/* -errno for a request that needed M's guest after it stopped running. */
int machine_gone_errno(const struct machine *m);
/* A machine/ result as the positive errno a reply carries: its own, or EIO
 * for a result that is no -errno. */
int machine_reply_errno(int result);

struct vmset_options {
	const char *state_dir;   /* sockets, logs, overlays live under it */
	int timeout;             /* seconds: waits and commands (default 900) */
	int global_timeout;      /* seconds: the whole run (default 3600) */
	const char *accel;       /* default for machines: auto | kvm | tcg */
	int foreground;          /* print "name # line" console lines */
	int keep_state;          /* keep state_dir at exit */
	const char *mountpoint;  /* rendered into attest.sh */
	/* Guest RAM files go in a new directory below it; NULL: /dev/shm when
	 * writable (RAM stays in RAM), else state_dir. */
	const char *ram_dir;
	/* No pre-started VMMs waiting to restore snapshots (they cost a
	 * process and a RAM copy per machine that took a snapshot). */
	int no_spares;
	/* Bytes each of console.log, log and events may reach on disk before
	 * it rotates once to NAME.1 (0: VMSET_LOG_MAX_DEFAULT). */
	uint64_t log_max;
	/* qmp takes any command, also those that run host programs or open
	 * host files (-o host_access); else only machine/qmp_policy.c's. */
	int host_access;
};

#define VMSET_LOG_MAX_DEFAULT (16ull << 20)

/* Takes ownership of *cfg (emptied). */
int vmset_create(const struct vmset_options *opt, struct attest_config *cfg,
		 struct vmset **out, struct aerr *err);
/* Halts every machine (no VMM process survives) and frees. */
void vmset_destroy(struct vmset *s);
/* Machines stay valid until vmset_destroy. NULL past the end. */
struct machine *vmset_machine(struct vmset *s, size_t i);
struct machine *vmset_find(struct vmset *s, const char *name);
/* /vms/ctl: start-all | shutdown-all | halt-all. Bad -> -EINVAL inline. */
void vmset_ctl(struct vmset *s, const char *msg, size_t len, struct mreq *r);
/* Rendered files, malloc'd, owned by the caller. */
char *vmset_render_events(struct vmset *s, size_t *len);
char *vmset_render_attest_sh(struct vmset *s, size_t *len);

const char *machine_name(const struct machine *m);
/* A clone removed by rmdir: gone from the tree, alive until unmount. */
int machine_removed(const struct machine *m);
/* rmdir of a clone: -EPERM for a configured machine, -EBUSY unless it is
 * stopped, -ENOENT. */
int vmset_remove(struct vmset *s, const char *name);
/* Backend capabilities (enum backend_cap bits); fs/ maps a missing one to
 * EOPNOTSUPP. */
unsigned machine_caps(const struct machine *m);

enum machine_view {
	MACHINE_VIEW_STATUS,   /* one word + "\n" */
	MACHINE_VIEW_INFO,     /* key value lines */
	MACHINE_VIEW_LOG,      /* "<unix_ms> text" lines */
	MACHINE_VIEW_CONFIG,   /* config.json */
	MACHINE_VIEW_CONSOLE,  /* serial console so far */
};
/* A consistent snapshot, malloc'd, owned by the caller. */
char *machine_render(struct machine *m, enum machine_view v, size_t *len);

/* <m>/ctl: one message per write. Bad -> -EINVAL inline, reason in log. */
void machine_ctl(struct machine *m, const char *msg, size_t len,
		 struct mreq *r);
/*
 * Bytes to the serial console's input: how many were taken (a short count
 * while the guest is slow), or -EAGAIN when it has not read its input for a
 * while (the reason goes to the log), or another -errno. Never blocks long.
 */
int machine_console_write(struct machine *m, const char *buf, size_t len);

/*
 * The console's bytes so far (console.log.1, then console.log), read from
 * state_dir without the machine lock. open: a snapshot of what is there now
 * (reads end there). pread: bytes into buf, 0 at the end, or -errno.
 */
struct console_view;
int machine_console_open(struct machine *m, struct console_view **out);
ssize_t machine_console_pread(struct console_view *v, char *buf, size_t size,
			      uint64_t off);
void machine_console_close(struct console_view *v);
/* Append a line to <m>/log (and stderr in the foreground). */
void machine_log(struct machine *m, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

/*
 * Transactions: exec, wait, qmp. Writes before the first read are joined (at
 * most 1 MiB, else -EFBIG; a NUL byte is -EINVAL; a write after the first
 * read is -EBUSY). Once a write before the first read failed, nothing runs:
 * every later write and read fails with its errno. The first
 * read starts it; reads then stream the result: r->len == 0 is the end. After
 * the last byte an exec whose command exited non-zero fails with -EREMOTEIO.
 * close() cancels what still runs (the guest command is killed) and frees tx;
 * a read still parked on tx must have been completed or cancelled first.
 */
enum mtx_kind { MTX_EXEC, MTX_WAIT, MTX_QMP };
struct mtx *machine_tx_open(struct machine *m, enum mtx_kind kind);
int machine_tx_write(struct mtx *tx, const char *buf, size_t len);
void machine_tx_read(struct mtx *tx, struct mreq *r);
void machine_tx_close(struct mtx *tx);

/*
 * jobs/<j>/: named background commands. Names are the caller's.
 * create: -EEXIST, -EINVAL (bad name). remove: kills it if running, -ENOENT.
 * list: NUL-separated names in *names (malloc'd), count returned (>= 0).
 */
int machine_job_create(struct machine *m, const char *name);
int machine_job_remove(struct machine *m, const char *name);
int machine_job_list(struct machine *m, char **names, size_t *len);
int machine_job_exists(struct machine *m, const char *name);
enum job_file { JOB_CMD, JOB_STDIN, JOB_STDOUT, JOB_STDERR, JOB_EXIT, JOB_CTL };
/* cmd, stdin, ctl: one write each (r->result = bytes taken or -errno). */
void machine_job_write(struct machine *m, const char *name, enum job_file f,
		       const char *buf, size_t len, struct mreq *r);
/* stdout, stderr: bytes from offset (blocks for more while the job runs;
 * len 0 = end). exit: blocks until it ends, then "N\n". */
void machine_job_read(struct machine *m, const char *name, enum job_file f,
		      uint64_t offset, struct mreq *r);
/* Stdin reached its end (the stdin file was closed). */
void machine_job_stdin_close(struct machine *m, const char *name);

/*
 * units/<u>/: systemd units of the guest. A unit is named by its full name,
 * its name without ".service", or any alias systemd knows.
 * list: r->data holds "name\0" entries (systemctl list-units --all).
 * resolve: 0 when systemd knows the name (r->data = its full name), else
 * -ENOENT. read: state (ActiveState), substate, properties (systemctl
 * show), log (its journal). ctl: start | stop | restart | reload; done when
 * systemd finished the job; a failed job is -EREMOTEIO, reason in log.
 */
enum unit_file { UNIT_STATE, UNIT_SUBSTATE, UNIT_PROPERTIES, UNIT_LOG };
void machine_unit_list(struct machine *m, struct mreq *r);
void machine_unit_resolve(struct machine *m, const char *name, struct mreq *r);
void machine_unit_read(struct machine *m, const char *name, enum unit_file f,
		       struct mreq *r);
void machine_unit_ctl(struct machine *m, const char *name, const char *msg,
		      size_t len, struct mreq *r);

/*
 * snapshots/: one entry per snapshot of the machine (taken with `ctl
 * snapshot NAME`). list: "name\0" entries; stat: its real size on disk and
 * time; remove: -EBUSY while the running boot continues it, -ENOENT.
 */
struct guest_stat;
int machine_snapshot_list(struct machine *m, char **names, size_t *len);
int machine_snapshot_stat(struct machine *m, const char *name,
			  struct guest_stat *st);
int machine_snapshot_remove(struct machine *m, const char *name);

/*
 * files/<path>: the guest's file system through the backdoor. path is
 * absolute in the guest ("/" for files/ itself).
 */
struct guest_stat {
	mode_t mode;   /* S_IFDIR | S_IFREG | S_IFLNK ... and permission bits */
	uint64_t size;
	int64_t mtime;
};
/* stat: r->data is a struct guest_stat (r->len == sizeof). -ENOENT. */
void machine_file_stat(struct machine *m, const char *path, struct mreq *r);
/* list: r->data holds "name\0" entries. */
void machine_file_list(struct machine *m, const char *path, struct mreq *r);
/* read: up to r->size bytes from offset. */
void machine_file_read(struct machine *m, const char *path, uint64_t offset,
		       struct mreq *r);
/* write at offset (truncate first when offset == 0 and trunc != 0). */
void machine_file_write(struct machine *m, const char *path, uint64_t offset,
			const char *buf, size_t len, int trunc,
			struct mreq *r);
/* create an empty file / a directory / remove (unlink or rmdir). */
void machine_file_create(struct machine *m, const char *path, mode_t mode,
			 struct mreq *r);
void machine_file_remove(struct machine *m, const char *path, int dir,
			 struct mreq *r);
/* screen.png (text 0) or screen.txt (text 1): r->data, taken now. */
void machine_screen_read(struct machine *m, int text, struct mreq *r);
/* keys: "ctrl-alt-delete ret a"; type: text on a US keyboard. Writes. */
void machine_keys(struct machine *m, const char *msg, size_t len,
		  struct mreq *r);
void machine_type(struct machine *m, const char *msg, size_t len,
		  struct mreq *r);
/* readlink: r->data is the target as the guest has it (with a newline). */
void machine_file_readlink(struct machine *m, const char *path,
			   struct mreq *r);
/* symlink path -> target (the target is the guest's, as given). */
void machine_file_symlink(struct machine *m, const char *target,
			  const char *path, struct mreq *r);
/* rename(2) semantics: replaces a file, or an empty directory by one. */
void machine_file_rename(struct machine *m, const char *from, const char *to,
			 struct mreq *r);
/* chmod, then r->data is the new struct guest_stat. */
void machine_file_chmod(struct machine *m, const char *path, mode_t mode,
			struct mreq *r);

#endif
