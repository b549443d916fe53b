/*
 * attestfs-run: mount attestfs in a private user, mount and pid namespace,
 * run one test against the mount, unmount, and exit with the test's status.
 *
 *	$ attestfs-run examples/hello/machines.json bash examples/hello/test.sh
 *	attestfs: mounted 1 machines at /tmp/attestfs-run.Q2x9aF/vms (...)
 *	hello # ...
 *	PASS
 *	$ echo $?
 *	0
 *	$ attestfs-run -o global_timeout=5 m.json sleep 60; echo $?
 *	attestfs-run: global timeout: the test ran longer than 5 s, stopping it
 *	124
 *	$ attestfs-run -l daemon.log m.json bash -i     # an interactive shell
 *	$ attestfs-run -i m.json     # the same, plus the Python API: PYTHONPATH
 *
 * Made for the Nix build sandbox, where the builder has no capabilities and
 * setuid fusermount3 cannot work: as root of its own user namespace the
 * daemon mounts with mount(2) itself (libfuse tries that first, Linux >= 4.18),
 * the mount is visible only in the private mount namespace, and when this
 * process (pid 1 of the new pid namespace) ends, the kernel ends every
 * process the test left behind. It works the same for any unprivileged user
 * that may open /dev/fuse, and for root.
 *
 * Processes: the caller's process (outer) unshares and waits; its child is
 * pid 1 inside (init), which starts `attestfs -f` (the daemon) beside this
 * binary, waits for the mount, runs the test in its own process group, and
 * stops the daemon with SIGTERM, which halts every machine and unmounts.
 */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <limits.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "common/util.h"

#define RUN_DEFAULT_GLOBAL_TIMEOUT 3600
/* The daemon's own global timer is a backstop behind ours: ours decides,
 * so that a timed-out run exits 124 rather than with whatever status the
 * test's failed calls gave it. */
#define RUN_DAEMON_TIMEOUT_MARGIN 30
#define RUN_MOUNT_TIMEOUT_MS (120 * 1000)
#define RUN_MOUNT_POLL_MS 20
#define RUN_TEST_GRACE_MS (10 * 1000)
#define RUN_DAEMON_STOP_MS (90 * 1000)
#define RUN_EXIT_USAGE 2
#define RUN_EXIT_TIMEOUT 124
#define RUN_EXIT_SETUP 125

struct run_opts {
	struct strbuf ro_daemon_opts;  /* the user's -o, minus global_timeout */
	int ro_global_timeout;         /* seconds */
	char *ro_state_dir;            /* the user's state_dir=, kept */
	const char *ro_log;            /* the daemon's output, else stderr */
	const char *ro_machines;
	char **ro_test_argv;
	int ro_interactive;            /* -i: a shell, the daemon's log aside */
};

struct run {
	struct run_opts *r_opts;
	char *r_daemon_bin;
	char *r_python;                /* the Python API's directory, or NULL */
	char *r_bindir;                /* ours, with attestfs-shell */
	char *r_work;                  /* ours: the mount point, maybe state */
	char *r_mountpoint;
	char *r_state;
	sigset_t r_sigs;               /* blocked, taken with sigtimedwait */
	sigset_t r_old_sigs;           /* what children get back */
	pid_t r_daemon;                /* 0 once reaped */
	int r_daemon_status;
	pid_t r_test;                  /* 0 once reaped */
	pid_t r_test_pgid;             /* its process group, kept */
	int r_test_status;
	int r_signal;                  /* the first SIGINT/SIGTERM/SIGHUP */
};

