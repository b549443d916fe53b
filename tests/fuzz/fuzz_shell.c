/*
 * The guest shell framing (machine/shell.c) as a hostile guest would send
 * it, on both channels: the virtserialport pool (fast framing) and hvc0
 * (lossy: "LEN BASE64" lines, "\001O TAG LEN" chunks, length checks), with
 * the guest agent's frames too (raw "\001o/e TAG LEN" chunks, base64
 * "\001O/E" chunks, "\001X" ends with byte counts, "\001A" lines).
 *
 * The first byte picks the channel and how the bytes are cut into reads.
 * The oracle beyond the sanitizers: the events must not depend on where
 * read() cut the stream, so the same bytes are parsed whole and in pieces
 * and the two transcripts compared.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "machine/shell.h"
#include "tests/fuzz/fuzz.h"

struct transcript {
	struct strbuf log;
	int last;  /* the previous event, to join split output */
};

static void
record(void *ctx, enum shell_event ev, long long tag, long long num,
       const char *data, size_t len)
{
	struct transcript *t = ctx;

	if ((ev == SHELL_EV_STDOUT || ev == SHELL_EV_STDERR) &&
	    (!data || !len))
		abort();  /* output events carry bytes */
	/* One read may deliver output in several events: join them. */
	if ((ev == SHELL_EV_STDOUT || ev == SHELL_EV_STDERR) &&
	    t->last == (int)ev) {
		sb_add(&t->log, data, len);
		return;
	}
	/* binary: printf here cost a third of the time */
	{
		long long head[4] = { -1, ev, tag, num };

		sb_add(&t->log, head, sizeof(head));
	}
	if (data && ev != SHELL_EV_JUNK)
		sb_add(&t->log, data, len);
	else if (data)
		sb_add(&t->log, &len, sizeof(len));
	t->last = (int)ev;
}

static void
parse(int lossy, const char *buf, size_t len, size_t piece,
      struct transcript *t)
{
	static struct shell_parser parser;
	struct shell_parser *p = &parser;
	size_t off = 0;

	shell_parser_init(p, lossy);
	sb_init(&t->log);
	t->last = -1;
	while (off < len) {
		size_t n = len - off < piece ? len - off : piece;

		shell_parse(p, buf + off, n, record, t);
		off += n;
	}
	if (p->line_len >= sizeof(p->line))
		abort();
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct transcript whole, pieces;
	int lossy;
	size_t piece;

	if (size < 1)
		return 0;
	lossy = data[0] & 1;
	piece = (data[0] >> 1) + 1;
	data++;
	size--;
	parse(lossy, (const char *)data, size, size ? size : 1, &whole);
	parse(lossy, (const char *)data, size, piece, &pieces);
	if (whole.log.len != pieces.log.len ||
	    memcmp(whole.log.data ? whole.log.data : "",
		   pieces.log.data ? pieces.log.data : "", whole.log.len)) {
		fprintf(stderr, "whole and in pieces of %zu differ\n", piece);
		abort();
	}
	sb_free(&whole.log);
	sb_free(&pieces.log);
	return 0;
}
