#include "common/util.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <linux/fs.h>
#include <pthread.h>
#include <sys/ioctl.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

void
aerr_set(struct aerr *err, const char *fmt, ...)
{
	va_list ap;

	if (!err)
		return;
	va_start(ap, fmt);
	vsnprintf(err->msg, sizeof(err->msg), fmt, ap);
	va_end(ap);
}

void
aerr_vset_after(struct aerr *err, const char *prefix, const char *fmt,
		va_list ap)
{
	size_t n;

	if (!err)
		return;
	n = (size_t)snprintf(err->msg, sizeof(err->msg), "%s", prefix);
	if (n < sizeof(err->msg))
		vsnprintf(err->msg + n, sizeof(err->msg) - n, fmt, ap);
}

void *
xmalloc(size_t n)
{
	void *p = malloc(n ? n : 1);

	if (!p)
		abort();
	return p;
}

void *
xcalloc(size_t n, size_t size)
{
	void *p = calloc(n ? n : 1, size ? size : 1);

	if (!p)
		abort();
	return p;
}

void *
xrealloc(void *p, size_t n)
{
	p = realloc(p, n ? n : 1);
	if (!p)
		abort();
	return p;
}

char *
xstrdup(const char *s)
{
	char *p = strdup(s ? s : "");

	if (!p)
		abort();
	return p;
}

char *
xasprintf(const char *fmt, ...)
{
	va_list ap;
	char *s;

	va_start(ap, fmt);
	if (vasprintf(&s, fmt, ap) < 0)
		abort();
	va_end(ap);
	return s;
}

void
sb_init(struct strbuf *sb)
{
	sb->data = NULL;
	sb->len = 0;
	sb->cap = 0;
}

void
sb_free(struct strbuf *sb)
{
	free(sb->data);
	sb_init(sb);
}

static void
sb_grow(struct strbuf *sb, size_t extra)
{
	size_t need = sb->len + extra + 1;

	if (need <= sb->cap)
		return;
	if (sb->cap < 64)
		sb->cap = 64;
	while (sb->cap < need)
		sb->cap *= 2;
	sb->data = xrealloc(sb->data, sb->cap);
}

void
sb_add(struct strbuf *sb, const void *data, size_t len)
{
	sb_grow(sb, len);
	if (len)
		memcpy(sb->data + sb->len, data, len);
	sb->len += len;
	sb->data[sb->len] = '\0';
}

void
sb_adds(struct strbuf *sb, const char *s)
{
	sb_add(sb, s, strlen(s));
}

void
sb_vaddf(struct strbuf *sb, const char *fmt, va_list ap)
{
	va_list ap2;
	int n;

	va_copy(ap2, ap);
	n = vsnprintf(NULL, 0, fmt, ap2);
	va_end(ap2);
	if (n < 0)
		return;
	sb_grow(sb, (size_t)n);
	vsnprintf(sb->data + sb->len, (size_t)n + 1, fmt, ap);
	sb->len += (size_t)n;
}

void
sb_addf(struct strbuf *sb, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	sb_vaddf(sb, fmt, ap);
	va_end(ap);
}

void
sb_consume(struct strbuf *sb, size_t n)
{
	if (n >= sb->len) {
		sb->len = 0;
	} else {
		memmove(sb->data, sb->data + n, sb->len - n);
		sb->len -= n;
	}
	if (sb->data)
		sb->data[sb->len] = '\0';
}

char *
sb_detach(struct strbuf *sb, size_t *len)
{
	char *p;

	if (!sb->data) {
		sb_grow(sb, 0);
		sb->data[0] = '\0';
	}
	p = sb->data;
	if (len)
		*len = sb->len;
	sb_init(sb);
	return p;
}

void
sb_add_shell_quoted(struct strbuf *sb, const char *s, size_t len)
{
	size_t i, start = 0;

	sb_add(sb, "'", 1);
	for (i = 0; i < len; i++) {
		if (s[i] != '\'')
			continue;
		sb_add(sb, s + start, i - start);
		sb_add(sb, "'\\''", 4);
		start = i + 1;
	}
	sb_add(sb, s + start, len - start);
	sb_add(sb, "'", 1);
}

