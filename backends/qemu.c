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
 */
#include "backends/qemu.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
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

#include <json-c/json.h>

#include "backends/accel.h"
#include "backends/backend.h"
#include "backends/qmp.h"
#include "common/proc.h"
#include "common/sock.h"

#define QEMU_QMP_TIMEOUT_MS 10000        /* QEMU started -> QMP answers */
#define QEMU_SCRIPT_QMP_TIMEOUT_MS 30000 /* a start script may do more first */
#define QEMU_OP_TIMEOUT_MS 10000
#define QEMU_SNAPSHOT_TIMEOUT_MS 120000
#define QEMU_COMMAND_TIMEOUT_MS 60000
#define QEMU_QUIT_TIMEOUT_MS 5000
#define QEMU_DESTROY_QUIT_MS 2000
#define QEMU_DESTROY_WAIT_MS 3000

extern char **environ;

const char *
qemu_binary(void)
{
	const char *s = getenv("ATTESTFS_QEMU");

	return s && *s ? s : "qemu-system-x86_64";
}

const char *
qemu_img_binary(void)
{
	const char *s = getenv("ATTESTFS_QEMU_IMG");

	return s && *s ? s : "qemu-img";
}

/* ---------------------------------------------------------------------- */
/* The command line (pure)                                                */

struct qemu_vec {
	char **v;
	size_t n, cap;
};

static void
qemu_vec_push(struct qemu_vec *vec, char *s)
{
	if (vec->n + 2 > vec->cap) {
		vec->cap = vec->cap ? vec->cap * 2 : 32;
		vec->v = xrealloc(vec->v, vec->cap * sizeof(char *));
	}
	vec->v[vec->n++] = s;
	vec->v[vec->n] = NULL;
}

static void
qemu_vec_free(struct qemu_vec *vec)
{
	size_t i;

	for (i = 0; i < vec->n; i++)
		free(vec->v[i]);
	free(vec->v);
	vec->v = NULL;
	vec->n = vec->cap = 0;
}

void
qemu_sb_add_opt_value(struct strbuf *sb, const char *s)
{
	for (; *s; s++) {
		if (*s == ',')
			sb_add(sb, ",", 1);
		sb_add(sb, s, 1);
	}
}

bool
qemu_sb_add_opts_word(struct strbuf *sb, const char *arg)
{
	const char *p;

	if (*arg) {
		for (p = arg; *p; p++)
			if (!strchr("abcdefghijklmnopqrstuvwxyz"
				    "ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789"
				    "_@%+=:,./-", *p))
				break;
		if (!*p) {
			sb_adds(sb, arg);
			return false;
		}
	}
	sb_add_shell_quoted(sb, arg, strlen(arg));
	return true;
}

unsigned
qemu_name_byte(const char *name)
{
	uint32_t h = 2166136261u;

	for (; name && *name; name++) {
		h ^= (unsigned char)*name;
		h *= 16777619u;
	}
	return h % 254 + 1;
}

/*
 * Collects the arguments. With a start command, the machine-defining ones
 * (the script has its own) are left out and the rest go to QEMU_OPTS.
 */
struct qemu_args {
	struct qemu_vec vec;
	bool script;
};

static void
qemu_arg(struct qemu_args *a, bool machine_only, const char *s)
{
	if (a->script && machine_only)
		return;
	qemu_vec_push(&a->vec, xstrdup(s));
}

static void
qemu_arg2(struct qemu_args *a, bool machine_only, const char *opt,
	  const char *val)
{
	qemu_arg(a, machine_only, opt);
	qemu_arg(a, machine_only, val);
}

/* Append opt and a value from a printf format with %s parts that are
 * already escaped by the caller. */
static void
qemu_argf(struct qemu_args *a, bool machine_only, const char *opt,
	  struct strbuf *val)
{
	qemu_arg2(a, machine_only, opt, val->data ? val->data : "");
	sb_free(val);
}

/* Disk i's overlay for a launch (see struct qemu_cmd_params). */
static char *
qemu_overlay_path(const char *state_dir, size_t i, unsigned launch)
{
	return launch ? xasprintf("%s/disk.%zu.%u.qcow2", state_dir, i, launch) :
			xasprintf("%s/disk.%zu.qcow2", state_dir, i);
}

/* The first launch number whose overlay names are free in state_dir. */
static unsigned
qemu_pick_launch(const char *state_dir, size_t n_disks)
{
	unsigned launch;

	for (launch = 0; n_disks; launch++) {
		char *path = qemu_overlay_path(state_dir, 0, launch);
		int taken = access(path, F_OK) == 0;

		free(path);
		if (!taken)
			break;
	}
	return n_disks ? launch : 0;
}

int
qemu_build_cmd(const struct qemu_cmd_params *p, struct qemu_cmd *out,
	       struct aerr *err)
{
	const struct backend_config *cfg = p->cfg;
	struct qemu_args a = { .script = cfg->start_command != NULL };
	struct qemu_vec env = { 0 };
	struct strbuf sb;
	char num[32];
	size_t i;

