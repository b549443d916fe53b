/*
 * The QEMU backend. launch() builds the command line, creates the disk
 * overlays, then starts one long-lived thread per machine that forks QEMU
 * (PR_SET_PDEATHSIG is tied to the forking *thread*, so it stays armed while
 * the machine lives) and waits for it. launch() itself connects to QMP and
 * returns when QMP answered.
 *
 * Callbacks come from one more thread per machine, the event thread, which
 * delivers QMP events in order and then "exited" once. The QMP reader only
 * queues: a callback that waits for a lock its caller holds while it calls
 * pause() (whose STOP event precedes the reply) cannot stall the reply.
 *
 * The command line is qemu_argv.c's, the disk overlays qemu_host.c's,
 * snapshots qemu_snapshot.c's.
 */
#include "backends/qemu_internal.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/pidfd.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "backends/accel.h"
#include "common/proc.h"
#include "common/sock.h"

/* Called with b->lock held. */
static void
qemu_signal_locked(struct backend *b, int sig)
{
	if (b->child <= 0 || b->dead)
		return;
	kill(-b->child, sig); /* the session the child made: QEMU, script */
	kill(b->child, sig);
	/* Through the pidfd: never a process that reused a dead QEMU's pid. */
	if (b->qemu_pidfd >= 0)
		pidfd_send_signal(b->qemu_pidfd, sig, NULL, 0);
}

static void *
qemu_thread_main(void *arg)
{
	struct backend *b = arg;
	pid_t parent = getpid(), pid;
	siginfo_t si;
	sigset_t all;
	struct qmp *q;
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
		proc_child_stdio(b->log_path);
		execvpe(b->cmd.argv[0], b->cmd.argv, b->envp);
		dprintf(2, "attestfs: cannot execute %s: %s\n", b->cmd.argv[0],
			strerror(errno));
		_exit(127);
	}
	b->spawned = true;
	b->child = pid;
	b->spawn_errno = pid < 0 ? errno : 0;
	pthread_cond_broadcast(&b->cond);
	pthread_mutex_unlock(&b->lock);
	if (pid < 0)
		return NULL;

	/* Wait without reaping, so the pid (and process group) cannot be
	 * reused while we kill what is left of the group. */
	while (waitid(P_PID, pid, &si, WEXITED | WNOWAIT) < 0 &&
	       errno == EINTR)
		;
	pthread_mutex_lock(&b->lock);
	b->dead = true;
	pthread_mutex_unlock(&b->lock);
	kill(-pid, SIGKILL);
	while (waitpid(pid, &status, 0) < 0 && errno == EINTR)
		;

	pthread_mutex_lock(&b->lock);
	b->exited = true;
	b->status = status;
	pthread_cond_broadcast(&b->cond);
	while (!b->launch_done)
		pthread_cond_wait(&b->cond, &b->lock);
	q = b->qmp;
	notify = b->launched && !b->quiet;
	pthread_mutex_unlock(&b->lock);
	if (!notify)
		return NULL;
	/* Queue QEMU's last events (SHUTDOWN, ...) before "exited". */
	if (q)
		qmp_wait_closed(q, 2000);
	pthread_mutex_lock(&b->lock);
	b->exit_pending = !b->quiet;
	pthread_cond_broadcast(&b->cond);
	pthread_mutex_unlock(&b->lock);
	return NULL;
}

/* Delivers queued events, then "exited"; no backend lock held in them. */
static void *
qemu_event_main(void *arg)
{
	struct backend *b = arg;
	sigset_t all;

	sigfillset(&all);
	pthread_sigmask(SIG_BLOCK, &all, NULL);
	pthread_mutex_lock(&b->lock);
	for (;;) {
		struct qemu_event *ev = b->ev_head;
		bool quiet = b->quiet;
		const struct backend_events *events = b->events;
		void *owner = b->owner;

		if (ev) {
			b->ev_head = ev->next;
			if (!b->ev_head)
				b->ev_tail = &b->ev_head;
			pthread_mutex_unlock(&b->lock);
			if (!quiet && events && events->vm_event)
				events->vm_event(owner, ev->name, ev->detail);
			free(ev->name);
			free(ev->detail);
			free(ev);
			pthread_mutex_lock(&b->lock);
		} else if (b->exit_pending) {
			b->exit_pending = false;
			pthread_mutex_unlock(&b->lock);
			if (!quiet && events && events->exited)
				events->exited(owner, b->status);
			pthread_mutex_lock(&b->lock);
		} else if (b->ev_stop) {
			break;
		} else {
			pthread_cond_wait(&b->cond, &b->lock);
		}
	}
	pthread_mutex_unlock(&b->lock);
	return NULL;
}

