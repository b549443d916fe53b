/*
 * A vmset of stopped mock machines for the targets that fuzz machine/'s
 * parsers: they log the reason of a refusal to the machine's log, so they
 * need a real machine. Its log stays in memory (no disk write per input)
 * and is emptied after each input, so only what one input does accumulates.
 */
#ifndef ATTESTFS_FUZZ_MACHINE_H
#define ATTESTFS_FUZZ_MACHINE_H

#include <errno.h>
#include <semaphore.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "machine/internal.h"

static struct vmset *fuzz_set;
static char fuzz_dir[64];

static inline void
fuzz_vmset_end(void)
{
	vmset_destroy(fuzz_set);
	remove_tree(fuzz_dir);
}

static inline struct vmset *
fuzz_vmset(void)
{
	struct attest_config cfg;
	struct vmset_options opt = { 0 };
	struct aerr err = { "" };
	const char *json = "{\"machines\": {\"m\": {\"backend\": \"mock\"}, "
			   "\"other\": {\"backend\": \"mock\"}}}";
	size_t i;

	if (fuzz_set)
		return fuzz_set;
	strcpy(fuzz_dir, "/tmp/attestfs-fuzz.XXXXXX");
	if (!mkdtemp(fuzz_dir) ||
	    config_parse(json, "/f/machines.json", "/f", &cfg, &err) < 0)
		abort();
	opt.state_dir = fuzz_dir;
	opt.timeout = 20;
	opt.mountpoint = "/vms";
	if (vmset_create(&opt, &cfg, &fuzz_set, &err) < 0) {
		fprintf(stderr, "vmset_create: %s\n", err.msg);
		abort();
	}
	for (i = 0; i < fuzz_set->n_machines; i++) {
		struct machine *m = fuzz_set->machines[i];

		machine_lock(m);
		rotfile_close(&m->log_file);   /* writes then go nowhere */
		machine_unlock(m);
	}
	atexit(fuzz_vmset_end);
	return fuzz_set;
}

static inline void
fuzz_log_clear(struct machine *m)
{
	machine_lock(m);
	tailbuf_free(&m->log);   /* empty again, still bounded */
	machine_unlock(m);
}

/* A request whose done() may come from another thread. */
struct fuzz_call {
	struct mreq r;
	sem_t sem;
};

static inline void
fuzz_call_done(struct mreq *r)
{
	sem_post(&((struct fuzz_call *)r)->sem);
}

static inline void
fuzz_call_init(struct fuzz_call *c)
{
	memset(c, 0, sizeof(*c));
	c->r.done = fuzz_call_done;
	sem_init(&c->sem, 0, 0);
}

/* The result; a request that never ends is a hang (libFuzzer's -timeout). */
static inline int
fuzz_call_wait(struct fuzz_call *c)
{
	while (sem_wait(&c->sem) < 0)
		;
	sem_destroy(&c->sem);
	free(c->r.data);
	return c->r.result;
}

#endif
