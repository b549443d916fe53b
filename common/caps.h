/*
 * What a machine's backend can do, as bits: backends/ declares them in
 * struct backend_ops, machine/ checks them before it calls, and fs/ shows a
 * file only when its bit is set (a missing one is EOPNOTSUPP). One
 * definition for all three layers.
 */
#ifndef ATTESTFS_CAPS_H
#define ATTESTFS_CAPS_H

enum backend_cap {
	BACKEND_CAP_PAUSE = 1 << 0,
	BACKEND_CAP_SCREENSHOT = 1 << 1,
	BACKEND_CAP_KEYS = 1 << 2,
	BACKEND_CAP_SNAPSHOT = 1 << 3,
	BACKEND_CAP_FORWARD = 1 << 4,
	BACKEND_CAP_LINKS = 1 << 5,
	BACKEND_CAP_QMP = 1 << 6, /* raw control-plane passthrough */
	/* Its VLAN NICs are TAP devices in the mount's network namespace
	 * (backends/tapnet.h), not ports of a vde_switch. */
	BACKEND_CAP_TAPNET = 1 << 7,
};

#endif
