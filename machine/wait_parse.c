/*
 * The syntax of a wait condition, as written to <m>/wait:
 * "[timeout=SECS] KIND ARG...". One row a kind: its keyword and what
 * checks the rest (wait.c runs the waits).
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "machine/internal.h"

#define WAIT_REGEX_MAX 2048

static int parse_status(struct machine *m, const char *word, char *arg,
			struct wait_spec *out);
static int parse_regex(struct machine *m, const char *word, char *arg,
		       struct wait_spec *out);
static int parse_unit(struct machine *m, const char *word, char *arg,
		      struct wait_spec *out);
static int parse_port(struct machine *m, const char *word, char *arg,
		      struct wait_spec *out);

/* Indexed by kind: the keyword and what checks the rest of the condition
 * (NULL: any text; it may cut arg into words). */
static const struct wait_syntax {
	const char *word;
	int (*parse)(struct machine *m, const char *word, char *arg,
		     struct wait_spec *out);
} wait_syntax[] = {
	[WAIT_STATUS] = { "status", parse_status },
	[WAIT_CONSOLE] = { "console", parse_regex },
	[WAIT_SUCCEEDS] = { "succeeds", NULL },
	[WAIT_FAILS] = { "fails", NULL },
	[WAIT_FILE] = { "file", NULL },
	[WAIT_UNIT] = { "unit", parse_unit },
	[WAIT_PORT] = { "port", parse_port },
	[WAIT_SCREEN] = { "screen", parse_regex },
	[WAIT_SOCKET] = { "socket", NULL },
};

#define N_WAIT_KINDS (sizeof(wait_syntax) / sizeof(wait_syntax[0]))

static const char *const status_words[] = { "stopped", "starting", "running",
					    "paused", "stopping", "crashed" };

static char *
skip_spaces(char *p)
{
	while (*p == ' ')
		p++;
	return p;
}

static int
parse_status(struct machine *m, const char *word, char *arg,
	     struct wait_spec *out)
{
	size_t j;

	for (j = 0; j < sizeof(status_words) / sizeof(status_words[0]); j++)
		if (!strcmp(arg, status_words[j]))
			return 0;
	machine_logl(m, "wait: unknown status '%s' (expected: stopped | "
		     "starting | running | paused | stopping | crashed)", arg);
	return -EINVAL;
}

static int
parse_regex(struct machine *m, const char *word, char *arg,
	    struct wait_spec *out)
{
	regex_t re;
	char msg[256];
	int rc;

	if (regex_cost(arg) > WAIT_REGEX_MAX) {
		/* regcomp would hold the lock for minutes and take gigabytes */
		machine_logl(m, "wait: regular expression '%.200s' too big: "
			     "repetitions expand it past %d elements, or it has "
			     "back-references", arg, WAIT_REGEX_MAX);
		return -EINVAL;
	}
	rc = regcomp(&re, arg, REG_EXTENDED | REG_NOSUB);
	if (rc) {
		regerror(rc, &re, msg, sizeof(msg));
		machine_logl(m, "wait: bad regular expression '%s': %s", arg,
			     msg);
		return -EINVAL;
	}
	regfree(&re);
	return 0;
}

/*
 * Split "unit NAME [STATE] [user=NAME]" and "port N [closed]" after their
 * first word (cut off in arg): the second word or NULL, and for a unit its
 * user or NULL. -EINVAL when there is more.
 */
static int
parse_words(struct machine *m, const char *word, char *arg, int has_user,
	    char **second_out, char **user_out)
{
	char *second = strchr(arg, ' '), *third = NULL, *user = NULL;

	if (second) {
		*second++ = '\0';
		second = skip_spaces(second);
		third = strchr(second, ' ');
	}
	if (third) {
		*third++ = '\0';
		third = skip_spaces(third);
	}
	if (has_user && third && !strncmp(third, "user=", 5)) {
		user = third + 5;
		third = NULL;
	} else if (has_user && second && !third &&
		   !strncmp(second, "user=", 5)) {
		user = second + 5;
		second = NULL;
	}
	if (third || (second && strchr(second, ' '))) {
		machine_logl(m, "wait: %s: unexpected '%s'", word,
			     third ? third : second);
		return -EINVAL;
	}
	*second_out = second;
	*user_out = user;
	return 0;
}

static int
parse_unit(struct machine *m, const char *word, char *arg,
	   struct wait_spec *out)
{
	char *state, *user;
	int ret = parse_words(m, word, arg, 1, &state, &user);

