/* The shell framing: parser and command lines, without a guest. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "machine/shell.h"

struct seen {
	struct strbuf out, err, log;
	int banners, ends, losses, syncs, chunks;
	long long chunk_tag, out_tag;
	long long status, pid, sync_tag;
};

static void
record(void *ctx, enum shell_event ev, long long tag, long long num,
       const char *data, size_t len)
{
	struct seen *s = ctx;

	switch (ev) {
	case SHELL_EV_BANNER:
		s->banners++;
		sb_adds(&s->log, "B");
		break;
	case SHELL_EV_SYNC:
		s->syncs++;
		s->sync_tag = num;
		sb_adds(&s->log, "Y");
		break;
	case SHELL_EV_PID:
		s->pid = num;
		sb_adds(&s->log, "P");
		break;
	case SHELL_EV_STATUS:
		s->status = num;
		sb_addf(&s->log, "S%lld", tag);
		break;
	case SHELL_EV_STDOUT:
		sb_add(&s->out, data, len);
		s->out_tag = tag;
		break;
	case SHELL_EV_CHUNK:
		s->chunks++;
		s->chunk_tag = tag;
		sb_adds(&s->log, "C");
		break;
	case SHELL_EV_STDERR:
		sb_add(&s->err, data, len);
		break;
	case SHELL_EV_END:
		s->ends++;
		sb_adds(&s->log, "E");
		break;
	case SHELL_EV_LOSS:
		s->losses++;
		sb_adds(&s->log, "L");
		break;
	case SHELL_EV_JUNK:
		sb_adds(&s->log, "J");
		break;
	case SHELL_EV_AGENT:
		sb_addf(&s->log, "A%lld", num);
		sb_add(&s->err, data, len);
		break;
	case SHELL_EV_BARE:
		sb_addf(&s->log, "R%lld", num);
		break;
	case SHELL_EV_BULK:
		sb_addf(&s->log, "N%lld", num);
		break;
	}
}

static void
seen_free(struct seen *s)
{
	sb_free(&s->out);
	sb_free(&s->err);
	sb_free(&s->log);
}

/* Build the guest's reply for stdout/stderr bytes and a status. */
static void
frame(struct strbuf *sb, long long tag, int status, const void *out,
      size_t outlen, const void *err, size_t errlen, int lossy)
{
	sb_addf(sb, "\001P %lld 4242\n\001S %lld %d\n", tag, tag, status);
	if (lossy && outlen)
		sb_addf(sb, "%zu ", outlen);
	shell_base64(sb, out, outlen);
	sb_adds(sb, "\n");
	if (lossy && errlen)
		sb_addf(sb, "%zu ", errlen);
	shell_base64(sb, err, errlen);
	sb_adds(sb, "\n");
}

static void
feed_in_pieces(struct shell_parser *p, const char *buf, size_t len,
	       size_t piece, struct seen *s)
{
	size_t i;

	for (i = 0; i < len; i += piece)
		shell_parse(p, buf + i, len - i < piece ? len - i : piece,
			    record, s);
}

static void
test_banner_split_across_reads(void **state)
{
	struct shell_parser p;
	struct seen s = { 0 };
	const char *text = "noise\r\n" SHELL_BANNER "\nSYNC17\n";

	shell_parser_init(&p, 0);
	feed_in_pieces(&p, text, strlen(text), 1, &s);
	assert_int_equal(s.banners, 1);
	assert_int_equal(s.syncs, 1);
	assert_int_equal(s.sync_tag, 17);
	assert_string_equal(s.log.data, "JBY");
	seen_free(&s);
}

static void
test_binary_roundtrip_all_piece_sizes(void **state)
{
	unsigned char bin[1000];
	size_t i, piece;

	for (i = 0; i < sizeof(bin); i++)
		bin[i] = (unsigned char)(i * 7 + (i >> 3));
	bin[0] = 0;
	bin[999] = '\n';
	for (piece = 1; piece < 70; piece += 3) {
		struct shell_parser p;
		struct seen s = { 0 };
		struct strbuf sb;

		sb_init(&sb);
		frame(&sb, 5, 3, bin, sizeof(bin), "oops\n", 5, 0);
		shell_parser_init(&p, 0);
		feed_in_pieces(&p, sb.data, sb.len, piece, &s);
		assert_int_equal(s.out.len, sizeof(bin));
		assert_memory_equal(s.out.data, bin, sizeof(bin));
		assert_int_equal(s.err.len, 5);
		assert_memory_equal(s.err.data, "oops\n", 5);
		assert_int_equal(s.status, 3);
		assert_int_equal(s.pid, 4242);
		assert_string_equal(s.log.data, "PS5E");
		sb_free(&sb);
		seen_free(&s);
	}
}

