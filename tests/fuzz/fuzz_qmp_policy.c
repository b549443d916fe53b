/*
 * What <m>/qmp lets through (machine/qmp_policy.c), as a user writes it.
 * The first byte's low bit is -o host_access. Oracles beyond the
 * sanitizers: every refusal says why, host_access never refuses with EPERM;
 * what passes, written out again as tx.c hands it to QEMU, passes again;
 * and an HMP line that passes names the same command (and info
 * subcommand) when split the way QEMU splits it (at any isspace() or '/'),
 * so no spelling makes QEMU run another command than the one checked.
 */
#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/util.h"
#include "machine/qmp_policy.h"
#include "tests/fuzz/fuzz.h"

/* monitor/hmp.c's get_command_name(): the word at *p, *p moves past it. */
static size_t
qemu_word(const char **p, const char **word)
{
	const char *s = *p;
	size_t n = 0;

	while (isspace((unsigned char)*s))
		s++;
	*word = s;
	while (s[n] && s[n] != '/' && !isspace((unsigned char)s[n]))
		n++;
	*p = s + n;
	return n;
}

/* qmp_policy.c's reading: blanks are ' ' and '\t' only. */
static size_t
policy_word(const char **p, const char **word)
{
	const char *s = *p;
	size_t n = 0;

	while (*s == ' ' || *s == '\t')
		s++;
	*word = s;
	while (s[n] && s[n] != ' ' && s[n] != '\t')
		n++;
	*p = s + n;
	return n;
}

static void
check_hmp(json_object *req)
{
	json_object *args, *line;
	const char *q, *p, *qw, *pw;
	size_t qn, pn;

	if (!json_object_object_get_ex(req, "arguments", &args) ||
	    !json_object_object_get_ex(args, "command-line", &line))
		abort();
	q = p = json_object_get_string(line);
	qn = qemu_word(&q, &qw);
	pn = policy_word(&p, &pw);
	if (qn != pn || memcmp(qw, pw, qn))
		abort();
	if (qn == 4 && !memcmp(qw, "info", 4)) {
		/* "info" takes its subcommand through the same split */
		qn = qemu_word(&q, &qw);
		pn = policy_word(&p, &pw);
		if (qn != pn || memcmp(qw, pw, qn))
			abort();
	}
}

static int
check(const char *text, size_t len, unsigned flags, char **passed)
{
	json_object *req = NULL, *exec;
	char why[512];
	int ret = qmp_policy_parse(text, len, &req, why, sizeof(why));

	if (ret < 0) {
		if (ret != -EINVAL || !why[0] || req)
			abort();
		return ret;
	}
	ret = qmp_policy_check(req, flags, why, sizeof(why));
	if (ret != 0 && ret != -EINVAL && ret != -EPERM)
		abort();
	if ((ret && !why[0]) ||
	    (ret == -EPERM && (flags & QMP_POLICY_HOST_ACCESS)))
		abort();
	if (ret == 0 && !(flags & QMP_POLICY_HOST_ACCESS) &&
	    json_object_object_get_ex(req, "execute", &exec) &&
	    !strcmp(json_object_get_string(exec), "human-monitor-command"))
		check_hmp(req);
	if (ret == 0 && passed)
		*passed = xstrdup(json_object_to_json_string_ext(req,
			JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE));
	json_object_put(req);
	return ret;
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	unsigned flags;
	char *passed = NULL;

	if (size < 1)
		return 0;
	flags = data[0] & 1 ? QMP_POLICY_HOST_ACCESS : 0;
	if (check((const char *)data + 1, size - 1, flags, &passed) == 0) {
		if (check(passed, strlen(passed), flags, NULL) != 0) {
			fprintf(stderr, "passed, then refused as sent: %s\n",
				passed);
			abort();
		}
		free(passed);
	}
	return 0;
}
