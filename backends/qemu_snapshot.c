/*
 * Snapshots of a QEMU machine over QMP: save (stop, freeze each disk
 * under a new overlay, migrate the device state to a file, copy the RAM
 * file, cont) and restore (-incoming defer, then migrate-incoming from the
 * file). RAM in a shared file stays out of the stream (x-ignore-shared).
 */
#include "backends/qemu_internal.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* A q35 guest's RAM below 2 GiB is at the same physical address as in
 * its file, whatever its size. */
#define QEMU_POPULATE_BELOW (2LL << 30)
/* At most this many extents: one QMP round trip each. */
#define QEMU_POPULATE_MAX_EXTENTS 4096
/* The legacy VGA window: device memory there, whose reads can change
 * the device's state (its latches, in a planar mode). */
#define QEMU_POPULATE_SKIP_FROM 0xa0000
#define QEMU_POPULATE_SKIP_TO 0xc0000

int
qemu_qmp_args(struct backend *b, const char *cmd, json_object *args,
	      int timeout_ms, char **ret, struct aerr *err)
{
	int r = qmp_execute(b->qmp, cmd, args ?
			    json_object_to_json_string_ext(args,
							   JSON_C_TO_STRING_PLAIN) :
			    NULL, timeout_ms, ret, err);

	json_object_put(args);
	return r == -EPIPE ? -EIO : r;
}

json_object *
qemu_obj1(const char *key, json_object *value)
{
	json_object *o = json_object_new_object();

	json_object_object_add(o, key, value);
	return o;
}

/* The "status" string of a query-* reply, malloc'd, or NULL. */
static char *
qemu_status_of(const char *reply)
{
	json_object *o = json_tokener_parse(reply ? reply : "");
	json_object *st;
	char *s = NULL;

	if (o && json_object_object_get_ex(o, "status", &st))
		s = xstrdup(json_object_get_string(st));
	json_object_put(o);
	return s;
}

/* Poll a query command until its status leaves `busy` values. */
static int
qemu_poll_status(struct backend *b, const char *query,
		 const char *const *busy, char **status, struct aerr *err)
{
	int64_t deadline = now_mono_ms() + QEMU_SNAPSHOT_TIMEOUT_MS;

	for (;;) {
		char *reply = NULL, *st;
		int ret = qemu_qmp_args(b, query, NULL, QEMU_OP_TIMEOUT_MS,
					&reply, err);
		size_t i;
		int waiting = 0;

		if (ret < 0)
			return ret;
		st = qemu_status_of(reply);
		free(reply);
		for (i = 0; st && busy[i]; i++)
			waiting |= !strcmp(st, busy[i]);
		if (!waiting) {
			*status = st ? st : xstrdup("");
			return 0;
		}
		free(st);
		if (now_mono_ms() >= deadline) {
			aerr_set(err, "qemu: %s did not finish in %d s", query,
				 QEMU_SNAPSHOT_TIMEOUT_MS / 1000);
			return -ETIMEDOUT;
		}
		usleep(2000);
	}
}

int
qemu_set_ignore_shared(struct backend *b, bool on, struct aerr *err)
{
	json_object *cap = json_object_new_object(), *caps;

	json_object_object_add(cap, "capability",
			       json_object_new_string("x-ignore-shared"));
	json_object_object_add(cap, "state", json_object_new_boolean(on));
	caps = json_object_new_array();
	json_object_array_add(caps, cap);
	return qemu_qmp_args(b, "migrate-set-capabilities",
			     qemu_obj1("capabilities", caps),
			     QEMU_OP_TIMEOUT_MS, NULL, err);
}

/* Hand QEMU an open file as fdname for an fd: migration URI: no helper
 * process and no pipe between the file and QEMU. */
static int
qemu_pass_file(struct backend *b, const char *path, int flags,
	       const char *fdname, struct aerr *err)
{
	json_object *args;
	int fd = open(path, flags | O_CLOEXEC, 0600), ret;

	if (fd < 0) {
		ret = -errno;
		aerr_set(err, "qemu: %s: %s", path, strerror(errno));
		return ret;
	}
	args = qemu_obj1("fdname", json_object_new_string(fdname));
	ret = qmp_execute_fd(b->qmp, "getfd", json_object_to_json_string(args),
			     fd, QEMU_OP_TIMEOUT_MS, NULL, err);
	json_object_put(args);
	close(fd);
	return ret;
}

/*
 * -incoming defer: load the saved state; the guest stays paused (the state
 * carries the run state it was saved in, after stop) unless it was saved
 * running and QEMU autostarts. A pre-started VMM loads ahead of the
 * restore, which then only needs cont.
 */
