/*
 * The machine's pool of guest shells: one worker thread per shell socket.
 * The daemon listens; the VMM connects at launch (QEMU), or the backend
 * connects to the VMM and hands the connection over (vsock: a probe then
 * finds whether the shell behind it is new or lives on). A worker waits for
 * the banner, sends the prelude, and then runs one command at a time, streaming
 * its output into the command's buffer. While that buffer is full the worker
 * stops reading (virtserialport is flow-controlled, so the guest waits); on
 * the lossy console channel it keeps draining instead, and the guest waits
 * for a go-ahead after each chunk, which the worker gives once the reader
 * has taken what came before (acks_due).
 */
#include <errno.h>
#include <poll.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "common/sock.h"
#include "machine/internal.h"

/* Lossy channel, after a loss: how often SYNC is asked again. */
#define RESYNC_MS 2000
/* Lossy channel: the agent's chunks (32 KiB of base64) in flight at once:
 * 64 KiB, as the shell's own chunks had (QEMU drops console bytes once its
 * socket's send buffer, about 208 KiB with the kernel's overhead, is full). */
#define SHELL_AGENT_WINDOW 2


static void
wake(struct shell_slot *s)
{
	uint64_t one = 1;
	ssize_t n = write(s->wake_fd, &one, sizeof(one));

	(void)n;
}

void
shellpool_kick(struct machine *m)
{
	size_t i;

	for (i = 0; i < m->n_shells; i++)
		wake(&m->shells[i]);
}

int
shellpool_ready(struct machine *m)
{
	return m->n_shells && m->shells[0].ready;
}

struct cmd *
cmd_new(struct machine *m, const char *text, size_t len, int control)
{
	struct cmd *c = xcalloc(1, sizeof(*c));

	c->m = m;
	c->text = xmalloc(len + 1);
	memcpy(c->text, text, len);
	c->text[len] = '\0';
	c->text_len = len;
	c->control = control;
	c->shell = -1;
	c->refs = 1;
	c->out_keep = CMD_OUT_KEEP;
	sb_init(&c->out);
	sb_init(&c->errout);
	return c;
}

void
cmd_put(struct cmd *c)
{
	if (--c->refs > 0)
		return;
	free(c->text);
	free(c->stdin_path);
	sb_free(&c->out);
	sb_free(&c->errout);
	free(c);
}

/* Only out_cap (back-pressure) or out_keep bounds what a command keeps. */
static void
cmd_add_output(struct cmd *c, const char *data, size_t len)
{
	if (!c->out_keep || c->out_cap)
		sb_add(&c->out, data, len);
	else if (c->out_keep_tail)
		c->out_dropped += sb_add_keep_tail(&c->out, c->out_keep, data,
						   len);
	else
		c->out_dropped += sb_add_keep_head(&c->out, c->out_keep, data,
						   len);
	if (c->out.len > c->out_peak)
		c->out_peak = c->out.len;
}

static void
notify(struct cmd *c)
{
	if (c->on_update)
		c->on_update(c);
	if (!c->quiet)
		pthread_cond_broadcast(&c->m->cond);
}

static void submit_now(struct machine *m);

void
cmd_submit(struct cmd *c)
{
	struct machine *m = c->m;
	struct cmd **p = &m->queue;

	c->refs++;
	c->state = CMD_QUEUED;
	while (*p)
		p = &(*p)->next;
	*p = c;
	submit_now(m);
	if (m->queue)
		shellpool_kick(m);
	/* The supervisor keeps its deadline: woken only if it would sleep
	 * past it (a wake-up on every command costs a context switch). */
	if (m->sup_wake_ms && c->deadline && c->deadline < m->sup_wake_ms)
		pthread_cond_broadcast(&m->cond);
}

static void
queue_remove(struct machine *m, struct cmd *c)
{
	struct cmd **p;

	for (p = &m->queue; *p; p = &(*p)->next) {
		if (*p == c) {
			*p = c->next;
			c->next = NULL;
			return;
		}
	}
}

