/*
 * backends/qmp.c against a scripted peer: a thread on the other end of a
 * socketpair plays QEMU (greeting, replies by id, events, closing).
 * The peer never calls cmocka asserts (they longjmp): it records failures
 * in peer->bad, which the test checks after joining it.
 */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <cmocka.h>
#include <json-c/json.h>

#include "backends/qemu_internal.h"
#include "backends/qmp.h"
#include "common/util.h"

/* How long a test waits for what must come (a reply, the peer's next
 * step): a loaded two-core host (CI) may stall a thread for seconds, so only
 * a hang should exceed it; the waits end as soon as it comes. */
#define WAIT_MS 60000

#define GREETING "{\"QMP\": {\"version\": {\"qemu\": {\"micro\": 22, " \
	"\"minor\": 2, \"major\": 7}, \"package\": \"Debian\"}, " \
	"\"capabilities\": [\"oob\"]}}\r\n"

/* ---- what the callbacks saw ---------------------------------------- */

static pthread_mutex_t rec_lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t rec_cond = PTHREAD_COND_INITIALIZER;
static struct strbuf rec_events;
static int rec_closed;

static void
rec_reset(void)
{
	pthread_mutex_lock(&rec_lock);
	sb_free(&rec_events);
	rec_closed = 0;
	pthread_mutex_unlock(&rec_lock);
}

static void
on_event(void *owner, const char *event, const char *data)
{
	pthread_mutex_lock(&rec_lock);
	if (owner != &rec_events)
		sb_adds(&rec_events, "WRONG OWNER\n");
	sb_addf(&rec_events, "%s %s\n", event, data);
	pthread_mutex_unlock(&rec_lock);
}

static void
on_closed(void *owner)
{
	pthread_mutex_lock(&rec_lock);
	rec_closed++;
	pthread_cond_broadcast(&rec_cond);
	pthread_mutex_unlock(&rec_lock);
}

static int
wait_closed(int ms)
{
	int64_t end = now_mono_ms() + ms;
	int n;

	pthread_mutex_lock(&rec_lock);
	while (!rec_closed && now_mono_ms() < end) {
		pthread_mutex_unlock(&rec_lock);
		usleep(5000);
		pthread_mutex_lock(&rec_lock);
	}
	n = rec_closed;
	pthread_mutex_unlock(&rec_lock);
	return n;
}

/* ---- the scripted peer ----------------------------------------------- */

struct peer {
	int fd;
	void (*script)(struct peer *);
	pthread_t th;
	char bad[256];      /* first failure, "" if none */
	int64_t ids[4];
	int listen_delay_ms;
	char *listen_path;
	int quit_read;      /* script_quit_reset has the quit (atomic) */
};

static void
peer_fail(struct peer *p, const char *fmt, ...)
{
	va_list ap;

	if (p->bad[0])
		return;
	va_start(ap, fmt);
	vsnprintf(p->bad, sizeof(p->bad), fmt, ap);
	va_end(ap);
}

static void
peer_write(struct peer *p, const char *s)
{
	if (write_all(p->fd, s, strlen(s)) < 0)
		peer_fail(p, "peer write failed");
}

static void
peer_write_slowly(struct peer *p, const char *s)
{
	for (; *s; s++) {
		if (write_all(p->fd, s, 1) < 0) {
			peer_fail(p, "peer write failed");
			return;
		}
		usleep(200);
	}
}

/* One request line as JSON, or NULL at EOF; an fd passed with it (as
 * QEMU's getfd wants) goes to *passed when that is not NULL. */