int64_t
now_unix_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

int64_t
now_mono_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

void
mono_deadline(struct timespec *ts, int64_t ms)
{
	clock_gettime(CLOCK_MONOTONIC, ts);
	if (ms <= 0)
		return;
	ts->tv_sec += ms / 1000;
	ts->tv_nsec += (long)(ms % 1000) * 1000000L;
	if (ts->tv_nsec >= 1000000000L) {
		ts->tv_sec++;
		ts->tv_nsec -= 1000000000L;
	}
}

int
write_all(int fd, const void *buf, size_t len)
{
	const char *p = buf;

	while (len) {
		ssize_t n = write(fd, p, len);

		if (n < 0) {
			if (errno == EINTR)
				continue;
			return -errno;
		}
		p += n;
		len -= (size_t)n;
	}
	return 0;
}

int
read_file(const char *path, char **out, size_t *len)
{
	struct strbuf sb;
	char buf[65536];
	int fd = open(path, O_RDONLY | O_CLOEXEC);

	if (fd < 0)
		return -errno;
	sb_init(&sb);
	for (;;) {
		ssize_t n = read(fd, buf, sizeof(buf));

		if (n < 0) {
			int e = errno;

			if (e == EINTR)
				continue;
			close(fd);
			sb_free(&sb);
			return -e;
		}
		if (n == 0)
			break;
		sb_add(&sb, buf, (size_t)n);
	}
	close(fd);
	*out = sb_detach(&sb, len);
	return 0;
}

int
write_file_atomic(const char *path, const void *data, size_t len)
{
	char *tmp = xasprintf("%s.tmp", path);
	int fd, ret;

	fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
	if (fd < 0) {
		ret = -errno;
		goto out;
	}
	ret = write_all(fd, data, len);
	if (close(fd) < 0 && ret == 0)
		ret = -errno;
	if (ret == 0 && rename(tmp, path) < 0)
		ret = -errno;
	if (ret < 0)
		unlink(tmp);
out:
	free(tmp);
	return ret;
}

int
mkdir_p(const char *path, unsigned mode)
{
	char *p = xstrdup(path), *s;
	int ret = 0;

	for (s = p + 1; ; s++) {
		if (*s != '/' && *s != '\0')
			continue;
		char c = *s;

		*s = '\0';
		if (mkdir(p, mode) < 0 && errno != EEXIST) {
			ret = -errno;
			break;
		}
		*s = c;
		if (c == '\0')
			break;
	}
	free(p);
	return ret;
}

int
secs_parse(const char *s, int *out)
{
	char *end;
	long v;

	errno = 0;
	v = strtol(s, &end, 10);
	if (errno || end == s || *end || v <= 0 || v > 86400 * 365)
		return -EINVAL;
	*out = (int)v;
	return 0;
}

/*
 * By descriptor, never following a symbolic link: a link planted in the tree
 * (say in a world-writable /dev/shm) is removed itself, never what it names.
 */
