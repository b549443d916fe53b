/* The JSON config file: parsed and checked once at mount time (json-c). */
#ifndef ATTESTFS_CONFIG_H
#define ATTESTFS_CONFIG_H

#include <stddef.h>

#include "common/util.h"

struct backend_config;
struct json_object;

enum shell_channel {
	SHELL_CHANNEL_PORTS,   /* named virtserialports attestfs.shell.N (ours) */
	SHELL_CHANNEL_CONSOLE, /* one shell on virtconsole/hvc0 (stock NixOS) */
};

struct machine_config {
	char *name;
	char *backend;           /* a row of backends/'s table: "qemu" (default) */
	int cpus;                /* default 1 */
	int memory_mib;          /* default 256 */
	char *kernel;            /* absolute paths: relative ones are resolved */
	char *initrd;            /*   against the config file's directory */
	char *append;            /* kernel command line, or NULL */
	char **disks;            /* read-only bases; a fresh overlay per boot */
	size_t n_disks;
	char *accel;             /* "auto" | "kvm" | "tcg", or NULL for the mount's */
	char *start_command;     /* NixOS run-<name>-vm script, or NULL */
	int shells;              /* pool size (default 4; 1 on the console) */
	enum shell_channel shell_channel;
	int timeout;             /* seconds; 0 = the mount's */
	int guest_agent;         /* output streams through the guest agent
				  * (default 1); 0 is the old staged path */
	unsigned *vlans;         /* VLANs joined (1..255, distinct), in order */
	size_t n_vlans;
	char *json;              /* the effective configuration, pretty JSON */
	/* The backend's own keys, as its check_config left them (json-c
	 * object, owned; read-only once parsed, so launches share it). */
	struct json_object *backend_keys;
};

struct attest_config {
	char *path;                       /* the config file, absolute */
	int timeout;                      /* seconds; 0 = not set in the file */
	struct machine_config *machines;  /* sorted by name */
	size_t n_machines;
};

/*
 * Parse and check FILE. On error returns -EINVAL (or -errno of the read) and
 * writes "FILE: key: reason" into err. On success the caller owns *out and
 * frees it with config_free().
 */
int config_load(const char *path, struct attest_config *out, struct aerr *err);
/* Same, from a string; base_dir resolves relative paths. */
int config_parse(const char *text, const char *path, const char *base_dir,
		 struct attest_config *out, struct aerr *err);
void config_free(struct attest_config *cfg);
/* n strings of v, then v (config.c and config_copy.c). */
void config_strv_free(char **v, size_t n);
void machine_config_free(struct machine_config *mc);
/* Deep copy (for clones). */
void machine_config_copy(struct machine_config *dst,
			 const struct machine_config *src);
/* Re-render mc->json from the fields (after a clone renames it, say). */
void machine_config_render_json(struct machine_config *mc);
/* What the backend is given (backends/config.h): every backend's generic
 * keys from mc, whose strings out borrows. */
void machine_backend_config(const struct machine_config *mc,
			    struct backend_config *out);

/* Machine names the tree reserves at its top (ctl, events, attest.sh). */
int config_name_is_valid(const char *name, struct aerr *err);

#endif
