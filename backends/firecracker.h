/*
 * Internal to the Firecracker backend: firecracker.c runs the process (and
 * is the backend_ops row), fc_api.c holds what can be checked without one:
 * the config keys, the command line, and the API requests in their order,
 * each against a rest.h client (unit tests run them against a canned HTTP
 * server).
 *
 * Paths: every Firecracker process runs in a directory of its own (its
 * launch directory, STATE/fc.N/) and is given the drives ("disk.N") and the
 * vsock socket ("v.sock") relative to it. A snapshot records those paths as
 * given, and Firecracker has no way to override a drive's path on load: a
 * restoring process, in its own directory, then opens its own copies.
 */
#ifndef ATTESTFS_BACKENDS_FIRECRACKER_H
#define ATTESTFS_BACKENDS_FIRECRACKER_H

#include <stdbool.h>
#include <stddef.h>

#include "backends/backend.h"
#include "backends/rest.h"

#define FC_API_WAIT_MS 10000        /* process started -> API socket */
#define FC_DEFAULT_TIMEOUT_MS 10000 /* one API call */
#define FC_LONG_TIMEOUT_MS 120000   /* InstanceStart, snapshots */
#define FC_HALT_WAIT_MS 5000        /* SendCtrlAltDel -> the process exits */
#define FC_GUEST_CID 3
#define FC_VSOCK_NAME "v.sock"
/* Firecracker's own, before the config's "append" (which may override). */
#define FC_BOOT_ARGS "console=ttyS0 reboot=k panic=1"

/* The "firecracker" key's members, as check_config left them. */
struct fc_keys {
	const char *binary;        /* a path, or a name looked up in PATH */
	const char *log_level;     /* Firecracker's --level */
	long api_timeout_ms;
};

/* backend_ops.config_keys and .check_config (fc_api.c). */
extern const char *const fc_config_keys[];
int fc_check_config(struct backend_check *c);
/* cfg->own's keys (borrowed from it); defaults when absent. */
void fc_keys_get(const struct backend_config *cfg, struct fc_keys *k);

/* firecracker --api-sock API --id ID --level L --log-path LOG (malloc'd,
 * NULL-terminated; fc_argv_free). */
char **fc_argv(const struct fc_keys *k, const char *api_path,
	       const char *name, const char *log_path);
void fc_argv_free(char **argv);
/* An instance id Firecracker takes ([A-Za-z0-9-], 1..64) from a name. */
char *fc_instance_id(const char *name);

/* Disk i inside the launch directory: "disk.I" (malloc'd). */
char *fc_drive_name(size_t i);

/*
 * A fresh boot: PUT /machine-config, /boot-source, /drives/diskI (one per
 * disk, relative names), /vsock, then InstanceStart. 0, or -errno with
 * "firecracker: PUT /...: reason" in err.
 */
int fc_api_boot(struct rest_client *api, const struct backend_config *cfg,
		struct aerr *err);
/* PUT /snapshot/load of state with RAM from mem, resumed. */
int fc_api_load(struct rest_client *api, const char *state, const char *mem,
		struct aerr *err);
/* PATCH /vm {"state": "Paused"} or "Resumed". */
int fc_api_set_state(struct rest_client *api, bool paused, struct aerr *err);
/* PUT /snapshot/create (paused first: the caller's). */
int fc_api_snapshot(struct rest_client *api, const char *state,
		    const char *mem, struct aerr *err);
/* PUT /actions {"action_type": "SendCtrlAltDel"}. */
int fc_api_ctrl_alt_del(struct rest_client *api, struct aerr *err);
/* GET /version: "1.16.1" (malloc'd) or NULL. */
char *fc_api_version(struct rest_client *api);

#endif
