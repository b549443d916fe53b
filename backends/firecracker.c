/*
 * The Firecracker backend. launch() makes the process's launch directory
 * (its drives, fresh writable copies; its vsock socket), connects to the
 * console socket machine/ listens on, then a thread per machine forks
 * `firecracker --api-sock STATE/firecracker.sock --id NAME` there (the
 * console is its stdin and stdout: the serial port) and waits for it;
 * launch() configures the VM over the API (fc_api.c) and starts it, or
 * loads a snapshot into it, and hands the vsock socket to the dialer,
 * whose connections become the guest's shells.
 *
 * Firecracker has no event stream: the process's exit is the only event
 * (a guest reset or power-off ends it), reported once by the thread.
 */
#include "backends/firecracker.h"

#include <errno.h>
#include <fcntl.h>
#include <linux/fs.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/pidfd.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "backends/tapnet.h"
#include "backends/vsock.h"
#include "common/proc.h"
#include "common/sock.h"

struct backend {
	/* Guards what the forking thread and the callers share: events and
	 * owner, spawned .. quiet. Never held across an API call or a
	 * callback. launch() sets the rest before the thread starts, and
	 * machine/ calls one operation at a time. */
	pthread_mutex_t lock;
	pthread_cond_t cond;         /* CLOCK_MONOTONIC; on every change */

	char *name;
	char *state_dir;
	char *run_dir;               /* this process's launch directory */
	char *api_path;
	char *pid_path;
	char *log_path;              /* its stderr (appended) */
	char *vmm_log;               /* its --log-path, one per launch */
	char *vsock_path;            /* absolute: run_dir/v.sock */
	char **argv;
	struct fc_keys keys;
	const struct backend_events *events;
	void *owner;
	size_t n_shells;
	size_t n_disks;
	struct backend_nic *nics;    /* the VLAN NICs: TAPs in tapnet */
	size_t n_nics;
	struct tapnet *tapnet;       /* machine/'s; NULL without NICs */
	int console_fd;              /* for the child; closed once it forked */
	off_t log_offset;

	pthread_t thread;
	bool thread_started;
	bool spawned;
	int spawn_errno;
	pid_t pid;
	int pidfd;
	bool dead;                   /* exited, not reaped yet */
	bool exited;                 /* reaped: status valid */
	int status;
	bool launch_done;
	bool launched;
	bool quiet;                  /* no more callbacks */

	struct rest_client *api;
	char *version;
	char *incoming;              /* state to load (deferred), or NULL */
	char *incoming_mem;
	bool paused;
	struct vsock_dialer *dialer;
};

/* ---- the process --------------------------------------------------- */

