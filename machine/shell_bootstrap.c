/*
 * The guest side of a console machine's pool, as text (no I/O): the command
 * the hvc0 backdoor runs to start a backdoor shell on each attestfs.shell.N
 * virtserialport, and the reading of what it says. bootstrap.c sends it.
 *
 *   $ # in the hvc0 shell of a stock NixOS guest (attestfs sends it framed)
 *   $ <shell_bootstrap(4)>
 *   port attestfs.shell.0 /dev/vport1p1
 *   ...
 *   port attestfs.shell.3 /dev/vport1p4
 */
#include "machine/bootstrap.h"
#include "machine/shell.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/*
 * One port's respawn loop, run as `sh -c LOOP attestfs-shell DEV SHELL`: the port
 * opens once, read-write, and the loop keeps it open (fd 3), so a second
 * loop on the same port (a bootstrap run again, after a restore say) fails
 * to open it (EBUSY) and leaves. Each shell greets, then reads the port; at
 * EOF (the host went away) it exits and the next one greets, which blocks
 * until the host is back, as tests/guest/backdoor does. SHELL is the hvc0
 * backdoor's own shell when that is bash (NixOS's: a command there and on a
 * port means the same, bashisms included), else /bin/sh. No single quotes:
 * the whole command is quoted once more when it is sent.
 */
static const char port_loop[] =
	"exec 3<>\"$1\" || exit 1; cd /tmp 2>/dev/null || cd /; "
	"while :; do ( exec 0<&3 1>&3 3>&-; "
	"echo \"" SHELL_BANNER "\"; exec \"$2\" ); sleep 0.05; done";

/*
 * POSIX sh for bash and busybox ash (it runs in the hvc0 shell, whatever
 * that is). The port names appear in sysfs once the host has named them:
 * normally long before hvc0's shell answers (hvc0 is port 0 of the same
 * device), so the poll below (20 ms rounds, at most 1 s) ends at once. Each
 * loop goes into its own session (setsid: the hvc0 tty's hangup does not
 * reach it) with no descriptor of the hvc0 shell's, and inherits its
 * environment (NixOS's backdoor exports USER, HOME, PAGER, /etc/profile).
 * Stderr of the shells goes to the serial console, as the backdoor's does.
 */
void
shell_bootstrap(struct strbuf *out, unsigned n_ports)
{
	struct strbuf loop;

	sb_init(&loop);
	sb_add_shell_quoted(&loop, port_loop, strlen(port_loop));
	sb_adds(out,
		"_atbs=/sys/class/virtio-ports; "
		"if [ ! -d $_atbs ]; then echo \"none the guest has no "
		"$_atbs (no virtio_console?)\"; exit 0; fi; _atbi=0; "
		"while :; do _atbl=; _atbn=0; for _atbp in $_atbs/*; do "
		"[ -r $_atbp/name ] || continue; "
		"read -r _atbm <$_atbp/name || continue; case $_atbm in "
		"attestfs.shell.[0-9]*) _atbn=$((_atbn + 1)); "
		"_atbl=\"$_atbl ${_atbp##*/}:$_atbm\";; esac; done; ");
	sb_addf(out, "if [ $_atbn -ge %u ] || [ $_atbi -ge 50 ]; then break; "
		"fi; _atbi=$((_atbi + 1)); sleep 0.02; done; ", n_ports);
	sb_adds(out,
		"if [ $_atbn = 0 ]; then echo \"none no virtserialport is "
		"named attestfs.shell.N in the guest\"; exit 0; fi; "
		"_atbh=/bin/sh; [ -n \"${BASH:-}\" ] && [ -x \"$BASH\" ] && "
		"_atbh=$BASH; "
		"_atbe=/dev/null; { true >/dev/ttyS0; } 2>/dev/null && "
		"_atbe=/dev/ttyS0; _atbz=; command -v setsid >/dev/null "
		"2>&1 && _atbz=setsid; "
		"for _atbx in $_atbl; do _atbd=/dev/${_atbx%%:*}; "
		"if [ ! -c $_atbd ]; then echo \"nodev ${_atbx#*:} $_atbd\"; "
		"continue; fi; $_atbz /bin/sh -c ");
	sb_add(out, loop.data, loop.len);
	sb_adds(out, " attestfs-shell $_atbd \"$_atbh\" </dev/null >/dev/null "
		"2>$_atbe & echo \"port ${_atbx#*:} $_atbd\"; done");
	sb_free(&loop);
}

/* The number N of "attestfs.shell.N", or -1. */
static int
port_number(const char *name, size_t len)
{
	static const char prefix[] = "attestfs.shell.";
	size_t plen = sizeof(prefix) - 1, i;
	int n = 0;

	if (len <= plen || memcmp(name, prefix, plen) != 0 || len - plen > 3)
		return -1;
	for (i = plen; i < len; i++) {
		if (name[i] < '0' || name[i] > '9')
			return -1;
		n = n * 10 + (name[i] - '0');
	}
	return n;
}

/* A guest's words for the log: printable, and not too many. */
static void
add_text(struct strbuf *sb, const char *s, size_t len)
{
	size_t i;

	for (i = 0; i < len && i < 200; i++)
		sb_add(sb, s[i] >= ' ' && s[i] < 127 ? &s[i] : "?", 1);
}

/* One line of the reply: a port found (its number, once), or a reason. */
static void
reply_line(const char *line, size_t len, unsigned n_ports, unsigned *seen,
	   struct strbuf *why)
{
	const char *sp;
	int n;

	if (len > 5 && !memcmp(line, "port ", 5)) {
		sp = memchr(line + 5, ' ', len - 5);
		n = port_number(line + 5, sp ? (size_t)(sp - line - 5) :
					       len - 5);
		if (n >= 0 && (unsigned)n < n_ports && n < 32)
			*seen |= 1u << n;
	} else if (len > 5 && !memcmp(line, "none ", 5) && !why->len) {
		add_text(why, line + 5, len - 5);
	} else if (len > 6 && !memcmp(line, "nodev ", 6) && !why->len) {
		sb_adds(why, "no device node for ");
		add_text(why, line + 6, len - 6);
	}
}

int
shell_bootstrap_reply(const char *out, size_t len, unsigned n_ports,
		      struct strbuf *why)
{
	const char *p = out, *end = out + len;
	unsigned seen = 0, i;
	int found = 0;

	while (p && p < end) {
		const char *nl = memchr(p, '\n', (size_t)(end - p));
		size_t n = nl ? (size_t)(nl - p) : (size_t)(end - p);

		reply_line(p, n, n_ports, &seen, why);
		p += n + 1;
	}
	for (i = 0; i < n_ports && i < 32; i++)
		found += (seen >> i) & 1;
	/* A reason only for a shortfall, and then always one. */
	if ((unsigned)found >= n_ports)
		sb_free(why);
	else if (!why->len)
		sb_addf(why, "the guest has %d of the %u attestfs.shell ports",
			found, n_ports);
	return found;
}
