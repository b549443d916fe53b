/*
 * machine/'s own structures, shared by its files; fs/ never sees them.
 *
 * Threads. FUSE workers call machine/ (machine.h) and never block in it:
 * a request that must wait is parked (struct mreq) and completed later.
 * Each machine has one supervisor thread (lifecycle.c), the only caller of
 * the backend's actions (info() only reads, under the backend's own lock):
 * lifecycle actions, pause, keys, qmp, ... are queued as a
 * struct mop (mop.c) and run in order, with the machine lock let go around
 * the backend call, so status, ls and events never wait behind a VMM.
 * One thread per guest shell (shellpool.c), one for the console
 * (console.c); backends call back from their own threads (lifecycle.c).
 *
 * Locks. m->lock guards all of a machine's state; s->lock the mount's
 * events; s->add_lock the adding of clones. None is held across blocking
 * I/O, and a machine lock is never taken while another is held, except
 * by clone.c, source before clone.
 */
#ifndef ATTESTFS_MACHINE_INTERNAL_H
#define ATTESTFS_MACHINE_INTERNAL_H

#include <pthread.h>
#include <regex.h>
#include <stdio.h>

#include "backends/backend.h"
#include "common/bounded.h"
#include "machine/bootstrap.h"
#include "machine/config.h"
#include "machine/machine.h"
#include "machine/shell.h"

enum mstate {
	MS_STOPPED,
	MS_STARTING,
	MS_RUNNING,
	MS_PAUSED,
	MS_STOPPING,
	MS_CRASHED,
};

const char *mstate_name(enum mstate s);

/* One guest command on one of the machine's shells. */
enum cmd_state { CMD_QUEUED, CMD_RUNNING, CMD_DONE };

struct cmd {
	struct cmd *next;          /* in the machine's queue */
	struct machine *m;
	char *text;
	size_t text_len;
	char *stdin_path;
	int control;               /* short work: shell 0 */
	enum cmd_state state;
	long long tag;
	pid_t guest_pid;
	int status;                /* exit status once done */
	int err;                   /* 0 or -errno when it could not finish */
	struct strbuf out;         /* stdout not yet taken by the consumer */
	struct strbuf errout;      /* stderr, its first CMD_STDERR_KEEP bytes */
	uint64_t err_dropped;      /* ...and how many more there were */
	size_t out_cap;            /* stop reading the guest when full */
	/* Without out_cap (nobody streams it): keep at most this much of
	 * stdout, the head (or the tail with out_keep_tail), and count the
	 * rest in out_dropped. 0: out_cap bounds it. */
	size_t out_keep;
	int out_keep_tail;
	uint64_t out_dropped;
	size_t out_peak;           /* the most of stdout held at once */
	int64_t deadline;          /* monotonic ms, 0 = none */
	/* Its on_update does all there is to do when it moves: its progress
	 * and end wake no other thread (the supervisor would find nothing). */
	int quiet;
	int cancelled;             /* the guest process is to be killed */
	int kill_queued;
	int shell;                 /* which shell runs it, -1 before */
	/* With the machine lock held, whenever out grows or it is done. */
	void (*on_update)(struct cmd *c);
	void *ctx;
	int refs;                  /* the owner and the queue/shell */
};

/*
 * One lifecycle action for the supervisor, the only thread that calls the
 * backend: each machine has one FIFO of them (lifecycle.c). run is called
 * with the lock held and lets go of it around its backend calls (the
 * backend's callbacks take it, and `cat status` must not wait behind QMP);
 * it completes mo_req with mop_finish. A caller that gives up (mreq_cancel)
 * gets EINTR at once: a queued action is dropped, a running one's result
 * is thrown away.
 */
struct mop;
typedef void mop_run_fn(struct machine *m, struct mop *op);

struct mop {
	struct mop *mo_next;
	const char *mo_verb;       /* "launch", "halt", "qmp", ...: log, lookups */
	mop_run_fn *mo_run;
	struct mreq *mo_req;       /* NULL: nobody waits (any more) */
	int mo_vmm;                /* acts on the running VMM: a halt fails it */
	char *mo_arg;              /* the verb's, owned */
	char *mo_arg2;
	void *mo_data;             /* owned, free()d */
	void *mo_ctx;              /* the caller's, not owned; NULL once it gave up */
	int mo_num;
	size_t mo_len;
};