static void
test_empty_output_and_no_trailing_newline(void **state)
{
	struct shell_parser p;
	struct seen s = { 0 };
	struct strbuf sb;

	sb_init(&sb);
	frame(&sb, 1, 0, "", 0, "", 0, 0);
	frame(&sb, 2, 0, "x", 1, "", 0, 0);
	frame(&sb, 3, 0, "ab", 2, "", 0, 0);
	shell_parser_init(&p, 0);
	shell_parse(&p, sb.data, sb.len, record, &s);
	assert_int_equal(s.ends, 3);
	assert_int_equal(s.out.len, 3);
	assert_memory_equal(s.out.data, "xab", 3);
	sb_free(&sb);
	seen_free(&s);
}

static void
test_megabyte_line(void **state)
{
	size_t n = 3u << 20, i;
	char *big = malloc(n);
	struct shell_parser p;
	struct seen s = { 0 };
	struct strbuf sb;

	for (i = 0; i < n; i++)
		big[i] = (char)('a' + i % 26);
	sb_init(&sb);
	frame(&sb, 9, 0, big, n, "", 0, 0);
	shell_parser_init(&p, 0);
	feed_in_pieces(&p, sb.data, sb.len, 65536, &s);
	assert_int_equal(s.out.len, n);
	assert_memory_equal(s.out.data, big, n);
	assert_int_equal(s.ends, 1);
	free(big);
	sb_free(&sb);
	seen_free(&s);
}

static void
test_banner_inside_output_is_loss(void **state)
{
	struct shell_parser p;
	struct seen s = { 0 };
	const char *text = "\001P 1 9\n\001S 1 0\naGVsbG8=\n"
			   "Spawning backdoor root shell...\n";

	shell_parser_init(&p, 0);
	shell_parse(&p, text, strlen(text), record, &s);
	assert_int_equal(s.losses, 1);
	assert_int_equal(s.ends, 0);
	seen_free(&s);
}

/* Chunks of stdout while the command runs come before the status; their
 * length is checked on both channels. The stdout after the status is the
 * whole output again: what the chunks gave is not repeated. */
static void
test_stdout_chunks_stream_before_status(void **state)
{
	const char *good = "\001P 1 9\n\001O 1 4\nb25lCg==\n\001O 1 3\nYWJj\n"
			   "\001S 1 0\nb25lCmFiY3R3bwo=\n\n";
	const char *bad = "\001P 1 9\n\001O 1 5\nb25lCg==\nSYNC4\n";
	struct shell_parser p;
	struct seen s = { 0 };

	shell_parser_init(&p, 0);
	shell_parse(&p, good, strlen(good), record, &s);
	assert_int_equal(s.losses, 0);
	assert_int_equal(s.ends, 1);
	assert_int_equal(s.status, 0);
	assert_int_equal(s.out.len, 11);
	assert_memory_equal(s.out.data, "one\nabctwo\n", 11);
	seen_free(&s);

	memset(&s, 0, sizeof(s));
	shell_parser_init(&p, 1);
	shell_parse(&p, bad, strlen(bad), record, &s);
	assert_int_equal(s.losses, 1);
	assert_int_equal(s.syncs, 1);
	seen_free(&s);
}

/* _atf sends "!" for an output file that vanished: loss, not empty output,
 * on both channels; the shell answers the next SYNC as usual. */
static void
test_vanished_output_file_is_loss(void **state)
{
	const char *text = "\001P 2 9\n\001S 2 0\n!\n!\nSYNC5\n";
	int lossy;

	for (lossy = 0; lossy <= 1; lossy++) {
		struct shell_parser p;
		struct seen s = { 0 };

		shell_parser_init(&p, lossy);
		shell_parse(&p, text, strlen(text), record, &s);
		assert_int_equal(s.losses, 1);
		assert_int_equal(s.ends, 0);
		assert_int_equal(s.syncs, 1);
		seen_free(&s);
	}
}

