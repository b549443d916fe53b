/*
 * QMP client: one reader thread per connection splits the byte stream into
 * lines, parses each with json-c and sorts it: the greeting, an event (handed
 * to on_event at once, even when it arrives before the reply to the command
 * that caused it), or a reply (matched to its waiting caller by "id").
 *
 * Callers register a pending entry (on their own stack) before they send, so
 * a reply can never arrive "too early"; they sleep on one condition variable
 * (CLOCK_MONOTONIC) until their entry is answered, the connection ends or
 * the deadline passes.
 */
#include "backends/qmp.h"

#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <signal.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <json-c/json.h>

#include "backends/qmp_internal.h"
#include "common/sock.h"

/* A reply bigger than this is a broken peer, not a QMP server. */
#define QMP_MAX_LINE (64u << 20)

struct qmp_pending {
	int64_t id;
	bool done;
	int rc;                   /* 0 or -EPIPE */
	json_object *reply;       /* owned reference once done */
	struct qmp_pending *next;
};

struct qmp {
	int fd;
	pthread_t reader;
	bool reader_started;

	/* Guards what callers and the reader thread share: next_id, the
	 * pending list and its entries, users, greeted, closed, closing and
	 * close_errno. Never held across a write to fd or a callback. The
	 * callbacks and owner are set once, before the reader starts. */
	pthread_mutex_t lock;
	pthread_cond_t cond;      /* CLOCK_MONOTONIC; on every change */
	/* Serialises writes to fd, so that two commands' bytes (and a passed
	 * fd) never interleave; taken without lock. */
	pthread_mutex_t write_lock;

	int64_t next_id;
	struct qmp_pending *pending;
	unsigned users;           /* callers inside execute/transact */
	bool greeted;
	bool closed;              /* the reader has ended */
	bool closing;             /* qmp_close() has begun */
	int close_errno;          /* 0 = EOF */

	qmp_event_fn on_event;
	qmp_closed_fn on_closed;
	void *owner;
};

static const char *
qmp_json_text(json_object *o)
{
	return json_object_to_json_string_ext(o, JSON_C_TO_STRING_PLAIN |
					      JSON_C_TO_STRING_NOSLASHESCAPE);
}

/* Wait on q->cond; returns ETIMEDOUT once the deadline passed. */
static int
qmp_wait(struct qmp *q, const struct timespec *deadline)
{
	if (!deadline)
		return pthread_cond_wait(&q->cond, &q->lock);
	return pthread_cond_timedwait(&q->cond, &q->lock, deadline);
}

static void
qmp_handle_reply(struct qmp *q, json_object *obj)
{
	json_object *jid;
	struct qmp_pending *p, *match = NULL;
	int64_t id;

	pthread_mutex_lock(&q->lock);
	if (json_object_object_get_ex(obj, "id", &jid) &&
	    json_object_is_type(jid, json_type_int)) {
		id = json_object_get_int64(jid);
		for (p = q->pending; p; p = p->next) {
			if (p->id == id && !p->done) {
				match = p;
				break;
			}
		}
	} else if (q->pending && !q->pending->next && !q->pending->done) {
		/* No id (QEMU could not even parse the request): if
		 * exactly one caller waits, the reply is its. */
		match = q->pending;
	}
	if (match) {
		match->reply = json_object_get(obj);
		match->rc = 0;
		match->done = true;
		pthread_cond_broadcast(&q->cond);
	}
	pthread_mutex_unlock(&q->lock);
}

