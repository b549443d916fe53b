/* Unix stream sockets: the VMMs' control sockets and the ones machine/
 * listens on for consoles and shells. */
#ifndef ATTESTFS_SOCK_H
#define ATTESTFS_SOCK_H

#include "common/util.h"

/* socket(AF_UNIX, SOCK_STREAM|SOCK_CLOEXEC) + connect; paths longer than
 * sun_path go through /proc/self/fd. fd, or -errno. */
int sock_unix_connect(const char *path);
/* Replace path by a listening socket (backlog 4, CLOEXEC). fd, or -errno
 * with the reason in err (-ENAMETOOLONG: the path does not fit sun_path). */
int sock_listen_unix(const char *path, struct aerr *err);

#endif
