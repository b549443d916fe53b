/*
 * A QMP client on a connected unix socket: greeting, qmp_capabilities,
 * requests matched to replies by id, and asynchronous events told apart from
 * replies even when they arrive first. One reader thread per connection.
 */
#ifndef ATTESTFS_QMP_H
#define ATTESTFS_QMP_H

#include "common/util.h"

struct qmp;

/* Called on the reader thread for every event; data is the JSON of "data"
 * (or "" when absent). Not called after qmp_close() returns. */
typedef void (*qmp_event_fn)(void *owner, const char *event, const char *data);
/* Called once on the reader thread when the connection ends (EOF/error). */
typedef void (*qmp_closed_fn)(void *owner);

/*
 * Take over fd (connected), read the greeting and negotiate capabilities
 * within timeout_ms. On success *out owns fd. On failure fd is closed.
 */
int qmp_open(int fd, int timeout_ms, qmp_event_fn on_event,
	     qmp_closed_fn on_closed, void *owner, struct qmp **out,
	     struct aerr *err);
/* Connect to a unix socket path, retrying until it exists or timeout. */
int qmp_connect(const char *path, int timeout_ms, qmp_event_fn on_event,
		qmp_closed_fn on_closed, void *owner, struct qmp **out,
		struct aerr *err);

/*
 * Send {"execute": name, "arguments": args_json (may be NULL), "id": N} and
 * wait up to timeout_ms for the matching reply. On success returns 0 and, if
 * ret is not NULL, *ret is the malloc'd JSON of "return". A QMP error returns
 * -EIO with "Class: desc" in err; a closed connection -EPIPE; timeout
 * -ETIMEDOUT. Safe from any thread.
 */
int qmp_execute(struct qmp *q, const char *name, const char *args_json,
		int timeout_ms, char **ret, struct aerr *err);
/* The same, passing pass_fd with the request (SCM_RIGHTS), as "getfd" and
 * "add-fd" want it. The caller keeps its own fd. */
int qmp_execute_fd(struct qmp *q, const char *name, const char *args_json,
		   int pass_fd, int timeout_ms, char **ret, struct aerr *err);
/* Send a whole request object given as JSON text (the user's own, for the
 * <m>/qmp escape hatch); its "id" is replaced by ours and restored in the
 * reply. *reply is the whole reply object as JSON. */
int qmp_transact(struct qmp *q, const char *request_json, int timeout_ms,
		 char **reply, struct aerr *err);

/* Close: wakes every pending caller with -EPIPE, joins the reader. */
void qmp_close(struct qmp *q);

/*
 * Notes on the calls above:
 * - timeout_ms <= 0 waits without limit (qmp_connect then tries only once).
 * - on_closed is called only when the peer ends the connection (EOF, or an
 *   error such as ECONNRESET, which QEMU causes after "quit"); never for a
 *   connection that qmp_open() gave up on, nor once qmp_close() has begun.
 * - qmp_transact: a QMP error is a reply like any other (returns 0, the
 *   error object is in *reply); a request that is not a JSON object is
 *   -EINVAL. Requests without "id" get replies without "id".
 * - Do not call qmp_close() from on_event/on_closed (it joins the reader).
 *   Calls already waiting get -EPIPE; none may start once it has begun.
 * - on_event runs on the reader thread, and no reply is read while it runs:
 *   it must not wait for anything a qmp_execute() caller holds (qemu.c
 *   queues events to its own thread for that reason).
 */

/* Wait until the peer has closed the connection (the reader has seen EOF
 * and every event before it was delivered). 0, or -ETIMEDOUT. */
int qmp_wait_closed(struct qmp *q, int timeout_ms);

#endif
