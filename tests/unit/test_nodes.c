/*
 * fs/nodes.c: rows, path resolution, lookup counts and inode reuse, the way
 * fs/ops.c drives them for LOOKUP, MKDIR and FORGET; and the kinds the rows
 * point at: every row has the operations its mode and flags promise.
 */
#include <errno.h>
#include <fcntl.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include <cmocka.h>

#include "common/util.h"
#include "fs/internal.h"
#include "fs/nodes.h"
#include "machine/machine.h"
#include "tests/unit/harness.h"

/* Machines of the pretend vmset: index = position. */
static const char *const machine_names[] = { "a", "b", NULL };

static int
machine_index(const char *name, size_t *out)
{
	size_t i;

	for (i = 0; machine_names[i]; i++) {
		if (!strcmp(machine_names[i], name)) {
			*out = i;
			return 0;
		}
	}
	return -ENOENT;
}

/*
 * Walk "/a/jobs/x/stdout" from the root the way the kernel does: one LOOKUP
 * (and so one reference) per component. Machines come from machine_names,
 * jobs and guest files exist whatever their name. 0 or -errno.
 */
static int
resolve(struct fs_nodes *t, const char *path, unsigned caps,
	const struct fs_node **out)
{
	char *copy = xstrdup(path), *save = NULL, *name;
	const struct fs_node *n = fs_nodes_get(t, FS_ROOT_INO);
	int ret = 0;

	for (name = strtok_r(copy, "/", &save); name;
	     name = strtok_r(NULL, "/", &save)) {
		const struct fs_row *row;
		size_t machine = FS_NO_MACHINE;
		int notdir;

		row = fs_row_child(n->row, name, caps, &notdir);
		if (!row) {
			ret = notdir ? -ENOTDIR : -ENOENT;
			break;
		}
		if (row == &fs_row_machine && machine_index(name, &machine)) {
			ret = -ENOENT;
			break;
		}
		n = fs_nodes_ref(t, n->ino, row, name, machine,
				 S_IFREG | 0644);
		assert_non_null(n);
	}
	free(copy);
	if (!ret)
		*out = n;
	return ret;
}

static int
setup(void **state)
{
	*state = fs_nodes_new();
	return 0;
}

static int
teardown(void **state)
{
	fs_nodes_free(*state);
	return 0;
}

static void
test_root(void **state)
{
	struct fs_nodes *t = *state;
	const struct fs_node *root = fs_nodes_get(t, FS_ROOT_INO);

	assert_non_null(root);
	assert_int_equal(root->row->type, FS_ROOT);
	assert_true(S_ISDIR(root->mode));
	assert_null(fs_nodes_get(t, 0));
	assert_null(fs_nodes_get(t, 2));
	assert_null(fs_nodes_get(t, 12345));
	assert_int_equal(fs_nodes_count(t), 1);
	/* the kernel never forgets the root, but if it did */
	fs_nodes_forget(t, FS_ROOT_INO, 5);
	assert_non_null(fs_nodes_get(t, FS_ROOT_INO));
}

