/*
 * The hybrid-vsock dialer (see vsock.h). One thread per channel:
 *
 *   dial:  connect uds_path, "CONNECT port\n" in one write (Firecracker
 *          reads the line from a non-blocking stream: a short first read
 *          drops it), the reply byte by byte up to "\n": the shell's banner
 *          may follow in the same segment and must stay in the socket.
 *          No socket yet, refused, or EOF without a reply: the guest is
 *          not listening yet; again after a back-off.
 *   hand over: events->channel(owner, index, fd); a dup stays here.
 *   watch: poll the dup for the end only (no POLLIN: machine/ reads), or
 *          a redial/stop; then dial again at once.
 */
#include "backends/vsock.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <unistd.h>

#include "common/sock.h"

/* Back-off while the guest boots: from MIN, doubling, at most MAX. */
#define VSOCK_BACKOFF_MIN_MS 10
#define VSOCK_BACKOFF_MAX_MS 200
/* A connection that ends sooner than this after it was made (a guest
 * shell that cannot start) is dialed again after a back-off, not at once. */
#define VSOCK_SHORT_LIFE_MS 1000
/* The VMMs give up on a guest that does not answer after 2 s. */
#define VSOCK_HANDSHAKE_MS 5000
/* "OK 4294967295\n" fits; FC caps the line at 32 bytes. */
#define VSOCK_REPLY_MAX 32

struct vsock_chan {
	struct vsock_dialer *d;
	size_t index;
	pthread_t thread;
	int started;
	int wake_fd;               /* eventfd: stop, redial or a new owner */
	int redial;                /* under d->lock */
};

struct vsock_dialer {
	pthread_mutex_t lock;
	pthread_cond_t cond;       /* calling went down */
	char *uds_path;
	unsigned port;
	const struct backend_events *ev;
	void *owner;
	int calling;               /* callbacks running now */
	int stopping;
	size_t n;
	struct vsock_chan *ch;
};

static void
chan_wake(struct vsock_chan *c)
{
	uint64_t one = 1;
	ssize_t n = write(c->wake_fd, &one, sizeof(one));

	(void)n;
}

static void
chan_drain(struct vsock_chan *c)
{
	uint64_t v;
	ssize_t n = read(c->wake_fd, &v, sizeof(v));

	(void)n;
}

/* The owner's callbacks, or NULL (none, or stopping); chan_call_end after
 * the call: set_owner waits for it. */
static const struct backend_events *
chan_call_begin(struct vsock_chan *c, void **owner)
{
	struct vsock_dialer *d = c->d;
	const struct backend_events *ev;

	pthread_mutex_lock(&d->lock);
	ev = d->stopping ? NULL : d->ev;
	*owner = d->owner;
	if (ev)
		d->calling++;
	pthread_mutex_unlock(&d->lock);
	return ev;
}

static void
chan_call_end(struct vsock_chan *c)
{
	struct vsock_dialer *d = c->d;

	pthread_mutex_lock(&d->lock);
	d->calling--;
	pthread_cond_broadcast(&d->cond);
	pthread_mutex_unlock(&d->lock);
}

static void __attribute__((format(printf, 2, 3)))
chan_log(struct vsock_chan *c, const char *fmt, ...)
{
	const struct backend_events *ev;
	void *owner;
	char text[256];
	va_list ap;

	ev = chan_call_begin(c, &owner);
	if (!ev)
		return;
	va_start(ap, fmt);
	vsnprintf(text, sizeof(text), fmt, ap);
	va_end(ap);
	if (ev->log)
		ev->log(owner, text);
	chan_call_end(c);
}

/* What the thread is to do now: 1 stop, 2 redial (the flag is taken). */
static int
chan_orders(struct vsock_chan *c)
{
	struct vsock_dialer *d = c->d;
	int what = 0;

	pthread_mutex_lock(&d->lock);
	if (d->stopping) {
		what = 1;
	} else if (c->redial) {
		c->redial = 0;
		what = 2;
	}
	pthread_mutex_unlock(&d->lock);
	return what;
}

/* One byte of the reply by the deadline; wake_fd (or -1) interrupts. */
static int
reply_byte(int fd, int wake_fd, int64_t deadline, char *out)
{
	for (;;) {
		struct pollfd p[2] = {
			{ .fd = fd, .events = POLLIN },
			{ .fd = wake_fd, .events = POLLIN },
		};
		int64_t left = deadline - now_mono_ms();
		ssize_t n;

		if (left <= 0)
			return -ETIMEDOUT;
		if (poll(p, 2, (int)left) < 0) {
			if (errno == EINTR)
				continue;
			return -errno;
		}
		if (p[1].revents & POLLIN)
			return -EINTR;
		if (!p[0].revents)
			continue;
		n = recv(fd, out, 1, MSG_DONTWAIT);
		if (n == 1)
			return 0;
		if (n == 0)
			return -ECONNRESET;
		if (errno != EAGAIN && errno != EINTR)
			return errno == ECONNRESET || errno == EPIPE ?
				       -ECONNRESET : -errno;
	}
}

