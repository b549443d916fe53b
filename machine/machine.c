/*
 * A machine: its views (status, info, log, config, console) and its
 * creation and teardown.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "common/sock.h"
#include "machine/internal.h"

/* In memory (the files under state_dir keep more, up to log_max each). */
#define LOG_KEEP (256u << 10)

/* ---- views ----------------------------------------------------------- */

const char *
machine_name(const struct machine *m)
{
	return m->cfg.name;
}

unsigned
machine_caps(const struct machine *m)
{
	return m->ops->caps;
}

char *
machine_render(struct machine *m, enum machine_view v, size_t *len)
{
	struct strbuf sb;
	size_t i, lo, n, ready = 0;

	sb_init(&sb);
	machine_lock(m);
	switch (v) {
	case MACHINE_VIEW_STATUS:
		sb_addf(&sb, "%s\n", mstate_name(m->state));
		break;
	case MACHINE_VIEW_INFO:
		/* Those that take commands now (a console machine's: hvc0 or
		 * its ports). */
		bootstrap_slots(m, &lo, &n);
		for (i = lo; i < lo + n; i++)
			ready += m->shells[i].ready ? 1 : 0;
		sb_addf(&sb, "name %s\nbackend %s\nstatus %s\n", m->cfg.name,
			m->ops->name, mstate_name(m->state));
		if (m->be) {
			/* pid and accel come from the backend's own lines. */
			sb_addf(&sb, "uptime_ms %lld\n",
				(long long)(now_mono_ms() - m->started_ms));
		}
		sb_addf(&sb, "shells %zu/%zu\nshell_channel %s\n", ready, n,
			m->cfg.shell_channel == SHELL_CHANNEL_CONSOLE ?
				"virtconsole" : "virtserialport");
		bootstrap_render_info(m, &sb);
		sb_addf(&sb, "timeout %d\nboots %u\ncapabilities ", m->timeout,
			m->generation);
		backend_caps_render(m->ops->caps, &sb);
		sb_adds(&sb, "\nstate_dir ");
		sb_adds(&sb, m->dir);
		sb_adds(&sb, "\n");
		if (m->be)
			m->ops->info(m->be, &sb);
		if (m->boot_snapshot)
			sb_addf(&sb, "restored_from %s\n",
				strrchr(m->boot_snapshot, '/') + 1);
		/* A VMM waits, paused, to restore this snapshot at once. */
		if (m->spare && !m->spare_dead)
			sb_addf(&sb, "spare %s\n",
				strrchr(m->spare_snapshot, '/') + 1);
		if (clone_spare_snapshot(m))
			sb_addf(&sb, "clone_spare %s\n",
				clone_spare_snapshot(m));
		net_render_info(m, &sb);
		break;
	case MACHINE_VIEW_LOG: {
		char *note = xasprintf("older lines are in %s/log", m->dir);

		tailbuf_render(&m->log, &sb, note);
		free(note);
		break;
	}
	case MACHINE_VIEW_CONFIG:
		sb_adds(&sb, m->cfg.json ? m->cfg.json : "{}\n");
		break;
	case MACHINE_VIEW_CONSOLE:
		/* This boot's tail: the whole console is machine_console_open's. */
		if (m->boot_console.len)
			sb_add(&sb, m->boot_console.data, m->boot_console.len);
		break;
	}
	machine_unlock(m);
	return sb_detach(&sb, len);
}

/* ---- creation and teardown ------------------------------------------- */

int
machine_create(struct vmset *s, struct machine_config *cfg, unsigned index,
	       struct machine_listeners *pre, struct machine **out,
	       struct aerr *err)
{
	struct machine *m = xcalloc(1, sizeof(*m));
	pthread_condattr_t ca;
	char *path;
	int ret;

	m->set = s;
	m->cfg = *cfg;
	memset(cfg, 0, sizeof(*cfg));
	m->index = index;
	m->state = MS_STOPPED;
	m->timeout = m->cfg.timeout ? m->cfg.timeout : s->opt.timeout;
	m->console_fd = -1;
	m->console_listen = -1;
	pthread_mutex_init(&m->lock, NULL);
	pthread_condattr_init(&ca);
	pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
	pthread_cond_init(&m->cond, &ca);
	pthread_condattr_destroy(&ca);
	tailbuf_init(&m->log, LOG_KEEP);
	m->log_file.rf_fd = -1;
	m->console_file.rf_fd = -1;
	sb_init(&m->boot_console);
	sb_init(&m->console_line);
	*out = m;

