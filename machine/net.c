/*
 * Virtual networks, as the NixOS test driver lays them out: one vde_switch
 * per VLAN (a hub on unix sockets under the mount's state_dir, nothing on
 * the host's network), one NIC per VLAN after the restricted user-mode NIC,
 * MAC 52:54:00:12:<vlan>:<node>, addresses 192.168.<vlan>.<node>/24 and
 * 2001:db8:<vlan>::<node>/64, every machine that shares a VLAN in
 * /etc/hosts. The guest side is set up through the backdoor at boot, in one
 * command, so any guest with `ip` works. Link control (block, unblock) and
 * port forwarding (forward) go through the backend.
 */
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include "backends/tapnet.h"
#include "common/proc.h"
#include "machine/internal.h"

#define SWITCH_READY_MS 5000
#define SWITCH_STOP_MS 2000
#define FORWARD_TRIES 3

/* ---- the switches ---------------------------------------------------- */

static void
switch_stop(struct vde_switch *sw)
{
	int64_t end = now_mono_ms() + SWITCH_STOP_MS;
	int status;
	pid_t r = 0;

	/* EOF on its stdin: it removes its sockets and exits. */
	if (sw->fd >= 0) {
		shutdown(sw->fd, SHUT_RDWR);
		close(sw->fd);
		sw->fd = -1;
	}
	while (sw->pid > 0) {
		r = waitpid(sw->pid, &status, WNOHANG);
		if (r == sw->pid || (r < 0 && errno != EINTR))
			break;
		if (now_mono_ms() >= end) {
			kill(sw->pid, SIGKILL);
			while (waitpid(sw->pid, &status, 0) < 0 && errno == EINTR)
				;
			break;
		}
		usleep(5000);
	}
	sw->pid = 0;
	if (sw->path)
		remove_tree(sw->path);
}

/* The tail of the switch's log, for a reason. */
static void
switch_log_tail(const char *log, struct strbuf *why)
{
	char *text = NULL;
	size_t len = 0, start;

	if (read_file(log, &text, &len) < 0 || !len) {
		free(text);
		return;
	}
	while (len && (text[len - 1] == '\n' || text[len - 1] == ' '))
		len--;
	start = len > 300 ? len - 300 : 0;
	sb_adds(why, ": ");
	for (; start < len; start++)
		sb_add(why, text[start] == '\n' ? " | " : text + start,
		       text[start] == '\n' ? 3 : 1);
	free(text);
}

/* The switch's answer to `showinfo`: 0, or -errno with the reason in why. */
static int
switch_wait_ready(struct vde_switch *sw, const char *log, struct strbuf *why)
{
	int64_t end = now_mono_ms() + SWITCH_READY_MS;
	struct strbuf out;
	int ret = 0;

	sb_init(&out);
	if (send(sw->fd, "showinfo\n", 9, MSG_NOSIGNAL) != 9)
		ret = -errno;
	while (ret == 0 && !(out.data && strstr(out.data, "\n1000 Success"))) {
		struct pollfd pfd = { .fd = sw->fd, .events = POLLIN };
		int64_t left = end - now_mono_ms();
		char buf[1024];
		ssize_t n;

		if (left <= 0) {
			ret = -ETIMEDOUT;
			sb_addf(why, "no answer in %d s", SWITCH_READY_MS / 1000);
			break;
		}
		if (poll(&pfd, 1, (int)left) < 0 && errno != EINTR) {
			ret = -errno;
			break;
		}
		n = recv(sw->fd, buf, sizeof(buf), MSG_DONTWAIT);
		if (n == 0 || (n < 0 && errno != EAGAIN && errno != EINTR)) {
			ret = -EIO;
			sb_adds(why, "it exited");
			switch_log_tail(log, why);
			break;
		}
		if (n > 0)
			sb_add(&out, buf, (size_t)n);
	}
	sb_free(&out);
	return ret;
}

/*
 * vde_switch reads commands on stdin and exits at its EOF, so stdin and
 * stdout are one end of a socketpair that the daemon keeps: if the daemon
 * dies, the switch goes too (PR_SET_PDEATHSIG as well). It answers once its
 * control socket is bound: `showinfo` ends in "1000 Success".
 */