static json_object *
peer_read_fd(struct peer *p, int *passed)
{
	struct strbuf sb;
	json_object *o;
	char c;

	sb_init(&sb);
	for (;;) {
		union {
			char buf[CMSG_SPACE(sizeof(int))];
			struct cmsghdr align;
		} ctl;
		struct iovec iov = { .iov_base = &c, .iov_len = 1 };
		struct msghdr msg = { .msg_iov = &iov, .msg_iovlen = 1,
				      .msg_control = ctl.buf,
				      .msg_controllen = sizeof(ctl.buf) };
		ssize_t n = recvmsg(p->fd, &msg, MSG_CMSG_CLOEXEC);
		struct cmsghdr *cm = n > 0 ? CMSG_FIRSTHDR(&msg) : NULL;

		if (cm && cm->cmsg_level == SOL_SOCKET &&
		    cm->cmsg_type == SCM_RIGHTS) {
			int fd;

			memcpy(&fd, CMSG_DATA(cm), sizeof(fd));
			if (passed && *passed < 0)
				*passed = fd;
			else
				close(fd);
		}

		if (n <= 0) {
			sb_free(&sb);
			return NULL;
		}
		if (c == '\n')
			break;
		sb_add(&sb, &c, 1);
	}
	o = json_tokener_parse(sb.data ? sb.data : "");
	if (!o)
		peer_fail(p, "peer got bad JSON: %s", sb.data);
	sb_free(&sb);
	return o;
}

static json_object *
peer_read(struct peer *p)
{
	return peer_read_fd(p, NULL);
}

static const char *
req_execute(json_object *o)
{
	json_object *v;

	if (o && json_object_object_get_ex(o, "execute", &v))
		return json_object_get_string(v);
	return "";
}

static int64_t
req_id(struct peer *p, json_object *o)
{
	json_object *v;

	if (!o || !json_object_object_get_ex(o, "id", &v) ||
	    !json_object_is_type(v, json_type_int)) {
		peer_fail(p, "request without a numeric id");
		return -1;
	}
	return json_object_get_int64(v);
}

static void
peer_reply(struct peer *p, int64_t id, const char *ret)
{
	char *s = xasprintf("{\"return\": %s, \"id\": %lld}\r\n", ret,
			    (long long)id);

	peer_write(p, s);
	free(s);
}

static void
peer_handshake(struct peer *p)
{
	json_object *o;

	peer_write(p, GREETING);
	o = peer_read(p);
	if (strcmp(req_execute(o), "qmp_capabilities"))
		peer_fail(p, "expected qmp_capabilities, got %s",
			  req_execute(o));
	peer_reply(p, req_id(p, o), "{}");
	json_object_put(o);
}

static void
peer_drain(struct peer *p)
{
	json_object *o;

	while ((o = peer_read(p)))
		json_object_put(o);
}

static void *
peer_main(void *arg)
{
	struct peer *p = arg;

	p->script(p);
	close(p->fd);
	return NULL;
}

static struct qmp *
open_with(struct peer *p, void (*script)(struct peer *), int timeout_ms,
	  int *ret)
{
	int sv[2];
	struct qmp *q = NULL;
	struct aerr err = { "" };

	rec_reset();
	assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv),
			 0);
	p->fd = sv[1];
	p->script = script;
	assert_int_equal(pthread_create(&p->th, NULL, peer_main, p), 0);
	*ret = qmp_open(sv[0], timeout_ms, on_event, on_closed, &rec_events,
			&q, &err);
	if (*ret < 0)
		print_message("qmp_open: %s\n", err.msg);
	return q;
}

static void
peer_join(struct peer *p)
{
	pthread_join(p->th, NULL);
	if (p->bad[0])
		fail_msg("peer: %s", p->bad);
}

/* ---- tests ---------------------------------------------------------- */

static void
script_basic(struct peer *p)
{
	json_object *o, *args, *v;

	peer_handshake(p);
	o = peer_read(p);
	if (strcmp(req_execute(o), "query-status") ||
	    json_object_object_get_ex(o, "arguments", NULL))
		peer_fail(p, "expected query-status without arguments");
	peer_reply(p, req_id(p, o),
		   "{\"status\": \"running\", \"singlestep\": false, "
		   "\"running\": true}");
	json_object_put(o);

	o = peer_read(p);
	if (!json_object_object_get_ex(o, "arguments", &args) ||
	    !json_object_object_get_ex(args, "filename", &v) ||
	    strcmp(json_object_get_string(v), "/tmp/a,b.png"))
		peer_fail(p, "screendump arguments lost");
	peer_reply(p, req_id(p, o), "{}");
	json_object_put(o);
	peer_drain(p);
}

