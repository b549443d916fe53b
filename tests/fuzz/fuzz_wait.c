/*
 * Wait conditions (machine/wait_parse.c), as written to <m>/wait:
 * "[timeout=SECS] status WORD | console REGEX | unit NAME [STATE]
 * [user=NAME] | port N [closed] | ...". The regular expressions are
 * compiled as a wait compiles them.
 */
#include "tests/fuzz/fuzz.h"
#include "tests/fuzz/fuzz_machine.h"

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct machine *m = fuzz_vmset()->machines[0];
	int ret;

	machine_lock(m);
	ret = tx_wait_parse(m, (const char *)data, size);
	machine_unlock(m);
	if (ret != 0 && ret != -EINVAL)
		abort();
	fuzz_log_clear(m);
	return 0;
}