static int
switch_start(struct vmset *s, struct vde_switch *sw, struct aerr *err)
{
	char *log = xasprintf("%s/vde%u.log", s->state_dir, sw->vlan);
	char *pidfile = xasprintf("%s/vde%u.pid", s->state_dir, sw->vlan);
	char *argv[] = { "vde_switch", "--sock", sw->path, "--dirmode", "0700",
			 "--hub", NULL };
	struct strbuf why;
	pid_t parent = getpid();
	int sv[2], logfd, ret = 0;
	char num[32];

	sb_init(&why);
	remove_tree(sw->path);
	if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) < 0) {
		ret = -errno;
		aerr_set(err, "vlan %u: socketpair: %s", sw->vlan, strerror(errno));
		goto out;
	}
	logfd = open(log, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600);
	sw->pid = fork();
	if (sw->pid == 0) {
		proc_child_init(parent);
		setsid(); /* a terminal's Ctrl-C goes to the daemon only */
		dup2(sv[1], 0);
		dup2(sv[1], 1);
		dup2(logfd >= 0 ? logfd : sv[1], 2);
		proc_close_from(3);
		execvp(argv[0], argv);
		dprintf(2, "cannot execute vde_switch: %s (Debian: apt-get "
			"install vde2)\n", strerror(errno));
		_exit(127);
	}
	if (sw->pid < 0)
		ret = -errno;
	close(sv[1]);
	if (logfd >= 0)
		close(logfd);
	sw->fd = sv[0];
	if (ret < 0) {
		sw->pid = 0;
		aerr_set(err, "vlan %u: fork: %s", sw->vlan, strerror(-ret));
		goto out;
	}
	ret = switch_wait_ready(sw, log, &why);
	if (ret < 0) {
		aerr_set(err, "vlan %u: vde_switch --sock %s: %s", sw->vlan,
			 sw->path, why.len ? why.data : strerror(-ret));
		switch_stop(sw);
		goto out;
	}
	snprintf(num, sizeof(num), "%d\n", (int)sw->pid);
	write_file_atomic(pidfile, num, strlen(num));
out:
	sb_free(&why);
	free(log);
	free(pidfile);
	return ret;
}

/* The switch of VLAN v, started on first use. */
static struct vde_switch *
switch_get(struct vmset *s, unsigned v, struct aerr *err)
{
	struct vde_switch *sw;
	size_t i;

	for (i = 0; i < s->n_switches; i++)
		if (s->switches[i].vlan == v)
			return &s->switches[i];
	s->switches = xrealloc(s->switches,
			       (s->n_switches + 1) * sizeof(*s->switches));
	sw = &s->switches[s->n_switches++];
	memset(sw, 0, sizeof(*sw));
	sw->vlan = v;
	sw->fd = -1;
	sw->path = xasprintf("%s/vde%u.ctl", s->state_dir, v);
	if (switch_start(s, sw, err) < 0)
		return NULL;
	return sw;
}

/* A TAP NIC in the mount's network namespace, made on first use. */
static int
nic_tap(struct vmset *s, struct machine *m, struct backend_nic *n,
	struct aerr *err)
{
	int ret;

	if (!s->tapnet) {
		ret = tapnet_open(&s->tapnet, err);
		if (ret < 0)
			return ret;
	}
	snprintf(n->tap, sizeof(n->tap), "at%u-%u", m->index, n->vlan);
	ret = tapnet_add_nic(s->tapnet, n->vlan, n->tap, err);
	if (ret < 0)
		return ret;
	machine_log(m, "vlan %u: 192.168.%u.%u/24 2001:db8:%u::%u/64 mac %s, "
		    "TAP %s on bridge atbr%u in the mount's network "
		    "namespace", n->vlan, n->vlan, m->index, n->vlan,
		    m->index, n->mac, n->tap, n->vlan);
	return 0;
}

/* A port of the VLAN's vde_switch (started now if it is the first). */
static int
nic_switch(struct vmset *s, struct machine *m, struct backend_nic *n,
	   struct aerr *err)
{
	struct vde_switch *sw = switch_get(s, n->vlan, err);