static void
test_fixed_rows(void **state)
{
	struct fs_nodes *t = *state;
	static const struct {
		const char *path;
		enum fs_type type;
		const struct fs_ops *kind;
		mode_t mode;
	} cases[] = {
		{ "/ctl", FS_VMS_CTL, &fs_kind_vms_ctl, S_IFREG | 0200 },
		{ "/events", FS_EVENTS, &fs_kind_events, S_IFREG | 0444 },
		{ "/attest.sh", FS_ATTEST_SH, &fs_kind_attest_sh,
		  S_IFREG | 0444 },
		{ "/a", FS_MACHINE, &fs_kind_machine, S_IFDIR | 0755 },
		{ "/a/ctl", FS_CTL, &fs_kind_ctl, S_IFREG | 0200 },
		{ "/a/status", FS_STATUS, &fs_kind_value, S_IFREG | 0444 },
		{ "/a/info", FS_INFO, &fs_kind_value, S_IFREG | 0444 },
		{ "/a/log", FS_LOG, &fs_kind_log, S_IFREG | 0444 },
		{ "/a/config.json", FS_CONFIG, &fs_kind_value, S_IFREG | 0444 },
		{ "/a/console", FS_CONSOLE, &fs_kind_console, S_IFREG | 0644 },
		{ "/a/exec", FS_EXEC, &fs_kind_tx, S_IFREG | 0600 },
		{ "/a/wait", FS_WAIT, &fs_kind_tx, S_IFREG | 0600 },
		{ "/a/jobs", FS_JOBS, &fs_kind_jobs, S_IFDIR | 0755 },
		{ "/a/files", FS_FILES, &fs_kind_files, S_IFDIR | 0755 },
		{ "/a/units/sshd/state", FS_UNIT_STATE, &fs_kind_unit_file,
		  S_IFREG | 0444 },
		{ "/a/units/sshd/ctl", FS_UNIT_CTL, &fs_kind_unit_ctl,
		  S_IFREG | 0200 },
		{ "/b/jobs/x", FS_JOB, &fs_kind_job, S_IFDIR | 0755 },
		{ "/b/jobs/x/cmd", FS_JOB_CMD, &fs_kind_job_write,
		  S_IFREG | 0200 },
		{ "/b/jobs/x/stdin", FS_JOB_STDIN, &fs_kind_job_stdin,
		  S_IFREG | 0200 },
		{ "/b/jobs/x/ctl", FS_JOB_CTL, &fs_kind_job_write,
		  S_IFREG | 0200 },
		{ "/b/jobs/x/stdout", FS_JOB_STDOUT, &fs_kind_job_stream,
		  S_IFREG | 0444 },
		{ "/b/jobs/x/stderr", FS_JOB_STDERR, &fs_kind_job_stream,
		  S_IFREG | 0444 },
		{ "/b/jobs/x/exit", FS_JOB_EXIT, &fs_kind_job_exit,
		  S_IFREG | 0444 },
	};
	size_t i;

	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		const struct fs_node *n = NULL;

		assert_int_equal(resolve(t, cases[i].path, 0, &n), 0);
		assert_int_equal(n->row->type, cases[i].type);
		assert_ptr_equal(n->row->ops, cases[i].kind);
		assert_int_equal(n->mode, cases[i].mode);
	}
	/* the row says which machine/ call serves it */
	assert_int_equal(fs_row_find(FS_MACHINE, "status", 0)->arg,
			 MACHINE_VIEW_STATUS);
	assert_int_equal(fs_row_find(FS_MACHINE, "console", 0)->arg,
			 MACHINE_VIEW_CONSOLE);
	assert_int_equal(fs_row_find(FS_MACHINE, "wait", 0)->arg, MTX_WAIT);
	assert_int_equal(fs_row_find(FS_JOB, "exit", 0)->arg, JOB_EXIT);
	assert_int_equal(fs_row_find(FS_JOB, "stdin", 0)->arg, JOB_STDIN);
}

static void
test_missing(void **state)
{
	struct fs_nodes *t = *state;
	const struct fs_node *n;

	assert_int_equal(resolve(t, "/nosuch", 0, &n), -ENOENT);
	assert_int_equal(resolve(t, "/a/nosuch", 0, &n), -ENOENT);
	assert_int_equal(resolve(t, "/a/jobs/x/nosuch", 0, &n), -ENOENT);
	assert_int_equal(resolve(t, "/a/status/x", 0, &n), -ENOTDIR);
	assert_int_equal(resolve(t, "/ctl/x", 0, &n), -ENOTDIR);
	assert_int_equal(resolve(t, "/a/jobs/x/stdout/y", 0, &n), -ENOTDIR);
	/* a machine's rows are not the root's and the other way round */
	assert_null(fs_row_find(FS_ROOT, "status", 0));
	assert_null(fs_row_find(FS_MACHINE, "events", 0));
	assert_null(fs_row_find(FS_JOB, "status", 0));
}

static void
test_qmp_needs_capability(void **state)
{
	struct fs_nodes *t = *state;
	const struct fs_row *r;
	const struct fs_node *n;
	size_t pos = 0;
	int seen = 0;

	assert_null(fs_row_find(FS_MACHINE, "qmp", 0));
	assert_int_equal(resolve(t, "/a/qmp", 0, &n), -ENOENT);
	while ((r = fs_row_next(FS_MACHINE, 0, &pos)))
		assert_string_not_equal(r->name, "qmp");

	assert_non_null(fs_row_find(FS_MACHINE, "qmp", BACKEND_CAP_QMP));
	assert_int_equal(resolve(t, "/a/qmp", BACKEND_CAP_QMP, &n), 0);
	assert_int_equal(n->row->type, FS_QMP);
	assert_int_equal(n->mode, S_IFREG | 0600);
	pos = 0;
	while ((r = fs_row_next(FS_MACHINE, BACKEND_CAP_QMP | 1, &pos)))
		seen += !strcmp(r->name, "qmp");
	assert_int_equal(seen, 1);
}