int
qemu_incoming_load(struct backend *b, struct aerr *err)
{
	static const char *const busy[] = { "inmigrate", NULL };
	char *st = NULL;
	int ret;

	if (b->loaded)
		return 0;
	if (!b->incoming) {
		aerr_set(err, "qemu: no saved state to load");
		return -EINVAL;
	}
	ret = qemu_pass_file(b, b->incoming, O_RDONLY, "incoming", err);
	if (ret == 0)
		ret = qemu_qmp_args(b, "migrate-incoming",
				    qemu_obj1("uri",
					      json_object_new_string("fd:incoming")),
				    QEMU_OP_TIMEOUT_MS, NULL, err);
	if (ret == 0)
		ret = qemu_poll_status(b, "query-status", busy, &st, err);
	if (ret < 0)
		return ret;
	b->loaded = true;
	b->loaded_running = !strcmp(st, "running");
	free(st);
	free(b->incoming);
	b->incoming = NULL;
	return 0;
}

static int
qemu_pmemsave_null(struct backend *b, off_t at, off_t len, struct aerr *err)
{
	json_object *args = json_object_new_object();

	json_object_object_add(args, "val", json_object_new_int64(at));
	json_object_object_add(args, "size", json_object_new_int64(len));
	json_object_object_add(args, "filename",
			       json_object_new_string("/dev/null"));
	return qemu_qmp_args(b, "pmemsave", args, QEMU_OP_TIMEOUT_MS, NULL,
			     err);
}

/* [from, to) but the VGA window. */
static int
qemu_pmemsave_outside(struct backend *b, off_t from, off_t to,
		      struct aerr *err)
{
	int ret = 0;

	if (from < QEMU_POPULATE_SKIP_FROM)
		ret = qemu_pmemsave_null(b, from, (to < QEMU_POPULATE_SKIP_FROM ?
						   to : QEMU_POPULATE_SKIP_FROM) -
					 from, err);
	if (from < QEMU_POPULATE_SKIP_TO)
		from = QEMU_POPULATE_SKIP_TO;
	if (ret == 0 && to > from)
		ret = qemu_pmemsave_null(b, from, to - from, err);
	return ret;
}

/*
 * A VMM that waits to continue a snapshot whose RAM file it maps
 * copy-on-write: QEMU reads the file's data now (pmemsave to /dev/null),
 * so those pages are in its page tables before the guest runs. Each first
 * touch after `cont` was a host page fault, and on a host that is itself a
 * VM they cost tens of microseconds each, hundreds of them before a
 * clone's first command. Reading copies nothing (the pages stay the
 * file's, shared with every clone); holes are skipped, since a fault
 * there would allocate them in the snapshot's file, and so is the VGA
 * window (device memory). Extents counted in *n.
 */
int
qemu_populate_ram(struct backend *b, unsigned *n, struct aerr *err)
{
	int fd = open(b->ram_path ? b->ram_path : "", O_RDONLY | O_CLOEXEC);
	off_t data = 0, hole, end;
	struct stat st;
	int ret = 0;

	*n = 0;
	if (fd < 0 || fstat(fd, &st) < 0) {
		ret = -errno;
		aerr_set(err, "qemu: %s: %s", b->ram_path ? b->ram_path : "",
			 strerror(errno));
		if (fd >= 0)
			close(fd);
		return ret;
	}
	end = st.st_size < QEMU_POPULATE_BELOW ? st.st_size :
					       QEMU_POPULATE_BELOW;
	while (ret == 0 && *n < QEMU_POPULATE_MAX_EXTENTS &&
	       (data = lseek(fd, data, SEEK_DATA)) >= 0 && data < end) {
		hole = lseek(fd, data, SEEK_HOLE);
		if (hole < 0 || hole > end)
			hole = end;
		ret = qemu_pmemsave_outside(b, data, hole, err);
		data = hole;
		(*n)++;
	}
	close(fd);
	return ret;
}

/* Load the saved state unless that was done, then run. */
int
qemu_incoming(struct backend *b, struct aerr *err)
{
	int ret = qemu_incoming_load(b, err);

	if (ret < 0 || b->loaded_running)
		return ret;
	ret = qemu_qmp_args(b, "cont", NULL, QEMU_OP_TIMEOUT_MS, NULL, err);
	if (ret == 0)
		b->loaded_running = true;
	return ret;
}

/*
 * Freeze disk i into dir: the guest goes on over a new overlay that QEMU
 * creates above the active one, and the snapshot keeps the active one by a
 * hard link. Its backing chain names older overlays of this state dir; none
 * is ever overwritten (every launch and freeze gets new names).
 */