	m->ops = backend_find(m->cfg.backend ? m->cfg.backend : "qemu");
	if (!m->ops) {
		aerr_set(err, "machine %s: the %s backend is not available in "
			 "this build", m->cfg.name, m->cfg.backend);
		return -EOPNOTSUPP;
	}
	m->dir = xasprintf("%s/%s", s->state_dir, m->cfg.name);
	ret = mkdir_p(m->dir, 0700);
	if (ret < 0) {
		aerr_set(err, "mkdir %s: %s", m->dir, strerror(-ret));
		return ret;
	}
	path = xasprintf("%s/log", m->dir);
	rotfile_open(&m->log_file, path, s->opt.log_max);
	free(path);
	path = xasprintf("%s/console.log", m->dir);
	rotfile_open(&m->console_file, path, s->opt.log_max);
	free(path);
	m->console_path = xasprintf("%s/console.sock", m->dir);
	/* A clone's pre-started VMM was made for the same config: all or
	 * none of its sockets. */
	if (pre && pre->n_shells != bootstrap_n_slots(m))
		pre = NULL;
	/* Its guest runs already and waits for nothing but the SYNC:
	 * sent at accept, not once the machine is adopted (lifecycle.c). */
	if (pre && pre->clone) {
		m->is_clone = 1;
		m->boot_restored = 1;
	}
	if (pre && pre->console >= 0) {
		ret = pre->console;
		pre->console = -1;
	} else {
		ret = sock_listen_unix(m->console_path, err);
	}
	if (ret < 0)
		return ret;
	m->console_listen = ret;
	ret = shellpool_init(m, pre, err);
	if (ret < 0)
		return ret;
	if (pthread_create(&m->console_thread, NULL, machine_console_reader, m) != 0) {
		close(m->console_listen);
		m->console_listen = -1;
		aerr_set(err, "cannot start the console thread");
		return -EAGAIN;
	}
	if (pthread_create(&m->supervisor, NULL, machine_supervisor, m) != 0) {
		aerr_set(err, "cannot start the supervisor thread");
		return -EAGAIN;
	}
	m->stopping = 0;
	machine_log_line(m, "configured");
	return 0;
}

/* The VMMs go, then every parked request is answered; with the
 * supervisor ended, nobody else calls the backend. */
static void
machine_stop_vmm(struct machine *m)
{
	struct backend *be, *dead;

	machine_lock(m);
	mop_drop_all(m, -EIO);
	be = m->be;
	dead = m->dead_be;
	m->be = NULL;
	m->dead_be = NULL;
	if (be && m->state != MS_STOPPED)
		m->state = MS_STOPPING;
	machine_unlock(m);
	/* destroy() stops the VMM and waits: its exited callback runs first. */
	if (be)
		m->ops->destroy(be);
	if (dead)
		m->ops->destroy(dead);

	machine_lock(m);
	shellpool_vmm_gone(m);
	waiters_fail(m, -EIO);
	mreq_finish_all(m, &m->start_waiters, -EIO);
	mreq_finish_all(m, &m->stop_waiters, 0);
	spare_drop(m, 1);
	clone_spare_drop(m, 1);
	pthread_cond_broadcast(&m->cond);
	machine_unlock(m);
}

void
machine_destroy(struct machine *m)
{
	/* The supervisor first (after the action it runs now): it is the
	 * one that uses the backend. */
	machine_lock(m);
	m->stopping = 1;
	pthread_cond_broadcast(&m->cond);
	machine_unlock(m);
	if (m->supervisor)
		pthread_join(m->supervisor, NULL);
	machine_stop_vmm(m);
	screen_wait_idle(m);
	if (m->console_listen >= 0) {
		shutdown(m->console_listen, SHUT_RDWR);
		machine_lock(m);
		if (m->console_fd >= 0)
			shutdown(m->console_fd, SHUT_RDWR);
		machine_unlock(m);
		pthread_join(m->console_thread, NULL);
		close(m->console_listen);
	}
	shellpool_stop(m);
	jobs_free(m);
	/* Whatever completed during teardown. */
	machine_lock(m);
	bootstrap_reset(m);
	machine_unlock(m);
	if (m->console_path)
		unlink(m->console_path);
	rotfile_close(&m->log_file);
	rotfile_close(&m->console_file);
	free(m->console_path);
	machine_launch_files_forget(m);
	free(m->spare_snapshot);
	free(m->spare_want);
	free(m->cspare_want);
	if (m->alias_dir)
		unlink(m->alias_dir);
	free(m->alias_dir);
	free(m->boot_snapshot);
	free(m->dir);
	tailbuf_free(&m->log);
	sb_free(&m->boot_console);
	sb_free(&m->console_line);
	net_machine_free(m);
	machine_config_free(&m->cfg);
	pthread_mutex_destroy(&m->lock);
	pthread_cond_destroy(&m->cond);
	free(m);
}
