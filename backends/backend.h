/*
 * One vtable per virtual machine monitor. machine/ calls down through it; a
 * backend reports back only through the callbacks machine/ hands it.
 * Backends never include FUSE headers and never call into machine/.
 */
#ifndef ATTESTFS_BACKEND_H
#define ATTESTFS_BACKEND_H

#include <stddef.h>
#include <sys/types.h>

#include "backends/config.h"
#include "common/caps.h"
#include "common/util.h"

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

/* A NIC on a virtual network: a port of that VLAN's vde_switch, or with
 * BACKEND_CAP_TAPNET a TAP on that VLAN's bridge in launch->tapnet. */
struct backend_nic {
	unsigned vlan;             /* 1..255; QEMU's netdev id is "vlanN" */
	const char *switch_path;   /* the vde_switch's control directory */
	char tap[16];              /* BACKEND_CAP_TAPNET: "at<node>-<vlan>" */
	char mac[18];              /* 52:54:00:12:<vlan>:<node>, hex */
};

struct tapnet;

struct backend_launch {
	struct backend_config cfg; /* machine_backend_config() */
	const char *state_dir;     /* this machine's own directory */
	const char *console_path;  /* unix socket machine/ listens on: serial */
	const char *const *shell_paths; /* unix sockets machine/ listens on */
	/* ports attestfs.shell.0..n-1; with cfg.shell_console the first is
	 * hvc0 and the rest are attestfs.shell.0..n-2 */
	size_t n_shells;
	const char *accel;         /* "auto" | "kvm" | "tcg" */
	unsigned node;             /* machine number (name order from 1), 0 = none */
	const struct backend_nic *nics; /* after the user-mode NIC, in order */
	size_t n_nics;
	/* BACKEND_CAP_TAPNET with NICs: the namespace their TAPs are in; the
	 * VMM enters it before it execs (tapnet_enter) and set_links takes
	 * the TAPs down and up (tapnet_set_link). */
	struct tapnet *tapnet;
	/* Restore (BACKEND_CAP_SNAPSHOT): the saved state to load, and the
	 * snapshot's frozen disks (cfg.n_disks of them) to overlay instead
	 * of cfg.disks. The guest continues paused-then-running from there. */
	const char *incoming;
	const char *const *disk_bases;
	/* Guest RAM in a file of its own (NULL: the VMM's anonymous memory),
	 * so that a snapshot keeps RAM as a file instead of streaming it. The
	 * backend creates ram_path, maps it shared and removes it in destroy. */
	const char *ram_path;
	/* Restore: the snapshot's RAM file, when it has one (its state then
	 * carries no RAM). It is copied to ram_path; with ram_private it is
	 * mapped copy-on-write instead, so that clones share its pages (their
	 * own snapshots then carry their RAM in the state). */
	const char *incoming_ram;
	int ram_private;
	/* Restore later: launch() returns with the VMM waiting for the saved
	 * state and incoming() loads it, so the wait costs no process start.
	 * Such a VMM runs beside the machine's current one: vmm_tag keeps its
	 * control socket and pid file apart. */
	int defer_incoming;
	const char *vmm_tag;
	const struct backend_events *events;
	void *owner;
};

struct backend;

struct backend_ops {
	const char *name;          /* the config file's "backend" */
	unsigned caps;
	/* This backend's own keys in a machine's config entry (NULL-
	 * terminated, or NULL for none): machine/ accepts them beside its
	 * generic ones and leaves them to check_config. */
	const char *const *config_keys;
	/* Mount time: check the machine's config for this backend, fill
	 * c->own (config.h). 0, or -EINVAL with backend_check_fail(). */
	int (*check_config)(struct backend_check *c);
	/* Start the VMM; returns once it runs (or failed). *out on success. */
	int (*launch)(const struct backend_launch *l, struct backend **out,
		      struct aerr *err);
	int (*quit)(struct backend *b);   /* stop the VMM now (halt) */
	int (*kill)(struct backend *b);   /* SIGKILL the VMM (crash) */
	int (*pause)(struct backend *b);
	int (*resume)(struct backend *b);
	/* Raw control-plane command (QMP JSON); *reply is malloc'd JSON. */
	int (*command)(struct backend *b, const char *json, char **reply,
		       struct aerr *err);
	/* BACKEND_CAP_LINKS: every VLAN NIC's link up or down. */
	int (*set_links)(struct backend *b, int up, struct aerr *err);
	/* BACKEND_CAP_FORWARD: host 127.0.0.1:host_port (TCP) to the guest's
	 * guest_port through the user-mode NIC. -EADDRINUSE when the host
	 * port is taken. */
	int (*forward)(struct backend *b, unsigned host_port,
		       unsigned guest_port, struct aerr *err);
	/* BACKEND_CAP_SNAPSHOT: pause, save device state to dir/state and
	 * freeze each disk as dir/disk.N.qcow2 (the guest goes on over a new
	 * overlay above it), resume. Guest RAM goes to the file ram_out
	 * (*ram_saved = 1) when it lives in a shared file, else into the state
	 * (*ram_saved = 0). */
	int (*save)(struct backend *b, const char *dir, const char *ram_out,
		    int *ram_saved, struct aerr *err);
	/* BACKEND_CAP_SCREENSHOT: the screen, as a PNG file at path. */
	int (*screenshot)(struct backend *b, const char *path,
			  struct aerr *err);
	/* BACKEND_CAP_KEYS: press keys (QEMU qcode names) together, then
	 * let go of them. */
	int (*send_keys)(struct backend *b, const char *const *keys, size_t n,
			 struct aerr *err);
	/* After launch() with defer_incoming: load the state, run the guest. */
	int (*incoming)(struct backend *b, struct aerr *err);
	/* Route later callbacks elsewhere (a pre-started VMM put to use). */
	void (*set_owner)(struct backend *b, const struct backend_events *ev,
			  void *owner);
	/* Append "key value\n" lines (pid, accel, ...) to out. */
	void (*info)(struct backend *b, struct strbuf *out);
	pid_t (*pid)(struct backend *b);
	/* Kill if still running, reap, free. No callbacks after it returns. */
	void (*destroy)(struct backend *b);
};

/* The table: adding a backend is its file plus one row in backend.c. */
const struct backend_ops *backend_find(const char *name);
/* The i-th backend, NULL past the end (for the names in messages). */
const struct backend_ops *backend_at(size_t i);
/* Comma-separated capability names, for info. */
void backend_caps_render(unsigned caps, struct strbuf *out);

extern const struct backend_ops qemu_backend_ops;
extern const struct backend_ops mock_backend_ops;

#endif
