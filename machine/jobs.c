/*
 * jobs/<j>/: named background commands. A job runs in the guest detached
 * from any shell, with its output in files under $_atr/j/<j>/ (private) and
 * its stdin a FIFO kept open by a holder process until the host closes it.
 * The host polls the job (one control command: status and output sizes),
 * backing off from 50 ms to 1 s while somebody waits for it.
 *
 * A job is counted: its name in the tree, each guest command on its behalf
 * (the start, a stdin write, a poll) holds it. rmdir takes the name away at
 * once; the job is freed when the last command lets go, so a callback never
 * sees freed memory. What a removed job still started is killed when the
 * start ends, never before: until then there is no pid to kill.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "machine/guestcall.h"
#include "machine/jobs.h"

struct job *
job_find(struct machine *m, const char *name)
{
	struct job *j;

	for (j = m->jobs; j; j = j->next)
		if (!j->removed && !strcmp(j->name, name))
			return j;
	return NULL;
}

static int
name_ok(const char *name)
{
	size_t i, n = strlen(name);

	if (!n || n > 64 || name[0] == '.')
		return 0;
	for (i = 0; i < n; i++) {
		char c = name[i];

		if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
		      (c >= '0' && c <= '9') || c == '-' || c == '_' || c == '.'))
			return 0;
	}
	return 1;
}

int
machine_job_create(struct machine *m, const char *name)
{
	struct job *j;

	if (!name_ok(name)) {
		machine_log(m, "jobs: '%s' is not a job name ([A-Za-z0-9._-], "
			    "at most 64)", name);
		return -EINVAL;
	}
	machine_lock(m);
	if (job_find(m, name)) {
		machine_unlock(m);
		return -EEXIST;
	}
	j = xcalloc(1, sizeof(*j));
	j->m = m;
	j->refs = 1;
	j->name = xstrdup(name);
	sb_init(&j->env);
	j->poll_ms = POLL_FIRST_MS;
	j->next = m->jobs;
	m->jobs = j;
	machine_unlock(m);
	return 0;
}

static void
job_free(struct job *j)
{
	sb_free(&j->env);
	free(j->dir);
	free(j->user);
	free(j->name);
	free(j);
}

/* With the lock: let go of j; the last one unlinks and frees it. */
void
job_put(struct machine *m, struct job *j)
{
	struct job **p;

	if (--j->refs > 0)
		return;
	for (p = &m->jobs; *p; p = &(*p)->next) {
		if (*p == j) {
			*p = j->next;
			break;
		}
	}
	job_free(j);
}

/* Fire and forget a control command in the guest. */
static void
guest_do(struct machine *m, const char *text, int control)
{
	struct cmd *c;

	if (m->state != MS_RUNNING)
		return;
	c = cmd_new(m, text, strlen(text), control);
	c->deadline = now_mono_ms() + 30000;
	cmd_submit(c);
	cmd_put(c);
}

static void
job_signal_locked(struct job *j, const char *sig)
{
	char *text = xasprintf("_atsig %s $(cat " JOB_DIR "%s/p)", sig, j->name);

	guest_do(j->m, text, 1);
	free(text);
}

static void
readers_fail(struct machine *m, struct job *j, int err)
{
	while (j->readers) {
		struct job_reader *rd = j->readers;

		j->readers = rd->next;
		if (rd->r)
			mreq_finish(m, rd->r, err);
		free(rd);
	}
}

/*
 * With the lock: end what the job left in the guest, kill: its process
 * tree first. The holder goes too: nothing else ends it once the job's own
 * wrapper is killed or finds its directory gone.
 */
static void
job_cleanup(struct job *j, int kill)
{
	char *text = xasprintf("d=" JOB_DIR "%s; %s_atsig KILL $(cat $d/h "
			       "2>/dev/null); rm -rf $d", j->name,
			       kill ? "_atsig KILL $(cat $d/p 2>/dev/null); "
				    : "");

	guest_do(j->m, text, 1);
	free(text);
}

static void job_call_end(struct job_call *call, int err);