static void
run_usage(FILE *f)
{
	fprintf(f,
		"usage: attestfs-run [-o OPTS] [-l LOG] MACHINES.json TEST "
		"[ARGS...]\n"
		"       attestfs-run -i [-o OPTS] [-l LOG] MACHINES.json "
		"[SHELL [ARGS...]]\n"
		"\n"
		"Mounts attestfs with MACHINES.json in a private user, mount "
		"and pid namespace,\n"
		"runs TEST with VMS set to the mount point, unmounts, and "
		"exits with TEST's\n"
		"status (124 when global_timeout ran out, 125 when the mount "
		"failed).\n"
		"\n"
		"    -o OPTS   attestfs mount options (timeout=, "
		"global_timeout=, accel=,\n"
		"              state_dir= to keep the logs, ...); may be "
		"repeated\n"
		"    -l LOG    the daemon's output (console lines) to LOG "
		"instead of stderr\n"
		"    -i        interactive: boots nothing, runs SHELL (default "
		"$SHELL -i) with\n"
		"              VMS set and the Python API (attestfs_nixos) on "
		"PYTHONPATH;\n"
		"              the daemon's output goes to LOG, else to the "
		"file $ATTESTFS_LOG\n"
		"    -h        this text\n");
}

/* ---- options ---- */

static int
run_parse_seconds(const char *s, int *out)
{
	char *end;
	long v;

	errno = 0;
	v = strtol(s, &end, 10);
	if (errno || end == s || *end || v <= 0 ||
	    v > INT_MAX - RUN_DAEMON_TIMEOUT_MARGIN)
		return -EINVAL;
	*out = (int)v;
	return 0;
}

/* Take global_timeout= for ourselves and pass the rest on. */
static int
run_add_daemon_opts(struct run_opts *o, const char *opts)
{
	char *copy = xstrdup(opts), *save = NULL, *item;
	int ret = 0;

	for (item = strtok_r(copy, ",", &save); item;
	     item = strtok_r(NULL, ",", &save)) {
		if (!strncmp(item, "global_timeout=", 15)) {
			if (run_parse_seconds(item + 15,
					      &o->ro_global_timeout) < 0) {
				fprintf(stderr, "attestfs-run: %s: not a "
						"number of seconds\n", item);
				ret = -EINVAL;
				break;
			}
			continue;
		}
		if (!strncmp(item, "state_dir=", 10)) {
			free(o->ro_state_dir);
			o->ro_state_dir = xstrdup(item + 10);
			continue;
		}
		sb_addf(&o->ro_daemon_opts, ",%s", item);
	}
	free(copy);
	return ret;
}

static int
run_parse_args(int argc, char **argv, struct run_opts *o)
{
	int c;

	sb_init(&o->ro_daemon_opts);
	o->ro_global_timeout = RUN_DEFAULT_GLOBAL_TIMEOUT;
	while ((c = getopt(argc, argv, "+o:l:ih")) != -1) {
		switch (c) {
		case 'o':
			if (run_add_daemon_opts(o, optarg) < 0)
				return -EINVAL;
			break;
		case 'l':
			o->ro_log = optarg;
			break;
		case 'i':
			o->ro_interactive = 1;
			break;
		case 'h':
			run_usage(stdout);
			exit(0);
		default:
			run_usage(stderr);
			return -EINVAL;
		}
	}
	if (argc - optind < 2 - o->ro_interactive) {
		run_usage(stderr);
		return -EINVAL;
	}
	o->ro_machines = argv[optind];
	o->ro_test_argv = argv + optind + 1;
	if (o->ro_interactive && !o->ro_test_argv[0]) {
		static char *sh[3] = { NULL, "-i", NULL };

		sh[0] = getenv("SHELL") && *getenv("SHELL") ? getenv("SHELL") :
							     "/bin/sh";
		o->ro_test_argv = sh;
	}
	return 0;
}

/* ---- checks before anything is made: one line each, never a hang ---- */