/* getfd: the fd arrives with the request, and only with that one. */
static void
script_getfd(struct peer *p)
{
	json_object *o;
	char text[16] = "";
	int fd = -1, extra = -1;
	ssize_t n;

	peer_handshake(p);
	o = peer_read_fd(p, &fd);
	if (strcmp(req_execute(o), "getfd") || fd < 0)
		peer_fail(p, "expected getfd with an fd");
	n = fd >= 0 ? pread(fd, text, sizeof(text) - 1, 0) : -1;
	if (n != 5 || strncmp(text, "state", 5))
		peer_fail(p, "the passed fd does not read 'state'");
	peer_reply(p, req_id(p, o), "{}");
	json_object_put(o);
	o = peer_read_fd(p, &extra);
	if (strcmp(req_execute(o), "migrate-incoming") || extra >= 0)
		peer_fail(p, "an fd came with a plain request");
	peer_reply(p, req_id(p, o), "{}");
	json_object_put(o);
	if (fd >= 0)
		close(fd);
	if (extra >= 0)
		close(extra);
	peer_drain(p);
}

static void
test_execute_passes_fd(void **state)
{
	char path[] = "/tmp/test_qmp.XXXXXX";
	struct peer p = { 0 };
	struct aerr err = { "" };
	int rc, fd = mkstemp(path);
	struct qmp *q;

	(void)state;
	assert_true(fd >= 0);
	unlink(path);
	assert_int_equal(write_all(fd, "state", 5), 0);
	q = open_with(&p, script_getfd, WAIT_MS, &rc);
	assert_int_equal(rc, 0);
	assert_int_equal(qmp_execute_fd(q, "getfd", "{\"fdname\": \"st\"}", fd,
				       WAIT_MS, NULL, &err), 0);
	/* The caller keeps its fd. */
	assert_true(fcntl(fd, F_GETFD) >= 0);
	assert_int_equal(qmp_execute(q, "migrate-incoming",
				     "{\"uri\": \"fd:st\"}", WAIT_MS, NULL,
				     &err),
			 0);
	qmp_close(q);
	close(fd);
	peer_join(&p);
}

static void
test_handshake_and_execute(void **state)
{
	struct peer p = { 0 };
	struct aerr err = { "" };
	char *ret = NULL;
	json_object *o, *v;
	int rc;
	struct qmp *q = open_with(&p, script_basic, WAIT_MS, &rc);

	assert_int_equal(rc, 0);
	assert_int_equal(qmp_execute(q, "query-status", NULL, WAIT_MS, &ret,
				     &err), 0);
	o = json_tokener_parse(ret);
	assert_non_null(o);
	assert_true(json_object_object_get_ex(o, "status", &v));
	assert_string_equal(json_object_get_string(v), "running");
	json_object_put(o);
	free(ret);

	assert_int_equal(qmp_execute(q, "screendump",
				     "{\"filename\": \"/tmp/a,b.png\"}",
				     WAIT_MS, &ret, &err), 0);
	assert_string_equal(ret, "{}");
	free(ret);
	/* bad arguments never reach the wire */
	assert_int_equal(qmp_execute(q, "x", "[1,2]", WAIT_MS, NULL, &err),
			 -EINVAL);
	qmp_close(q);
	peer_join(&p);
	assert_int_equal(rec_closed, 0); /* our own close is not reported */
}

static void
script_out_of_order(struct peer *p)
{
	json_object *a, *b, *first, *second;

	peer_handshake(p);
	a = peer_read(p);
	b = peer_read(p);
	first = !strcmp(req_execute(a), "first") ? a : b;
	second = first == a ? b : a;
	if (strcmp(req_execute(first), "first") ||
	    strcmp(req_execute(second), "second"))
		peer_fail(p, "unexpected requests");
	if (req_id(p, first) == req_id(p, second))
		peer_fail(p, "two requests with one id");
	peer_reply(p, req_id(p, second), "\"two\"");
	usleep(20000);
	peer_reply(p, req_id(p, first), "\"one\"");
	json_object_put(a);
	json_object_put(b);
	peer_drain(p);
}

struct caller {
	struct qmp *q;
	const char *name;
	char *ret;
	int rc;
	pthread_t th;
};

static void *
caller_main(void *arg)
{
	struct caller *c = arg;
	struct aerr err;

	c->rc = qmp_execute(c->q, c->name, NULL, WAIT_MS, &c->ret, &err);
	return NULL;
}