static int
qemu_freeze_disk(struct backend *b, size_t i, const char *dir,
		 struct aerr *err)
{
	static unsigned freezes;
	char *frozen = xasprintf("%s/disk.%zu.qcow2", dir, i);
	char *next = xasprintf("%s/disk.%zu.s%u.qcow2", b->state_dir, i,
			       __atomic_add_fetch(&freezes, 1, __ATOMIC_RELAXED));
	char *device = xasprintf("disk.%zu", i);
	json_object *args;
	int ret = 0;

	unlink(next);
	if (link(b->active[i], frozen) < 0) {
		ret = -errno;
		aerr_set(err, "link %s: %s", b->active[i], strerror(errno));
		goto out;
	}
	args = json_object_new_object();
	json_object_object_add(args, "device", json_object_new_string(device));
	json_object_object_add(args, "snapshot-file",
			       json_object_new_string(next));
	json_object_object_add(args, "format", json_object_new_string("qcow2"));
	ret = qemu_qmp_args(b, "blockdev-snapshot-sync", args,
			    QEMU_OP_TIMEOUT_MS, NULL, err);
	if (ret == 0) {
		free(b->active[i]);
		b->active[i] = next;
		next = NULL;
	}
out:
	free(frozen);
	free(next);
	free(device);
	return ret;
}

int
qemu_save(struct backend *b, const char *dir, const char *ram_out,
	  int *ram_saved, struct aerr *err)
{
	static const char *const busy[] = { "setup", "active", "pre-switchover",
					    "device", NULL };
	char *state = xasprintf("%s/state", dir), *st = NULL;
	bool with_ram = b->ram_shared && ram_out;
	struct aerr ignored;
	size_t i;
	int ret, ret2;

	*ram_saved = 0;
	if (b->script) {
		/* NixOS's run-<name>-vm mounts /nix/store and xchg over 9p,
		 * and QEMU blocks migration while a 9p export is mounted. */
		aerr_set(err, "qemu: snapshots of start-script machines are not "
			 "supported (NixOS run-<name>-vm scripts mount 9p "
			 "exports, and QEMU refuses to save a guest while one "
			 "is mounted)");
		free(state);
		return -EOPNOTSUPP;
	}
	/* The default bandwidth cap (128 MiB/s) would make saving slow. */
	ret = qemu_qmp_args(b, "migrate-set-parameters",
			    qemu_obj1("max-bandwidth",
				      json_object_new_int64(10737418240LL)),
			    QEMU_OP_TIMEOUT_MS, NULL, err);
	/* RAM in a shared file is copied as a file, not streamed. */
	if (ret == 0)
		ret = qemu_set_ignore_shared(b, with_ram, err);
	if (ret == 0)
		ret = qemu_qmp_args(b, "stop", NULL, QEMU_OP_TIMEOUT_MS, NULL,
				    err);
	if (ret < 0)
		goto out;
	/* Disks first: after the migration QEMU has let go of them. */
	for (i = 0; i < b->n_disks && ret == 0; i++)
		ret = qemu_freeze_disk(b, i, dir, err);
	if (ret == 0)
		ret = qemu_pass_file(b, state, O_WRONLY | O_CREAT | O_TRUNC,
				     "snapshot", err);
	if (ret == 0)
		ret = qemu_qmp_args(b, "migrate",
				    qemu_obj1("uri",
					      json_object_new_string("fd:snapshot")),
				    QEMU_OP_TIMEOUT_MS, NULL, err);
	if (ret == 0)
		ret = qemu_poll_status(b, "query-migrate", busy, &st, err);
	if (ret == 0 && strcmp(st, "completed")) {
		aerr_set(err, "qemu: migration to %s ended %s", state, st);
		ret = -EIO;
	}
	/* Still stopped: the RAM file holds exactly the saved moment. */
	if (ret == 0 && with_ram) {
		ret = copy_file_sparse(b->ram_path, ram_out);
		if (ret < 0)
			aerr_set(err, "qemu: copy %s to %s: %s", b->ram_path,
				 ram_out, strerror(-ret));
		else
			*ram_saved = 1;
	}
	/* Running again, whatever happened (cont reactivates the disks). */
	ret2 = qemu_qmp_args(b, "cont", NULL, QEMU_OP_TIMEOUT_MS, NULL,
			     ret < 0 ? &ignored : err);
	if (ret == 0)
		ret = ret2;
out:
	free(state);
	free(st);
	return ret;
}
