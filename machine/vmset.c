/*
 * The set of machines of one mount: creation, teardown, the RAM directory,
 * the state_dir checks and the global timer.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <dirent.h>
#include <fcntl.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include "machine/internal.h"

#define EVENTS_KEEP (256u << 10)

/* ---- the set of machines of one mount ------------------------------------ */

static void *
global_timer(void *arg)
{
	struct vmset *s = arg;
	struct timespec ts;
	int timed_out = 0;
	size_t i;

	mono_deadline(&ts, (int64_t)s->opt.global_timeout * 1000);
	pthread_mutex_lock(&s->lock);
	while (!s->stopping && !timed_out)
		timed_out = pthread_cond_timedwait(&s->timer_cond, &s->lock,
						   &ts) == ETIMEDOUT;
	pthread_mutex_unlock(&s->lock);
	if (!timed_out)
		return NULL;
	for (i = 0; vmset_machine(s, i); i++) {
		struct machine *m = vmset_machine(s, i);

		machine_lock(m);
		machine_log_line(m, "global timeout: halting every machine");
		waiters_fail(m, -ETIMEDOUT);
		if (m->be)
			machine_halt_locked(m);
		machine_unlock(m);
	}
	return NULL;
}

/*
 * A RAM directory whose daemon died without cleaning up (SIGKILL, a crash)
 * would hold guest RAM in memory until reboot. Each daemon keeps a lock on
 * its own directory's .owner; the next daemon removes those nobody holds.
 * A directory without .owner is being made right now: left alone.
 */
static void
ram_dirs_reap(const char *base)
{
	struct dirent *de;
	DIR *d = opendir(base);

	while (d && (de = readdir(d))) {
		struct stat st;
		int fd, owner;

		if (strncmp(de->d_name, "attestfs-ram.", 13))
			continue;
		/* base may be world-writable: by descriptor, no link followed,
		 * and only what is ours. */
		fd = openat(dirfd(d), de->d_name, O_RDONLY | O_DIRECTORY |
			    O_NOFOLLOW | O_CLOEXEC);
		if (fd < 0)
			continue;
		owner = -1;
		if (fstat(fd, &st) == 0 && st.st_uid == geteuid())
			owner = openat(fd, ".owner", O_RDWR | O_NOFOLLOW |
				       O_NONBLOCK | O_CLOEXEC);
		if (owner >= 0 && flock(owner, LOCK_EX | LOCK_NB) == 0 &&
		    remove_tree_at(dirfd(d), de->d_name) == 0)
			fprintf(stderr, "attestfs: removed %s/%s, left by a "
				"daemon that did not exit cleanly\n", base,
				de->d_name);
		if (owner >= 0)
			close(owner);
		close(fd);
	}
	if (d)
		closedir(d);
}

/*
 * The shell and QMP sockets live in state_dir: whoever can write there can
 * replace them. It must be a directory of the daemon's user that nobody else
 * may write to.
 */
static int
state_dir_check(const char *dir, struct aerr *err)
{
	struct stat st;

	if (lstat(dir, &st) < 0) {
		aerr_set(err, "state_dir %s: %s", dir, strerror(errno));
		return -errno;
	}
	if (!S_ISDIR(st.st_mode)) {
		aerr_set(err, "state_dir %s: not a directory", dir);
		return -ENOTDIR;
	}
	if (st.st_uid != geteuid()) {
		aerr_set(err, "state_dir %s: owned by uid %u, not by the "
			 "daemon's user (uid %u); its sockets would be open to "
			 "that user: use a directory of your own", dir,
			 (unsigned)st.st_uid, (unsigned)geteuid());
		return -EPERM;
	}
	if (st.st_mode & (S_IWGRP | S_IWOTH)) {
		aerr_set(err, "state_dir %s: writable by others (mode %04o); "
			 "its sockets could be replaced: chmod go-w %s", dir,
			 (unsigned)(st.st_mode & 07777), dir);
		return -EPERM;
	}
	return 0;
}

/* Shared memory when there is some: a RAM file on a disk would be written
 * back to it while the guest runs. */
static int
ram_dir_create(struct vmset *s, struct aerr *err)
{
	const char *base = s->opt.ram_dir;
	char *tmpl, *lock, *owner;
	int e;

	if (!base)
		base = access("/dev/shm", W_OK | X_OK) == 0 ? "/dev/shm" :
							      s->state_dir;
	ram_dirs_reap(base);
	tmpl = xasprintf("%s/attestfs-ram.XXXXXX", base);
	if (!mkdtemp(tmpl)) {
		e = errno;
		aerr_set(err, "ram_dir: mkdtemp %s: %s", tmpl, strerror(e));
		free(tmpl);
		return -e;
	}
	s->ram_dir = tmpl;
	s->opt.ram_dir = NULL;
	/* Locked before it has its name: .owner never exists unlocked. */
	lock = xasprintf("%s/.owner.new", tmpl);
	owner = xasprintf("%s/.owner", tmpl);
	s->ram_lock_fd = open(lock, O_RDWR | O_CREAT | O_EXCL | O_NOFOLLOW |
			      O_CLOEXEC, 0600);
	e = s->ram_lock_fd < 0 ? errno : 0;
	if (!e && (flock(s->ram_lock_fd, LOCK_EX | LOCK_NB) < 0 ||
		   rename(lock, owner) < 0))
		e = errno;
	if (e)
		aerr_set(err, "ram_dir: lock %s: %s", owner, strerror(e));
	free(lock);
	free(owner);
	return -e;
}

