/*
 * machine/guestpath.c: guest symlink targets clamped at the guest root and
 * written relative to the link, so that the host's kernel following them
 * under files/ never leaves files/.
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "common/util.h"
#include "machine/guestpath.h"

static void
expect_target(const char *link, const char *target, const char *want)
{
	char *out = (char *)1;
	int ret = guestpath_link_target(link, target, strlen(target), &out);

	if (ret || strcmp(out, want))
		print_error("%s -> '%s': got %d '%s', want '%s'\n", link, target,
			    ret, ret ? "" : out, want);
	assert_int_equal(ret, 0);
	assert_string_equal(out, want);
	free(out);
}

static void
test_relative_escape_is_clamped(void **state)
{
	/* the reported hole: four ".." from /tmp reached the host's /etc */
	expect_target("/tmp/l", "../../../../etc/hostname", "../etc/hostname");
	expect_target("/tmp/l", "../etc/hostname", "../etc/hostname");
	expect_target("/a/b/c/l", "../../../../../../../x", "../../../x");
	expect_target("/l", "../../x", "x");
	expect_target("/l", "..", ".");
	expect_target("/tmp/l", "../../..", "..");
	expect_target("/tmp/esc/l", "../../../../../canary", "../../canary");
}

static void
test_absolute_target_is_the_guests(void **state)
{
	expect_target("/tmp/ln/abs", "/tmp/ln/t", "t");
	expect_target("/tmp/l", "/etc/hostname", "../etc/hostname");
	expect_target("/a/b/l", "/a/c", "../c");
	expect_target("/a/b/l", "/a/b", ".");
	expect_target("/a/b/l", "/a/b/c/d", "c/d");
	expect_target("/l", "/etc/x", "etc/x");
	/* ".." right after the root stays at the root */
	expect_target("/tmp/l", "/../../etc/hostname", "../etc/hostname");
	expect_target("/tmp/esc/l", "/../../../canary", "../../canary");
	expect_target("/tmp/l", "/..", "..");
	expect_target("/a/b/c/l", "/", "../../..");
	expect_target("/l", "/", ".");
	expect_target("/l", "//", ".");
	expect_target("/tmp/l", "///etc//./hostname", "../etc/hostname");
}

static void
test_plain_relative_targets_stay_as_they_are(void **state)
{
	expect_target("/tmp/l", "t", "t");
	expect_target("/tmp/l", "./t", "t");
	expect_target("/tmp/l", "a//b/./c", "a/b/c");
	expect_target("/a/b/l", "../c/d", "../c/d");
	expect_target("/a/b/l", "../b/c", "c");
	expect_target("/a/b/l", "../../a/b/../b/c", "c");
	expect_target("/a/b/l", "x/../../y", "../y");
	expect_target("/tmp/l", ".", ".");
	expect_target("/tmp/l", "l", "l");  /* a self-link stays one */
}

static void
test_names_are_not_dots(void **state)
{
	expect_target("/tmp/l", ".../..a/.x/a..", ".../..a/.x/a..");
	expect_target("/tmp/l", "-f", "-f");
	expect_target("/tmp/l", "--", "--");
	expect_target("/tmp/l", "a b\nc'd\\e", "a b\nc'd\\e");
	expect_target("/tmp/l", "../$(reboot)", "../$(reboot)");
}

static void
test_trailing_slash_is_kept_after_a_name(void **state)
{
	expect_target("/tmp/l", "sub/", "sub/");
	expect_target("/tmp/l", "/etc/", "../etc/");
	expect_target("/tmp/l", "sub//", "sub/");
	expect_target("/tmp/l", "../", "..");
	expect_target("/tmp/l", "/", "..");
	expect_target("/tmp/l", "../tmp/", ".");
}

static void
test_untidy_link_paths(void **state)
{
	expect_target("/a//b/./l", "x", "x");
	expect_target("//l", "../x", "x");
	expect_target("/a/../b/l", "../../x", "../x");
}

static void
test_bad_input_is_einval(void **state)
{
	char *out = (char *)1;

	assert_int_equal(guestpath_link_target("tmp/l", "x", 1, &out), -EINVAL);
	assert_null(out);
	assert_int_equal(guestpath_link_target("/", "x", 1, &out), -EINVAL);
	assert_int_equal(guestpath_link_target("/tmp/", "x", 1, &out), -EINVAL);
	assert_int_equal(guestpath_link_target("/tmp/..", "x", 1, &out), -EINVAL);
	assert_int_equal(guestpath_link_target("/tmp/.", "x", 1, &out), -EINVAL);
	assert_int_equal(guestpath_link_target("", "x", 1, &out), -EINVAL);
	assert_int_equal(guestpath_link_target(NULL, "x", 1, &out), -EINVAL);
	assert_int_equal(guestpath_link_target("/l", "", 0, &out), -EINVAL);
	assert_int_equal(guestpath_link_target("/l", NULL, 1, &out), -EINVAL);
	assert_int_equal(guestpath_link_target("/l", "a\0b", 3, &out), -EINVAL);
	assert_null(out);
	/* only len bytes count: the rest of the buffer is not the target */
	assert_int_equal(guestpath_link_target("/tmp/l", "abc/../../../x", 3,
					       &out), 0);
	assert_string_equal(out, "abc");
	free(out);
}

