/*
 * Internal to the QEMU backend's files: qemu.c (the VMM's lifecycle),
 * qemu_argv.c (the command line, pure), qemu_host.c (disk overlays, the
 * environment, pids) and qemu_snapshot.c (save and restore over QMP).
 */
#ifndef ATTESTFS_BACKENDS_QEMU_INTERNAL_H
#define ATTESTFS_BACKENDS_QEMU_INTERNAL_H

#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

#include <json-c/json.h>

#include "backends/qemu.h"
#include "backends/qmp.h"

#define QEMU_QMP_TIMEOUT_MS 10000        /* QEMU started -> QMP answers */
#define QEMU_SCRIPT_QMP_TIMEOUT_MS 30000 /* a start script may do more first */
#define QEMU_OP_TIMEOUT_MS 10000
#define QEMU_SNAPSHOT_TIMEOUT_MS 120000
#define QEMU_COMMAND_TIMEOUT_MS 60000
#define QEMU_QUIT_TIMEOUT_MS 5000
#define QEMU_DESTROY_QUIT_MS 2000
#define QEMU_DESTROY_WAIT_MS 3000


struct qemu_event {
	char *name;
	char *detail;
	struct qemu_event *next;
};

struct backend {
	/* Guards what the forking thread, the event thread, the QMP reader
	 * and the callers share: events and owner, spawned .. quiet (the
	 * process and how launch() ended), ev_stop .. exit_pending (the
	 * event queue), and qmp for the forking thread. Never held across a
	 * QMP command or a callback. launch() sets the rest before anything
	 * else reads it, or machine/ calls one operation at a time. */
	pthread_mutex_t lock;
	pthread_cond_t cond;         /* CLOCK_MONOTONIC; on every change */

	char *name;
	char *state_dir;
	char *log_path;
	char *qmp_path;
	char *pid_path;
	const char *accel;           /* "kvm" | "tcg" | "script" */
	const struct backend_events *events;
	void *owner;

	struct qemu_cmd cmd;
	char **envp;

	pthread_t thread;
	bool thread_started;
	bool spawned;                /* fork() returned in the thread */
	int spawn_errno;
	pid_t child;                 /* what we forked: QEMU or the script */
	pid_t qemu_pid;              /* QEMU's own (from -pidfile) */
	int qemu_pidfd;              /* ...held when it is not child, or -1 */
	bool dead;                   /* child has exited (not yet reaped) */
	bool exited;                 /* reaped; status valid */
	int status;
	bool launch_done;            /* launch() has decided */
	bool launched;               /* ... and succeeded */
	bool quiet;                  /* no more callbacks (destroy/failure) */

	pthread_t ev_thread;
	bool ev_started;
	bool ev_stop;
	struct qemu_event *ev_head, **ev_tail;
	bool exit_pending;           /* the event thread owes "exited" */

	struct qmp *qmp;
	off_t log_offset;

	unsigned *vlans;             /* the VLAN NICs' numbers: ids "vlanN" */
	size_t n_vlans;
	size_t n_disks;
	unsigned launch;             /* names this launch's overlays */
	char **active;               /* each disk's active overlay now */
	bool script;                 /* a start script made the NICs */

	char *ram_path;              /* guest RAM file, or NULL */
	bool ram_shared;             /* ours, share=on: snapshots copy it */
	char *incoming;              /* state still to load, or NULL */
	bool incoming_ram;           /* ... saved without RAM (x-ignore-shared) */
	bool loaded;                 /* the state is in, the guest paused */
	bool loaded_running;         /* ... or running (autostart) */
};

/* qemu_argv.c: a growing NULL-terminated vector of malloc'd strings. */
struct qemu_vec {
	char **v;
	size_t n, cap;
};

void qemu_vec_push(struct qemu_vec *vec, char *s);
void qemu_vec_free(struct qemu_vec *vec);
/* The "qemu_args" key (an array of strings: check_config saw to it), as a
 * malloc'd vector of strings borrowed from cfg->own; *n of them. */
const char **qemu_own_args(const struct backend_config *cfg, size_t *n);
/* Disk i's overlay for a launch (see struct qemu_cmd_params), malloc'd. */
char *qemu_overlay_path(const char *state_dir, size_t i, unsigned launch);

/* qemu_host.c */
/* backend_ops.config_keys and .check_config */
extern const char *const qemu_config_keys[];
int qemu_check_config(struct backend_check *c);
/* The first launch number whose overlay names are free in state_dir. */
unsigned qemu_pick_launch(const char *state_dir, size_t n_disks);
/* Overlay each read-only base (bases, else cfg->disks) as the launch's
 * overlay; (*active)[i] gets each overlay's path. 0 or -errno + err. */
int qemu_prepare_disks(const struct backend_config *cfg, const char *state_dir,
		       const char *const *bases, unsigned launch,
		       char ***active, struct aerr *err);
/* "exit status 1", "killed by signal 9 (Killed)". */
void qemu_describe_status(struct strbuf *sb, int status);
/* The last lines of text (at most max bytes), newlines as " | ". */
void qemu_tail(struct strbuf *sb, const char *text, size_t len, size_t max);
/* environ without the keys in add, followed by add (malloc'd). */
char **qemu_make_envp(char *const *add, size_t n_add);
void qemu_free_strv(char **v);

/* qemu_snapshot.c */
/* QMP with arguments built by json-c (consumed); *ret as qmp_execute. */
int qemu_qmp_args(struct backend *b, const char *cmd, json_object *args,
		  int timeout_ms, char **ret, struct aerr *err);
/* {key: value}, value consumed. */
json_object *qemu_obj1(const char *key, json_object *value);
/* Leave RAM in a shared file out of the migration stream, or not. */
int qemu_set_ignore_shared(struct backend *b, bool on, struct aerr *err);
/* backend_ops.incoming and .save. */
int qemu_incoming(struct backend *b, struct aerr *err);
int qemu_incoming_load(struct backend *b, struct aerr *err);
/* Map the data of b's RAM file in QEMU now, reading it (qemu_snapshot.c). */
int qemu_populate_ram(struct backend *b, unsigned *n, struct aerr *err);
int qemu_save(struct backend *b, const char *dir, const char *ram_out,
	      int *ram_saved, struct aerr *err);

/* qemu_devices.c: backend_ops.set_links, .forward, .screenshot, .send_keys */
int qemu_set_links(struct backend *b, int up, struct aerr *err);
int qemu_forward(struct backend *b, unsigned host_port, unsigned guest_port,
		 struct aerr *err);
int qemu_screenshot(struct backend *b, const char *path, struct aerr *err);
int qemu_send_keys(struct backend *b, const char *const *keys, size_t n,
		   struct aerr *err);

#endif