	memset(out, 0, sizeof(*out));
	if (!cfg->name || !*cfg->name) {
		aerr_set(err, "qemu: machine has no name");
		return -EINVAL;
	}
	if (!p->console_path || !p->state_dir) {
		aerr_set(err, "qemu: console socket and state directory needed");
		return -EINVAL;
	}
	if (cfg->shell_console && p->n_shells < 1) {
		aerr_set(err, "qemu: the console shell channel needs a socket");
		return -EINVAL;
	}
	if (!a.script && strcmp(p->accel, "kvm") && strcmp(p->accel, "tcg")) {
		aerr_set(err, "qemu: accel must be kvm or tcg, not '%s'",
			 p->accel);
		return -EINVAL;
	}
	for (i = 0; i < p->n_nics; i++) {
		if (p->nics[i].vlan < 1 || p->nics[i].vlan > 255 ||
		    !p->nics[i].switch_path) {
			aerr_set(err, "qemu: VLAN NIC %zu: bad vlan %u or no "
				 "switch", i, p->nics[i].vlan);
			return -EINVAL;
		}
	}

	if (!a.script)
		qemu_arg(&a, true, p->qemu_bin);
	sb_init(&sb);
	qemu_sb_add_opt_value(&sb, cfg->name);
	qemu_argf(&a, true, "-name", &sb);
	qemu_arg(&a, false, "-nodefaults");
	qemu_arg(&a, false, "-no-user-config");
	qemu_arg2(&a, false, "-display", "none");
	qemu_arg2(&a, false, "-vga", "std");
	if (p->ram_path && !a.script) {
		sb_addf(&sb, "memory-backend-file,id=mem,size=%dM,mem-path=",
			cfg->memory_mib > 0 ? cfg->memory_mib : 256);
		qemu_sb_add_opt_value(&sb, p->ram_path);
		sb_addf(&sb, ",share=%s", p->ram_shared ? "on" : "off");
		qemu_argf(&a, true, "-object", &sb);
		qemu_arg2(&a, true, "-machine", "q35,memory-backend=mem");
	} else {
		qemu_arg2(&a, true, "-machine", "q35");
	}
	qemu_arg2(&a, true, "-accel", p->accel);
	qemu_arg2(&a, true, "-cpu", "max");
	snprintf(num, sizeof(num), "%d", cfg->cpus > 0 ? cfg->cpus : 1);
	qemu_arg2(&a, true, "-smp", num);
	snprintf(num, sizeof(num), "%d",
		 cfg->memory_mib > 0 ? cfg->memory_mib : 256);
	qemu_arg2(&a, true, "-m", num);
	if (cfg->kernel)
		qemu_arg2(&a, true, "-kernel", cfg->kernel);
	if (cfg->initrd)
		qemu_arg2(&a, true, "-initrd", cfg->initrd);
	if (cfg->append)
		qemu_arg2(&a, true, "-append", cfg->append);

	sb_adds(&sb, "socket,id=console,path=");
	qemu_sb_add_opt_value(&sb, p->console_path);
	qemu_argf(&a, false, "-chardev", &sb);
	qemu_arg2(&a, false, "-serial", "chardev:console");

	sb_adds(&sb, "unix:");
	qemu_sb_add_opt_value(&sb, p->state_dir);
	if (p->vmm_tag) {
		sb_adds(&sb, "/qmp.");
		qemu_sb_add_opt_value(&sb, p->vmm_tag);
		sb_adds(&sb, ".sock,server=on,wait=off");
	} else {
		sb_adds(&sb, "/qmp.sock,server=on,wait=off");
	}
	qemu_argf(&a, false, "-qmp", &sb);

	qemu_arg2(&a, false, "-device", "virtio-serial-pci,id=vser0");
	if (cfg->shell_console) {
		sb_adds(&sb, "socket,id=shell0,path=");
		qemu_sb_add_opt_value(&sb, p->shell_paths[0]);
		qemu_argf(&a, false, "-chardev", &sb);
		qemu_arg2(&a, false, "-device", "virtconsole,chardev=shell0");
	} else {
		for (i = 0; i < p->n_shells; i++) {
			sb_addf(&sb, "socket,id=shell%zu,path=", i);
			qemu_sb_add_opt_value(&sb, p->shell_paths[i]);
			qemu_argf(&a, false, "-chardev", &sb);
			sb_addf(&sb, "virtserialport,bus=vser0.0,chardev=shell%zu,"
				"name=attestfs.shell.%zu", i, i);
			qemu_argf(&a, false, "-device", &sb);
		}
	}
	qemu_arg2(&a, false, "-device", "virtio-rng-pci");

	qemu_arg2(&a, true, "-netdev", "user,id=user0,restrict=on");
	sb_addf(&sb, "virtio-net-pci,netdev=user0,id=nic0,"
		"mac=52:54:00:12:00:%02x", p->mac_byte & 0xff);
	qemu_argf(&a, true, "-device", &sb);
	/* One NIC per VLAN, as NixOS lays them out: eth1, eth2, ... */
	for (i = 0; i < p->n_nics; i++) {
		const struct backend_nic *n = &p->nics[i];

		sb_addf(&sb, "vde,id=vlan%u,sock=", n->vlan);
		qemu_sb_add_opt_value(&sb, n->switch_path);
		qemu_argf(&a, true, "-netdev", &sb);
		sb_addf(&sb, "virtio-net-pci,netdev=vlan%u,mac=", n->vlan);
		qemu_sb_add_opt_value(&sb, n->mac);
		qemu_argf(&a, true, "-device", &sb);
	}

	for (i = 0; i < cfg->n_disks && !a.script; i++) {
		char *overlay = qemu_overlay_path(p->state_dir, i, p->launch);

		sb_adds(&sb, "file=");
		qemu_sb_add_opt_value(&sb, overlay);
		free(overlay);
		sb_addf(&sb, ",format=qcow2,if=none,id=disk.%zu,"
			"cache=unsafe,discard=unmap", i);
		qemu_argf(&a, true, "-drive", &sb);
		sb_addf(&sb, "virtio-blk-pci,drive=disk.%zu", i);
		qemu_argf(&a, true, "-device", &sb);
	}

