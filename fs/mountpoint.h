/*
 * fs/mountpoint.c: a mount point left dead by a killed daemon is taken
 * back before mounting. FUSE-free, so the unit tests link it.
 */
#ifndef ATTESTFS_FS_MOUNTPOINT_H
#define ATTESTFS_FS_MOUNTPOINT_H

#include <stdio.h>

/*
 * 1 if the topmost mount at MOUNTPOINT (absolute, as /proc/self/mountinfo
 * spells it after unescaping) in the mountinfo text F is a FUSE mount
 * (fuse, fuse.*, fuseblk), 0 if not or if nothing is mounted there.
 */
int fs_mountinfo_is_fuse(FILE *f, const char *mountpoint);

/*
 * If MOUNTPOINT is a dead FUSE mount (stat fails with ENOTCONN and the
 * mount table says FUSE), detach it lazily and say so on stderr. A live
 * mount, or anything else, is left alone. 0, or -errno if a dead mount
 * could not be detached.
 */
int fs_reclaim_dead_mount(const char *mountpoint);

#endif