static int
run_check_fuse(void)
{
	int fd = open("/dev/fuse", O_RDWR | O_CLOEXEC);
	struct stat st;

	if (fd >= 0) {
		close(fd);
		return 0;
	}
	if (errno == ENOENT) {
		fprintf(stderr, "attestfs-run: /dev/fuse does not exist (load "
				"the fuse module; in a Nix build, add "
				"/dev/fuse to extra-sandbox-paths)\n");
		return -ENOENT;
	}
	if (errno == EACCES || errno == EPERM) {
		int e = errno;

		if (stat("/dev/fuse", &st) == 0)
			fprintf(stderr, "attestfs-run: /dev/fuse (mode %04o, "
					"owner %u) cannot be opened by uid "
					"%u: make it 0666 as udev does\n",
				(unsigned)(st.st_mode & 07777),
				(unsigned)st.st_uid, (unsigned)getuid());
		else
			fprintf(stderr, "attestfs-run: /dev/fuse: %s\n",
				strerror(e));
		return -e;
	}
	fprintf(stderr, "attestfs-run: /dev/fuse: %s\n", strerror(errno));
	return -errno;
}

/* The Python API (attestfs_nixos): python/ in the source tree we were
 * built in, or where make install puts it. */
static void
run_find_python(struct run *r, const char *bindir)
{
	char *dirs[2] = { xasprintf("%s/python", bindir),
			  xasprintf("%s/../lib/attestfs/python", bindir) };
	int i;

	for (i = 0; i < 2; i++) {
		if (!r->r_python && access(dirs[i], R_OK | X_OK) == 0)
			r->r_python = realpath(dirs[i], NULL);
		free(dirs[i]);
	}
}

/* `attestfs` is installed beside us. */
static int
run_find_daemon(struct run *r)
{
	char *self = realpath("/proc/self/exe", NULL), *slash;

	if (!self) {
		fprintf(stderr, "attestfs-run: /proc/self/exe: %s\n",
			strerror(errno));
		return -errno;
	}
	slash = strrchr(self, '/');
	*slash = '\0';
	r->r_daemon_bin = xasprintf("%s/attestfs", self);
	run_find_python(r, self);
	r->r_bindir = self;
	if (access(r->r_daemon_bin, X_OK) < 0) {
		fprintf(stderr, "attestfs-run: %s: %s (attestfs must be "
				"installed beside attestfs-run)\n",
			r->r_daemon_bin, strerror(errno));
		return -errno;
	}
	return 0;
}

/* ---- namespaces ---- */

static int
run_write_proc(const char *path, const char *text)
{
	int fd = open(path, O_WRONLY | O_CLOEXEC), ret;

	if (fd < 0)
		return -errno;
	ret = write_all(fd, text, strlen(text));
	close(fd);
	return ret;
}

/*
 * Root keeps every id (so files of other users stay theirs); anyone else
 * becomes root of a namespace that maps only their own uid and gid.
 */
static int
run_map_ids(uid_t uid, gid_t gid)
{
	char map[64];
	int ret;

	if (run_write_proc("/proc/self/uid_map", "0 0 4294967295\n") < 0) {
		snprintf(map, sizeof(map), "0 %u 1\n", (unsigned)uid);
		ret = run_write_proc("/proc/self/uid_map", map);
		if (ret < 0) {
			fprintf(stderr, "attestfs-run: writing uid_map: %s\n",
				strerror(-ret));
			return ret;
		}
	}
	if (run_write_proc("/proc/self/gid_map", "0 0 4294967295\n") < 0) {
		/* an unprivileged gid_map needs setgroups denied first */
		run_write_proc("/proc/self/setgroups", "deny\n");
		snprintf(map, sizeof(map), "0 %u 1\n", (unsigned)gid);
		ret = run_write_proc("/proc/self/gid_map", map);
		if (ret < 0) {
			fprintf(stderr, "attestfs-run: writing gid_map: %s\n",
				strerror(-ret));
			return ret;
		}
	}
	return 0;
}

static int
run_unshare(void)
{
	uid_t uid = geteuid();
	gid_t gid = getegid();
	int ret;

	if (unshare(CLONE_NEWUSER | CLONE_NEWNS | CLONE_NEWPID) < 0) {
		ret = -errno;
		fprintf(stderr, "attestfs-run: the kernel refuses a new user "
				"namespace: %s (see the sysctls "
				"user.max_user_namespaces and "
				"kernel.unprivileged_userns_clone)\n",
			strerror(-ret));
		return ret;
	}
	ret = run_map_ids(uid, gid);
	if (ret < 0)
		return ret;
	/* nothing we mount may leak out to the caller's namespace */
	if (mount("none", "/", NULL, MS_REC | MS_PRIVATE, NULL) < 0) {
		ret = -errno;
		fprintf(stderr, "attestfs-run: making / private: %s\n",
			strerror(-ret));
		return ret;
	}
	return 0;
}

