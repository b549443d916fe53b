/* Forked children and commands run to completion (see proc.h). */
#include "common/proc.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

void
proc_child_init(pid_t parent)
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
proc_close_from(unsigned first)
{
	int fd;

	if (close_range(first, ~0U, 0) == 0)
		return;
	for (fd = (int)first; fd < 65536; fd++) /* kernels before 5.9 */
		close(fd);
}

void
proc_child_stdio(const char *log_path)
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
	proc_close_from(3);
}

/* The child of proc_run_capture: stdout to po, stderr to pe. */
static void
proc_capture_child(pid_t parent, char *const argv[], int out_fd, int err_fd)
{
	int null_fd;

	proc_child_init(parent);
	setsid();
	null_fd = open("/dev/null", O_RDONLY);
	if (null_fd >= 0)
		dup2(null_fd, 0);
	dup2(out_fd, 1);
	dup2(err_fd, 2);
	proc_close_from(3);
	execvp(argv[0], argv);
	dprintf(2, "cannot execute %s: %s\n", argv[0], strerror(errno));
	_exit(127);
}

/* Read both pipes until both end or the deadline passes; 0 or -errno. */
static int
proc_capture_read(struct pollfd pfd[2], int64_t deadline, struct strbuf *out,
		  struct strbuf *errout)
{
	while (pfd[0].fd >= 0 || pfd[1].fd >= 0) {
		int64_t left = deadline - now_mono_ms();
		int i, n;

		if (left <= 0)
			return -ETIMEDOUT;
		n = poll(pfd, 2, (int)left);
		if (n < 0 && errno != EINTR)
			return -errno;
		for (i = 0; i < 2 && n > 0; i++) {
			char buf[4096];
			ssize_t r;

			if (pfd[i].fd < 0 || !pfd[i].revents)
				continue;
			r = read(pfd[i].fd, buf, sizeof(buf));
			if (r > 0) {
				sb_add(i ? errout : out, buf, (size_t)r);
			} else if (r == 0 || errno != EINTR) {
				close(pfd[i].fd);
				pfd[i].fd = -1;
			}
		}
	}
	return 0;
}

int
proc_run_capture(char *const argv[], int timeout_ms, struct strbuf *out,
		 struct strbuf *errout)
{
	int po[2], pe[2], status, ret = 0;
	int64_t deadline = now_mono_ms() + timeout_ms;
	pid_t pid, parent = getpid();
	struct pollfd pfd[2];

	if (pipe2(po, O_CLOEXEC) < 0)
		return -errno;
	if (pipe2(pe, O_CLOEXEC) < 0) {
		ret = -errno;
		close(po[0]);
		close(po[1]);
		return ret;
	}
	pid = fork();
	if (pid == 0)
		proc_capture_child(parent, argv, po[1], pe[1]);
	if (pid < 0)
		ret = -errno;
	close(po[1]);
	close(pe[1]);
	pfd[0].fd = po[0];
	pfd[1].fd = pe[0];
	pfd[0].events = pfd[1].events = POLLIN;
	if (pid > 0)
		ret = proc_capture_read(pfd, deadline, out, errout);
	if (pid > 0 && ret == -ETIMEDOUT)
		kill(-pid, SIGKILL); /* the session it made */
	if (pfd[0].fd >= 0)
		close(pfd[0].fd);
	if (pfd[1].fd >= 0)
		close(pfd[1].fd);
	if (pid <= 0)
		return ret;
	if (ret < 0)
		kill(pid, SIGKILL);
	while (waitpid(pid, &status, 0) < 0) {
		if (errno != EINTR)
			return ret < 0 ? ret : -errno;
	}
	return ret < 0 ? ret : status;
}

int
proc_stat_ids(pid_t pid, long *ppid, long *pgrp, long *sid)
{
	char path[64], buf[1024], *p;
	ssize_t n;
	int fd;

	snprintf(path, sizeof(path), "/proc/%d/stat", (int)pid);
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	n = read(fd, buf, sizeof(buf) - 1);
	close(fd);
	if (n <= 0)
		return n < 0 ? -errno : -ENOENT;
	buf[n] = '\0';
	/* After the command name, which may hold spaces and parentheses. */
	p = strrchr(buf, ')');
	if (!p || sscanf(p + 1, " %*c %ld %ld %ld", ppid, pgrp, sid) != 3)
		return -EIO;
	return 0;
}
