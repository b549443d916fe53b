#include "common/bounded.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* Up to and including the first newline in p[0..len), if there is one
 * within limit bytes; else 0 (a line that long is cut where it is). */
static size_t
line_skip(const char *p, size_t len, size_t limit)
{
	const char *nl = memchr(p, '\n', len < limit ? len : limit);

	return nl ? (size_t)(nl - p) + 1 : 0;
}

size_t
sb_add_keep_tail(struct strbuf *sb, size_t max, const void *data, size_t len)
{
	const char *p = data;
	size_t drop = 0, skip;

	if (len > max) {
		drop = sb->len + (len - max);
		sb_consume(sb, sb->len);
		p += len - max;
		len = max;
		skip = line_skip(p, len, max / 4);
		p += skip;
		len -= skip;
		drop += skip;
	} else if (sb->len + len > max) {
		/* A quarter more than needed: the memmove is not paid for
		 * every small append. */
		drop = sb->len + len - max + max / 4;
		if (drop > sb->len)
			drop = sb->len;
		drop += line_skip(sb->data + drop, sb->len - drop, max / 4);
		sb_consume(sb, drop);
	}
	sb_add(sb, p, len);
	return drop;
}

size_t
sb_add_keep_head(struct strbuf *sb, size_t max, const void *data, size_t len)
{
	size_t room = max > sb->len ? max - sb->len : 0;
	size_t n = len < room ? len : room;

	if (n)
		sb_add(sb, data, n);
	return len - n;
}

void
tailbuf_init(struct tailbuf *tb, size_t max)
{
	sb_init(&tb->tb_sb);
	tb->tb_max = max;
	tb->tb_dropped = 0;
}

void
tailbuf_free(struct tailbuf *tb)
{
	sb_free(&tb->tb_sb);
	tb->tb_dropped = 0;
}

size_t
tailbuf_add(struct tailbuf *tb, const void *data, size_t len)
{
	size_t drop = sb_add_keep_tail(&tb->tb_sb, tb->tb_max, data, len);

	tb->tb_dropped += drop;
	return drop;
}

void
tailbuf_render(const struct tailbuf *tb, struct strbuf *out,
	       const char *note)
{
	if (tb->tb_dropped)
		sb_addf(out, "[... %llu bytes dropped%s%s ...]\n",
			(unsigned long long)tb->tb_dropped, note ? "; " : "",
			note ? note : "");
	if (tb->tb_sb.len)
		sb_add(out, tb->tb_sb.data, tb->tb_sb.len);
}

int
rotfile_open(struct rotfile *rf, const char *path, uint64_t max)
{
	struct stat st;

	memset(rf, 0, sizeof(*rf));
	rf->rf_path = xstrdup(path);
	rf->rf_max = max < ROTFILE_MIN ? ROTFILE_MIN : max;
	rf->rf_fd = open(path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0600);
	if (rf->rf_fd < 0)
		return -errno;
	if (fstat(rf->rf_fd, &st) == 0)
		rf->rf_size = (uint64_t)st.st_size;
	return 0;
}

void
rotfile_close(struct rotfile *rf)
{
	if (rf->rf_fd >= 0)
		close(rf->rf_fd);
	rf->rf_fd = -1;
	free(rf->rf_path);
	rf->rf_path = NULL;
}

static int
rotfile_rotate(struct rotfile *rf)
{
	char *old = xasprintf("%s.1", rf->rf_path);
	struct stat st;
	char marker[512];
	int n, ret;

	uint64_t old_size = stat(old, &st) == 0 ? (uint64_t)st.st_size : 0;
	int fd;

	/* On failure the file stays as it is: full, but never past the bound. */
	ret = rename(rf->rf_path, old) < 0 ? -errno : 0;
	free(old);
	if (ret < 0)
		return ret;
	fd = open(rf->rf_path, O_WRONLY | O_APPEND | O_CREAT | O_TRUNC |
				       O_CLOEXEC, 0600);
	if (fd < 0)
		return -errno;
	close(rf->rf_fd);
	rf->rf_fd = fd;
	rf->rf_dropped += old_size;
	rf->rf_size = 0;
	rf->rf_rotations++;
	n = snprintf(marker, sizeof(marker),
		     "[... this file reached its bound of %llu bytes and "
		     "rotated (%u so far): the previous part is in %s.1, %llu "
		     "bytes older than that were dropped ...]\n",
		     (unsigned long long)rf->rf_max, rf->rf_rotations,
		     strrchr(rf->rf_path, '/') ? strrchr(rf->rf_path, '/') + 1 :
						 rf->rf_path,
		     (unsigned long long)rf->rf_dropped);
	ret = write_all(rf->rf_fd, marker, (size_t)n);
	if (ret == 0)
		rf->rf_size += (uint64_t)n;
	return ret;
}

/* write_all that says how far it got: 0, or -errno with *done bytes written. */
static int
write_counted(int fd, const char *p, size_t len, size_t *done)
{
	*done = 0;
	while (*done < len) {
		ssize_t n = write(fd, p + *done, len - *done);

		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			return n < 0 ? -errno : -EIO;
		*done += (size_t)n;
	}
	return 0;
}

/* A full disk lost rf_lost bytes: say so in the file once there is room. */
static int
rotfile_mark_lost(struct rotfile *rf)
{
	const char *name = strrchr(rf->rf_path, '/');
	char marker[512];
	size_t done;
	int n, ret;

	n = snprintf(marker, sizeof(marker), "\n[attestfs: %llu bytes of %s "
		     "lost: no room on disk]\n", (unsigned long long)rf->rf_lost,
		     name ? name + 1 : rf->rf_path);
	if (n < 0 || (size_t)n >= sizeof(marker))
		n = (int)sizeof(marker) - 1;
	ret = write_counted(rf->rf_fd, marker, (size_t)n, &done);
	rf->rf_size += done;
	if (ret == 0)
		rf->rf_lost = 0;
	return ret;
}

int
rotfile_write(struct rotfile *rf, const void *data, size_t len)
{
	const char *p = data;
	size_t done;
	int ret;

	if (rf->rf_fd < 0)
		return -EBADF;
	if (rf->rf_lost && (ret = rotfile_mark_lost(rf)) < 0) {
		rf->rf_lost += len;
		return ret;
	}
	while (len) {
		size_t n = len;

		if (rf->rf_size + len > rf->rf_max) {
			if (rf->rf_size >= rf->rf_max / 2) {
				ret = rotfile_rotate(rf);
				if (ret < 0) {
					rf->rf_lost += len;
					return ret;
				}
			}
			/* What fits now; the rest after the next rotation. */
			if (rf->rf_size + n > rf->rf_max)
				n = (size_t)(rf->rf_max - rf->rf_size);
		}
		ret = write_counted(rf->rf_fd, p, n, &done);
		rf->rf_size += done;
		if (ret < 0) {
			rf->rf_lost += len - done;
			return ret;
		}
		p += n;
		len -= n;
	}
	return 0;
}
