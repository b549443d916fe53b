/*
 * One vtable per virtual machine monitor. machine/ calls down through it; a
 * backend reports back only through the callbacks machine/ hands it.
 * Backends never include FUSE headers and never call into machine/.
 */
#ifndef ATTESTFS_BACKEND_H
#define ATTESTFS_BACKEND_H

#include <stddef.h>
#include <sys/types.h>

#include "common/util.h"
#include "machine/config.h"

enum backend_cap {
	BACKEND_CAP_PAUSE = 1 << 0,
	BACKEND_CAP_SCREENSHOT = 1 << 1,
	BACKEND_CAP_KEYS = 1 << 2,
	BACKEND_CAP_SNAPSHOT = 1 << 3,
	BACKEND_CAP_FORWARD = 1 << 4,
	BACKEND_CAP_LINKS = 1 << 5,
	BACKEND_CAP_QMP = 1 << 6, /* raw control-plane passthrough */
};

/* Called from backend threads; must not call back into the backend. */
struct backend_events {
	/* The VMM process is gone (waitpid status). Called once per launch. */
	void (*exited)(void *owner, int wait_status);
	/* An event from the control plane: "SHUTDOWN", "RESET", "STOP",
	 * "RESUME", "GUEST_PANICKED", ...; detail is its JSON data or "". */
	void (*vm_event)(void *owner, const char *name, const char *detail);
	/* A line of progress for <m>/log ("accel tcg: kvm probe failed"). */
	void (*log)(void *owner, const char *text);
};

struct backend_launch {
	const struct machine_config *cfg;
	const char *state_dir;     /* this machine's own directory */
	const char *console_path;  /* unix socket machine/ listens on: serial */
	const char *const *shell_paths; /* unix sockets machine/ listens on */
	size_t n_shells;           /* ports attestfs.shell.0..n-1, or hvc0 */
	const char *accel;         /* "auto" | "kvm" | "tcg" */
	const struct backend_events *events;
	void *owner;
};

struct backend;

struct backend_ops {
	const char *name;
	unsigned caps;
	/* Start the VMM; returns once it runs (or failed). *out on success. */
	int (*launch)(const struct backend_launch *l, struct backend **out,
		      struct aerr *err);
	int (*quit)(struct backend *b);   /* stop the VMM now (halt) */
	int (*kill)(struct backend *b);   /* SIGKILL the VMM (crash) */
	int (*reset)(struct backend *b);  /* hard reset of the guest */
	int (*pause)(struct backend *b);
	int (*resume)(struct backend *b);
	/* Raw control-plane command (QMP JSON); *reply is malloc'd JSON. */
	int (*command)(struct backend *b, const char *json, char **reply,
		       struct aerr *err);
	/* Append "key value\n" lines (pid, accel, ...) to out. */
	void (*info)(struct backend *b, struct strbuf *out);
	pid_t (*pid)(struct backend *b);
	/* Kill if still running, reap, free. No callbacks after it returns. */
	void (*destroy)(struct backend *b);
};

const struct backend_ops *backend_find(const char *name);
/* Comma-separated capability names, for info. */
void backend_caps_render(unsigned caps, struct strbuf *out);

extern const struct backend_ops qemu_backend_ops;
extern const struct backend_ops mock_backend_ops;

#endif