	if (ret < 0)
		return ret;
	if (user && (!*user || strspn(user, "abcdefghijklmnopqrstuvwxyz"
					    "ABCDEFGHIJKLMNOPQRSTUVWXYZ"
					    "0123456789_.-") != strlen(user))) {
		machine_logl(m, "wait: unit: bad user name '%s'", user);
		return -EINVAL;
	}
	if (state && strspn(state, "abcdefghijklmnopqrstuvwxyz-") !=
			     strlen(state)) {
		machine_logl(m, "wait: unit: bad state '%s'", state);
		return -EINVAL;
	}
	out->want = state && *state ? xstrdup(state) : NULL;
	out->user = user ? xstrdup(user) : NULL;
	return 0;
}

static int
parse_port(struct machine *m, const char *word, char *arg,
	   struct wait_spec *out)
{
	char *closed, *user, *end;
	long port;
	int ret = parse_words(m, word, arg, 0, &closed, &user);

	if (ret < 0)
		return ret;
	port = strtol(arg, &end, 10);
	if (*end || port <= 0 || port > 65535 ||
	    (closed && strcmp(closed, "closed"))) {
		machine_logl(m, "wait: port: expected 'port N [closed]' with "
			     "1 <= N <= 65535");
		return -EINVAL;
	}
	out->want = closed && *closed ? xstrdup(closed) : NULL;
	return 0;
}

/* "timeout=SECS " at *p; s is the whole condition, for the log. */
static int
parse_timeout(struct machine *m, const char *s, char **p,
	      struct wait_spec *out)
{
	char *end;
	long v = strtol(*p + 8, &end, 10);

	if (end == *p + 8 || *end != ' ' || v <= 0 || v > 86400 * 365) {
		machine_logl(m, "wait: bad timeout in '%s' (expected "
			     "timeout=SECS)", s);
		return -EINVAL;
	}
	out->timeout = (int)v;
	*p = skip_spaces(end);
	return 0;
}

static const struct wait_syntax *
wait_syntax_find(const char *word)
{
	size_t i;

	for (i = 0; i < N_WAIT_KINDS; i++)
		if (!strcmp(word, wait_syntax[i].word))
			return &wait_syntax[i];
	return NULL;
}

const char *
wait_kind_name(enum wait_kind kind)
{
	return wait_syntax[kind].word;
}

/* The condition s, trimmed; it cuts s into words. */
static int
parse_condition(struct machine *m, char *s, struct wait_spec *out)
{
	const struct wait_syntax *ws;
	char *p = skip_spaces(s), *word;
	int ret;

	if (!strncmp(p, "timeout=", 8)) {
		ret = parse_timeout(m, s, &p, out);
		if (ret < 0)
			return ret;
	}
	word = p;
	while (*p && *p != ' ')
		p++;
	if (*p)
		*p++ = '\0';
	p = skip_spaces(p);
	ws = wait_syntax_find(word);
	if (!ws) {
		machine_logl(m, "wait: unknown condition '%s' (expected: "
			     "[timeout=SECS] status WORD | console REGEX | "
			     "succeeds CMD | fails CMD | file PATH | unit NAME "
			     "[STATE] | port N [closed] | socket PATH | "
			     "screen REGEX)", word);
		return -EINVAL;
	}
	out->kind = (enum wait_kind)(ws - wait_syntax);
	if (!*p) {
		machine_logl(m, "wait: '%s' needs an argument", word);
		return -EINVAL;
	}
	if (ws->parse) {
		ret = ws->parse(m, word, p, out);
		if (ret < 0)
			return ret;
	}
	out->arg = xstrdup(p);
	return 0;
}

int
wait_parse(struct machine *m, const char *text, size_t len,
	   struct wait_spec *out)
{
	char *s;
	int ret;

	memset(out, 0, sizeof(*out));
	while (len && (text[len - 1] == '\n' || text[len - 1] == ' '))
		len--;
	if (memchr(text, '\0', len)) {
		machine_logl(m, "wait: the condition contains a NUL byte");
		return -EINVAL;
	}
	s = xmalloc(len + 1);
	memcpy(s, text, len);
	s[len] = '\0';
	ret = parse_condition(m, s, out);
	free(s);
	return ret;
}

void
wait_spec_free(struct wait_spec *spec)
{
	free(spec->arg);
	free(spec->want);
	free(spec->user);
}

int
tx_wait_parse(struct machine *m, const char *text, size_t len)
{
	struct wait_spec spec;
	int ret = wait_parse(m, text, len, &spec);

	if (ret == 0)
		wait_spec_free(&spec);
	return ret;
}