static void
test_listing_order(void **state)
{
	static const char *const want[] = {
		"ctl", "status", "info", "log", "config.json", "console",
		"exec", "wait", "jobs", "files", "units", NULL,
	};
	const struct fs_row *r;
	size_t pos = 0, i = 0;

	(void)state;
	while ((r = fs_row_next(FS_MACHINE, 0, &pos))) {
		assert_non_null(want[i]);
		assert_string_equal(r->name, want[i]);
		i++;
	}
	assert_null(want[i]);
	pos = 0;
	i = 0;
	while ((r = fs_row_next(FS_ROOT, 0, &pos)))
		i++;
	assert_int_equal(i, 3);
	pos = 0;
	i = 0;
	while ((r = fs_row_next(FS_JOB, 0, &pos)))
		i++;
	assert_int_equal(i, 6);
	pos = 0;
	i = 0;
	while ((r = fs_row_next(FS_UNIT, 0, &pos)))
		i++;
	assert_int_equal(i, 5);
	/* any name under units/ is a unit directory for systemd to resolve */
	r = fs_row_child(fs_row_find(FS_MACHINE, "units", 0),
			 "postgresql@15-main.service", 0, &(int){ 0 });
	assert_ptr_equal(r, &fs_row_unit);
	r = fs_row_child(&fs_row_unit, "state", 0, &(int){ 0 });
	assert_non_null(r);
	assert_int_equal(r->type, FS_UNIT_STATE);
}

static void
test_machine_and_job_identity(void **state)
{
	struct fs_nodes *t = *state;
	const struct fs_node *n, *m;

	assert_int_equal(resolve(t, "/b/jobs/web/stdout", 0, &n), 0);
	assert_int_equal(n->machine, 1);
	assert_string_equal(n->job, "web");
	assert_null(n->path);
	assert_string_equal(n->name, "stdout");

	assert_int_equal(resolve(t, "/a/status", 0, &m), 0);
	assert_int_equal(m->machine, 0);
	assert_null(m->job);

	assert_int_equal(resolve(t, "/ctl", 0, &m), 0);
	assert_int_equal(m->machine, FS_NO_MACHINE);

	/* the directory itself carries the job too */
	assert_int_equal(resolve(t, "/b/jobs/web", 0, &m), 0);
	assert_string_equal(m->job, "web");
	assert_int_equal(n->parent, m->ino);
}

static void
test_files_paths(void **state)
{
	struct fs_nodes *t = *state;
	const struct fs_node *n, *d;

	assert_int_equal(resolve(t, "/a/files", 0, &n), 0);
	assert_string_equal(n->path, "/");
	assert_int_equal(resolve(t, "/a/files/etc", 0, &d), 0);
	assert_string_equal(d->path, "/etc");
	assert_int_equal(d->row->type, FS_FILE);
	assert_ptr_equal(d->row->ops, &fs_kind_guest);
	assert_int_equal(resolve(t, "/a/files/etc/ssh/sshd_config", 0, &n), 0);
	assert_string_equal(n->path, "/etc/ssh/sshd_config");
	assert_int_equal(n->machine, 0);
	assert_null(n->job);
	assert_int_equal(n->mode, S_IFREG | 0644);

	/* a guest path that became a directory gets a new inode */
	n = fs_nodes_ref(t, d->ino, &fs_row_file, "ssh", 0, S_IFDIR | 0700);
	assert_non_null(n);
	assert_true(S_ISDIR(n->mode));
	assert_int_equal(fs_nodes_nlookup(t, n->ino), 1);
	/* the file node lives on until forgotten */
	assert_int_equal(resolve(t, "/a/files/etc/ssh", 0, &d), 0);
	assert_int_not_equal(d->ino, n->ino);
}

