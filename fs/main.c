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
	       "    -V, --version           attestfs's version (and FUSE's)\n"
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

/* Everything main() sets up, so each step can be undone in clean_up. */
struct run {
	struct fuse_args args;
	struct options o;
	struct fuse_cmdline_opts copts;
	struct attest_config cfg;
	int have_cfg;
	uint64_t log_max;
	int timeout;
	int global_timeout;
	char *state_dir;
	int own_state;           /* a new /tmp/attestfs.XXXXXX */
	struct vmset *vms;
	struct fs_mount *mnt;
	struct fuse_session *se;
	struct sigwaiter waiter;
};

/* The attestfs options' values; -1 with the reason on stderr. */
static int
check_options(struct run *r)
{
	struct options *o = &r->o;

	if (!o->config) {
		fprintf(stderr, "attestfs: -o config=FILE is required\n");
		return -1;
	}
	if (o->timeout && parse_seconds("timeout", o->timeout,
					&r->timeout) < 0)
		return -1;
	if (o->global_timeout && parse_seconds("global_timeout",
					       o->global_timeout,
					       &r->global_timeout) < 0)
		return -1;
	if (o->log_max && parse_size("log_max", o->log_max, &r->log_max) < 0)
		return -1;
	if (o->accel && strcmp(o->accel, "auto") && strcmp(o->accel, "kvm") &&
	    strcmp(o->accel, "tcg")) {
		fprintf(stderr, "attestfs: accel=%s: auto, kvm or tcg\n",
			o->accel);
		return -1;
	}
	if (o->allow_other &&
	    fuse_opt_add_arg(&r->args, "-odefault_permissions") < 0)
		return -1;
	if (o->allow_other && o->host_access)
		fprintf(stderr, "attestfs: warning: host_access with allow_other: "
				"every user who can write a qmp file runs host "
				"programs as this daemon's user\n");
	return 0;
}

/* 0: go on; 1: done (help, version); -1: bad command line. */
static int
parse_options(struct run *r, const char *prog)
{
	if (fuse_opt_parse(&r->args, &r->o, option_spec, option_proc) < 0)
		return -1;
	if (fuse_parse_cmdline(&r->args, &r->copts) != 0)
		return -1;
	if (r->copts.show_help) {
		usage(prog);
		return 1;
	}
	if (r->copts.show_version) {
		printf("attestfs %s (FUSE library version %s)\n",
		       ATTESTFS_VERSION, fuse_pkgversion());
		fflush(stdout);  /* before fusermount3 -V prints its own */
		fuse_lowlevel_version();
		return 1;
	}
	if (!r->copts.mountpoint) {
		fprintf(stderr, "attestfs: no mount point\n"
				"usage: %s [-f] [-d] -o config=FILE[,OPTIONS] "
				"MOUNTPOINT (see -h)\n", prog);
		return -1;
	}
	return check_options(r);
}

/* The config, and the state directory (made here if not given). */
static int
load_config(struct run *r)
{
	struct aerr err;
	int ret;

	memset(&err, 0, sizeof(err));
	if (config_load(r->o.config, &r->cfg, &err) < 0) {
		fprintf(stderr, "attestfs: %s\n", err.msg);
		return -1;
	}
	r->have_cfg = 1;
	if (!r->timeout)
		r->timeout = r->cfg.timeout > 0 ? r->cfg.timeout :
						  DEFAULT_TIMEOUT;
	if (!r->o.state_dir) {
		char tmpl[] = "/tmp/attestfs.XXXXXX";

		if (!mkdtemp(tmpl)) {
			fprintf(stderr, "attestfs: mkdtemp %s: %s\n", tmpl,
				strerror(errno));
			return -1;
		}
		r->state_dir = xstrdup(tmpl);
		r->own_state = 1;
		return 0;
	}
	ret = mkdir_p(r->o.state_dir, 0700);
	r->state_dir = ret < 0 ? NULL : realpath(r->o.state_dir, NULL);
	if (!r->state_dir) {
		fprintf(stderr, "attestfs: state_dir=%s: %s\n", r->o.state_dir,
			strerror(ret < 0 ? -ret : errno));
		return -1;
	}
	return 0;
}