/* Stop and join the event thread; callbacks under way finish first. */
static void
qemu_stop_events(struct backend *b)
{
	if (!b->ev_started)
		return;
	pthread_mutex_lock(&b->lock);
	b->ev_stop = true;
	pthread_cond_broadcast(&b->cond);
	pthread_mutex_unlock(&b->lock);
	pthread_join(b->ev_thread, NULL);
	b->ev_started = false;
}

static void
qemu_on_event(void *owner, const char *name, const char *data)
{
	struct backend *b = owner;
	struct qemu_event *ev;

	pthread_mutex_lock(&b->lock);
	if (!b->quiet) {
		ev = xcalloc(1, sizeof(*ev));
		ev->name = xstrdup(name);
		ev->detail = xstrdup(data);
		*b->ev_tail = ev;
		b->ev_tail = &ev->next;
		pthread_cond_broadcast(&b->cond);
	}
	pthread_mutex_unlock(&b->lock);
}

static void
qemu_free(struct backend *b)
{
	while (b->ev_head) {
		struct qemu_event *ev = b->ev_head;

		b->ev_head = ev->next;
		free(ev->name);
		free(ev->detail);
		free(ev);
	}
	free(b->name);
	free(b->state_dir);
	free(b->log_path);
	free(b->qmp_path);
	free(b->vlans);
	/* Freed later: a restore destroys the old VMM while the new one
	 * runs its first command. */
	if (b->ram_path && b->ram_shared)
		unlink_freeing_later(b->ram_path);
	/* Reaped by now: its pid is nobody's to kill any more. */
	if (b->thread_started)
		unlink(b->pid_path);
	free(b->pid_path);
	if (b->qemu_pidfd >= 0)
		close(b->qemu_pidfd);
	free(b->ram_path);
	free(b->incoming);
	qemu_free_strv(b->active);
	qemu_cmd_free(&b->cmd);
	qemu_free_strv(b->envp);
	pthread_mutex_destroy(&b->lock);
	pthread_cond_destroy(&b->cond);
	free(b);
}

/* Kill whatever was started, join the thread, free: no callbacks. */
static void
qemu_abandon(struct backend *b)
{
	pthread_mutex_lock(&b->lock);
	b->quiet = true;
	b->launch_done = true;
	qemu_signal_locked(b, SIGKILL);
	pthread_cond_broadcast(&b->cond);
	pthread_mutex_unlock(&b->lock);
	if (b->thread_started)
		pthread_join(b->thread, NULL);
	qmp_close(b->qmp);
	b->qmp = NULL;
	qemu_stop_events(b);
	qemu_free(b);
}

/* "QEMU exited (exit status 1): qemu-system-x86_64: -foo: invalid option" */
static void
qemu_exit_reason(struct backend *b, struct aerr *err)
{
	struct strbuf sb;
	char *text = NULL;
	size_t len = 0;

	sb_init(&sb);
	sb_addf(&sb, "%s exited before QMP answered (",
		b->cmd.argc && !strcmp(b->cmd.argv[0], "/bin/sh") ?
		"start command" : "QEMU");
	qemu_describe_status(&sb, b->status);
	sb_adds(&sb, ")");
	if (read_file(b->log_path, &text, &len) == 0 &&
	    (off_t)len > b->log_offset) {
		sb_adds(&sb, ": ");
		qemu_tail(&sb, text + b->log_offset, len - (size_t)b->log_offset,
			  400);
	}
	free(text);
	aerr_set(err, "%s", sb.data);
	sb_free(&sb);
}

static void
qemu_log(const struct backend_launch *l, const char *text)
{
	if (l->events && l->events->log)
		l->events->log(l->owner, text);
}

/*
 * QEMU's pid from its pidfile (a start script's QEMU is not our child):
 * held as a pidfd, checked after the pidfd is open, so that the check and
 * every later signal are about one process. A pid that is no longer ours
 * is ignored: kill() of it would hit whatever reused the number.
 */