static void
test_lookup_counts(void **state)
{
	struct fs_nodes *t = *state;
	const struct fs_node *n1, *n2, *dir;
	size_t before = fs_nodes_count(t);

	assert_int_equal(resolve(t, "/a/jobs/j/exit", 0, &n1), 0);
	assert_int_equal(fs_nodes_count(t), before + 4);
	assert_int_equal(resolve(t, "/a/jobs/j/exit", 0, &n2), 0);
	assert_ptr_equal(n1, n2);
	assert_int_equal(fs_nodes_count(t), before + 4);
	assert_int_equal(fs_nodes_nlookup(t, n1->ino), 2);
	dir = fs_nodes_get(t, n1->parent);
	assert_int_equal(fs_nodes_nlookup(t, dir->ino), 2);

	/* one forget does not free it */
	fs_nodes_forget(t, n1->ino, 1);
	assert_ptr_equal(fs_nodes_get(t, n1->ino), n1);
	/* a parent goes only after its children */
	fs_nodes_forget(t, dir->ino, 2);
	assert_int_equal(fs_nodes_nlookup(t, dir->ino), 0);
	assert_non_null(fs_nodes_get(t, dir->ino));
	{
		uint64_t exit_ino = n1->ino, dir_ino = dir->ino;
		const struct fs_node *jobs = fs_nodes_get(t, dir->parent);
		uint64_t jobs_ino = jobs->ino;

		fs_nodes_forget(t, exit_ino, 1);
		assert_null(fs_nodes_get(t, exit_ino));
		assert_null(fs_nodes_get(t, dir_ino));
		/* jobs/ is still looked up twice */
		assert_ptr_equal(fs_nodes_get(t, jobs_ino), jobs);
		fs_nodes_forget(t, jobs_ino, 2);
		assert_null(fs_nodes_get(t, jobs_ino));
	}
	/* "/a" is still referenced twice */
	assert_int_equal(fs_nodes_count(t), before + 1);
	/* forgetting more than held, or an unknown inode, is harmless */
	fs_nodes_forget(t, 999, 1);
	fs_nodes_forget(t, 0, 1);
}

static void
test_inode_reuse(void **state)
{
	struct fs_nodes *t = *state;
	const struct fs_node *n;
	uint64_t ino, gen, jobs;

	assert_int_equal(resolve(t, "/a", 0, &n), 0);
	assert_int_equal(resolve(t, "/a/jobs/one", 0, &n), 0);
	ino = n->ino;
	gen = n->generation;
	jobs = n->parent;
	fs_nodes_forget(t, ino, 1);
	assert_null(fs_nodes_get(t, ino));

	/* the number comes back, with a new generation, for another name */
	n = fs_nodes_ref(t, jobs, &fs_row_job, "two", 0, 0);
	assert_int_equal(n->ino, ino);
	assert_true(n->generation > gen);
	assert_string_equal(n->job, "two");

	/* and a forgotten name comes back as a fresh node */
	fs_nodes_forget(t, n->ino, 1);
	assert_int_equal(resolve(t, "/a/jobs/one", 0, &n), 0);
	assert_string_equal(n->job, "one");
	assert_int_equal(fs_nodes_nlookup(t, n->ino), 1);
}

static void
test_many_files(void **state)
{
	struct fs_nodes *t = *state;
	const struct fs_node *dir, *n;
	uint64_t *inos = xcalloc(5000, sizeof(*inos));
	char name[32];
	size_t i, base;

	assert_int_equal(resolve(t, "/b/files/big", 0, &dir), 0);
	base = fs_nodes_count(t);
	for (i = 0; i < 5000; i++) {
		snprintf(name, sizeof(name), "f%zu", i);
		n = fs_nodes_ref(t, dir->ino, &fs_row_file, name, 0,
				 S_IFREG | 0600);
		inos[i] = n->ino;
	}
	assert_int_equal(fs_nodes_count(t), base + 5000);
	for (i = 0; i < 5000; i++) {
		snprintf(name, sizeof(name), "f%zu", i);
		n = fs_nodes_ref(t, dir->ino, &fs_row_file, name, 0,
				 S_IFREG | 0600);
		assert_int_equal(n->ino, inos[i]);
		assert_string_equal(n->name, name);
		fs_nodes_forget(t, n->ino, 2);
	}
	assert_int_equal(fs_nodes_count(t), base);
	free(inos);
}

/*
 * Every row's kind has the operations its mode and flags promise, so
 * fs/ops.c can call them without asking what the node is.
 */
