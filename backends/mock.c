/*
 * The mock backend: no VMM, the host's own /bin/sh plays the guest, so that
 * machine/ can be tested without QEMU.
 *
 * Like QEMU, the backend connects to the sockets machine/ listens on (the
 * console and one per shell) when it starts. One monitor thread per machine
 * forks the "VM": a main child (its pid is the machine's pid) that writes
 * "mock: booted NAME" to the console and sleeps until killed, and per shell a
 * small supervisor that plays the guest's backdoor loop: it prints
 * "Spawning backdoor root shell..." and runs /bin/sh on the connection
 * (stderr to the console), again after the shell exits, until the host hangs
 * up. All children share one process group, so signals reach every one.
 * When the main child dies, the rest are killed and exited() is called once.
 * With "mock.vsock" in the kernel command line it plays a vsock VMM
 * instead: each shell runs on a socket pair whose host end the monitor
 * thread hands over (events->channel), as backends/vsock.c does.
 */
#include "backends/backend.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "common/proc.h"
#include "common/sock.h"

#define MOCK_BANNER "Spawning backdoor root shell...\n"
#define MOCK_POLL_MS 20

struct mock_event {
	char *name;
	char *detail;
	struct mock_event *next;
};

struct backend {
	/* Guards what the monitor thread and the callers share: events and
	 * owner, spawned .. stopped, the event queue. Not held across a
	 * callback. The paths are launch()'s, set before the thread starts. */
	pthread_mutex_t lock;
	pthread_cond_t cond;        /* CLOCK_MONOTONIC; on every change */

	char *name;
	char *bin_dir;              /* the stand-ins first in the shells' PATH */
	char *shells_path;          /* one line per shell started: its pid */
	char *console_path;
	char **shell_paths;
	size_t n_shells;
	int *handover;              /* mock.vsock: host ends, until handed over */
	const struct backend_events *events;
	void *owner;

	pthread_t thread;
	bool spawned;
	int spawn_err;              /* -errno, reason in spawn_msg */
	struct aerr spawn_msg;
	pid_t main_pid;             /* also the process group */
	bool dead;                  /* main child gone: no more signals */
	bool exited;
	int status;
	bool launch_done;
	bool launched;
	bool quiet;                 /* destroy began: no callbacks */
	bool stopped;

	struct mock_event *ev_head, **ev_tail;
};

/* Called with b->lock held. Events go out from the monitor thread. */
static void
mock_queue_event(struct backend *b, const char *name, const char *detail)
{
	struct mock_event *ev = xcalloc(1, sizeof(*ev));

	ev->name = xstrdup(name);
	ev->detail = xstrdup(detail);
	*b->ev_tail = ev;
	b->ev_tail = &ev->next;
	pthread_cond_broadcast(&b->cond);
}

/* Called with b->lock held; drops it around each callback. */
static void
mock_dispatch_locked(struct backend *b)
{
	while (b->ev_head) {
		struct mock_event *ev = b->ev_head;
		bool quiet = b->quiet;

		b->ev_head = ev->next;
		if (!b->ev_head)
			b->ev_tail = &b->ev_head;
		pthread_mutex_unlock(&b->lock);
		if (!quiet && b->events && b->events->vm_event)
			b->events->vm_event(b->owner, ev->name, ev->detail);
		free(ev->name);
		free(ev->detail);
		free(ev);
		pthread_mutex_lock(&b->lock);
	}
}

static void
mock_sleep_ms(long ms)
{
	struct timespec ts = { ms / 1000, (ms % 1000) * 1000000L };

	while (nanosleep(&ts, &ts) < 0 && errno == EINTR)
		;
}

/* The "VM" itself: say it booted, then wait to be killed. */
static void __attribute__((noreturn))
mock_main_child(pid_t parent, int console_fd, const char *banner, size_t len)
{
	proc_child_init(parent);
	setpgid(0, 0);
	if (console_fd >= 0) {
		if (console_fd != 3)
			dup2(console_fd, 3);
		proc_close_from(4);
		if (write(3, banner, len) < 0) {
			/* the host may not read the console: fine */
		}
	} else {
		proc_close_from(3);
	}
	for (;;)
		pause();
}

