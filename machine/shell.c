#include "machine/shell.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

enum { ST_LINE, ST_OUT, ST_ERR, ST_CHUNK, ST_RAW };

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

/* A chunk's header: base64 ("\001O", "\001E") or raw bytes ("\001o",
 * "\001e"; lossless channels only) of exactly len bytes follow. */
static void
start_chunk(struct shell_parser *p, shell_event_fn fn, void *ctx, char kind,
	    long long tag, long long len)
{
	int raw = kind == 'o' || kind == 'e';

	if (len < 0 || len > SHELL_CHUNK_MAX || (raw && p->lossy)) {
		fn(ctx, SHELL_EV_LOSS, 0, 0, NULL, 0);
		return;
	}
	p->chunk_ev = kind == 'O' || kind == 'o' ? SHELL_EV_STDOUT :
						   SHELL_EV_STDERR;
	p->chunk_tag = tag;
	p->quad_len = 0;
	p->have_len = 1;
	p->want = len;
	p->got = 0;
	p->state = raw ? (len ? ST_RAW : ST_LINE) : ST_CHUNK;
}

/* The agent's end of a command: the status, then how many bytes of each
 * stream it sent, which must be what came. A second end of a command that
 * ended whole is the shell's: the agent died after its end, before its
 * answer to the shell (see prelude_agent); the next command runs without
 * it, and nothing was lost. */
static void
end_frame(struct shell_parser *p, shell_event_fn fn, void *ctx,
	  long long tag, long long status, long long nout, long long nerr)
{
	int whole = nout == p->streamed && nerr == p->streamed_err;

	p->streamed = 0;
	p->streamed_err = 0;
	if (!whole) {
		if (tag != p->ended_tag)
			fn(ctx, SHELL_EV_LOSS, 0, 0, NULL, 0);
		return;
	}
	p->ended_tag = tag;
	fn(ctx, SHELL_EV_STATUS, tag, status, NULL, 0);
	fn(ctx, SHELL_EV_END, tag, 0, NULL, 0);
}

/* "\001K TAG NUM ...": 1 when it was a frame line. */
static int
frame_line(struct shell_parser *p, shell_event_fn fn, void *ctx,
	   const char *line)
{
	long long tag, num, a, b;
	char kind;
	int n;

	if (line[0] != '\001')
		return 0;
	if (sscanf(line + 1, "%c %lld%n", &kind, &num, &n) == 2 && kind == 'A') {
		line += 1 + n + (line[1 + n] == ' ');
		fn(ctx, SHELL_EV_AGENT, 0, num, line, strlen(line));
		return 1;
	}
	if (line[1] == 'N' && line[2] == ' ' &&
	    (line[3] == '0' || line[3] == '1') && !line[4]) {
		fn(ctx, SHELL_EV_BULK, 0, line[3] == '1', NULL, 0);
		return 1;
	}
	if (sscanf(line + 1, "%c %lld %lld", &kind, &tag, &num) != 3)
		return 0;
	switch (kind) {
	case 'P':
		p->streamed = 0;
		p->streamed_err = 0;
		fn(ctx, SHELL_EV_PID, tag, num, NULL, 0);
		return 1;
	case 'O': case 'E': case 'o': case 'e':
		start_chunk(p, fn, ctx, kind, tag, num);
		return 1;
	case 'X':
		if (sscanf(line + 1, "%c %lld %lld %lld %lld", &kind, &tag, &num,
			   &a, &b) != 5)
			return 0;
		end_frame(p, fn, ctx, tag, num, a, b);
		return 1;
	case 'S':
		fn(ctx, SHELL_EV_STATUS, tag, num, NULL, 0);
		p->skip = p->streamed;
		p->streamed = 0;
		p->streamed_err = 0;
		p->state = ST_OUT;
		p->quad_len = 0;
		p->have_len = 0;
		p->want = -1;
		p->got = 0;
		return 1;
	}
	return 0;
}

