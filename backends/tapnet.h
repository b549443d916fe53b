/*
 * Virtual networks for VMMs that take TAP devices (Firecracker, Cloud
 * Hypervisor): a network namespace of the mount's own, with one bridge
 * per VLAN ("atbrV") and one persistent TAP per NIC, joined to its VLAN's
 * bridge. Nothing touches the host's network: the VMMs enter the namespace
 * before they exec, and it goes away with the mount. Without CAP_NET_ADMIN
 * (an unprivileged daemon) the namespace lives in a user namespace of its
 * own, where the daemon's user is root.
 *
 *   tapnet_open -> tapnet_add_nic (per NIC) -> fork: tapnet_enter, exec VMM
 *   block/unblock: tapnet_set_link; unmount: tapnet_close
 */
#ifndef ATTESTFS_TAPNET_H
#define ATTESTFS_TAPNET_H

#include <net/if.h>

#include "backends/backend.h"
#include "common/util.h"

struct tapnet;

/* A new namespace (and user namespace when unprivileged). 0 or -errno. */
int tapnet_open(struct tapnet **out, struct aerr *err);
/* Drop the namespace: its bridges and TAPs go with it once no VMM holds
 * it any more. NULL is fine. */
void tapnet_close(struct tapnet *t);

/* TAP `tap` (at most IFNAMSIZ - 1 bytes), persistent and up, in VLAN
 * vlan's bridge (made and brought up on first use). An existing TAP of
 * that name is reused, so a VMM started again finds its NIC. */
int tapnet_add_nic(struct tapnet *t, unsigned vlan, const char *tap,
		   struct aerr *err);
/* The TAP's link up or down: down, nothing passes either way. */
int tapnet_set_link(struct tapnet *t, const char *tap, int up,
		    struct aerr *err);
/* Every NIC's TAP up or down (block/unblock); stops at the first error. */
int tapnet_set_links(struct tapnet *t, const struct backend_nic *nics,
		     size_t n, int up, struct aerr *err);
/* The TAP's link: 1 up, 0 down, or -errno. */
int tapnet_link(struct tapnet *t, const char *tap, struct aerr *err);

/* In a forked child, before exec: move into the namespace. 0 or -errno.
 * Async-signal-safe. */
int tapnet_enter(const struct tapnet *t);

#endif