static void
qmp_handle_line(struct qmp *q, json_tokener *tok, const char *line,
		size_t len)
{
	json_object *obj, *v;
	bool deliver;

	while (len && (line[len - 1] == '\r' || line[len - 1] == ' ' ||
		       line[len - 1] == '\t'))
		len--;
	if (!len)
		return;
	json_tokener_reset(tok);
	obj = json_tokener_parse_ex(tok, line, (int)len);
	if (!obj || !json_object_is_type(obj, json_type_object)) {
		json_object_put(obj);
		return; /* not a QMP message: ignore */
	}
	if (json_object_object_get_ex(obj, "QMP", NULL)) {
		pthread_mutex_lock(&q->lock);
		q->greeted = true;
		pthread_cond_broadcast(&q->cond);
		pthread_mutex_unlock(&q->lock);
	} else if (json_object_object_get_ex(obj, "event", &v) &&
		   json_object_is_type(v, json_type_string)) {
		json_object *data;
		const char *text = "";

		if (json_object_object_get_ex(obj, "data", &data) && data)
			text = qmp_json_text(data);
		pthread_mutex_lock(&q->lock);
		deliver = !q->closing && q->on_event;
		pthread_mutex_unlock(&q->lock);
		if (deliver)
			q->on_event(q->owner, json_object_get_string(v), text);
	} else if (json_object_object_get_ex(obj, "return", NULL) ||
		   json_object_object_get_ex(obj, "error", NULL)) {
		qmp_handle_reply(q, obj);
	}
	json_object_put(obj);
}

void
qmp_input_init(struct qmp_input *in)
{
	in->tok = json_tokener_new_ex(JSON_TOKENER_DEFAULT_DEPTH);
	sb_init(&in->buf);
	in->scanned = 0;
}

void
qmp_input_free(struct qmp_input *in)
{
	json_tokener_free(in->tok);
	sb_free(&in->buf);
}

int
qmp_input(struct qmp *q, struct qmp_input *in, const char *chunk, size_t n)
{
	size_t start = 0, i;

	/* A last line without a newline still counts (QEMU always ends
	 * lines, but a peer that closes right after its reply should not
	 * lose it). */
	if (!n) {
		if (in->buf.len)
			qmp_handle_line(q, in->tok, in->buf.data, in->buf.len);
		sb_consume(&in->buf, in->buf.len);
		in->scanned = 0;
		return 0;
	}
	sb_add(&in->buf, chunk, n);
	for (i = in->scanned; i < in->buf.len; i++) {
		if (in->buf.data[i] != '\n')
			continue;
		qmp_handle_line(q, in->tok, in->buf.data + start, i - start);
		start = i + 1;
	}
	sb_consume(&in->buf, start);
	in->scanned = in->buf.len;
	return in->buf.len > QMP_MAX_LINE ? -EMSGSIZE : 0;
}

static void *
qmp_reader_main(void *arg)
{
	struct qmp *q = arg;
	struct qmp_input in;
	struct qmp_pending *p;
	int err = 0;
	bool notify;
	sigset_t all;

	sigfillset(&all);
	pthread_sigmask(SIG_BLOCK, &all, NULL);
	qmp_input_init(&in);
	for (;;) {
		char chunk[65536];
		ssize_t n = recv(q->fd, chunk, sizeof(chunk), 0);

		if (n < 0) {
			if (errno == EINTR)
				continue;
			err = errno;  /* ECONNRESET after quit, or shutdown */
			break;
		}
		if (n == 0)
			break;
		if (qmp_input(q, &in, chunk, (size_t)n) < 0) {
			err = EMSGSIZE;
			break;
		}
	}
	qmp_input(q, &in, NULL, 0);
	qmp_input_free(&in);

	pthread_mutex_lock(&q->lock);
	q->closed = true;
	q->close_errno = err;
	for (p = q->pending; p; p = p->next) {
		if (!p->done) {
			p->done = true;
			p->rc = -EPIPE;
		}
	}
	pthread_cond_broadcast(&q->cond);
	notify = !q->closing && q->on_closed;
	pthread_mutex_unlock(&q->lock);
	if (notify)
		q->on_closed(q->owner);
	return NULL;
}

/* pass_fd >= 0 rides along (SCM_RIGHTS) with the first bytes of text:
 * QEMU attaches it to the command it is reading (getfd, add-fd). */
