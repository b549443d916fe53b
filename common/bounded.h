/*
 * Bounds for everything a guest or a client can grow (DESIGN §3b): in
 * memory, a buffer that keeps its newest bytes and says how many went; on
 * disk, a file that rotates once to NAME.1 with a marker line. Neither ever
 * loses bytes without a marker that says so.
 */
#ifndef ATTESTFS_BOUNDED_H
#define ATTESTFS_BOUNDED_H

#include <stddef.h>
#include <stdint.h>

#include "common/util.h"

/*
 * Append to sb, keeping at most max bytes: the oldest go first, whole lines
 * where there are any (a reader then never sees half a line). Returns how
 * many bytes went from the front, so positions into sb move down by that.
 */
size_t sb_add_keep_tail(struct strbuf *sb, size_t max, const void *data,
			size_t len);
/* Append to sb up to max bytes in all; returns how many were not kept. */
size_t sb_add_keep_head(struct strbuf *sb, size_t max, const void *data,
			size_t len);

/* The newest max bytes of a stream, and how many older ones went. */
struct tailbuf {
	struct strbuf tb_sb;
	size_t tb_max;
	uint64_t tb_dropped;
};

void tailbuf_init(struct tailbuf *tb, size_t max);
void tailbuf_free(struct tailbuf *tb);
/* Returns the bytes dropped from the front by this call. */
size_t tailbuf_add(struct tailbuf *tb, const void *data, size_t len);
/*
 * Its bytes appended to out, after the line "[... N bytes dropped ...]\n"
 * when some went; note (or NULL) goes into that line, after a "; ".
 */
void tailbuf_render(const struct tailbuf *tb, struct strbuf *out,
		    const char *note);

/*
 * An append-only file of at most max bytes: the write that would pass the
 * bound first renames it to PATH.1 (replacing the previous one) and starts
 * PATH with a marker line. So at most 2 * max bytes stay on disk.
 */
struct rotfile {
	char *rf_path;
	int rf_fd;             /* -1: closed, or the file could not be opened */
	uint64_t rf_size;      /* bytes in rf_path */
	uint64_t rf_max;
	unsigned rf_rotations;
	uint64_t rf_dropped;   /* bytes of earlier .1 files deleted */
	uint64_t rf_lost;      /* bytes a full disk refused, not yet marked */
};

#define ROTFILE_MIN (64u << 10)

/* Opens path for appending (0600); 0 or -errno (rf is usable either way:
 * writes then go nowhere). max below ROTFILE_MIN counts as ROTFILE_MIN. */
int rotfile_open(struct rotfile *rf, const char *path, uint64_t max);
void rotfile_close(struct rotfile *rf);
/* Append; 0 or -errno. Rotates first when len would pass the bound. What
 * a full disk refuses is counted, and the next write that fits starts with
 * the line "[attestfs: N bytes of NAME lost: no room on disk]". */
int rotfile_write(struct rotfile *rf, const void *data, size_t len);

#endif
