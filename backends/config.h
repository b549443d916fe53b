/*
 * A machine's configuration as backends/ sees it. machine/ parses the
 * config file's generic keys and translates them into struct backend_config
 * (machine_backend_config()), once for every backend; each backend checks
 * its own keys, and what it makes of the generic ones, in its check_config
 * hook at mount time. Nothing here points back into machine/.
 */
#ifndef ATTESTFS_BACKENDS_CONFIG_H
#define ATTESTFS_BACKENDS_CONFIG_H

#include <stdbool.h>
#include <stddef.h>

#include "common/util.h"

struct json_object;

/* The generic keys of a machine; strings are borrowed from machine/. */
struct backend_config {
	const char *name;
	int cpus;                  /* >= 1 */
	int memory_mib;            /* >= 16 */
	const char *kernel;        /* absolute paths, or NULL */
	const char *initrd;
	const char *append;        /* the kernel command line, or NULL */
	const char *const *disks;  /* read-only bases: a fresh overlay per boot */
	size_t n_disks;
	/* A script that starts the VMM itself (NixOS's run-NAME-vm), or
	 * NULL; a bare command name is looked up in PATH. */
	const char *start_command;
	int shells;                /* how many backdoor shells the guest runs */
	/* One shell on the console device (hvc0), not one port per shell. */
	bool shell_console;
	/* The backend's own keys, as its check_config left them. */
	struct json_object *own;
};

/* What check_config is given, at mount time. */
struct backend_check {
	/* The machine's object from the config file as written: every key,
	 * the generic ones already checked (types, ranges) by machine/. */
	struct json_object *obj;
	/* The generic keys as machine/ parsed them (paths absolute). */
	const struct backend_config *cfg;
	/* Out: the backend's own keys with their defaults. They show in the
	 * machine's config.json and come back in cfg->own at every launch. */
	struct json_object *own;
	const char *where;         /* "FILE: machines.NAME", for messages */
	struct aerr *err;
};

/* "WHERE.KEY: reason" (or "WHERE: reason" for a NULL key) into c->err;
 * returns -EINVAL. */
int backend_check_fail(struct backend_check *c, const char *key,
		       const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
/* "string", "array", ...: a JSON value's type, for messages. */
const char *backend_json_type(const struct json_object *v);
/* The key, if present in c->obj, is an array of strings without NUL
 * characters: then it is copied into c->own, else an empty array is. */
int backend_check_strings(struct backend_check *c, const char *key);
/* kernel, initrd and disks are readable files; start_command, when it
 * names a path, is executable. */
int backend_check_files(struct backend_check *c);

#endif
