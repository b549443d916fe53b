/*
 * What a QMP server sends (backends/qmp.c's reader): greeting, replies and
 * events, bytes as recv() would hand them over. The first byte picks how
 * the stream is cut into reads. The oracle beyond the sanitizers: the
 * events delivered do not depend on the cuts.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "backends/qmp_internal.h"
#include "tests/fuzz/fuzz.h"

static struct strbuf *seen_now;

static void
on_event(void *owner, const char *event, const char *data)
{
	struct strbuf *seen = *(struct strbuf **)owner;

	if (!event || !data)
		abort();
	sb_addf(seen, "%s %s\n", event, data);
}

/* One connection for all inputs, as the reader has: the end of a stream
 * leaves it as new. */
static void
feed(const char *buf, size_t len, size_t piece, struct strbuf *seen)
{
	static struct qmp *q;
	static struct qmp_input in;
	size_t off = 0;

	if (!q) {
		q = qmp_new(-1, on_event, NULL, &seen_now);
		qmp_input_init(&in);
	}
	seen_now = seen;
	while (off < len) {
		size_t n = len - off < piece ? len - off : piece;

		if (qmp_input(q, &in, buf + off, n) < 0)
			abort();  /* no input here comes near the limit */
		off += n;
	}
	qmp_input(q, &in, NULL, 0);
	if (in.buf.len || in.scanned)
		abort();
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct strbuf whole, pieces;
	size_t piece;

	if (size < 1)
		return 0;
	piece = data[0] + 1u;
	sb_init(&whole);
	sb_init(&pieces);
	feed((const char *)data + 1, size - 1, size, &whole);
	feed((const char *)data + 1, size - 1, piece, &pieces);
	if (whole.len != pieces.len ||
	    (whole.len && memcmp(whole.data, pieces.data, whole.len))) {
		fprintf(stderr, "whole:\n%s---\nin pieces of %zu:\n%s",
			whole.data, piece, pieces.data);
		abort();
	}
	sb_free(&whole);
	sb_free(&pieces);
	return 0;
}