static int
qmp_send_line(struct qmp *q, const char *text, int pass_fd)
{
	size_t len = strlen(text), off = 0;
	int ret = 0;

	pthread_mutex_lock(&q->write_lock);
	while (off <= len) {
		const char *p = off < len ? text + off : "\n";
		size_t n = off < len ? len - off : 1;
		union {
			char buf[CMSG_SPACE(sizeof(int))];
			struct cmsghdr align;
		} ctl;
		struct iovec iov = { .iov_base = (void *)p, .iov_len = n };
		struct msghdr msg = { .msg_iov = &iov, .msg_iovlen = 1 };
		ssize_t w;

		if (pass_fd >= 0) {
			struct cmsghdr *c;

			memset(&ctl, 0, sizeof(ctl));
			msg.msg_control = ctl.buf;
			msg.msg_controllen = sizeof(ctl.buf);
			c = CMSG_FIRSTHDR(&msg);
			c->cmsg_level = SOL_SOCKET;
			c->cmsg_type = SCM_RIGHTS;
			c->cmsg_len = CMSG_LEN(sizeof(int));
			memcpy(CMSG_DATA(c), &pass_fd, sizeof(int));
		}
		w = sendmsg(q->fd, &msg, MSG_NOSIGNAL);
		if (w > 0)
			pass_fd = -1;

		if (w < 0) {
			if (errno == EINTR)
				continue;
			ret = -errno;
			break;
		}
		off += (size_t)w;
	}
	pthread_mutex_unlock(&q->write_lock);
	return ret;
}

static void
qmp_unlink_pending(struct qmp *q, struct qmp_pending *me)
{
	struct qmp_pending **pp;

	for (pp = &q->pending; *pp; pp = &(*pp)->next) {
		if (*pp == me) {
			*pp = me->next;
			break;
		}
	}
}

static void
qmp_leave(struct qmp *q, struct qmp_pending *me)
{
	qmp_unlink_pending(q, me);
	q->users--;
	if (q->closing && q->users == 0)
		pthread_cond_broadcast(&q->cond);
}

/*
 * Give req an id of ours, send it, wait for the reply. On success *reply
 * holds a reference to the reply object.
 */
static int
qmp_request(struct qmp *q, json_object *req, int pass_fd, int timeout_ms,
	    json_object **reply, struct aerr *err)
{
	struct qmp_pending me = { 0 };
	struct timespec deadline;
	const char *name = "";
	json_object *v;
	int ret, rc = 0;

	if (json_object_object_get_ex(req, "execute", &v))
		name = json_object_get_string(v);
	if (timeout_ms > 0)
		mono_deadline(&deadline, timeout_ms);

	pthread_mutex_lock(&q->lock);
	if (q->closed || q->closing) {
		pthread_mutex_unlock(&q->lock);
		aerr_set(err, "QMP %s: connection closed", name);
		return -EPIPE;
	}
	me.id = ++q->next_id;
	me.next = q->pending;
	q->pending = &me;
	q->users++;
	pthread_mutex_unlock(&q->lock);

	json_object_object_add(req, "id", json_object_new_int64(me.id));
	ret = qmp_send_line(q, qmp_json_text(req), pass_fd);

	pthread_mutex_lock(&q->lock);
	if (ret < 0) {
		qmp_leave(q, &me);
		pthread_mutex_unlock(&q->lock);
		json_object_put(me.reply);
		aerr_set(err, "QMP %s: send: %s", name, strerror(-ret));
		return -EPIPE;
	}
	while (!me.done && rc == 0)
		rc = qmp_wait(q, timeout_ms > 0 ? &deadline : NULL);
	qmp_leave(q, &me);
	pthread_mutex_unlock(&q->lock);

	if (!me.done) {
		aerr_set(err, "QMP %s: no reply in %d ms", name, timeout_ms);
		return -ETIMEDOUT;
	}
	if (me.rc < 0) {
		aerr_set(err, "QMP %s: connection closed", name);
		return me.rc;
	}
	*reply = me.reply;
	return 0;
}

int
qmp_execute(struct qmp *q, const char *name, const char *args_json,
	    int timeout_ms, char **ret, struct aerr *err)
{
	return qmp_execute_fd(q, name, args_json, -1, timeout_ms, ret, err);
}