static void
test_concurrent_out_of_order(void **state)
{
	struct peer p = { 0 };
	int rc;
	struct qmp *q = open_with(&p, script_out_of_order, WAIT_MS, &rc);
	struct caller c1 = { .q = q, .name = "first" };
	struct caller c2 = { .q = q, .name = "second" };

	assert_int_equal(rc, 0);
	pthread_create(&c1.th, NULL, caller_main, &c1);
	pthread_create(&c2.th, NULL, caller_main, &c2);
	pthread_join(c1.th, NULL);
	pthread_join(c2.th, NULL);
	assert_int_equal(c1.rc, 0);
	assert_int_equal(c2.rc, 0);
	assert_string_equal(c1.ret, "\"one\"");
	assert_string_equal(c2.ret, "\"two\"");
	free(c1.ret);
	free(c2.ret);
	qmp_close(q);
	peer_join(&p);
}

static void
script_event_first(struct peer *p)
{
	json_object *o;
	char *s;

	peer_handshake(p);
	o = peer_read(p);
	/* QEMU sends RESUME before the reply to cont */
	peer_write(p, "{\"timestamp\": {\"seconds\": 1, \"microseconds\": 2}, "
		   "\"event\": \"RESUME\"}\r\n");
	s = xasprintf("{\"timestamp\": {\"seconds\": 1, \"microseconds\": 3}, "
		      "\"event\": \"SHUTDOWN\", \"data\": {\"guest\": false, "
		      "\"reason\": \"host-qmp-quit\"}}\r\n"
		      "{\"return\": {}, \"id\": %lld}\r\n",
		      (long long)req_id(p, o));
	peer_write(p, s); /* an event and the reply in one write */
	free(s);
	json_object_put(o);
	peer_drain(p);
}

static void
test_event_before_reply(void **state)
{
	struct peer p = { 0 };
	struct aerr err;
	int rc;
	struct qmp *q = open_with(&p, script_event_first, WAIT_MS, &rc);

	assert_int_equal(rc, 0);
	assert_int_equal(qmp_execute(q, "cont", NULL, WAIT_MS, NULL, &err), 0);
	/* delivered on the reader thread before the reply woke us */
	pthread_mutex_lock(&rec_lock);
	assert_string_equal(rec_events.data,
			    "RESUME \n"
			    "SHUTDOWN {\"guest\":false,\"reason\":\"host-qmp-quit\"}\n");
	pthread_mutex_unlock(&rec_lock);
	qmp_close(q);
	peer_join(&p);
}

static void
script_error(struct peer *p)
{
	json_object *o;
	char *s;

	peer_handshake(p);
	o = peer_read(p);
	s = xasprintf("{\"id\": %lld, \"error\": {\"class\": \"GenericError\", "
		      "\"desc\": \"failed to open file '/x/y.png': No such "
		      "file or directory\"}}\r\n", (long long)req_id(p, o));
	peer_write(p, s);
	free(s);
	json_object_put(o);
	peer_drain(p);
}

static void
test_error_reply(void **state)
{
	struct peer p = { 0 };
	struct aerr err = { "" };
	char *ret = (char *)"untouched";
	int rc;
	struct qmp *q = open_with(&p, script_error, WAIT_MS, &rc);

	assert_int_equal(rc, 0);
	assert_int_equal(qmp_execute(q, "screendump",
				     "{\"filename\": \"/x/y.png\"}", WAIT_MS,
				     &ret, &err), -EIO);
	assert_null(ret);
	assert_string_equal(err.msg, "GenericError: failed to open file "
			    "'/x/y.png': No such file or directory");
	qmp_close(q);
	peer_join(&p);
}

static void
script_split(struct peer *p)
{
	json_object *o;
	char *s;

	peer_write_slowly(p, GREETING);
	o = peer_read(p);
	s = xasprintf("{\"return\": {}, \"id\": %lld}\r\n",
		      (long long)req_id(p, o));
	peer_write_slowly(p, s);
	free(s);
	json_object_put(o);

	o = peer_read(p);
	s = xasprintf("{\"event\": \"STOP\", \"timestamp\": {\"seconds\": 5, "
		      "\"microseconds\": 6}}\n{\"return\": {\"a\": [1, 2, "
		      "\"x\\ny\"]}, \"id\": %lld}\n", (long long)req_id(p, o));
	peer_write_slowly(p, s);
	free(s);
	json_object_put(o);
	peer_drain(p);
}