/* Fork into the background (unless -f), then create the machines. */
static int
start_machines(struct run *r)
{
	struct vmset_options vopt;
	struct aerr err;
	sigset_t sigs;

	if (strlen(r->state_dir) > SOCKET_DIR_WARN)
		fprintf(stderr, "attestfs: warning: state_dir %s is long; "
				"unix socket paths below it must stay under "
				"108 bytes\n", r->state_dir);
	/* before daemonizing: what it did must reach the terminal */
	if (fs_reclaim_dead_mount(r->copts.mountpoint) < 0)
		return -1;
	if (!r->copts.foreground && daemonize() < 0)
		return -1;
	/* every thread from here on inherits the blocked set */
	block_signals(&sigs);
	r->waiter.set = sigs;

	memset(&vopt, 0, sizeof(vopt));
	memset(&err, 0, sizeof(err));
	vopt.state_dir = r->state_dir;
	vopt.timeout = r->timeout;
	vopt.global_timeout = r->global_timeout;
	vopt.accel = r->o.accel ? r->o.accel : "auto";
	vopt.foreground = r->copts.foreground;
	vopt.keep_state = r->o.keep_state;
	vopt.ram_dir = r->o.ram_dir;
	vopt.log_max = r->log_max;
	vopt.no_spares = r->o.no_spares;
	vopt.host_access = r->o.host_access;
	vopt.mountpoint = r->copts.mountpoint;
	if (vmset_create(&vopt, &r->cfg, &r->vms, &err) < 0) {
		fprintf(stderr, "attestfs: %s\n", err.msg);
		return -1;
	}
	return 0;
}

/* The mount appears only once the machines exist. */
static int
mount_tree(struct run *r)
{
	r->mnt = fs_mount_new(r->vms);
	r->se = fuse_session_new(&r->args, &fs_lowlevel_ops,
				 sizeof(fs_lowlevel_ops), r->mnt);
	if (!r->se)
		return -1;
	if (sigwaiter_start(&r->waiter, r->se) < 0)
		return -1;
	if (fuse_session_mount(r->se, r->copts.mountpoint) != 0)
		return -1;
	if (r->copts.foreground)
		fprintf(stderr, "attestfs: mounted %zu machines at %s (state "
				"in %s)\n", count_machines(r->vms),
			r->copts.mountpoint, r->state_dir);
	daemon_ready(0);
	return 0;
}

/* The FUSE loop until a signal or unmount; then every machine halts. */
static int
serve(struct run *r)
{
	struct fuse_loop_config loop_config;
	int loop_ret, ret = 0;

	memset(&loop_config, 0, sizeof(loop_config));
	loop_config.clone_fd = r->copts.clone_fd;
	/* "unlimited" (-1) upsets the v1 config's conversion in 3.14 */
	loop_config.max_idle_threads = r->copts.max_idle_threads == UINT_MAX ?
						10 : r->copts.max_idle_threads;
	if (r->copts.singlethread)
		loop_ret = fuse_session_loop(r->se);
	else
		loop_ret = fuse_session_loop_mt(r->se, &loop_config);
	sigwaiter_stop(&r->waiter);
	if (loop_ret < 0) {
		fprintf(stderr, "attestfs: the FUSE loop failed: %s\n",
			strerror(-loop_ret));
		ret = 1;
	}
	if (atomic_load(&r->waiter.signo) && r->copts.foreground)
		fprintf(stderr, "attestfs: %s, halting every machine\n",
			strsignal(atomic_load(&r->waiter.signo)));

	fs_mount_shutdown(r->mnt);
	vmset_destroy(r->vms);
	r->vms = NULL;
	fuse_session_unmount(r->se);
	return ret;
}

/* Undo what was set up, in reverse order; safe after any step failed. */
static void
clean_up(struct run *r)
{
	sigwaiter_stop(&r->waiter);
	if (r->se)
		fuse_session_destroy(r->se);
	if (r->vms)
		vmset_destroy(r->vms);
	fs_mount_free(r->mnt);
	daemon_ready(1);  /* a failure before the mount: the parent exits 1 */
	if (r->state_dir) {
		if (r->own_state && !r->o.keep_state)
			remove_tree(r->state_dir);
		free(r->state_dir);
	}
	if (r->have_cfg)
		config_free(&r->cfg);
	free(r->copts.mountpoint);
	free(r->o.config);
	free(r->o.state_dir);
	free(r->o.ram_dir);
	free(r->o.accel);
	free(r->o.timeout);
	free(r->o.global_timeout);
	fuse_opt_free_args(&r->args);
}

int
main(int argc, char *argv[])
{
	struct run r;
	int ret;

	memset(&r, 0, sizeof(r));
	r.args = (struct fuse_args)FUSE_ARGS_INIT(argc, argv);
	r.global_timeout = DEFAULT_GLOBAL_TIMEOUT;
	signal(SIGPIPE, SIG_IGN);

	ret = parse_options(&r, argv[0]);
	if (ret > 0)
		ret = 0;  /* help or version: done */
	else if (ret == 0 && load_config(&r) == 0 &&
		 start_machines(&r) == 0 && mount_tree(&r) == 0)
		ret = serve(&r);
	else
		ret = 1;
	clean_up(&r);
	return ret;
}
