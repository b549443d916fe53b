/*
 * A console machine's pool (see bootstrap.h): which shells take commands,
 * and starting the port shells from hvc0 at each boot.
 *
 *   boot:     hvc0 answers -> hold "running" -> shell_bootstrap on hvc0
 *             -> each port's shell greets, gets its prelude, answers
 *             -> all answered: the pool serves -> running
 *   restore:  the port shells live on in guest RAM: they answer their
 *             SYNC, often before hvc0 does -> the pool, no command
 *   reboot:   a new boot (the RESET): as at boot
 *   fallback: the guest has no ports ("none ..."), the VMM did not connect
 *             their sockets, or they did not answer within the bound:
 *             hvc0 alone, and the log says why
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "machine/internal.h"

/*
 * How long the port shells may take to answer once hvc0 did: a twentieth
 * of the boot timeout, 2 to 30 s. A guest without the ports says so at
 * once (its "none" line); the bound is for ports whose shells never greet.
 */
static int64_t
bound_ms(const struct machine *m)
{
	int64_t ms = (int64_t)m->timeout * 1000 / 20;

	return ms < 2000 ? 2000 : ms > 30000 ? 30000 : ms;
}

static int
wanted(const struct machine *m)
{
	return m->cfg.shell_channel == SHELL_CHANNEL_CONSOLE &&
	       m->n_shells > 1;
}

static unsigned
n_ports(const struct machine *m)
{
	return (unsigned)(m->n_shells - 1);
}

static unsigned
ports_with(const struct machine *m, int connected)
{
	unsigned k = 0;
	size_t i;

	for (i = 1; i < m->n_shells; i++)
		k += connected ? m->shells[i].conn_fd >= 0 :
				 m->shells[i].ready != 0;
	return k;
}

size_t
bootstrap_n_slots(const struct machine *m)
{
	size_t n = (size_t)m->cfg.shells;

	return m->cfg.shell_channel == SHELL_CHANNEL_CONSOLE && n > 1 ? n + 1 :
									 n;
}

void
bootstrap_slots(const struct machine *m, size_t *lo, size_t *n)
{
	if (!wanted(m)) {
		*lo = 0;
		*n = m->n_shells;
	} else if (m->bs_state == BS_POOL) {
		*lo = 1;
		*n = m->n_shells - 1;
	} else {
		*lo = 0;
		*n = 1;
	}
}

void
bootstrap_reset(struct machine *m)
{
	hold_cmd_forget(&m->bs_cmd);
	m->bs_state = BS_WAIT;
	m->bs_deadline = 0;
	free(m->bs_why);
	m->bs_why = NULL;
}

/* Decided while held: running, once hvc0 answered (a restored guest's
 * ports may answer before it does; its SYNC then finds this decided). */
static void
decided(struct machine *m, const char *why)
{
	hold_cmd_forget(&m->bs_cmd);
	m->bs_deadline = 0;
	shellpool_kick(m);
	if (m->state == MS_STARTING && m->shells[0].ready)
		machine_set_state(m, MS_RUNNING, why);
}

static void
set_pool(struct machine *m)
{
	m->bs_state = BS_POOL;
	machine_logl(m, "shells: %u on the attestfs.shell virtserialports, "
		     "started from hvc0; hvc0 idles", n_ports(m));
}

static void
set_hvc0(struct machine *m, const char *why)
{
	m->bs_state = BS_HVC0;
	free(m->bs_why);
	m->bs_why = xstrdup(why);
	machine_logl(m, "shells: hvc0 alone, commands one at a time (%s)",
		     why);
}

/* What the guest said: no ports is final; a failed command is not (the
 * shells may be up all the same), the bound decides then. */
static void
bootstrap_update(struct cmd *c)
{
	struct machine *m = c->m;
	struct strbuf why;

	if (c->state != CMD_DONE || m->bs_cmd != c)
		return;
	sb_init(&why);
	if (c->err)
		machine_logl(m, "shells: the bootstrap on hvc0 failed (%s); "
			     "waiting for the port shells all the same",
			     strerror(-c->err));
	else if (c->status)
		machine_logl(m, "shells: the bootstrap on hvc0 exited with "
			     "status %d; waiting for the port shells all the "
			     "same", c->status);
	else
		shell_bootstrap_reply(c->out.data, c->out.len, n_ports(m),
				      &why);
	hold_cmd_forget(&m->bs_cmd);
	if (m->bs_state != BS_WAIT) {
		sb_free(&why);
		return;
	}
	/* Shells that answer count more than what the guest said (a guest
	 * may run its own on the ports, as attestfs's NixOS module does). */
	if (ports_with(m, 0) == n_ports(m)) {
		set_pool(m);
		decided(m, "the backdoor answered; shells on the ports");
	} else if (why.len) {
		set_hvc0(m, why.data);
		decided(m, "the backdoor answered on hvc0");
	}
	sb_free(&why);
}

static void
submit(struct machine *m)
{
	struct strbuf sb;

	sb_init(&sb);
	shell_bootstrap(&sb, n_ports(m));
	hold_cmd_submit(m, &m->bs_cmd, &sb, m->bs_deadline, bootstrap_update);
	sb_free(&sb);
}

int
bootstrap_hold_start(struct machine *m)
{
	if (!wanted(m) || m->bs_state != BS_WAIT)
		return 0;
	/* A restored guest's port shells live on and answered already. */
	if (ports_with(m, 0) == n_ports(m)) {
		set_pool(m);
		shellpool_kick(m);
		return 0;
	}
	if (m->bs_deadline)
		return 1;
	if (ports_with(m, 1) < n_ports(m)) {
		set_hvc0(m, "the VMM did not connect the attestfs.shell "
			 "sockets; does the start script pass all of "
			 "QEMU_OPTS?");
		return 0;
	}
	m->bs_deadline = now_mono_ms() + bound_ms(m);
	machine_logl(m, "the backdoor answered on hvc0; starting shells on "
		     "the %u attestfs.shell ports", n_ports(m));
	submit(m);
	return 1;
}

void
bootstrap_shell_ready(struct machine *m, struct shell_slot *s)
{
	if (!wanted(m) || s->index == 0 || m->bs_state != BS_WAIT ||
	    ports_with(m, 0) < n_ports(m))
		return;
	set_pool(m);
	decided(m, "the backdoor answered; shells on the ports");
}

void
bootstrap_check(struct machine *m, int64_t now, int64_t *next)
{
	char why[160];

	if (!wanted(m) || m->bs_state != BS_WAIT || !m->bs_deadline)
		return;
	if (now < m->bs_deadline) {
		if (m->bs_deadline < *next)
			*next = m->bs_deadline;
		return;
	}
	snprintf(why, sizeof(why), "%u of the %u port shells answered "
		 "within %lld ms of hvc0", ports_with(m, 0), n_ports(m),
		 (long long)bound_ms(m));
	set_hvc0(m, why);
	decided(m, "the backdoor answered on hvc0");
}

void
bootstrap_render_info(struct machine *m, struct strbuf *sb)
{
	if (!wanted(m)) {
		sb_adds(sb, m->cfg.shell_channel == SHELL_CHANNEL_CONSOLE ?
				    "channel virtconsole\n" :
				    "channel virtserialport\n");
	} else if (m->bs_state == BS_POOL) {
		sb_adds(sb, "channel virtserialport (started from hvc0)\n");
	} else if (m->bs_state == BS_HVC0) {
		sb_addf(sb, "channel virtconsole (%s)\n", m->bs_why);
	} else {
		sb_addf(sb, "channel virtconsole%s\n", m->bs_deadline ?
			" (starting the port shells)" : "");
	}
}