static void
test_split_lines(void **state)
{
	struct peer p = { 0 };
	struct aerr err = { "" };
	char *ret = NULL;
	int rc;
	struct qmp *q = open_with(&p, script_split, WAIT_MS, &rc);

	assert_int_equal(rc, 0);
	assert_int_equal(qmp_execute(q, "stop", NULL, WAIT_MS, &ret, &err), 0);
	assert_string_equal(ret, "{\"a\":[1,2,\"x\\ny\"]}");
	free(ret);
	pthread_mutex_lock(&rec_lock);
	assert_string_equal(rec_events.data, "STOP \n");
	pthread_mutex_unlock(&rec_lock);
	qmp_close(q);
	peer_join(&p);
}

static void
script_close(struct peer *p)
{
	json_object *o;

	peer_handshake(p);
	o = peer_read(p);
	json_object_put(o);
	usleep(50000); /* the caller is waiting by now */
}

static void
test_peer_closes(void **state)
{
	struct peer p = { 0 };
	struct aerr err = { "" };
	int rc;
	struct qmp *q = open_with(&p, script_close, WAIT_MS, &rc);

	assert_int_equal(rc, 0);
	assert_int_equal(qmp_execute(q, "query-status", NULL, WAIT_MS, NULL,
				     &err), -EPIPE);
	assert_int_equal(wait_closed(WAIT_MS), 1);
	/* later calls fail at once */
	assert_int_equal(qmp_execute(q, "query-status", NULL, WAIT_MS, NULL,
				     &err), -EPIPE);
	assert_int_equal(qmp_wait_closed(q, 100), 0);
	qmp_close(q);
	peer_join(&p);
	assert_int_equal(rec_closed, 1);
}

static void
script_quit_reset(struct peer *p)
{
	json_object *o;
	struct pollfd pfd = { .fd = p->fd, .events = POLLIN };
	char *s;

	peer_handshake(p);
	o = peer_read(p);
	if (strcmp(req_execute(o), "quit"))
		peer_fail(p, "expected quit");
	__atomic_store_n(&p->quit_read, 1, __ATOMIC_SEQ_CST);
	/* Leave the next request unread: closing then resets the peer's
	 * connection (ECONNRESET), as QEMU does after quit. */
	poll(&pfd, 1, WAIT_MS);
	s = xasprintf("{\"event\": \"SHUTDOWN\", \"data\": {\"guest\": false, "
		      "\"reason\": \"host-qmp-quit\"}}\r\n"
		      "{\"return\": {}, \"id\": %lld}\r\n",
		      (long long)req_id(p, o));
	peer_write(p, s);
	free(s);
	json_object_put(o);
}

static void
test_quit_then_reset(void **state)
{
	struct peer p = { 0 };
	struct aerr err = { "" };
	int rc;
	struct qmp *q = open_with(&p, script_quit_reset, WAIT_MS, &rc);
	struct caller quit = { .q = q, .name = "quit" };
	struct caller late = { .q = q, .name = "query-status" };
	int64_t end = now_mono_ms() + WAIT_MS;

	assert_int_equal(rc, 0);
	pthread_create(&quit.th, NULL, caller_main, &quit);
	/* The late call only once the peer read the quit: a fixed sleep
	 * may be too short on a loaded host. */
	while (!__atomic_load_n(&p.quit_read, __ATOMIC_SEQ_CST) &&
	       now_mono_ms() < end)
		usleep(1000);
	pthread_create(&late.th, NULL, caller_main, &late);
	pthread_join(quit.th, NULL);
	pthread_join(late.th, NULL);
	assert_int_equal(quit.rc, 0);
	assert_int_equal(late.rc, -EPIPE);
	free(quit.ret);
	assert_null(late.ret);
	assert_int_equal(wait_closed(WAIT_MS), 1);
	pthread_mutex_lock(&rec_lock);
	assert_string_equal(rec_events.data,
			    "SHUTDOWN {\"guest\":false,\"reason\":\"host-qmp-quit\"}\n");
	pthread_mutex_unlock(&rec_lock);
	assert_int_equal(qmp_execute(q, "x", NULL, 100, NULL, &err), -EPIPE);
	qmp_close(q);
	peer_join(&p);
}