static void
qemu_adopt_pid(struct backend *b, const struct backend_launch *l, pid_t pid)
{
	int fd;

	b->qemu_pid = b->child;
	if (pid <= 0 || pid == b->child)
		return;
	fd = pidfd_open(pid, 0);
	if (fd < 0 || !qemu_pid_is_ours(pid, b->child) ||
	    pidfd_send_signal(fd, 0, NULL, 0) < 0) {
		char *why = xasprintf("qemu: the pid file names %d, which is "
				      "not a process of this VMM: ignored",
				      (int)pid);

		qemu_log(l, why);
		free(why);
		if (fd >= 0)
			close(fd);
		return;
	}
	b->qemu_pid = pid;
	b->qemu_pidfd = fd;
}

/* A backend with its paths, before anything runs. */
static struct backend *
qemu_new(const struct backend_launch *l)
{
	struct backend *b = xcalloc(1, sizeof(*b));
	pthread_condattr_t ca;
	size_t i;

	b->qemu_pidfd = -1;
	pthread_mutex_init(&b->lock, NULL);
	pthread_condattr_init(&ca);
	pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
	pthread_cond_init(&b->cond, &ca);
	pthread_condattr_destroy(&ca);
	b->name = xstrdup(l->cfg.name);
	b->state_dir = xstrdup(l->state_dir);
	b->log_path = xasprintf("%s/qemu.log", l->state_dir);
	if (l->vmm_tag) {
		b->qmp_path = xasprintf("%s/qmp.%s.sock", l->state_dir,
					l->vmm_tag);
		b->pid_path = xasprintf("%s/qemu.%s.pid", l->state_dir,
					l->vmm_tag);
	} else {
		b->qmp_path = xasprintf("%s/qmp.sock", l->state_dir);
		b->pid_path = xasprintf("%s/qemu.pid", l->state_dir);
	}
	b->events = l->events;
	b->owner = l->owner;
	b->ev_tail = &b->ev_head;
	b->script = l->cfg.start_command != NULL;
	b->n_vlans = l->n_nics;
	b->vlans = xcalloc(l->n_nics + 1, sizeof(*b->vlans));
	for (i = 0; i < l->n_nics; i++)
		b->vlans[i] = l->nics[i].vlan;
	return b;
}

/* Without a start script: the accelerator, the disks' overlays, RAM. */
static int
qemu_prepare_vm(struct backend *b, const struct backend_launch *l,
		struct aerr *err)
{
	const struct backend_config *cfg = &l->cfg;
	struct accel_probe_params ap = {
		.qemu_bin = qemu_binary(),
		.kernel = cfg->kernel,
		.initrd = cfg->initrd,
		.work_dir = l->state_dir,
	};
	struct strbuf why;
	int ret;

	sb_init(&why);
	ret = accel_choose(l->accel, &ap, &b->accel, &why, err);
	if (why.len)
		qemu_log(l, why.data);
	sb_free(&why);
	if (ret < 0)
		return ret;
	b->launch = qemu_pick_launch(l->state_dir, cfg->n_disks);
	b->active = xcalloc(cfg->n_disks + 1, sizeof(char *));
	ret = qemu_prepare_disks(cfg, l->state_dir, l->disk_bases, b->launch,
				 &b->active, err);
	if (ret < 0)
		return ret;
	if (l->incoming_ram && l->ram_private) {
		b->ram_path = xstrdup(l->incoming_ram);
	} else if (l->ram_path) {
		b->ram_path = xstrdup(l->ram_path);
		b->ram_shared = true;
		unlink(b->ram_path);
		ret = l->incoming_ram ?
		      copy_file_sparse(l->incoming_ram, b->ram_path) : 0;
		if (ret < 0)
			aerr_set(err, "qemu: copy %s to %s: %s",
				 l->incoming_ram, b->ram_path, strerror(-ret));
	}
	return ret;
}

/* The state directory and what the VMM finds there when it starts. */
static int
qemu_prepare(struct backend *b, const struct backend_launch *l,
	     struct aerr *err)
{
	char *shared;
	int ret;

	ret = mkdir_p(l->state_dir, 0700);
	if (ret < 0) {
		aerr_set(err, "%s: %s", l->state_dir, strerror(-ret));
		return ret;
	}
	unlink(b->qmp_path);
	unlink(b->pid_path);
	if (!l->cfg.start_command)
		return qemu_prepare_vm(b, l, err);
	shared = xasprintf("%s/shared", l->state_dir);
	ret = mkdir_p(shared, 0700);
	if (ret < 0)
		aerr_set(err, "%s: %s", shared, strerror(-ret));
	free(shared);
	b->accel = "script";
	if (ret == 0 && l->incoming) {
		aerr_set(err, "qemu: a start script cannot restore a snapshot");
		ret = -EOPNOTSUPP;
	}
	return ret;
}