int
machine_job_remove(struct machine *m, const char *name)
{
	struct job_call *call, *next;
	struct job *j;

	machine_lock(m);
	j = job_find(m, name);
	if (!j) {
		machine_unlock(m);
		return -ENOENT;
	}
	j->removed = 1;
	/* A start still under way cleans up when it ends (job_started). */
	if (j->state != JOB_STARTING && j->state != JOB_CREATED &&
	    j->generation == m->generation)
		job_cleanup(j, j->state == JOB_RUNNING);
	readers_fail(m, j, -ENOENT);
	for (call = j->calls; call; call = next) {
		next = call->next;
		if (call->f == JOB_STDIN)
			job_call_end(call, -ENOENT);
	}
	job_put(m, j);
	machine_unlock(m);
	return 0;
}

int
machine_job_list(struct machine *m, char **names, size_t *len)
{
	struct strbuf sb;
	struct job *j;
	int n = 0;

	sb_init(&sb);
	machine_lock(m);
	for (j = m->jobs; j; j = j->next) {
		if (j->removed)
			continue;
		sb_add(&sb, j->name, strlen(j->name) + 1);
		n++;
	}
	machine_unlock(m);
	*names = sb_detach(&sb, len);
	return n;
}

int
machine_job_exists(struct machine *m, const char *name)
{
	int found;

	machine_lock(m);
	found = job_find(m, name) != NULL;
	machine_unlock(m);
	return found;
}

/* ---- writing ------------------------------------------------------------ */

/* With the lock: the start ended; the job runs, or not. */
static int
job_started(struct job *j, struct cmd *c, size_t len)
{
	struct machine *m = c->m;
	int err = c->err ? c->err : guest_errno(c);

	if (!err) {
		j->state = JOB_RUNNING;
		j->generation = m->generation;
	}
	if (j->removed) {
		machine_logl(m, "job %s: removed while it started; %s", j->name,
			     err ? "cleaning up" : "killing it");
		job_cleanup(j, 1);
		j->state = JOB_DONE;
		return -ENOENT;
	}
	if (err) {
		j->state = JOB_DONE;
		j->status = 255;
		machine_logl(m, "job %s: could not start: %.200s", j->name,
			     c->err ? strerror(-c->err) :
			     c->errout.data ? c->errout.data : "");
		/* Interrupted half way, it may have begun: end that. */
		if (c->err)
			job_cleanup(j, 1);
		job_readers_serve(j);
		return c->err ? c->err : -EIO;
	}
	if (j->timeout)
		j->deadline = now_mono_ms() + (int64_t)j->timeout * 1000;
	job_wake_polling(j);
	job_readers_serve(j);
	return (int)len;
}

static void
job_call_update(struct cmd *c)
{
	struct job_call *call = c->ctx, **p;
	struct machine *m = c->m;
	struct job *j = call->j;
	int ret;

	if (c->state != CMD_DONE)
		return;
	c->on_update = NULL;
	c->ctx = NULL;
	for (p = &j->calls; *p; p = &(*p)->next) {
		if (*p == call) {
			*p = call->next;
			break;
		}
	}
	if (call->f == JOB_CMD) {
		ret = job_started(j, c, call->len);
	} else {
		ret = c->err ? c->err : guest_errno(c);
		if (!ret)
			ret = (int)call->len;
		/* What the input makes the job print: look soon (a terminal
		 * echoes every key). */
		if (ret > 0 && call->f == JOB_STDIN) {
			job_wake_polling(j);
			pthread_cond_broadcast(&m->cond);
		}
	}
	if (call->r)
		mreq_finish(m, call->r, ret);
	cmd_put(c);
	free(call);
	job_put(m, j);
}

/* With the lock: answer the write now; its command ends (killed). */
static void
job_call_end(struct job_call *call, int err)
{
	struct mreq *r = call->r;

	call->r = NULL;
	if (r)
		mreq_finish(call->c->m, r, err);
	/* May end the call at once, through job_call_update. */
	cmd_cancel(call->c, err);
}

static void
job_call_cancel(struct mreq *r)
{
	job_call_end(r->priv_data, -EINTR);
}