/* ---- waiting: one loop for children, signals and deadlines ---- */

static void
run_reap(struct run *r)
{
	pid_t pid;
	int st;

	/* as pid 1 we also reap whatever the test orphaned */
	while ((pid = waitpid(-1, &st, WNOHANG)) > 0) {
		if (pid == r->r_daemon) {
			r->r_daemon = 0;
			r->r_daemon_status = st;
		} else if (pid == r->r_test) {
			r->r_test = 0;
			r->r_test_status = st;
		}
	}
}

/*
 * Until done(r) holds: 0; -ETIMEDOUT at deadline_ms (monotonic); -EINTR
 * when SIGINT, SIGTERM or SIGHUP came (r_signal). tick_ms > 0 re-checks
 * done() that often, for conditions no signal announces (the mount).
 */
static int
run_wait(struct run *r, int (*done)(struct run *), int64_t deadline_ms,
	 int tick_ms)
{
	struct timespec ts;
	int64_t left;
	int sig;

	for (;;) {
		run_reap(r);
		if (done(r))
			return 0;
		left = deadline_ms - now_mono_ms();
		if (left <= 0)
			return -ETIMEDOUT;
		if (tick_ms > 0 && left > tick_ms)
			left = tick_ms;
		ts.tv_sec = left / 1000;
		ts.tv_nsec = (left % 1000) * 1000000;
		sig = sigtimedwait(&r->r_sigs, NULL, &ts);
		if (sig < 0 || sig == SIGCHLD)
			continue;
		if (!r->r_signal)
			r->r_signal = sig;
		return -EINTR;
	}
}

static int
run_status_code(int st)
{
	if (WIFEXITED(st))
		return WEXITSTATUS(st);
	if (WIFSIGNALED(st))
		return 128 + WTERMSIG(st);
	return 1;
}

static int
run_daemon_gone(struct run *r)
{
	return !r->r_daemon;
}

static int
run_test_or_daemon_gone(struct run *r)
{
	return !r->r_test || !r->r_daemon;
}

static int
run_test_gone(struct run *r)
{
	return !r->r_test;
}

static int
run_mounted(struct run *r)
{
	struct stat mp, parent;

	if (!r->r_daemon)
		return 1;  /* it failed: its own message says why */
	return stat(r->r_mountpoint, &mp) == 0 &&
	       stat(r->r_work, &parent) == 0 && mp.st_dev != parent.st_dev;
}

/* ---- the daemon and the test ---- */

static void
run_redirect(int fd, const char *path, int flags)
{
	int f = open(path, flags, 0644);

	if (f < 0) {
		fprintf(stderr, "attestfs-run: %s: %s\n", path,
			strerror(errno));
		_exit(RUN_EXIT_SETUP);
	}
	if (f != fd) {
		dup2(f, fd);
		close(f);
	}
}

