/*
 * Starting helper processes: what a forked child does first, and running a
 * command to completion. For the backends' VMMs and for the processes
 * machine/ runs itself (vde_switch, the OCR child). Async-signal-safe where
 * it says so: those run between fork() and exec() in a threaded daemon.
 */
#ifndef ATTESTFS_PROC_H
#define ATTESTFS_PROC_H

#include <sys/types.h>

#include "common/util.h"

/*
 * First thing in a forked child: default signal dispositions, empty signal
 * mask, PR_SET_PDEATHSIG(SIGKILL) (fires when the forking *thread* exits),
 * and _exit(127) when the parent is already gone. Async-signal-safe.
 */
void proc_child_init(pid_t parent);
/* Close every fd >= first (close_range, or a loop). Async-signal-safe. */
void proc_close_from(unsigned first);
/* In a forked child: fd 0 from /dev/null, 1 and 2 appended to log_path
 * (or /dev/null when NULL), every other fd closed. Async-signal-safe. */
void proc_child_stdio(const char *log_path);

/*
 * Run argv (PATH lookup) to completion in a session of its own, stdin from
 * /dev/null, collecting stdout and stderr; after timeout_ms it is killed
 * and the result is -ETIMEDOUT. Returns the wait status (>= 0) or -errno.
 */
int proc_run_capture(char *const argv[], int timeout_ms, struct strbuf *out,
		     struct strbuf *errout);

/* A process's parent, process group and session from /proc/PID/stat: 0,
 * or -errno (-ENOENT: no such process; -EIO: a line not understood). */
int proc_stat_ids(pid_t pid, long *ppid, long *pgrp, long *sid);

#endif