/* With the lock: a write of j that a guest command answers. */
static void
job_call(struct job *j, enum job_file f, const char *text, size_t len,
	 size_t taken, struct mreq *r)
{
	struct machine *m = j->m;
	struct job_call *call;
	int ret = machine_needs_guest(m, r);

	if (ret < 0) {
		mreq_finish(m, r, ret);
		return;
	}
	call = xcalloc(1, sizeof(*call));
	call->j = j;
	call->r = r;
	call->f = f;
	call->len = taken;
	call->c = cmd_new(m, text, len, 0);
	call->c->on_update = job_call_update;
	call->c->ctx = call;
	call->c->deadline = now_mono_ms() + (int64_t)m->timeout * 1000;
	call->next = j->calls;
	j->calls = call;
	j->refs++;
	if (f == JOB_CMD)
		j->state = JOB_STARTING;
	mreq_park(m, r, job_call_cancel, call);
	cmd_submit(call->c);
}

static void
job_start(struct machine *m, struct job *j, const char *cmd, size_t len,
	  struct mreq *r)
{
	struct strbuf sb, inner, run;
	size_t taken = len;

	while (len && cmd[len - 1] == '\n')
		len--;
	sb_init(&sb);
	sb_init(&inner);
	sb_init(&run);
	if (j->env.len)
		sb_add(&inner, j->env.data, j->env.len);
	if (j->dir) {
		sb_adds(&inner, "cd -- ");
		sb_add_shell_quoted(&inner, j->dir, strlen(j->dir));
		sb_adds(&inner, " || exit 127; ");
	}
	if (j->user) {
		struct strbuf q;

		sb_init(&q);
		sb_add_shell_quoted(&q, cmd, len);
		sb_adds(&run, "exec su -s /bin/sh -c ");
		sb_add(&run, q.data, q.len);
		sb_adds(&run, " -- ");
		sb_add_shell_quoted(&run, j->user, strlen(j->user));
		sb_free(&q);
	} else {
		sb_adds(&run, "exec sh -c ");
		sb_add_shell_quoted(&run, cmd, len);
	}
	if (j->tty_rows) {
		/* The helper was uploaded into $d/x; $d/t gets the pty's name. */
		sb_addf(&inner, "exec $d/x %d %d $d/t ", j->tty_rows, j->tty_cols);
		sb_add_shell_quoted(&inner, run.data, run.len);
	} else {
		sb_add(&inner, run.data, run.len);
	}
	/*
	 * The holder keeps the FIFO open for writing so that the job sees EOF
	 * only when the host closes stdin. Everything is detached from the
	 * launching shell's own output files.
	 */
	sb_addf(&sb, "d=" JOB_DIR "%s; rm -rf $d; mkdir -p $d && mkfifo $d/i && "
		": > $d/o && : > $d/e && ", j->name);
	if (j->tty_rows) {
		sb_adds(&sb, "printf %s '");
		shell_base64(&sb, job_pty_blob, job_pty_blob_len);
		sb_adds(&sb, "' | base64 -d > $d/x && chmod 700 $d/x && ");
	}
	sb_adds(&sb, "{ (sleep 2147483647 > $d/i) & echo $! > $d/h; ( (");
	sb_add(&sb, inner.data, inner.len);
	sb_adds(&sb, ") < $d/i > $d/o 2> $d/e & echo $! > $d/p; wait $!; "
		     "echo $? > $d/s.t; mv $d/s.t $d/s; kill $(cat $d/h) ) & "
		     "} > /dev/null 2>&1 < /dev/null; "
		     "while [ ! -s $d/p ]; do sleep 0.01; done");
	machine_logl(m, "job %s: %.*s", j->name, (int)(len > 200 ? 200 : len),
		     cmd);
	job_call(j, JOB_CMD, sb.data, sb.len, taken, r);
	sb_free(&sb);
	sb_free(&inner);
	sb_free(&run);
}

