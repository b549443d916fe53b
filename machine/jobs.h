/* jobs.c and job_output.c: a job and what they share. */
#ifndef ATTESTFS_MACHINE_JOBS_H
#define ATTESTFS_MACHINE_JOBS_H

#include "machine/internal.h"

/* ${:?}: a shell without the private directory fails, never uses /j */
#define JOB_DIR "${_atr:?}/j/"
#define POLL_FIRST_MS 50
#define POLL_MAX_MS 1000

enum job_state { JOB_CREATED, JOB_STARTING, JOB_RUNNING, JOB_DONE };

struct job_reader {
	struct job_reader *next;
	struct mreq *r;
	enum job_file f;
	uint64_t offset;
	int fetching;
};

/* A write answered by a guest command: the start (cmd) or stdin. */
struct job_call {
	struct job_call *next;
	struct job *j;            /* held: one reference */
	struct mreq *r;           /* NULL once answered */
	struct cmd *c;
	enum job_file f;          /* JOB_CMD or JOB_STDIN */
	size_t len;               /* what the write took */
};

struct job {
	struct job *next;
	struct machine *m;
	char *name;
	enum job_state state;
	struct strbuf env;        /* "export K=V; " ... */
	char *dir;
	char *user;
	int timeout;
	int tty_rows, tty_cols;   /* ctl "tty": on a pty (0: pipes) */
	int64_t deadline;
	int timed_out;
	int status;
	uint64_t size[2];         /* stdout, stderr as last seen */
	struct job_reader *readers;
	struct job_call *calls;   /* writes in flight */
	struct cmd *poll;         /* holds a reference while in flight */
	int poll_ms;
	int64_t next_poll;
	unsigned generation;      /* the boot it runs in */
	int removed;              /* rmdir'ed: no name, freed at refs == 0 */
	int refs;                 /* the name, calls, the poll */
};

/* machine/agent/pty.c, embedded: runs a "tty" job's command on a pty */
extern const unsigned char job_pty_blob[];
extern const size_t job_pty_blob_len;

/* jobs.c, with the lock held: the job named so (NULL: none); let go of a
 * reference (the last one frees it). */
struct job *job_find(struct machine *m, const char *name);
void job_put(struct machine *m, struct job *j);

/* job_output.c, with the lock held: poll the job now (somebody waits);
 * start a poll when one is due; answer the readers the output allows. */
void job_wake_polling(struct job *j);
void job_poll_start(struct job *j);
void job_readers_serve(struct job *j);

#endif