/*
 * The mock's guest is this host, and machine/ ends a guest by sending
 * "poweroff" or "reboot" to its shell: as root, that would end the host.
 * The shells find stand-ins first in PATH that act on the mock VM instead:
 * poweroff ends its main child (the VMM exits, as after a real poweroff),
 * reboot restarts its shells.
 */
static const char mock_poweroff[] =
	"#!/bin/sh\n"
	"# attestfs mock: the guest is the host; end the mock VM only\n"
	"exec kill -TERM \"$ATTESTFS_MOCK_PID\"\n";
/* A reboot: every shell of the mock VM ends and its loop starts a new one
 * with the banner, as after a guest's reboot. */
static const char mock_reboot[] =
	"#!/bin/sh\n"
	"# attestfs mock: the guest is the host; restart the mock's shells only\n"
	"exec pkill -KILL -g \"$ATTESTFS_MOCK_PID\" -x sh\n";
static const struct {
	const char *name, *script;
} mock_standins[] = {
	{ "poweroff", mock_poweroff }, { "halt", mock_poweroff },
	{ "shutdown", mock_poweroff }, { "reboot", mock_reboot },
};

static int
mock_write_standins(const char *dir, struct aerr *err)
{
	size_t i;
	int ret;

	if (mkdir(dir, 0700) < 0 && errno != EEXIST)
		goto fail;
	for (i = 0; i < sizeof(mock_standins) / sizeof(mock_standins[0]);
	     i++) {
		const char *script = mock_standins[i].script;
		char *path = xasprintf("%s/%s", dir, mock_standins[i].name);
		int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC |
					    O_NOFOLLOW, 0700);

		free(path);
		if (fd < 0)
			goto fail;
		ret = write_all(fd, script, strlen(script));
		close(fd);
		if (ret < 0)
			goto out;
	}
	return 0;
fail:
	ret = -errno;
out:
	aerr_set(err, "mock: stand-ins in %s: %s", dir, strerror(-ret));
	return ret;
}

/* The shells' environment (built before they fork): ours, with the
 * stand-ins first in PATH and the mock VM's pid for them. */
static char **
mock_shell_env(struct backend *b)
{
	extern char **environ;
	const char *path = getenv("PATH");
	size_t n = 0, i, k = 0;
	char **envp;

	while (environ[n])
		n++;
	envp = xcalloc(n + 3, sizeof(*envp));
	for (i = 0; i < n; i++)
		if (strncmp(environ[i], "PATH=", 5) &&
		    strncmp(environ[i], "ATTESTFS_MOCK_PID=", 18))
			envp[k++] = xstrdup(environ[i]);
	envp[k++] = xasprintf("PATH=%s:%s", b->bin_dir,
			      path ? path : "/usr/sbin:/usr/bin:/sbin:/bin");
	envp[k++] = xasprintf("ATTESTFS_MOCK_PID=%d", (int)b->main_pid);
	return envp;
}

static void
mock_env_free(char **envp)
{
	size_t i;

	for (i = 0; envp && envp[i]; i++)
		free(envp[i]);
	free(envp);
}