/* "ROWS COLS" of ctl tty and winsize: 0, or -EINVAL with the reason logged. */
static int
winsize_parse(struct job *j, const char *verb, const char *arg, int *rows,
	      int *cols)
{
	char extra;

	if (!arg || sscanf(arg, "%d %d %c", rows, cols, &extra) != 2 ||
	    strspn(arg, "0123456789 ") != strlen(arg) || *rows < 1 ||
	    *cols < 1 || *rows > 9999 || *cols > 9999) {
		machine_logl(j->m, "job %s: %s: '%s' is not ROWS COLS (1..9999 "
			     "each)", j->name, verb, arg ? arg : "");
		return -EINVAL;
	}
	return 0;
}

/* ctl winsize: the guest resizes the pty; the kernel sends SIGWINCH. */
static int
job_winsize(struct machine *m, struct job *j, const char *arg, size_t len,
	    struct mreq *r)
{
	int rows, cols, ret = winsize_parse(j, "winsize", arg, &rows, &cols);
	char *text;

	if (ret < 0)
		return ret;
	if (!j->tty_rows) {
		machine_logl(m, "job %s: winsize: not a tty job (ctl tty ROWS "
			     "COLS before cmd)", j->name);
		return -EINVAL;
	}
	if (j->state != JOB_RUNNING) {
		machine_logl(m, "job %s: winsize: it is not running", j->name);
		return -ESRCH;
	}
	text = xasprintf("stty -F \"$(cat " JOB_DIR "%s/t)\" rows %d cols %d",
			 j->name, rows, cols);
	job_call(j, JOB_CTL, text, strlen(text), len, r);
	free(text);
	return 0;
}

static void
job_ctl(struct machine *m, struct job *j, const char *msg, size_t len,
	struct mreq *r)
{
	char *s = xmalloc(len + 1), *arg;
	int ret = (int)len, secs;

	memcpy(s, msg, len);
	s[len] = '\0';
	while (len && (s[len - 1] == '\n' || s[len - 1] == ' '))
		s[--len] = '\0';
	arg = strchr(s, ' ');
	if (arg)
		*arg++ = '\0';
	if (!strcmp(s, "winsize")) {
		/* ret: the whole write's length, which the guest's answer
		 * returns */
		ret = job_winsize(m, j, arg, (size_t)ret, r);
		if (!ret) {
			free(s);
			return;   /* the guest command answers r */
		}
	} else if (!strcmp(s, "kill")) {
		const char *sig = arg && *arg ? arg : "TERM";

		if (j->state != JOB_RUNNING) {
			machine_logl(m, "job %s: kill: it is not running", j->name);
			ret = -ESRCH;
		} else if (strspn(sig, "ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789") !=
			   strlen(sig)) {
			machine_logl(m, "job %s: kill: bad signal '%s'", j->name,
				     sig);
			ret = -EINVAL;
		} else {
			job_signal_locked(j, sig);
			job_wake_polling(j);
		}
	} else if (j->state != JOB_CREATED) {
		machine_logl(m, "job %s: ctl '%s' only before cmd", j->name, s);
		ret = -EBUSY;
	} else if (!strcmp(s, "env") && arg && strchr(arg, '=') &&
		   arg[0] != '=') {
		char *eq = strchr(arg, '=');

		*eq = '\0';
		if (strspn(arg, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
				"0123456789_") != strlen(arg)) {
			machine_logl(m, "job %s: env: bad name '%s'", j->name, arg);
			ret = -EINVAL;
		} else {
			sb_addf(&j->env, "export %s=", arg);
			sb_add_shell_quoted(&j->env, eq + 1, strlen(eq + 1));
			sb_adds(&j->env, "; ");
		}
	} else if (!strcmp(s, "dir") && arg && *arg) {
		free(j->dir);
		j->dir = xstrdup(arg);
	} else if (!strcmp(s, "user") && arg && *arg) {
		free(j->user);
		j->user = xstrdup(arg);
	} else if (!strcmp(s, "timeout") && arg && secs_parse(arg, &secs) == 0) {
		j->timeout = secs;
	} else if (!strcmp(s, "tty")) {
		int rows, cols;

		if (winsize_parse(j, "tty", arg, &rows, &cols)) {
			ret = -EINVAL;
		} else {
			j->tty_rows = rows;
			j->tty_cols = cols;
		}
	} else {
		machine_logl(m, "job %s: bad ctl '%s' (expected: env K=V | dir PATH "
			     "| user NAME | timeout SECS | tty ROWS COLS | "
			     "winsize ROWS COLS | kill [SIG])", j->name, s);
		ret = -EINVAL;
	}
	free(s);
	mreq_finish(m, r, ret);
}