struct shell_slot {
	struct machine *m;
	int index;
	int listen_fd;
	int conn_fd;               /* -1 when no VMM is connected */
	int pending_fd;            /* handed over by the backend, not yet taken */
	int adopted;               /* conn_fd was handed over (vsock) */
	int wake_fd;               /* eventfd: something for this worker */
	char *path;
	pthread_t thread;
	int console;               /* hvc0: lossy, paced by the host */
	int ready;                 /* prelude answered: commands may go */
	int bulk;                  /* it takes long commands raw (SHELL_EV_BULK) */
	long long sync_tag;        /* the SYNC we wait for, 0 = none */
	long long resume_tag;      /* shell 0: the SYNC that carried the resume
				    * script, until answered; 0 = none due */
	struct cmd *cur;
	struct shell_parser parser;
	struct strbuf outq;        /* bytes to send */
	int acks_owed;             /* lossy: chunks whose go-ahead is due */
	long long ack_tag;         /* ...of this command */
	int64_t resync_at;         /* lossy, after a loss: SYNC again then */
};

enum wait_kind {
	WAIT_STATUS,
	WAIT_CONSOLE,
	WAIT_SUCCEEDS,
	WAIT_FAILS,
	WAIT_FILE,
	WAIT_UNIT,
	WAIT_PORT,
	WAIT_SCREEN,
	WAIT_SOCKET,
};

struct screen_poll;

struct waiter {
	struct waiter *next;
	struct machine *m;
	enum wait_kind kind;
	char *arg;
	char *want;                /* unit: the state; port: "closed" or NULL */
	char *user;                /* unit: a user's own service manager */
	regex_t re;
	int has_re;
	int64_t deadline;
	int64_t next_poll;
	int poll_ms;
	size_t console_pos;        /* scanned up to here in boot_console */
	struct cmd *poll;          /* the poll in flight */
	struct screen_poll *shot;  /* screen: the OCR in flight */
	struct mreq *r;
	char *result;              /* what held */
	int done;
};

/* A forwarded host port (net.c). */
struct net_forward {
	unsigned host_port;        /* as asked: 0 = pick a free one */
	unsigned bound_port;       /* the one in use (kept across restarts) */
	unsigned guest_port;
};

/* One vde_switch per VLAN in use (net.c). */
struct vde_switch {
	unsigned vlan;
	char *path;                /* STATE/vdeN.ctl, its control directory */
	pid_t pid;
	int fd;                    /* its stdin and stdout: EOF ends it */
};

/* A machine's threads hold m->lock for state; I/O happens without it. */
struct clone_spare;

struct machine {
	struct vmset *set;
	struct machine_config cfg;
	unsigned index;            /* node number: name order from 1 */
	char *dir;                 /* state directory */
	const struct backend_ops *ops;
	struct backend *be;
	struct backend *dead_be;   /* exited, waiting for destroy */

