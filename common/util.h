/* Small helpers shared by every layer: growable buffers, error reasons, time. */
#ifndef ATTESTFS_UTIL_H
#define ATTESTFS_UTIL_H

#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <time.h>

/* A reason to go with an errno: functions return -errno and fill this. */
struct aerr {
	char msg[512];
};

void aerr_set(struct aerr *err, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));
/* The reason: prefix, then fmt. */
void aerr_vset_after(struct aerr *err, const char *prefix, const char *fmt,
		     va_list ap) __attribute__((format(printf, 3, 0)));

/* Growable byte buffer; data is always NUL-terminated (not counted in len). */
struct strbuf {
	char *data;
	size_t len;
	size_t cap;
};

void sb_init(struct strbuf *sb);
void sb_free(struct strbuf *sb);
void sb_add(struct strbuf *sb, const void *data, size_t len);
void sb_adds(struct strbuf *sb, const char *s);
void sb_addf(struct strbuf *sb, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));
void sb_vaddf(struct strbuf *sb, const char *fmt, va_list ap);
/* Drop the first n bytes. */
void sb_consume(struct strbuf *sb, size_t n);
/* Hand the buffer over to the caller (free() it); sb is empty afterwards. */
char *sb_detach(struct strbuf *sb, size_t *len);
/* Append s quoted for a POSIX shell ('...' with '\'' for quotes). */
void sb_add_shell_quoted(struct strbuf *sb, const char *s, size_t len);

/* Abort on allocation failure: a daemon that cannot allocate cannot report. */
void *xmalloc(size_t n);
void *xcalloc(size_t n, size_t size);
void *xrealloc(void *p, size_t n);
char *xstrdup(const char *s);
char *xasprintf(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* Milliseconds: wall clock since the epoch, and monotonic. */
int64_t now_unix_ms(void);
int64_t now_mono_ms(void);
/* The CLOCK_MONOTONIC time ms milliseconds from now (ms <= 0: now), for
 * pthread_cond_timedwait on a condition set to that clock. */
void mono_deadline(struct timespec *ts, int64_t ms);

/* Write all of buf, retrying on EINTR and short writes. 0 or -errno. */
int write_all(int fd, const void *buf, size_t len);
/* Whole file into a malloc'd NUL-terminated buffer. 0 or -errno. */
int read_file(const char *path, char **out, size_t *len);
/* Write to path.tmp, then rename: readers never see half a file. */
int write_file_atomic(const char *path, const void *data, size_t len);
/* mkdir -p. 0 or -errno. */
int mkdir_p(const char *path, unsigned mode);
/* rm -rf, for state directories we created ourselves. */
/* A positive whole number of seconds, at most a year, nothing after it:
 * 0, or -EINVAL (atoi would take "30s" or "4294967297"). */
int secs_parse(const char *s, int *out);
int remove_tree(const char *path);
/* remove_tree of name in dirfd; symbolic links are removed, never followed. */
int remove_tree_at(int dirfd, const char *name);
/* Copy src to a new dst (0600) of the same size, only src's data extents
 * (its holes stay holes). 0 or -errno; no dst is left on failure. */
int copy_file_sparse(const char *src, const char *dst);
/* A writable copy of src as a new dst (0600): a reflink where the file
 * system shares extents, else copy_file_sparse. 0 or -errno. */
int copy_file_reflink(const char *src, const char *dst);
/* unlink(path), but the file's data is freed later, by a thread of the
 * lowest priority: the name is gone at return. 0 or -errno. */
int unlink_freeing_later(const char *path);

/*
 * About how many elements regcomp() makes of an extended regular expression:
 * bounded repetitions copy what they repeat ("(a{255}){255}" is 65,000),
 * and its time and memory grow faster than that. SIZE_MAX for
 * back-references (exponential matching), for groups nested past 32 and
 * for repetitions of repetitions nested past 3 (regcomp's time explodes).
 */
size_t regex_cost(const char *re);

#endif