int
remove_tree_at(int dirfd, const char *name)
{
	struct dirent *de;
	struct stat st;
	int fd, ret = 0;
	DIR *d;

	if (fstatat(dirfd, name, &st, AT_SYMLINK_NOFOLLOW) < 0)
		return errno == ENOENT ? 0 : -errno;
	if (!S_ISDIR(st.st_mode))
		return unlinkat(dirfd, name, 0) < 0 ? -errno : 0;
	fd = openat(dirfd, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	d = fdopendir(fd);
	if (!d) {
		ret = -errno;
		close(fd);
		return ret;
	}
	while ((de = readdir(d))) {
		int r;

		if (!strcmp(de->d_name, ".") || !strcmp(de->d_name, ".."))
			continue;
		r = remove_tree_at(fd, de->d_name);
		if (r < 0 && ret == 0)
			ret = r;
	}
	closedir(d);
	if (unlinkat(dirfd, name, AT_REMOVEDIR) < 0 && ret == 0)
		ret = -errno;
	return ret;
}

int
remove_tree(const char *path)
{
	return remove_tree_at(AT_FDCWD, path);
}

int
copy_file_reflink(const char *src, const char *dst)
{
	int in = open(src, O_RDONLY | O_CLOEXEC), out, ret;

	if (in < 0)
		return -errno;
	unlink(dst);
	out = open(dst, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
	if (out < 0) {
		ret = -errno;
		close(in);
		return ret;
	}
	ret = ioctl(out, FICLONE, in) == 0 ? 0 : -errno;
	close(in);
	close(out);
	if (ret == 0)
		return 0;
	unlink(dst);
	return copy_file_sparse(src, dst);
}

static void *
close_niced(void *arg)
{
	/* This thread only (Linux): the close frees the file's pages. */
	setpriority(PRIO_PROCESS, (id_t)gettid(), 19);
	close((int)(intptr_t)arg);
	return NULL;
}

/*
 * Freeing a file's pages takes CPU: about 30 ms for the 120 MiB of a
 * guest's RAM in tmpfs on a VM host, the moment the last name and the last
 * mapping go. A restore drops the old RAM file while the new guest's first
 * command runs, and on a host of two cores that command waited for it.
 * An open descriptor keeps the pages past the unlink; closed at nice 19,
 * they go when the CPU has nothing better to do (nice, not SCHED_IDLE, so
 * that a host that is never idle still gets its memory back).
 */
int
unlink_freeing_later(const char *path)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW | O_NONBLOCK);
	pthread_attr_t attr;
	pthread_t t;
	int ret = unlink(path) < 0 ? -errno : 0;

	if (fd < 0)
		return ret;
	pthread_attr_init(&attr);
	pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
	if (pthread_create(&t, &attr, close_niced, (void *)(intptr_t)fd))
		close(fd);
	pthread_attr_destroy(&attr);
	return ret;
}