	/* Guards every field of the machine, its shells, cmds, waiters and
	 * jobs, except those fixed at creation (set, cfg, index, dir, ops,
	 * nics) and console_file (the console thread's own). Never held
	 * across a backend call or other blocking I/O. */
	pthread_mutex_t lock;
	pthread_cond_t cond;       /* broadcast on every change */
	int64_t sup_wake_ms;       /* the supervisor sleeps until then (0: awake) */
	unsigned long long sup_wakes; /* times it woke before then (tests) */
	enum mstate state;
	int timeout;               /* seconds */
	int64_t started_ms;
	int64_t shutdown_by;         /* shutdown: halt it then (0 = none) */
	unsigned generation;       /* boots so far */
	int stopping;              /* vmset_destroy: threads end */
	struct mop *mops;          /* the supervisor's queue, oldest first */
	struct mop *mop_running;   /* taken from it, being run */
	int banner_hinted;         /* this boot's "no banner yet" is logged */
	char *launch_incoming;       /* restore: the state this launch loads */
	char **launch_disks;         /* restore: the snapshot's frozen disks */
	char *launch_ram;            /* restore: the snapshot's RAM file */
	int launch_ram_private;      /* ...mapped copy-on-write (clones) */
	unsigned ram_seq;            /* names RAM files: a new one per VMM */
	struct backend *spare;       /* pre-started, waiting to restore... */
	struct backend *spare_old;   /* ...or no use any more: to destroy */
	char *spare_snapshot;        /* ...this snapshot directory */
	char *spare_want;            /* the snapshot a spare should wait for */
	int spare_dead;              /* the spare's VMM exited */
	unsigned spare_seq;
	int64_t spare_hold_until;    /* a restore's first command first... */
	unsigned long spare_hold_cmds; /* ...unless one ended since then */
	unsigned long cmds_ended;    /* commands this machine answered */
	struct clone_spare *cspare;  /* pre-started for the next clone... */
	char *cspare_want;           /* ...of this snapshot directory */
	int cspare_dead;             /* its VMM exited */
	int cspare_busy;             /* one is being started or destroyed */
	unsigned cspare_seq;
	struct machine *cspare_hold; /* a clone's first command first... */
	unsigned long cspare_hold_cmds;
	int64_t cspare_hold_until;   /* ...or until then */
	char *alias_dir;             /* a clone's old directory name (link) */
	int screen_threads;          /* screen.c's, still running */
	int boot_restored;           /* this boot continues a snapshot */
	char *boot_snapshot;         /* ...this one: it is busy */
	int is_clone;                /* made by clone: rmdir removes it */
	unsigned clone_source_index; /* its source's node number */
	int removed;                 /* rmdir'ed: hidden until unmount */
	int vmm_exited;            /* since the last launch */
	/* ctl reboot is under way: a VMM that ends on the guest's reset
	 * (Firecracker) is started again instead of the machine crashing. */
	int reboot_asked;

	struct shell_slot *shells;
	size_t n_shells;
	/* A console machine's pool (bootstrap.c): who serves, since when. */
	enum bs_state bs_state;
	int64_t bs_deadline;       /* hvc0 alone if the ports are not up then */
	struct cmd *bs_cmd;        /* the bootstrap on hvc0, in flight */
	char *bs_why;              /* BS_HVC0: why the ports did not come up */
	long long next_tag;
	struct cmd *queue;         /* FIFO of commands not yet on a shell */

	int console_listen;
	int console_fd;
	char *console_path;
	struct rotfile console_file; /* console.log, rotating at log_max */
	pthread_t console_thread;
	struct strbuf boot_console;  /* this boot's console (its tail), for waits */
	struct strbuf console_line;  /* partial line for the foreground */

	struct tailbuf log;          /* the newest lines; all are in log_file */
	struct rotfile log_file;

	struct waiter *waiters;
	struct mreq *start_waiters;  /* completed when running or failed */
	struct mreq *stop_waiters;   /* completed when stopped or crashed */
	struct mreq *done_list;      /* completed, done() not yet called */
	pthread_t supervisor;
	struct job *jobs;

	/* Networks (net.c). nics are fixed after vmset_create. */
	struct backend_nic *nics;    /* one per VLAN, in config order */
	size_t n_nics;
	struct net_forward *forwards;
	size_t n_forwards;
	int links_down;              /* blocked since this launch */
	int net_ready;               /* this boot's guest set-up is done */
	struct cmd *net_cmd;         /* the guest set-up in flight */
	struct mreq *net_waiters;    /* completed when net_cmd ends */
};

struct vmset {
	struct vmset_options opt;
	char *state_dir;
	char *ram_dir;               /* guest RAM files; removed at the end */
	int ram_lock_fd;             /* flock on ram_dir/.owner: ours */
	char *mountpoint;
	struct attest_config cfg;
	struct machine **machines;   /* never moves: readers need no lock */
	size_t n_machines;
	size_t machines_cap;
	/* machines[] and n_machines' writes: one clone joins at a time */
	pthread_mutex_t add_lock;
	pthread_mutex_t lock;        /* events, events_file, stopping */
	struct tailbuf events;       /* the newest; all are in events_file */
	struct rotfile events_file;
	pthread_t timer;
	pthread_cond_t timer_cond;
	int stopping;
	struct vde_switch *switches;
	size_t n_switches;
	/* The TAP NICs' network namespace, made on first use (machine/net.c) */
	struct tapnet *tapnet;
};