static int
run_spawn_daemon(struct run *r)
{
	struct run_opts *o = r->r_opts;
	struct strbuf opts;
	char *argv[6];
	pid_t pid;

	sb_init(&opts);
	sb_addf(&opts, "config=%s,state_dir=%s,global_timeout=%d%s",
		o->ro_machines, r->r_state,
		o->ro_global_timeout + RUN_DAEMON_TIMEOUT_MARGIN,
		o->ro_daemon_opts.len ? o->ro_daemon_opts.data : "");
	argv[0] = r->r_daemon_bin;
	argv[1] = "-f";
	argv[2] = "-o";
	argv[3] = opts.data;
	argv[4] = r->r_mountpoint;
	argv[5] = NULL;
	pid = fork();
	if (pid < 0) {
		fprintf(stderr, "attestfs-run: fork: %s\n", strerror(errno));
		sb_free(&opts);
		return -errno;
	}
	if (pid == 0) {
		/* keys typed at the terminal are for the test, not for it */
		setpgid(0, 0);
		run_redirect(STDIN_FILENO, "/dev/null", O_RDONLY);
		if (o->ro_log) {
			run_redirect(STDERR_FILENO, o->ro_log,
				     O_WRONLY | O_CREAT | O_TRUNC);
			dup2(STDERR_FILENO, STDOUT_FILENO);
		}
		sigprocmask(SIG_SETMASK, &r->r_old_sigs, NULL);
		execv(argv[0], argv);
		fprintf(stderr, "attestfs-run: %s: %s\n", argv[0],
			strerror(errno));
		_exit(RUN_EXIT_SETUP);
	}
	setpgid(pid, pid);
	r->r_daemon = pid;
	sb_free(&opts);
	return 0;
}

/* -i: the Python API importable, and a word on what there is. */
static void
run_interactive_env(struct run *r)
{
	const char *old = getenv("PYTHONPATH"), *path = getenv("PATH");
	char *shell = xasprintf("%s/attestfs-shell", r->r_bindir);

	if (access(shell, X_OK) == 0) {
		char *p = xasprintf("%s:%s", r->r_bindir, path ? path : "");

		setenv("PATH", p, 1);
		free(p);
	}
	free(shell);
	if (r->r_python) {
		char *pp = old && *old ? xasprintf("%s:%s", r->r_python, old) :
					 xstrdup(r->r_python);

		setenv("PYTHONPATH", pp, 1);
		free(pp);
	}
	setenv("ATTESTFS_LOG", r->r_opts->ro_log, 1);
	fprintf(stderr,
		"attestfs-run: interactive. The machines are in $VMS (%s), "
		"none booted:\n"
		"  echo start > $VMS/NAME/ctl      boot one (a command boots "
		"it too)\n"
		"  attestfs-shell NAME             a terminal in it\n"
		"  . $VMS/attest.sh                the shell API (succeed NAME "
		"CMD, ...)\n"
		"  python3 -m attestfs_nixos --repl   the NixOS driver's "
		"Python API%s\n"
		"The daemon's output: $ATTESTFS_LOG (%s). Leaving the shell "
		"halts them all.\n",
		r->r_mountpoint, r->r_python ? "" : " (not found here)",
		r->r_opts->ro_log);
}

/* The test in its own process group, in the terminal's foreground if
 * there is one, so that an interactive shell gets its keys and Ctrl-C. */
static int
run_spawn_test(struct run *r)
{
	char **argv = r->r_opts->ro_test_argv;
	sigset_t ttou;
	pid_t pid;

	pid = fork();
	if (pid < 0) {
		fprintf(stderr, "attestfs-run: fork: %s\n", strerror(errno));
		return -errno;
	}
	if (pid == 0) {
		setpgid(0, 0);
		sigemptyset(&ttou);
		sigaddset(&ttou, SIGTTOU);
		sigprocmask(SIG_BLOCK, &ttou, NULL);
		if (isatty(STDIN_FILENO))
			tcsetpgrp(STDIN_FILENO, getpid());
		setenv("VMS", r->r_mountpoint, 1);
		setenv("ATTESTFS_STATE", r->r_state, 1);
		if (r->r_opts->ro_interactive)
			run_interactive_env(r);
		sigprocmask(SIG_SETMASK, &r->r_old_sigs, NULL);
		execvp(argv[0], argv);
		fprintf(stderr, "attestfs-run: %s: %s\n", argv[0],
			strerror(errno));
		_exit(errno == ENOENT ? 127 : 126);
	}
	setpgid(pid, pid);
	r->r_test = pid;
	r->r_test_pgid = pid;
	return 0;
}