static void
test_ten_thousand_dotdots(void **state)
{
	struct strbuf sb;
	char *out;
	int i;

	sb_init(&sb);
	for (i = 0; i < 10000; i++)
		sb_adds(&sb, "../");
	sb_adds(&sb, "x");
	assert_int_equal(guestpath_link_target("/a/b/l", sb.data, sb.len, &out),
			 0);
	assert_string_equal(out, "../../x");
	free(out);
	sb_free(&sb);
}

/*
 * Every combination of a few components, for links at depth 1 to 4: walk the
 * answer the way the host's kernel would from the link's directory. It must
 * never climb above the root (files/), use no "." or "" components, not be
 * absolute, and end where an independent clamp of dir + target ends.
 */
#define MAXC 64

static size_t
split(const char *s, char parts[][16], size_t n)
{
	const char *p = s;

	while (*p) {
		size_t l = strcspn(p, "/");

		if (l) {
			memcpy(parts[n], p, l);
			parts[n][l] = '\0';
			n++;
		}
		p += l;
		if (*p == '/')
			p++;
	}
	return n;
}

/* the reference: a stack of names, ".." popping unless empty */
static size_t
clamp(char in[][16], size_t n, char out[][16])
{
	size_t i, d = 0;

	for (i = 0; i < n; i++) {
		if (!strcmp(in[i], "."))
			continue;
		if (!strcmp(in[i], "..")) {
			d -= d > 0;
			continue;
		}
		strcpy(out[d++], in[i]);
	}
	return d;
}

static void
check_walk(const char *dir, const char *target)
{
	char link[64], in[MAXC][16], want[MAXC][16], pos[MAXC][16];
	char ans[MAXC][16];
	size_t n, nw, d, na, i;
	int climbing = 1;
	char *out;

	snprintf(link, sizeof(link), "%s/l", dir);
	assert_int_equal(guestpath_link_target(link, target, strlen(target),
					       &out), 0);
	assert_true(out[0] != '/');
	n = target[0] == '/' ? 0 : split(dir, in, 0);
	n = split(target, in, n);
	nw = clamp(in, n, want);
	d = clamp(in, split(dir, in, 0), pos);
	if (strcmp(out, ".")) {
		na = split(out, ans, 0);
		for (i = 0; i < na; i++) {
			assert_string_not_equal(ans[i], ".");
			if (!strcmp(ans[i], "..")) {
				/* all ".." lead; never above the root */
				assert_true(climbing);
				assert_true(d > 0);
				d--;
			} else {
				climbing = 0;
				strcpy(pos[d++], ans[i]);
			}
		}
		assert_null(strstr(out, "//"));
	}
	if (d != nw)
		print_error("%s -> %s: '%s'\n", link, target, out);
	assert_int_equal(d, nw);
	for (i = 0; i < d; i++)
		assert_string_equal(pos[i], want[i]);
	free(out);
}

static void
test_every_walk_stays_inside(void **state)
{
	static const char *const dirs[] = { "", "/a", "/a/b", "/tmp/a/b" };
	static const char *const comps[] = { "..", ".", "a", "b", "c", "" };
	const size_t nc = sizeof(comps) / sizeof(comps[0]);
	size_t di, len, code, total = 0;

	for (di = 0; di < sizeof(dirs) / sizeof(dirs[0]); di++) {
		for (len = 1; len <= 5; len++) {
			size_t combos = 1, k;

			for (k = 0; k < len; k++)
				combos *= nc;
			for (code = 0; code < combos * 2; code++) {
				char t[64] = "";
				size_t c = code / 2;

				if (code % 2)
					strcat(t, "/");
				for (k = 0; k < len; k++, c /= nc) {
					if (k)
						strcat(t, "/");
					strcat(t, comps[c % nc]);
				}
				if (!*t)
					continue;
				check_walk(dirs[di], t);
				total++;
			}
		}
	}
	assert_true(total > 30000);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_relative_escape_is_clamped),
		cmocka_unit_test(test_absolute_target_is_the_guests),
		cmocka_unit_test(test_plain_relative_targets_stay_as_they_are),
		cmocka_unit_test(test_names_are_not_dots),
		cmocka_unit_test(test_trailing_slash_is_kept_after_a_name),
		cmocka_unit_test(test_untidy_link_paths),
		cmocka_unit_test(test_bad_input_is_einval),
		cmocka_unit_test(test_ten_thousand_dotdots),
		cmocka_unit_test(test_every_walk_stays_inside),
	};

	return cmocka_run_group_tests_name("guestpath", tests, NULL, NULL);
}