static int
handshake(int fd, unsigned port, int timeout_ms, int wake_fd, char *why,
	  size_t why_len)
{
	int64_t deadline = now_mono_ms() + timeout_ms;
	char line[VSOCK_REPLY_MAX];
	size_t len = 0;
	ssize_t n;
	int ret, k;

	if (why_len)
		why[0] = '\0';
	k = snprintf(line, sizeof(line), "CONNECT %u\n", port);
	/* One write: the VMM reads it from a non-blocking stream. */
	n = send(fd, line, (size_t)k, MSG_NOSIGNAL);
	if (n < 0)
		return errno == EPIPE || errno == ECONNRESET ? -ECONNRESET :
							       -errno;
	if (n != k)
		return -EIO;
	for (;;) {
		char ch;

		ret = reply_byte(fd, wake_fd, deadline, &ch);
		if (ret < 0)
			return ret;
		if (ch == '\n')
			break;
		if (len == sizeof(line) - 1) {
			snprintf(why, why_len, "a reply longer than %d bytes",
				 VSOCK_REPLY_MAX);
			return -EPROTO;
		}
		line[len++] = ch;
	}
	line[len] = '\0';
	if (len > 3 && !strncmp(line, "OK ", 3) &&
	    strspn(line + 3, "0123456789") == len - 3)
		return 0;
	snprintf(why, why_len, "the VMM answered '%.*s', not 'OK <port>'",
		 (int)strcspn(line, "\r"), line);
	return -EPROTO;
}

int
vsock_handshake(int fd, unsigned port, int timeout_ms, char *why,
		size_t why_len)
{
	return handshake(fd, port, timeout_ms, -1, why, why_len);
}

/* Connected and answered: the fd, else -errno (why for the unusual). */
static int
chan_dial(struct vsock_chan *c, char *why, size_t why_len)
{
	struct vsock_dialer *d = c->d;
	int fd, ret;

	why[0] = '\0';
	fd = sock_unix_connect(d->uds_path);
	if (fd < 0) {
		snprintf(why, why_len, "connect %s: %s", d->uds_path,
			 strerror(-fd));
		return fd;
	}
	ret = handshake(fd, d->port, VSOCK_HANDSHAKE_MS, c->wake_fd, why,
			why_len);
	if (ret < 0) {
		close(fd);
		if (!why[0])
			snprintf(why, why_len, "CONNECT %u: %s", d->port,
				 ret == -ECONNRESET ? "closed without a reply" :
						      strerror(-ret));
		return ret;
	}
	return fd;
}

/* While the guest boots these are what a dial meets; others are logged. */
static int
booting_errno(int err)
{
	return err == -ENOENT || err == -ECONNREFUSED || err == -ECONNRESET ||
	       err == -EAGAIN || err == -EINTR;
}

/* Sleep ms, or until woken: then 1 (stop or redial are due). */
static int
chan_sleep(struct vsock_chan *c, int ms)
{
	struct pollfd p = { .fd = c->wake_fd, .events = POLLIN };
	int64_t deadline = now_mono_ms() + ms;
	int64_t left;

	while ((left = deadline - now_mono_ms()) > 0) {
		if (poll(&p, 1, (int)left) > 0) {
			chan_drain(c);
			return 1;
		}
	}
	return 0;
}

/* fd is the owner's now; *watch a dup of it, or -1 when nobody took it. */
static void
chan_hand_over(struct vsock_chan *c, int fd, int *watch)
{
	const struct backend_events *ev;
	void *owner;

	*watch = fcntl(fd, F_DUPFD_CLOEXEC, 3);
	ev = chan_call_begin(c, &owner);
	if (!ev || !ev->channel || *watch < 0) {
		if (ev)
			chan_call_end(c);
		if (*watch >= 0)
			close(*watch);
		*watch = -1;
		close(fd);
		return;
	}
	ev->channel(owner, c->index, fd);
	chan_call_end(c);
}

/* Until the connection ends (0) or an order comes (1 stop, 2 redial): then
 * it is shut down, so that its owner sees the end too. */
static int
chan_watch(struct vsock_chan *c, int watch)
{
	int what = 0;

	while (!what) {
		struct pollfd p[2] = {
			{ .fd = watch, .events = POLLRDHUP },
			{ .fd = c->wake_fd, .events = POLLIN },
		};

		/* Nobody took it (watch -1, ignored by poll): orders only. */
		if (poll(p, 2, -1) < 0 && errno != EINTR)
			break;
		if (p[1].revents & POLLIN) {
			chan_drain(c);
			what = chan_orders(c);
			continue;
		}
		if (watch >= 0 &&
		    (p[0].revents & (POLLHUP | POLLRDHUP | POLLERR | POLLNVAL)))
			break;
	}
	if (watch >= 0) {
		if (what)
			shutdown(watch, SHUT_RDWR);
		close(watch);
	}
	return what;
}

