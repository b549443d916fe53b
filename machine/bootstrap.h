/*
 * A console machine's pool (bootstrap.c): a guest with NixOS's stock
 * instrumentation has one shell, on hvc0. attestfs gives its VMM the
 * attestfs.shell.N virtserialports as well, and once hvc0's shell answers
 * it starts a shell on each port from there (shell_bootstrap). Then the
 * ports are the machine's pool (shell slot 1 the control shell), as on
 * attestfs's own guests; hvc0 stays idle. When the ports do not come up
 * within a bound, hvc0 serves alone, as before, and the log says why.
 *
 * Slots: 0 is hvc0, 1..n-1 the ports attestfs.shell.0..n-2. A machine
 * without ports (a virtserialport machine, or "shells": 1) uses all its
 * slots always and none of this.
 */
#ifndef ATTESTFS_MACHINE_BOOTSTRAP_H
#define ATTESTFS_MACHINE_BOOTSTRAP_H

#include <stddef.h>
#include <stdint.h>

#include "common/util.h"

struct machine;
struct shell_slot;

/* Which of a console machine's shells take commands. */
enum bs_state {
	BS_WAIT,  /* not decided yet (the machine starts): hvc0 */
	BS_POOL,  /* the port shells answer: they serve, hvc0 idles */
	BS_HVC0,  /* the ports did not come up: hvc0 alone */
};

/* ---- the guest's part, as text (shell_bootstrap.c, pure) ------------ */

/* The command (for the hvc0 shell, framed as any other) that starts a
 * respawning backdoor shell on each attestfs.shell.N port of the guest,
 * waiting up to 1 s for n_ports of them to be named, and prints one line
 * per port: "port attestfs.shell.N /dev/vportXpY", or "none REASON". */
void shell_bootstrap(struct strbuf *out, unsigned n_ports);
/* Its output read: how many of the ports 0..n_ports-1 it started (each
 * once); why (a printable line for the log) is set exactly when that is
 * fewer than n_ports, and left empty otherwise. */
int shell_bootstrap_reply(const char *out, size_t len, unsigned n_ports,
			  struct strbuf *why);

/* ---- the machine's part (bootstrap.c), all with the lock held -------- */

/* How many shell slots m has: its pool plus hvc0 on a console machine. */
size_t bootstrap_n_slots(const struct machine *m);
/* The slots that take commands now: [*lo, *lo + *n); *lo is the control
 * shell. */
void bootstrap_slots(const struct machine *m, size_t *lo, size_t *n);
/* A boot begins or ends: hvc0 until the ports answer again. */
void bootstrap_reset(struct machine *m);
/* On the way from starting to running (hvc0 answered): 1 = not yet, the
 * pool is being started and bootstrap.c sets running itself. */
int bootstrap_hold_start(struct machine *m);
/* A port's shell answered (its prelude, or a restored shell its SYNC). */
void bootstrap_shell_ready(struct machine *m, struct shell_slot *s);
/* The supervisor's deadline: hvc0 alone once the bound has passed. */
void bootstrap_check(struct machine *m, int64_t now, int64_t *next);
/* info's "channel" line: what the commands run on now. */
void bootstrap_render_info(struct machine *m, struct strbuf *sb);

#endif
