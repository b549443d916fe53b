/*
 * fs/: the FUSE adapter over machine/. main.c creates a mount state for a
 * vmset, hands fs_lowlevel_ops and it to fuse_session_new, and after the
 * loop calls fs_mount_shutdown before vmset_destroy.
 */
#ifndef ATTESTFS_FS_H
#define ATTESTFS_FS_H

#ifndef FUSE_USE_VERSION
#define FUSE_USE_VERSION 35
#endif

#include <fuse_lowlevel.h>

#include "machine/machine.h"

struct fs_mount;

extern const struct fuse_lowlevel_ops fs_lowlevel_ops;

/* The vmset stays owned by the caller and must outlive the mount state. */
struct fs_mount *fs_mount_new(struct vmset *vms);
/*
 * After the loop ended: cancel every parked request (their callers get
 * EHOSTDOWN: their machines go down), wait for the replies, and close the
 * transactions and job stdins still open, so vmset_destroy finds nothing
 * of fs/'s in flight.
 */
void fs_mount_shutdown(struct fs_mount *mnt);
void fs_mount_free(struct fs_mount *mnt);

#endif
