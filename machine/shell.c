#include "machine/shell.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

enum { ST_LINE, ST_OUT, ST_ERR };

static const char b64chars[] =
	"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

void
shell_parser_init(struct shell_parser *p, int lossy)
{
	memset(p, 0, sizeof(*p));
	p->state = ST_LINE;
	p->lossy = lossy;
}

static int
b64val(unsigned char c)
{
	if (c >= 'A' && c <= 'Z')
		return c - 'A';
	if (c >= 'a' && c <= 'z')
		return c - 'a' + 26;
	if (c >= '0' && c <= '9')
		return c - '0' + 52;
	if (c == '+')
		return 62;
	if (c == '/')
		return 63;
	if (c == '=')
		return 64;
	return -1;
}

static void
handle_line(struct shell_parser *p, shell_event_fn fn, void *ctx)
{
	char *line = p->line;
	long long tag, num;
	char kind;

	line[p->line_len] = '\0';
	if (p->line_overflow) {
		fn(ctx, SHELL_EV_JUNK, 0, 0, "(overlong line)", 15);
	} else if (strstr(line, SHELL_BANNER)) {
		fn(ctx, SHELL_EV_BANNER, 0, 0, NULL, 0);
	} else if (!strncmp(line, "SYNC", 4) && line[4] >= '0' &&
		   line[4] <= '9') {
		fn(ctx, SHELL_EV_SYNC, 0, strtoll(line + 4, NULL, 10), NULL, 0);
	} else if (line[0] == '\001' &&
		   sscanf(line + 1, "%c %lld %lld", &kind, &tag, &num) == 3 &&
		   (kind == 'P' || kind == 'S')) {
		if (kind == 'P') {
			fn(ctx, SHELL_EV_PID, tag, num, NULL, 0);
		} else {
			fn(ctx, SHELL_EV_STATUS, tag, num, NULL, 0);
			p->state = ST_OUT;
			p->quad_len = 0;
			p->have_len = 0;
			p->want = -1;
			p->got = 0;
		}
	} else if (p->line_len) {
		fn(ctx, SHELL_EV_JUNK, 0, 0, line, p->line_len);
	}
	p->line_len = 0;
	p->line_overflow = 0;
}

/* Decode the complete quads in p->quad into out; 0, or -1 on garbage. */
static int
flush_quad(struct shell_parser *p, char *out, size_t *n)
{
	int v[4], i;

	for (i = 0; i < 4; i++)
		v[i] = b64val(p->quad[i]);
	if (v[0] > 63 || v[1] > 63)
		return -1;
	out[(*n)++] = (char)(v[0] << 2 | v[1] >> 4);
	if (v[2] <= 63) {
		out[(*n)++] = (char)((v[1] & 15) << 4 | v[2] >> 2);
		if (v[3] <= 63)
			out[(*n)++] = (char)((v[2] & 3) << 6 | v[3]);
	} else if (v[3] <= 63) {
		return -1;
	}
	p->quad_len = 0;
	return 0;
}

static void
lose(struct shell_parser *p, shell_event_fn fn, void *ctx)
{
	p->state = ST_LINE;
	p->line_len = 0;
	p->line_overflow = 0;
	p->quad_len = 0;
	fn(ctx, SHELL_EV_LOSS, 0, 0, NULL, 0);
}

void
shell_parse(struct shell_parser *p, const char *buf, size_t len,
	    shell_event_fn fn, void *ctx)
{
	char out[3 * 1024];
	size_t i = 0;

	while (i < len) {
		if (p->state == ST_LINE) {
			const char *nl = memchr(buf + i, '\n', len - i);
			size_t take = nl ? (size_t)(nl - (buf + i)) : len - i;
			size_t room = sizeof(p->line) - 1 - p->line_len;

			if (take > room) {
				p->line_overflow = 1;
				memcpy(p->line + p->line_len, buf + i, room);
				p->line_len += room;
			} else {
				memcpy(p->line + p->line_len, buf + i, take);
				p->line_len += take;
			}
			i += take;
			if (nl) {
				i++;
				/* A tty in raw mode sends bare \n, but be lenient. */
				if (p->line_len && p->line[p->line_len - 1] == '\r')
					p->line_len--;
				handle_line(p, fn, ctx);
			}
			continue;
		}

		/* ST_OUT / ST_ERR: a base64 line, decoded as it streams. */
		enum shell_event ev = p->state == ST_OUT ? SHELL_EV_STDOUT :
							   SHELL_EV_STDERR;
		size_t n = 0;

		while (i < len && n + 3 <= sizeof(out)) {
			unsigned char c = (unsigned char)buf[i++];

			if (c == '\n') {
				if (p->quad_len != 0 ||
				    (p->lossy && p->have_len &&
				     p->got != p->want) ||
				    (p->lossy && !p->have_len && p->want >= 0)) {
					if (n)
						fn(ctx, ev, 0, 0, out, n);
					lose(p, fn, ctx);
					return shell_parse(p, buf + i, len - i,
							   fn, ctx);
				}
				if (n)
					fn(ctx, ev, 0, 0, out, n);
				n = 0;
				p->have_len = 0;
				p->want = -1;
				p->got = 0;
				if (p->state == ST_OUT) {
					p->state = ST_ERR;
					ev = SHELL_EV_STDERR;
					continue;
				}
				p->state = ST_LINE;
				fn(ctx, SHELL_EV_END, 0, 0, NULL, 0);
				goto next;
			}
			if (p->lossy && !p->have_len) {
				if (c >= '0' && c <= '9') {
					p->want = (p->want < 0 ? 0 : p->want) *
							  10 + (c - '0');
					continue;
				}
				if (c == ' ' && p->want >= 0) {
					p->have_len = 1;
					continue;
				}
				/* Output without its length: bytes went missing. */
				c = '!';
			}
			if (b64val(c) < 0) {
				if (n)
					fn(ctx, ev, 0, 0, out, n);
				lose(p, fn, ctx);
				/* The garbage may be a new banner: parse it. */
				return shell_parse(p, buf + i - 1, len - i + 1,
						   fn, ctx);
			}
			p->quad[p->quad_len++] = c;
			if (p->quad_len == 4) {
				size_t before = n;

				if (flush_quad(p, out, &n) < 0) {
					if (before)
						fn(ctx, ev, 0, 0, out, before);
					lose(p, fn, ctx);
					return shell_parse(p, buf + i, len - i,
							   fn, ctx);
				}
				p->got += (long long)(n - before);
			}
		}
		if (n)
			fn(ctx, ev, 0, 0, out, n);
next:;
	}
}

