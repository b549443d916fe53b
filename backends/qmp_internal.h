/*
 * qmp.c's reader without its socket and thread, for tests/fuzz/fuzz_qmp.c:
 * the bytes a QMP server sends, split into lines and handled as the reader
 * handles them (greeting, events to on_event, replies to waiting callers).
 */
#ifndef ATTESTFS_QMP_INTERNAL_H
#define ATTESTFS_QMP_INTERNAL_H

#include <json-c/json.h>

#include "backends/qmp.h"

struct qmp_input {
	json_tokener *tok;
	struct strbuf buf;        /* a line not yet complete */
	size_t scanned;           /* ...searched for '\n' up to here */
};

/* A connection on fd without its reader; qmp_free() closes fd (if >= 0). */
struct qmp *qmp_new(int fd, qmp_event_fn on_event, qmp_closed_fn on_closed,
		    void *owner);
void qmp_free(struct qmp *q);

void qmp_input_init(struct qmp_input *in);
void qmp_input_free(struct qmp_input *in);
/* Bytes as recv() gave them; n == 0: the end of the stream (a last line
 * without its newline is handled). 0, or -EMSGSIZE: a line too long. */
int qmp_input(struct qmp *q, struct qmp_input *in, const char *chunk,
	      size_t n);

#endif