void
machine_job_write(struct machine *m, const char *name, enum job_file f,
		  const char *buf, size_t len, struct mreq *r)
{
	struct job *j;

	machine_lock(m);
	j = job_find(m, name);
	if (!j) {
		mreq_finish(m, r, -ENOENT);
		goto out;
	}
	if ((f == JOB_CMD || f == JOB_CTL) && memchr(buf, '\0', len)) {
		/* The guest shell would drop it and run something else. */
		machine_logl(m, "job %s: a NUL byte in its %s", name,
			     f == JOB_CMD ? "cmd" : "ctl");
		mreq_finish(m, r, -EINVAL);
		goto out;
	}
	switch (f) {
	case JOB_CMD:
		if (j->state != JOB_CREATED) {
			machine_logl(m, "job %s: already started", name);
			mreq_finish(m, r, -EBUSY);
			break;
		}
		job_start(m, j, buf, len, r);
		break;
	case JOB_CTL:
		job_ctl(m, j, buf, len, r);
		break;
	case JOB_STDIN: {
		struct strbuf sb;

		if (j->state != JOB_RUNNING && j->state != JOB_STARTING) {
			mreq_finish(m, r, j->state == JOB_DONE ? -EPIPE : -EBUSY);
			break;
		}
		sb_init(&sb);
		sb_adds(&sb, "printf %s '");
		shell_base64(&sb, buf, len);
		sb_addf(&sb, "' | base64 -d > " JOB_DIR "%s/i", j->name);
		job_call(j, JOB_STDIN, sb.data, sb.len, len, r);
		sb_free(&sb);
		break;
	}
	default:
		mreq_finish(m, r, -EINVAL);
	}
out:
	machine_unlock(m);
}

void
machine_job_stdin_close(struct machine *m, const char *name)
{
	struct job *j;

	machine_lock(m);
	j = job_find(m, name);
	if (j && (j->state == JOB_RUNNING || j->state == JOB_STARTING)) {
		char *text = xasprintf("kill $(cat " JOB_DIR "%s/h) 2>/dev/null; "
				       "true", j->name);

		guest_do(m, text, 0);
		free(text);
	}
	machine_unlock(m);
}

/* From the supervisor, with the lock: polls and deadlines of jobs. */
void
jobs_check(struct machine *m, int64_t now, int64_t *next)
{
	struct job *j;

	/* Nothing here lets go of a job: the list stays as it is. */
	for (j = m->jobs; j; j = j->next) {
		if (j->removed || j->state != JOB_RUNNING)
			continue;
		if (j->deadline && now >= j->deadline && !j->timed_out) {
			j->timed_out = 1;
			machine_logl(m, "job %s: timed out; killing it", j->name);
			job_signal_locked(j, "KILL");
			job_wake_polling(j);
		}
		if (!j->readers && !j->deadline)
			continue;
		if (!j->poll && now >= j->next_poll)
			job_poll_start(j);
		if (!j->poll && j->next_poll < *next)
			*next = j->next_poll;
		if (j->deadline && !j->timed_out && j->deadline < *next)
			*next = j->deadline;
	}
}

/*
 * At teardown, after the shells are gone: every command has ended, and with
 * it every call and poll. Whatever is left is freed whatever it counts.
 */
void
jobs_free(struct machine *m)
{
	machine_lock(m);
	while (m->jobs) {
		struct job *j = m->jobs;

		m->jobs = j->next;
		readers_fail(m, j, -EIO);
		while (j->calls) {
			struct job_call *call = j->calls;

			j->calls = call->next;
			call->c->on_update = NULL;
			call->c->ctx = NULL;
			cmd_put(call->c);
			if (call->r)
				mreq_finish(m, call->r, -EIO);
			free(call);
		}
		if (j->poll) {
			j->poll->on_update = NULL;
			cmd_put(j->poll);
		}
		job_free(j);
	}
	machine_unlock(m);
}