static void
handle_line(struct shell_parser *p, shell_event_fn fn, void *ctx)
{
	char *line = p->line;

	line[p->line_len] = '\0';
	if (p->line_overflow) {
		fn(ctx, SHELL_EV_JUNK, 0, 0, "(overlong line)", 15);
	} else if (strstr(line, SHELL_BANNER)) {
		fn(ctx, SHELL_EV_BANNER, 0, 0, NULL, 0);
	} else if (!strncmp(line, "SYNC", 4) && line[4] >= '0' &&
		   line[4] <= '9') {
		fn(ctx, SHELL_EV_SYNC, 0, strtoll(line + 4, NULL, 10), NULL, 0);
	} else if (!strncmp(line, "BARE", 4) && line[4] >= '0' &&
		   line[4] <= '9') {
		fn(ctx, SHELL_EV_BARE, 0, strtoll(line + 4, NULL, 10), NULL, 0);
	} else if (frame_line(p, fn, ctx, line)) {
		;
	} else if (p->line_len) {
		fn(ctx, SHELL_EV_JUNK, 0, 0, line, p->line_len);
	}
	p->line_len = 0;
	p->line_overflow = 0;
}

/*
 * Decoded bytes out. Chunks count what they streamed; the stdout that
 * follows the status is the whole file again (base64 of a file is the fast
 * path), so as much is dropped from its front.
 */
static void
emit(struct shell_parser *p, shell_event_fn fn, void *ctx,
     enum shell_event ev, const char *out, size_t n)
{
	if (p->state == ST_CHUNK || p->state == ST_RAW) {
		if (p->chunk_ev == SHELL_EV_STDOUT)
			p->streamed += (long long)n;
		else
			p->streamed_err += (long long)n;
		if (n)
			fn(ctx, p->chunk_ev, p->chunk_tag, 0, out, n);
		return;
	} else if (p->state == ST_OUT && p->skip > 0) {
		size_t drop = p->skip < (long long)n ? (size_t)p->skip : n;

		p->skip -= (long long)drop;
		out += drop;
		n -= drop;
	}
	if (n)
		fn(ctx, ev, 0, 0, out, n);
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
	/* The guest still waits for its go-ahead after a broken chunk. */
	if (p->state == ST_CHUNK)
		fn(ctx, SHELL_EV_CHUNK, p->chunk_tag, 0, NULL, 0);
	p->state = ST_LINE;
	p->line_len = 0;
	p->line_overflow = 0;
	p->quad_len = 0;
	fn(ctx, SHELL_EV_LOSS, 0, 0, NULL, 0);
}

/* ST_LINE: the bytes up to a newline, and the line when it ends; returns
 * how many bytes it took. */
static size_t
parse_line(struct shell_parser *p, const char *buf, size_t len,
	   shell_event_fn fn, void *ctx)
{
	const char *nl = memchr(buf, '\n', len);
	size_t take = nl ? (size_t)(nl - buf) : len;
	size_t room = sizeof(p->line) - 1 - p->line_len;

	if (take > room) {
		p->line_overflow = 1;
		memcpy(p->line + p->line_len, buf, room);
		p->line_len += room;
	} else {
		memcpy(p->line + p->line_len, buf, take);
		p->line_len += take;
	}
	if (!nl)
		return take;
	/* A tty in raw mode sends bare \n, but be lenient. */
	if (p->line_len && p->line[p->line_len - 1] == '\r')
		p->line_len--;
	handle_line(p, fn, ctx);
	return take + 1;
}

/*
 * The newline that ends a base64 line, after the n bytes in out: 1 when
 * the stream is over (a loss, a chunk's or the command's end), 0 when
 * stderr follows stdout (*ev then says so).
 */
static int
stream_newline(struct shell_parser *p, shell_event_fn fn, void *ctx,
	       enum shell_event *ev, const char *out, size_t n)
{
	if (p->quad_len != 0 || (p->state == ST_CHUNK && p->got != p->want) ||
	    (p->lossy && p->have_len && p->got != p->want) ||
	    (p->lossy && !p->have_len && p->want >= 0)) {
		if (n)
			emit(p, fn, ctx, *ev, out, n);
		lose(p, fn, ctx);
		return 1;
	}
	if (n)
		emit(p, fn, ctx, *ev, out, n);
	p->have_len = 0;
	p->want = -1;
	p->got = 0;
	if (p->state == ST_CHUNK) {
		p->state = ST_LINE;
		fn(ctx, SHELL_EV_CHUNK, p->chunk_tag, 0, NULL, 0);
		return 1;
	}
	if (p->state == ST_OUT) {
		p->state = ST_ERR;
		*ev = SHELL_EV_STDERR;
		return 0;
	}
	p->state = ST_LINE;
	fn(ctx, SHELL_EV_END, 0, 0, NULL, 0);
	return 1;
}

