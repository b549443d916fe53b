/*
 * Internal to backends/: the QEMU command line as a pure function
 * (qemu_argv.c, so unit tests can check it without running QEMU) and the
 * QEMU helpers accel.c and the tests use. The process and socket helpers
 * are common/proc.h and common/sock.h. machine/ and fs/ use backend.h only.
 */
#ifndef ATTESTFS_BACKENDS_QEMU_H
#define ATTESTFS_BACKENDS_QEMU_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

#include "backends/backend.h"
#include "common/util.h"

/* The binaries, overridable for tests: $ATTESTFS_QEMU, $ATTESTFS_QEMU_IMG. */
const char *qemu_binary(void);
const char *qemu_img_binary(void);

struct qemu_cmd_params {
	const struct backend_config *cfg;
	const char *const *qemu_args;   /* the "qemu_args" key: appended */
	size_t n_qemu_args;
	const char *qemu_bin;           /* "qemu-system-x86_64" */
	const char *state_dir;
	const char *console_path;
	const char *const *shell_paths;
	size_t n_shells;
	const char *accel;              /* "tcg" | "kvm" (resolved) */
	/* The guest runs under TCG (a start script's too, where attestfs
	 * knows it): -cpu max loses what TCG runs slowly (qemu_argv.c). */
	bool tcg_cpu;
	unsigned mac_byte;              /* last byte of the user NIC's MAC */
	const struct backend_nic *nics; /* VLAN NICs, after the user NIC */
	size_t n_nics;
	/* Overlays are STATE/disk.N.qcow2 for launch 0, STATE/disk.N.L.qcow2
	 * after: a snapshot's frozen disk may still name an older one. */
	unsigned launch;
	/* Guest RAM in this file (memory backend "mem"), NULL: anonymous. */
	const char *ram_path;
	bool ram_shared;                /* share=on, else a private COW view */
	/* Names the QMP socket qmp.TAG.sock and pid file qemu.TAG.pid, for a
	 * VMM started beside the current one; NULL: qmp.sock, qemu.pid. */
	const char *vmm_tag;
};

struct qemu_cmd {
	char **argv;        /* NULL-terminated: qemu ... or /bin/sh -c CMD */
	size_t argc;
	/* Extra environment "K=V" (NULL-terminated; empty without a start
	 * command): QEMU_OPTS, TMPDIR, SHARED_DIR, USE_TMPDIR. */
	char **env;
	size_t n_env;
	/* Set when an argument in QEMU_OPTS needed shell quoting (NixOS run
	 * scripts expand $QEMU_OPTS unquoted: such an argument breaks). */
	bool opts_quoted;
};

/*
 * Build the command that starts the machine: the QEMU argv (disk i is
 * STATE/disk.i.qcow2, created by the caller), or with cfg->start_command
 * `/bin/sh -c START_COMMAND` plus QEMU_OPTS etc. in env. VLAN NICs are
 * `-netdev vde,id=vlanN` after the user-mode NIC; a start script attaches its
 * own and gets QEMU_VDE_SOCKET_N, as NixOS's driver passes. Pure: touches no
 * file. 0 or -EINVAL with a reason.
 */
int qemu_build_cmd(const struct qemu_cmd_params *p, struct qemu_cmd *out,
		   struct aerr *err);
void qemu_cmd_free(struct qemu_cmd *c);

/* Append s for a QEMU option value: every ',' doubled. */
void qemu_sb_add_opt_value(struct strbuf *sb, const char *s);
/* Append arg for QEMU_OPTS: bare when it is made of safe characters only,
 * else shell-quoted; returns true when it had to quote. */
bool qemu_sb_add_opts_word(struct strbuf *sb, const char *arg);

/* pid runs in the session, process group or as a child of child (the
 * VMM process we forked and have not reaped): QEMU's pidfile pid may be
 * signalled. A pid reused by another process is not. */
bool qemu_pid_is_ours(pid_t pid, pid_t child);

/* A stable byte (1..254) from a machine name, for MAC addresses. */
unsigned qemu_name_byte(const char *name);

#endif