/* b->cmd and b->envp: what the forking thread will run. */
static int
qemu_make_cmd(struct backend *b, const struct backend_launch *l,
	      struct aerr *err)
{
	const struct backend_config *cfg = &l->cfg;
	struct qemu_cmd_params params = {
		.cfg = cfg,
		.qemu_bin = qemu_binary(),
		.state_dir = l->state_dir,
		.console_path = l->console_path,
		.shell_paths = l->shell_paths,
		.n_shells = l->n_shells,
		.accel = b->accel,
		.tcg_cpu = b->script ? accel_script_runs_tcg(l->accel) :
				       !strcmp(b->accel, "tcg"),
		/* The node number when there is one: unique in the mount. */
		.mac_byte = l->node >= 1 && l->node <= 254 ?
			    l->node : qemu_name_byte(cfg->name),
		.nics = l->nics,
		.n_nics = l->n_nics,
		.launch = b->launch,
		.ram_path = b->ram_path,
		.ram_shared = b->ram_shared,
		.vmm_tag = l->vmm_tag,
	};
	const char **qemu_args = qemu_own_args(cfg, &params.n_qemu_args);
	struct stat st;
	int ret;

	params.qemu_args = qemu_args;
	ret = qemu_build_cmd(&params, &b->cmd, err);
	free(qemu_args);
	if (ret < 0)
		return ret;
	b->n_disks = cfg->n_disks;
	if (l->incoming) {
		/* Same devices, then wait for the state (migrate-incoming). */
		b->cmd.argv = xrealloc(b->cmd.argv,
				       (b->cmd.argc + 4) * sizeof(char *));
		b->cmd.argv[b->cmd.argc++] = xstrdup("-incoming");
		b->cmd.argv[b->cmd.argc++] = xstrdup("defer");
		/* A pre-started VMM loads the state long before it may run. */
		if (l->defer_incoming)
			b->cmd.argv[b->cmd.argc++] = xstrdup("-S");
		b->cmd.argv[b->cmd.argc] = NULL;
	}
	if (b->cmd.opts_quoted)
		qemu_log(l, "qemu: QEMU_OPTS has an argument with spaces or "
			 "shell characters; NixOS run scripts expand $QEMU_OPTS "
			 "unquoted and will mangle it");
	b->envp = qemu_make_envp(b->cmd.env, b->cmd.n_env);
	b->log_offset = stat(b->log_path, &st) == 0 ? st.st_size : 0;
	return 0;
}

/* The event thread, then the thread that forks: returns once it forked. */
static int
qemu_spawn(struct backend *b, struct aerr *err)
{
	int ret;

	ret = pthread_create(&b->ev_thread, NULL, qemu_event_main, b);
	if (ret) {
		aerr_set(err, "qemu: cannot create thread: %s", strerror(ret));
		return -ret;
	}
	b->ev_started = true;
	pthread_mutex_lock(&b->lock);
	ret = pthread_create(&b->thread, NULL, qemu_thread_main, b);
	if (ret) {
		pthread_mutex_unlock(&b->lock);
		aerr_set(err, "qemu: cannot create thread: %s", strerror(ret));
		return -ret;
	}
	b->thread_started = true;
	while (!b->spawned)
		pthread_cond_wait(&b->cond, &b->lock);
	ret = b->child >= 0 ? 0 : b->spawn_errno ? -b->spawn_errno : -EIO;
	pthread_mutex_unlock(&b->lock);
	if (ret < 0)
		aerr_set(err, "qemu: fork: %s", strerror(-ret));
	return ret;
}

/* QEMU serves QMP: connect once the socket exists. fd, or -errno. */
static int
qemu_connect(struct backend *b, int64_t deadline, struct aerr *err)
{
	struct timespec ts;
	bool exited;
	int fd;

	for (;;) {
		pthread_mutex_lock(&b->lock);
		exited = b->exited;
		pthread_mutex_unlock(&b->lock);
		if (exited) {
			qemu_exit_reason(b, err);
			return -EIO;
		}
		fd = sock_unix_connect(b->qmp_path);
		if (fd >= 0)
			return fd;
		if (fd != -ENOENT && fd != -ECONNREFUSED) {
			aerr_set(err, "qemu: connect %s: %s", b->qmp_path,
				 strerror(-fd));
			return fd;
		}
		if (now_mono_ms() >= deadline) {
			aerr_set(err, "qemu: QMP socket %s did not appear in "
				 "%d s", b->qmp_path, b->script ?
				 QEMU_SCRIPT_QMP_TIMEOUT_MS / 1000 :
				 QEMU_QMP_TIMEOUT_MS / 1000);
			return -ETIMEDOUT;
		}
		pthread_mutex_lock(&b->lock);
		mono_deadline(&ts, 20);
		if (!b->exited)
			pthread_cond_timedwait(&b->cond, &b->lock, &ts);
		pthread_mutex_unlock(&b->lock);
	}
}

