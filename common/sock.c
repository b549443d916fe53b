/* Unix stream sockets (see sock.h). */
#include "common/sock.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

int
sock_unix_connect(const char *path)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	char *slash, *dir = NULL, *alt = NULL;
	int fd, dfd = -1, ret = 0;

	if (strlen(path) >= sizeof(sa.sun_path)) {
		/* Too long for sun_path: reach it through its directory. */
		dir = xstrdup(path);
		slash = strrchr(dir, '/');
		if (!slash || slash == dir) {
			free(dir);
			return -ENAMETOOLONG;
		}
		*slash = '\0';
		dfd = open(dir, O_PATH | O_DIRECTORY | O_CLOEXEC);
		if (dfd < 0) {
			ret = -errno;
			free(dir);
			return ret;
		}
		alt = xasprintf("/proc/self/fd/%d/%s", dfd, slash + 1);
		free(dir);
		if (strlen(alt) >= sizeof(sa.sun_path)) {
			close(dfd);
			free(alt);
			return -ENAMETOOLONG;
		}
		path = alt;
	}
	memcpy(sa.sun_path, path, strlen(path) + 1);
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0) {
		ret = -errno;
	} else if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0) {
		ret = -errno;
		close(fd);
	}
	if (dfd >= 0)
		close(dfd);
	free(alt);
	return ret < 0 ? ret : fd;
}

int
sock_listen_unix(const char *path, struct aerr *err)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	int fd;

	if (strlen(path) >= sizeof(sa.sun_path)) {
		aerr_set(err, "socket path too long (%zu bytes, at most %zu): "
			 "%s; choose a shorter state_dir", strlen(path),
			 sizeof(sa.sun_path) - 1, path);
		return -ENAMETOOLONG;
	}
	strcpy(sa.sun_path, path);
	unlink(path);
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0 || bind(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0 ||
	    listen(fd, 4) < 0) {
		int e = errno;

		aerr_set(err, "listen on %s: %s", path, strerror(e));
		if (fd >= 0)
			close(fd);
		return -e;
	}
	return fd;
}