static void
script_slow(struct peer *p)
{
	json_object *o1, *o2;
	char *s;

	peer_handshake(p);
	o1 = peer_read(p);      /* never answered in time */
	o2 = peer_read(p);
	s = xasprintf("{\"return\": \"late\", \"id\": %lld}\r\n"
		      "{\"return\": \"fresh\", \"id\": %lld}\r\n",
		      (long long)req_id(p, o1), (long long)req_id(p, o2));
	peer_write(p, s);
	free(s);
	json_object_put(o1);
	json_object_put(o2);
	peer_drain(p);
}

static void
test_timeout(void **state)
{
	struct peer p = { 0 };
	struct aerr err = { "" };
	char *ret = NULL;
	int64_t t0;
	int rc;
	struct qmp *q = open_with(&p, script_slow, WAIT_MS, &rc);

	assert_int_equal(rc, 0);
	t0 = now_mono_ms();
	assert_int_equal(qmp_execute(q, "slow", NULL, 200, &ret, &err),
			 -ETIMEDOUT);
	assert_true(now_mono_ms() - t0 >= 190);
	/* ...but not much later: a deadline in s, not ms, would show. */
	assert_true(now_mono_ms() - t0 < 20000);
	assert_null(ret);
	assert_non_null(strstr(err.msg, "slow"));
	/* the stale reply to the first call is dropped, not misdelivered */
	assert_int_equal(qmp_execute(q, "next", NULL, WAIT_MS, &ret, &err), 0);
	assert_string_equal(ret, "\"fresh\"");
	free(ret);
	qmp_close(q);
	peer_join(&p);
}

static void
script_transact(struct peer *p)
{
	json_object *o, *v;
	char *s;

	peer_handshake(p);

	o = peer_read(p);
	if (!json_object_object_get_ex(o, "id", &v) ||
	    !json_object_is_type(v, json_type_int))
		peer_fail(p, "the user's id reached the wire");
	if (!json_object_object_get_ex(o, "arguments", &v))
		peer_fail(p, "the user's arguments were lost");
	peer_reply(p, req_id(p, o), "{\"status\": \"running\"}");
	json_object_put(o);

	o = peer_read(p);
	peer_reply(p, req_id(p, o), "{}");
	json_object_put(o);

	o = peer_read(p);
	s = xasprintf("{\"id\": %lld, \"error\": {\"class\": "
		      "\"CommandNotFound\", \"desc\": \"The command bogus has "
		      "not been found\"}}\r\n", (long long)req_id(p, o));
	peer_write(p, s);
	free(s);
	json_object_put(o);
	peer_drain(p);
}

static void
test_transact_restores_id(void **state)
{
	struct peer p = { 0 };
	struct aerr err = { "" };
	char *reply = NULL;
	json_object *o, *v;
	int rc;
	struct qmp *q = open_with(&p, script_transact, WAIT_MS, &rc);

	assert_int_equal(rc, 0);
	assert_int_equal(qmp_transact(q, "{\"execute\": \"query-status\", "
				      "\"arguments\": {}, \"id\": \"mine\"}",
				      WAIT_MS, &reply, &err), 0);
	o = json_tokener_parse(reply);
	assert_true(json_object_object_get_ex(o, "id", &v));
	assert_string_equal(json_object_get_string(v), "mine");
	assert_true(json_object_object_get_ex(o, "return", &v));
	json_object_put(o);
	free(reply);

	assert_int_equal(qmp_transact(q, "{\"execute\": \"cont\"}", WAIT_MS,
				      &reply, &err), 0);
	assert_string_equal(reply, "{\"return\":{}}");
	free(reply);

	/* a QMP error is a reply too */
	assert_int_equal(qmp_transact(q, "{\"execute\": \"bogus\", \"id\": 7}",
				      WAIT_MS, &reply, &err), 0);
	o = json_tokener_parse(reply);
	assert_true(json_object_object_get_ex(o, "error", &v));
	assert_true(json_object_object_get_ex(o, "id", &v));
	assert_int_equal(json_object_get_int(v), 7);
	json_object_put(o);
	free(reply);

	assert_int_equal(qmp_transact(q, "{\"execute\": ", WAIT_MS, &reply,
				      &err), -EINVAL);
	assert_null(reply);
	assert_int_equal(qmp_transact(q, "[1]", WAIT_MS, &reply, &err),
			 -EINVAL);
	qmp_close(q);
	peer_join(&p);
}

