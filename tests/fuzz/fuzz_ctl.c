/*
 * Control messages as written to the mount: <m>/ctl (machine_ctl's word
 * splitting, verb table and the verbs' arguments), the root's ctl
 * (vmset_ctl), jobs/<j>/ctl and units/<u>/ctl. The first byte picks the
 * file, the rest is the message.
 *
 * The machines are mock ones and stay stopped: messages that would boot one
 * (start, restore, clone, snapshot, start-all and the units' verbs, all
 * looked up by the same table code as the rest) are skipped, so an input
 * costs no process. After each input the machine must still be stopped
 * and what the message added (log, events, forwards, the job) is dropped.
 */
#include "tests/fuzz/fuzz.h"
#include "tests/fuzz/fuzz_machine.h"

static int
first_word_is(const char *msg, size_t len, const char *const *words)
{
	size_t a = 0, b;

	while (a < len && (msg[a] == ' ' || msg[a] == '\t'))
		a++;
	for (b = a; b < len && msg[b] != ' ' && msg[b] != '\t' &&
		    msg[b] != '\n'; b++)
		;
	for (; *words; words++)
		if (strlen(*words) == b - a && !memcmp(msg + a, *words, b - a))
			return 1;
	return 0;
}

static void
reset(struct vmset *s, struct machine *m)
{
	machine_job_remove(m, "j");
	machine_lock(m);
	if (m->state != MS_STOPPED)
		abort();  /* a message booted the machine */
	free(m->forwards);
	m->forwards = NULL;
	m->n_forwards = 0;
	machine_unlock(m);
	fuzz_log_clear(m);
	pthread_mutex_lock(&s->lock);
	tailbuf_free(&s->events);
	pthread_mutex_unlock(&s->lock);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const char *const boot_verbs[] = { "start", "restore", "clone",
						  "snapshot", "start-all",
						  NULL };
	static const char *const unit_verbs[] = { "start", "stop", "restart",
						  "reload", NULL };
	struct vmset *s = fuzz_vmset();
	struct machine *m = s->machines[0];
	struct fuzz_call c;
	const char *msg = (const char *)data + 1;
	size_t len = size - 1;

	if (size < 1)
		return 0;
	if (machine_job_create(m, "j") < 0)
		abort();
	fuzz_call_init(&c);
	switch (data[0] % 4) {
	case 0:
		if (first_word_is(msg, len, boot_verbs))
			goto skip;
		machine_ctl(m, msg, len, &c.r);
		break;
	case 1:
		if (first_word_is(msg, len, boot_verbs))
			goto skip;
		vmset_ctl(s, msg, len, &c.r);
		break;
	case 2:
		machine_job_write(m, "j", JOB_CTL, msg, len, &c.r);
		break;
	default:
		if (first_word_is(msg, len, unit_verbs))
			goto skip;
		machine_unit_ctl(m, "nginx.service", msg, len, &c.r);
		break;
	}
	fuzz_call_wait(&c);
	reset(s, m);
	return 0;
skip:
	sem_destroy(&c.sem);
	reset(s, m);
	return 0;
}