/* The guest's backdoor loop on one shell connection. */
static void __attribute__((noreturn))
mock_shell_child(pid_t parent, pid_t group, int sock, int console_fd,
		 int shells_fd, char *const *envp)
{
	pid_t self, sh;
	int s, e, n, status;

	proc_child_init(parent);
	setpgid(0, group);
	s = fcntl(sock, F_DUPFD, 10);
	e = console_fd >= 0 ? fcntl(console_fd, F_DUPFD, 10) :
			      open("/dev/null", O_WRONLY);
	n = fcntl(shells_fd, F_DUPFD_CLOEXEC, 10);
	if (s < 0 || n < 0)
		_exit(1);
	dup2(s, 0);
	dup2(s, 1);
	if (e >= 0)
		dup2(e, 2);
	/* Kept (close-on-exec) for the pids; the shells get 0-2 only. */
	if (dup3(n, 3, O_CLOEXEC) < 0)
		_exit(1);
	proc_close_from(4);
	self = getpid();
	for (;;) {
		struct pollfd p = { .fd = 0, .events = POLLIN | POLLRDHUP };

		sh = fork();
		if (sh < 0)
			_exit(1);
		if (sh == 0) {
			proc_child_init(self);
			if (write(1, MOCK_BANNER, sizeof(MOCK_BANNER) - 1) < 0)
				_exit(1);
			execle("/bin/sh", "sh", (char *)NULL, envp);
			_exit(127);
		}
		/* O_APPEND: one short line at a time, whole. */
		dprintf(3, "%d\n", (int)sh);
		while (waitpid(sh, &status, 0) < 0 && errno == EINTR)
			;
		/* The host hung up: the shell got EOF. Stop, like QEMU's
		 * chardev, which does not reconnect. */
		if (poll(&p, 1, 0) < 0 ||
		    (p.revents & (POLLHUP | POLLRDHUP | POLLERR | POLLNVAL)))
			_exit(0);
		mock_sleep_ms(50);
	}
}

/* Connect like QEMU does at start-up; the daemon is already listening. */
static int
mock_connect(const char *path)
{
	int64_t deadline = now_mono_ms() + 1000;
	int fd;

	for (;;) {
		fd = sock_unix_connect(path);
		if (fd >= 0 || (fd != -ENOENT && fd != -ECONNREFUSED) ||
		    now_mono_ms() >= deadline)
			return fd;
		mock_sleep_ms(10);
	}
}

/* Fork everything. 0, or -errno with b->spawn_msg; then nothing runs. */
static int
mock_spawn(struct backend *b)
{
	pid_t parent = getpid(), pid;
	int console_fd, shells_fd, *socks, ret = 0;
	char *banner, **envp = NULL;
	size_t i;

	socks = xcalloc(b->n_shells + 1, sizeof(int));
	for (i = 0; i < b->n_shells; i++)
		socks[i] = -1;
	for (i = 0; i < b->n_shells; i++) {
		int sv[2];

		if (b->handover && socketpair(AF_UNIX, SOCK_STREAM |
					      SOCK_CLOEXEC, 0, sv) == 0) {
			b->handover[i] = sv[0];
			socks[i] = sv[1];
		} else {
			socks[i] = b->handover ? -errno :
						 mock_connect(b->shell_paths[i]);
		}
		if (socks[i] < 0) {
			ret = socks[i];
			aerr_set(&b->spawn_msg, "mock: connect shell %zu %s: %s",
				 i, b->shell_paths[i], strerror(-ret));
			goto out;
		}
	}
	shells_fd = open(b->shells_path, O_WRONLY | O_CREAT | O_TRUNC |
					   O_APPEND | O_CLOEXEC | O_NOFOLLOW, 0600);
	if (shells_fd < 0) {
		ret = -errno;
		aerr_set(&b->spawn_msg, "mock: %s: %s", b->shells_path,
			 strerror(-ret));
		goto out;
	}
	console_fd = b->console_path ? mock_connect(b->console_path) : -1;
	banner = xasprintf("mock: booted %s\n", b->name);

	pid = fork();
	if (pid == 0)
		mock_main_child(parent, console_fd, banner, strlen(banner));
	free(banner);
	if (pid < 0) {
		ret = -errno;
		aerr_set(&b->spawn_msg, "mock: fork: %s", strerror(-ret));
		goto out_console;
	}
	setpgid(pid, pid);
	b->main_pid = pid;
	envp = mock_shell_env(b);
	for (i = 0; i < b->n_shells; i++) {
		pid_t sp = fork();

		if (sp == 0)
			mock_shell_child(parent, b->main_pid, socks[i],
					 console_fd, shells_fd, envp);
		if (sp < 0) {
			ret = -errno;
			aerr_set(&b->spawn_msg, "mock: fork: %s",
				 strerror(-ret));
			kill(-b->main_pid, SIGKILL);
			while (waitpid(-b->main_pid, NULL, 0) > 0 ||
			       errno == EINTR)
				;
			b->main_pid = 0;
			goto out_console;
		}
		setpgid(sp, b->main_pid);
	}
out_console:
	if (console_fd >= 0)
		close(console_fd);
	close(shells_fd);
	mock_env_free(envp);
out:
	for (i = 0; i < b->n_shells; i++)
		if (socks[i] >= 0)
			close(socks[i]);
	free(socks);
	return ret;
}

