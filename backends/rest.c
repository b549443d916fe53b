/*
 * The REST client of rest.h on libcurl. The easy handle is reset before
 * every call (curl_easy_reset keeps the open connection), so nothing of
 * one call's method or body leaks into the next.
 */
#include "backends/rest.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/un.h>
#include <unistd.h>

#include <curl/curl.h>
#include <json-c/json.h>

/* How much of a body that is not the VMM's error shape goes to the log. */
#define REST_RAW_MAX 300

struct rest_client {
	/* Guards h and headers: libcurl's handle is one thread's at a time. */
	pthread_mutex_t lock;
	CURL *h;
	struct curl_slist *headers;
	char *socket_path;         /* as given */
	char *connect_path;        /* what libcurl connects to (may be /proc) */
	int dir_fd;                /* for a path past sun_path, or -1 */
	char *base;
	long timeout_ms;
};

static pthread_once_t rest_once = PTHREAD_ONCE_INIT;
static CURLcode rest_global;

static void
rest_global_init(void)
{
	rest_global = curl_global_init(CURL_GLOBAL_DEFAULT);
}

/* A path longer than sun_path holds goes through its directory's fd. */
static int
rest_connect_path(struct rest_client *c, struct aerr *err)
{
	struct sockaddr_un sa;
	const char *slash;
	char *dir;

	if (strlen(c->socket_path) < sizeof(sa.sun_path)) {
		c->connect_path = xstrdup(c->socket_path);
		return 0;
	}
	slash = strrchr(c->socket_path, '/');
	dir = slash ? xasprintf("%.*s", (int)(slash - c->socket_path),
				c->socket_path) : xstrdup(".");
	c->dir_fd = open(*dir ? dir : "/", O_PATH | O_DIRECTORY | O_CLOEXEC);
	free(dir);
	if (c->dir_fd < 0) {
		int ret = -errno;

		aerr_set(err, "%s: %s", c->socket_path, strerror(errno));
		return ret;
	}
	c->connect_path = xasprintf("/proc/self/fd/%d/%s", c->dir_fd,
				    slash ? slash + 1 : c->socket_path);
	if (strlen(c->connect_path) >= sizeof(sa.sun_path)) {
		aerr_set(err, "%s: the socket's name is too long",
			 c->socket_path);
		return -ENAMETOOLONG;
	}
	return 0;
}

int
rest_open(const char *socket_path, const char *base, long timeout_ms,
	  struct rest_client **out, struct aerr *err)
{
	struct rest_client *c;
	int ret;

	*out = NULL;
	pthread_once(&rest_once, rest_global_init);
	if (rest_global != CURLE_OK) {
		aerr_set(err, "libcurl: %s", curl_easy_strerror(rest_global));
		return -EIO;
	}
	c = xcalloc(1, sizeof(*c));
	c->dir_fd = -1;
	c->socket_path = xstrdup(socket_path);
	c->base = xstrdup(base);
	c->timeout_ms = timeout_ms > 0 ? timeout_ms : 10000;
	pthread_mutex_init(&c->lock, NULL);
	ret = rest_connect_path(c, err);
	if (ret == 0) {
		c->h = curl_easy_init();
		if (!c->h) {
			aerr_set(err, "libcurl: cannot create a handle");
			ret = -ENOMEM;
		}
	}
	if (ret < 0) {
		rest_close(c);
		return ret;
	}
	c->headers = curl_slist_append(NULL, "Content-Type: application/json");
	c->headers = curl_slist_append(c->headers, "Accept: application/json");
	/* No 100-continue round trip: micro_http would answer it, a server
	 * that does not would cost a second per request. */
	c->headers = curl_slist_append(c->headers, "Expect:");
	*out = c;
	return 0;
}

const char *
rest_socket_path(const struct rest_client *c)
{
	return c->socket_path;
}

void
rest_close(struct rest_client *c)
{
	if (!c)
		return;
	if (c->h)
		curl_easy_cleanup(c->h);
	curl_slist_free_all(c->headers);
	if (c->dir_fd >= 0)
		close(c->dir_fd);
	pthread_mutex_destroy(&c->lock);
	free(c->socket_path);
	free(c->connect_path);
	free(c->base);
	free(c);
}

static size_t
rest_write_cb(char *data, size_t size, size_t n, void *arg)
{
	sb_add(arg, data, size * n);
	return size * n;
}

/* The VMM's reason in an error body, into sb. */
static void
rest_error_text(const char *body, size_t len, long status, struct strbuf *sb)
{
	json_object *o = len ? json_tokener_parse(body) : NULL, *v;
	size_t i, n, start = sb->len;

	if (json_object_is_type(o, json_type_object) &&
	    (json_object_object_get_ex(o, "fault_message", &v) ||
	     json_object_object_get_ex(o, "error", &v)) &&
	    json_object_is_type(v, json_type_string)) {
		sb_adds(sb, json_object_get_string(v));
	} else if (json_object_is_type(o, json_type_array)) {
		n = json_object_array_length(o);
		for (i = 0; i < n; i++) {
			v = json_object_array_get_idx(o, i);
			if (!v)
				continue;
			if (sb->len > start)
				sb_adds(sb, ": ");
			sb_adds(sb, json_object_get_string(v));
		}
	} else if (len) {
		for (i = 0; i < len && i < REST_RAW_MAX; i++)
			sb_add(sb, body[i] == '\n' || body[i] == '\r' ?
				   " " : body + i, 1);
	}
	json_object_put(o);
	/* One line in <m>/log: micro_http's errors have a second one. */
	for (i = start; i < sb->len; i++)
		if (sb->data[i] == '\n' || sb->data[i] == '\r')
			sb->data[i] = ' ';
	if (sb->len == start)
		sb_addf(sb, "HTTP status %ld", status);
}