/* Lock helpers: machine_unlock() calls done() of what completed meanwhile. */
void machine_lock(struct machine *m);
void machine_unlock(struct machine *m);
/* With the lock: finish r (done() is called at the next machine_unlock). */
void mreq_finish(struct machine *m, struct mreq *r, int result);
/* With the lock: park r so mreq_cancel() can find it. */
void mreq_park(struct machine *m, struct mreq *r,
	       void (*cancel)(struct mreq *r), void *data);
void machine_logl(struct machine *m, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));
void vmset_event(struct vmset *s, const char *machine, const char *event,
		 const char *detail);
void machine_set_state(struct machine *m, enum mstate st, const char *why);
/* With the lock: one line in m's log (machine_logl formats it). */
void machine_log_line(struct machine *m, const char *text);
/* With the lock: finish every request of a parked list. */
void mreq_finish_all(struct machine *m, struct mreq **list, int result);
/* Remove r from a list of parked requests: 1 if it was there. */
int mreq_unlink(struct mreq **list, struct mreq *r);

/* A machine's threads (lifecycle.c, console.c) and its life (machine.c). */
void *machine_supervisor(void *arg);
void *machine_console_reader(void *arg);
/* At most this many shells: launch parameters have room for so many. */
#define MACHINE_MAX_SHELLS 16
/* Listening sockets a new machine takes over instead of binding its own
 * (a clone's pre-started VMM connected to them already); -1: none. */
struct machine_listeners {
	int console;
	int shells[MACHINE_MAX_SHELLS];
	size_t n_shells;
	/* Their VMM continues a snapshot as this clone: the shells get its
	 * resume script as soon as they are accepted. */
	int clone;
};
void machine_listeners_close(struct machine_listeners *ls);
/* pre may be NULL; the sockets taken from it are -1 there afterwards. */
int machine_create(struct vmset *s, struct machine_config *cfg,
		   unsigned index, struct machine_listeners *pre,
		   struct machine **out, struct aerr *err);
void machine_destroy(struct machine *m);
/* The snapshot files of a launch: used (or not), let go. */
void machine_launch_files_forget(struct machine *m);

/* Clones (clone.c): the ctl verb, with the lock. */
void clone_ctl(struct machine *m, char **argv, struct mreq *r);

/* Lifecycle (lifecycle.c), with the lock held. start: r may be NULL. */
void machine_start_locked(struct machine *m, struct mreq *r);
/* The same, but its launch runs before whatever is queued (a restore). */
void machine_start_next(struct machine *m, struct mreq *r);
int machine_needs_guest(struct machine *m, struct mreq *r);
/* The machine goes down: stopping now, the supervisor halts it. */
void machine_halt_locked(struct machine *m);

/* The supervisor's queue (lifecycle.c), with the lock held. new: r may be
 * NULL; push parks it until the action completes. finish: completes the
 * request when somebody still waits (else nothing). take_req: the request
 * is the caller's now (to park elsewhere or finish). find: a queued one
 * (not the running one). drop: unlink a queued one and free it, completing
 * its request with err. */
struct mop *mop_new(const char *verb, mop_run_fn *run, struct mreq *r);
void mop_push(struct machine *m, struct mop *op);
void mop_push_front(struct machine *m, struct mop *op);
void mop_finish(struct machine *m, struct mop *op, int result);
struct mreq *mop_take_req(struct mop *op);
struct mop *mop_find(struct machine *m, const char *verb);
void mop_drop(struct machine *m, struct mop *op, int err);
/* Fail every queued action on the VMM (mo_vmm) at once: it goes down. */
void mop_fail_vmm(struct machine *m, int err);
/* The supervisor's part: run the oldest. drop_all: at teardown. */
void mop_run_next(struct machine *m);
void mop_drop_all(struct machine *m, int err);

/* Commands (shellpool.c), with the lock held unless said otherwise. */
/* What a command keeps by default (out_keep), and of its stderr. */
#define CMD_OUT_KEEP (2u << 20)
#define CMD_STDERR_KEEP (64u << 10)
struct cmd *cmd_new(struct machine *m, const char *text, size_t len,
		    int control);
