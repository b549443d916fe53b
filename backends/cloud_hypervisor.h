/*
 * Internal to the Cloud Hypervisor backend: cloud_hypervisor.c (the VMM's
 * lifecycle over its REST API) and cloud_hypervisor_config.c (its config
 * keys and the request bodies, pure functions the unit tests check field
 * by field). machine/ and fs/ use backend.h only.
 */
#ifndef ATTESTFS_BACKENDS_CLOUD_HYPERVISOR_H
#define ATTESTFS_BACKENDS_CLOUD_HYPERVISOR_H

#include <stddef.h>

#include "backends/backend.h"

struct json_object;

/* The API's base below the socket (vmm-apis.md §2.1). */
#define CHV_API_BASE "http://localhost/api/v1"
/* The guest's vsock context id: the first one a guest may have. */
#define CHV_GUEST_CID 3
/* How long halt waits for the guest to power off after the ACPI power
 * button before it ends the process ("power_button_ms"). */
#define CHV_POWER_BUTTON_MS 1000

/* backend_ops.config_keys and .check_config: the machine key
 * "cloud-hypervisor": {"binary", "args", "power_button_ms"}, and what a CH
 * machine cannot have (see the file). */
extern const char *const chv_config_keys[];
int chv_check_config(struct backend_check *c);

/* What check_config kept in cfg->own, for a launch (borrowed strings). */
struct chv_own {
	const char *binary;
	const char *const *args;   /* malloc'd vector of borrowed strings */
	size_t n_args;
	int power_button_ms;
};
void chv_own_get(const struct backend_config *cfg, struct chv_own *own);
void chv_own_free(struct chv_own *own);

/* One launch's paths, for the VmConfig. */
struct chv_vm_params {
	const struct backend_config *cfg;
	const char *const *disks;  /* this launch's writable raw copies */
	size_t n_disks;
	const char *serial_socket; /* CH listens, the backend connects */
	const char *vsock_socket;  /* the hybrid vsock's unix socket */
	const struct backend_nic *nics; /* TAPs in the mount's namespace */
	size_t n_nics;
};

/* The body of PUT /vm.create (the caller's: json_object_put). */
struct json_object *chv_vm_config(const struct chv_vm_params *p);

/*
 * A snapshot's config.json (a VmConfig CH wrote) made this launch's: each
 * disk's path, each NIC's TAP and MAC (a clone's are its own), the serial
 * and vsock sockets replaced by p's. The other fields stay as saved. 0, or
 * -EINVAL with the reason (the disks or NICs differ).
 */
int chv_restore_config(struct json_object *vmcfg,
		       const struct chv_vm_params *p, struct aerr *err);

#endif
