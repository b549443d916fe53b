/*
 * Test scaffolding, not product code: a tiny HTTP/1.1 server on a unix
 * socket, in a thread, for the REST client's and the microVM backends'
 * unit tests. It records every request (method, path, headers, body) and
 * answers each with the next canned response, or with a default one. A
 * response of NULL text means "never answer" (the client's timeout).
 * Keep-alive: it serves requests on a connection until the client closes.
 * The server thread never calls cmocka (asserts longjmp): tests read the
 * record after the call returned.
 */
#ifndef ATTESTFS_TESTS_HTTPD_H
#define ATTESTFS_TESTS_HTTPD_H

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "common/sock.h"
#include "common/util.h"

#define HTTPD_MAX 64

struct httpd_req {
	char method[16];
	char path[256];
	char *headers;          /* the header lines as sent, malloc'd */
	char *body;             /* malloc'd, NUL-terminated */
	size_t body_len;
	long content_length;    /* -1: no Content-Length header */
};

/* A canned answer: status line + headers + body, made by httpd_resp(). */
struct httpd {
	pthread_mutex_t lock;
	pthread_cond_t cond;
	char path[108];
	int listen_fd;
	int stop_pipe[2];
	pthread_t thread;
	struct httpd_req reqs[HTTPD_MAX];
	size_t n_reqs;
	char *answers[HTTPD_MAX];   /* queued; NULL entries = "no answer" */
	bool silent[HTTPD_MAX];
	size_t n_answers, next_answer;
	char *dflt;                 /* when the queue is empty */
	/* Called (server thread) after a request is recorded, before the
	 * answer: a test may act as the VMM would (create a socket...). */
	void (*on_request)(struct httpd *h, const struct httpd_req *r);
	void *arg;
};

/* "HTTP/1.1 <status> X" + Content-Length + body (body NULL: none). */
static inline char *
httpd_resp(int status, const char *body)
{
	size_t len = body ? strlen(body) : 0;

	if (status == 204)
		return xasprintf("HTTP/1.1 204 No Content\r\n"
				 "Server: Firecracker API\r\n"
				 "Connection: keep-alive\r\n\r\n");
	return xasprintf("HTTP/1.1 %d X\r\nServer: Firecracker API\r\n"
			 "Connection: keep-alive\r\n"
			 "Content-Type: application/json\r\n"
			 "Content-Length: %zu\r\n\r\n%s", status, len,
			 body ? body : "");
}

/* Queue the next answer (taken), or a silent one with text NULL. */
static inline void
httpd_push(struct httpd *h, char *text)
{
	pthread_mutex_lock(&h->lock);
	if (h->n_answers < HTTPD_MAX) {
		h->silent[h->n_answers] = text == NULL;
		h->answers[h->n_answers++] = text;
	} else {
		free(text);
	}
	pthread_mutex_unlock(&h->lock);
}

static inline const char *
httpd_header(const struct httpd_req *r, const char *name)
{
	size_t n = strlen(name);
	const char *p = r->headers;

	while (p && *p) {
		if (!strncasecmp(p, name, n) && p[n] == ':') {
			p += n + 1;
			while (*p == ' ')
				p++;
			return p; /* up to "\r\n" */
		}
		p = strstr(p, "\r\n");
		p = p ? p + 2 : NULL;
	}
	return NULL;
}

/* Read one request into r from fd, buffering in sb. 0, or -1 at EOF. */
static inline int
httpd_read_req(int fd, int stop_fd, struct strbuf *sb, struct httpd_req *r)
{
	struct pollfd p[2] = {
		{ .fd = fd, .events = POLLIN },
		{ .fd = stop_fd, .events = POLLIN },
	};

	char buf[4096], *end, *cl;
	size_t head;
	ssize_t n;

	memset(r, 0, sizeof(*r));
	for (;;) {
		end = sb->data ? strstr(sb->data, "\r\n\r\n") : NULL;
		if (end) {
			head = (size_t)(end - sb->data) + 4;
			r->headers = strndup(sb->data, head);
			cl = strcasestr(r->headers, "\r\nContent-Length:");
			r->content_length = cl ? atol(cl + 17) : -1;
			if (sb->len >= head + (size_t)(r->content_length > 0 ?
						       r->content_length : 0))
				break;
		}
		free(r->headers);
		r->headers = NULL;
		if (poll(p, 2, -1) < 0 && errno == EINTR)
			continue;
		if (p[1].revents)
			return -1;
		n = read(fd, buf, sizeof(buf));
		if (n <= 0)
			return -1;
		sb_add(sb, buf, (size_t)n);
	}
	sscanf(r->headers, "%15s %255s", r->method, r->path);
	r->body_len = r->content_length > 0 ? (size_t)r->content_length : 0;
	r->body = strndup(sb->data + head, r->body_len);
	sb_consume(sb, head + r->body_len);
	return 0;
}