/* The consumer sees the end now; the shell may still be busy with it. */
static void
cmd_end(struct cmd *c, int err)
{
	if (c->state == CMD_DONE)
		return;
	if (err && !c->err)
		c->err = err;
	c->state = CMD_DONE;
	c->m->cmds_ended++;
	notify(c);
}

static void
queue_kill(struct machine *m, struct cmd *victim)
{
	struct cmd *k;
	char text[64];
	size_t lo, nsh;
	int n;

	if (victim->kill_queued || victim->guest_pid <= 0)
		return;
	/* A shell cannot kill what it is itself waiting for. */
	bootstrap_slots(m, &lo, &nsh);
	if (victim->shell == (int)lo || nsh < 2)
		return;
	victim->kill_queued = 1;
	n = snprintf(text, sizeof(text), "_atk %d", (int)victim->guest_pid);
	k = cmd_new(m, text, (size_t)n, 1);
	cmd_submit(k);
	cmd_put(k);
}

void
cmd_cancel(struct cmd *c, int err)
{
	struct machine *m = c->m;

	if (c->cancelled)
		return;
	c->cancelled = 1;
	if (c->state == CMD_QUEUED) {
		queue_remove(m, c);
		cmd_end(c, err);
		cmd_put(c);
		return;
	}
	if (c->state == CMD_RUNNING) {
		queue_kill(m, c);
		cmd_end(c, err);
		/* Unblock the worker if it was waiting for us to read. */
		if (c->shell >= 0)
			wake(&m->shells[c->shell]);
	}
}

/* The machine goes down: answer now, and queue no kill, since the guest
 * process goes with the VMM and a kill would only hold up the shells. */
void
cmd_abandon(struct cmd *c, int err)
{
	c->kill_queued = 1;
	cmd_cancel(c, err);
}

void
cmd_took_output(struct cmd *c)
{
	if (c->shell >= 0 && c->state != CMD_DONE)
		wake(&c->m->shells[c->shell]);
}

/* The shell is finished with its command (normally or not). */
static void
shell_release_cur(struct shell_slot *s, int err)
{
	struct cmd *c = s->cur;

	if (!c)
		return;
	s->cur = NULL;
	cmd_end(c, err);
	cmd_put(c);
}

static struct cmd *
pick(struct machine *m, struct shell_slot *s)
{
	struct cmd *c;
	int others = 0;
	size_t i, lo, n;

	/* Of a console machine's, hvc0 or the ports serve (bootstrap.c). */
	bootstrap_slots(m, &lo, &n);
	if ((size_t)s->index < lo || (size_t)s->index >= lo + n)
		return NULL;
	/* Connected counts, not ready: they greet a moment after shell 0. */
	for (i = lo + 1; i < lo + n; i++)
		others |= m->shells[i].conn_fd >= 0;
	for (c = m->queue; c; c = c->next) {
		/* Until the machine is running (its boot set-up done), only
		 * control work goes to the guest. */
		if (!c->control && m->state != MS_RUNNING)
			continue;
		if (c->control || (size_t)s->index != lo || !others)
			break;
	}
	if (c)
		queue_remove(m, c);
	return c;
}

/*
 * With the lock, lossy channel: the go-ahead for the guest's last chunk once
 * its reader has taken the output before it ("."), or "K" when nobody wants
 * it any more (cancelled, or a chunk of a command already given up).
 */
static void
acks_due(struct shell_slot *s)
{
	struct cmd *c = s->cur;

	/* All that are due at once: the agent has several chunks in flight,
	 * and no command line may come between them. */
	while (s->acks_owed) {
		if (!c || c->cancelled || c->tag != s->ack_tag)
			sb_adds(&s->outq, "K\n");
		else if (!c->out_cap || c->out.len < c->out_cap)
			sb_adds(&s->outq, ".\n");
		else
			return;
		s->acks_owed--;
	}
}