int
copy_file_sparse(const char *src, const char *dst)
{
	int in = open(src, O_RDONLY | O_CLOEXEC), out = -1, ret = 0;
	struct stat st;
	off_t data = 0, hole;

	if (in < 0)
		return -errno;
	if (fstat(in, &st) < 0)
		goto fail;
	out = open(dst, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	if (out < 0 || ftruncate(out, st.st_size) < 0)
		goto fail;
	/* Guest RAM is mostly holes: copy only the extents that hold data. */
	while ((data = lseek(in, data, SEEK_DATA)) >= 0) {
		hole = lseek(in, data, SEEK_HOLE);
		if (hole < 0)
			goto fail;
		while (data < hole) {
			off_t o_in = data, o_out = data;
			ssize_t n = copy_file_range(in, &o_in, out, &o_out,
						    (size_t)(hole - data), 0);

			if (n < 0 && errno == EINTR)
				continue;
			if (n <= 0) {
				if (n == 0)
					errno = EIO;
				goto fail;
			}
			data += n;
		}
	}
	if (errno != ENXIO)
		goto fail;
	close(in);
	if (close(out) < 0) {
		ret = -errno;
		unlink(dst);
	}
	return ret;
fail:
	ret = -errno;
	close(in);
	if (out >= 0) {
		close(out);
		unlink(dst);
	}
	return ret;
}

/* ---- regular expression size ------------------------------------------ */

#define RE_DEPTH 32
/* glibc's regcomp takes seconds to minutes on repetitions stacked four
 * deep ("a{,5}{2,5}{2,}{,4}": 1.6 s, one {,8} more: over 60 s) at a
 * size the count below lets through; three deep stays in milliseconds. */
#define RE_REPEAT_NEST 3

static size_t
re_add(size_t a, size_t b)
{
	return a > SIZE_MAX - b ? SIZE_MAX : a + b;
}

static size_t
re_mul(size_t a, size_t b)
{
	return b && a > SIZE_MAX / b ? SIZE_MAX : a * b;
}

static size_t
re_number(const char **sp)
{
	size_t v = 0;

	for (; **sp >= '0' && **sp <= '9'; (*sp)++)
		v = re_add(re_mul(v, 10), (size_t)(**sp - '0'));
	return v;
}

/* At '{': the copies "{m}", "{m,}" or "{m,n}" makes (at least 1), and *sp
 * at its '}'; 0 when it is no bound (a literal '{'). */
static size_t
re_bound(const char **sp)
{
	const char *s = *sp + 1, *digits = s;
	size_t m = re_number(&s), n = m;

	if (s == digits && *s != ',')
		return 0;
	if (*s == ',') {  /* {,n} is {0,n} */
		s++;
		digits = s;
		n = re_number(&s);
		if (s == digits)
			n = re_add(m, 1);  /* {m,}: m copies and a star */
	}
	if (*s != '}')
		return 0;
	*sp = s;
	n = n > m ? n : m;
	return n ? n : 1;
}

/* At '[': the ']' that ends the bracket expression (or the last byte). */
static const char *
re_bracket(const char *s)
{
	const char *p = s + 1, *end;

	if (*p == '^')
		p++;
	if (*p == ']')
		p++;
	while (*p && *p != ']') {
		if (*p == '[' && (p[1] == ':' || p[1] == '.' || p[1] == '=')) {
			char close[3] = { p[1], ']', '\0' };

			end = strstr(p + 2, close);
			if (end) {
				p = end + 2;
				continue;
			}
		}
		p++;
	}
	return *p ? p : p - 1;
}

/* A repetition of the last piece at depth d: 1 when that nests too deep. */
static int
re_nest(int *rep, int *rep_max, int d)
{
	rep[d]++;
	if (rep[d] > rep_max[d])
		rep_max[d] = rep[d];
	return rep[d] > RE_REPEAT_NEST;
}

size_t
regex_cost(const char *re)
{
	size_t sum[RE_DEPTH + 1], last[RE_DEPTH + 1], k;
	/* rep: repetitions nested in the last piece; rep_max: in the group */
	int rep[RE_DEPTH + 1], rep_max[RE_DEPTH + 1];
	const char *s;
	int d = 0;

	/* sum: the elements of each open group so far; last: those of its
	 * last piece, what a repetition multiplies. */
	sum[0] = last[0] = 0;
	rep[0] = rep_max[0] = 0;
	for (s = re; *s; s++) {
		switch (*s) {
		case '\\':
			if (s[1] >= '1' && s[1] <= '9')
				return SIZE_MAX;
			if (s[1])
				s++;
			break;
		case '[':
			s = re_bracket(s);
			break;
		case '(':
			if (d == RE_DEPTH)
				return SIZE_MAX;
			d++;
			sum[d] = last[d] = 0;
			rep[d] = rep_max[d] = 0;
			continue;
		case ')':
			if (d == 0)
				break;
			k = re_add(sum[d], 1);
			d--;
			sum[d] = re_add(sum[d], k);
			last[d] = k;
			rep[d] = rep_max[d + 1];
			if (rep[d] > rep_max[d])
				rep_max[d] = rep[d];
			continue;
		case '|':
			last[d] = 0;
			rep[d] = 0;
			continue;
		case '*':
		case '+':
		case '?':
			if (re_nest(rep, rep_max, d))
				return SIZE_MAX;
			sum[d] = re_add(sum[d], last[d]);
			last[d] = re_mul(last[d], 2);
			continue;
		case '{':
			k = re_bound(&s);
			if (!k)
				break;
			if (re_nest(rep, rep_max, d))
				return SIZE_MAX;
			sum[d] = re_add(sum[d] - last[d], re_mul(last[d], k));
			last[d] = re_mul(last[d], k);
			continue;
		}
		sum[d] = re_add(sum[d], 1);
		last[d] = 1;
		rep[d] = 0;
	}
	while (d > 0) {
		k = re_add(sum[d], 1);
		d--;
		sum[d] = re_add(sum[d], k);
	}
	return sum[0];
}
