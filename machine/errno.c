/*
 * The errno table: what stopped a request, as the errno its caller sees
 * (DESIGN.md, "Errors are errnos a shell shows well"). One place, so that a
 * condition reads the same in a shell whichever file met it.
 *
 *	$ echo halt > /vms/a/ctl & cat /vms/a/wait    # the machine went down
 *	cat: /vms/a/wait: Host is down                 # MACHINE_COND_DOWN
 */
#include "machine/internal.h"

#include <errno.h>

static const int cond_errno[] = {
	[MACHINE_COND_DOWN] = EHOSTDOWN,
	[MACHINE_COND_DIED] = EIO,
	[MACHINE_COND_BUSY] = EBUSY,
	[MACHINE_COND_TIMEOUT] = ETIMEDOUT,
	[MACHINE_COND_INTERRUPTED] = EINTR,
	[MACHINE_COND_UNSUPPORTED] = EOPNOTSUPP,
	[MACHINE_COND_CMD_FAILED] = EREMOTEIO,
	[MACHINE_COND_BAD_MESSAGE] = EINVAL,
	[MACHINE_COND_NO_SUCH] = ENOENT,
};

int
machine_errno(enum machine_cond c)
{
	if ((size_t)c >= sizeof(cond_errno) / sizeof(cond_errno[0]) ||
	    !cond_errno[c])
		return -EIO;
	return -cond_errno[c];
}

/* Crashed: it died (EIO); stopped or on its way down: it is down. */
int
machine_gone_errno(const struct machine *m)
{
	return machine_errno(m->state == MS_CRASHED ? MACHINE_COND_DIED :
						      MACHINE_COND_DOWN);
}

int
machine_reply_errno(int result)
{
	return result < 0 && result > -4096 ? -result :
					      -machine_errno(MACHINE_COND_DIED);
}