	if (!sw)
		return -EIO;
	n->switch_path = sw->path;
	machine_log(m, "vlan %u: 192.168.%u.%u/24 2001:db8:%u::%u/64 mac %s, "
		    "vde_switch %s (pid %d)", n->vlan, n->vlan, m->index,
		    n->vlan, m->index, n->mac, sw->path, (int)sw->pid);
	return 0;
}

/* One machine's VLAN NICs: TAPs or switch ports, as its backend takes. */
int
net_machine_init(struct vmset *s, struct machine *m, struct aerr *err)
{
	const struct machine_config *c = &m->cfg;
	struct backend_nic *nics;
	size_t j;
	int ret;

	if (!c->n_vlans)
		return 0;
	if (!(m->ops->caps & BACKEND_CAP_LINKS) || !m->ops->set_links) {
		aerr_set(err, "machine %s: the %s backend cannot join "
			 "VLANs (\"vlans\")", c->name, m->ops->name);
		return -EOPNOTSUPP;
	}
	if (m->index < 1 || m->index > 254) {
		aerr_set(err, "machine %s: node number %u: VLAN "
			 "addresses have room for 254 machines",
			 c->name, m->index);
		return -EINVAL;
	}
	nics = xcalloc(c->n_vlans, sizeof(*nics));
	for (j = 0; j < c->n_vlans; j++) {
		nics[j].vlan = c->vlans[j];
		snprintf(nics[j].mac, sizeof(nics[j].mac),
			 "52:54:00:12:%02x:%02x", c->vlans[j] & 0xff,
			 m->index & 0xff);
		ret = m->ops->caps & BACKEND_CAP_TAPNET ?
		      nic_tap(s, m, &nics[j], err) :
		      nic_switch(s, m, &nics[j], err);
		if (ret < 0) {
			free(nics);
			return ret;
		}
	}
	machine_lock(m);
	m->nics = nics;
	m->n_nics = c->n_vlans;
	machine_unlock(m);
	return 0;
}

int
net_start(struct vmset *s, struct aerr *err)
{
	size_t i;
	int ret;

	for (i = 0; i < s->n_machines; i++) {
		ret = net_machine_init(s, s->machines[i], err);
		if (ret < 0)
			return ret;
	}
	return 0;
}

void
net_stop(struct vmset *s)
{
	size_t i;

	for (i = 0; i < s->n_switches; i++) {
		char *pidfile = xasprintf("%s/vde%u.pid", s->state_dir,
					  s->switches[i].vlan);

		switch_stop(&s->switches[i]);
		unlink(pidfile);
		free(pidfile);
		free(s->switches[i].path);
	}
	free(s->switches);
	s->switches = NULL;
	s->n_switches = 0;
	tapnet_close(s->tapnet);
	s->tapnet = NULL;
}

void
net_machine_free(struct machine *m)
{
	free(m->nics);
	m->nics = NULL;
	m->n_nics = 0;
	free(m->forwards);
	m->forwards = NULL;
	m->n_forwards = 0;
}

/* ---- the guest side -------------------------------------------------- */

/*
 * One command: find each VLAN NIC by its MAC, bring it up, add the
 * addresses unless there (a resumed or re-synchronised shell runs it again),
 * give the user-mode NIC QEMU's usual 10.0.2.15 unless it has an address
 * (hostfwd delivers there), and put the machines that share a VLAN into
 * /etc/hosts between markers, unless /etc/hosts is a link (NixOS writes its
 * own). IPv6 is best effort: a guest without it still gets IPv4.
 */