/* The machine's guest_agent key: output streams through the guest agent;
 * false keeps it in guest files until the exit (the old staged path). */
static int
agent_window(const struct machine *m)
{
	return m->cfg.guest_agent ? SHELL_AGENT_WINDOW : 0;
}

/* The guest shell (re)started: it gets the prelude, then is ready. */
static void
on_banner(struct shell_slot *s)
{
	struct machine *m = s->m;

	s->acks_owed = 0;
	s->resync_at = 0;
	if (s->cur)
		machine_logl(m, "shell %d: the guest shell restarted while "
			     "running a command", s->index);
	shell_release_cur(s, -EIO);
	s->ready = 0;
	s->bulk = 0;
	s->sync_tag = ++m->next_tag;
	shell_prelude(&s->outq, s->console, agent_window(m), s->sync_tag);
}

/*
 * Shell 0 of a continued guest: its clock, seed and a clone's name and
 * machine-id go on the line of the SYNC or probe tagged sync_tag; only
 * that tag's answer shows that they ran.
 */
static void
queue_resume_script(struct shell_slot *s)
{
	snapshot_resume_script(s->m, &s->outq);
	s->resume_tag = s->sync_tag;
}

/* The script comes before the echo on its line: an answer with its tag
 * shows it ran, also when a greeting has moved the SYNC on since. */
static void
resume_answered(struct shell_slot *s, long long num)
{
	if (s->resume_tag && num == s->resume_tag)
		s->resume_tag = 0;
}

static void
on_sync(struct shell_slot *s, long long num)
{
	struct machine *m = s->m;

	resume_answered(s, num);
	if (!s->sync_tag || num != s->sync_tag)
		return;
	s->resync_at = 0;
	if (s->resume_tag) {
		/* Its line went to a shell that ended before running it (a
		 * port shell that read EOF at the load drops what arrives
		 * until it is gone, and its successor greeted): neither
		 * ready nor running without it. */
		machine_logl(m, "shell %d: the resume script did not run; "
			     "sending it again", s->index);
		s->sync_tag = ++m->next_tag;
		queue_resume_script(s);
		shell_sync(&s->outq, s->sync_tag);
		pthread_cond_broadcast(&m->cond);
		return;
	}
	s->sync_tag = 0;
	s->ready = 1;
	bootstrap_shell_ready(m, s);
	if (s->index == 0 && m->state == MS_STARTING)
		machine_set_state(m, MS_RUNNING, "the backdoor answered");
	pthread_cond_broadcast(&m->cond);
}

static void
on_loss(struct shell_slot *s)
{
	struct machine *m = s->m;

	machine_logl(m, "shell %d: output was lost or garbled; "
		     "resynchronising", s->index);
	shell_release_cur(s, -EIO);
	s->ready = 0;
	s->sync_tag = ++m->next_tag;
	/* Its go-ahead first (a "K": the command stops), then SYNC. */
	acks_due(s);
	shell_sync(&s->outq, s->sync_tag);
	/* A guest that waited for a go-ahead takes that line as one. */
	if (s->parser.lossy)
		s->resync_at = now_mono_ms() + RESYNC_MS;
}

/* Without the agent, output comes after the exit, from guest files. */
static void
on_agent(struct shell_slot *s, long long ok, const char *why, size_t len)
{
	if (!ok)
		machine_logl(s->m, "shell %d: no guest agent (%.*s): output "
			     "comes from files after the command", s->index,
			     (int)(len > 200 ? 200 : len), why);
}