/*
 * POSIX sh for busybox ash and bash alike. _atx runs the command in a
 * background subshell with its output in files and waits for its pid.
 * _atk stops and kills a whole process tree (the command and what it spawned);
 * _atx checks its directory each time (a builtin test): a guest that mounts
 * a tmpfs over /tmp after the backdoor started hides the first one. With a
 * 4th argument a watchdog kills the command after that many seconds: on a
 * single shell (hvc0) nothing else could, and the shell would stay busy.
 * It waits in a builtin read on a FIFO nobody writes: one process, which a
 * plain kill ends (a sleep child would outlive it). An output file that is
 * gone (something emptied /tmp meanwhile) is sent as "!", which is not
 * base64: the host reports the output lost instead of returning none.
 * _atsig SIG PID signals one (a job's kill). Both walk /proc/PID/task/TID/children.
 */
static const char prelude_common[] =
	"_atd=/tmp/.attestfs.$$; mkdir -p $_atd; "
	"_atx() { [ -d $_atd ] || mkdir -p $_atd; "
	"( eval \"$2\" ) <\"${3:-/dev/null}\" >$_atd/o 2>$_atd/e & "
	"_atp=$!; _atw=; if [ -n \"$4\" ]; then "
	"[ -p $_atd/f ] || mkfifo $_atd/f; "
	"( read -t $4 _atq <>$_atd/f; _atk $_atp ) >/dev/null 2>&1 & "
	"_atw=$!; fi; "
	"printf '\\001P %s %s\\n' \"$1\" $_atp; wait $_atp; _ats=$?; "
	"[ -z \"$_atw\" ] || kill $_atw 2>/dev/null; "
	"printf '\\001S %s %s\\n' \"$1\" $_ats; _atf $_atd/o; _atf $_atd/e; }; "
	"_atk() { kill -STOP $1 2>/dev/null; for _atc in $(cat "
	"/proc/$1/task/*/children 2>/dev/null); do _atk $_atc; done; "
	"kill -9 $1 2>/dev/null; }; "
	"_atsig() { for _atc in $(cat /proc/$2/task/*/children 2>/dev/null); "
	"do _atsig $1 $_atc; done; kill -$1 $2 2>/dev/null; }; ";
static const char prelude_fast[] =
	"_atf() { [ -e \"$1\" ] || { echo '!'; return; }; "
	"if [ -s \"$1\" ]; then base64 -w0 \"$1\"; fi; echo; }; ";
static const char prelude_lossy[] =
	"_atf() { [ -e \"$1\" ] || { echo '!'; return; }; "
	"if [ -s \"$1\" ]; then printf '%s ' $(wc -c <\"$1\"); "
	"base64 -w0 \"$1\"; fi; echo; }; ";

void
shell_prelude(struct strbuf *out, int lossy, long long sync_tag)
{
	sb_adds(out, prelude_common);
	sb_adds(out, lossy ? prelude_lossy : prelude_fast);
	shell_sync(out, sync_tag);
}

void
shell_sync(struct strbuf *out, long long sync_tag)
{
	sb_addf(out, "echo SYNC%lld\n", sync_tag);
}

void
shell_command(struct strbuf *out, long long tag, const char *cmd,
	      size_t cmd_len, const char *stdin_path, unsigned watchdog_s)
{
	sb_addf(out, "_atx %lld ", tag);
	sb_add_shell_quoted(out, cmd, cmd_len);
	if (stdin_path) {
		sb_adds(out, " ");
		sb_add_shell_quoted(out, stdin_path, strlen(stdin_path));
	} else if (watchdog_s) {
		sb_adds(out, " ''");
	}
	if (watchdog_s)
		sb_addf(out, " %u", watchdog_s);
	sb_adds(out, "\n");
}

void
shell_base64(struct strbuf *out, const void *data, size_t len)
{
	const unsigned char *s = data;
	size_t i;

	for (i = 0; i + 2 < len; i += 3) {
		char q[4] = {
			b64chars[s[i] >> 2],
			b64chars[(s[i] & 3) << 4 | s[i + 1] >> 4],
			b64chars[(s[i + 1] & 15) << 2 | s[i + 2] >> 6],
			b64chars[s[i + 2] & 63],
		};
		sb_add(out, q, 4);
	}
	if (len - i == 1) {
		char q[4] = { b64chars[s[i] >> 2], b64chars[(s[i] & 3) << 4],
			      '=', '=' };
		sb_add(out, q, 4);
	} else if (len - i == 2) {
		char q[4] = { b64chars[s[i] >> 2],
			      b64chars[(s[i] & 3) << 4 | s[i + 1] >> 4],
			      b64chars[(s[i + 1] & 15) << 2], '=' };
		sb_add(out, q, 4);
	}
}
