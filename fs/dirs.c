/*
 * The directories: what each lists beyond its fixed rows, and the kinds of
 * their dynamic names (machines, jobs, units), which say whether a name
 * exists and make or remove it.
 *
 *	$ ls /vms                  root: fixed rows, then the machines
 *	$ ls /vms/a/jobs           the jobs (mkdir makes one, rmdir ends it)
 *	$ ls /vms/a/units          systemd's units, asked from the guest
 *	$ ls /vms/a/snapshots      the snapshots on disk
 */
#include "fs/internal.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "common/util.h"

#define UNKNOWN_INO 0xffffffffu  /* d_ino of entries without a node yet */

void
fs_dir_add(struct fs_open *of, const char *name, const struct fs_row *row,
	   size_t machine)
{
	if (of->n_ents == of->ents_cap) {
		of->ents_cap = of->ents_cap ? 2 * of->ents_cap : 16;
		of->ents = xrealloc(of->ents,
				    of->ents_cap * sizeof(*of->ents));
	}
	of->ents[of->n_ents].name = xstrdup(name);
	of->ents[of->n_ents].row = row;
	of->ents[of->n_ents].machine = machine;
	of->n_ents++;
}

/* NUL-separated names from machine/ (empty ones skipped, and "." and ".."
 * with skip_dots: the guest's listings have them). */
static void
dir_names(struct fs_open *of, const char *names, size_t len,
	  const struct fs_row *row, int skip_dots)
{
	size_t at = 0;

	while (names && at < len) {
		size_t l = strnlen(names + at, len - at);
		char *name = xasprintf("%.*s", (int)l, names + at);

		at += l + 1;
		if (l && (!skip_dots || (strcmp(name, ".") &&
					 strcmp(name, ".."))))
			fs_dir_add(of, name, row, FS_NO_MACHINE);
		free(name);
	}
}

/* A parked listing's reply: the guest's names, then the open directory. */
static void
reply_list(struct fs_preq *p, const struct fs_row *row)
{
	struct mreq *r = &p->mr;

	if (r->result < 0) {
		fs_open_free(p->of);
		fs_reply_fail(p, machine_reply_errno(r->result));
		return;
	}
	dir_names(p->of, r->data, r->data ? r->len : 0, row, 1);
	if (fuse_reply_open(p->req, &p->fi) < 0)
		fs_open_free(p->of);
}

static void
reply_list_files(struct fs_preq *p)
{
	reply_list(p, &fs_row_file);
}

static void
reply_list_units(struct fs_preq *p)
{
	reply_list(p, &fs_row_unit);
}

/* Park the listing of OF's directory: units/ or a guest directory. */
static int
list_parked(struct fs_open *of, fuse_req_t req, struct fuse_file_info *fi,
	    int guest)
{
	struct fs_preq *p = fs_preq_new(of->mnt->park, req, guest ?
					reply_list_files : reply_list_units);

	p->op = "list";
	p->ino = of->node->ino;
	p->of = of;
	p->fi = *fi;
	fs_park_begin(p);
	if (guest)
		machine_file_list(of->m, of->node->path, &p->mr);
	else
		machine_unit_list(of->m, &p->mr);
	fs_park_commit(p);
	return FS_REPLIED;
}

/* files/ and the guest's directories below it */
int
fs_dir_list_guest(struct fs_open *of, fuse_req_t req,
		  struct fuse_file_info *fi)
{
	return list_parked(of, req, fi, 1);
}

static int
list_units(struct fs_open *of, fuse_req_t req, struct fuse_file_info *fi)
{
	return list_parked(of, req, fi, 0);
}

static int
list_machines(struct fs_open *of, fuse_req_t req, struct fuse_file_info *fi)
{
	struct machine *m;
	size_t i;

	for (i = 0; (m = vmset_machine(of->mnt->vms, i)); i++)
		if (!machine_removed(m))
			fs_dir_add(of, machine_name(m), &fs_row_machine, i);
	return 0;
}

