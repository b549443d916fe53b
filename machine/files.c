/*
 * files/: the guest's own file system through the backdoor. Each call is one
 * guest command; data to the guest travels as base64 inside the command,
 * data from it through the ordinary frame. Paths and link targets go quoted
 * and after "--": a name like "-f" is a name, never an option.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "machine/guestcall.h"

static int
stat_done(struct cmd *c, struct mreq *r, void *arg)
{
	struct guest_stat st = { 0 };
	unsigned mode;
	unsigned long long size;
	long long mtime;

	if (c->status)
		return -ENOENT;
	if (!c->out.data || sscanf(c->out.data, "%x %llu %lld", &mode, &size,
				   &mtime) != 3)
		return -EIO;
	st.mode = (mode_t)mode;
	st.size = size;
	st.mtime = mtime;
	r->data = xmalloc(sizeof(st));
	memcpy(r->data, &st, sizeof(st));
	r->len = sizeof(st);
	return 0;
}

static void
call_path(struct machine *m, const char *before, const char *path,
	  const char *after, int control, guest_call_fn fn, struct mreq *r)
{
	guest_call_quoted(m, before, path, after, control, fn, NULL, r);
}

void
machine_file_stat(struct machine *m, const char *path, struct mreq *r)
{
	call_path(m, "stat -c '%f %s %Y' -- ", path, "", 1, stat_done, r);
}

void
machine_file_list(struct machine *m, const char *path, struct mreq *r)
{
	/* Builtins only: a glob and printf, NUL-separated names. */
	call_path(m, "cd -- ", path,
		  " && for f in * .*; do case $f in .|..) continue;; esac; "
		  "if [ -e \"$f\" ] || [ -L \"$f\" ]; then printf '%s\\0' \"$f\"; "
		  "fi; done", 1, guest_output_done, r);
}

void
machine_file_read(struct machine *m, const char *path, uint64_t offset,
		  struct mreq *r)
{
	char before[96], after[128];

	if (offset == 0) {
		snprintf(before, sizeof(before), "head -c %zu -- ", r->size);
		call_path(m, before, path, "", 0, guest_output_done, r);
		return;
	}
	/* dd seeks (busybox's tail -c +N reads from the start: every read
	 * of a big file would cost as much as the whole file). */
	snprintf(before, sizeof(before), "dd if=");
	snprintf(after, sizeof(after), " bs=65536 iflag=skip_bytes,count_bytes "
		 "skip=%" PRIu64 " count=%zu", offset, r->size);
	call_path(m, before, path, after, 0, guest_output_done, r);
}

static int
status_done(struct cmd *c, struct mreq *r, void *arg)
{
	return guest_errno(c);
}

static int
write_done(struct cmd *c, struct mreq *r, void *arg)
{
	int err = guest_errno(c);

	return err ? err : (int)(uintptr_t)arg;
}

void
machine_file_write(struct machine *m, const char *path, uint64_t offset,
		   const char *buf, size_t len, int trunc, struct mreq *r)
{
	struct strbuf sb, q;

	sb_init(&sb);
	sb_init(&q);
	sb_add_shell_quoted(&q, path, strlen(path));
	sb_adds(&sb, "printf %s '");
	shell_base64(&sb, buf, len);
	sb_adds(&sb, "' | base64 -d > $_atd/w && ");
	if (trunc && offset == 0) {
		sb_addf(&sb, "cat $_atd/w > %s", q.data);
	} else {
		/* Sequential writes append; anything else seeks with dd. */
		sb_addf(&sb, "if [ \"$(stat -c %%s -- %s)\" = %" PRIu64 " ]; then "
			"cat $_atd/w >> %s; else dd if=$_atd/w "
			"of=%s bs=1 seek=%" PRIu64 " conv=notrunc 2>/dev/null; fi",
			q.data, offset, q.data, q.data, offset);
	}
	sb_adds(&sb, "; s=$?; rm -f $_atd/w; exit $s");
	guest_call(m, sb.data, sb.len, 0, write_done, (void *)(uintptr_t)len, r);
	sb_free(&sb);
	sb_free(&q);
}

void
machine_file_create(struct machine *m, const char *path, mode_t mode,
		    struct mreq *r)
{
	char after[80];

	if (S_ISDIR(mode)) {
		call_path(m, "mkdir -- ", path, "", 1, status_done, r);
		return;
	}
	snprintf(after, sizeof(after), " && : > \"$f\" && chmod %o -- \"$f\"",
		 (unsigned)(mode & 07777));
	call_path(m, "f=", path, after, 1, status_done, r);
}

void
machine_file_remove(struct machine *m, const char *path, int dir,
		    struct mreq *r)
{
	call_path(m, dir ? "rmdir -- " : "rm -- ", path, "", 1, status_done, r);
}

void
machine_file_readlink(struct machine *m, const char *path, struct mreq *r)
{
	call_path(m, "readlink -- ", path, "", 1, guest_output_done, r);
}

/* Two words from the user, each quoted: never shell syntax. */
static void
call_two_paths(struct machine *m, const char *fmt, const char *a,
	       const char *b, struct mreq *r)
{
	struct strbuf qa, qb, sb;

	sb_init(&qa);
	sb_init(&qb);
	sb_init(&sb);
	sb_add_shell_quoted(&qa, a, strlen(a));
	sb_add_shell_quoted(&qb, b, strlen(b));
	sb_addf(&sb, fmt, qa.data, qb.data);
	guest_call(m, sb.data, sb.len, 1, status_done, NULL, r);
	sb_free(&qa);
	sb_free(&qb);
	sb_free(&sb);
}

void
machine_file_symlink(struct machine *m, const char *target, const char *path,
		     struct mreq *r)
{
	call_two_paths(m, "ln -s -- %s %s", target, path, r);
}

/*
 * rename(2), not mv(1): mv would move a file into an existing directory.
 * A directory may replace only an empty directory, a file only a file.
 */
void
machine_file_rename(struct machine *m, const char *from, const char *to,
		    struct mreq *r)
{
	call_two_paths(m, "a=%s; b=%s; [ \"$a\" = \"$b\" ] && exit 0; if [ -d \"$b\" ] && [ ! -L \"$b\" ]; then "
		       "if [ ! -d \"$a\" ] || [ -L \"$a\" ]; then "
		       "echo \"$b: Is a directory\" >&2; exit 1; fi; "
		       "rmdir -- \"$b\" || exit 1; "
		       "elif [ -e \"$b\" ] && [ -d \"$a\" ] && [ ! -L \"$a\" ]; then "
		       "echo \"$b: Not a directory\" >&2; exit 1; fi; "
		       "mv -f -- \"$a\" \"$b\"", from, to, r);
}

void
machine_file_chmod(struct machine *m, const char *path, mode_t mode,
		   struct mreq *r)
{
	char after[96];

	snprintf(after, sizeof(after), " && chmod %o -- \"$f\" && "
		 "stat -c '%%f %%s %%Y' -- \"$f\"", (unsigned)(mode & 07777));
	call_path(m, "f=", path, after, 1, stat_done, r);
}