/*
 * Found by tests/fuzz/fuzz_shell: each loss used to parse the rest of the
 * read by recursion, one stack frame (3 KiB of buffer) per loss, so one
 * read of lost frames from a hostile guest overflowed the worker's stack.
 */
static void
test_many_losses_in_one_read(void **state)
{
	static const char lost[] = "\001S 1 0\n!\n";
	const size_t frames = (1u << 20) / (sizeof(lost) - 1);
	struct strbuf sb;
	size_t i;
	int lossy;

	sb_init(&sb);
	for (i = 0; i < frames; i++)
		sb_adds(&sb, lost);
	sb_adds(&sb, "SYNC3\n");
	for (lossy = 0; lossy <= 1; lossy++) {
		struct shell_parser p;
		struct seen s = { 0 };

		shell_parser_init(&p, lossy);
		shell_parse(&p, sb.data, sb.len, record, &s);
		assert_int_equal(s.losses, (int)frames);
		assert_int_equal(s.syncs, 1);
		seen_free(&s);
	}
	sb_free(&sb);
}

/* Found by tests/fuzz/fuzz_shell: a length of 20 digits overflowed. */
static void
test_lossy_overlong_length_is_loss(void **state)
{
	const char *text = "\001P 4 1\n\001S 4 0\n"
			   "44444444444444444444444444 aGVsbG8K\n\nSYNC6\n";
	struct shell_parser p;
	struct seen s = { 0 };

	shell_parser_init(&p, 1);
	shell_parse(&p, text, strlen(text), record, &s);
	assert_int_equal(s.losses, 1);
	assert_int_equal(s.ends, 0);
	assert_int_equal(s.out.len, 0);
	assert_int_equal(s.syncs, 1);
	seen_free(&s);
}

static void
test_lossy_channel_detects_dropped_bytes(void **state)
{
	struct shell_parser p;
	struct seen s = { 0 };
	struct strbuf sb;
	char data[300];

	memset(data, 'q', sizeof(data));
	sb_init(&sb);
	frame(&sb, 4, 0, data, sizeof(data), "", 0, 1);
	shell_parser_init(&p, 1);
	shell_parse(&p, sb.data, sb.len, record, &s);
	assert_int_equal(s.ends, 1);
	assert_int_equal(s.losses, 0);
	assert_int_equal(s.out.len, sizeof(data));
	seen_free(&s);

	/* Drop 8 base64 characters (6 bytes) in the middle. */
	memset(&s, 0, sizeof(s));
	char *hole = strstr(sb.data, "cXFx");

	assert_non_null(hole);
	memmove(hole, hole + 8, strlen(hole + 8) + 1);
	sb.len -= 8;
	shell_parser_init(&p, 1);
	shell_parse(&p, sb.data, sb.len, record, &s);
	assert_int_equal(s.losses, 1);
	assert_int_equal(s.ends, 0);
	sb_free(&sb);
	seen_free(&s);
}

/*
 * hvc0: the host paces stdout. Each chunk ends in a CHUNK event (the guest
 * now waits for the go-ahead), its bytes carry its tag, and the stdout
 * line after the status is empty: everything came in chunks.
 */
static void
test_lossy_chunks_ask_for_a_go_ahead(void **state)
{
	struct shell_parser p;
	struct seen s = { 0 };
	struct strbuf sb;

	sb_init(&sb);
	sb_adds(&sb, "\001P 9 77\n\001O 9 5\n");
	shell_base64(&sb, "hello", 5);
	sb_adds(&sb, "\n\001O 9 6\n");
	shell_base64(&sb, " world", 6);
	sb_adds(&sb, "\n\001S 9 0\n\n3 ");
	shell_base64(&sb, "err", 3);
	sb_adds(&sb, "\n");
	shell_parser_init(&p, 1);
	shell_parse(&p, sb.data, sb.len, record, &s);
	assert_string_equal(s.log.data, "PCCS9E");
	assert_int_equal(s.chunk_tag, 9);
	assert_int_equal(s.out_tag, 9);
	assert_string_equal(s.out.data, "hello world");
	assert_string_equal(s.err.data, "err");
	seen_free(&s);

	/* A chunk cut short still owes its go-ahead: the guest waits. */
	memset(&s, 0, sizeof(s));
	shell_parser_init(&p, 1);
	shell_parse(&p, "\001O 3 5\naGVs\n", 12, record, &s);
	assert_int_equal(s.chunks, 1);
	assert_int_equal(s.losses, 1);
	seen_free(&s);
	sb_free(&sb);
}

