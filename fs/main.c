/*
 * attestfs: mount a tree in which every directory is a virtual machine.
 *
 *	$ attestfs -f -o config=machines.json /vms
 *	attestfs: mounted 2 machines at /vms (state in /tmp/attestfs.Xb3kQ1)
 *	^C                      # or SIGTERM/SIGHUP: every VM halted, unmounted
 *
 * Order matters here: the config is checked before anything is mounted;
 * the daemon forks before vmset_create, because machine/ starts threads and
 * VMM children that must belong to the process that stays; and the mount
 * appears only once the machines exist.
 */
#include <errno.h>
#include <limits.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>
#include <fcntl.h>

#include "common/bounded.h"
#include "common/util.h"
#include "fs/fs.h"
#include "fs/mountpoint.h"
#include "machine/config.h"
#include "machine/machine.h"

#define DEFAULT_TIMEOUT 900
#define DEFAULT_GLOBAL_TIMEOUT 3600
#define SOCKET_DIR_WARN 64  /* sun_path holds 108 bytes, files go below */

struct options {
	char *config;
	char *state_dir;
	char *ram_dir;
	int no_spares;
	int host_access;
	char *accel;
	char *timeout;
	char *global_timeout;
	int keep_state;
	int allow_other;
	char *log_max;
};

enum { KEY_ALLOW_OTHER };

#define OPT(t, field) { t, offsetof(struct options, field), 1 }

static const struct fuse_opt option_spec[] = {
	OPT("config=%s", config),
	OPT("state_dir=%s", state_dir),
	OPT("ram_dir=%s", ram_dir),
	OPT("no_spares", no_spares),
	OPT("host_access", host_access),
	OPT("accel=%s", accel),
	OPT("timeout=%s", timeout),
	OPT("global_timeout=%s", global_timeout),
	OPT("keep_state", keep_state),
	OPT("log_max=%s", log_max),
	FUSE_OPT_KEY("allow_other", KEY_ALLOW_OTHER),
	FUSE_OPT_END,
};

static int
option_proc(void *data, const char *arg, int key, struct fuse_args *outargs)
{
	struct options *o = data;

	if (key == KEY_ALLOW_OTHER)
		o->allow_other = 1;
	return 1;  /* everything else goes on to libfuse */
}

static void
usage(const char *prog)
{
	printf("usage: %s [-f] [-d] -o config=FILE[,OPTIONS] MOUNTPOINT\n"
	       "\n"
	       "Mounts a file tree in which every directory is a virtual "
	       "machine.\n"
	       "\n"
	       "attestfs options:\n"
	       "    -o config=FILE          the machines, a JSON file "
	       "(required)\n"
	       "    -o timeout=SECS         deadline of each wait and command "
	       "(default %d)\n"
	       "    -o global_timeout=SECS  halt everything when the whole run "
	       "takes longer\n"
	       "                            (default %d)\n"
	       "    -o state_dir=DIR        sockets, logs and disk overlays "
	       "(default: a new\n"
	       "                            /tmp/attestfs.XXXXXX, removed at "
	       "exit)\n"
	       "    -o ram_dir=DIR          guest RAM and snapshot RAM files "
	       "(default /dev/shm,\n"
	       "                            else state_dir), removed at exit\n"
	       "    -o no_spares            no paused VMM waiting to restore "
	       "each machine's\n"
	       "                            last snapshot (saves a process and "
	       "a RAM copy)\n"
	       "    -o accel=auto|kvm|tcg   how guests run (default auto: KVM "
	       "once a probe\n"
	       "                            guest booted with it)\n"
	       "    -o host_access          full host access: qmp takes every "
	       "command, also\n"
	       "                            those that run host programs or "
	       "write host files\n"
	       "    -o allow_other          let other users in (implies "
	       "default_permissions)\n"
	       "    -o keep_state           keep the default state_dir at "
	       "exit\n"
	       "    -o log_max=BYTES[K|M|G] each machine's console.log and log, "
	       "and events,\n"
	       "                            rotate once to NAME.1 past it "
	       "(default 16M,\n"
	       "                            at least 64K)\n"
	       "    -f                      stay in the foreground, print "
	       "console lines\n"
	       "    -d                      print every FUSE request "
	       "(implies -f)\n"
	       "    -h, --help              this text\n"
	       "\n",
	       prog, DEFAULT_TIMEOUT, DEFAULT_GLOBAL_TIMEOUT);
	fuse_cmdline_help();
	fuse_lowlevel_help();
}