/* Lossy: a line starts with its decoded length, "LEN ". 1 when c was part
 * of it; a byte of output before it becomes garbage ('!'). */
static int
lossy_length(struct shell_parser *p, unsigned char *c)
{
	/* No output is a TiB: more digits are garbage. */
	if (*c >= '0' && *c <= '9' && p->want < (1LL << 40)) {
		p->want = (p->want < 0 ? 0 : p->want) * 10 + (*c - '0');
		return 1;
	}
	if (*c == ' ' && p->want >= 0) {
		p->have_len = 1;
		return 1;
	}
	/* Output without its length: bytes went missing. */
	*c = '!';
	return 0;
}

/* ST_OUT / ST_ERR / ST_CHUNK: a base64 line, decoded as it streams;
 * returns how many bytes it took. */
static size_t
parse_stream(struct shell_parser *p, const char *buf, size_t len,
	     shell_event_fn fn, void *ctx)
{
	enum shell_event ev = p->state == ST_ERR ? SHELL_EV_STDERR :
			      p->state == ST_CHUNK ? p->chunk_ev :
						     SHELL_EV_STDOUT;
	char out[3 * 1024];
	size_t i = 0, n = 0, before;

	while (i < len && n + 3 <= sizeof(out)) {
		unsigned char c = (unsigned char)buf[i++];

		if (c == '\n') {
			if (stream_newline(p, fn, ctx, &ev, out, n))
				return i;
			n = 0;
			continue;
		}
		if (p->lossy && !p->have_len && lossy_length(p, &c))
			continue;
		if (b64val(c) < 0) {
			if (n)
				emit(p, fn, ctx, ev, out, n);
			lose(p, fn, ctx);
			/* The garbage may be a new banner: parse it. */
			return i - 1;
		}
		p->quad[p->quad_len++] = c;
		if (p->quad_len < 4)
			continue;
		before = n;
		if (flush_quad(p, out, &n) < 0) {
			if (before)
				emit(p, fn, ctx, ev, out, before);
			lose(p, fn, ctx);
			return i;
		}
		p->got += (long long)(n - before);
	}
	if (n)
		emit(p, fn, ctx, ev, out, n);
	return i;
}

/* ST_RAW: the chunk's bytes as they are. */
static size_t
parse_raw(struct shell_parser *p, const char *buf, size_t len,
	  shell_event_fn fn, void *ctx)
{
	size_t n = (size_t)(p->want - p->got);

	if (n > len)
		n = len;
	emit(p, fn, ctx, p->chunk_ev, buf, n);
	p->got += (long long)n;
	if (p->got == p->want)
		p->state = ST_LINE;
	return n;
}

void
shell_parse(struct shell_parser *p, const char *buf, size_t len,
	    shell_event_fn fn, void *ctx)
{
	size_t i = 0;

	while (i < len) {
		if (p->state == ST_LINE)
			i += parse_line(p, buf + i, len - i, fn, ctx);
		else if (p->state == ST_RAW)
			i += parse_raw(p, buf + i, len - i, fn, ctx);
		else
			i += parse_stream(p, buf + i, len - i, fn, ctx);
	}
}