int
vmset_create(const struct vmset_options *opt, struct attest_config *cfg,
	     struct vmset **out, struct aerr *err)
{
	struct vmset *s = xcalloc(1, sizeof(*s));
	pthread_condattr_t ca;
	char *path;
	size_t i;
	int ret = 0;

	s->opt = *opt;
	if (s->opt.timeout <= 0)
		s->opt.timeout = cfg->timeout > 0 ? cfg->timeout : 900;
	if (s->opt.global_timeout <= 0)
		s->opt.global_timeout = 3600;
	s->ram_lock_fd = -1;
	s->state_dir = xstrdup(opt->state_dir);
	s->mountpoint = xstrdup(opt->mountpoint ? opt->mountpoint : "/vms");
	s->opt.state_dir = s->state_dir;
	s->opt.mountpoint = s->mountpoint;
	pthread_mutex_init(&s->lock, NULL);
	pthread_mutex_init(&s->add_lock, NULL);
	pthread_condattr_init(&ca);
	pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
	pthread_cond_init(&s->timer_cond, &ca);
	pthread_condattr_destroy(&ca);
	if (!s->opt.log_max)
		s->opt.log_max = VMSET_LOG_MAX_DEFAULT;
	tailbuf_init(&s->events, EVENTS_KEEP);
	s->events_file.rf_fd = -1;
	s->cfg = *cfg;
	memset(cfg, 0, sizeof(*cfg));
	*out = s;

	ret = mkdir_p(s->state_dir, 0700);
	if (ret < 0) {
		aerr_set(err, "mkdir %s: %s", s->state_dir, strerror(-ret));
		return ret;
	}
	ret = state_dir_check(s->state_dir, err);
	if (ret < 0)
		return ret;
	path = xasprintf("%s/events", s->state_dir);
	rotfile_open(&s->events_file, path, s->opt.log_max);
	free(path);
	ret = ram_dir_create(s, err);
	if (ret < 0)
		return ret;
	/* Room for clones up front: readers index it without a lock. */
	s->machines_cap = s->cfg.n_machines + VMSET_MAX_CLONES;
	s->machines = xcalloc(s->machines_cap, sizeof(*s->machines));
	for (i = 0; i < s->cfg.n_machines; i++) {
		ret = machine_create(s, &s->cfg.machines[i], (unsigned)i + 1,
				     NULL, &s->machines[i], err);
		s->n_machines = i + 1;
		if (ret < 0)
			return ret;
	}
	ret = net_start(s, err);
	if (ret < 0)
		return ret;
	if (pthread_create(&s->timer, NULL, global_timer, s) != 0) {
		aerr_set(err, "cannot start the global timer");
		return -EAGAIN;
	}
	return 0;
}

void
vmset_destroy(struct vmset *s)
{
	size_t i;

	if (!s)
		return;
	pthread_mutex_lock(&s->lock);
	s->stopping = 1;
	pthread_cond_broadcast(&s->timer_cond);
	pthread_mutex_unlock(&s->lock);
	if (s->timer)
		pthread_join(s->timer, NULL);
	for (i = 0; i < s->n_machines; i++)
		if (s->machines[i])
			machine_destroy(s->machines[i]);
	free(s->machines);
	/* The switches go after every VMM that used them. */
	net_stop(s);
	config_free(&s->cfg);
	rotfile_close(&s->events_file);
	tailbuf_free(&s->events);
	pthread_mutex_destroy(&s->lock);
	pthread_cond_destroy(&s->timer_cond);
	if (s->ram_dir)
		remove_tree(s->ram_dir);
	if (s->ram_lock_fd >= 0)
		close(s->ram_lock_fd);
	free(s->ram_dir);
	free(s->state_dir);
	free(s->mountpoint);
	free(s);
}

struct machine *
vmset_machine(struct vmset *s, size_t i)
{
	return i < __atomic_load_n(&s->n_machines, __ATOMIC_ACQUIRE) ?
		       s->machines[i] : NULL;
}

int
machine_removed(const struct machine *m)
{
	return __atomic_load_n(&m->removed, __ATOMIC_ACQUIRE);
}
struct machine *
vmset_find(struct vmset *s, const char *name)
{
	size_t i;

	struct machine *m;

	for (i = 0; (m = vmset_machine(s, i)); i++)
		if (!machine_removed(m) && !strcmp(m->cfg.name, name))
			return m;
	return NULL;
}