static int
rest_status_errno(long status)
{
	if (status == 400)
		return -EINVAL;
	if (status == 404)
		return -ENOENT;
	return -EIO;
}

/* A transfer that failed: the errno and the reason. */
static int
rest_transport_error(struct rest_client *c, CURLcode rc, const char *what,
		     long timeout_ms, struct aerr *err)
{
	long os_errno = 0;

	if (rc == CURLE_OPERATION_TIMEDOUT) {
		aerr_set(err, "%s: no answer within %ld ms", what, timeout_ms);
		return -ETIMEDOUT;
	}
	curl_easy_getinfo(c->h, CURLINFO_OS_ERRNO, &os_errno);
	if (rc == CURLE_COULDNT_CONNECT) {
		int e = os_errno == ENOENT || os_errno == ECONNREFUSED ?
			(int)os_errno : ECONNREFUSED;

		aerr_set(err, "%s: cannot connect to %s: %s", what,
			 c->socket_path, strerror(e));
		return -e;
	}
	aerr_set(err, "%s: %s", what, curl_easy_strerror(rc));
	return -EIO;
}

/* The options of one call, on a handle just reset. */
static void
rest_setup(struct rest_client *c, const char *method, const char *url,
	   const char *body, long timeout_ms, struct strbuf *resp)
{
	curl_easy_setopt(c->h, CURLOPT_UNIX_SOCKET_PATH, c->connect_path);
	curl_easy_setopt(c->h, CURLOPT_URL, url);
	/* FUSE worker threads: no SIGALRM for timeouts. */
	curl_easy_setopt(c->h, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(c->h, CURLOPT_TIMEOUT_MS, timeout_ms);
	curl_easy_setopt(c->h, CURLOPT_CONNECTTIMEOUT_MS, timeout_ms);
	curl_easy_setopt(c->h, CURLOPT_HTTPHEADER, c->headers);
	curl_easy_setopt(c->h, CURLOPT_WRITEFUNCTION, rest_write_cb);
	curl_easy_setopt(c->h, CURLOPT_WRITEDATA, resp);
	curl_easy_setopt(c->h, CURLOPT_PROTOCOLS_STR, "http");
	if (!strcmp(method, "GET")) {
		curl_easy_setopt(c->h, CURLOPT_HTTPGET, 1L);
		return;
	}
	/* POSTFIELDS: a Content-Length, never chunked; "" gives 0. */
	curl_easy_setopt(c->h, CURLOPT_CUSTOMREQUEST, method);
	curl_easy_setopt(c->h, CURLOPT_POSTFIELDS, body ? body : "");
	curl_easy_setopt(c->h, CURLOPT_POSTFIELDSIZE,
			 (long)(body ? strlen(body) : 0));
}

/* A 2xx answer's body: JSON, or nothing. */
static int
rest_parse_reply(const struct strbuf *resp, const char *what,
		 json_object **reply, struct aerr *err)
{
	json_object *o;
	size_t i;

	for (i = 0; i < resp->len && strchr(" \t\r\n", resp->data[i]); i++)
		;
	if (i == resp->len)
		return 0;
	o = json_tokener_parse(resp->data);
	if (!o) {
		aerr_set(err, "%s: the answer is not JSON: %.100s", what,
			 resp->data);
		return -EPROTO;
	}
	if (reply)
		*reply = o;
	else
		json_object_put(o);
	return 0;
}

int
rest_call_timeout(struct rest_client *c, const char *method, const char *path,
		  json_object *body, long timeout_ms, long *status,
		  json_object **reply, struct aerr *err)
{
	const char *text = body ?
		json_object_to_json_string_ext(body, JSON_C_TO_STRING_PLAIN) :
		NULL;
	char *url = xasprintf("%s%s", c->base, path);
	char *what = xasprintf("%s %s", method, path);
	struct strbuf resp, why;
	long code = 0;
	CURLcode rc;
	int ret;

	if (status)
		*status = 0;
	if (reply)
		*reply = NULL;
	if (timeout_ms <= 0)
		timeout_ms = c->timeout_ms;
	sb_init(&resp);
	pthread_mutex_lock(&c->lock);
	curl_easy_reset(c->h);
	rest_setup(c, method, url, text, timeout_ms, &resp);
	rc = curl_easy_perform(c->h);
	if (rc == CURLE_OK)
		curl_easy_getinfo(c->h, CURLINFO_RESPONSE_CODE, &code);
	ret = rc == CURLE_OK ? 0 :
	      rest_transport_error(c, rc, what, timeout_ms, err);
	pthread_mutex_unlock(&c->lock);
	if (status)
		*status = code;
	if (ret == 0 && code >= 200 && code < 300) {
		ret = rest_parse_reply(&resp, what, reply, err);
	} else if (ret == 0) {
		sb_init(&why);
		rest_error_text(resp.data ? resp.data : "", resp.len, code,
				&why);
		aerr_set(err, "%s: %s", what, why.data);
		sb_free(&why);
		ret = rest_status_errno(code);
	}
	sb_free(&resp);
	free(url);
	free(what);
	return ret;
}

int
rest_call(struct rest_client *c, const char *method, const char *path,
	  json_object *body, long *status, json_object **reply,
	  struct aerr *err)
{
	return rest_call_timeout(c, method, path, body, 0, status, reply,
				 err);
}