/* SIGTERM (or sig) to the test's process group; SIGKILL after a grace. */
static void
run_stop_test(struct run *r, int sig)
{
	if (!r->r_test)
		return;
	kill(-r->r_test_pgid, sig);
	while (run_wait(r, run_test_gone, now_mono_ms() + RUN_TEST_GRACE_MS,
			0) == -EINTR)
		;
	if (!r->r_test)
		return;
	kill(-r->r_test_pgid, SIGKILL);
	while (run_wait(r, run_test_gone, now_mono_ms() + RUN_TEST_GRACE_MS,
			0) == -EINTR)
		;
}

/* SIGTERM makes attestfs halt every machine and unmount. */
static void
run_stop_daemon(struct run *r)
{
	int64_t deadline = now_mono_ms() + RUN_DAEMON_STOP_MS;

	if (r->r_daemon) {
		kill(r->r_daemon, SIGTERM);
		while (run_wait(r, run_daemon_gone, deadline, 0) == -EINTR)
			;
	}
	if (r->r_daemon) {
		fprintf(stderr, "attestfs-run: attestfs did not stop within "
				"%d s, killing it\n", RUN_DAEMON_STOP_MS / 1000);
		kill(r->r_daemon, SIGKILL);
		while (run_wait(r, run_daemon_gone,
				now_mono_ms() + RUN_TEST_GRACE_MS, 0) == -EINTR)
			;
	}
	/* normally unmounted already; after a SIGKILL it is not */
	umount2(r->r_mountpoint, MNT_DETACH);
}

/* ---- pid 1 of the new namespace ---- */

static int
run_make_dirs(struct run *r)
{
	const char *tmp = getenv("TMPDIR");

	if (!tmp || tmp[0] != '/')
		tmp = "/tmp";
	r->r_work = xasprintf("%s/attestfs-run.XXXXXX", tmp);
	if (!mkdtemp(r->r_work)) {
		fprintf(stderr, "attestfs-run: mkdtemp %s: %s\n", r->r_work,
			strerror(errno));
		free(r->r_work);
		r->r_work = NULL;
		return -errno;
	}
	r->r_mountpoint = xasprintf("%s/vms", r->r_work);
	if (mkdir(r->r_mountpoint, 0700) < 0) {
		fprintf(stderr, "attestfs-run: mkdir %s: %s\n",
			r->r_mountpoint, strerror(errno));
		return -errno;
	}
	if (r->r_opts->ro_state_dir)
		r->r_state = xstrdup(r->r_opts->ro_state_dir);
	else
		r->r_state = xasprintf("%s/state", r->r_work);
	/* console lines would write over the interactive shell */
	if (r->r_opts->ro_interactive && !r->r_opts->ro_log)
		r->r_opts->ro_log = xasprintf("%s/attestfs.log", r->r_work);
	return 0;
}

static int
run_until_mounted(struct run *r)
{
	int ret;

	ret = run_wait(r, run_mounted, now_mono_ms() + RUN_MOUNT_TIMEOUT_MS,
		       RUN_MOUNT_POLL_MS);
	if (ret == -EINTR)
		return 128 + r->r_signal;
	if (ret == -ETIMEDOUT) {
		fprintf(stderr, "attestfs-run: attestfs did not mount within "
				"%d s\n", RUN_MOUNT_TIMEOUT_MS / 1000);
		return RUN_EXIT_SETUP;
	}
	if (!r->r_daemon) {
		fprintf(stderr, "attestfs-run: attestfs exited with status %d "
				"before it mounted\n",
			run_status_code(r->r_daemon_status));
		return RUN_EXIT_SETUP;
	}
	return 0;
}