static int
list_jobs(struct fs_open *of, fuse_req_t req, struct fuse_file_info *fi)
{
	char *names = NULL;
	size_t len = 0;

	if (machine_job_list(of->m, &names, &len) >= 0)
		dir_names(of, names, len, &fs_row_job, 0);
	free(names);
	return 0;
}

static int
list_snapshots(struct fs_open *of, fuse_req_t req, struct fuse_file_info *fi)
{
	char *names = NULL;
	size_t len = 0;

	if (machine_snapshot_list(of->m, &names, &len) >= 0)
		dir_names(of, names, len, &fs_row_snapshot, 0);
	free(names);
	return 0;
}

/* One entry of readdirplus: a lookup reference, except for guest files. */
static size_t
add_plus(fuse_req_t req, struct fs_open *of, const struct fs_dirent *d,
	 const char *name, char *buf, size_t room, off_t next,
	 uint64_t *ref)
{
	struct fs_mount *mnt = of->mnt;
	const struct fs_node *dir = of->node, *n;
	struct fuse_entry_param e;

	memset(&e, 0, sizeof(e));
	e.attr.st_ino = !d ? (next == 1 ? dir->ino : dir->parent) :
			     UNKNOWN_INO;
	e.attr.st_mode = d ? d->row->mode : S_IFDIR;
	*ref = 0;
	if (d && d->row != &fs_row_file) {
		n = fs_nodes_ref(mnt->nodes, dir->ino, d->row, name,
				 d->machine, 0);
		if (n) {
			*ref = n->ino;
			e.ino = n->ino;
			e.generation = n->generation;
			fs_fixed_attr(mnt, n->ino, n->mode, &e.attr);
			e.attr_timeout = fs_row_timeout(n->row);
			e.entry_timeout = fs_row_timeout(n->row);
		}
	}
	return fuse_add_direntry_plus(req, buf, room, name, &e, next);
}

/*
 * Entries 0 and 1 are "." and "..", entry i + 2 is of->ents[i]; the offset
 * of an entry is the index of the next. readdirplus hands the kernel a
 * lookup reference on every entry it returns (but "." and ".."), except for
 * guest files: their type is unknown until a stat, so they go without a node
 * (ino 0) and the kernel looks them up.
 */
void
fs_dir_read(fuse_req_t req, struct fs_open *of, size_t size, off_t off,
	    int plus)
{
	const struct fs_node *dir = of->node;
	char *buf = xmalloc(size);
	uint64_t *refs = NULL;
	size_t used = 0, n_refs = 0, i;

	if (plus)
		refs = xcalloc(of->n_ents + 1, sizeof(*refs));
	for (i = off < 0 ? 0 : (size_t)off; i < of->n_ents + 2; i++) {
		const struct fs_dirent *d = i >= 2 ? &of->ents[i - 2] : NULL;
		const char *name = i == 0 ? "." : i == 1 ? ".." : d->name;
		struct stat st;
		size_t need;

		if (plus) {
			need = fuse_add_direntry_plus(req, NULL, 0, name,
						      NULL, 0);
			if (need > size - used)
				break;
			used += add_plus(req, of, d, name, buf + used,
					 size - used, (off_t)i + 1,
					 &refs[n_refs]);
			n_refs += refs[n_refs] != 0;
			continue;
		}
		memset(&st, 0, sizeof(st));
		st.st_ino = i == 0 ? dir->ino : i == 1 ? dir->parent
						      : UNKNOWN_INO;
		st.st_mode = d ? d->row->mode : S_IFDIR;
		need = fuse_add_direntry(req, buf + used, size - used, name,
					 &st, (off_t)i + 1);
		if (need > size - used)
			break;
		used += need;
	}
	if (fuse_reply_buf(req, buf, used) < 0) {
		/* the kernel never saw them: take the references back */
		for (i = 0; i < n_refs; i++)
			fs_nodes_forget(of->mnt->nodes, refs[i], 1);
	}
	free(refs);
	free(buf);
}

/* ---- the dynamic names' kinds ---- */