	if (p->vmm_tag)
		sb_addf(&sb, "%s/qemu.%s.pid", p->state_dir, p->vmm_tag);
	else
		sb_addf(&sb, "%s/qemu.pid", p->state_dir);
	qemu_argf(&a, false, "-pidfile", &sb);
	for (i = 0; i < p->n_qemu_args; i++)
		qemu_arg(&a, false, p->qemu_args[i]);

	if (!a.script) {
		out->argv = a.vec.v;
		out->argc = a.vec.n;
		qemu_vec_push(&env, NULL); /* an empty, NULL-terminated list */
		env.n = 0;
		out->env = env.v;
		return 0;
	}

	/* Start script: /bin/sh -c CMD, arguments in QEMU_OPTS. */
	sb_adds(&sb, "QEMU_OPTS=");
	for (i = 0; i < a.vec.n; i++) {
		if (i)
			sb_adds(&sb, " ");
		if (qemu_sb_add_opts_word(&sb, a.vec.v[i]))
			out->opts_quoted = true;
	}
	qemu_vec_push(&env, sb_detach(&sb, NULL));
	qemu_vec_push(&env, xasprintf("TMPDIR=%s", p->state_dir));
	qemu_vec_push(&env, xasprintf("SHARED_DIR=%s/shared", p->state_dir));
	qemu_vec_push(&env, xstrdup("USE_TMPDIR=1"));
	for (i = 0; i < p->n_nics; i++)
		qemu_vec_push(&env, xasprintf("QEMU_VDE_SOCKET_%u=%s",
					      p->nics[i].vlan,
					      p->nics[i].switch_path));
	qemu_vec_free(&a.vec);

	qemu_vec_push(&a.vec, xstrdup("/bin/sh"));
	qemu_vec_push(&a.vec, xstrdup("-c"));
	qemu_vec_push(&a.vec, xstrdup(cfg->start_command));
	out->argv = a.vec.v;
	out->argc = a.vec.n;
	out->env = env.v;
	out->n_env = env.n;
	return 0;
}

void
qemu_cmd_free(struct qemu_cmd *c)
{
	struct qemu_vec v = { .v = c->argv, .n = c->argc };
	struct qemu_vec e = { .v = c->env, .n = c->n_env };

	qemu_vec_free(&v);
	qemu_vec_free(&e);
	memset(c, 0, sizeof(*c));
}

/* ---------------------------------------------------------------------- */
/* Helpers                                                                */

static void
qemu_describe_status(struct strbuf *sb, int status)
{
	if (WIFEXITED(status))
		sb_addf(sb, "exit status %d", WEXITSTATUS(status));
	else if (WIFSIGNALED(status))
		sb_addf(sb, "killed by signal %d (%s)", WTERMSIG(status),
			strsignal(WTERMSIG(status)));
	else
		sb_addf(sb, "wait status %#x", status);
}

/* The last lines of text (at most max bytes), newlines as " | ". */
static void
qemu_tail(struct strbuf *sb, const char *text, size_t len, size_t max)
{
	const char *start;
	size_t i;

	while (len && (text[len - 1] == '\n' || text[len - 1] == ' ' ||
		       text[len - 1] == '\r'))
		len--;
	start = len > max ? text + len - max : text;
	if (start != text) {
		const char *nl = memchr(start, '\n', text + len - start);

		if (nl)
			start = nl + 1;
	}
	for (i = 0; start + i < text + len; i++) {
		char c = start[i];

		if (c == '\n')
			sb_adds(sb, " | ");
		else if (c != '\r')
			sb_add(sb, &c, 1);
	}
}

/* Overlay each read-only base as STATE/disk.i.qcow2 (fresh every launch). */
static int
qemu_prepare_disks(const struct backend_config *cfg, const char *state_dir,
		   const char *const *bases, unsigned launch, char ***active,
		   struct aerr *err)
{
	size_t i;
	int ret = 0;

