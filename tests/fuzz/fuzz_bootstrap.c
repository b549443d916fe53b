/*
 * What a guest answers to the command that starts its port shells
 * (machine/shell_bootstrap.c): any bytes. Oracle: the count is within
 * 0..n_ports, a reason is given exactly when it is short, and the reason
 * is printable (it goes into the log as it is).
 */
#include <stdlib.h>
#include <string.h>

#include "common/util.h"
#include "machine/bootstrap.h"
#include "tests/fuzz/fuzz.h"

int
LLVMFuzzerInitialize(int *argc, char ***argv)
{
	return 0;
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	unsigned n_ports = size ? data[0] % 18 : 4;
	struct strbuf why;
	size_t i;
	int found;

	sb_init(&why);
	found = shell_bootstrap_reply(size ? (const char *)data + 1 : "",
				      size ? size - 1 : 0, n_ports, &why);
	if (found < 0 || (unsigned)found > n_ports)
		abort();
	if (((unsigned)found < n_ports) != (why.len > 0))
		abort();
	for (i = 0; i < why.len; i++)
		if (why.data[i] < ' ' || why.data[i] > '~')
			abort();
	sb_free(&why);
	return 0;
}