/* Connected, QMP's greeting answered: b->qmp. */
static int
qemu_open_qmp(struct backend *b, struct aerr *err)
{
	int64_t deadline = now_mono_ms() + (b->script ?
					    QEMU_SCRIPT_QMP_TIMEOUT_MS :
					    QEMU_QMP_TIMEOUT_MS);
	struct timespec ts;
	int fd, left, ret;

	fd = qemu_connect(b, deadline, err);
	if (fd < 0)
		return fd;
	left = (int)(deadline - now_mono_ms());
	if (left < 5000)
		left = 5000;
	ret = qmp_open(fd, left, qemu_on_event, NULL, b, &b->qmp, err);
	if (ret < 0) {
		/* Most likely QEMU died: say why, from its log. */
		pthread_mutex_lock(&b->lock);
		mono_deadline(&ts, 500);
		while (!b->exited &&
		       pthread_cond_timedwait(&b->cond, &b->lock, &ts) == 0)
			;
		pthread_mutex_unlock(&b->lock);
		if (b->exited)
			qemu_exit_reason(b, err);
	}
	return ret;
}

/* A pre-started clone's RAM in its page tables while it waits; without
 * that it only starts slower. */
static void
qemu_populate_logged(struct backend *b, const struct backend_launch *l)
{
	struct aerr err = { "" };
	unsigned n;
	char *why;

	if (qemu_populate_ram(b, &n, &err) == 0)
		return;
	why = xasprintf("reading its RAM ahead failed after %u extents: %s", n,
			err.msg);
	qemu_log(l, why);
	free(why);
}

/* The saved state (restore), QEMU's pid; then launch() has succeeded. */
static int
qemu_launch_done(struct backend *b, const struct backend_launch *l,
		 struct aerr *err)
{
	char *pidtext = NULL;
	pid_t pid = 0;
	size_t len;
	int ret = 0;

	if (l->incoming) {
		b->incoming = xstrdup(l->incoming);
		b->incoming_ram = l->incoming_ram != NULL;
		/* Both ends must agree to leave RAM out of the stream. */
		ret = b->incoming_ram ? qemu_set_ignore_shared(b, true, err) : 0;
		/* Deferred: loaded now, run when put to use. */
		if (ret == 0)
			ret = l->defer_incoming ? qemu_incoming_load(b, err) :
						  qemu_incoming(b, err);
		if (ret < 0)
			return ret;
		if (l->defer_incoming && l->ram_private)
			qemu_populate_logged(b, l);
	}
	if (read_file(b->pid_path, &pidtext, &len) == 0)
		pid = (pid_t)atoi(pidtext);
	free(pidtext);
	pthread_mutex_lock(&b->lock);
	qemu_adopt_pid(b, l, pid);
	b->launched = true;
	b->launch_done = true;
	pthread_cond_broadcast(&b->cond);
	pthread_mutex_unlock(&b->lock);
	return 0;
}

static int
qemu_launch(const struct backend_launch *l, struct backend **out,
	    struct aerr *err)
{
	struct backend *b = qemu_new(l);
	int ret;

	*out = NULL;
	ret = qemu_prepare(b, l, err);
	if (ret == 0)
		ret = qemu_make_cmd(b, l, err);
	if (ret == 0)
		ret = qemu_spawn(b, err);
	if (ret == 0)
		ret = qemu_open_qmp(b, err);
	if (ret == 0)
		ret = qemu_launch_done(b, l, err);
	if (ret < 0) {
		qemu_abandon(b);
		return ret;
	}
	*out = b;
	return 0;
}

/* QMP to a machine; a closed connection means QEMU is gone: EIO. */
static int
qemu_qmp(struct backend *b, const char *cmd, int timeout_ms)
{
	struct aerr e;
	int ret;

	ret = qmp_execute(b->qmp, cmd, NULL, timeout_ms, NULL, &e);
	return ret == -EPIPE ? -EIO : ret;
}

