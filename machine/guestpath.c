/*
 * Guest symlink targets clamped at the guest root. Lexical on purpose: the
 * host's kernel walks the answer through files/ itself, so "a/../x" must not
 * depend on what "a" is (a link "a" to somewhere deep would otherwise let a
 * chain of ".." climb out of files/).
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "common/util.h"
#include "machine/guestpath.h"

struct gp_comp {
	const char *s;
	size_t len;
};

/* Push the components of s onto st[0..n): "" and "." vanish, ".." pops but
 * never below the root. Returns the new depth. */
static size_t
gp_walk(struct gp_comp *st, size_t n, const char *s, size_t len)
{
	const char *end = s + len;

	while (s < end) {
		const char *slash = memchr(s, '/', (size_t)(end - s));
		const char *e = slash ? slash : end;
		size_t cl = (size_t)(e - s);

		if (cl == 2 && s[0] == '.' && s[1] == '.') {
			if (n)
				n--;
		} else if (cl && !(cl == 1 && s[0] == '.')) {
			st[n].s = s;
			st[n].len = cl;
			n++;
		}
		s = e + 1;
	}
	return n;
}

static int
gp_same(const struct gp_comp *a, const struct gp_comp *b)
{
	return a->len == b->len && !memcmp(a->s, b->s, a->len);
}

/* "../" x up, then st[from..n) joined by '/'; "." when that is nothing. */
static char *
gp_relative(const struct gp_comp *st, size_t from, size_t n, size_t up,
	    int trailing_slash)
{
	struct strbuf sb;
	size_t i;

	sb_init(&sb);
	for (i = 0; i < up; i++)
		sb_adds(&sb, i ? "/.." : "..");
	for (i = from; i < n; i++) {
		if (sb.len)
			sb_adds(&sb, "/");
		sb_add(&sb, st[i].s, st[i].len);
	}
	if (!sb.len)
		sb_adds(&sb, ".");
	else if (trailing_slash && from < n)
		sb_adds(&sb, "/");
	return sb_detach(&sb, NULL);
}

int
guestpath_link_target(const char *link, const char *target, size_t len,
		      char **out)
{
	const char *name;
	struct gp_comp *dir, *st;
	size_t dlen, dn, n, common, cap;

	*out = NULL;
	if (!link || link[0] != '/' || !target || !len ||
	    memchr(target, '\0', len))
		return -EINVAL;
	name = strrchr(link, '/') + 1;
	if (!*name || !strcmp(name, ".") || !strcmp(name, ".."))
		return -EINVAL;
	dlen = (size_t)(name - link);
	/* a component takes at least two bytes with its '/' */
	cap = dlen / 2 + len / 2 + 2;
	dir = xcalloc(cap, sizeof(*dir));
	st = xcalloc(cap, sizeof(*st));
	dn = gp_walk(dir, 0, link, dlen);
	n = 0;
	if (target[0] != '/') {
		memcpy(st, dir, dn * sizeof(*dir));
		n = dn;
	}
	n = gp_walk(st, n, target, len);
	for (common = 0; common < dn && common < n; common++)
		if (!gp_same(&dir[common], &st[common]))
			break;
	*out = gp_relative(st, common, n, dn - common,
			   target[len - 1] == '/');
	free(dir);
	free(st);
	return 0;
}
