/* jobs/<j>/: named background commands (placeholder until implemented). */
#include <errno.h>

#include "machine/internal.h"

int
machine_job_create(struct machine *m, const char *name)
{
	return -EOPNOTSUPP;
}

int
machine_job_remove(struct machine *m, const char *name)
{
	return -ENOENT;
}

int
machine_job_list(struct machine *m, char **names, size_t *len)
{
	*names = NULL;
	*len = 0;
	return 0;
}

int
machine_job_exists(struct machine *m, const char *name)
{
	return 0;
}

void
machine_job_write(struct machine *m, const char *name, enum job_file f,
		  const char *buf, size_t len, struct mreq *r)
{
	r->result = -ENOENT;
	r->done(r);
}

void
machine_job_read(struct machine *m, const char *name, enum job_file f,
		 uint64_t offset, struct mreq *r)
{
	r->result = -ENOENT;
	r->done(r);
}

void
machine_job_stdin_close(struct machine *m, const char *name)
{
}
