/* files/: the guest's file system through the backdoor (placeholder). */
#include <errno.h>

#include "machine/internal.h"

static void
nope(struct mreq *r)
{
	r->result = -EOPNOTSUPP;
	r->done(r);
}

void
machine_file_stat(struct machine *m, const char *path, struct mreq *r)
{
	nope(r);
}

void
machine_file_list(struct machine *m, const char *path, struct mreq *r)
{
	nope(r);
}

void
machine_file_read(struct machine *m, const char *path, uint64_t offset,
		  struct mreq *r)
{
	nope(r);
}

void
machine_file_write(struct machine *m, const char *path, uint64_t offset,
		   const char *buf, size_t len, int trunc, struct mreq *r)
{
	nope(r);
}

void
machine_file_create(struct machine *m, const char *path, mode_t mode,
		    struct mreq *r)
{
	nope(r);
}

void
machine_file_remove(struct machine *m, const char *path, int dir,
		    struct mreq *r)
{
	nope(r);
}