static const char setup_functions[] =
	"_atif() { i=; for d in /sys/class/net/*; do a=; "
	"read -r a <\"$d/address\" 2>/dev/null; "
	"case $a in $1) i=${d##*/}; return 0;; esac; done; return 1; }; "
	"_atn() { if [ -n \"$5\" ]; then "
	/* a clone: its NIC may still have its source's MAC and address */
	"_atif \"$1\" || _atif \"$5\" || { echo \"vlan $2: no network "
	"interface with MAC $1 or $5\" >&2; return 1; }; "
	"ip link set dev \"$i\" down; ip link set dev \"$i\" address \"$1\"; "
	"ip addr flush dev \"$i\"; "
	"else _atif \"$1\" || { echo \"vlan $2: no network interface "
	"with MAC $1\" >&2; return 1; }; fi; ip link set dev \"$i\" up || return 1; "
	"ip -4 addr show dev \"$i\" | grep -qF \"inet $3/\" || "
	"ip addr add \"$3/24\" dev \"$i\" || return 1; "
	"echo \"vlan$2 $i $3\"; "
	"[ -d \"/proc/sys/net/ipv6/conf/$i\" ] || return 0; "
	"echo 0 >\"/proc/sys/net/ipv6/conf/$i/accept_dad\"; "
	"ip -6 addr show dev \"$i\" | grep -qiF \"inet6 $4/\" || "
	"ip -6 addr add \"$4/64\" dev \"$i\" || "
	"echo \"vlan $2: no IPv6 address on $i\" >&2; return 0; }; "
	"e=0; ";

static const char setup_user_nic[] =
	"if _atif '52:54:00:12:00:*' && ! ip -4 addr show dev \"$i\" | "
	"grep -q inet; then ip link set dev \"$i\" up && "
	"ip addr add 10.0.2.15/24 dev \"$i\" && echo \"user $i 10.0.2.15\" || "
	"e=1; fi; ";

/* The first VLAN of a's (in a's order) that b is on too, or 0. */
static unsigned
shared_vlan(const struct machine *a, const struct machine *b)
{
	size_t i, j;

	for (i = 0; i < a->cfg.n_vlans; i++)
		for (j = 0; j < b->cfg.n_vlans; j++)
			if (a->cfg.vlans[i] == b->cfg.vlans[j])
				return a->cfg.vlans[i];
	return 0;
}

static void
setup_script(struct machine *m, struct strbuf *sb)
{
	struct vmset *s = m->set;
	size_t i;

	sb_adds(sb, setup_functions);
	for (i = 0; i < m->n_nics; i++) {
		const struct backend_nic *n = &m->nics[i];

		sb_addf(sb, "_atn %s %u 192.168.%u.%u 2001:db8:%u::%u", n->mac,
			n->vlan, n->vlan, m->index, n->vlan, m->index);
		if (m->clone_source_index && m->boot_restored)
			sb_addf(sb, " 52:54:00:12:%02x:%02x", n->vlan & 0xff,
				m->clone_source_index & 0xff);
		sb_adds(sb, " || e=1; ");
	}
	/* A clone's user NIC was set up in its source. */
	if (!m->cfg.start_command && !m->boot_restored)
		sb_adds(sb, setup_user_nic);
	if (!m->n_nics)
		goto done;
	/* Machine names are [A-Za-z0-9_.-]: safe inside quotes. */
	sb_adds(sb, "if [ ! -L /etc/hosts ]; then { grep -v ' # attestfs$' "
		"/etc/hosts 2>/dev/null; printf '%s\\n'");
	for (i = 0; i < s->n_machines; i++) {
		const struct machine *o = s->machines[i];
		unsigned v = shared_vlan(m, o);

		if (!v)
			continue;
		sb_addf(sb, " '192.168.%u.%u %s # attestfs'", v, o->index,
			o->cfg.name);
		sb_addf(sb, " '2001:db8:%u::%u %s # attestfs'", v, o->index,
			o->cfg.name);
	}
	sb_adds(sb, "; } >/etc/hosts.attestfs && cat /etc/hosts.attestfs "
		">/etc/hosts && rm -f /etc/hosts.attestfs || e=1; fi; ");
done:
	sb_adds(sb, "exit $e");
}

static int
net_wanted(const struct machine *m)
{
	/* Restored: its networks were set up when it was saved (and every
	 * fork is slow while TCG translates afresh). A clone on VLANs needs
	 * its own addresses. */
	if (m->boot_restored)
		return m->is_clone && m->n_nics;
	return m->n_nics || (m->n_forwards && !m->cfg.start_command);
}

static void
finish_net_waiters(struct machine *m, int result)
{
	while (m->net_waiters) {
		struct mreq *r = m->net_waiters;

		m->net_waiters = r->priv_next;
		r->priv_next = NULL;
		mreq_finish(m, r, result);
	}
}

