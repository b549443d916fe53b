/*
 * Threads that wake for a few microseconds of work at a time (FUSE workers,
 * a shell's worker) and should not queue behind a CPU-bound one (a TCG
 * vCPU running the guest).
 */
#ifndef ATTESTFS_SCHED_H
#define ATTESTFS_SCHED_H

/* Microseconds: the fair scheduler's shortest slice (Linux clamps to it). */
#define SCHED_SHORT_SLICE_US 100

/*
 * Ask the fair scheduler for a short slice for the calling thread (EEVDF's
 * custom slice, Linux >= 6.12; older kernels ignore it): woken, the thread
 * then preempts a task that is running out a longer slice instead of waiting
 * for it to end. Its nice value stays; whatever it starts afterwards (a
 * thread, a VMM) gets the default slice. Unprivileged. 0 or -errno.
 */
int sched_short_slice(void);

#endif