/* The answer for the request just read; *silent: none at all. */
static inline char *
httpd_take_answer(struct httpd *h, bool *silent)
{
	char *a = NULL;

	*silent = false;
	if (h->next_answer < h->n_answers) {
		*silent = h->silent[h->next_answer];
		a = h->answers[h->next_answer];
		h->answers[h->next_answer++] = NULL;
	} else if (h->dflt) {
		a = xstrdup(h->dflt);
	}
	return a;
}

static inline void
httpd_serve_conn(struct httpd *h, int fd)
{
	struct strbuf sb;
	struct httpd_req r;
	bool silent;
	char *a;

	sb_init(&sb);
	while (httpd_read_req(fd, h->stop_pipe[0], &sb, &r) == 0) {
		pthread_mutex_lock(&h->lock);
		if (h->n_reqs < HTTPD_MAX)
			h->reqs[h->n_reqs++] = r;
		else {
			free(r.headers);
			free(r.body);
		}
		a = httpd_take_answer(h, &silent);
		pthread_cond_broadcast(&h->cond);
		pthread_mutex_unlock(&h->lock);
		if (h->on_request)
			h->on_request(h, &h->reqs[h->n_reqs - 1]);
		if (silent) {
			/* Until the client gives up (or the test ends). */
			struct pollfd p[2] = {
				{ .fd = fd, .events = POLLIN },
				{ .fd = h->stop_pipe[0], .events = POLLIN },
			};

			poll(p, 2, -1);
			break;
		}
		if (!a)
			a = httpd_resp(204, NULL);
		if (write_all(fd, a, strlen(a)) < 0) {
			free(a);
			break;
		}
		free(a);
	}
	sb_free(&sb);
	close(fd);
}

static inline void *
httpd_main(void *arg)
{
	struct httpd *h = arg;

	for (;;) {
		struct pollfd p[2] = {
			{ .fd = h->listen_fd, .events = POLLIN },
			{ .fd = h->stop_pipe[0], .events = POLLIN },
		};
		int fd;

		if (poll(p, 2, -1) < 0 && errno == EINTR)
			continue;
		if (p[1].revents)
			break;
		fd = accept4(h->listen_fd, NULL, NULL, SOCK_CLOEXEC);
		if (fd >= 0)
			httpd_serve_conn(h, fd);
	}
	return NULL;
}

/* Listen on path and serve in a thread. 0, or -errno. */
static inline int
httpd_start(struct httpd *h, const char *path)
{
	struct aerr err;

	memset(h, 0, sizeof(*h));
	pthread_mutex_init(&h->lock, NULL);
	pthread_cond_init(&h->cond, NULL);
	snprintf(h->path, sizeof(h->path), "%s", path);
	h->listen_fd = sock_listen_unix(path, &err);
	if (h->listen_fd < 0)
		return h->listen_fd;
	if (pipe2(h->stop_pipe, O_CLOEXEC) < 0)
		return -errno;
	return -pthread_create(&h->thread, NULL, httpd_main, h);
}

static inline void
httpd_stop(struct httpd *h)
{
	size_t i;

	if (write(h->stop_pipe[1], "x", 1) < 0)
		return;
	pthread_join(h->thread, NULL);
	close(h->listen_fd);
	close(h->stop_pipe[0]);
	close(h->stop_pipe[1]);
	unlink(h->path);
	for (i = 0; i < h->n_reqs; i++) {
		free(h->reqs[i].headers);
		free(h->reqs[i].body);
	}
	for (i = 0; i < h->n_answers; i++)
		free(h->answers[i]);
	free(h->dflt);
	pthread_mutex_destroy(&h->lock);
	pthread_cond_destroy(&h->cond);
}

#endif