static int
qemu_quit(struct backend *b)
{
	struct aerr e;
	int ret;

	pthread_mutex_lock(&b->lock);
	if (b->dead) {
		pthread_mutex_unlock(&b->lock);
		return 0;
	}
	pthread_mutex_unlock(&b->lock);
	/* QEMU replies, then closes: EOF or ECONNRESET, both success. */
	ret = qmp_execute(b->qmp, "quit", NULL, QEMU_QUIT_TIMEOUT_MS, NULL, &e);
	return ret == -EPIPE ? 0 : ret;
}

static int
qemu_kill(struct backend *b)
{
	pthread_mutex_lock(&b->lock);
	qemu_signal_locked(b, SIGKILL);
	pthread_mutex_unlock(&b->lock);
	return 0;
}

static int
qemu_pause(struct backend *b)
{
	return qemu_qmp(b, "stop", QEMU_OP_TIMEOUT_MS);
}

static int
qemu_resume(struct backend *b)
{
	return qemu_qmp(b, "cont", QEMU_OP_TIMEOUT_MS);
}

static int
qemu_command(struct backend *b, const char *json, char **reply,
	     struct aerr *err)
{
	int ret;

	ret = qmp_transact(b->qmp, json, QEMU_COMMAND_TIMEOUT_MS, reply, err);
	if (ret == -EPIPE) {
		aerr_set(err, "QEMU is not running (QMP connection closed)");
		ret = -EIO;
	}
	return ret;
}

static void
qemu_info(struct backend *b, struct strbuf *out)
{
	pid_t pid;

	pthread_mutex_lock(&b->lock);
	pid = b->qemu_pid;
	pthread_mutex_unlock(&b->lock);
	sb_addf(out, "accel %s\n", b->accel);
	sb_addf(out, "pid %d\n", (int)pid);
	sb_addf(out, "qmp %s\n", b->qmp_path);
}

static void
qemu_set_owner(struct backend *b, const struct backend_events *ev,
	       void *owner)
{
	pthread_mutex_lock(&b->lock);
	b->events = ev;
	b->owner = owner;
	pthread_mutex_unlock(&b->lock);
}

static pid_t
qemu_pid(struct backend *b)
{
	pid_t pid;

	pthread_mutex_lock(&b->lock);
	pid = b->qemu_pid;
	pthread_mutex_unlock(&b->lock);
	return pid;
}

static void
qemu_destroy(struct backend *b)
{
	struct timespec ts;
	struct aerr e;
	bool dead;

	if (!b)
		return;
	pthread_mutex_lock(&b->lock);
	b->quiet = true;
	dead = b->dead;
	pthread_mutex_unlock(&b->lock);
	if (!dead) {
		int ret = qmp_execute(b->qmp, "quit", NULL,
				      QEMU_DESTROY_QUIT_MS, NULL, &e);

		pthread_mutex_lock(&b->lock);
		mono_deadline(&ts, QEMU_DESTROY_WAIT_MS);
		while ((ret == 0 || ret == -EPIPE) && !b->exited &&
		       pthread_cond_timedwait(&b->cond, &b->lock, &ts) == 0)
			;
		qemu_signal_locked(b, SIGKILL);
		pthread_mutex_unlock(&b->lock);
	}
	pthread_join(b->thread, NULL);
	qmp_close(b->qmp);
	qemu_stop_events(b);
	qemu_free(b);
}

const struct backend_ops qemu_backend_ops = {
	.name = "qemu",
	.caps = BACKEND_CAP_PAUSE | BACKEND_CAP_SCREENSHOT | BACKEND_CAP_KEYS |
		BACKEND_CAP_LINKS | BACKEND_CAP_FORWARD | BACKEND_CAP_QMP |
		BACKEND_CAP_SNAPSHOT,
	.config_keys = qemu_config_keys,
	.check_config = qemu_check_config,
	.launch = qemu_launch,
	.quit = qemu_quit,
	.kill = qemu_kill,
	.pause = qemu_pause,
	.resume = qemu_resume,
	.command = qemu_command,
	.set_links = qemu_set_links,
	.forward = qemu_forward,
	.save = qemu_save,
	.incoming = qemu_incoming,
	.screenshot = qemu_screenshot,
	.send_keys = qemu_send_keys,
	.set_owner = qemu_set_owner,
	.info = qemu_info,
	.pid = qemu_pid,
	.destroy = qemu_destroy,
};