static void
on_event(void *ctx, enum shell_event ev, long long tag, long long num,
	 const char *data, size_t len)
{
	struct shell_slot *s = ctx;
	struct machine *m = s->m;
	struct cmd *c = s->cur;

	switch (ev) {
	case SHELL_EV_BANNER:
		on_banner(s);
		break;
	case SHELL_EV_SYNC:
		on_sync(s, num);
		break;
	case SHELL_EV_BARE:
		resume_answered(s, num);
		/* The probe met a shell without the prelude whose banner went
		 * to nobody: greet it as if it had. */
		if (s->sync_tag && num == s->sync_tag)
			on_banner(s);
		break;
	case SHELL_EV_PID:
		if (c && tag == c->tag)
			c->guest_pid = (pid_t)num;
		if (c && c->cancelled)
			queue_kill(m, c);
		break;
	case SHELL_EV_STATUS:
		if (c && tag == c->tag)
			c->status = (int)num;
		break;
	case SHELL_EV_CHUNK:
		if (s->parser.lossy) {
			s->acks_owed++;
			s->ack_tag = tag;
		}
		break;
	case SHELL_EV_STDOUT:
		/* A chunk of an earlier command (after a loss) is not c's. */
		if (c && tag && tag != c->tag)
			break;
		if (c && !c->cancelled) {
			cmd_add_output(c, data, len);
			notify(c);
		}
		break;
	case SHELL_EV_STDERR:
		if (c && tag && tag != c->tag)
			break;
		if (c && !c->cancelled)
			c->err_dropped += sb_add_keep_head(&c->errout,
							   CMD_STDERR_KEEP,
							   data, len);
		break;
	case SHELL_EV_END:
		shell_release_cur(s, 0);
		break;
	case SHELL_EV_LOSS:
		on_loss(s);
		break;
	case SHELL_EV_AGENT:
		on_agent(s, num, data, len);
		break;
	case SHELL_EV_BULK:
		/* Never on hvc0: a tty, and its bytes may be lost. */
		s->bulk = num && !s->console;
		break;
	case SHELL_EV_JUNK:
		break;
	}
}

/* A lone shell cannot be told to kill what it waits for: the guest keeps
 * the deadline itself (seconds left, rounded up), else 0. */
static unsigned
watchdog_for(struct machine *m, struct cmd *c)
{
	int64_t left;
	size_t lo, n;

	bootstrap_slots(m, &lo, &n);
	if (n >= 2 || !c->deadline)
		return 0;
	left = c->deadline - now_mono_ms();
	return left <= 1000 ? 1 : (unsigned)((left + 999) / 1000);
}

/* With the lock: take the next command if this shell is free. */
static void
dispatch(struct shell_slot *s)
{
	struct machine *m = s->m;
	struct cmd *c;

	if (!s->ready || s->cur)
		return;
	c = pick(m, s);
	if (!c)
		return;
	c->state = CMD_RUNNING;
	c->shell = s->index;
	c->tag = ++m->next_tag;
	s->cur = c;
	shell_command(&s->outq, c->tag, c->text, c->text_len, c->stdin_path,
		      watchdog_for(m, c), s->bulk);
}

/*
 * With the lock: what is queued goes to idle shells' sockets from the
 * caller's thread. Waking a shell's worker to send it would cost a
 * hand-off and its scheduling delay on every command; the worker polls
 * its socket for the answer anyway. A partial send leaves the rest to it.
 */
static void
submit_now(struct machine *m)
{
	size_t i;

	for (i = 0; i < m->n_shells && m->queue; i++) {
		struct shell_slot *s = &m->shells[i];
		ssize_t n;

		/* Owed go-aheads (a lossy channel's) go out first: its worker */
		if (!s->ready || s->cur || s->conn_fd < 0 || s->outq.len ||
		    s->acks_owed)
			continue;
		dispatch(s);
		if (!s->cur)
			continue;
		n = send(s->conn_fd, s->outq.data, s->outq.len,
			 MSG_DONTWAIT | MSG_NOSIGNAL);
		if (n > 0)
			sb_consume(&s->outq, (size_t)n);
		if (s->outq.len)
			wake(s);
	}
}