/*
 * The agent's frames: raw chunks of both streams as they come (any bytes,
 * cut anywhere by the reads), the end with the byte counts, which must
 * match what came.
 */
static void
test_agent_raw_frames(void **state)
{
	static const char text[] = "\001A 1 99\n\001P 7 42\n\001o 7 3\na\0\n"
				   "\001e 7 2\nE\n\001o 7 1\n\377\001X 7 3 4 2\n"
				   "SYNC8\n";
	size_t piece;

	for (piece = 1; piece <= sizeof(text); piece++) {
		struct shell_parser p;
		struct seen s = { 0 };

		shell_parser_init(&p, 0);
		feed_in_pieces(&p, text, sizeof(text) - 1, piece, &s);
		assert_string_equal(s.log.data, "A1PS7EY");
		assert_int_equal(s.pid, 42);
		assert_int_equal(s.status, 3);
		assert_int_equal(s.out.len, 4);
		assert_memory_equal(s.out.data, "a\0\n\377", 4);
		/* the agent's "why" (here its pid) and then stderr */
		assert_int_equal(s.err.len, 4);
		assert_memory_equal(s.err.data, "99E\n", 4);
		assert_int_equal(s.out_tag, 7);
		seen_free(&s);
	}
}

/* Bytes lost on the way (a whole chunk included) show at the end. */
static void
test_agent_counts_catch_a_lost_chunk(void **state)
{
	static const char *const bad[] = {
		"\001P 7 42\n\001o 7 2\nab\001X 7 0 4 0\nSYNC8\n",
		"\001P 7 42\n\001X 7 0 0 1\nSYNC8\n",
		/* the shell's own end when its agent died */
		"\001P 7 42\n\001o 7 1\na\001X 7 0 -1 -1\nSYNC8\n",
	};
	size_t i;

	for (i = 0; i < 3; i++) {
		struct shell_parser p;
		struct seen s = { 0 };

		shell_parser_init(&p, 0);
		shell_parse(&p, bad[i], strlen(bad[i]), record, &s);
		assert_int_equal(s.losses, 1);
		assert_int_equal(s.ends, 0);
		assert_int_equal(s.syncs, 1);
		seen_free(&s);
	}
}

/* An agent killed after a command's end, before its answer to the shell:
 * the shell ends that command a second time, which is no loss of the next
 * one; a loss line for another command still is. */
static void
test_agent_late_second_end(void **state)
{
	static const char text[] = "\001P 7 42\n\001o 7 2\nab\001X 7 0 2 0\n"
				   "\001X 7 0 -1 -1\n\001P 8 43\n\001X 8 1 0 0\n"
				   "\001X 9 0 -1 -1\n";
	struct shell_parser p;
	struct seen s = { 0 };

	shell_parser_init(&p, 0);
	shell_parse(&p, text, sizeof(text) - 1, record, &s);
	assert_int_equal(s.ends, 2);
	assert_int_equal(s.status, 1);
	assert_int_equal(s.losses, 1);
	seen_free(&s);
}

/* hvc0: base64 chunks of both streams, each asking for a go-ahead; raw
 * bytes are never trusted there. */
static void
test_agent_lossy_frames(void **state)
{
	struct shell_parser p;
	struct seen s = { 0 };
	struct strbuf sb;
	const char *raw = "\001P 3 1\n\001o 3 2\nab\001X 3 0 2 0\nSYNC2\n";

	sb_init(&sb);
	sb_adds(&sb, "\001P 9 77\n\001O 9 5\n");
	shell_base64(&sb, "hello", 5);
	sb_adds(&sb, "\n\001E 9 3\n");
	shell_base64(&sb, "err", 3);
	sb_adds(&sb, "\n\001O 9 1\n");
	shell_base64(&sb, "!", 1);
	sb_adds(&sb, "\n\001X 9 1 6 3\n");
	shell_parser_init(&p, 1);
	shell_parse(&p, sb.data, sb.len, record, &s);
	assert_string_equal(s.log.data, "PCCCS9E");
	assert_string_equal(s.out.data, "hello!");
	assert_string_equal(s.err.data, "err");
	assert_int_equal(s.status, 1);
	seen_free(&s);
	sb_free(&sb);

	memset(&s, 0, sizeof(s));
	shell_parser_init(&p, 1);
	shell_parse(&p, raw, strlen(raw), record, &s);
	assert_true(s.losses >= 1);
	assert_int_equal(s.ends, 0);
	assert_int_equal(s.syncs, 1);
	seen_free(&s);
}