static int
run_test(struct run *r, int64_t deadline_ms)
{
	int ret, code;

	if (run_spawn_test(r) < 0)
		return RUN_EXIT_SETUP;
	ret = run_wait(r, run_test_or_daemon_gone, deadline_ms, 0);
	if (ret == 0 && !r->r_test)
		return run_status_code(r->r_test_status);
	if (ret == 0) {
		fprintf(stderr, "attestfs-run: attestfs exited with status %d "
				"while the test ran; stopping the test\n",
			run_status_code(r->r_daemon_status));
		run_stop_test(r, SIGTERM);
		code = run_status_code(r->r_test_status);
		return code ? code : 1;
	}
	if (ret == -ETIMEDOUT) {
		fprintf(stderr, "attestfs-run: global timeout: the test ran "
				"longer than %d s, stopping it\n",
			r->r_opts->ro_global_timeout);
		run_stop_test(r, SIGTERM);
		return RUN_EXIT_TIMEOUT;
	}
	fprintf(stderr, "attestfs-run: %s, stopping the test\n",
		strsignal(r->r_signal));
	run_stop_test(r, r->r_signal);
	return 128 + r->r_signal;
}

static int
run_init(struct run *r)
{
	int64_t deadline = now_mono_ms() +
			   (int64_t)r->r_opts->ro_global_timeout * 1000;
	sigset_t ttou;
	int code;

	/* our own pids in ps and /proc; harmless where proc cannot be had */
	if (mount("proc", "/proc", "proc", MS_NOSUID | MS_NODEV | MS_NOEXEC,
		  NULL) < 0)
		fprintf(stderr, "attestfs-run: warning: mounting /proc: %s\n",
			strerror(errno));
	if (run_make_dirs(r) < 0) {
		code = RUN_EXIT_SETUP;
		goto out;
	}
	if (run_spawn_daemon(r) < 0) {
		code = RUN_EXIT_SETUP;
		goto out;
	}
	code = run_until_mounted(r);
	if (!code)
		code = run_test(r, deadline);
	/* the terminal back from the test's group; leftovers of it go */
	sigemptyset(&ttou);
	sigaddset(&ttou, SIGTTOU);
	sigprocmask(SIG_BLOCK, &ttou, NULL);
	if (isatty(STDIN_FILENO))
		tcsetpgrp(STDIN_FILENO, getpgrp());
	if (r->r_test)
		run_stop_test(r, SIGKILL);
	else if (r->r_test_pgid)
		kill(-r->r_test_pgid, SIGKILL);
	run_stop_daemon(r);
out:
	if (r->r_work)
		remove_tree(r->r_work);
	return code;
}

/* ---- the caller's side: wait for pid 1, pass signals on ---- */

static int
run_outer_wait(pid_t child, const sigset_t *sigs)
{
	siginfo_t si;
	pid_t pid;
	int sig, st;

	for (;;) {
		pid = waitpid(child, &st, WNOHANG);
		if (pid == child)
			return run_status_code(st);
		sig = sigwaitinfo(sigs, &si);
		if (sig > 0 && sig != SIGCHLD)
			kill(child, sig);
	}
}

int
main(int argc, char **argv)
{
	struct run_opts o;
	struct run r;
	pid_t child;

	memset(&o, 0, sizeof(o));
	memset(&r, 0, sizeof(r));
	r.r_opts = &o;
	if (run_parse_args(argc, argv, &o) < 0)
		return RUN_EXIT_USAGE;
	if (run_check_fuse() < 0 || run_find_daemon(&r) < 0)
		return RUN_EXIT_SETUP;

	sigemptyset(&r.r_sigs);
	sigaddset(&r.r_sigs, SIGCHLD);
	sigaddset(&r.r_sigs, SIGINT);
	sigaddset(&r.r_sigs, SIGTERM);
	sigaddset(&r.r_sigs, SIGHUP);
	sigprocmask(SIG_BLOCK, &r.r_sigs, &r.r_old_sigs);

	if (run_unshare() < 0)
		return RUN_EXIT_SETUP;
	fflush(stderr);
	child = fork();
	if (child < 0) {
		fprintf(stderr, "attestfs-run: fork: %s\n", strerror(errno));
		return RUN_EXIT_SETUP;
	}
	if (child == 0)
		_exit(run_init(&r));
	return run_outer_wait(child, &r.r_sigs);
}
