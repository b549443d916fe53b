/*
 * The Cloud Hypervisor backend. launch() copies the disks (a fresh raw
 * copy per launch), then a thread per machine forks
 * `cloud-hypervisor --api-socket path=STATE/ch.N.sock` and waits for it;
 * launch() waits for GET /vmm.ping, then PUT /vm.create (the VmConfig of
 * cloud_hypervisor_config.c) and /vm.boot, or PUT /vm.restore of a
 * snapshot and /vm.resume. CH listens on the serial port's socket (mode
 * Socket: the virtio console cannot be a socket, and a Tty serial would
 * need a terminal on its stdin): a console thread connects to it and to
 * machine/'s console socket and carries bytes both ways. The shells are
 * vsock channels (vsock.h) on the VMM's hybrid-vsock socket. VLAN NICs
 * are TAPs machine/ made in the mount's network namespace (tapnet.h): CH
 * enters it before it execs.
 *
 * CH has no event stream here: the process's exit is the only event (the
 * guest's power-off ends it), reported once by the thread.
 */
#include "backends/cloud_hypervisor.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <linux/fs.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/pidfd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <json-c/json.h>

#include "backends/rest.h"
#include "backends/tapnet.h"
#include "backends/vsock.h"
#include "common/proc.h"
#include "common/sock.h"

#define CHV_API_MS 10000        /* an ordinary call */
#define CHV_START_MS 10000      /* started -> vmm.ping answers */
#define CHV_BOOT_MS 60000       /* vm.boot, vm.restore */
#define CHV_SNAPSHOT_MS 120000  /* vm.snapshot writes guest RAM */
#define CHV_SHUTDOWN_MS 3000    /* vmm.shutdown -> the process is gone */
#define CHV_CONSOLE_BUF 16384

struct backend {
	/* Guards what the forking thread, the console thread and the callers
	 * share: events and owner, spawned .. quiet. Never held across an
	 * API call or a callback. launch() sets the rest before the threads
	 * start, and machine/ calls one operation at a time. */
	pthread_mutex_t lock;
	pthread_cond_t cond;         /* CLOCK_MONOTONIC; on every change */

	char *state_dir;
	char *log_path;              /* CH's stdout and stderr, appended */
	off_t log_offset;            /* ...where this launch's lines start */
	char *api_path;
	char *serial_path;           /* CH listens: the guest's ttyS0 */
	char *vsock_path;
	char *console_path;          /* machine/ listens: the console file */
	char *restore_dir;           /* the config a restore loaded, or NULL */
	char **disks;                /* this launch's raw copies */
	size_t n_disks;
	size_t n_shells;
	struct backend_nic *nics;    /* VLAN NICs: TAPs in tapnet */
	size_t n_nics;
	struct tapnet *tapnet;       /* the mount's (machine/'s) */
	char **argv;
	int power_button_ms;
	const struct backend_events *events;
	void *owner;

	pthread_t thread;
	bool thread_started;
	bool spawned;                /* fork() returned in the thread */
	int spawn_errno;
	pid_t pid;
	int pidfd;
	bool dead;                   /* exited, not yet reaped */
	bool exited;                 /* reaped; status valid */
	int status;
	bool launch_done;            /* launch() has decided */
	bool launched;               /* ... and succeeded */
	bool quiet;                  /* no more callbacks */

	struct rest_client *api;
	char *version;               /* vmm.ping's */

	pthread_t con_thread;
	bool con_started;
	int con_wake[2];             /* a byte: the console thread ends */

	struct vsock_dialer *dialer;
};

static unsigned chv_launches;