/* BYTES with an optional K, M or G; at least ROTFILE_MIN. */
static int
parse_size(const char *name, const char *s, uint64_t *out)
{
	unsigned long long v;
	char *end;

	errno = 0;
	v = strtoull(s, &end, 10);
	if (*end == 'K' || *end == 'k')
		v <<= 10, end++;
	else if (*end == 'M' || *end == 'm')
		v <<= 20, end++;
	else if (*end == 'G' || *end == 'g')
		v <<= 30, end++;
	if (errno || end == s || *end || v < ROTFILE_MIN || v > (1ull << 40)) {
		fprintf(stderr, "attestfs: %s=%s: a size from 64K to 1024G\n",
			name, s);
		return -EINVAL;
	}
	*out = v;
	return 0;
}

static int
parse_seconds(const char *name, const char *s, int *out)
{
	char *end;
	long v;

	errno = 0;
	v = strtol(s, &end, 10);
	if (errno || end == s || *end || v <= 0 || v > INT_MAX) {
		fprintf(stderr, "attestfs: %s=%s: not a number of seconds\n",
			name, s);
		return -1;
	}
	*out = (int)v;
	return 0;
}

/* ---- daemon ---- */

static int ready_fd = -1;  /* the waiting parent's pipe, in the daemon */

/*
 * Fork; the parent waits until the child says it is mounted (or failed) and
 * exits with its status, so `attestfs ... && test -e /vms/a/ctl` holds, and
 * errors before that still reach the terminal.
 */
static int
daemonize(void)
{
	int fds[2];
	pid_t pid;
	ssize_t n;
	char status = 1;

	if (pipe(fds) < 0) {
		perror("attestfs: pipe");
		return -1;
	}
	fflush(stdout);
	fflush(stderr);
	pid = fork();
	if (pid < 0) {
		perror("attestfs: fork");
		return -1;
	}
	if (pid > 0) {
		close(fds[1]);
		do
			n = read(fds[0], &status, 1);
		while (n < 0 && errno == EINTR);
		_exit(n == 1 ? status : 1);
	}
	close(fds[0]);
	setsid();
	ready_fd = fds[1];
	return 0;
}

static void
daemon_ready(int status)
{
	char c = (char)status;
	int fd;

	if (ready_fd < 0)
		return;
	if (!status) {
		fd = open("/dev/null", O_RDWR);
		if (fd >= 0) {
			dup2(fd, 0);
			dup2(fd, 1);
			dup2(fd, 2);
			if (fd > 2)
				close(fd);
		}
		if (chdir("/") < 0) {
			/* nothing to tell anyone any more */
		}
	}
	if (write(ready_fd, &c, 1) < 0) {
		/* the parent is gone; carry on */
	}
	close(ready_fd);
	ready_fd = -1;
}

/* ---- signals ---- */

/*
 * SIGTERM, SIGINT and SIGHUP are blocked in every thread and taken by one
 * thread with sigwait(). libfuse's own handlers would set the exit flag from
 * whichever thread the kernel picks, and the multi-threaded loop notices it
 * only when its main thread's sem_wait() is interrupted or a request comes:
 * so this thread sets the flag and then keeps poking the loop's thread with
 * SIGUSR1 (a no-op handler without SA_RESTART) until the loop returned.
 */
struct sigwaiter {
	pthread_t thread;
	pthread_t loop_thread;
	sigset_t set;
	struct fuse_session *se;
	atomic_int loop_done;
	atomic_int signo;
	int running;
};

static void
wake_handler(int sig)
{
	(void)sig;
}

static void *
sigwaiter_main(void *arg)
{
	struct sigwaiter *w = arg;
	const struct timespec poke = { 0, 20 * 1000 * 1000 };
	int sig;

	while (sigwait(&w->set, &sig) != 0)
		;
	if (atomic_load(&w->loop_done))
		return NULL;
	atomic_store(&w->signo, sig);
	fuse_session_exit(w->se);
	while (!atomic_load(&w->loop_done)) {
		pthread_kill(w->loop_thread, SIGUSR1);
		nanosleep(&poke, NULL);
	}
	return NULL;
}

static void
block_signals(sigset_t *set)
{
	sigemptyset(set);
	sigaddset(set, SIGTERM);
	sigaddset(set, SIGINT);
	sigaddset(set, SIGHUP);
	pthread_sigmask(SIG_BLOCK, set, NULL);
}