/* Lines of a command's output into the log, each with a prefix. */
static void
log_lines(struct machine *m, const char *prefix, const struct strbuf *b)
{
	const char *p = b->data, *end = b->data + b->len;

	while (p && p < end) {
		const char *nl = memchr(p, '\n', (size_t)(end - p));
		size_t n = nl ? (size_t)(nl - p) : (size_t)(end - p);

		if (n)
			machine_logl(m, "%s%.*s", prefix, (int)n, p);
		p += n + 1;
	}
}

static void
setup_update(struct cmd *c)
{
	struct machine *m = c->m;
	int ok;

	if (c->state != CMD_DONE)
		return;
	c->on_update = NULL;
	m->net_cmd = NULL;
	if (m->state == MS_STOPPING || m->state == MS_STOPPED ||
	    m->state == MS_CRASHED) {
		/* The machine is going or gone: nothing to set up. */
		finish_net_waiters(m, -EIO);
		cmd_put(c);
		return;
	}
	ok = !c->err && c->status == 0;
	log_lines(m, "network: ", &c->out);
	log_lines(m, "network: ", &c->errout);
	if (c->err == -EIO && m->state == MS_STARTING) {
		/* The shell restarted: its next SYNC asks again. */
		machine_logl(m, "network set-up: the guest shell went away; "
			     "trying again when it is back");
		cmd_put(c);
		return;
	}
	if (ok) {
		m->net_ready = 1;
		finish_net_waiters(m, 0);
		if (m->state == MS_STARTING)
			machine_set_state(m, MS_RUNNING, "the backdoor answered; "
					  "networks set up");
		cmd_put(c);
		return;
	}
	if (c->err)
		machine_logl(m, "network set-up failed: %s", strerror(-c->err));
	else
		machine_logl(m, "network set-up failed in the guest (exit "
			     "status %d); the guest needs `ip`, `grep` and a "
			     "writable /etc/hosts", c->status);
	finish_net_waiters(m, c->err ? c->err : -EREMOTEIO);
	if (m->state == MS_STARTING && m->be) {
		/* Never `running` without its networks: halt, start fails. */
		vmset_event(m->set, m->cfg.name, "stopping",
			    "network set-up failed");
		machine_halt_locked(m);
	}
	cmd_put(c);
}

static void
setup_submit(struct machine *m)
{
	struct strbuf sb;

	sb_init(&sb);
	setup_script(m, &sb);
	hold_cmd_submit(m, &m->net_cmd, &sb,
			now_mono_ms() + (int64_t)m->timeout * 1000, setup_update);
	sb_free(&sb);
}

int
net_hold_start(struct machine *m)
{
	if (m->net_ready || !net_wanted(m))
		return 0;
	if (!m->net_cmd) {
		machine_logl(m, "the backdoor answered; setting up networks");
		setup_submit(m);
	}
	return 1;
}

void
net_reset(struct machine *m)
{
	m->net_ready = 0;
	hold_cmd_forget(&m->net_cmd);
	finish_net_waiters(m, -EIO);
}

/* ---- forwards -------------------------------------------------------- */

