/*
 * Names and paths from the user that end up in guest shell commands or host
 * paths: guest paths and unit names (quoted into one word by
 * sb_add_shell_quoted, as files/ and units/ send them), machine names
 * (config_name_is_valid: clones, machines.json) and job names (used
 * unquoted in the guest's job directory). The first byte picks which.
 *
 * Oracles: a quoted word, read back by the POSIX shell's rules, is one
 * word equal to the input, and nothing in the command around it changes;
 * an accepted machine or job name has only characters that are plain in
 * a shell word and a path component, and is no "." or "..".
 */
#include "tests/fuzz/fuzz.h"
#include "tests/fuzz/fuzz_machine.h"

/*
 * The shell's reading of the words of s (no expansions: what quoting must
 * protect against is exactly what is not handled here, so anything special
 * outside quotes fails the check). Returns the number of words; the third
 * word (after "cmd --") is copied to *word.
 */
static int
sh_words(const char *s, size_t len, struct strbuf *word)
{
	size_t i = 0;
	int n = 0;

	while (i < len) {
		struct strbuf w;

		while (i < len && s[i] == ' ')
			i++;
		if (i == len)
			break;
		sb_init(&w);
		while (i < len && s[i] != ' ') {
			char c = s[i++];

			if (c == '\'') {
				const char *end = memchr(s + i, '\'', len - i);

				if (!end)
					abort();  /* unterminated quote */
				sb_add(&w, s + i, (size_t)(end - (s + i)));
				i = (size_t)(end - s) + 1;
			} else if (c == '\\' && i < len) {
				sb_add(&w, s + i++, 1);
			} else if (strchr("\"$`\\|&;<>()*?[]{}~#=!\n\t", c)) {
				abort();  /* special outside quotes */
			} else {
				sb_add(&w, &c, 1);
			}
		}
		if (n == 2)
			*word = w;
		else
			sb_free(&w);
		n++;
	}
	return n;
}

static void
check_quoting(const char *s, size_t len)
{
	struct strbuf cmd, word;

	sb_init(&cmd);
	sb_init(&word);
	sb_adds(&cmd, "cat -- ");
	sb_add_shell_quoted(&cmd, s, len);
	sb_adds(&cmd, " ");
	if (sh_words(cmd.data, cmd.len, &word) != 3 || word.len != len ||
	    (len && memcmp(word.data, s, len)))
		abort();
	sb_free(&word);
	sb_free(&cmd);
}

/* Plain in a shell word and in a path component, no option, no dot file. */
static void
check_plain_name(const char *name)
{
	size_t n = strlen(name);

	if (!n || name[0] == '.' ||
	    strspn(name, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"
			 "0123456789_.-") != n)
		abort();
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct aerr err;
	char *s;

	if (size < 1)
		return 0;
	s = xmalloc(size);
	memcpy(s, data + 1, size - 1);
	s[size - 1] = '\0';
	switch (data[0] % 3) {
	case 0:
		/* paths and unit names come from FUSE: no NUL in them */
		check_quoting(s, strlen(s));
		break;
	case 1:
		if (config_name_is_valid(s, &err) == 0) {
			check_plain_name(s);
			if (s[0] == '-' || strlen(s) > 63 || !strcmp(s, "ctl") ||
			    !strcmp(s, "events") || !strcmp(s, "attest.sh"))
				abort();
		}
		break;
	default: {
		struct machine *m = fuzz_vmset()->machines[0];

		if (machine_job_create(m, s) == 0) {
			check_plain_name(s);
			if (machine_job_remove(m, s) < 0)
				abort();
		}
		fuzz_log_clear(m);
		break;
	}
	}
	free(s);
	return 0;
}