/*
 * POSIX sh for busybox ash and bash alike. _atx runs the command in a
 * background subshell with its output in files and waits for its pid.
 * _atk stops and kills a whole process tree (the command and what it spawned);
 * The files live in a private directory, never under a predictable name in
 * world-writable /tmp, where a guest user could plant a symlink or read them:
 * _atmk takes /run/attestfs (else /tmp/.attestfs) only as a real directory
 * of ours with mode 0700, made by mkdir -m 0700 or found so, and otherwise a
 * new one from mktemp -d. $_atr is that directory (jobs/ and files/ keep
 * their files there too), $_atd this shell's own inside it, removed when
 * the shell exits.
 * _atx checks its directory each time (a builtin test): a guest that mounts
 * a tmpfs over /tmp or /run after the backdoor started hides the first one;
 * _atmk makes a new one then. With a
 * 4th argument a watchdog kills the command after that many seconds: on a
 * single shell (hvc0) nothing else could, and the shell would stay busy.
 * It waits in a builtin read on a FIFO nobody writes: one process, which a
 * kill ends (a sleep child would outlive it). That kill is SIGKILL: bash
 * runs its EXIT trap on a SIGTERM, and a watchdog not yet scheduled since
 * its fork (a quick command on a busy host) still has the shell's trap,
 * which removed $_atd and so the next output files ('!': EIO). An output file that is
 * gone (something emptied /tmp meanwhile) is sent as "!", which is not
 * base64: the host reports the output lost instead of returning none.
 * _atsig SIG PID signals one (a job's kill). Both walk /proc/PID/task/TID/children.
 *
 * Both need read -t (bash, busybox ash; not dash): without it (_att empty)
 * there is no watchdog and the output comes at the end. The shell's own
 * reads use fd 9 (-u): its stdin stays the port, for commands that look.
 *
 * Output streams: instead of wait, _atx reads a FIFO the command's subshell
 * writes its tag to when it exits (an EXIT trap, a builtin: a quick command
 * costs no process more than before). The shell holds the FIFO open (fd 9)
 * from before the command starts, so that line cannot be lost, and closes it
 * after, so none is left over. Every second without that line, _atso sends
 * what stdout gained, up to 64 KiB, as a chunk "\001O TAG LEN" + base64. The
 * whole file still follows the status, as before (a big output is cheapest
 * in one piece): the host drops what the chunks already gave.
 * A command that leaves without its trap (exec, a kill) is found a zombie in
 * /proc; wait still gives its status.
 * Should $_atd be gone for good (no place _atmk tries can be made again),
 * the FIFO's open fails: that is `command exec`, as a failed redirection of
 * exec, a special builtin, would end ash (and bash as sh); the command's
 * files then fail too, and its output is reported lost.
 */
static const char prelude_common[] =
	"_atmk() { for _atr in /run/attestfs /tmp/.attestfs; do "
	"mkdir -m 0700 $_atr 2>/dev/null; [ -d $_atr ] && [ ! -L $_atr ] && "
	"[ -O $_atr ] && [ \"$(stat -c %a $_atr)\" = 700 ] && break; _atr=; "
	"done; [ -n \"$_atr\" ] || _atr=$(mktemp -d) || _atr=/dev/null/attestfs; "
	"_atd=$_atr/$$; mkdir -p $_atd; }; _atmk; trap 'rm -rf \"$_atd\"' EXIT; "
	"( read -t 1 _atq </dev/null ) 2>/dev/null; [ $? -gt 1 ] && _att= || _att=1; "
	"_atx0() { _atz=; [ -d $_atd ] || _atmk; [ -p $_atd/d ] || mkfifo $_atd/d; "
	"[ -z \"$_att\" ] || command exec 9<>$_atd/d; "
	"( exec 9<&-; [ -z \"$_att\" ] || trap \"echo $1 1<>$_atd/d\" EXIT; "
	"eval \"$2\" ) <\"${3:-/dev/null}\" >$_atd/o 2>$_atd/e & "
	"_atp=$!; _atw=; if [ -n \"${4:-}\" ] && [ -n \"$_att\" ]; then "
	"[ -p $_atd/f ] || mkfifo $_atd/f; "
	"( read -t $4 _atq <>$_atd/f; _atk $_atp ) >/dev/null 2>&1 & "
	"_atw=$!; fi; "
	"printf '\\001P %s %s\\n' \"$1\" $_atp; _ato=0; "
	"while [ -n \"$_att\" ]; do if read -t 1 -u 9 _atq; then "
	"[ \"$_atq\" = \"$1\" ] && break; continue; fi; "
	"read -r -u 8 _atq 2>/dev/null 8</proc/$_atp/stat || break; "
	"case $_atq in *\") Z \"*) break;; esac; _atso \"$1\"; done; "
	"[ -z \"$_att\" ] || exec 9<&-; wait $_atp; _ats=$?; "
	"[ -z \"$_atw\" ] || kill -9 $_atw 2>/dev/null; "
	"_atdr \"$1\"; printf '\\001S %s %s\\n' \"$1\" $_ats; _atfo; "
	"_atf $_atd/e; }; "
	"_atso() { _atn=$(stat -c %s $_atd/o); [ $_atn -gt $_ato ] || return 0; "
	"[ $_atn -le $((_ato + 65536)) ] || _atn=$((_ato + 65536)); "
	"printf '\\001O %s %s\\n' \"$1\" $((_atn - _ato)); "
	"tail -c +$((_ato + 1)) $_atd/o | head -c $((_atn - _ato)) | base64 -w0; "
	"echo; _ato=$_atn; }; "
	"_atk() { kill -STOP $1 2>/dev/null; for _atc in $(cat "
	"/proc/$1/task/*/children 2>/dev/null); do _atk $_atc; done; "
	"kill -9 $1 2>/dev/null; }; "
	"_atsig() { for _atc in $(cat /proc/$2/task/*/children 2>/dev/null); "
	"do _atsig $1 $_atc; done; kill -$1 $2 2>/dev/null; }; "
	"_atxn() { IFS= read -r -N \"$2\" _atcm; _atcn=$1; shift 2; "
	"_atx \"$_atcn\" \"$_atcm\" \"$@\"; }; "
	"_atnb() { [ -n \"${BASH_VERSION:-}\" ] && [ \"${BASH_VERSINFO:-0}\" -ge 5 ] && "
	"[ ! -t 0 ] && [ -e /proc/$$/fd/0 ] && [ ! -e /proc/$$/fd/255 ] && "
	"printf '\\001N 1\\n'; }; ";