/* A free port on 127.0.0.1 (bind to 0, read it, close: racy, so retried). */
static int
pick_port(unsigned *port)
{
	struct sockaddr_in sa = { .sin_family = AF_INET };
	socklen_t len = sizeof(sa);
	int fd, ret = 0;

	sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -errno;
	if (bind(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0 ||
	    getsockname(fd, (struct sockaddr *)&sa, &len) < 0)
		ret = -errno;
	else
		*port = ntohs(sa.sin_port);
	close(fd);
	return ret;
}

/* From the supervisor, without the lock: add f to the VMM be, picking a
 * port for 0. */
static int
forward_apply(struct machine *m, struct backend *be, struct net_forward *f,
	      struct aerr *err)
{
	int tries, ret = 0;

	for (tries = 0; tries < FORWARD_TRIES; tries++) {
		if (!f->bound_port || (tries && !f->host_port)) {
			ret = pick_port(&f->bound_port);
			if (ret < 0) {
				aerr_set(err, "no free port on 127.0.0.1: %s",
					 strerror(-ret));
				return ret;
			}
		}
		ret = m->ops->forward(be, f->bound_port, f->guest_port, err);
		if (ret != -EADDRINUSE || f->host_port)
			break;
	}
	return ret;
}

/* From the supervisor, with the lock (let go while the backend works);
 * only the supervisor changes forwards, so a copy of them will do. */
void
net_launched(struct machine *m)
{
	struct backend *be = m->be;
	struct net_forward *fw;
	size_t i, n = m->n_forwards;

	m->links_down = 0;
	if (!n || !be)
		return;
	fw = xcalloc(n, sizeof(*fw));
	memcpy(fw, m->forwards, n * sizeof(*fw));
	machine_unlock(m);
	for (i = 0; i < n; i++) {
		struct aerr err = { "" };

		if (forward_apply(m, be, &fw[i], &err) < 0)
			machine_log(m, "forward tcp:%u:%u: %s", fw[i].host_port,
				    fw[i].guest_port, err.msg);
	}
	machine_lock(m);
	for (i = 0; i < n; i++)
		m->forwards[i].bound_port = fw[i].bound_port;
	free(fw);
}

static int
parse_port(const char *s, const char *end, unsigned min, unsigned *out)
{
	unsigned v = 0;

	if (s == end || end - s > 5)
		return -EINVAL;
	for (; s < end; s++) {
		if (*s < '0' || *s > '9')
			return -EINVAL;
		v = v * 10 + (unsigned)(*s - '0');
	}
	if (v < min || v > 65535)
		return -EINVAL;
	*out = v;
	return 0;
}

/* tcp:HOSTPORT:GUESTPORT */
static int
parse_forward(const char *arg, unsigned *host, unsigned *guest)
{
	const char *colon;

	if (strncmp(arg, "tcp:", 4))
		return -EINVAL;
	arg += 4;
	colon = strchr(arg, ':');
	if (!colon || parse_port(arg, colon, 0, host) < 0 ||
	    parse_port(colon + 1, colon + 1 + strlen(colon + 1), 1, guest) < 0)
		return -EINVAL;
	return 0;
}

static void
cancel_net_waiter(struct mreq *r)
{
	struct machine *m = r->priv_machine;
	struct mreq **p = &m->net_waiters;

	while (*p && *p != r)
		p = &(*p)->priv_next;
	if (*p)
		*p = r->priv_next;
	r->priv_next = NULL;
	mreq_finish(m, r, -EINTR);
}

/* host_port is forwarded already (0: never): -EEXIST, the reason in log. */
static int
forward_taken(struct machine *m, unsigned host_port)
{
	size_t i;

	for (i = 0; i < m->n_forwards && host_port; i++) {
		if (m->forwards[i].bound_port != host_port)
			continue;
		machine_logl(m, "forward: host port %u is already forwarded "
			     "(to guest port %u)", host_port,
			     m->forwards[i].guest_port);
		return -EEXIST;
	}
	return 0;
}

static void
run_forward(struct machine *m, struct mop *op)
{
	struct net_forward f = *(struct net_forward *)op->mo_data;
	struct backend *be = m->be;
	struct aerr err = { "" };
	struct mreq *r;
	int ret = forward_taken(m, f.host_port);

	if (ret < 0) {
		mop_finish(m, op, ret);
		return;
	}
	f.bound_port = f.host_port;
	machine_unlock(m);
	if (be)
		ret = forward_apply(m, be, &f, &err);
	else if (!f.bound_port)
		ret = pick_port(&f.bound_port);
	machine_lock(m);
	if (ret < 0) {
		machine_logl(m, "forward %s: %s", op->mo_arg,
			     err.msg[0] ? err.msg : strerror(-ret));
		mop_finish(m, op, ret);
		return;
	}
	m->forwards = xrealloc(m->forwards,
			       (m->n_forwards + 1) * sizeof(*m->forwards));
	m->forwards[m->n_forwards++] = f;
	machine_logl(m, "forward tcp:127.0.0.1:%u->%u%s", f.bound_port,
		     f.guest_port, be ? "" : " (from the next start on)");
	/* A running guest whose user-mode NIC was never set up: do it now. */
	if (m->state == MS_RUNNING && !m->net_ready && net_wanted(m) &&
	    (r = mop_take_req(op))) {
		mreq_park(m, r, cancel_net_waiter, NULL);
		r->priv_next = m->net_waiters;
		m->net_waiters = r;
		if (!m->net_cmd)
			setup_submit(m);
		return;
	}
	mop_finish(m, op, 0);
}

void
net_ctl_forward(struct machine *m, char **argv, struct mreq *r)
{
	struct net_forward f = { 0 };
	struct mop *op;

	if (!(m->ops->caps & BACKEND_CAP_FORWARD) || !m->ops->forward) {
		machine_logl(m, "forward: the %s backend cannot forward ports",
			     m->ops->name);
		mreq_finish(m, r, -EOPNOTSUPP);
		return;
	}
	if (parse_forward(argv[1], &f.host_port, &f.guest_port) < 0) {
		machine_logl(m, "forward: expected tcp:HOSTPORT:GUESTPORT (ports "
			     "1-65535; HOSTPORT 0 picks a free one), got '%s'",
			     argv[1]);
		mreq_finish(m, r, -EINVAL);
		return;
	}
	if (forward_taken(m, f.host_port) < 0) {
		mreq_finish(m, r, -EEXIST);
		return;
	}
	op = mop_new("forward", run_forward, r);
	op->mo_arg = xstrdup(argv[1]);
	op->mo_data = xmalloc(sizeof(f));
	memcpy(op->mo_data, &f, sizeof(f));
	mop_push(m, op);
}

/* ---- links ----------------------------------------------------------- */

static void
run_links(struct machine *m, struct mop *op)
{
	const char *verb = op->mo_verb;
	struct backend *be = m->be;
	struct aerr err = { "" };
	int ret, up = op->mo_num;

	if (!be || m->state == MS_STOPPING) {
		machine_logl(m, "%s: the machine is %s", verb,
			     mstate_name(m->state));
		mop_finish(m, op, -EHOSTDOWN);
		return;
	}
	machine_unlock(m);
	ret = m->ops->set_links(be, up, &err);
	machine_lock(m);
	if (ret < 0) {
		machine_logl(m, "%s: %s", verb, err.msg);
	} else {
		if (m->be == be)
			m->links_down = !up;
		machine_logl(m, "%s: VLAN links %s", verb, up ? "up" : "down");
	}
	mop_finish(m, op, ret);
}

static void
set_links(struct machine *m, int up, struct mreq *r)
{
	const char *verb = up ? "unblock" : "block";
	struct mop *op;

	if (!(m->ops->caps & BACKEND_CAP_LINKS) || !m->ops->set_links) {
		machine_logl(m, "%s: the %s backend has no link control", verb,
			     m->ops->name);
		mreq_finish(m, r, -EOPNOTSUPP);
		return;
	}
	if (!m->n_nics) {
		machine_logl(m, "%s: the machine is on no VLAN (config key "
			     "\"vlans\")", verb);
		mreq_finish(m, r, -EINVAL);
		return;
	}
	op = mop_new(verb, run_links, r);
	op->mo_num = up;
	op->mo_vmm = 1;
	mop_push(m, op);
}

void
net_ctl_block(struct machine *m, char **argv, struct mreq *r)
{
	set_links(m, 0, r);
}

void
net_ctl_unblock(struct machine *m, char **argv, struct mreq *r)
{
	set_links(m, 1, r);
}

/* ---- info ------------------------------------------------------------ */

void
net_render_info(struct machine *m, struct strbuf *sb)
{
	size_t i;

	if (m->n_nics)
		sb_addf(sb, "node %u\n", m->index);
	for (i = 0; i < m->n_nics; i++) {
		unsigned v = m->nics[i].vlan;

		sb_addf(sb, "address vlan%u 192.168.%u.%u\n", v, v, m->index);
		sb_addf(sb, "address6 vlan%u 2001:db8:%u::%u\n", v, v, m->index);
		sb_addf(sb, "mac vlan%u %s\n", v, m->nics[i].mac);
	}
	if (m->n_nics)
		sb_addf(sb, "link %s\n", m->links_down ? "down" : "up");
	for (i = 0; i < m->n_forwards; i++)
		sb_addf(sb, "forward tcp:127.0.0.1:%u->%u\n",
			m->forwards[i].bound_port, m->forwards[i].guest_port);
}