static int
backpressured(struct shell_slot *s)
{
	struct cmd *c = s->cur;

	return c && !c->cancelled && c->out_cap && c->out.len >= c->out_cap &&
	       !s->console;
}


/* With the lock: a SYNC the guest took for a go-ahead is asked again. */
static void
resync_due(struct shell_slot *s)
{
	if (!s->resync_at || !s->sync_tag || now_mono_ms() < s->resync_at)
		return;
	shell_sync(&s->outq, s->sync_tag);
	s->resync_at = now_mono_ms() + RESYNC_MS;
}

static void
serve(struct shell_slot *s, int fd)
{
	struct machine *m = s->m;
	char buf[65536];

	for (;;) {
		struct pollfd pfd[2] = {
			{ .fd = fd, .events = 0 },
			{ .fd = s->wake_fd, .events = POLLIN },
		};

		machine_lock(m);
		/* A connection handed over replaces this one. */
		if (m->stopping || s->pending_fd >= 0) {
			machine_unlock(m);
			return;
		}
		acks_due(s);
		resync_due(s);
		dispatch(s);
		if (!backpressured(s))
			pfd[0].events |= POLLIN;
		if (s->outq.len)
			pfd[0].events |= POLLOUT;
		machine_unlock(m);

		if (poll(pfd, 2, s->resync_at ? RESYNC_MS : -1) < 0) {
			if (errno == EINTR)
				continue;
			return;
		}
		if (pfd[1].revents & POLLIN) {
			uint64_t v;
			ssize_t n = read(s->wake_fd, &v, sizeof(v));

			(void)n;
		}
		if (pfd[0].revents & POLLOUT) {
			machine_lock(m);
			ssize_t n = send(fd, s->outq.data, s->outq.len,
					 MSG_DONTWAIT | MSG_NOSIGNAL);
			if (n > 0)
				sb_consume(&s->outq, (size_t)n);
			machine_unlock(m);
			if (n < 0 && errno != EAGAIN && errno != EINTR)
				return;
		}
		if (pfd[0].revents & POLLIN) {
			ssize_t n = recv(fd, buf, sizeof(buf), MSG_DONTWAIT);

			if (n == 0)
				return;
			if (n < 0) {
				if (errno == EAGAIN || errno == EINTR)
					continue;
				return;
			}
			machine_lock(m);
			shell_parse(&s->parser, buf, (size_t)n, on_event, s);
			machine_unlock(m);
		} else if (pfd[0].revents & (POLLHUP | POLLERR)) {
			return;
		}
	}
}

/* The first SYNC of a continued guest; the control shell also sets the
 * guest's clock and reseeds it before it answers. */
static void
queue_resume_sync(struct shell_slot *s)
{
	s->sync_tag = ++s->m->next_tag;
	if (s->index == 0)
		queue_resume_script(s);
	shell_sync(&s->outq, s->sync_tag);
}

/*
 * The first words to a handed-over connection: the shell behind it may be
 * new (a banner comes, or went to nobody: BARE) or live on with its prelude
 * (the VMM reset the connection: SYNC). A continued guest's control shell
 * gets its clock and seed first, as after a QEMU restore.
 */
static void
queue_probe(struct shell_slot *s)
{
	s->sync_tag = ++s->m->next_tag;
	s->bulk = 0;
	if (s->index == 0 && s->m->boot_restored)
		queue_resume_script(s);
	shell_probe(&s->outq, s->sync_tag);
}

/* The next connection: one handed over, else one accepted; -1 when
 * stopping or woken for nothing, -2 when poll fails. */