/*
 * The guest agent (machine/agent/agent.c; its protocol is there). _atx runs
 * a command through it when _atup started one ($_atg), else as above (_atx0).
 * _atup HASH LOSSY WINDOW BASE64 writes the agent unless a file of that name
 * is there already (after a shell restart), checks that it runs, makes the
 * FIFOs and starts it in the background; "\001A 1 PID" or "\001A 0 why".
 * fd 6 is the channel for the agent to read the host's answers (a
 * background command's own stdin is /dev/null in ash and dash), 7 the
 * agent's orders (held read-write: a dead agent costs no SIGPIPE), 5 its
 * answers (read-only: a dead agent reads as EOF). The agent's end of those
 * answers is its fd 4, opened by the redirection before its exec: an agent
 * that dies before it runs, or fails to start, then ends the shell's open
 * of them with EOF, instead of leaving it waiting for a writer for ever.
 * Commands close all three
 * and open their FIFOs write-only as the agent's own fds of them,
 * /proc/$_atg/fd/$_atO and $_atE, which it names on 5 at its start and
 * after each end: while the agent lives it reads them, so the open does not
 * wait; once it is gone they are gone, so the open fails at once (by the
 * FIFOs' names it would wait for ever for a reader: the liveness check
 * comes before the fork, and the agent may die in between). Should the
 * agent die during the command, its writes fail (SIGPIPE) instead of
 * blocking for ever once the FIFO is full. _atup checks once that the
 * shell may open them (the same user, a dumpable agent, /proc mounted);
 * else no agent. It checks with true, not with :, a special builtin whose
 * failed redirection would end ash and dash.
 * Without a STDIN file a command gets no redirection of stdin: an
 * asynchronous list's is /dev/null already in all three shells (POSIX; ash
 * and dash open it even under a redirection, so ours was a second open,
 * 0.1 ms under TCG). Its FIFOs are then opened inside the subshell: bash
 * counts a `<>` on the subshell, whatever its fd, as a stdin redirection and
 * would leave the channel as its stdin.
 * Should the agent be gone, _aty says so and runs the command as before.
 * The agent's liveness is a builtin test of /proc/PID/exe, which a zombie
 * has not (ash and dash reap only in a wait, so a killed agent stays one
 * until the next command's); kill -0 would need its stderr redirected,
 * syscalls on every command. After the status the shell waits for the
 * agent's line on 5, which the agent writes after the end: an agent that
 * dies first, during the command, after it or before its open, reads as
 * EOF, and _atx ends the frame with byte counts that cannot match
 * (_atgone), so the host resynchronises instead of waiting for an end that
 * never comes.
 * (On hvc0 the shell must wait there anyway: it must not read the channel
 * while the agent reads the host's answers on it.) _atclk SEC NSEC sets
 * the wall clock of a continued guest through the agent (no new process:
 * each is slow while TCG translates afresh), else with date(1); a guest
 * saved with an older prelude has no _atclk (snapshot_resume_script).
 * _athost NAME [ID] has the agent set a clone's name and machine-id; it
 * fails without the agent (the resume script then writes them itself).
 */