static void
test_command_quoting(void **state)
{
	struct strbuf sb;
	const char *cmd = "echo 'it''s' \"$HOME\" \\n\nnext";

	sb_init(&sb);
	shell_command(&sb, 12, cmd, strlen(cmd), NULL, 0, 0);
	assert_string_equal(sb.data, "_atx 12 'echo '\\''it'\\'''\\''s'\\'' "
				     "\"$HOME\" \\n\nnext'\n");
	sb_free(&sb);
	/* a watchdog keeps the stdin slot, empty when there is none */
	sb_init(&sb);
	shell_command(&sb, 7, "true", 4, NULL, 30, 0);
	assert_string_equal(sb.data, "_atx 7 'true' '' 30\n");
	sb_free(&sb);
	sb_init(&sb);
	shell_command(&sb, 8, "cat", 3, "/tmp/in", 5, 0);
	assert_string_equal(sb.data, "_atx 8 'cat' '/tmp/in' 5\n");
	sb_free(&sb);
	sb_init(&sb);
	shell_prelude(&sb, 0, 0, 3);
	assert_non_null(strstr(sb.data, "_atx()"));
	/* The functions are one line (the guest shell reads it as one
	 * command), then SYNC: without the agent, no upload between. */
	assert_string_equal(strchr(sb.data, '\n'), "\n_atnb\necho SYNC3\n");
	sb_free(&sb);
	sb_init(&sb);
	shell_prelude(&sb, 1, 2, 4);
	assert_non_null(strstr(sb.data, "\n_atup "));
	assert_non_null(strstr(sb.data, " 1 2 'f0VMR"));  /* lossy, window 2, ELF */
	assert_non_null(strstr(sb.data, "'\n_atnb\necho SYNC4\n"));
	sb_free(&sb);
}

/* Once the shell said it reads them so: a long ASCII command as its bytes
 * after a header, anything else quoted as before. */
static void
test_bulk_commands(void **state)
{
	const char *lng = "printf '%s\\n' \"$HOME\" 'it''s' 'a command long enough "
			  "to go raw, and more'\ncat <<EOF\nx\nEOF";
	const char *utf = "echo 'd\303\251j\303\240 vu: a command long enough to "
			  "go raw after its header line, were it all ASCII'";
	struct strbuf sb, want;

	(void)state;
	assert_true(strlen(lng) >= SHELL_BULK_MIN);
	sb_init(&sb);
	sb_init(&want);
	shell_command(&sb, 9, lng, strlen(lng), NULL, 0, 1);
	sb_addf(&want, "_atxn 9 %zu\n%s", strlen(lng), lng);
	assert_string_equal(sb.data, want.data);
	sb_free(&sb);
	sb_init(&sb);
	shell_command(&sb, 10, lng, strlen(lng), "/tmp/in", 5, 1);
	sb_free(&want);
	sb_init(&want);
	sb_addf(&want, "_atxn 10 %zu '/tmp/in' 5\n%s", strlen(lng), lng);
	assert_string_equal(sb.data, want.data);
	sb_free(&sb);
	sb_free(&want);
	/* short, or not ASCII: quoted on the line */
	sb_init(&sb);
	shell_command(&sb, 11, "true", 4, NULL, 30, 1);
	assert_string_equal(sb.data, "_atx 11 'true' '' 30\n");
	sb_free(&sb);
	sb_init(&sb);
	assert_true(strlen(utf) >= SHELL_BULK_MIN);
	shell_command(&sb, 12, utf, strlen(utf), NULL, 0, 1);
	assert_true(!strncmp(sb.data, "_atx 12 'echo ", 14));
	sb_free(&sb);
	sb_init(&sb);
	shell_probe(&sb, 5);
	assert_non_null(strstr(sb.data, "then echo SYNC5; command -v _atnb "
				    ">/dev/null 2>&1 && _atnb || :; else"));
	sb_free(&sb);
}

