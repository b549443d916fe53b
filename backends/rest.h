/*
 * A JSON REST client over a unix socket, for the microVM monitors' APIs
 * (Firecracker, Cloud Hypervisor): libcurl does the HTTP, json-c the
 * bodies. One easy handle per client behind a mutex, so any thread may
 * call; the connection is kept alive between calls and reopened when the
 * VMM restarted on the same path.
 *
 * Every request carries Content-Type and Accept application/json, no
 * Expect (micro_http and fakes need no 100-continue round trip), and a
 * Content-Length on PUT/PATCH (Content-Length: 0 without a body: both
 * VMMs ignore chunked bodies). A GET has no body. Each call times out.
 */
#ifndef ATTESTFS_BACKENDS_REST_H
#define ATTESTFS_BACKENDS_REST_H

#include "common/util.h"

struct json_object;
struct rest_client;

/* Open a client of the API served on socket_path (nothing connects yet).
 * base: "http://localhost" (Firecracker) or "http://localhost/api/v1"
 * (Cloud Hypervisor); timeout_ms: each call's default limit. *out is the
 * caller's (rest_close). 0, or -errno with the reason in err. */
int rest_open(const char *socket_path, const char *base, long timeout_ms,
	      struct rest_client **out, struct aerr *err);

/*
 * method "GET", "PUT", "PATCH" (or any other verb), path below base
 * ("/machine-config"); body NULL = none (not consumed: the caller keeps
 * it). *status (may be NULL) gets the HTTP code, 0 when none came back.
 * *reply (may be NULL) gets the parsed JSON of a 2xx answer with a body,
 * else NULL; it is the caller's (json_object_put).
 *
 * A 2xx answer: 0. Anything else fills err with "METHOD PATH: TEXT" where
 * TEXT is the VMM's own reason (Firecracker's {"fault_message": ...},
 * micro_http's {"error": ...}, Cloud Hypervisor's array of strings joined
 * by ": ", else the body, else "HTTP status N"), and returns:
 *   -EINVAL for 400, -ENOENT for 404, -EIO for other statuses;
 *   -ETIMEDOUT when no answer came within the limit;
 *   -ENOENT / -ECONNREFUSED when nothing listens on the socket;
 *   -EPROTO for a 2xx answer whose body is not JSON;
 *   -EIO for other transport failures (the VMM closed the connection).
 */
int rest_call(struct rest_client *c, const char *method, const char *path,
	      struct json_object *body, long *status,
	      struct json_object **reply, struct aerr *err);

/* rest_call with this call's own limit (InstanceStart, snapshots). */
int rest_call_timeout(struct rest_client *c, const char *method,
		      const char *path, struct json_object *body,
		      long timeout_ms, long *status,
		      struct json_object **reply, struct aerr *err);

/* The socket the client talks to (the client's string). */
const char *rest_socket_path(const struct rest_client *c);

/* Close the connection, free the client. NULL is fine. */
void rest_close(struct rest_client *c);

#endif