	for (i = 0; i < cfg->n_disks && ret == 0; i++) {
		char *base = realpath(bases ? bases[i] : cfg->disks[i], NULL);
		char *overlay = qemu_overlay_path(state_dir, i, launch);
		struct strbuf out, errout, why;
		json_object *info = NULL, *fmt;
		const char *format = NULL;
		int st;

		sb_init(&out);
		sb_init(&errout);
		sb_init(&why);
		if (!base) {
			ret = -errno;
			aerr_set(err, "disk %zu: %s: %s", i, cfg->disks[i],
				 strerror(errno));
			goto next;
		}
		{
			char *argv[] = { (char *)qemu_img_binary(), "info", "-U",
					 "--output=json", base, NULL };

			st = proc_run_capture(argv, 30000, &out, &errout);
		}
		if (st < 0 || !WIFEXITED(st) || WEXITSTATUS(st) != 0) {
			ret = st < 0 ? st : -EIO;
			if (st < 0)
				sb_adds(&why, strerror(-st));
			else
				qemu_tail(&why, errout.data ? errout.data : "",
					  errout.len, 300);
			aerr_set(err, "disk %zu: qemu-img info %s: %s", i, base,
				 why.data ? why.data : "");
			goto next;
		}
		info = json_tokener_parse(out.data ? out.data : "");
		if (info && json_object_object_get_ex(info, "format", &fmt))
			format = json_object_get_string(fmt);
		if (!format || !*format || strpbrk(format, ", '\"")) {
			ret = -EIO;
			aerr_set(err, "disk %zu: qemu-img info %s: no format",
				 i, base);
			goto next;
		}
		unlink(overlay);
		sb_free(&out);
		sb_free(&errout);
		{
			char *argv[] = { (char *)qemu_img_binary(), "create", "-q",
					 "-f", "qcow2", "-b", base, "-F",
					 (char *)format, overlay, NULL };

			st = proc_run_capture(argv, 30000, &out, &errout);
		}
		if (st < 0 || !WIFEXITED(st) || WEXITSTATUS(st) != 0) {
			ret = st < 0 ? st : -EIO;
			if (st < 0)
				sb_adds(&why, strerror(-st));
			else
				qemu_tail(&why, errout.data ? errout.data : "",
					  errout.len, 300);
			aerr_set(err, "disk %zu: qemu-img create %s: %s", i,
				 overlay, why.data ? why.data : "");
		}
next:
		json_object_put(info);
		sb_free(&out);
		sb_free(&errout);
		sb_free(&why);
		free(base);
		(*active)[i] = overlay;
	}
	return ret;
}

/* environ without the keys in add, followed by add. */
static char **
qemu_make_envp(char *const *add, size_t n_add)
{
	struct qemu_vec v = { 0 };
	char **e;
	size_t i;

	for (e = environ; e && *e; e++) {
		bool dup = false;

		for (i = 0; i < n_add && !dup; i++) {
			size_t k = strcspn(add[i], "=");

			dup = !strncmp(*e, add[i], k) && (*e)[k] == '=';
		}
		if (!dup)
			qemu_vec_push(&v, xstrdup(*e));
	}
	for (i = 0; i < n_add; i++)
		qemu_vec_push(&v, xstrdup(add[i]));
	if (!v.v)
		qemu_vec_push(&v, NULL);
	return v.v;
}

static void
qemu_free_strv(char **v)
{
	char **p;

	for (p = v; p && *p; p++)
		free(*p);
	free(v);
}

/* The "qemu_args" key (an array of strings: check_config saw to it), as a
 * malloc'd vector of strings borrowed from cfg->own. */
static const char **
qemu_own_args(const struct backend_config *cfg, size_t *n)
{
	struct json_object *a = NULL;
	const char **v;
	size_t i;

	*n = 0;
	if (cfg->own && json_object_object_get_ex(cfg->own, "qemu_args", &a) &&
	    json_object_is_type(a, json_type_array))
		*n = json_object_array_length(a);
	v = xcalloc(*n + 1, sizeof(*v));
	for (i = 0; i < *n; i++)
		v[i] = json_object_get_string(json_object_array_get_idx(a, i));
	return v;
}

static const char *const qemu_config_keys[] = { "qemu_args", NULL };

static int
qemu_check_config(struct backend_check *c)
{
	const struct backend_config *cfg = c->cfg;
	int ret = backend_check_strings(c, "qemu_args");

	if (ret < 0)
		return ret;
	if (!cfg->kernel && !cfg->n_disks && !cfg->start_command)
		return backend_check_fail(c, NULL, "a qemu machine needs "
					  "\"kernel\", \"disks\" or "
					  "\"start_command\"");
	return backend_check_files(c);
}

/* ---------------------------------------------------------------------- */
/* The machine                                                            */

struct qemu_event {
	char *name;
	char *detail;
	struct qemu_event *next;
};

struct backend {
	pthread_mutex_t lock;
	pthread_cond_t cond;         /* CLOCK_MONOTONIC */

	char *name;
	char *state_dir;
	char *log_path;
	char *qmp_path;
	char *pid_path;
	const char *accel;           /* "kvm" | "tcg" | "script" */
	const struct backend_events *events;
	void *owner;

	struct qemu_cmd cmd;
	char **envp;

	pthread_t thread;
	bool thread_started;
	bool spawned;                /* fork() returned in the thread */
	int spawn_errno;
	pid_t child;                 /* what we forked: QEMU or the script */
	pid_t qemu_pid;              /* QEMU's own (from -pidfile) */
	int qemu_pidfd;              /* ...held when it is not child, or -1 */
	bool dead;                   /* child has exited (not yet reaped) */
	bool exited;                 /* reaped; status valid */
	int status;
	bool launch_done;            /* launch() has decided */
	bool launched;               /* ... and succeeded */
	bool quiet;                  /* no more callbacks (destroy/failure) */

	pthread_t ev_thread;
	bool ev_started;
	bool ev_stop;
	struct qemu_event *ev_head, **ev_tail;
	bool exit_pending;           /* the event thread owes "exited" */

	struct qmp *qmp;
	off_t log_offset;

	unsigned *vlans;             /* the VLAN NICs' numbers: ids "vlanN" */
	size_t n_vlans;
	size_t n_disks;
	unsigned launch;             /* names this launch's overlays */
	char **active;               /* each disk's active overlay now */
	bool script;                 /* a start script made the NICs */

	char *ram_path;              /* guest RAM file, or NULL */
	bool ram_shared;             /* ours, share=on: snapshots copy it */
	char *incoming;              /* state still to load, or NULL */
	bool incoming_ram;           /* ... saved without RAM (x-ignore-shared) */
};

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

