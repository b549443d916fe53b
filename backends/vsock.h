/*
 * The guest channel over vsock, host side: Firecracker's and Cloud
 * Hypervisor's hybrid vsock. The VMM listens on a unix socket (uds_path);
 * a connection that sends "CONNECT <port>\n" in one write is joined to the
 * guest's AF_VSOCK listener on that port and answered "OK <host_port>\n",
 * after which the stream is raw. Without a guest listener (still booting,
 * or a shell gone) the VMM closes the connection without a reply.
 *
 * A dialer keeps n_channels such connections to one port, one thread
 * each: it dials with back-off until the guest answers, hands the fd over
 * (events->channel(owner, index, fd): machine/ adopts it as shell `index`
 * and owns it from then on), and keeps a duplicate only to notice the end
 * (a reset after a snapshot, the guest shell gone, machine/ shutting it
 * down), after which it dials again.
 */
#ifndef ATTESTFS_VSOCK_H
#define ATTESTFS_VSOCK_H

#include <stddef.h>

#include "backends/backend.h"

/* The guest's backdoor listener (tests/guest, nix): a shell per connection. */
#define ATTESTFS_VSOCK_PORT 1024

struct vsock_dialer;

/* Starts dialing at once and returns (the guest may boot for a while).
 * ev->channel receives every connection (ev->log a line for <m>/log on the
 * first failure and each connection). 0, or -errno with the reason in
 * err. */
int vsock_dialer_start(const char *uds_path, unsigned port, size_t n_channels,
		       const struct backend_events *ev, void *owner,
		       struct vsock_dialer **out, struct aerr *err);
/* After a snapshot create (once resumed) or load: the VMM reset every vsock
 * connection. Each channel's is shut down (machine/ sees the end) and
 * dialed again now, without back-off. */
void vsock_dialer_redial(struct vsock_dialer *d);
/* Route later callbacks elsewhere (NULL ev: connections are closed, not
 * handed over); returns once no callback to the old owner runs. Every
 * channel then dials again for the new owner. */
void vsock_dialer_set_owner(struct vsock_dialer *d,
			    const struct backend_events *ev, void *owner);
/* Joins the threads, shuts down and closes its connections; no callbacks
 * after it returns. NULL is fine. */
void vsock_dialer_stop(struct vsock_dialer *d);

/* The handshake on a connected fd (blocking, up to timeout_ms, reading the
 * reply byte by byte so that what follows stays for the shell): 0, or
 * -ECONNRESET (closed without a reply: no listener yet), -EPROTO (another
 * reply, in *why), -ETIMEDOUT. Exposed for the tests. */
int vsock_handshake(int fd, unsigned port, int timeout_ms, char *why,
		    size_t why_len);

#endif