static void
fc_log(struct backend *b, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

static void
fc_log(struct backend *b, const char *fmt, ...)
{
	const struct backend_events *ev;
	struct strbuf sb;
	void *owner;
	va_list ap;

	pthread_mutex_lock(&b->lock);
	ev = b->quiet ? NULL : b->events;
	owner = b->owner;
	pthread_mutex_unlock(&b->lock);
	if (!ev || !ev->log)
		return;
	sb_init(&sb);
	va_start(ap, fmt);
	sb_vaddf(&sb, fmt, ap);
	va_end(ap);
	ev->log(owner, sb.data);
	sb_free(&sb);
}

/* In the child: the console on 0 and 1, the log on 2. Async-signal-safe. */
static void __attribute__((noreturn))
fc_child(struct backend *b, pid_t parent, int log_fd)
{
	int con, lg;

	proc_child_init(parent);
	setsid(); /* terminal Ctrl-C goes to the daemon only */
	if (chdir(b->run_dir) < 0)
		_exit(127);
	con = b->console_fd >= 0 ? fcntl(b->console_fd, F_DUPFD, 10) :
				   open("/dev/null", O_RDWR);
	lg = log_fd >= 0 ? fcntl(log_fd, F_DUPFD, 10) :
			   open("/dev/null", O_WRONLY);
	if (con < 0 || lg < 0)
		_exit(127);
	/* The TAPs are in the mount's network namespace. */
	if (b->n_nics && tapnet_enter(b->tapnet) < 0)
		_exit(126);
	dup2(con, 0);
	dup2(con, 1);
	dup2(lg, 2);
	proc_close_from(3);
	execvp(b->argv[0], b->argv);
	dprintf(2, "attestfs: cannot execute %s: %s\n", b->argv[0],
		strerror(errno));
	_exit(127);
}

static void *
fc_thread_main(void *arg)
{
	struct backend *b = arg;
	pid_t parent = getpid(), pid;
	const struct backend_events *ev;
	void *owner;
	siginfo_t si;
	sigset_t all;
	bool notify;
	int status = 0, log_fd;

	sigfillset(&all);
	pthread_sigmask(SIG_BLOCK, &all, NULL);
	log_fd = open(b->log_path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC,
		      0600);
	pthread_mutex_lock(&b->lock);
	pid = fork();
	if (pid == 0)
		fc_child(b, parent, log_fd);
	b->spawned = true;
	b->pid = pid;
	b->spawn_errno = pid < 0 ? errno : 0;
	if (pid > 0)
		b->pidfd = pidfd_open(pid, 0);
	pthread_cond_broadcast(&b->cond);
	pthread_mutex_unlock(&b->lock);
	if (log_fd >= 0)
		close(log_fd);
	if (pid < 0)
		return NULL;

	/* Not reaped while we signal it: the pid cannot be reused. */
	while (waitid(P_PID, pid, &si, WEXITED | WNOWAIT) < 0 && errno == EINTR)
		;
	pthread_mutex_lock(&b->lock);
	b->dead = true;
	pthread_mutex_unlock(&b->lock);
	kill(-pid, SIGKILL); /* whatever it started in its session */
	while (waitpid(pid, &status, 0) < 0 && errno == EINTR)
		;
	pthread_mutex_lock(&b->lock);
	b->exited = true;
	b->status = status;
	pthread_cond_broadcast(&b->cond);
	while (!b->launch_done)
		pthread_cond_wait(&b->cond, &b->lock);
	notify = b->launched && !b->quiet;
	ev = b->events;
	owner = b->owner;
	pthread_mutex_unlock(&b->lock);
	if (notify && ev && ev->exited)
		ev->exited(owner, status);
	return NULL;
}

static void
fc_signal(struct backend *b, int sig)
{
	pthread_mutex_lock(&b->lock);
	if (b->pid > 0 && !b->dead) {
		if (b->pidfd >= 0)
			pidfd_send_signal(b->pidfd, sig, NULL, 0);
		else
			kill(b->pid, sig);
	}
	pthread_mutex_unlock(&b->lock);
}

/* For the tests' clean-up of a daemon that died: whom to kill. */
static void
fc_write_pid(struct backend *b)
{
	char *pid = xasprintf("%d\n", (int)b->pid);

	write_file_atomic(b->pid_path, pid, strlen(pid));
	free(pid);
}

/* The thread, then the fork: 0 once the process runs. */
static int
fc_spawn(struct backend *b, struct aerr *err)
{
	int ret;

	pthread_mutex_lock(&b->lock);
	ret = pthread_create(&b->thread, NULL, fc_thread_main, b);
	if (ret) {
		pthread_mutex_unlock(&b->lock);
		aerr_set(err, "firecracker: cannot create thread: %s",
			 strerror(ret));
		return -ret;
	}
	b->thread_started = true;
	while (!b->spawned)
		pthread_cond_wait(&b->cond, &b->lock);
	ret = b->pid > 0 ? 0 : -b->spawn_errno;
	pthread_mutex_unlock(&b->lock);
	if (b->console_fd >= 0) {
		close(b->console_fd);
		b->console_fd = -1;
	}
	if (ret < 0) {
		aerr_set(err, "firecracker: fork: %s", strerror(-ret));
		return ret;
	}
	fc_write_pid(b);
	return 0;
}

/* ": " and the last lines of path after offset, newlines as " | ";
 * false when there are none. */
static bool
fc_add_tail(struct strbuf *sb, const char *path, off_t offset)
{
	char *text = NULL;
	size_t len = 0, start, i;
	bool some = false;

	if (read_file(path, &text, &len) == 0 && (off_t)len > offset) {
		start = len - (size_t)offset > 400 ? len - 400 : (size_t)offset;
		while (len > start && strchr("\n\r ", text[len - 1]))
			len--;
		some = len > start;
		if (some)
			sb_adds(sb, ": ");
		for (i = start; i < len; i++)
			sb_add(sb, text[i] == '\n' ? " | " : text + i,
			       text[i] == '\n' ? 3 : 1);
	}
	free(text);
	return some;
}

/* "firecracker exited (exit status 1): <its stderr's, else its log's last
 * lines>" */
static void
fc_exit_reason(struct backend *b, struct strbuf *sb)
{
	int st = b->status;

	sb_adds(sb, "firecracker exited (");
	if (WIFEXITED(st))
		sb_addf(sb, "exit status %d", WEXITSTATUS(st));
	else if (WIFSIGNALED(st))
		sb_addf(sb, "killed by signal %d", WTERMSIG(st));
	sb_adds(sb, ")");
	if (!fc_add_tail(sb, b->log_path, b->log_offset) && b->vmm_log)
		fc_add_tail(sb, b->vmm_log, 0);
}

/* Exited within ms? Then say why in err, after what it holds. */
static bool
fc_exited_within(struct backend *b, int ms, struct aerr *err)
{
	struct timespec ts;
	struct strbuf sb;
	bool exited;

	pthread_mutex_lock(&b->lock);
	mono_deadline(&ts, ms);
	while (!b->exited &&
	       pthread_cond_timedwait(&b->cond, &b->lock, &ts) == 0)
		;
	exited = b->exited;
	pthread_mutex_unlock(&b->lock);
	if (!exited || !err)
		return exited;
	sb_init(&sb);
	if (err->msg[0])
		sb_addf(&sb, "%s; ", err->msg);
	fc_exit_reason(b, &sb);
	aerr_set(err, "%s", sb.data);
	sb_free(&sb);
	return true;
}

/* The API socket appears once Firecracker is up. */
static int
fc_wait_api(struct backend *b, struct aerr *err)
{
	int64_t deadline = now_mono_ms() + FC_API_WAIT_MS;
	int fd;

	for (;;) {
		if (fc_exited_within(b, 0, NULL)) {
			err->msg[0] = 0;
			fc_exited_within(b, 0, err);
			return -EIO;
		}
		fd = sock_unix_connect(b->api_path);
		if (fd >= 0) {
			close(fd);
			return 0;
		}
		if (fd != -ENOENT && fd != -ECONNREFUSED) {
			aerr_set(err, "firecracker: connect %s: %s",
				 b->api_path, strerror(-fd));
			return fd;
		}
		if (now_mono_ms() >= deadline) {
			aerr_set(err, "firecracker: API socket %s did not "
				 "appear in %d s", b->api_path,
				 FC_API_WAIT_MS / 1000);
			return -ETIMEDOUT;
		}
		fc_exited_within(b, 20, NULL);
	}
}

/* ---- files ----------------------------------------------------------- */


/* Disk i of this launch from src, or err. */
static int
fc_copy_disk(struct backend *b, size_t i, const char *src, struct aerr *err)
{
	char *name = fc_drive_name(i);
	char *dst = xasprintf("%s/%s", b->run_dir, name);
	int ret = copy_file_reflink(src, dst);

	if (ret < 0)
		aerr_set(err, "firecracker: disk %zu: copy %s to %s: %s", i,
			 src, dst, strerror(-ret));
	free(name);
	free(dst);
	return ret;
}

/* STATE/fc.N, the first N free: several may run (a spare beside). */
static int
fc_make_run_dir(struct backend *b, struct aerr *err)
{
	unsigned n;

	for (n = 0; n < 100000; n++) {
		char *dir = xasprintf("%s/fc.%u", b->state_dir, n);

		if (mkdir(dir, 0700) == 0) {
			b->run_dir = dir;
			return 0;
		}
		free(dir);
		if (errno != EEXIST) {
			int ret = -errno;

			aerr_set(err, "firecracker: mkdir in %s: %s",
				 b->state_dir, strerror(-ret));
			return ret;
		}
	}
	aerr_set(err, "firecracker: no free launch directory in %s",
		 b->state_dir);
	return -ENOSPC;
}

/* ---- launch ----------------------------------------------------------- */

static void
fc_free(struct backend *b)
{
	rest_close(b->api);
	if (b->run_dir)
		remove_tree(b->run_dir);
	/* Reaped by now: its pid is nobody's to kill any more. */
	if (b->thread_started)
		unlink(b->pid_path);
	if (b->pidfd >= 0)
		close(b->pidfd);
	if (b->console_fd >= 0)
		close(b->console_fd);
	unlink(b->api_path);
	free(b->name);
	free(b->state_dir);
	free(b->run_dir);
	free(b->api_path);
	free(b->pid_path);
	free(b->log_path);
	free(b->vmm_log);
	free(b->vsock_path);
	free(b->version);
	free(b->incoming);
	free(b->incoming_mem);
	free(b->nics);
	fc_argv_free(b->argv);
	pthread_mutex_destroy(&b->lock);
	pthread_cond_destroy(&b->cond);
	free(b);
}

static void
fc_dialer_stop(struct backend *b)
{
	vsock_dialer_stop(b->dialer);
	b->dialer = NULL;
}

/* No callbacks from here on: kill, reap, free. */
static void
fc_abandon(struct backend *b)
{
	pthread_mutex_lock(&b->lock);
	b->quiet = true;
	b->launch_done = true;
	pthread_cond_broadcast(&b->cond);
	pthread_mutex_unlock(&b->lock);
	fc_dialer_stop(b);
	fc_signal(b, SIGKILL);
	if (b->thread_started)
		pthread_join(b->thread, NULL);
	fc_free(b);
}

static struct backend *
fc_new(const struct backend_launch *l)
{
	struct backend *b = xcalloc(1, sizeof(*b));
	pthread_condattr_t ca;

	pthread_mutex_init(&b->lock, NULL);
	pthread_condattr_init(&ca);
	pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
	pthread_cond_init(&b->cond, &ca);
	pthread_condattr_destroy(&ca);
	b->pid = -1;
	b->pidfd = -1;
	b->console_fd = -1;
	b->name = xstrdup(l->cfg.name);
	b->state_dir = xstrdup(l->state_dir);
	b->log_path = xasprintf("%s/firecracker.log", l->state_dir);
	if (l->vmm_tag) {
		b->api_path = xasprintf("%s/firecracker.%s.sock", l->state_dir,
					l->vmm_tag);
		b->pid_path = xasprintf("%s/firecracker.%s.pid", l->state_dir,
					l->vmm_tag);
	} else {
		b->api_path = xasprintf("%s/firecracker.sock", l->state_dir);
		b->pid_path = xasprintf("%s/firecracker.pid", l->state_dir);
	}
	fc_keys_get(&l->cfg, &b->keys);
	b->events = l->events;
	b->owner = l->owner;
	b->n_shells = l->n_shells;
	b->n_disks = l->cfg.n_disks;
	b->n_nics = l->tapnet ? l->n_nics : 0;
	b->nics = xcalloc(b->n_nics + 1, sizeof(*b->nics));
	if (b->n_nics)
		memcpy(b->nics, l->nics, b->n_nics * sizeof(*b->nics));
	b->tapnet = l->tapnet;
	return b;
}

/* The launch directory, the disks, the console, the command line. */
static int
fc_prepare(struct backend *b, const struct backend_launch *l,
	   struct aerr *err)
{
	struct stat st;
	size_t i;
	int ret, fd;

	ret = mkdir_p(l->state_dir, 0700);
	if (ret < 0) {
		aerr_set(err, "%s: %s", l->state_dir, strerror(-ret));
		return ret;
	}
	ret = fc_make_run_dir(b, err);
	if (ret < 0)
		return ret;
	b->vsock_path = xasprintf("%s/%s", b->run_dir, FC_VSOCK_NAME);
	/* Its logger writes from the start of an existing file (not to
	 * stdout: that is the serial console), so one file per launch. */
	b->vmm_log = xasprintf("%s.log", b->run_dir);
	fd = open(b->vmm_log, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	if (fd < 0) {
		ret = -errno;
		aerr_set(err, "firecracker: %s: %s", b->vmm_log,
			 strerror(-ret));
		return ret;
	}
	close(fd);
	unlink(b->api_path);
	/* A restore takes the snapshot's disks, a boot the config's. */
	for (i = 0; ret == 0 && i < l->cfg.n_disks; i++)
		ret = fc_copy_disk(b, i, l->disk_bases ? l->disk_bases[i] :
				   l->cfg.disks[i], err);
	if (ret < 0)
		return ret;
	if (l->console_path) {
		b->console_fd = sock_unix_connect(l->console_path);
		if (b->console_fd < 0) {
			aerr_set(err, "firecracker: connect console %s: %s",
				 l->console_path, strerror(-b->console_fd));
			return b->console_fd;
		}
	}
	b->argv = fc_argv(&b->keys, b->api_path, l->cfg.name, b->vmm_log);
	b->log_offset = stat(b->log_path, &st) == 0 ? st.st_size : 0;
	return rest_open(b->api_path, "http://localhost", b->keys.api_timeout_ms,
			 &b->api, err);
}

/* The guest's shells: vsock connections, through the dialer. */
static int
fc_dial(struct backend *b, struct aerr *err)
{
	const struct backend_events *ev;
	void *owner;

	pthread_mutex_lock(&b->lock);
	ev = b->events;
	owner = b->owner;
	pthread_mutex_unlock(&b->lock);
	return vsock_dialer_start(b->vsock_path, ATTESTFS_VSOCK_PORT,
				  b->n_shells, ev, owner, &b->dialer, err);
}

/* Load the snapshot into a fresh process, run it, dial its shells. */
static int
fc_load(struct backend *b, struct aerr *err)
{
	int ret;

	if (!b->incoming_mem) {
		aerr_set(err, "firecracker: the snapshot has no memory file");
		return -EINVAL;
	}
	ret = fc_api_load(b->api, b->incoming, b->incoming_mem, b->nics,
			  b->n_nics, err);
	/* Firecracker exits when a load fails: say so with its log. */
	if (ret < 0)
		fc_exited_within(b, 500, err);
	if (ret == 0) {
		free(b->incoming);
		b->incoming = NULL;
		ret = fc_dial(b, err);
	}
	return ret;
}

/* Configure and start the VM, or restore it; then launch() succeeded. */
static int
fc_start(struct backend *b, const struct backend_launch *l, struct aerr *err)
{
	int ret;

	b->version = fc_api_version(b->api);
	if (l->incoming) {
		b->incoming = xstrdup(l->incoming);
		b->incoming_mem = l->incoming_ram ? xstrdup(l->incoming_ram) :
				  NULL;
		/* A pre-started VMM waits for incoming(). */
		ret = l->defer_incoming ? 0 : fc_load(b, err);
	} else {
		ret = fc_api_boot(b->api, &l->cfg, b->nics, b->n_nics, err);
		if (ret < 0)
			fc_exited_within(b, 500, err);
		if (ret == 0)
			ret = fc_dial(b, err);
	}
	if (ret < 0)
		return ret;
	pthread_mutex_lock(&b->lock);
	b->launched = true;
	b->launch_done = true;
	pthread_cond_broadcast(&b->cond);
	pthread_mutex_unlock(&b->lock);
	return 0;
}

static int
fc_launch(const struct backend_launch *l, struct backend **out,
	  struct aerr *err)
{
	struct backend *b = fc_new(l);
	int ret;

	*out = NULL;
	ret = fc_prepare(b, l, err);
	if (ret == 0)
		ret = fc_spawn(b, err);
	if (ret == 0)
		ret = fc_wait_api(b, err);
	if (ret == 0)
		ret = fc_start(b, l, err);
	if (ret < 0) {
		fc_abandon(b);
		return ret;
	}
	*out = b;
	return 0;
}

/* ---- operations --------------------------------------------------------- */

static bool
fc_is_dead(struct backend *b)
{
	bool dead;

	pthread_mutex_lock(&b->lock);
	dead = b->dead;
	pthread_mutex_unlock(&b->lock);
	return dead;
}

/* SendCtrlAltDel: the guest resets, and Firecracker exits on a reset. A
 * guest that does not (paused, or no i8042 driver) is killed by machine/
 * when this fails. */
static int
fc_quit(struct backend *b)
{
	struct aerr err = { "" };
	int ret;

	if (fc_is_dead(b))
		return 0;
	if (b->paused) {
		fc_log(b, "firecracker: halt of a paused guest: killing it");
		return -EAGAIN;
	}
	ret = fc_api_ctrl_alt_del(b->api, &err);
	if (ret < 0) {
		if (fc_is_dead(b))
			return 0;
		fc_log(b, "%s", err.msg);
		return ret;
	}
	if (fc_exited_within(b, FC_HALT_WAIT_MS, NULL))
		return 0;
	fc_log(b, "firecracker: the guest did not reset within %d s of "
	       "SendCtrlAltDel: killing it", FC_HALT_WAIT_MS / 1000);
	return -ETIMEDOUT;
}

static int
fc_kill(struct backend *b)
{
	fc_signal(b, SIGKILL);
	return 0;
}

static int
fc_set_paused(struct backend *b, bool paused)
{
	struct aerr err = { "" };
	int ret;

	if (fc_is_dead(b))
		return -EIO;
	ret = fc_api_set_state(b->api, paused, &err);
	if (ret < 0) {
		fc_log(b, "%s", err.msg);
		return fc_is_dead(b) ? -EIO : ret;
	}
	b->paused = paused;
	return 0;
}

static int
fc_pause(struct backend *b)
{
	return fc_set_paused(b, true);
}

static int
fc_resume(struct backend *b)
{
	return fc_set_paused(b, false);
}

/* block/unblock */
static int
fc_set_links(struct backend *b, int up, struct aerr *err)
{
	return tapnet_set_links(b->tapnet, b->nics, b->n_nics, up, err);
}

/* The disks of the paused guest into dir, as machine/ names them (their
 * content is raw: the names are machine/'s). */
static int
fc_save_disks(struct backend *b, const char *dir, struct aerr *err)
{
	size_t i;
	int ret = 0;

	for (i = 0; ret == 0 && i < b->n_disks; i++) {
		char *name = fc_drive_name(i);
		char *src = xasprintf("%s/%s", b->run_dir, name);
		char *dst = xasprintf("%s/disk.%zu.qcow2", dir, i);

		ret = copy_file_reflink(src, dst);
		if (ret < 0)
			aerr_set(err, "firecracker: disk %zu: copy %s to %s: "
				 "%s", i, src, dst, strerror(-ret));
		free(name);
		free(src);
		free(dst);
	}
	return ret;
}

/*
 * Pause, write Firecracker's snapshot (dir/state) and memory file (ram_out,
 * or dir/ram), copy the disks, resume. Firecracker resets the vsock device
 * on the snapshot: the shells' connections end when it resumes, and the
 * dialer makes new ones.
 */
static int
fc_save(struct backend *b, const char *dir, const char *ram_out,
	int *ram_saved, struct aerr *err)
{
	char *state = xasprintf("%s/state", dir);
	char *mem = ram_out ? xstrdup(ram_out) : xasprintf("%s/ram", dir);
	bool was_paused = b->paused;
	struct aerr ignored;
	int ret = 0, ret2;

	*ram_saved = 0;
	if (!was_paused)
		ret = fc_api_set_state(b->api, true, err);
	if (ret == 0)
		ret = fc_api_snapshot(b->api, state, mem, err);
	if (ret == 0)
		ret = fc_save_disks(b, dir, err);
	if (!was_paused) {
		ret2 = fc_api_set_state(b->api, false,
					ret < 0 ? &ignored : err);
		if (ret == 0)
			ret = ret2;
	}
	if (ret == 0 && ram_out)
		*ram_saved = 1;
	if (b->dialer)
		vsock_dialer_redial(b->dialer);
	free(state);
	free(mem);
	return ret;
}

static int
fc_incoming(struct backend *b, struct aerr *err)
{
	if (!b->incoming)
		return 0;
	return fc_load(b, err);
}

static void
fc_set_owner(struct backend *b, const struct backend_events *ev, void *owner)
{
	pthread_mutex_lock(&b->lock);
	b->events = ev;
	b->owner = owner;
	pthread_mutex_unlock(&b->lock);
	/* A spare dials only once it is put to use (fc_incoming). */
	if (b->dialer)
		vsock_dialer_set_owner(b->dialer, ev, owner);
}

static void
fc_info(struct backend *b, struct strbuf *out)
{
	sb_addf(out, "pid %d\n", (int)b->pid);
	sb_addf(out, "vmm firecracker %s\n", b->version ? b->version : "?");
	sb_addf(out, "api %s\n", b->api_path);
	sb_addf(out, "vsock %s\n", b->vsock_path);
}

static pid_t
fc_pid(struct backend *b)
{
	return b->pid;
}

static void
fc_destroy(struct backend *b)
{
	if (!b)
		return;
	pthread_mutex_lock(&b->lock);
	b->quiet = true;
	pthread_mutex_unlock(&b->lock);
	fc_dialer_stop(b);
	fc_signal(b, SIGKILL);
	pthread_join(b->thread, NULL);
	fc_free(b);
}

const struct backend_ops firecracker_backend_ops = {
	.name = "firecracker",
	.caps = BACKEND_CAP_PAUSE | BACKEND_CAP_SNAPSHOT | BACKEND_CAP_LINKS |
		BACKEND_CAP_TAPNET,
	.config_keys = fc_config_keys,
	.check_config = fc_check_config,
	.launch = fc_launch,
	.quit = fc_quit,
	.kill = fc_kill,
	.pause = fc_pause,
	.resume = fc_resume,
	.set_links = fc_set_links,
	.save = fc_save,
	.incoming = fc_incoming,
	.set_owner = fc_set_owner,
	.info = fc_info,
	.pid = fc_pid,
	.destroy = fc_destroy,
};