int
qmp_execute_fd(struct qmp *q, const char *name, const char *args_json,
	       int pass_fd, int timeout_ms, char **ret, struct aerr *err)
{
	json_object *req, *args = NULL, *reply = NULL, *v, *cls, *desc;
	enum json_tokener_error jerr;
	int rc;

	if (ret)
		*ret = NULL;
	if (args_json && *args_json) {
		args = json_tokener_parse_verbose(args_json, &jerr);
		if (!args || !json_object_is_type(args, json_type_object)) {
			json_object_put(args);
			aerr_set(err, "QMP %s: arguments are not a JSON object",
				 name);
			return -EINVAL;
		}
	}
	req = json_object_new_object();
	json_object_object_add(req, "execute", json_object_new_string(name));
	if (args)
		json_object_object_add(req, "arguments", args);
	rc = qmp_request(q, req, pass_fd, timeout_ms, &reply, err);
	json_object_put(req);
	if (rc < 0)
		return rc;

	if (json_object_object_get_ex(reply, "error", &v)) {
		const char *c = "Error", *d = "";

		if (json_object_object_get_ex(v, "class", &cls))
			c = json_object_get_string(cls);
		if (json_object_object_get_ex(v, "desc", &desc))
			d = json_object_get_string(desc);
		aerr_set(err, "%s: %s", c, d);
		json_object_put(reply);
		return -EIO;
	}
	if (ret) {
		if (json_object_object_get_ex(reply, "return", &v) && v)
			*ret = xstrdup(qmp_json_text(v));
		else
			*ret = xstrdup("{}");
	}
	json_object_put(reply);
	return 0;
}

int
qmp_transact(struct qmp *q, const char *request_json, int timeout_ms,
	     char **reply, struct aerr *err)
{
	json_object *req, *user_id = NULL, *rep = NULL;
	enum json_tokener_error jerr;
	int rc;

	*reply = NULL;
	req = json_tokener_parse_verbose(request_json, &jerr);
	if (!req || !json_object_is_type(req, json_type_object)) {
		json_object_put(req);
		aerr_set(err, "QMP: request is not a JSON object%s%s",
			 req ? "" : ": ",
			 req ? "" : json_tokener_error_desc(jerr));
		return -EINVAL;
	}
	if (json_object_object_get_ex(req, "id", &user_id))
		json_object_get(user_id);
	rc = qmp_request(q, req, -1, timeout_ms, &rep, err);
	json_object_put(req);
	if (rc < 0) {
		json_object_put(user_id);
		return rc;
	}
	json_object_object_del(rep, "id");
	if (user_id)
		json_object_object_add(rep, "id", user_id);
	*reply = xstrdup(qmp_json_text(rep));
	json_object_put(rep);
	return 0;
}

void
qmp_free(struct qmp *q)
{
	if (q->fd >= 0)
		close(q->fd);
	pthread_mutex_destroy(&q->lock);
	pthread_mutex_destroy(&q->write_lock);
	pthread_cond_destroy(&q->cond);
	free(q);
}

void
qmp_close(struct qmp *q)
{
	if (!q)
		return;
	pthread_mutex_lock(&q->lock);
	q->closing = true;
	pthread_mutex_unlock(&q->lock);
	shutdown(q->fd, SHUT_RDWR);
	if (q->reader_started)
		pthread_join(q->reader, NULL);
	pthread_mutex_lock(&q->lock);
	/* The reader failed every pending caller; wait until they left. */
	while (q->users)
		pthread_cond_wait(&q->cond, &q->lock);
	pthread_mutex_unlock(&q->lock);
	qmp_free(q);
}

int
qmp_wait_closed(struct qmp *q, int timeout_ms)
{
	struct timespec deadline;
	int rc = 0;

	if (timeout_ms > 0)
		mono_deadline(&deadline, timeout_ms);
	pthread_mutex_lock(&q->lock);
	while (!q->closed && rc == 0)
		rc = qmp_wait(q, timeout_ms > 0 ? &deadline : NULL);
	rc = q->closed ? 0 : -ETIMEDOUT;
	pthread_mutex_unlock(&q->lock);
	return rc;
}