static int
sigwaiter_start(struct sigwaiter *w, struct fuse_session *se)
{
	struct sigaction sa;

	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = wake_handler;
	sigemptyset(&sa.sa_mask);
	sa.sa_flags = 0;  /* no SA_RESTART: sem_wait must return */
	sigaction(SIGUSR1, &sa, NULL);
	w->se = se;
	w->loop_thread = pthread_self();
	atomic_store(&w->loop_done, 0);
	atomic_store(&w->signo, 0);
	errno = pthread_create(&w->thread, NULL, sigwaiter_main, w);
	if (errno) {
		perror("attestfs: pthread_create");
		return -1;
	}
	w->running = 1;
	return 0;
}

/* Right after the loop: no more pokes, which would interrupt the system
 * calls of vmset_destroy. Signals from now on stay pending. */
static void
sigwaiter_stop(struct sigwaiter *w)
{
	if (!w->running)
		return;
	w->running = 0;
	atomic_store(&w->loop_done, 1);
	pthread_kill(w->thread, SIGTERM);  /* ends its sigwait if it waits */
	pthread_join(w->thread, NULL);
}

/* ---- main ---- */

static size_t
count_machines(struct vmset *vms)
{
	size_t n = 0;

	while (vmset_machine(vms, n))
		n++;
	return n;
}

