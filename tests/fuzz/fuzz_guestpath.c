/*
 * Guest symlink targets as files/ shows them (machine/guestpath.c): what a
 * hostile guest's readlink gives, for a link anywhere in the tree. The
 * input is the link's path, a newline, then the target. Oracle: walked by
 * the host from the link's directory, the answer never climbs above
 * files/ and ends where the target, clamped at the guest root, points.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/util.h"
#include "machine/guestpath.h"
#include "tests/fuzz/fuzz.h"

#define MAXC 4096

struct path {
	const char *c[MAXC];
	size_t len[MAXC];
	size_t n;
};

/* Walk s from p; clamp: ".." at the root stays there, else it is a climb
 * out of files/ (returns -1). */
static int
walk(struct path *p, const char *s, size_t len, int clamp)
{
	size_t i = 0;

	while (i < len) {
		size_t j = i;

		while (j < len && s[j] != '/')
			j++;
		if (j - i == 2 && s[i] == '.' && s[i + 1] == '.') {
			if (p->n)
				p->n--;
			else if (!clamp)
				return -1;
		} else if (j > i && !(j - i == 1 && s[i] == '.')) {
			if (p->n == MAXC)
				return -2;
			p->c[p->n] = s + i;
			p->len[p->n++] = j - i;
		}
		i = j + 1;
	}
	return 0;
}

static int
same(const struct path *a, const struct path *b)
{
	size_t i;

	if (a->n != b->n)
		return 0;
	for (i = 0; i < a->n; i++)
		if (a->len[i] != b->len[i] || memcmp(a->c[i], b->c[i], a->len[i]))
			return 0;
	return 1;
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static struct path dir, want, got;
	const char *nl = memchr(data, '\n', size), *target;
	struct strbuf link;
	size_t i, tlen;
	char *out = NULL;

	if (!nl || memchr(data, '\0', size))
		return 0;
	target = nl + 1;
	tlen = size - (size_t)(nl + 1 - (const char *)data);
	/* A link's path from FUSE: "/" and names, no "", "." or "..". */
	dir.n = 0;
	if (walk(&dir, (const char *)data, (size_t)(nl - (const char *)data), 1))
		return 0;
	if (!dir.n)
		return 0;
	sb_init(&link);
	for (i = 0; i < dir.n; i++) {
		sb_adds(&link, "/");
		sb_add(&link, dir.c[i], dir.len[i]);
	}
	dir.n--;  /* the link's directory */
	if (guestpath_link_target(link.data, target, tlen, &out) < 0) {
		if (tlen)
			abort();  /* only an empty target is refused */
		sb_free(&link);
		return 0;
	}
	want = target[0] == '/' ? (struct path){ .n = 0 } : dir;
	if (walk(&want, target, tlen, 1) < 0 || out[0] == '/')
		abort();
	got = dir;
	if (walk(&got, out, strlen(out), 0) == -1) {
		fprintf(stderr, "%s -> %.*s: %s climbs out\n", link.data,
			(int)tlen, target, out);
		abort();
	}
	if (!same(&got, &want)) {
		fprintf(stderr, "%s -> %.*s: %s ends elsewhere\n", link.data,
			(int)tlen, target, out);
		abort();
	}
	free(out);
	sb_free(&link);
	return 0;
}