static void
chv_log(struct backend *b, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

static void
chv_log(struct backend *b, const char *fmt, ...)
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

/* ---- the process ------------------------------------------------------- */

static void *
chv_thread_main(void *arg)
{
	struct backend *b = arg;
	pid_t parent = getpid(), pid;
	const struct backend_events *ev;
	void *owner;
	siginfo_t si;
	sigset_t all;
	bool notify;
	int status = 0;

	sigfillset(&all);
	pthread_sigmask(SIG_BLOCK, &all, NULL);
	pthread_mutex_lock(&b->lock);
	pid = fork();
	if (pid == 0) {
		proc_child_init(parent);
		setsid(); /* terminal Ctrl-C goes to the daemon only */
		if (chdir(b->state_dir) < 0)
			_exit(127);
		/* Its TAPs are in the mount's network namespace. */
		if (b->n_nics && tapnet_enter(b->tapnet) < 0)
			_exit(127);
		proc_child_stdio(b->log_path);
		execvp(b->argv[0], b->argv);
		dprintf(2, "attestfs: cannot execute %s: %s\n", b->argv[0],
			strerror(errno));
		_exit(127);
	}
	b->spawned = true;
	b->pid = pid;
	b->spawn_errno = pid < 0 ? errno : 0;
	if (pid > 0)
		b->pidfd = pidfd_open(pid, 0);
	pthread_cond_broadcast(&b->cond);
	pthread_mutex_unlock(&b->lock);
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
chv_signal(struct backend *b, int sig)
{
	pthread_mutex_lock(&b->lock);
	if (b->pid > 0 && !b->dead) {
		kill(-b->pid, sig); /* its session: a fake's QEMU too */
		if (b->pidfd >= 0)
			pidfd_send_signal(b->pidfd, sig, NULL, 0);
		else
			kill(b->pid, sig);
	}
	pthread_mutex_unlock(&b->lock);
}

static int
chv_spawn(struct backend *b, struct aerr *err)
{
	struct stat st;
	int ret;

	b->log_offset = stat(b->log_path, &st) == 0 ? st.st_size : 0;
	pthread_mutex_lock(&b->lock);
	ret = pthread_create(&b->thread, NULL, chv_thread_main, b);
	if (ret) {
		pthread_mutex_unlock(&b->lock);
		aerr_set(err, "cloud-hypervisor: cannot create thread: %s",
			 strerror(ret));
		return -ret;
	}
	b->thread_started = true;
	while (!b->spawned)
		pthread_cond_wait(&b->cond, &b->lock);
	ret = b->pid > 0 ? 0 : -b->spawn_errno;
	pthread_mutex_unlock(&b->lock);
	if (ret < 0)
		aerr_set(err, "cloud-hypervisor: fork: %s", strerror(-ret));
	return ret;
}

/* "cloud-hypervisor exited (exit status 1): <its log's last lines>" */
static void
chv_exit_reason(struct backend *b, struct strbuf *sb)
{
	char *text = NULL;
	size_t len = 0, start, i;
	int st = b->status;

	sb_adds(sb, "cloud-hypervisor exited (");
	if (WIFEXITED(st))
		sb_addf(sb, "exit status %d", WEXITSTATUS(st));
	else if (WIFSIGNALED(st))
		sb_addf(sb, "killed by signal %d", WTERMSIG(st));
	sb_adds(sb, ")");
	if (read_file(b->log_path, &text, &len) == 0 &&
	    (off_t)len > b->log_offset) {
		start = len - (size_t)b->log_offset > 400 ? len - 400 :
			(size_t)b->log_offset;
		while (len > start && strchr("\n\r ", text[len - 1]))
			len--;
		sb_adds(sb, ": ");
		for (i = start; i < len; i++)
			sb_add(sb, text[i] == '\n' ? " | " : text + i,
			       text[i] == '\n' ? 3 : 1);
	}
	free(text);
}

/* Exited within ms? Then err (when given) says why, after what it held. */
static bool
chv_exited_within(struct backend *b, int ms, struct aerr *err)
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
	chv_exit_reason(b, &sb);
	aerr_set(err, "%s", sb.data);
	sb_free(&sb);
	return true;
}

static bool
chv_is_dead(struct backend *b)
{
	bool dead;

	pthread_mutex_lock(&b->lock);
	dead = b->dead || b->pid <= 0;
	pthread_mutex_unlock(&b->lock);
	return dead;
}

/* ---- the API ----------------------------------------------------------- */

/* One call; its failure says "cloud-hypervisor: METHOD PATH: CH's reason"
 * and, when the process is gone meanwhile, why it went. */
static int
chv_call(struct backend *b, const char *method, const char *path,
	 struct json_object *body, long timeout_ms,
	 struct json_object **reply, struct aerr *err)
{
	struct aerr e = { "" };
	int ret;

	ret = rest_call_timeout(b->api, method, path, body, timeout_ms, NULL,
				reply, &e);
	if (ret == 0)
		return 0;
	aerr_set(err, "cloud-hypervisor: %s", e.msg);
	/* A VMM that went away answers nothing: that is the reason. */
	if (chv_exited_within(b, ret == -EIO || ret == -ECONNREFUSED ||
			      ret == -ENOENT ? 200 : 0, err))
		ret = -EIO;
	return ret;
}

static int
chv_put(struct backend *b, const char *path, struct json_object *body,
	long timeout_ms, struct aerr *err)
{
	return chv_call(b, "PUT", path, body, timeout_ms, NULL, err);
}

/* GET /vmm.ping until the API answers: its version for info. */
static int
chv_wait_api(struct backend *b, struct aerr *err)
{
	int64_t deadline = now_mono_ms() + CHV_START_MS;
	struct json_object *reply = NULL, *v;
	struct aerr e;
	int ret;

	for (;;) {
		if (chv_exited_within(b, 0, NULL)) {
			err->msg[0] = 0;
			chv_exited_within(b, 0, err);
			return -EIO;
		}
		e.msg[0] = 0;
		ret = rest_call_timeout(b->api, "GET", "/vmm.ping", NULL,
					1000, NULL, &reply, &e);
		if (ret == 0)
			break;
		if (ret != -ENOENT && ret != -ECONNREFUSED) {
			aerr_set(err, "cloud-hypervisor: %s", e.msg);
			return ret;
		}
		if (now_mono_ms() >= deadline) {
			aerr_set(err, "cloud-hypervisor: the API socket %s did "
				 "not answer in %d s", b->api_path,
				 CHV_START_MS / 1000);
			return -ETIMEDOUT;
		}
		chv_exited_within(b, 10, NULL);
	}
	if (reply && json_object_object_get_ex(reply, "version", &v))
		b->version = xstrdup(json_object_get_string(v));
	json_object_put(reply);
	return 0;
}

/* ---- the console ------------------------------------------------------- */

/* Guest output to machine/'s console, which is always drained: false at
 * EOF or an error. */
static bool
chv_pump_out(int ser, int con)
{
	char buf[CHV_CONSOLE_BUF];
	ssize_t n;

	do
		n = read(ser, buf, sizeof(buf));
	while (n < 0 && errno == EINTR);
	return n > 0 && write_all(con, buf, (size_t)n) == 0;
}

/* Console input waiting for the guest to take it. */
struct chv_input {
	char buf[CHV_CONSOLE_BUF];
	size_t off, len;
};

/* Input to the guest without blocking: a guest that does not read its
 * serial port must not stop its output. False on an error. */
static bool
chv_push_in(int ser, struct chv_input *in)
{
	ssize_t n = send(ser, in->buf + in->off, in->len - in->off,
			 MSG_DONTWAIT | MSG_NOSIGNAL);

	if (n < 0)
		return errno == EAGAIN || errno == EINTR;
	in->off += (size_t)n;
	if (in->off == in->len)
		in->off = in->len = 0;
	return true;
}

/* Connect to CH's serial socket, which appears while it boots: fd, or
 * -1 once the thread is told to end. */
static int
chv_console_dial(struct backend *b)
{
	struct pollfd p = { .fd = b->con_wake[0], .events = POLLIN };
	int fd, wait_ms = 5;

	for (;;) {
		fd = sock_unix_connect(b->serial_path);
		if (fd >= 0)
			return fd;
		if (poll(&p, 1, wait_ms) != 0 || chv_is_dead(b))
			return -1;
		if (wait_ms < 100)
			wait_ms *= 2;
	}
}

/* Bytes both ways until CH's end closes (it exits, or takes another
 * client) or the thread is told to end. */
static void
chv_console_splice(struct backend *b, int ser, int con)
{
	struct chv_input *in = xcalloc(1, sizeof(*in));
	struct pollfd p[3];
	ssize_t n;

	p[2] = (struct pollfd){ .fd = b->con_wake[0], .events = POLLIN };
	for (;;) {
		p[0] = (struct pollfd){ .fd = ser, .events = POLLIN |
					(in->len ? POLLOUT : 0) };
		p[1] = (struct pollfd){ .fd = con, .events = in->len ? 0 :
								    POLLIN };
		if (poll(p, 3, -1) < 0) {
			if (errno == EINTR)
				continue;
			break;
		}
		if (p[2].revents)
			break;
		if ((p[0].revents & POLLOUT) && !chv_push_in(ser, in))
			break;
		if ((p[0].revents & ~POLLOUT) && !chv_pump_out(ser, con))
			break;
		if (p[1].revents) {
			n = read(con, in->buf, sizeof(in->buf));
			if (n <= 0 && !(n < 0 && errno == EINTR))
				break; /* machine/ went */
			in->len = n > 0 ? (size_t)n : 0;
		}
	}
	free(in);
}

static void *
chv_console_main(void *arg)
{
	struct backend *b = arg;
	sigset_t all;
	int ser, con;

	sigfillset(&all);
	pthread_sigmask(SIG_BLOCK, &all, NULL);
	con = sock_unix_connect(b->console_path);
	ser = con >= 0 ? chv_console_dial(b) : -1;
	if (con >= 0 && ser >= 0)
		chv_console_splice(b, ser, con);
	if (ser >= 0)
		close(ser);
	if (con >= 0)
		close(con);
	return NULL;
}

static int
chv_console_start(struct backend *b, struct aerr *err)
{
	int ret;

	if (!b->console_path)
		return 0;
	if (pipe2(b->con_wake, O_CLOEXEC) < 0) {
		ret = -errno;
		aerr_set(err, "cloud-hypervisor: pipe: %s", strerror(errno));
		return ret;
	}
	ret = pthread_create(&b->con_thread, NULL, chv_console_main, b);
	if (ret) {
		aerr_set(err, "cloud-hypervisor: cannot create thread: %s",
			 strerror(ret));
		return -ret;
	}
	b->con_started = true;
	return 0;
}

static void
chv_console_stop(struct backend *b)
{
	if (!b->con_started)
		return;
	if (write(b->con_wake[1], "x", 1) < 0) {
		/* a full pipe wakes it as well */
	}
	pthread_join(b->con_thread, NULL);
	b->con_started = false;
}

/* ---- files ------------------------------------------------------------- */


static int
chv_copy_disk(const char *src, const char *dst, struct aerr *err)
{
	int ret = copy_file_reflink(src, dst);

	if (ret < 0)
		aerr_set(err, "cloud-hypervisor: copy %s to %s: %s", src, dst,
			 strerror(-ret));
	return ret;
}

/* A snapshot directory's parts (see chv_save). */
static char *
chv_snap_disk(const char *dir, size_t i)
{
	return xasprintf("%s/disk.%zu.raw", dir, i);
}

static struct chv_vm_params
chv_params(struct backend *b, const struct backend_config *cfg)
{
	struct chv_vm_params p = {
		.cfg = cfg,
		.disks = (const char *const *)b->disks,
		.n_disks = b->n_disks,
		.serial_socket = b->serial_path,
		.vsock_socket = b->vsock_path,
		.nics = b->nics,
		.n_nics = b->n_nics,
	};

	return p;
}

/* Every entry of the snapshot but config.json, linked (CH reads its own
 * files; the others are of no interest to it). */
static int
chv_link_snapshot(const char *from, const char *to, struct aerr *err)
{
	DIR *d = opendir(from);
	struct dirent *de;
	int ret = 0;

	if (!d) {
		ret = -errno;
		aerr_set(err, "cloud-hypervisor: %s: %s", from, strerror(errno));
		return ret;
	}
	while (ret == 0 && (de = readdir(d))) {
		char *src, *dst;

		if (de->d_name[0] == '.' || !strcmp(de->d_name, "config.json"))
			continue;
		src = xasprintf("%s/%s", from, de->d_name);
		dst = xasprintf("%s/%s", to, de->d_name);
		if (symlink(src, dst) < 0) {
			ret = -errno;
			aerr_set(err, "cloud-hypervisor: symlink %s: %s", dst,
				 strerror(errno));
		}
		free(src);
		free(dst);
	}
	closedir(d);
	return ret;
}

/*
 * What vm.restore loads: the snapshot's config.json with this launch's
 * disks and sockets (a clone's are its own; CH has no override on restore),
 * beside links to the rest of what CH saved.
 */
static int
chv_make_restore_dir(struct backend *b, const struct backend_launch *l,
		     const char *snap, struct aerr *err)
{
	struct chv_vm_params p = chv_params(b, &l->cfg);
	const char *from = snap;
	char *cfgpath = NULL;
	struct json_object *vm = NULL;
	const char *text;
	int ret;

	remove_tree(b->restore_dir);
	ret = mkdir_p(b->restore_dir, 0700);
	if (ret < 0) {
		aerr_set(err, "cloud-hypervisor: %s: %s", b->restore_dir,
			 strerror(-ret));
		goto out;
	}
	cfgpath = xasprintf("%s/config.json", from);
	vm = json_object_from_file(cfgpath);
	if (!vm) {
		aerr_set(err, "cloud-hypervisor: %s: %s", cfgpath,
			 json_util_get_last_err());
		ret = -EIO;
		goto out;
	}
	ret = chv_restore_config(vm, &p, err);
	if (ret == 0)
		ret = chv_link_snapshot(from, b->restore_dir, err);
	if (ret < 0)
		goto out;
	free(cfgpath);
	cfgpath = xasprintf("%s/config.json", b->restore_dir);
	text = json_object_to_json_string_ext(vm, JSON_C_TO_STRING_PLAIN |
					      JSON_C_TO_STRING_NOSLASHESCAPE);
	ret = write_file_atomic(cfgpath, text, strlen(text));
	if (ret < 0)
		aerr_set(err, "cloud-hypervisor: %s: %s", cfgpath,
			 strerror(-ret));
out:
	json_object_put(vm);
	free(cfgpath);
	return ret;
}

/* ---- launch ------------------------------------------------------------ */

static void
chv_free(struct backend *b)
{
	size_t i;

	/* Reaped by now: nothing of this launch is in use. */
	for (i = 0; i < b->n_disks; i++) {
		if (b->disks[i])
			unlink(b->disks[i]);
		free(b->disks[i]);
	}
	free(b->disks);
	if (b->restore_dir)
		remove_tree(b->restore_dir);
	unlink(b->api_path);
	unlink(b->serial_path);
	unlink(b->vsock_path);
	free(b->state_dir);
	free(b->log_path);
	free(b->api_path);
	free(b->serial_path);
	free(b->vsock_path);
	free(b->console_path);
	free(b->restore_dir);
	free(b->nics);
	for (i = 0; b->argv && b->argv[i]; i++)
		free(b->argv[i]);
	free(b->argv);
	free(b->version);
	rest_close(b->api);
	if (b->pidfd >= 0)
		close(b->pidfd);
	if (b->con_wake[0] >= 0)
		close(b->con_wake[0]);
	if (b->con_wake[1] >= 0)
		close(b->con_wake[1]);
	pthread_mutex_destroy(&b->lock);
	pthread_cond_destroy(&b->cond);
	free(b);
}

static void
chv_dialer_stop(struct backend *b)
{
	struct vsock_dialer *d = b->dialer;

	b->dialer = NULL;
	vsock_dialer_stop(d);
}

/* Kill whatever runs, join the threads, free: no callbacks. */
static void
chv_abandon(struct backend *b)
{
	pthread_mutex_lock(&b->lock);
	b->quiet = true;
	b->launch_done = true;
	pthread_cond_broadcast(&b->cond);
	pthread_mutex_unlock(&b->lock);
	chv_dialer_stop(b);
	chv_signal(b, SIGKILL);
	chv_console_stop(b);
	if (b->thread_started)
		pthread_join(b->thread, NULL);
	chv_free(b);
}

/* The command line: the binary, the API socket, the "args" key. */
static char **
chv_argv(const struct backend_config *cfg, const char *api_path,
	 int *power_button_ms)
{
	struct chv_own own;
	char **argv;
	size_t i, n = 0;

	chv_own_get(cfg, &own);
	argv = xcalloc(own.n_args + 4, sizeof(*argv));
	argv[n++] = xstrdup(own.binary);
	argv[n++] = xstrdup("--api-socket");
	argv[n++] = xasprintf("path=%s", api_path);
	for (i = 0; i < own.n_args; i++)
		argv[n++] = xstrdup(own.args[i]);
	*power_button_ms = own.power_button_ms;
	chv_own_free(&own);
	return argv;
}

static struct backend *
chv_new(const struct backend_launch *l)
{
	struct backend *b = xcalloc(1, sizeof(*b));
	unsigned seq = __atomic_add_fetch(&chv_launches, 1, __ATOMIC_RELAXED);
	const char *dir = l->state_dir;
	pthread_condattr_t ca;
	size_t i;

	pthread_mutex_init(&b->lock, NULL);
	pthread_condattr_init(&ca);
	pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
	pthread_cond_init(&b->cond, &ca);
	pthread_condattr_destroy(&ca);
	b->pidfd = -1;
	b->con_wake[0] = b->con_wake[1] = -1;
	b->state_dir = xstrdup(dir);
	b->log_path = xasprintf("%s/cloud-hypervisor.log", dir);
	/* Names of this launch alone: a restore's VMM must not find the
	 * last one's sockets or disks. */
	b->api_path = xasprintf("%s/ch.%u.sock", dir, seq);
	b->serial_path = xasprintf("%s/ch.%u.serial", dir, seq);
	b->vsock_path = xasprintf("%s/ch.%u.vsock", dir, seq);
	b->console_path = l->console_path ? xstrdup(l->console_path) : NULL;
	if (l->incoming)
		b->restore_dir = xasprintf("%s/restore.%u", dir, seq);
	b->n_disks = l->cfg.n_disks;
	b->disks = xcalloc(b->n_disks + 1, sizeof(char *));
	for (i = 0; i < b->n_disks; i++)
		b->disks[i] = xasprintf("%s/disk.%zu.%u.raw", dir, i, seq);
	b->n_shells = l->n_shells;
	b->n_nics = l->n_nics;
	b->nics = xcalloc(l->n_nics + 1, sizeof(*b->nics));
	if (l->n_nics)
		memcpy(b->nics, l->nics, l->n_nics * sizeof(*b->nics));
	b->tapnet = l->tapnet;
	b->argv = chv_argv(&l->cfg, b->api_path, &b->power_button_ms);
	b->events = l->events;
	b->owner = l->owner;
	return b;
}

/* The state directory, this launch's disks, the restore's config. */
static int
chv_prepare(struct backend *b, const struct backend_launch *l,
	    struct aerr *err)
{
	char *snap = NULL, *src;
	size_t i;
	int ret;

	ret = mkdir_p(l->state_dir, 0700);
	if (ret < 0) {
		aerr_set(err, "%s: %s", l->state_dir, strerror(-ret));
		return ret;
	}
	/* Left by a daemon before this one (CH will not bind over them). */
	unlink(b->api_path);
	unlink(b->serial_path);
	unlink(b->vsock_path);
	if (l->incoming) {
		snap = xstrdup(l->incoming);
		*strrchr(snap, '/') = 0;
	}
	for (i = 0; ret == 0 && i < b->n_disks; i++) {
		src = snap ? chv_snap_disk(snap, i) : xstrdup(l->cfg.disks[i]);
		ret = chv_copy_disk(src, b->disks[i], err);
		free(src);
	}
	if (ret == 0 && snap)
		ret = chv_make_restore_dir(b, l, snap, err);
	free(snap);
	if (ret == 0)
		ret = rest_open(b->api_path, CHV_API_BASE, CHV_API_MS, &b->api,
				err);
	return ret;
}

/* A fresh boot: create the VM, then boot it with the console connected
 * (CH makes the serial socket during vm.boot). */
static int
chv_boot(struct backend *b, const struct backend_launch *l, struct aerr *err)
{
	struct chv_vm_params p = chv_params(b, &l->cfg);
	struct json_object *vm = chv_vm_config(&p);
	int ret;

	ret = chv_put(b, "/vm.create", vm, CHV_API_MS, err);
	json_object_put(vm);
	if (ret == 0)
		ret = chv_console_start(b, err);
	if (ret == 0)
		ret = chv_put(b, "/vm.boot", NULL, CHV_BOOT_MS, err);
	return ret;
}

/* A snapshot into this fresh process: paused until the console is
 * connected, so that the guest's next bytes reach it. */
static int
chv_restore(struct backend *b, struct aerr *err)
{
	struct json_object *rc = json_object_new_object();
	char *url = xasprintf("file://%s", b->restore_dir);
	int ret;

	json_object_object_add(rc, "source_url", json_object_new_string(url));
	ret = chv_put(b, "/vm.restore", rc, CHV_BOOT_MS, err);
	json_object_put(rc);
	free(url);
	if (ret == 0)
		ret = chv_console_start(b, err);
	if (ret == 0)
		ret = chv_put(b, "/vm.resume", NULL, CHV_API_MS, err);
	return ret;
}

static int
chv_launch(const struct backend_launch *l, struct backend **out,
	   struct aerr *err)
{
	struct backend *b = chv_new(l);
	int ret;

	*out = NULL;
	ret = chv_prepare(b, l, err);
	if (ret == 0)
		ret = chv_spawn(b, err);
	if (ret == 0)
		ret = chv_wait_api(b, err);
	if (ret == 0)
		ret = l->incoming ? chv_restore(b, err) : chv_boot(b, l, err);
	if (ret == 0)
		ret = vsock_dialer_start(b->vsock_path, ATTESTFS_VSOCK_PORT,
					 b->n_shells, l->events, l->owner,
					 &b->dialer, err);
	if (ret < 0) {
		chv_abandon(b);
		return ret;
	}
	chv_log(b, "cloud-hypervisor %s (pid %d): %s, API %s",
		b->version ? b->version : "(no version)", (int)b->pid,
		l->incoming ? "restored" : "booted", b->api_path);
	pthread_mutex_lock(&b->lock);
	b->launched = true;
	b->launch_done = true;
	pthread_cond_broadcast(&b->cond);
	pthread_mutex_unlock(&b->lock);
	*out = b;
	return 0;
}

/* ---- operations -------------------------------------------------------- */

/*
 * halt: the ACPI power button first (a guest that handles it powers off,
 * and CH exits with it), then vmm.shutdown; what still runs after that is
 * machine/'s to kill (a negative return).
 */
static int
chv_quit(struct backend *b)
{
	struct aerr e = { "" };

	if (chv_is_dead(b))
		return 0;
	if (b->power_button_ms > 0 &&
	    chv_put(b, "/vm.power-button", NULL, CHV_API_MS, &e) == 0 &&
	    chv_exited_within(b, b->power_button_ms, NULL))
		return 0;
	/* Its answer may be lost with the process: the exit is what counts. */
	chv_put(b, "/vmm.shutdown", NULL, CHV_SHUTDOWN_MS, &e);
	return chv_exited_within(b, CHV_SHUTDOWN_MS, NULL) ? 0 : -ETIMEDOUT;
}

static int
chv_kill(struct backend *b)
{
	chv_signal(b, SIGKILL);
	return 0;
}

/* pause and resume: the reason goes to <m>/log. */
static int
chv_simple(struct backend *b, const char *path)
{
	struct aerr e = { "" };
	int ret;

	if (chv_is_dead(b))
		return -EIO;
	ret = chv_put(b, path, NULL, CHV_API_MS, &e);
	if (ret < 0)
		chv_log(b, "%s", e.msg);
	return ret;
}

static int
chv_pause(struct backend *b)
{
	return chv_simple(b, "/vm.pause");
}

static int
chv_resume(struct backend *b)
{
	return chv_simple(b, "/vm.resume");
}

/* block/unblock */
static int
chv_set_links(struct backend *b, int up, struct aerr *err)
{
	return tapnet_set_links(b->tapnet, b->nics, b->n_nics, up, err);
}

/* Each disk as it stands, the guest paused: the snapshot's own copy. */
static int
chv_save_disks(struct backend *b, const char *dir, struct aerr *err)
{
	size_t i;
	int ret = 0;

	for (i = 0; ret == 0 && i < b->n_disks; i++) {
		char *dst = chv_snap_disk(dir, i);

		ret = chv_copy_disk(b->disks[i], dst, err);
		free(dst);
	}
	return ret;
}

/* machine/ finds a snapshot by its "state" file: attestfs's own note. */
static int
chv_save_state(struct backend *b, const char *dir, struct aerr *err)
{
	struct json_object *o = json_object_new_object();
	char *path = xasprintf("%s/state", dir);
	const char *text;
	int ret;

	json_object_object_add(o, "backend",
			       json_object_new_string("cloud-hypervisor"));
	json_object_object_add(o, "version", json_object_new_string(
						     b->version ? b->version : ""));
	json_object_object_add(o, "disks", json_object_new_int((int)b->n_disks));
	text = json_object_to_json_string_ext(o, JSON_C_TO_STRING_PLAIN);
	ret = write_file_atomic(path, text, strlen(text));
	if (ret < 0)
		aerr_set(err, "cloud-hypervisor: %s: %s", path, strerror(-ret));
	json_object_put(o);
	free(path);
	return ret;
}

/*
 * A snapshot in dir: CH's vm.snapshot (config.json, state.json,
 * memory-ranges; its size is the snapshot's), disk.N.raw, and state,
 * attestfs's note. CH snapshots only a paused VM;
 * the guest runs again afterwards, whatever happened. The vsock channels
 * are not cut here: where the VMM resets them, the dialer sees the ends
 * and dials again; where it keeps them, a command running meanwhile goes
 * on.
 */
static int
chv_save(struct backend *b, const char *dir, const char *ram_out,
	 int *ram_saved, struct aerr *err)
{
	struct json_object *sc = json_object_new_object();
	char *url = xasprintf("file://%s", dir);
	struct aerr ignored;
	int ret, ret2;

	*ram_saved = 0;
	json_object_object_add(sc, "destination_url",
			       json_object_new_string(url));
	ret = chv_put(b, "/vm.pause", NULL, CHV_API_MS, err);
	if (ret < 0)
		goto out;
	ret = chv_save_disks(b, dir, err);
	if (ret == 0)
		ret = chv_put(b, "/vm.snapshot", sc, CHV_SNAPSHOT_MS, err);
	if (ret == 0)
		ret = chv_save_state(b, dir, err);
	ret2 = chv_put(b, "/vm.resume", NULL, CHV_API_MS,
		       ret < 0 ? &ignored : err);
	if (ret == 0)
		ret = ret2;
out:
	json_object_put(sc);
	free(url);
	return ret;
}

static void
chv_set_owner(struct backend *b, const struct backend_events *ev,
	      void *owner)
{
	pthread_mutex_lock(&b->lock);
	b->events = ev;
	b->owner = owner;
	pthread_mutex_unlock(&b->lock);
	if (b->dialer)
		vsock_dialer_set_owner(b->dialer, ev, owner);
}

static void
chv_info(struct backend *b, struct strbuf *out)
{
	sb_addf(out, "pid %d\n", (int)b->pid);
	sb_addf(out, "vmm cloud-hypervisor %s\n",
		b->version ? b->version : "unknown");
	sb_addf(out, "api %s\n", b->api_path);
	sb_addf(out, "vsock %s\n", b->vsock_path);
}

static pid_t
chv_pid(struct backend *b)
{
	return b->pid;
}

static void
chv_destroy(struct backend *b)
{
	if (!b)
		return;
	pthread_mutex_lock(&b->lock);
	b->quiet = true;
	pthread_mutex_unlock(&b->lock);
	/* Its state is thrown away: no need to let it shut down. */
	chv_dialer_stop(b);
	chv_signal(b, SIGKILL);
	chv_console_stop(b);
	if (b->thread_started)
		pthread_join(b->thread, NULL);
	chv_free(b);
}

const struct backend_ops cloud_hypervisor_backend_ops = {
	.name = "cloud-hypervisor",
	.caps = BACKEND_CAP_PAUSE | BACKEND_CAP_SNAPSHOT | BACKEND_CAP_LINKS |
		BACKEND_CAP_TAPNET,
	.config_keys = chv_config_keys,
	.check_config = chv_check_config,
	.launch = chv_launch,
	.quit = chv_quit,
	.kill = chv_kill,
	.pause = chv_pause,
	.resume = chv_resume,
	.set_links = chv_set_links,
	.save = chv_save,
	.set_owner = chv_set_owner,
	.info = chv_info,
	.pid = chv_pid,
	.destroy = chv_destroy,
};