void cmd_submit(struct cmd *c);
void cmd_cancel(struct cmd *c, int err);
void cmd_abandon(struct cmd *c, int err);
void cmd_put(struct cmd *c);
void cmd_took_output(struct cmd *c);
int shellpool_init(struct machine *m, struct machine_listeners *pre,
		   struct aerr *err);
void shellpool_stop(struct machine *m);   /* without the lock */
void shellpool_vmm_gone(struct machine *m);
void shellpool_reset(struct machine *m);  /* the guest rebooted */
void shellpool_resync(struct machine *m); /* a restored VMM is connected */
void shellpool_disconnect(struct machine *m); /* before the VMM is gone */
void shellpool_kick(struct machine *m);
int shellpool_ready(struct machine *m);
void shellpool_send_raw(struct machine *m, const char *line);
/* A connection the backend made (backend_events.channel): shell index's
 * from now on, as if accepted; it replaces the current one. */
void shellpool_adopt(struct machine *m, size_t index, int fd);

/* Waits (wait_parse.c, wait.c), with the lock held. */
struct wait_spec {
	enum wait_kind kind;
	int timeout;              /* seconds, 0 = the machine's */
	char *arg;
	char *want;               /* unit: state; port: "closed" */
	char *user;               /* unit: in this user's service manager */
};
/* The condition text into out (its strings malloc'd; all NULL on error):
 * 0, or -EINVAL with the reason in log. */
int wait_parse(struct machine *m, const char *text, size_t len,
	       struct wait_spec *out);
void wait_spec_free(struct wait_spec *spec);
const char *wait_kind_name(enum wait_kind kind);
/* The syntax of a wait condition alone (tests/fuzz): 0 or -EINVAL. */
int tx_wait_parse(struct machine *m, const char *text, size_t len);
/* A waiter for the condition text, not yet checked (*out, the caller's);
 * -errno with the reason in log, or when the guest is wanted and cannot
 * be had. */
int waiter_new(struct machine *m, const char *text, size_t len,
	       struct waiter **out);
/* Check w now and keep it on m's list until it ends: then wait.c answers
 * r through tx_wait_answer() (tx.c), which copies result. */
void waiter_add(struct machine *m, struct waiter *w, struct mreq *r);
/* Forget w unanswered (its reader went away) and free it. */
void waiter_drop(struct machine *m, struct waiter *w);
void tx_wait_answer(struct machine *m, struct mreq *r, int err,
		    const char *result);
void waiters_check(struct machine *m, int64_t now, int64_t *next);
/* Console waits only: before boot_console lets go of its oldest bytes. */
void waiters_console_check(struct machine *m);
void waiters_fail(struct machine *m, int err);
void waiters_fail_guest(struct machine *m, int err);

/* Snapshots (snapshot.c). ctl_*: with the lock; take: from the supervisor,
 * with the lock, which it releases while the backend saves. */
void snapshot_ctl_take(struct machine *m, char **argv, struct mreq *r);
void snapshot_ctl_restore(struct machine *m, char **argv, struct mreq *r);
int snapshot_take(struct machine *m, const char *name, int want_spare);
void snapshot_resume_script(struct machine *m, struct strbuf *sb);
char *snapshot_path(struct machine *m, const char *name);
/* The files of the snapshot in dir: its state, m's disks frozen, and its
 * RAM file when it has one (NULL: the RAM is in the state). */
struct snapshot_files {
	char *state;
	char **disks;
	char *ram;
};
void snapshot_files(struct machine *m, const char *dir,
		    struct snapshot_files *f);
void snapshot_files_free(struct snapshot_files *f);
/* With target's lock: its next launch continues the snapshot in dir. */
void snapshot_prepare_launch(struct machine *target, const char *dir,
			     int ram_private);
/*
 * Pre-started VMMs (spare.c), all with the lock held. spare_want: keep one
 * waiting for the snapshot in dir. spare_needed/spare_run: the supervisor's
 * part (starts, replaces or destroys it; lets go of the lock meanwhile).
 * spare_take: the spare for dir, now the caller's, or NULL. spare_drop:
 * none any more (forget = and want none), from the supervisor or after it
 * ended. spare_forget: the same from any thread; the supervisor destroys it.
 */
