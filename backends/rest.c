/*
 * The REST client of rest.h on libcurl. The easy handle is reset before
 * every call (curl_easy_reset keeps the open connection), so nothing of
 * one call's method or body leaks into the next.
 *
 * libcurl is loaded at the first rest_open, not linked: linked, it and the
 * ~30 libraries it pulls in (TLS, Kerberos, LDAP, ...) and their
 * constructors cost every daemon 6 MiB of VmRSS (4 -> 10 MiB in make
 * bench), a daemon of QEMU machines too, which never makes a REST call.
 */
#include "backends/rest.h"

#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/un.h>
#include <unistd.h>

/* Plain prototypes: the type-checking macros call the linked symbols. */
#define CURL_DISABLE_TYPECHECK
#include <curl/curl.h>
#include <json-c/json.h>

/* How much of a body that is not the VMM's error shape goes to the log. */
#define REST_RAW_MAX 300

/* What dlopen loads: the soname, or a path (the Nix package's, LIBCURL=
 * in the Makefile). */
#ifndef REST_LIBCURL
#define REST_LIBCURL "libcurl.so.4"
#endif

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

/* libcurl's functions, once loaded. */
static struct {
	CURLcode (*global_init)(long flags);
	CURL *(*easy_init)(void);
	CURLcode (*easy_setopt)(CURL *h, CURLoption opt, ...);
	CURLcode (*easy_perform)(CURL *h);
	CURLcode (*easy_getinfo)(CURL *h, CURLINFO info, ...);
	void (*easy_reset)(CURL *h);
	void (*easy_cleanup)(CURL *h);
	const char *(*easy_strerror)(CURLcode rc);
	struct curl_slist *(*slist_append)(struct curl_slist *l, const char *s);
	void (*slist_free_all)(struct curl_slist *l);
} lc;

static pthread_once_t rest_once = PTHREAD_ONCE_INIT;
static char rest_load_error[256];  /* empty: loaded and initialised */

static int
rest_sym(void *lib, const char *name, void *fn)
{
	void *sym = dlsym(lib, name);

	if (!sym) {
		snprintf(rest_load_error, sizeof(rest_load_error),
			 "%s: no %s", REST_LIBCURL, name);
		return -1;
	}
	memcpy(fn, &sym, sizeof(sym));
	return 0;
}

static void
rest_global_init(void)
{
	void *lib = dlopen(REST_LIBCURL, RTLD_NOW | RTLD_LOCAL);
	CURLcode rc;

	if (!lib) {
		snprintf(rest_load_error, sizeof(rest_load_error), "%s",
			 dlerror());
		return;
	}
	if (rest_sym(lib, "curl_global_init", &lc.global_init) ||
	    rest_sym(lib, "curl_easy_init", &lc.easy_init) ||
	    rest_sym(lib, "curl_easy_setopt", &lc.easy_setopt) ||
	    rest_sym(lib, "curl_easy_perform", &lc.easy_perform) ||
	    rest_sym(lib, "curl_easy_getinfo", &lc.easy_getinfo) ||
	    rest_sym(lib, "curl_easy_reset", &lc.easy_reset) ||
	    rest_sym(lib, "curl_easy_cleanup", &lc.easy_cleanup) ||
	    rest_sym(lib, "curl_easy_strerror", &lc.easy_strerror) ||
	    rest_sym(lib, "curl_slist_append", &lc.slist_append) ||
	    rest_sym(lib, "curl_slist_free_all", &lc.slist_free_all))
		return;  /* kept loaded: nothing else of it runs */
	rc = lc.global_init(CURL_GLOBAL_DEFAULT);
	if (rc != CURLE_OK)
		snprintf(rest_load_error, sizeof(rest_load_error), "%s",
			 lc.easy_strerror(rc));
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
	if (rest_load_error[0]) {
		aerr_set(err, "libcurl: %s", rest_load_error);
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
		c->h = lc.easy_init();
		if (!c->h) {
			aerr_set(err, "libcurl: cannot create a handle");
			ret = -ENOMEM;
		}
	}
	if (ret < 0) {
		rest_close(c);
		return ret;
	}
	c->headers = lc.slist_append(NULL,
				     "Content-Type: application/json");
	c->headers = lc.slist_append(c->headers, "Accept: application/json");
	/* No 100-continue round trip: micro_http would answer it, a server
	 * that does not would cost a second per request. */
	c->headers = lc.slist_append(c->headers, "Expect:");
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
		lc.easy_cleanup(c->h);
	lc.slist_free_all(c->headers);
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
	lc.easy_getinfo(c->h, CURLINFO_OS_ERRNO, &os_errno);
	if (rc == CURLE_COULDNT_CONNECT) {
		int e = os_errno == ENOENT || os_errno == ECONNREFUSED ?
			(int)os_errno : ECONNREFUSED;

		aerr_set(err, "%s: cannot connect to %s: %s", what,
			 c->socket_path, strerror(e));
		return -e;
	}
	aerr_set(err, "%s: %s", what, lc.easy_strerror(rc));
	return -EIO;
}

/* The options of one call, on a handle just reset. */
static void
rest_setup(struct rest_client *c, const char *method, const char *url,
	   const char *body, long timeout_ms, struct strbuf *resp)
{
	lc.easy_setopt(c->h, CURLOPT_UNIX_SOCKET_PATH, c->connect_path);
	lc.easy_setopt(c->h, CURLOPT_URL, url);
	/* FUSE worker threads: no SIGALRM for timeouts. */
	lc.easy_setopt(c->h, CURLOPT_NOSIGNAL, 1L);
	lc.easy_setopt(c->h, CURLOPT_TIMEOUT_MS, timeout_ms);
	lc.easy_setopt(c->h, CURLOPT_CONNECTTIMEOUT_MS, timeout_ms);
	lc.easy_setopt(c->h, CURLOPT_HTTPHEADER, c->headers);
	lc.easy_setopt(c->h, CURLOPT_WRITEFUNCTION, rest_write_cb);
	lc.easy_setopt(c->h, CURLOPT_WRITEDATA, resp);
	lc.easy_setopt(c->h, CURLOPT_PROTOCOLS_STR, "http");
	if (!strcmp(method, "GET")) {
		lc.easy_setopt(c->h, CURLOPT_HTTPGET, 1L);
		return;
	}
	/* POSTFIELDS: a Content-Length, never chunked; "" gives 0. */
	lc.easy_setopt(c->h, CURLOPT_CUSTOMREQUEST, method);
	lc.easy_setopt(c->h, CURLOPT_POSTFIELDS, body ? body : "");
	lc.easy_setopt(c->h, CURLOPT_POSTFIELDSIZE,
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
		json_object_to_json_string_ext(body, JSON_C_TO_STRING_PLAIN |
				       JSON_C_TO_STRING_NOSLASHESCAPE) :
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
	lc.easy_reset(c->h);
	rest_setup(c, method, url, text, timeout_ms, &resp);
	rc = lc.easy_perform(c->h);
	if (rc == CURLE_OK)
		lc.easy_getinfo(c->h, CURLINFO_RESPONSE_CODE, &code);
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