struct qmp *
qmp_new(int fd, qmp_event_fn on_event, qmp_closed_fn on_closed, void *owner)
{
	struct qmp *q = xcalloc(1, sizeof(*q));
	pthread_condattr_t ca;

	q->fd = fd;
	q->on_event = on_event;
	q->on_closed = on_closed;
	q->owner = owner;
	pthread_mutex_init(&q->lock, NULL);
	pthread_mutex_init(&q->write_lock, NULL);
	pthread_condattr_init(&ca);
	pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
	pthread_cond_init(&q->cond, &ca);
	pthread_condattr_destroy(&ca);
	return q;
}

int
qmp_open(int fd, int timeout_ms, qmp_event_fn on_event,
	 qmp_closed_fn on_closed, void *owner, struct qmp **out,
	 struct aerr *err)
{
	struct qmp *q = qmp_new(fd, on_event, on_closed, owner);
	struct timespec deadline;
	int64_t t0 = now_mono_ms(), left;
	int rc = 0, ret;

	*out = NULL;
	ret = pthread_create(&q->reader, NULL, qmp_reader_main, q);
	if (ret) {
		aerr_set(err, "QMP: cannot start reader thread: %s",
			 strerror(ret));
		qmp_free(q);
		return -ret;
	}
	q->reader_started = true;

	if (timeout_ms > 0)
		mono_deadline(&deadline, timeout_ms);
	pthread_mutex_lock(&q->lock);
	while (!q->greeted && !q->closed && rc == 0)
		rc = qmp_wait(q, timeout_ms > 0 ? &deadline : NULL);
	if (!q->greeted) {
		ret = q->closed ? -EPIPE : -ETIMEDOUT;
		if (q->closed)
			aerr_set(err, "QMP: connection closed before the "
				 "greeting%s%s", q->close_errno ? ": " : "",
				 q->close_errno ? strerror(q->close_errno) : "");
		else
			aerr_set(err, "QMP: no greeting in %d ms", timeout_ms);
		/* Quiet close: the owner is told through the return. */
		q->closing = true;
		pthread_mutex_unlock(&q->lock);
		qmp_close(q);
		return ret;
	}
	pthread_mutex_unlock(&q->lock);

	left = timeout_ms > 0 ? timeout_ms - (now_mono_ms() - t0) : 0;
	if (timeout_ms > 0 && left < 1)
		left = 1;
	ret = qmp_execute(q, "qmp_capabilities", NULL, (int)left, NULL, err);
	if (ret < 0) {
		pthread_mutex_lock(&q->lock);
		q->closing = true;
		pthread_mutex_unlock(&q->lock);
		qmp_close(q);
		return ret;
	}
	*out = q;
	return 0;
}

int
qmp_connect(const char *path, int timeout_ms, qmp_event_fn on_event,
	    qmp_closed_fn on_closed, void *owner, struct qmp **out,
	    struct aerr *err)
{
	int64_t deadline = now_mono_ms() + (timeout_ms > 0 ? timeout_ms : 0);
	int fd, left;

	*out = NULL;
	for (;;) {
		fd = sock_unix_connect(path);
		if (fd >= 0)
			break;
		if (fd != -ENOENT && fd != -ECONNREFUSED) {
			aerr_set(err, "QMP: connect %s: %s", path,
				 strerror(-fd));
			return fd;
		}
		if (timeout_ms <= 0 || now_mono_ms() >= deadline) {
			aerr_set(err, "QMP: connect %s: %s", path,
				 strerror(-fd));
			return -ETIMEDOUT;
		}
		usleep(10000);
	}
	left = timeout_ms > 0 ? (int)(deadline - now_mono_ms()) : 0;
	if (timeout_ms > 0 && left < 1)
		left = 1;
	return qmp_open(fd, left, on_event, on_closed, owner, out, err);
}