static void
script_silent(struct peer *p)
{
	peer_drain(p);
}

static void
test_greeting_timeout(void **state)
{
	struct peer p = { 0 };
	int rc;
	struct qmp *q = open_with(&p, script_silent, 200, &rc);

	assert_int_equal(rc, -ETIMEDOUT);
	assert_null(q);
	peer_join(&p); /* the fd was closed: the peer saw EOF */
	assert_int_equal(rec_closed, 0);
}

static void
script_not_qmp(struct peer *p)
{
	json_object *o;

	peer_write(p, GREETING);
	o = peer_read(p);
	peer_write(p, "{\"error\": {\"class\": \"GenericError\", \"desc\": "
		   "\"nope\"}}\r\n"); /* no id: the only caller's */
	json_object_put(o);
	peer_drain(p);
}

static void
test_capabilities_refused(void **state)
{
	struct peer p = { 0 };
	int rc;
	struct qmp *q = open_with(&p, script_not_qmp, WAIT_MS, &rc);

	assert_int_equal(rc, -EIO);
	assert_null(q);
	peer_join(&p);
}

static void *
listener_main(void *arg)
{
	struct peer *p = arg;
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	int lfd;

	usleep(p->listen_delay_ms * 1000);
	lfd = socket(AF_UNIX, SOCK_STREAM, 0);
	snprintf(sa.sun_path, sizeof(sa.sun_path), "%s", p->listen_path);
	if (bind(lfd, (struct sockaddr *)&sa, sizeof(sa)) < 0 ||
	    listen(lfd, 1) < 0) {
		peer_fail(p, "bind/listen failed");
		close(lfd);
		return NULL;
	}
	p->fd = accept(lfd, NULL, NULL);
	close(lfd);
	if (p->fd < 0) {
		peer_fail(p, "accept failed");
		return NULL;
	}
	script_basic(p);
	close(p->fd);
	return NULL;
}

static void
test_connect_retries(void **state)
{
	char dir[] = "/tmp/attestfs-qmp-XXXXXX";
	struct peer p = { 0 };
	struct aerr err = { "" };
	struct qmp *q = NULL;
	char *ret = NULL;

	rec_reset();
	assert_non_null(mkdtemp(dir));
	p.listen_path = xasprintf("%s/qmp.sock", dir);
	p.listen_delay_ms = 150;
	pthread_create(&p.th, NULL, listener_main, &p);
	/* nothing there yet, and no retries: fails at once */
	assert_int_equal(qmp_connect(p.listen_path, 0, on_event, on_closed,
				     &rec_events, &q, &err), -ETIMEDOUT);
	assert_int_equal(qmp_connect(p.listen_path, 3000, on_event, on_closed,
				     &rec_events, &q, &err), 0);
	assert_int_equal(qmp_execute(q, "query-status", NULL, WAIT_MS, &ret,
				     &err), 0);
	free(ret);
	assert_int_equal(qmp_execute(q, "screendump",
				     "{\"filename\": \"/tmp/a,b.png\"}",
				     WAIT_MS, NULL, &err), 0);
	qmp_close(q);
	peer_join(&p);
	unlink(p.listen_path);
	rmdir(dir);
	free(p.listen_path);
}

/* pmemsave requests as "VAL SIZE FILENAME" lines (the peer's; read after
 * the join). */
static struct strbuf pmemsaves;

static void
script_pmemsave(struct peer *p)
{
	json_object *o, *a, *v[3];

	peer_handshake(p);
	while ((o = peer_read(p))) {
		if (strcmp(req_execute(o), "pmemsave") ||
		    !json_object_object_get_ex(o, "arguments", &a) ||
		    !json_object_object_get_ex(a, "val", &v[0]) ||
		    !json_object_object_get_ex(a, "size", &v[1]) ||
		    !json_object_object_get_ex(a, "filename", &v[2]))
			peer_fail(p, "expected pmemsave VAL SIZE FILENAME");
		else
			sb_addf(&pmemsaves, "%lld %lld %s\n",
				(long long)json_object_get_int64(v[0]),
				(long long)json_object_get_int64(v[1]),
				json_object_get_string(v[2]));
		peer_reply(p, req_id(p, o), "{}");
		json_object_put(o);
	}
}

