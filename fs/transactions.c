/*
 * Transactions: exec, wait and qmp. Each open is one transaction: the
 * writes are joined into its request, the first read sends it, and reads
 * stream the result (parked until there is more).
 *
 *	$ ( exec 3<>/vms/a/exec; printf 'uname -s' >&3; cat <&3 )
 *	Linux
 *	$ echo 'unit sshd active' > /vms/a/wait   # bash opens O_WRONLY: EINVAL
 */
#include "fs/internal.h"

#include <errno.h>
#include <fcntl.h>

static int
tx_open(struct fs_open *of, fuse_req_t req, struct fuse_file_info *fi)
{
	const struct fs_node *n = of->node;

	if (of->accmode == O_WRONLY) {
		/* it would run nothing: a transaction is read */
		machine_log(of->m, "%s: open it read-write (exec 3<>%s), a "
			    "write-only open runs nothing", n->name, n->name);
		return -EINVAL;
	}
	/* FLUSH never does anything here (DESIGN.md §7): spare every close
	 * its round trip, bash's dup-and-close of each `>&3` too. */
	fi->noflush = 1;
	of->tx = machine_tx_open(of->m, (enum mtx_kind)n->row->arg);
	return of->tx ? 0 : -EIO;
}

static void
tx_write(struct fs_open *of, fuse_req_t req, const char *buf, size_t size,
	 off_t off)
{
	int ret = machine_tx_write(of->tx, buf, size);

	if (ret < 0)
		fuse_reply_err(req, machine_reply_errno(ret));
	else
		fuse_reply_write(req, size);
}

static void
start_tx(struct fs_open *of, struct mreq *r)
{
	machine_tx_read(of->tx, r);
}

static void
tx_release(struct fs_open *of)
{
	if (of->tx) {
		machine_tx_close(of->tx);
		of->tx = NULL;
	}
}

const struct fs_ops fs_kind_tx = {
	.name = "transaction",
	.flags = FS_F_DIRECT_IO | FS_F_NONSEEKABLE,
	.open = tx_open,
	.read = fs_read_stream,
	.start = start_tx,
	.write = tx_write,
	.release = tx_release,
};