/* "\001N 1" turns it on, "\001N 0" says no; anything else there is not it. */
static void
test_bulk_line(void **state)
{
	const char *text = "\001N 1\n\001N 0\n\001N\n\001N 2\n\001N 1x\n";
	struct shell_parser p;
	struct seen s = { 0 };

	(void)state;
	shell_parser_init(&p, 0);
	shell_parse(&p, text, strlen(text), record, &s);
	assert_string_equal(s.log.data, "N1N0JJJ");
	seen_free(&s);
}

static void
test_base64_matches_known_vectors(void **state)
{
	static const char *const in[] = { "", "f", "fo", "foo", "foob",
					   "fooba", "foobar" };
	static const char *const out[] = { "", "Zg==", "Zm8=", "Zm9v",
					   "Zm9vYg==", "Zm9vYmE=", "Zm9vYmFy" };
	size_t i;

	for (i = 0; i < 7; i++) {
		struct strbuf sb;

		sb_init(&sb);
		shell_base64(&sb, in[i], strlen(in[i]));
		assert_string_equal(sb.data ? sb.data : "", out[i]);
		sb_free(&sb);
	}
}

/* The probe of a handed-over connection, in the shells a guest may run:
 * BARE without the prelude, SYNC with it; and what the parser makes of
 * the answers. */
static void
test_probe_tells_a_new_shell_from_a_living_one(void **state)
{
	static const char *const shells[] = { "sh", "bash", "dash",
					      "busybox ash" };
	struct shell_parser p;
	struct seen s = { 0 };
	size_t i;
	int ran = 0, with;

	for (i = 0; i < sizeof(shells) / sizeof(shells[0]); i++) {
		char have[128], out[64];

		snprintf(have, sizeof(have), "command -v %.*s >/dev/null 2>&1",
			 (int)strcspn(shells[i], " "), shells[i]);
		if (system(have) != 0)
			continue;
		for (with = 0; with < 2; with++) {
			struct strbuf script, cmd;
			FILE *f;
			size_t n;

			sb_init(&script);
			sb_init(&cmd);
			if (with)
				sb_adds(&script, "_atx() { :; }\n");
			shell_probe(&script, 12);
			sb_addf(&cmd, "%s -c ", shells[i]);
			sb_add_shell_quoted(&cmd, script.data, script.len);
			f = popen(cmd.data, "r");
			assert_non_null(f);
			n = fread(out, 1, sizeof(out) - 1, f);
			out[n] = '\0';
			assert_int_equal(pclose(f), 0);
			assert_string_equal(out, with ? "SYNC12\n" : "BARE12\n");
			sb_free(&script);
			sb_free(&cmd);
		}
		ran++;
	}
	assert_true(ran > 0);
	shell_parser_init(&p, 0);
	shell_parse(&p, "BARE12\nSYNC12\nBARE\n", 19, record, &s);
	assert_string_equal(s.log.data, "R12YJ");
	seen_free(&s);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_banner_split_across_reads),
		cmocka_unit_test(test_binary_roundtrip_all_piece_sizes),
		cmocka_unit_test(test_empty_output_and_no_trailing_newline),
		cmocka_unit_test(test_megabyte_line),
		cmocka_unit_test(test_banner_inside_output_is_loss),
		cmocka_unit_test(test_vanished_output_file_is_loss),
		cmocka_unit_test(test_many_losses_in_one_read),
		cmocka_unit_test(test_lossy_overlong_length_is_loss),
		cmocka_unit_test(test_stdout_chunks_stream_before_status),
		cmocka_unit_test(test_lossy_channel_detects_dropped_bytes),
		cmocka_unit_test(test_lossy_chunks_ask_for_a_go_ahead),
		cmocka_unit_test(test_agent_raw_frames),
		cmocka_unit_test(test_agent_counts_catch_a_lost_chunk),
		cmocka_unit_test(test_agent_late_second_end),
		cmocka_unit_test(test_agent_lossy_frames),
		cmocka_unit_test(test_command_quoting),
		cmocka_unit_test(test_bulk_commands),
		cmocka_unit_test(test_bulk_line),
		cmocka_unit_test(test_base64_matches_known_vectors),
		cmocka_unit_test(test_probe_tells_a_new_shell_from_a_living_one),
	};

	return cmocka_run_group_tests_name("shell", tests, NULL, NULL);
}
