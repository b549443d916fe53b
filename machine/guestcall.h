/* A request answered by one guest command (files/, jobs/). */
#ifndef ATTESTFS_GUESTCALL_H
#define ATTESTFS_GUESTCALL_H

#include "machine/internal.h"

/* With the lock: turn the finished command into r's reply; 0 or -errno. */
typedef int (*guest_call_fn)(struct cmd *c, struct mreq *r, void *arg);

/* Without the lock. arg is the handler's; it is not freed here. */
void guest_call(struct machine *m, const char *text, size_t len, int control,
		guest_call_fn fn, void *arg, struct mreq *r);
/* The guest's error text mapped to an errno (ENOENT, EACCES, ...). */
int guest_errno(const struct cmd *c);

#endif