static const char prelude_agent[] =
	"_atx() { if [ -z \"$_atg\" ] || [ ! -e /proc/$_atg/exe ]; then "
	"_aty \"$@\"; return; fi; "
	"if [ -z \"${3:-}\" ]; then ( exec 1>/proc/$_atg/fd/$_atO "
	"2>/proc/$_atg/fd/$_atE 5<&- 6<&- 7>&- 9<&- || exit; eval \"$2\" ) & "
	"else ( exec 5<&- 6<&- 7>&- 9<&-; eval \"$2\" ) <\"$3\" "
	"1>/proc/$_atg/fd/$_atO 2>/proc/$_atg/fd/$_atE & fi; "
	"echo \"$1 $! ${4:-0}\" >&7; wait $!; echo $? >&7; "
	"read -r _atO _atE <&5 || _atgone \"$1\"; }; "
	"_aty() { [ -z \"$_atg\" ] || { _atg=; "
	"printf '\\001A 0 %s\\n' 'the agent is gone'; }; "
	"_atx0 \"$@\"; }; "
	"_atclk() { if [ -n \"$_atg\" ] && [ -e /proc/$_atg/exe ] && "
	"printf 'C %s %s\\n' $1 $2 >&7 && read -r _atq <&5 && [ \"$_atq\" = 0 ]; "
	"then return 0; fi; date -s @$1 >/dev/null 2>&1; }; "
	"_athost() { [ -n \"$_atg\" ] && [ -e /proc/$_atg/exe ] && "
	"printf 'H %s %s\\n' $1 $2 >&7 && read -r _atq <&5 && "
	"[ \"$_atq\" = 0 ]; }; "
	"_atgone() { _atg=; printf '\\001X %s 0 -1 -1\\n' \"$1\"; }; "
	"_atup() { _atg=; _atq=$_atr/agent-$1; if [ ! -x $_atq ]; then "
	"{ printf %s \"$4\" | base64 -d >$_atq.$$ && chmod 700 $_atq.$$ && "
	"mv -f $_atq.$$ $_atq; } 2>/dev/null || { rm -f $_atq.$$; "
	"printf '\\001A 0 %s\\n' \"cannot write $_atq\"; return 0; }; fi; "
	"_atw=$($_atq check 2>&1) || { printf '\\001A 0 cannot run %s: %s\\n' "
	"$_atq \"$(echo $_atw)\"; return 0; }; "
	"rm -f $_atd/ao $_atd/ae $_atd/ac $_atd/ar; "
	"mkfifo -m 600 $_atd/ao $_atd/ae $_atd/ac $_atd/ar || "
	"{ printf '\\001A 0 %s\\n' 'mkfifo failed'; return 0; }; "
	"exec 6<&0; $_atq run $_atd $2 $3 </dev/null 4>$_atd/ar 5<&- 7>&- 9<&- & "
	"_atg=$!; "
	"exec 7<>$_atd/ac 5<$_atd/ar; if ! read -r _atO _atE <&5; then _atg=; "
	"printf '\\001A 0 %s\\n' 'the agent did not start'; "
	"elif { true >/proc/$_atg/fd/$_atO; } 2>/dev/null; then "
	"printf '\\001A 1 %s\\n' $_atg; else exec 7>&- 5<&-; _atg=; "
	"printf '\\001A 0 %s\\n' 'cannot open its FIFOs in /proc/PID/fd'; fi; }; ";
static const char prelude_fast[] =
	"_atf() { [ -e \"$1\" ] || { echo '!'; return; }; "
	"if [ -s \"$1\" ]; then base64 -w0 \"$1\"; fi; echo; }; "
	"_atdr() { :; }; _atfo() { _atf $_atd/o; }; ";
/*
 * hvc0 drops what the host does not take at once, so there the host paces
 * stdout: it goes only in chunks, each followed by a read of the host's
 * line: "." go on; anything else ("K", or a SYNC the host sent after a loss)
 * kills the command and sends no more, so its frame ends and the shell reads
 * the host's next line. The host sends "." when its reader has taken the
 * output before: a window of one chunk. A chunk is
 * 48 KiB (64 KiB of base64): QEMU drops console bytes once its socket's
 * send buffer (about 208 KiB) is full, so what is in flight must fit there
 * even when the host is slow to read. After the exit the rest goes the
 * same way (_atdr), before the status.
 */