int
main(int argc, char *argv[])
{
	struct fuse_args args = FUSE_ARGS_INIT(argc, argv);
	struct options o;
	struct fuse_cmdline_opts copts;
	struct fuse_loop_config loop_config;
	struct attest_config cfg;
	struct vmset_options vopt;
	uint64_t log_max = 0;
	struct vmset *vms = NULL;
	struct fs_mount *mnt = NULL;
	struct fuse_session *se = NULL;
	struct sigwaiter waiter = { .running = 0 };
	struct aerr err;
	sigset_t sigs;
	char state_tmpl[] = "/tmp/attestfs.XXXXXX";
	char *state_dir = NULL;
	int own_state = 0, timeout = 0, global_timeout = DEFAULT_GLOBAL_TIMEOUT;
	int ret = 1, loop_ret;

	memset(&o, 0, sizeof(o));
	memset(&copts, 0, sizeof(copts));
	memset(&cfg, 0, sizeof(cfg));
	memset(&err, 0, sizeof(err));
	signal(SIGPIPE, SIG_IGN);

	if (fuse_opt_parse(&args, &o, option_spec, option_proc) < 0)
		goto out_args;
	if (fuse_parse_cmdline(&args, &copts) != 0)
		goto out_args;
	if (copts.show_help) {
		usage(argv[0]);
		ret = 0;
		goto out_args;
	}
	if (copts.show_version) {
		printf("attestfs, FUSE library version %s\n",
		       fuse_pkgversion());
		fuse_lowlevel_version();
		ret = 0;
		goto out_args;
	}
	if (!copts.mountpoint) {
		fprintf(stderr, "attestfs: no mount point\n"
				"usage: %s [-f] [-d] -o config=FILE[,OPTIONS] "
				"MOUNTPOINT (see -h)\n", argv[0]);
		goto out_args;
	}
	if (!o.config) {
		fprintf(stderr, "attestfs: -o config=FILE is required\n");
		goto out_args;
	}
	if (o.timeout && parse_seconds("timeout", o.timeout, &timeout) < 0)
		goto out_args;
	if (o.global_timeout && parse_seconds("global_timeout",
					      o.global_timeout,
					      &global_timeout) < 0)
		goto out_args;
	if (o.log_max && parse_size("log_max", o.log_max, &log_max) < 0)
		goto out_args;
	if (o.accel && strcmp(o.accel, "auto") && strcmp(o.accel, "kvm") &&
	    strcmp(o.accel, "tcg")) {
		fprintf(stderr, "attestfs: accel=%s: auto, kvm or tcg\n",
			o.accel);
		goto out_args;
	}
	if (o.allow_other &&
	    fuse_opt_add_arg(&args, "-odefault_permissions") < 0)
		goto out_args;
	if (o.allow_other && o.host_access)
		fprintf(stderr, "attestfs: warning: host_access with allow_other: "
				"every user who can write a qmp file runs host "
				"programs as this daemon's user\n");

	if (config_load(o.config, &cfg, &err) < 0) {
		fprintf(stderr, "attestfs: %s\n", err.msg);
		goto out_args;
	}
	if (!timeout)
		timeout = cfg.timeout > 0 ? cfg.timeout : DEFAULT_TIMEOUT;

	if (o.state_dir) {
		int r = mkdir_p(o.state_dir, 0700);

		if (r < 0) {
			fprintf(stderr, "attestfs: state_dir=%s: %s\n",
				o.state_dir, strerror(-r));
			goto out_config;
		}
		state_dir = realpath(o.state_dir, NULL);
		if (!state_dir) {
			fprintf(stderr, "attestfs: state_dir=%s: %s\n",
				o.state_dir, strerror(errno));
			goto out_config;
		}
	} else {
		if (!mkdtemp(state_tmpl)) {
			fprintf(stderr, "attestfs: mkdtemp %s: %s\n",
				state_tmpl, strerror(errno));
			goto out_config;
		}
		state_dir = xstrdup(state_tmpl);
		own_state = 1;
	}
	if (strlen(state_dir) > SOCKET_DIR_WARN)
		fprintf(stderr, "attestfs: warning: state_dir %s is long; "
				"unix socket paths below it must stay under "
				"108 bytes\n", state_dir);

	/* before daemonizing: what it did must reach the terminal */
	if (fs_reclaim_dead_mount(copts.mountpoint) < 0)
		goto out_state;

	if (!copts.foreground && daemonize() < 0)
		goto out_state;

	/* every thread from here on inherits the blocked set */
	block_signals(&sigs);
	waiter.set = sigs;

	memset(&vopt, 0, sizeof(vopt));
	vopt.state_dir = state_dir;
	vopt.timeout = timeout;
	vopt.global_timeout = global_timeout;
	vopt.accel = o.accel ? o.accel : "auto";
	vopt.foreground = copts.foreground;
	vopt.keep_state = o.keep_state;
	vopt.ram_dir = o.ram_dir;
	vopt.log_max = log_max;
	vopt.no_spares = o.no_spares;
	vopt.host_access = o.host_access;
	vopt.mountpoint = copts.mountpoint;
	if (vmset_create(&vopt, &cfg, &vms, &err) < 0) {
		fprintf(stderr, "attestfs: %s\n", err.msg);
		goto out_state;
	}

	mnt = fs_mount_new(vms);
	se = fuse_session_new(&args, &fs_lowlevel_ops, sizeof(fs_lowlevel_ops),
			      mnt);
	if (!se)
		goto out_vmset;
	if (sigwaiter_start(&waiter, se) < 0)
		goto out_session;
	if (fuse_session_mount(se, copts.mountpoint) != 0)
		goto out_waiter;

	if (copts.foreground)
		fprintf(stderr, "attestfs: mounted %zu machines at %s (state "
				"in %s)\n", count_machines(vms),
			copts.mountpoint, state_dir);
	daemon_ready(0);

	memset(&loop_config, 0, sizeof(loop_config));
	loop_config.clone_fd = copts.clone_fd;
	/* "unlimited" (-1) upsets the v1 config's conversion in 3.14 */
	loop_config.max_idle_threads = copts.max_idle_threads == UINT_MAX ?
						10 : copts.max_idle_threads;
	if (copts.singlethread)
		loop_ret = fuse_session_loop(se);
	else
		loop_ret = fuse_session_loop_mt(se, &loop_config);
	sigwaiter_stop(&waiter);
	ret = 0;
	if (loop_ret < 0) {
		fprintf(stderr, "attestfs: the FUSE loop failed: %s\n",
			strerror(-loop_ret));
		ret = 1;
	}
	if (atomic_load(&waiter.signo) && copts.foreground)
		fprintf(stderr, "attestfs: %s, halting every machine\n",
			strsignal(atomic_load(&waiter.signo)));

	fs_mount_shutdown(mnt);
	vmset_destroy(vms);
	vms = NULL;
	fuse_session_unmount(se);
out_waiter:
	sigwaiter_stop(&waiter);
out_session:
	fuse_session_destroy(se);
out_vmset:
	if (vms)
		vmset_destroy(vms);
	fs_mount_free(mnt);
out_state:
	daemon_ready(1);
	if (own_state && !o.keep_state)
		remove_tree(state_dir);
	free(state_dir);
out_config:
	config_free(&cfg);
out_args:
	free(copts.mountpoint);
	free(o.config);
	free(o.state_dir);
	free(o.ram_dir);
	free(o.accel);
	free(o.timeout);
	free(o.global_timeout);
	fuse_opt_free_args(&args);
	return ret;
}