/*
 * The guest prelude keeps each shell's files in RUNTIME/$$ and removes them
 * when the shell exits; the mock's "guest" is the host and its shells die
 * by SIGKILL with the machine, so their directories would pile up on the
 * host. Each supervisor notes the pid of every shell it starts, and this
 * removes those directories, and only those: every mock on the host (and
 * every daemon in attestfs-run's pid namespace, where /proc shows other
 * pids) shares RUNTIME, so a directory whose pid looks gone may be another
 * machine's live shell. One of ours still in /proc is dying with our
 * process group, unless its pid was reused (by one outside our group).
 */
static bool
mock_pid_is_other(pid_t pid, pid_t group)
{
	long ppid, pgrp, sid;
	int ret = proc_stat_ids(pid, &ppid, &pgrp, &sid);

	if (ret == -ENOENT || ret == -ESRCH)
		return false;
	return ret < 0 || pgrp != group;
}

static void
mock_forget_shell_dirs(const char *shells_path, pid_t group)
{
	static const char *const runtimes[] = { "/run/attestfs",
						"/tmp/.attestfs" };
	char name[32];
	struct stat st;
	size_t i;
	FILE *f;
	int pid;

	f = fopen(shells_path, "re");
	if (!f)
		return;
	while (fscanf(f, "%d", &pid) == 1) {
		if (pid <= 0 || mock_pid_is_other(pid, group))
			continue;
		snprintf(name, sizeof(name), "%d", pid);
		for (i = 0; i < sizeof(runtimes) / sizeof(runtimes[0]); i++) {
			int dfd = open(runtimes[i], O_RDONLY | O_DIRECTORY |
						    O_NOFOLLOW | O_CLOEXEC);

			if (dfd < 0)
				continue;
			if (fstatat(dfd, name, &st, AT_SYMLINK_NOFOLLOW) == 0 &&
			    S_ISDIR(st.st_mode) && st.st_uid == geteuid())
				remove_tree_at(dfd, name);
			close(dfd);
		}
	}
	fclose(f);
}

/* mock.vsock: the host ends go to machine/ now, as a dialer's would. */
static void
mock_hand_over(struct backend *b)
{
	size_t i;

	for (i = 0; b->handover && i < b->n_shells; i++) {
		int fd = b->handover[i];

		b->handover[i] = -1;
		if (b->events && b->events->channel)
			b->events->channel(b->owner, i, fd);
		else
			close(fd);
	}
}

