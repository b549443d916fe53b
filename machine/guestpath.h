/*
 * Guest paths as the host sees them under files/: pure functions, no I/O.
 */
#ifndef ATTESTFS_GUESTPATH_H
#define ATTESTFS_GUESTPATH_H

#include <stddef.h>

/*
 * A guest symlink's target as the mount shows it. The link's directory and
 * the target are normalised lexically together (an absolute target starts
 * from the guest root), a ".." at the guest root stays at the root, and the
 * result is written relative to the link's directory: "../" as often as it
 * must climb, then plain names. Followed by the host's kernel from the link's
 * place under files/, it never leaves files/; a tree that cp -a or tar copy
 * out keeps its links inside. A target ending in '/' keeps its '/'.
 *
 * link: the link's own absolute guest path ("/tmp/l"). target: len bytes as
 * the guest's readlink gives them (no NUL, not empty).
 * 0 and *out (malloc'd; the caller frees it), or -EINVAL.
 */
int guestpath_link_target(const char *link, const char *target, size_t len,
			  char **out);

#endif
