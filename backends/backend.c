/* The backend table, capability names, and helpers the backends share. */
#include "backends/backend.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "backends/qemu.h"

static const struct backend_ops *const backend_table[] = {
	&qemu_backend_ops,
	&mock_backend_ops,
	/* firecracker, cloud-hypervisor: later */
};

const struct backend_ops *
backend_find(const char *name)
{
	size_t i;

	if (!name)
		return NULL;
	for (i = 0; i < sizeof(backend_table) / sizeof(backend_table[0]); i++)
		if (!strcmp(backend_table[i]->name, name))
			return backend_table[i];
	return NULL;
}

static const struct {
	unsigned cap;
	const char *name;
} backend_cap_names[] = {
	{ BACKEND_CAP_PAUSE, "pause" },
	{ BACKEND_CAP_SCREENSHOT, "screenshot" },
	{ BACKEND_CAP_KEYS, "keys" },
	{ BACKEND_CAP_SNAPSHOT, "snapshot" },
	{ BACKEND_CAP_LINKS, "links" },
	{ BACKEND_CAP_FORWARD, "forward" },
	{ BACKEND_CAP_QMP, "qmp" },
};

void
backend_caps_render(unsigned caps, struct strbuf *out)
{
	size_t i;
	bool first = true;

	for (i = 0; i < sizeof(backend_cap_names) / sizeof(backend_cap_names[0]);
	     i++) {
		if (!(caps & backend_cap_names[i].cap))
			continue;
		if (!first)
			sb_adds(out, ",");
		sb_adds(out, backend_cap_names[i].name);
		first = false;
	}
}

int
backend_unix_connect(const char *path)
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

void
backend_child_init(pid_t parent)
{
	struct sigaction sa;
	sigset_t none;
	int sig;

	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = SIG_DFL;
	for (sig = 1; sig < NSIG; sig++) {
		if (sig == SIGKILL || sig == SIGSTOP)
			continue;
		sigaction(sig, &sa, NULL);
	}
	sigemptyset(&none);
	sigprocmask(SIG_SETMASK, &none, NULL);
	prctl(PR_SET_PDEATHSIG, SIGKILL);
	if (getppid() != parent)
		_exit(127);
}

void
backend_close_from(unsigned first)
{
	int fd;

	if (close_range(first, ~0U, 0) == 0)
		return;
	for (fd = (int)first; fd < 65536; fd++) /* kernels before 5.9 */
		close(fd);
}

void
backend_child_stdio(const char *log_path)
{
	int null_fd, log_fd;

	null_fd = open("/dev/null", O_RDWR);
	log_fd = log_path ? open(log_path, O_WRONLY | O_CREAT | O_APPEND,
				 0644) : -1;
	if (log_fd < 0)
		log_fd = null_fd;
	if (null_fd >= 0)
		dup2(null_fd, 0);
	if (log_fd >= 0) {
		dup2(log_fd, 1);
		dup2(log_fd, 2);
	}
	backend_close_from(3);
}