static int
next_conn(struct shell_slot *s, int *adopted)
{
	struct machine *m = s->m;
	struct pollfd pfd[2] = {
		{ .fd = s->listen_fd, .events = POLLIN },
		{ .fd = s->wake_fd, .events = POLLIN },
	};
	int fd;

	machine_lock(m);
	fd = m->stopping ? -1 : s->pending_fd;
	s->pending_fd = -1;
	machine_unlock(m);
	*adopted = fd >= 0;
	if (fd >= 0)
		return fd;
	if (poll(pfd, 2, -1) < 0)
		return errno == EINTR ? -1 : -2;
	if (pfd[1].revents & POLLIN) {
		uint64_t v;
		ssize_t n = read(s->wake_fd, &v, sizeof(v));

		(void)n;
	}
	if (!(pfd[0].revents & POLLIN))
		return -1;
	return accept4(s->listen_fd, NULL, NULL, SOCK_CLOEXEC);
}

static void
conn_begin(struct shell_slot *s, int fd, int adopted)
{
	struct machine *m = s->m;

	if (s->console) {
		/* QEMU drops console bytes whenever this socket is full:
		 * a deep buffer rides out a busy host. FORCE works as
		 * root, the plain one up to rmem_max otherwise. */
		int size = 8 << 20;

		if (setsockopt(fd, SOL_SOCKET, SO_RCVBUFFORCE, &size,
			       sizeof(size)) < 0)
			setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &size,
				   sizeof(size));
	}
	machine_lock(m);
	s->conn_fd = fd;
	s->adopted = adopted;
	s->ready = 0;
	s->sync_tag = 0;
	s->resume_tag = 0;
	s->acks_owed = 0;
	s->resync_at = 0;
	sb_free(&s->outq);
	shell_parser_init(&s->parser, s->console);
	if (adopted) {
		queue_probe(s);
	} else if (m->boot_restored) {
		/* The saved shell lives on with its prelude: no banner
		 * comes, so ask it to answer at once. */
		queue_resume_sync(s);
	}
	machine_unlock(m);
}

static void *
worker(void *arg)
{
	struct shell_slot *s = arg;
	struct machine *m = s->m;
	int fd, adopted;

	for (;;) {
		machine_lock(m);
		if (m->stopping) {
			machine_unlock(m);
			break;
		}
		machine_unlock(m);
		fd = next_conn(s, &adopted);
		if (fd == -2)
			break;
		if (fd < 0)
			continue;
		conn_begin(s, fd, adopted);

		serve(s, fd);

		machine_lock(m);
		shell_release_cur(s, -EIO);
		s->ready = 0;
		s->sync_tag = 0;
		s->conn_fd = -1;
		s->adopted = 0;
		sb_free(&s->outq);
		pthread_cond_broadcast(&m->cond);
		machine_unlock(m);
		/* A handed-over fd has a twin in the backend, which redials
		 * once it sees the end. */
		shutdown(fd, SHUT_RDWR);
		close(fd);
	}
	return NULL;
}

int
shellpool_init(struct machine *m, struct machine_listeners *pre,
	       struct aerr *err)
{
	size_t i;

	m->n_shells = bootstrap_n_slots(m);
	m->shells = xcalloc(m->n_shells, sizeof(*m->shells));
	for (i = 0; i < m->n_shells; i++) {
		struct shell_slot *s = &m->shells[i];

		s->m = m;
		s->index = (int)i;
		s->console = i == 0 &&
			     m->cfg.shell_channel == SHELL_CHANNEL_CONSOLE;
		s->conn_fd = -1;
		s->pending_fd = -1;
		s->listen_fd = -1;
		s->wake_fd = -1;
		sb_init(&s->outq);
		s->path = xasprintf("%s/shell.%zu.sock", m->dir, i);
	}
	for (i = 0; i < m->n_shells; i++) {
		struct shell_slot *s = &m->shells[i];
		int fd;

		if (pre && pre->shells[i] >= 0) {
			fd = pre->shells[i];
			pre->shells[i] = -1;
		} else {
			fd = sock_listen_unix(s->path, err);
		}
		if (fd < 0)
			return fd;
		s->listen_fd = fd;
		s->wake_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
		if (s->wake_fd < 0) {
			aerr_set(err, "eventfd: %s", strerror(errno));
			return -errno;
		}
		if (pthread_create(&s->thread, NULL, worker, s) != 0) {
			aerr_set(err, "cannot start a shell thread");
			close(s->wake_fd);
			s->wake_fd = -1;
			return -EAGAIN;
		}
	}
	return 0;
}