void spare_want(struct machine *m, const char *dir);
int spare_needed(struct machine *m);
void spare_hold(struct machine *m);
void spare_deadline(struct machine *m, int64_t now, int64_t *next);
void spare_run(struct machine *m);
struct backend *spare_take(struct machine *m, const char *dir);
void spare_drop(struct machine *m, int forget);
void spare_forget(struct machine *m);
/*
 * A pre-started VMM for the next clone (clone_spare.c), all with the lock
 * held, as the spare_ functions. clone_spare_want: m was cloned from dir,
 * its clone nm (locked too) runs its first command before the next spare
 * starts. clone_spare_take: the spare becomes the VMM of clone `name`; its
 * directory is renamed to name's, *ls gets its listening sockets and
 * *alias the old directory name (a symlink now), or NULL: none.
 */
void clone_spare_want(struct machine *m, const char *dir, struct machine *nm);
int clone_spare_needed(struct machine *m);
void clone_spare_deadline(struct machine *m, int64_t now, int64_t *next);
void clone_spare_run(struct machine *m);
void clone_spare_drop(struct machine *m, int forget);
/* From any thread but m's supervisor: returns once it is gone. */
void clone_spare_forget(struct machine *m, const char *dir);
struct backend *clone_spare_take(struct machine *m, const char *dir,
				 const char *name, struct machine_listeners *ls,
				 char **alias);
const char *clone_spare_snapshot(struct machine *m);
/* screen.c: wait until no screenshot or OCR thread uses m. */
void screen_wait_idle(struct machine *m);
/* With the lock: machine_screen_read without taking it. */
void screen_read_locked(struct machine *m, int text, struct mreq *r);
/* Fill l for a launch of m (paths: room for 16 shell paths). */
void machine_launch_params(struct machine *m, struct backend_launch *l,
			   const char **paths);
/* A pre-started VMM continues the snapshot dir as m's VMM (restore). */
void machine_adopt_vmm(struct machine *m, struct backend *be, const char *dir,
		       struct mreq *r);
/* A new RAM file name for a VMM of m (malloc'd), or NULL when m's backend
 * keeps no RAM files. */
char *machine_ram_path(struct machine *m);
int snapshot_present(struct machine *m, const char *name);
#define VMSET_MAX_CLONES 64

/* Jobs (jobs.c), with the lock held. */
void jobs_check(struct machine *m, int64_t now, int64_t *next);
void jobs_free(struct machine *m);

/*
 * Setup steps that hold a starting machine short of `running` once its
 * backdoor answered (lifecycle.c runs them in order: the console machine's
 * port shells, bootstrap.c, then the guest's networks, net.c). hold: 1 =
 * not yet (its guest command runs, and the step sets running itself when
 * it ends), 0 = done or not wanted; reset: a boot begins or ends; check
 * (or NULL): the supervisor's look at the step's own deadline.
 * hold_cmd_submit runs a step's script in the guest as a setup command
 * (*slot holds it until it ends); hold_cmd_forget lets go of it: whatever
 * it still does belongs to a boot that ended.
 */
struct hold_step {
	int (*hold)(struct machine *m);
	void (*reset)(struct machine *m);
	void (*check)(struct machine *m, int64_t now, int64_t *next);
};
void hold_cmd_submit(struct machine *m, struct cmd **slot,
		     const struct strbuf *script, int64_t deadline,
		     void (*on_update)(struct cmd *c));
void hold_cmd_forget(struct cmd **slot);

/*
 * Networks (net.c). net_start: after the machines exist, one vde_switch per
 * VLAN and each machine's NICs; net_stop: after the machines are gone. The
 * rest with the machine lock held. net_hold_start and net_reset: its hold
 * step (above). net_launched: a new VMM runs.
 */
int net_start(struct vmset *s, struct aerr *err);
int net_machine_init(struct vmset *s, struct machine *m, struct aerr *err);
void net_stop(struct vmset *s);
void net_machine_free(struct machine *m);
int net_hold_start(struct machine *m);
void net_reset(struct machine *m);
void net_launched(struct machine *m);
void net_render_info(struct machine *m, struct strbuf *sb);
void net_ctl_block(struct machine *m, char **argv, struct mreq *r);
void net_ctl_unblock(struct machine *m, char **argv, struct mreq *r);
void net_ctl_forward(struct machine *m, char **argv, struct mreq *r);

#endif