static const char prelude_lossy[] =
	"_atf() { [ -e \"$1\" ] || { echo '!'; return; }; "
	"if [ -s \"$1\" ]; then printf '%s ' $(wc -c <\"$1\"); "
	"base64 -w0 \"$1\"; fi; echo; }; "
	"_atdr() { _atso \"$1\"; }; "
	"_atfo() { [ -e $_atd/o ] && echo || echo '!'; }; "
	"_atso() { while [ -z \"$_atz\" ]; do "
	"_atn=$(stat -c %s $_atd/o 2>/dev/null) || return 0; "
	"[ $_atn -gt $_ato ] || return 0; "
	"[ $_atn -le $((_ato + 49152)) ] || _atn=$((_ato + 49152)); "
	"printf '\\001O %s %s\\n' \"$1\" $((_atn - _ato)); "
	"dd if=$_atd/o bs=65536 iflag=skip_bytes,count_bytes skip=$_ato "
	"count=$((_atn - _ato)) 2>/dev/null | base64 -w0; "
	"echo; _ato=$_atn; read -r _atq; [ \"$_atq\" = . ] || "
	"{ _atz=1; _atk $_atp; }; done; }; ";

void
shell_prelude(struct strbuf *out, int lossy, int agent_window,
	      long long sync_tag)
{
	sb_adds(out, prelude_common);
	sb_adds(out, prelude_agent);
	sb_adds(out, lossy ? prelude_lossy : prelude_fast);
	sb_adds(out, "\n");
	if (agent_window > 0)
		shell_agent_upload(out, lossy, agent_window);
	sb_adds(out, "_atnb\n");
	shell_sync(out, sync_tag);
}

/* Named by its hash: a shell that restarts finds it there, and a daemon with
 * another agent never runs this one. */
void
shell_agent_upload(struct strbuf *out, int lossy, int window)
{
	uint64_t h = 14695981039346656037ULL;
	size_t i;

	for (i = 0; i < shell_agent_blob_len; i++)
		h = (h ^ shell_agent_blob[i]) * 1099511628211ULL;
	sb_addf(out, "_atup %016llx %d %d '", (unsigned long long)h, lossy ? 1 : 0,
		window);
	shell_base64(out, shell_agent_blob, shell_agent_blob_len);
	sb_adds(out, "'\n");
}

void
shell_sync(struct strbuf *out, long long sync_tag)
{
	sb_addf(out, "echo SYNC%lld\n", sync_tag);
}

void
shell_probe(struct strbuf *out, long long tag)
{
	sb_addf(out, "if command -v _atx >/dev/null 2>&1; then echo SYNC%lld; "
		"command -v _atnb >/dev/null 2>&1 && _atnb || :; "
		"else echo BARE%lld; fi\n", tag, tag);
}

/* Its characters are its bytes in any locale a shell runs in. */
static int
is_ascii(const char *s, size_t len)
{
	for (size_t i = 0; i < len; i++)
		if (s[i] == '\0' || (unsigned char)s[i] >= 0x80)
			return 0;
	return 1;
}

void
shell_command(struct strbuf *out, long long tag, const char *cmd,
	      size_t cmd_len, const char *stdin_path, unsigned watchdog_s,
	      int bulk)
{
	int raw = bulk && cmd_len >= SHELL_BULK_MIN && is_ascii(cmd, cmd_len);

	if (raw) {
		sb_addf(out, "_atxn %lld %zu", tag, cmd_len);
	} else {
		sb_addf(out, "_atx %lld ", tag);
		sb_add_shell_quoted(out, cmd, cmd_len);
	}
	if (stdin_path) {
		sb_adds(out, " ");
		sb_add_shell_quoted(out, stdin_path, strlen(stdin_path));
	} else if (watchdog_s) {
		sb_adds(out, " ''");
	}
	if (watchdog_s)
		sb_addf(out, " %u", watchdog_s);
	sb_adds(out, "\n");
	if (raw)
		sb_add(out, cmd, cmd_len);
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