/* A sparse RAM file in /dev/shm (where the snapshots' RAM is): data at
 * each of at[] (len bytes), size bytes in all. Its name is gone at once
 * (nothing is left should an assertion fail): *path names its open fd. */
static int
sparse_file(off_t size, const off_t *at, size_t n, size_t len, char *path)
{
	char buf[8192];
	int fd;

	strcpy(path, "/dev/shm/test_qmp.XXXXXX");
	fd = mkstemp(path);
	assert_true(fd >= 0);
	unlink(path);
	sprintf(path, "/proc/self/fd/%d", fd);
	assert_int_equal(ftruncate(fd, size), 0);
	memset(buf, 0x5a, sizeof(buf));
	for (size_t i = 0; i < n; i++)
		for (size_t done = 0; done < len; done += sizeof(buf))
			assert_int_equal(pwrite(fd, buf, sizeof(buf),
						at[i] + (off_t)done),
					 (ssize_t)sizeof(buf));
	return fd;
}

/* What qemu_populate_ram asks QEMU to read, for a RAM file. */
static unsigned
populate(const char *path)
{
	struct backend b;
	struct peer p = { 0 };
	struct aerr err = { "" };
	unsigned n = 99;
	int rc;

	memset(&b, 0, sizeof(b));
	sb_free(&pmemsaves);
	sb_init(&pmemsaves);
	b.qmp = open_with(&p, script_pmemsave, WAIT_MS, &rc);
	assert_int_equal(rc, 0);
	b.ram_path = (char *)path;
	assert_int_equal(qemu_populate_ram(&b, &n, &err), 0);
	qmp_close(b.qmp);
	peer_join(&p);
	return n;
}

/*
 * A clone's pre-started VMM reads the data of the snapshot's RAM file
 * (pmemsave to /dev/null: its pages mapped before the guest runs), extent
 * by extent; never its holes (a read fault there would allocate them in
 * the file), the VGA window 640-768 KiB (device memory), nor what
 * lies above 2 GiB (not at its own address in a q35 guest).
 */
static void
test_populate_ram_reads_data_only(void **state)
{
	static const off_t at[] = { 0, 1 << 20 }, high[] = { 2LL << 30 },
			   vga[] = { 0x9c000 };
	char path[64];
	int fd;

	(void)state;
	if (access("/dev/shm", W_OK) < 0)
		skip();
	fd = sparse_file(4 << 20, at, 2, 8192, path);
	assert_int_equal(populate(path), 2);
	close(fd);
	assert_string_equal(pmemsaves.data, "0 8192 /dev/null\n"
			    "1048576 8192 /dev/null\n");
	/* One extent across the VGA window (640-768 KiB): read around it. */
	fd = sparse_file(4 << 20, vga, 1, 0x70000, path);
	assert_int_equal(populate(path), 1);
	close(fd);
	assert_string_equal(pmemsaves.data, "638976 16384 /dev/null\n"
			    "786432 311296 /dev/null\n");
	fd = sparse_file((2LL << 30) + 8192, high, 1, 8192, path);
	assert_int_equal(populate(path), 0);
	close(fd);
	assert_true(!pmemsaves.data || !pmemsaves.data[0]);
	sb_free(&pmemsaves);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_handshake_and_execute),
		cmocka_unit_test(test_concurrent_out_of_order),
		cmocka_unit_test(test_event_before_reply),
		cmocka_unit_test(test_error_reply),
		cmocka_unit_test(test_split_lines),
		cmocka_unit_test(test_peer_closes),
		cmocka_unit_test(test_quit_then_reset),
		cmocka_unit_test(test_timeout),
		cmocka_unit_test(test_transact_restores_id),
		cmocka_unit_test(test_greeting_timeout),
		cmocka_unit_test(test_capabilities_refused),
		cmocka_unit_test(test_connect_retries),
		cmocka_unit_test(test_execute_passes_fd),
		cmocka_unit_test(test_populate_ram_reads_data_only),
	};

	signal(SIGPIPE, SIG_IGN);
	return cmocka_run_group_tests(tests, NULL, NULL);
}
