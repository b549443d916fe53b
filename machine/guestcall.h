/* A request answered by one guest command (files/, jobs/). */
#ifndef ATTESTFS_GUESTCALL_H
#define ATTESTFS_GUESTCALL_H

#include "machine/internal.h"

/* With the lock: turn the finished command into r's reply; 0 or -errno. */
typedef int (*guest_call_fn)(struct cmd *c, struct mreq *r, void *arg);

/* Without the lock. arg is the handler's; it is not freed here. */
void guest_call(struct machine *m, const char *text, size_t len, int control,
		guest_call_fn fn, void *arg, struct mreq *r);
/* guest_call of "before 'quoted' after": the quoted word is a path or a
 * unit name from the user, never shell syntax. */
void guest_call_quoted(struct machine *m, const char *before,
		       const char *word, const char *after, int control,
		       guest_call_fn fn, void *arg, struct mreq *r);
/* A handler: the command's stdout is the reply, its failure an errno. */
int guest_output_done(struct cmd *c, struct mreq *r, void *arg);
/* The guest's error text mapped to an errno (ENOENT, EACCES, ...). */
int guest_errno(const struct cmd *c);

#endif