bool
qemu_pid_is_ours(pid_t pid, pid_t child)
{
	char path[64], buf[1024], *p;
	long ppid, pgrp, sid;
	ssize_t n;
	int fd;

	if (pid <= 0 || child <= 0)
		return false;
	if (pid == child)
		return true;
	snprintf(path, sizeof(path), "/proc/%d/stat", (int)pid);
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return false;
	n = read(fd, buf, sizeof(buf) - 1);
	close(fd);
	if (n <= 0)
		return false;
	buf[n] = '\0';
	/* After the command name, which may hold spaces and parentheses. */
	p = strrchr(buf, ')');
	if (!p || sscanf(p + 1, " %*c %ld %ld %ld", &ppid, &pgrp, &sid) != 3)
		return false;
	return sid == child || pgrp == child || ppid == child;
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
	if (b->ram_path && b->ram_shared)
		unlink(b->ram_path);
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

/* QMP with arguments built by json-c; *ret as qmp_execute. */
static int
qemu_qmp_args(struct backend *b, const char *cmd, json_object *args,
	      int timeout_ms, char **ret, struct aerr *err)
{
	int r = qmp_execute(b->qmp, cmd, args ?
			    json_object_to_json_string_ext(args,
							   JSON_C_TO_STRING_PLAIN) :
			    NULL, timeout_ms, ret, err);

	json_object_put(args);
	return r == -EPIPE ? -EIO : r;
}

static json_object *
qemu_obj1(const char *key, json_object *value)
{
	json_object *o = json_object_new_object();

	json_object_object_add(o, key, value);
	return o;
}

/* The "status" string of a query-* reply, malloc'd, or NULL. */
static char *
qemu_status_of(const char *reply)
{
	json_object *o = json_tokener_parse(reply ? reply : "");
	json_object *st;
	char *s = NULL;

	if (o && json_object_object_get_ex(o, "status", &st))
		s = xstrdup(json_object_get_string(st));
	json_object_put(o);
	return s;
}

/* Poll a query command until its status leaves `busy` values. */
static int
qemu_poll_status(struct backend *b, const char *query,
		 const char *const *busy, char **status, struct aerr *err)
{
	int64_t deadline = now_mono_ms() + QEMU_SNAPSHOT_TIMEOUT_MS;

	for (;;) {
		char *reply = NULL, *st;
		int ret = qemu_qmp_args(b, query, NULL, QEMU_OP_TIMEOUT_MS,
					&reply, err);
		size_t i;
		int waiting = 0;

		if (ret < 0)
			return ret;
		st = qemu_status_of(reply);
		free(reply);
		for (i = 0; st && busy[i]; i++)
			waiting |= !strcmp(st, busy[i]);
		if (!waiting) {
			*status = st ? st : xstrdup("");
			return 0;
		}
		free(st);
		if (now_mono_ms() >= deadline) {
			aerr_set(err, "qemu: %s did not finish in %d s", query,
				 QEMU_SNAPSHOT_TIMEOUT_MS / 1000);
			return -ETIMEDOUT;
		}
		usleep(2000);
	}
}

static int
qemu_set_ignore_shared(struct backend *b, bool on, struct aerr *err)
{
	json_object *cap = json_object_new_object(), *caps;

	json_object_object_add(cap, "capability",
			       json_object_new_string("x-ignore-shared"));
	json_object_object_add(cap, "state", json_object_new_boolean(on));
	caps = json_object_new_array();
	json_object_array_add(caps, cap);
	return qemu_qmp_args(b, "migrate-set-capabilities",
			     qemu_obj1("capabilities", caps),
			     QEMU_OP_TIMEOUT_MS, NULL, err);
}

/* Hand QEMU an open file as fdname for an fd: migration URI: no helper
 * process and no pipe between the file and QEMU. */
static int
qemu_pass_file(struct backend *b, const char *path, int flags,
	       const char *fdname, struct aerr *err)
{
	json_object *args;
	int fd = open(path, flags | O_CLOEXEC, 0600), ret;

	if (fd < 0) {
		ret = -errno;
		aerr_set(err, "qemu: %s: %s", path, strerror(errno));
		return ret;
	}
	args = qemu_obj1("fdname", json_object_new_string(fdname));
	ret = qmp_execute_fd(b->qmp, "getfd", json_object_to_json_string(args),
			     fd, QEMU_OP_TIMEOUT_MS, NULL, err);
	json_object_put(args);
	close(fd);
	return ret;
}

/* -incoming defer: load the saved state, then run. */
static int
qemu_incoming(struct backend *b, struct aerr *err)
{
	static const char *const busy[] = { "inmigrate", NULL };
	char *st = NULL;
	int ret;

	if (!b->incoming) {
		aerr_set(err, "qemu: no saved state to load");
		return -EINVAL;
	}
	ret = qemu_pass_file(b, b->incoming, O_RDONLY, "incoming", err);
	if (ret == 0)
		ret = qemu_qmp_args(b, "migrate-incoming",
				    qemu_obj1("uri",
					      json_object_new_string("fd:incoming")),
				    QEMU_OP_TIMEOUT_MS, NULL, err);
	if (ret < 0)
		return ret;
	ret = qemu_poll_status(b, "query-status", busy, &st, err);
	if (ret < 0)
		return ret;
	/* The state carries the saved run state (paused: saved after stop). */
	if (strcmp(st, "running"))
		ret = qemu_qmp_args(b, "cont", NULL, QEMU_OP_TIMEOUT_MS, NULL,
				    err);
	free(st);
	if (ret == 0) {
		free(b->incoming);
		b->incoming = NULL;
	}
	return ret;
}

/*
 * Freeze disk i into dir: the guest goes on over a new overlay that QEMU
 * creates above the active one, and the snapshot keeps the active one by a
 * hard link. Its backing chain names older overlays of this state dir; none
 * is ever overwritten (every launch and freeze gets new names).
 */
static int
qemu_freeze_disk(struct backend *b, size_t i, const char *dir,
		 struct aerr *err)
{
	static unsigned freezes;
	char *frozen = xasprintf("%s/disk.%zu.qcow2", dir, i);
	char *next = xasprintf("%s/disk.%zu.s%u.qcow2", b->state_dir, i,
			       __atomic_add_fetch(&freezes, 1, __ATOMIC_RELAXED));
	char *device = xasprintf("disk.%zu", i);
	json_object *args;
	int ret = 0;

	unlink(next);
	if (link(b->active[i], frozen) < 0) {
		ret = -errno;
		aerr_set(err, "link %s: %s", b->active[i], strerror(errno));
		goto out;
	}
	args = json_object_new_object();
	json_object_object_add(args, "device", json_object_new_string(device));
	json_object_object_add(args, "snapshot-file",
			       json_object_new_string(next));
	json_object_object_add(args, "format", json_object_new_string("qcow2"));
	ret = qemu_qmp_args(b, "blockdev-snapshot-sync", args,
			    QEMU_OP_TIMEOUT_MS, NULL, err);
	if (ret == 0) {
		free(b->active[i]);
		b->active[i] = next;
		next = NULL;
	}
out:
	free(frozen);
	free(next);
	free(device);
	return ret;
}

static int
qemu_save(struct backend *b, const char *dir, const char *ram_out,
	  int *ram_saved, struct aerr *err)
{
	static const char *const busy[] = { "setup", "active", "pre-switchover",
					    "device", NULL };
	char *state = xasprintf("%s/state", dir), *st = NULL;
	bool with_ram = b->ram_shared && ram_out;
	struct aerr ignored;
	size_t i;
	int ret, ret2;

	*ram_saved = 0;
	if (b->script) {
		/* NixOS's run-<name>-vm mounts /nix/store and xchg over 9p,
		 * and QEMU blocks migration while a 9p export is mounted. */
		aerr_set(err, "qemu: snapshots of start-script machines are not "
			 "supported (NixOS run-<name>-vm scripts mount 9p "
			 "exports, and QEMU refuses to save a guest while one "
			 "is mounted)");
		free(state);
		return -EOPNOTSUPP;
	}
	/* The default bandwidth cap (128 MiB/s) would make saving slow. */
	ret = qemu_qmp_args(b, "migrate-set-parameters",
			    qemu_obj1("max-bandwidth",
				      json_object_new_int64(10737418240LL)),
			    QEMU_OP_TIMEOUT_MS, NULL, err);
	/* RAM in a shared file is copied as a file, not streamed. */
	if (ret == 0)
		ret = qemu_set_ignore_shared(b, with_ram, err);
	if (ret == 0)
		ret = qemu_qmp_args(b, "stop", NULL, QEMU_OP_TIMEOUT_MS, NULL,
				    err);
	if (ret < 0)
		goto out;
	/* Disks first: after the migration QEMU has let go of them. */
	for (i = 0; i < b->n_disks && ret == 0; i++)
		ret = qemu_freeze_disk(b, i, dir, err);
	if (ret == 0)
		ret = qemu_pass_file(b, state, O_WRONLY | O_CREAT | O_TRUNC,
				     "snapshot", err);
	if (ret == 0)
		ret = qemu_qmp_args(b, "migrate",
				    qemu_obj1("uri",
					      json_object_new_string("fd:snapshot")),
				    QEMU_OP_TIMEOUT_MS, NULL, err);
	if (ret == 0)
		ret = qemu_poll_status(b, "query-migrate", busy, &st, err);
	if (ret == 0 && strcmp(st, "completed")) {
		aerr_set(err, "qemu: migration to %s ended %s", state, st);
		ret = -EIO;
	}
	/* Still stopped: the RAM file holds exactly the saved moment. */
	if (ret == 0 && with_ram) {
		ret = copy_file_sparse(b->ram_path, ram_out);
		if (ret < 0)
			aerr_set(err, "qemu: copy %s to %s: %s", b->ram_path,
				 ram_out, strerror(-ret));
		else
			*ram_saved = 1;
	}
	/* Running again, whatever happened (cont reactivates the disks). */
	ret2 = qemu_qmp_args(b, "cont", NULL, QEMU_OP_TIMEOUT_MS, NULL,
			     ret < 0 ? &ignored : err);
	if (ret == 0)
		ret = ret2;
out:
	free(state);
	free(st);
	return ret;
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

static int
qemu_launch(const struct backend_launch *l, struct backend **out,
	    struct aerr *err)
{
	const struct backend_config *cfg = &l->cfg;
	struct qemu_cmd_params params;
	const char **qemu_args = NULL;
	size_t n_args;
	struct backend *b;
	pthread_condattr_t ca;
	struct timespec ts;
	struct stat st;
	struct strbuf why;
	int64_t deadline;
	char *pidtext = NULL;
	size_t len, i;
	int ret, fd, left;
	pid_t pid = 0;

	*out = NULL;
	b = xcalloc(1, sizeof(*b));
	b->qemu_pidfd = -1;
	pthread_mutex_init(&b->lock, NULL);
	pthread_condattr_init(&ca);
	pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
	pthread_cond_init(&b->cond, &ca);
	pthread_condattr_destroy(&ca);
	b->name = xstrdup(cfg->name);
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
	b->script = cfg->start_command != NULL;
	b->n_vlans = l->n_nics;
	b->vlans = xcalloc(l->n_nics + 1, sizeof(*b->vlans));
	for (i = 0; i < l->n_nics; i++)
		b->vlans[i] = l->nics[i].vlan;

	ret = mkdir_p(l->state_dir, 0700);
	if (ret < 0) {
		aerr_set(err, "%s: %s", l->state_dir, strerror(-ret));
		goto fail;
	}
	unlink(b->qmp_path);
	unlink(b->pid_path);

	if (cfg->start_command) {
		char *shared = xasprintf("%s/shared", l->state_dir);

		ret = mkdir_p(shared, 0700);
		if (ret < 0)
			aerr_set(err, "%s: %s", shared, strerror(-ret));
		free(shared);
		if (ret < 0)
			goto fail;
		b->accel = "script";
	} else {
		struct accel_probe_params ap = {
			.qemu_bin = qemu_binary(),
			.kernel = cfg->kernel,
			.initrd = cfg->initrd,
			.work_dir = l->state_dir,
		};

		sb_init(&why);
		ret = accel_choose(l->accel, &ap, &b->accel, &why, err);
		if (why.len)
			qemu_log(l, why.data);
		sb_free(&why);
		if (ret < 0)
			goto fail;
		b->launch = qemu_pick_launch(l->state_dir, cfg->n_disks);
		b->active = xcalloc(cfg->n_disks + 1, sizeof(char *));
		ret = qemu_prepare_disks(cfg, l->state_dir, l->disk_bases,
					 b->launch, &b->active, err);
		if (ret < 0)
			goto fail;
		if (l->incoming_ram && l->ram_private) {
			b->ram_path = xstrdup(l->incoming_ram);
		} else if (l->ram_path) {
			b->ram_path = xstrdup(l->ram_path);
			b->ram_shared = true;
			unlink(b->ram_path);
			ret = l->incoming_ram ?
			      copy_file_sparse(l->incoming_ram, b->ram_path) : 0;
			if (ret < 0) {
				aerr_set(err, "qemu: copy %s to %s: %s",
					 l->incoming_ram, b->ram_path,
					 strerror(-ret));
				goto fail;
			}
		}
	}

	if (l->incoming && cfg->start_command) {
		aerr_set(err, "qemu: a start script cannot restore a snapshot");
		ret = -EOPNOTSUPP;
		goto fail;
	}
	qemu_args = qemu_own_args(cfg, &n_args);
	params = (struct qemu_cmd_params){
		.cfg = cfg,
		.qemu_args = qemu_args,
		.n_qemu_args = n_args,
		.qemu_bin = qemu_binary(),
		.state_dir = l->state_dir,
		.console_path = l->console_path,
		.shell_paths = l->shell_paths,
		.n_shells = l->n_shells,
		.accel = b->accel,
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
	ret = qemu_build_cmd(&params, &b->cmd, err);
	free(qemu_args);
	if (ret < 0)
		goto fail;
	b->n_disks = cfg->n_disks;
	if (l->incoming) {
		/* Same devices, then wait for the state (migrate-incoming). */
		b->cmd.argv = xrealloc(b->cmd.argv,
				       (b->cmd.argc + 3) * sizeof(char *));
		b->cmd.argv[b->cmd.argc++] = xstrdup("-incoming");
		b->cmd.argv[b->cmd.argc++] = xstrdup("defer");
		b->cmd.argv[b->cmd.argc] = NULL;
	}
	if (b->cmd.opts_quoted)
		qemu_log(l, "qemu: QEMU_OPTS has an argument with spaces or "
			 "shell characters; NixOS run scripts expand $QEMU_OPTS "
			 "unquoted and will mangle it");
	b->envp = qemu_make_envp(b->cmd.env, b->cmd.n_env);
	b->log_offset = stat(b->log_path, &st) == 0 ? st.st_size : 0;

	ret = pthread_create(&b->ev_thread, NULL, qemu_event_main, b);
	if (ret) {
		aerr_set(err, "qemu: cannot create thread: %s", strerror(ret));
		ret = -ret;
		goto fail;
	}
	b->ev_started = true;

	/* The thread forks; wait for it to say how that went. */
	pthread_mutex_lock(&b->lock);
	ret = pthread_create(&b->thread, NULL, qemu_thread_main, b);
	if (ret) {
		pthread_mutex_unlock(&b->lock);
		aerr_set(err, "qemu: cannot create thread: %s", strerror(ret));
		ret = -ret;
		goto fail;
	}
	b->thread_started = true;
	while (!b->spawned)
		pthread_cond_wait(&b->cond, &b->lock);
	if (b->child < 0) {
		ret = -b->spawn_errno;
		pthread_mutex_unlock(&b->lock);
		aerr_set(err, "qemu: fork: %s", strerror(-ret));
		goto fail;
	}
	pthread_mutex_unlock(&b->lock);

	/* QEMU serves QMP: connect once the socket exists. */
	deadline = now_mono_ms() + (cfg->start_command ?
				    QEMU_SCRIPT_QMP_TIMEOUT_MS :
				    QEMU_QMP_TIMEOUT_MS);
	for (;;) {
		pthread_mutex_lock(&b->lock);
		if (b->exited) {
			pthread_mutex_unlock(&b->lock);
			qemu_exit_reason(b, err);
			ret = -EIO;
			goto fail;
		}
		pthread_mutex_unlock(&b->lock);
		fd = sock_unix_connect(b->qmp_path);
		if (fd >= 0)
			break;
		if (fd != -ENOENT && fd != -ECONNREFUSED) {
			aerr_set(err, "qemu: connect %s: %s", b->qmp_path,
				 strerror(-fd));
			ret = fd;
			goto fail;
		}
		if (now_mono_ms() >= deadline) {
			aerr_set(err, "qemu: QMP socket %s did not appear in "
				 "%d s", b->qmp_path,
				 (cfg->start_command ? QEMU_SCRIPT_QMP_TIMEOUT_MS :
				  QEMU_QMP_TIMEOUT_MS) / 1000);
			ret = -ETIMEDOUT;
			goto fail;
		}
		pthread_mutex_lock(&b->lock);
		mono_deadline(&ts, 20);
		if (!b->exited)
			pthread_cond_timedwait(&b->cond, &b->lock, &ts);
		pthread_mutex_unlock(&b->lock);
	}
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
		goto fail;
	}

	if (l->incoming) {
		b->incoming = xstrdup(l->incoming);
		b->incoming_ram = l->incoming_ram != NULL;
		/* Both ends must agree to leave RAM out of the stream. */
		ret = b->incoming_ram ? qemu_set_ignore_shared(b, true, err) : 0;
		if (ret == 0 && !l->defer_incoming)
			ret = qemu_incoming(b, err);
		if (ret < 0)
			goto fail;
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
	*out = b;
	return 0;

fail:
	qemu_abandon(b);
	return ret < 0 ? ret : -EIO;
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

static int
qemu_set_links(struct backend *b, int up, struct aerr *err)
{
	struct aerr e = { "" };
	char args[64];
	size_t i;
	int ret;

	for (i = 0; i < b->n_vlans; i++) {
		snprintf(args, sizeof(args), "{\"name\": \"vlan%u\", \"up\": %s}",
			 b->vlans[i], up ? "true" : "false");
		ret = qmp_execute(b->qmp, "set_link", args, QEMU_OP_TIMEOUT_MS,
				  NULL, &e);
		if (ret < 0) {
			aerr_set(err, "set_link vlan%u: %s", b->vlans[i],
				 ret == -EPIPE ? "QEMU is not running" : e.msg);
			return ret == -EPIPE ? -EIO : ret;
		}
	}
	return 0;
}

/* hostfwd_add through HMP: QEMU 7.2 has no QMP command for it. */
static int
qemu_forward(struct backend *b, unsigned host_port, unsigned guest_port,
	     struct aerr *err)
{
	struct aerr e = { "" };
	json_object *args = json_object_new_object(), *text;
	char *line, *reply = NULL;
	const char *said;
	size_t n;
	int ret;

	/* A start script names its user-mode netdev itself: use the first. */
	line = xasprintf("hostfwd_add %stcp:127.0.0.1:%u-:%u",
			 b->script ? "" : "user0 ", host_port, guest_port);
	json_object_object_add(args, "command-line",
			       json_object_new_string(line));
	ret = qmp_execute(b->qmp, "human-monitor-command",
			  json_object_to_json_string(args), QEMU_OP_TIMEOUT_MS,
			  &reply, &e);
	json_object_put(args);
	if (ret < 0) {
		aerr_set(err, "%s: %s", line,
			 ret == -EPIPE ? "QEMU is not running" : e.msg);
		free(line);
		return ret == -EPIPE ? -EIO : ret;
	}
	/* HMP says what went wrong as its output; success says nothing. */
	text = json_tokener_parse(reply ? reply : "");
	said = json_object_is_type(text, json_type_string) ?
		       json_object_get_string(text) : "";
	n = strlen(said);
	while (n && (said[n - 1] == '\n' || said[n - 1] == '\r'))
		n--;
	if (n) {
		aerr_set(err, "%s: %.*s", line, (int)n, said);
		ret = strstr(said, "Could not set up") ? -EADDRINUSE : -EIO;
	}
	json_object_put(text);
	free(reply);
	free(line);
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

static int
qemu_screenshot(struct backend *b, const char *path, struct aerr *err)
{
	json_object *args = json_object_new_object();

	json_object_object_add(args, "filename", json_object_new_string(path));
	json_object_object_add(args, "format", json_object_new_string("png"));
	return qemu_qmp_args(b, "screendump", args, QEMU_OP_TIMEOUT_MS, NULL,
			     err);
}

static int
qemu_send_keys(struct backend *b, const char *const *keys, size_t n,
	       struct aerr *err)
{
	json_object *list = json_object_new_array(), *args;
	size_t i;

	for (i = 0; i < n; i++) {
		json_object *k = json_object_new_object();

		json_object_object_add(k, "type", json_object_new_string("qcode"));
		json_object_object_add(k, "data", json_object_new_string(keys[i]));
		json_object_array_add(list, k);
	}
	args = qemu_obj1("keys", list);
	/* QEMU holds each key 100 ms by default: typing would crawl. */
	json_object_object_add(args, "hold-time", json_object_new_int(20));
	return qemu_qmp_args(b, "send-key", args, QEMU_OP_TIMEOUT_MS, NULL,
			     err);
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