static int
machine_lookup(fuse_req_t req, struct fs_mount *mnt,
	       const struct fs_node *dir, const char *name, size_t *index)
{
	struct machine *m;
	size_t i;

	for (i = 0; (m = vmset_machine(mnt->vms, i)); i++) {
		if (!machine_removed(m) && !strcmp(machine_name(m), name)) {
			*index = i;
			return 0;
		}
	}
	return -ENOENT;
}

/* A clone goes with rmdir once halted. */
static void
machine_rmdir(fuse_req_t req, struct fs_mount *mnt,
	      const struct fs_node *dir, const char *name)
{
	int ret = vmset_remove(mnt->vms, name);

	fuse_reply_err(req, ret < 0 ? machine_reply_errno(ret) : 0);
}

static int
job_lookup(fuse_req_t req, struct fs_mount *mnt, const struct fs_node *dir,
	   const char *name, size_t *index)
{
	return machine_job_exists(fs_node_machine(mnt, dir), name) > 0 ?
		       0 : -ENOENT;
}

static void
job_mkdir(fuse_req_t req, struct fs_mount *mnt, const struct fs_node *dir,
	  const char *name, mode_t mode)
{
	const struct fs_node *n;
	int ret = machine_job_create(fs_node_machine(mnt, dir), name);

	if (ret < 0) {
		fuse_reply_err(req, machine_reply_errno(ret));
		return;
	}
	n = fs_nodes_ref(mnt->nodes, dir->ino, &fs_row_job, name,
			 FS_NO_MACHINE, 0);
	if (n)
		fs_reply_entry(req, mnt, n, NULL);
	else
		fuse_reply_err(req, ENOENT);
}

static void
job_rmdir(fuse_req_t req, struct fs_mount *mnt, const struct fs_node *dir,
	  const char *name)
{
	int ret = machine_job_remove(fs_node_machine(mnt, dir), name);
	int err = ret < 0 ? machine_reply_errno(ret) : 0;

	if (err)
		fs_log_refusal(mnt, dir, name, "rmdir", err);
	fuse_reply_err(req, err);
}

/* units/<u>: systemd knows the name (full, short or an alias). */
static void
reply_unit_lookup(struct fs_preq *p)
{
	struct fs_mount *mnt = fs_mnt(p->req);
	const struct fs_node *n;

	if (p->mr.result < 0) {
		fs_reply_fail(p, machine_reply_errno(p->mr.result));
		return;
	}
	n = fs_nodes_ref(mnt->nodes, p->ino, &fs_row_unit, p->name, 0, 0);
	if (!n) {
		fs_reply_fail(p, ENOENT);
		return;
	}
	fs_reply_entry(p->req, mnt, n, NULL);
}

static int
unit_lookup(fuse_req_t req, struct fs_mount *mnt, const struct fs_node *dir,
	    const char *name, size_t *index)
{
	struct fs_preq *p = fs_preq_new(mnt->park, req, reply_unit_lookup);

	p->op = "lookup";
	p->ino = dir->ino;
	p->name = xstrdup(name);
	fs_park_begin(p);
	machine_unit_resolve(fs_node_machine(mnt, dir), name, &p->mr);
	fs_park_commit(p);
	return FS_REPLIED;
}

const struct fs_ops fs_kind_root = {
	.name = "root",
	.list = list_machines,
};

const struct fs_ops fs_kind_machine = {
	.name = "machine",
	.lookup = machine_lookup,
	.rmdir = machine_rmdir,
};

const struct fs_ops fs_kind_jobs = {
	.name = "jobs",
	.list = list_jobs,
};

const struct fs_ops fs_kind_job = {
	.name = "job",
	.lookup = job_lookup,
	.mkdir = job_mkdir,
	.rmdir = job_rmdir,
};

const struct fs_ops fs_kind_units = {
	.name = "units",
	.list = list_units,
};

const struct fs_ops fs_kind_unit = {
	.name = "unit",
	.lookup = unit_lookup,
};

const struct fs_ops fs_kind_snapshots = {
	.name = "snapshots",
	.list = list_snapshots,
};