static void
test_kinds_complete(void **state)
{
	const struct fs_row *r;
	size_t pos = 0, n = 0;

	(void)state;
	while ((r = fs_row_each(&pos))) {
		const struct fs_ops *k = r->ops;

		n++;
		assert_non_null(k);
		assert_non_null(k->name);
		if (S_ISREG(r->mode) || r == &fs_row_file) {
			/* no row without open and read */
			assert_non_null(k->open);
			assert_non_null(k->read);
			/* generated files: read(2) returns what we return */
			assert_true(k->flags & FS_F_DIRECT_IO);
			/* writable: a write; read-only: none */
			if (r->mode & 0222 || r == &fs_row_file)
				assert_non_null(k->write);
			else
				assert_null(k->write);
			/* only write-only files refuse every read */
			if (r->mode & 0444)
				assert_ptr_not_equal(k->read, fs_read_none);
		} else {
			assert_true(S_ISDIR(r->mode));
			assert_null(k->open);
			assert_null(k->read);
			assert_null(k->write);
		}
		/* shared reads and writes call the kind's machine/ call */
		if (k->read == fs_read_stream || k->read == fs_read_once)
			assert_non_null(k->start);
		if (k->write == fs_write_message)
			assert_non_null(k->send);
		/* a directory's dynamic names: their kind says which exist */
		if (r->child)
			assert_non_null(r->child->ops->lookup);
		/* the guest decides over files/ and below */
		if (r->flags & FS_ROW_GUEST)
			assert_ptr_equal(r->child, &fs_row_file);
		if (k->flags & FS_F_GUEST) {
			assert_non_null(k->getattr);
			assert_non_null(k->setattr);
			assert_non_null(k->list);
		}
		/* streams and transactions are nonseekable and park reads */
		if (k->flags & FS_F_NONSEEKABLE)
			assert_true(r->mode & 0444);
		/* a cache time or none */
		if (r->flags & FS_ROW_UNCACHED)
			assert_true(r->timeout == 0);
		/* a job's files are below a job */
		if (r->flags & FS_ROW_IN_JOB)
			assert_true(r == &fs_row_job || r->dir == FS_JOB);
	}
	assert_true(n > 30);
	/* the three kinds FS_KIND_JOB_VALUE used to be are three kinds */
	assert_ptr_not_equal(fs_row_find(FS_MACHINE, "screen.png",
					 BACKEND_CAP_SCREENSHOT)->ops,
			     fs_row_find(FS_JOB, "exit", 0)->ops);
	assert_ptr_not_equal(fs_row_find(FS_UNIT, "state", 0)->ops,
			     fs_row_find(FS_JOB, "exit", 0)->ops);
	/* tx and streams are nonseekable; values and the console are not */
	assert_true(fs_kind_tx.flags & FS_F_NONSEEKABLE);
	assert_true(fs_kind_job_stream.flags & FS_F_NONSEEKABLE);
	assert_false(fs_kind_value.flags & FS_F_NONSEEKABLE);
	assert_false(fs_kind_console.flags & FS_F_NONSEEKABLE);
	assert_false(fs_kind_job_exit.flags & FS_F_NONSEEKABLE);
	/* a job's stdin ends the job's input when the writer closes */
	assert_non_null(fs_kind_job_stdin.release);
	assert_non_null(fs_kind_tx.release);
	assert_non_null(fs_kind_console.release);
}

/*
 * A transaction's close costs no FLUSH round trip (FLUSH never does
 * anything, DESIGN.md §7): its open tells the kernel so.
 */
static void
test_tx_open_noflush(void **state)
{
	static const char *const paths[] = { "/a/exec", "/a/wait" };
	struct fs_nodes *t = fs_nodes_new();
	struct fixture *f;
	size_t i;

	fixture_setup(state, "{\"machines\": {\"m\": {\"backend\": "
		      "\"mock\"}}}", 5, 0);
	f = *state;
	for (i = 0; i < sizeof(paths) / sizeof(paths[0]); i++) {
		const struct fs_node *n;
		struct fuse_file_info fi;
		struct fs_open of;

		assert_int_equal(resolve(t, paths[i], 0, &n), 0);
		memset(&of, 0, sizeof(of));
		memset(&fi, 0, sizeof(fi));
		of.node = n;
		of.m = f->m;
		of.accmode = O_RDWR;
		assert_ptr_equal(n->row->ops, &fs_kind_tx);
		assert_int_equal(n->row->ops->open(&of, NULL, &fi), 0);
		assert_true(fi.noflush);
		n->row->ops->release(&of);
	}
	fs_nodes_free(t);
	fixture_teardown(state);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_root, setup, teardown),
		cmocka_unit_test_setup_teardown(test_fixed_rows, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_missing, setup, teardown),
		cmocka_unit_test_setup_teardown(test_qmp_needs_capability,
						setup, teardown),
		cmocka_unit_test_setup_teardown(test_listing_order, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_machine_and_job_identity,
						setup, teardown),
		cmocka_unit_test_setup_teardown(test_files_paths, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_lookup_counts, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_inode_reuse, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_many_files, setup,
						teardown),
		cmocka_unit_test(test_kinds_complete),
		cmocka_unit_test(test_tx_open_noflush),
	};

	return cmocka_run_group_tests_name("nodes", tests, NULL, NULL);
}