void
shellpool_stop(struct machine *m)
{
	size_t i;

	for (i = 0; i < m->n_shells; i++) {
		struct shell_slot *s = &m->shells[i];

		if (s->wake_fd >= 0) {
			wake(s);
			pthread_join(s->thread, NULL);
			close(s->wake_fd);
		}
		if (s->listen_fd >= 0)
			close(s->listen_fd);
		if (s->pending_fd >= 0)
			close(s->pending_fd);
		unlink(s->path);
		free(s->path);
		sb_free(&s->outq);
	}
	free(m->shells);
	m->shells = NULL;
	m->n_shells = 0;
}

/* With the lock: the VMM is gone; nothing queued can run any more. */
void
shellpool_vmm_gone(struct machine *m)
{
	size_t i;

	while (m->queue) {
		struct cmd *c = m->queue;

		m->queue = c->next;
		c->next = NULL;
		cmd_end(c, -EIO);
		cmd_put(c);
	}
	for (i = 0; i < m->n_shells; i++) {
		shell_release_cur(&m->shells[i], -EIO);
		m->shells[i].ready = 0;
	}
}

/* With the lock: let go of the VMM's connections now, not when it has
 * exited (a killed QEMU closes them only after freeing its memory). */
void
shellpool_disconnect(struct machine *m)
{
	size_t i;

	for (i = 0; i < m->n_shells; i++)
		if (m->shells[i].conn_fd >= 0)
			shutdown(m->shells[i].conn_fd, SHUT_RDWR);
	if (m->console_fd >= 0)
		shutdown(m->console_fd, SHUT_RDWR);
}

/*
 * With the lock: a VMM continuing a snapshot is connected (a pre-started
 * one, accepted while the machine had no VMM): its shells greet no more,
 * so ask each to answer at once.
 */
void
shellpool_resync(struct machine *m)
{
	size_t i;

	for (i = 0; i < m->n_shells; i++) {
		struct shell_slot *s = &m->shells[i];

		if (s->conn_fd < 0 || s->ready || s->sync_tag)
			continue;
		shell_parser_init(&s->parser, s->console);
		sb_free(&s->outq);
		queue_resume_sync(s);
		wake(s);
	}
}

/* With the lock: the guest reboots; its shells will greet again. */
void
shellpool_reset(struct machine *m)
{
	size_t i;

	for (i = 0; i < m->n_shells; i++) {
		shell_release_cur(&m->shells[i], -EIO);
		m->shells[i].ready = 0;
		m->shells[i].sync_tag = 0;
		/* A fresh boot: nothing to continue. */
		m->shells[i].resume_tag = 0;
	}
}

/* With the lock: a raw line to shell 0, outside any frame (poweroff). */
void
shellpool_send_raw(struct machine *m, const char *line)
{
	if (!m->n_shells || m->shells[0].conn_fd < 0)
		return;
	sb_adds(&m->shells[0].outq, line);
	wake(&m->shells[0]);
}

/* With the lock: the backend connected shell index (vsock); its worker
 * takes the fd as if it had accepted it. */
void
shellpool_adopt(struct machine *m, size_t index, int fd)
{
	struct shell_slot *s;

	if (m->stopping || index >= m->n_shells) {
		if (!m->stopping)
			machine_logl(m, "shell %zu: the backend connected a "
				     "shell this machine does not have", index);
		close(fd);
		return;
	}
	s = &m->shells[index];
	if (s->pending_fd >= 0)
		close(s->pending_fd);
	s->pending_fd = fd;
	wake(s);
}