static void *
mock_thread_main(void *arg)
{
	struct backend *b = arg;
	struct timespec ts;
	sigset_t all;
	bool notify;
	int ret, st, status = 0;
	pid_t main_pid;

	sigfillset(&all);
	pthread_sigmask(SIG_BLOCK, &all, NULL);

	ret = mock_spawn(b);
	pthread_mutex_lock(&b->lock);
	b->spawned = true;
	b->spawn_err = ret;
	main_pid = b->main_pid;
	pthread_cond_broadcast(&b->cond);
	pthread_mutex_unlock(&b->lock);
	if (ret < 0)
		return NULL;
	mock_hand_over(b);

	for (;;) {
		siginfo_t si;

		pthread_mutex_lock(&b->lock);
		mock_dispatch_locked(b);
		pthread_mutex_unlock(&b->lock);

		memset(&si, 0, sizeof(si));
		if (waitid(P_PGID, main_pid, &si,
			   WEXITED | WNOHANG | WNOWAIT) < 0) {
			if (errno == EINTR)
				continue;
			break; /* ECHILD: every child is reaped */
		}
		if (si.si_pid == 0) {
			pthread_mutex_lock(&b->lock);
			mono_deadline(&ts, MOCK_POLL_MS);
			if (!b->ev_head)
				pthread_cond_timedwait(&b->cond, &b->lock, &ts);
			pthread_mutex_unlock(&b->lock);
			continue;
		}
		if (si.si_pid == main_pid) {
			/* Not reaped yet: the group id cannot be reused. */
			pthread_mutex_lock(&b->lock);
			b->dead = true;
			pthread_mutex_unlock(&b->lock);
			kill(-main_pid, SIGKILL);
		}
		while (waitpid(si.si_pid, &st, 0) < 0 && errno == EINTR)
			;
		if (si.si_pid == main_pid)
			status = st;
	}

	mock_forget_shell_dirs(b->shells_path, main_pid);
	pthread_mutex_lock(&b->lock);
	b->dead = true;
	b->exited = true;
	b->status = status;
	pthread_cond_broadcast(&b->cond);
	while (!b->launch_done)
		pthread_cond_wait(&b->cond, &b->lock);
	mock_dispatch_locked(b);
	notify = b->launched && !b->quiet;
	pthread_mutex_unlock(&b->lock);
	if (notify && b->events && b->events->exited)
		b->events->exited(b->owner, status);
	return NULL;
}

static void
mock_free(struct backend *b)
{
	size_t i;

	while (b->ev_head) {
		struct mock_event *ev = b->ev_head;

		b->ev_head = ev->next;
		free(ev->name);
		free(ev->detail);
		free(ev);
	}
	free(b->name);
	free(b->bin_dir);
	free(b->shells_path);
	free(b->console_path);
	for (i = 0; i < b->n_shells; i++)
		free(b->shell_paths[i]);
	free(b->shell_paths);
	for (i = 0; b->handover && i < b->n_shells; i++)
		if (b->handover[i] >= 0)
			close(b->handover[i]);
	free(b->handover);
	pthread_mutex_destroy(&b->lock);
	pthread_cond_destroy(&b->cond);
	free(b);
}

static int
mock_launch(const struct backend_launch *l, struct backend **out,
	    struct aerr *err)
{
	const struct backend_config *cfg = &l->cfg;
	const char *fail = cfg->append ? strstr(cfg->append, "mock.fail") :
					 NULL;
	pthread_condattr_t ca;
	struct backend *b;
	size_t i;
	int ret;

	*out = NULL;
	if (fail) {
		/* "mock.fail=REASON" (up to a space), or just "mock.fail" */
		fail += strlen("mock.fail");
		if (*fail == '=') {
			fail++;
			aerr_set(err, "mock: launch failed: %.*s",
				 (int)strcspn(fail, " "), fail);
		} else {
			aerr_set(err, "mock: launch failed (mock.fail)");
		}
		return -EIO;
	}

	b = xcalloc(1, sizeof(*b));
	b->bin_dir = xasprintf("%s/mock-bin", l->state_dir);
	b->shells_path = xasprintf("%s/mock-shells", l->state_dir);
	ret = mock_write_standins(b->bin_dir, err);
	if (ret < 0) {
		free(b->bin_dir);
		free(b->shells_path);
		free(b);
		return ret;
	}
	pthread_mutex_init(&b->lock, NULL);
	pthread_condattr_init(&ca);
	pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
	pthread_cond_init(&b->cond, &ca);
	pthread_condattr_destroy(&ca);
	b->name = xstrdup(cfg->name);
	b->console_path = l->console_path ? xstrdup(l->console_path) : NULL;
	b->n_shells = l->n_shells;
	b->shell_paths = xcalloc(l->n_shells + 1, sizeof(char *));
	for (i = 0; i < l->n_shells; i++)
		b->shell_paths[i] = xstrdup(l->shell_paths[i]);
	if (cfg->append && strstr(cfg->append, "mock.vsock")) {
		b->handover = xcalloc(l->n_shells + 1, sizeof(int));
		for (i = 0; i < l->n_shells; i++)
			b->handover[i] = -1;
	}
	b->events = l->events;
	b->owner = l->owner;
	b->ev_tail = &b->ev_head;