static int
next_delay(int delay)
{
	if (!delay)
		return VSOCK_BACKOFF_MIN_MS;
	return delay * 2 > VSOCK_BACKOFF_MAX_MS ? VSOCK_BACKOFF_MAX_MS :
						  delay * 2;
}

static void *
chan_main(void *arg)
{
	struct vsock_chan *c = arg;
	struct vsock_dialer *d = c->d;
	char why[160];
	int delay = 0, tries = 0, logged = 0, what, fd, watch;
	int64_t since;

	for (;;) {
		what = chan_orders(c);
		if (what == 1)
			break;
		if (what == 2)
			delay = 0;
		if (delay && chan_sleep(c, delay)) {
			delay = 0;
			continue;
		}
		fd = chan_dial(c, why, sizeof(why));
		if (fd < 0) {
			tries++;
			if (!logged && !booting_errno(fd)) {
				logged = 1;
				chan_log(c, "vsock: channel %zu: %s; retrying",
					 c->index, why);
			}
			delay = next_delay(delay);
			continue;
		}
		chan_log(c, "vsock: channel %zu connected to port %u (%d "
			 "attempt%s)", c->index, d->port, tries + 1,
			 tries ? "s" : "");
		tries = 0;
		logged = 0;
		since = now_mono_ms();
		chan_hand_over(c, fd, &watch);
		what = chan_watch(c, watch);
		if (what == 1)
			break;
		/* Ordered, or after a long life (a reset): at once. */
		if (what == 2 || now_mono_ms() - since >= VSOCK_SHORT_LIFE_MS)
			delay = 0;
		else
			delay = next_delay(delay);
	}
	return NULL;
}

static void
dialer_free(struct vsock_dialer *d)
{
	size_t i;

	for (i = 0; i < d->n; i++)
		if (d->ch[i].wake_fd >= 0)
			close(d->ch[i].wake_fd);
	free(d->ch);
	free(d->uds_path);
	pthread_mutex_destroy(&d->lock);
	pthread_cond_destroy(&d->cond);
	free(d);
}

int
vsock_dialer_start(const char *uds_path, unsigned port, size_t n_channels,
		   const struct backend_events *ev, void *owner,
		   struct vsock_dialer **out, struct aerr *err)
{
	struct vsock_dialer *d;
	size_t i;
	int ret;

	*out = NULL;
	if (!uds_path || !*uds_path || !n_channels || n_channels > 64) {
		aerr_set(err, "vsock: %s", !n_channels || n_channels > 64 ?
			 "1 to 64 channels" : "no socket path");
		return -EINVAL;
	}
	d = xcalloc(1, sizeof(*d));
	pthread_mutex_init(&d->lock, NULL);
	pthread_cond_init(&d->cond, NULL);
	d->uds_path = xstrdup(uds_path);
	d->port = port;
	d->ev = ev;
	d->owner = owner;
	d->n = n_channels;
	d->ch = xcalloc(n_channels, sizeof(*d->ch));
	for (i = 0; i < n_channels; i++) {
		d->ch[i].d = d;
		d->ch[i].index = i;
		d->ch[i].wake_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
		if (d->ch[i].wake_fd < 0) {
			ret = -errno;
			aerr_set(err, "vsock: eventfd: %s", strerror(errno));
			goto fail;
		}
	}
	for (i = 0; i < n_channels; i++) {
		ret = pthread_create(&d->ch[i].thread, NULL, chan_main,
				     &d->ch[i]);
		if (ret) {
			aerr_set(err, "vsock: cannot start a thread: %s",
				 strerror(ret));
			ret = -ret;
			goto fail;
		}
		d->ch[i].started = 1;
	}
	*out = d;
	return 0;
fail:
	vsock_dialer_stop(d);
	return ret;
}

void
vsock_dialer_redial(struct vsock_dialer *d)
{
	size_t i;

	if (!d)
		return;
	pthread_mutex_lock(&d->lock);
	for (i = 0; i < d->n; i++)
		d->ch[i].redial = 1;
	pthread_mutex_unlock(&d->lock);
	for (i = 0; i < d->n; i++)
		chan_wake(&d->ch[i]);
}

void
vsock_dialer_set_owner(struct vsock_dialer *d, const struct backend_events *ev,
		       void *owner)
{
	if (!d)
		return;
	pthread_mutex_lock(&d->lock);
	d->ev = ev;
	d->owner = owner;
	while (d->calling)
		pthread_cond_wait(&d->cond, &d->lock);
	pthread_mutex_unlock(&d->lock);
	/* The old owner's connections are no use to the new one. */
	vsock_dialer_redial(d);
}

void
vsock_dialer_stop(struct vsock_dialer *d)
{
	size_t i;

	if (!d)
		return;
	pthread_mutex_lock(&d->lock);
	d->stopping = 1;
	pthread_mutex_unlock(&d->lock);
	for (i = 0; i < d->n; i++)
		if (d->ch[i].wake_fd >= 0)
			chan_wake(&d->ch[i]);
	for (i = 0; i < d->n; i++)
		if (d->ch[i].started)
			pthread_join(d->ch[i].thread, NULL);
	dialer_free(d);
}