	ret = pthread_create(&b->thread, NULL, mock_thread_main, b);
	if (ret) {
		aerr_set(err, "mock: cannot create thread: %s", strerror(ret));
		mock_free(b);
		return -ret;
	}
	pthread_mutex_lock(&b->lock);
	while (!b->spawned)
		pthread_cond_wait(&b->cond, &b->lock);
	ret = b->spawn_err;
	b->launch_done = true;
	b->launched = ret == 0;
	pthread_cond_broadcast(&b->cond);
	pthread_mutex_unlock(&b->lock);
	if (ret < 0) {
		aerr_set(err, "%s", b->spawn_msg.msg);
		pthread_join(b->thread, NULL);
		mock_free(b);
		return ret;
	}
	*out = b;
	return 0;
}

static int
mock_signal(struct backend *b, int sig, const char *event,
	    const char *detail)
{
	int ret = 0;

	pthread_mutex_lock(&b->lock);
	if (b->dead) {
		ret = -EIO;
	} else {
		if (event)
			mock_queue_event(b, event, detail);
		kill(-b->main_pid, sig);
		if (sig == SIGSTOP)
			b->stopped = true;
		if (sig == SIGCONT)
			b->stopped = false;
		if (sig == SIGTERM && b->stopped)
			kill(-b->main_pid, SIGCONT);
	}
	pthread_mutex_unlock(&b->lock);
	return ret;
}

static int
mock_quit(struct backend *b)
{
	int ret = mock_signal(b, SIGTERM, "SHUTDOWN",
			      "{\"guest\":false,\"reason\":\"host-qmp-quit\"}");

	return ret == -EIO ? 0 : ret;
}

static int
mock_kill(struct backend *b)
{
	int ret = mock_signal(b, SIGKILL, NULL, NULL);

	return ret == -EIO ? 0 : ret;
}

static int
mock_pause(struct backend *b)
{
	return mock_signal(b, SIGSTOP, "STOP", "{}");
}

static int
mock_resume(struct backend *b)
{
	return mock_signal(b, SIGCONT, "RESUME", "{}");
}

static int
mock_command(struct backend *b, const char *json, char **reply,
	     struct aerr *err)
{
	*reply = NULL;
	aerr_set(err, "mock backend has no control plane");
	return -EOPNOTSUPP;
}

static void
mock_info(struct backend *b, struct strbuf *out)
{
	sb_addf(out, "pid %d\n", (int)b->main_pid);
}

static pid_t
mock_pid(struct backend *b)
{
	return b->main_pid;
}

static void
mock_destroy(struct backend *b)
{
	if (!b)
		return;
	pthread_mutex_lock(&b->lock);
	b->quiet = true;
	if (!b->dead)
		kill(-b->main_pid, SIGKILL);
	pthread_cond_broadcast(&b->cond);
	pthread_mutex_unlock(&b->lock);
	pthread_join(b->thread, NULL);
	mock_free(b);
}

const struct backend_ops mock_backend_ops = {
	.name = "mock",
	.caps = BACKEND_CAP_PAUSE,
	.launch = mock_launch,
	.quit = mock_quit,
	.kill = mock_kill,
	.pause = mock_pause,
	.resume = mock_resume,
	.command = mock_command,
	.info = mock_info,
	.pid = mock_pid,
	.destroy = mock_destroy,
};
