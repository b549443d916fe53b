/*
 * The guest agent (machine/agent/agent.c, the very binary the daemon
 * uploads) with the real prelude in real shells (dash, bash, busybox ash),
 * over a socketpair as on a virtserialport, and through an emulation of
 * hvc0 that drops what does not fit its buffer, as QEMU does. As root the
 * shell gets a private mount namespace with its own /run and /tmp (as in
 * test_prelude); otherwise it uses what _atmk finds. Every read waits at
 * most 60 s, so a frame that never ends fails instead of hanging.
 */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>

#include "common/util.h"
#include "machine/shell.h"

#define KEEP (1u << 20)  /* stdout kept for comparison; the rest is hashed */

struct guest {
	pid_t pid;
	int fd;
	int lossy;
	struct shell_parser p;
	int bulk;        /* it said "\001N 1": long commands go raw */
	/* hvc0 emulation: what QEMU's socket holds, and what did not fit */
	int emulate;
	size_t cap;
	struct strbuf held;
	size_t dropped;
};

struct result {
	struct strbuf out, err, agent;
	uint64_t out_len, out_hash;
	long long status, pid;
	int ended, losses, chunks, agent_ok, syncs;
	long long sync_num;
	int kill_at_chunk;  /* lossy: answer "K" to this chunk (1-based) */
	struct guest *g;
};

static void
record(void *ctx, enum shell_event ev, long long tag, long long num,
       const char *data, size_t len)
{
	struct result *r = ctx;
	size_t i;

	switch (ev) {
	case SHELL_EV_STDOUT:
		for (i = 0; i < len; i++)
			r->out_hash = (r->out_hash ^ (unsigned char)data[i]) *
				      1099511628211ULL;
		r->out_len += len;
		if (r->out.len < KEEP)
			sb_add(&r->out, data, len);
		break;
	case SHELL_EV_STDERR:
		sb_add(&r->err, data, len);
		break;
	case SHELL_EV_PID:
		r->pid = num;
		break;
	case SHELL_EV_STATUS:
		r->status = num;
		break;
	case SHELL_EV_END:
		r->ended = 1;
		break;
	case SHELL_EV_LOSS:
		r->losses++;
		break;
	case SHELL_EV_SYNC:
		r->syncs++;
		r->sync_num = num;
		break;
	case SHELL_EV_AGENT:
		r->agent_ok = (int)num;
		sb_add(&r->agent, data, len);
		break;
	case SHELL_EV_BULK:
		r->g->bulk = (int)num && !r->g->lossy;
		break;
	case SHELL_EV_CHUNK:
		r->chunks++;
		if (r->g->lossy) {
			const char *ack = r->losses ||
						  r->chunks == r->kill_at_chunk ?
					  "K\n" : ".\n";

			assert_int_equal(write_all(r->g->fd, ack, 2), 0);
		}
		break;
	default:
		break;
	}
}

static void
result_init(struct result *r, struct guest *g)
{
	memset(r, 0, sizeof(*r));
	r->out_hash = 14695981039346656037ULL;
	r->status = -1;
	r->g = g;
}

static void
result_free(struct result *r)
{
	sb_free(&r->out);
	sb_free(&r->err);
	sb_free(&r->agent);
}

/* Bytes from the guest into the parser; through the emulated hvc0 socket
 * when set: it takes what fits and drops the rest, and the host reads it
 * only when the guest has been quiet a while (a slow host). */
static int
pump_for(struct guest *g, struct result *r, int ms)
{
	static char buf[1 << 16];
	struct pollfd pfd = { .fd = g->fd, .events = POLLIN };
	int timeout = g->emulate && g->held.len ? 100 : ms;
	int n = poll(&pfd, 1, timeout);
	ssize_t got;

	if (n == 0 && g->emulate && g->held.len) {
		struct strbuf take = g->held;

		sb_init(&g->held);
		shell_parse(&g->p, take.data, take.len, record, r);
		sb_free(&take);
		return 1;
	}
	if (n <= 0)
		return 0;
	got = read(g->fd, buf, sizeof(buf));
	if (got <= 0)
		fail_msg("the guest shell went away");
	if (!g->emulate) {
		shell_parse(&g->p, buf, (size_t)got, record, r);
		return 1;
	}
	if (g->held.len + (size_t)got > g->cap) {
		size_t fit = g->cap - g->held.len;

		g->dropped += (size_t)got - fit;
		got = (ssize_t)fit;
	}
	sb_add(&g->held, buf, (size_t)got);
	return 1;
}

static void
pump(struct guest *g, struct result *r)
{
	if (!pump_for(g, r, 60000))
		fail_msg("the guest said nothing for 60 s");
}

static int
have(const char *prog)
{
	struct strbuf sb;
	int ok;

	sb_init(&sb);
	sb_addf(&sb, "command -v %s >/dev/null 2>&1", prog);
	ok = system(sb.data) == 0;
	sb_free(&sb);
	return ok;
}

/* Run as root in the guest's namespaces before its shell starts. */
static const char *guest_setup = "";

/* The shell, in its own mount and UTS namespaces as root; run_opts: mount
 * options of /run (noexec: the agent cannot run there). */
static void
guest_start(struct guest *g, const char *shell, int lossy, int window,
	    const char *run_opts, struct result *r)
{
	struct strbuf in, script;
	int sv[2];

	memset(g, 0, sizeof(*g));
	g->lossy = lossy;
	sb_init(&g->held);
	assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv),
			 0);
	sb_init(&script);
	if (geteuid() == 0)
		sb_addf(&script, "mount -t tmpfs -o mode=0755%s none /run && "
			"mount -t tmpfs -o mode=1777 none /tmp && cd /tmp && "
			"%sexec timeout 120 %s", run_opts, guest_setup, shell);
	else
		sb_addf(&script, "exec timeout 120 %s", shell);
	g->pid = fork();
	assert_true(g->pid >= 0);
	if (g->pid == 0) {
		dup2(sv[1], 0);
		dup2(sv[1], 1);
		if (geteuid() == 0)
			execlp("unshare", "unshare", "-m", "-u", "sh", "-c",
			       script.data, (char *)NULL);
		else
			execlp("sh", "sh", "-c", script.data, (char *)NULL);
		_exit(127);
	}
	close(sv[1]);
	sb_free(&script);
	g->fd = sv[0];
	shell_parser_init(&g->p, lossy);
	sb_init(&in);
	shell_prelude(&in, lossy, window, 1);
	signal(SIGPIPE, SIG_IGN);
	assert_int_equal(write_all(g->fd, in.data, in.len), 0);
	sb_free(&in);
	result_init(r, g);
	while (!r->syncs)
		pump(g, r);
}

static void
guest_stop(struct guest *g)
{
	int st;

	close(g->fd);
	kill(g->pid, SIGTERM);
	waitpid(g->pid, &st, 0);
	sb_free(&g->held);
}

static void
send_command(struct guest *g, long long tag, const char *cmd,
	     const char *stdin_path, unsigned timeout)
{
	struct strbuf line;

	sb_init(&line);
	shell_command(&line, tag, cmd, strlen(cmd), stdin_path, timeout,
		      g->bulk);
	assert_int_equal(write_all(g->fd, line.data, line.len), 0);
	sb_free(&line);
}

/* cmd with its stdin from stdin_path (NULL: /dev/null), until its end. */
static void
run_in(struct guest *g, long long tag, const char *cmd,
       const char *stdin_path, unsigned timeout, struct result *r)
{
	send_command(g, tag, cmd, stdin_path, timeout);
	while (!r->ended && !r->losses)
		pump(g, r);
}

static void
run(struct guest *g, long long tag, const char *cmd, unsigned timeout,
    struct result *r)
{
	run_in(g, tag, cmd, NULL, timeout, r);
}

static const char *const shells[] = { "dash", "bash", "busybox sh" };

/* cmd with its stdin from a guest file; its status, stdout and stderr. */
static void
run_status(struct guest *g, long long tag, const char *cmd,
	   const char *stdin_path, long long status, const char *out,
	   const char *err)
{
	struct result r;

	result_init(&r, g);
	run_in(g, tag, cmd, stdin_path, 0, &r);
	assert_int_equal(r.losses, 0);
	assert_int_equal(r.status, status);
	assert_string_equal(r.out.len ? r.out.data : "", out);
	assert_string_equal(r.err.len ? r.err.data : "", err);
	result_free(&r);
}

static int
shell_usable(const char *shell)
{
	char prog[32];

	snprintf(prog, sizeof(prog), "%s", shell);
	prog[strcspn(prog, " ")] = '\0';
	return have(prog);
}

/* shells[i] on the lossless channel with the agent, if it is here. */
static int
start_shell(struct guest *g, size_t i, struct result *r)
{
	if (!shell_usable(shells[i]))
		return 0;
	guest_start(g, shells[i], 0, 2, "", r);
	return 1;
}

/* Every byte value, no trailing newline; stdout and stderr interleaved;
 * an exit by a signal; a background child that keeps stdout open. */
static void
test_frames_in_every_shell(void **state)
{
	char cmd[2048], want[256];
	size_t i, k;

	k = (size_t)snprintf(cmd, sizeof(cmd), "printf '");
	for (i = 0; i < 256; i++) {
		want[i] = (char)i;
		k += (size_t)snprintf(cmd + k, sizeof(cmd) - k, "\\%03o",
				      (unsigned)i);
	}
	snprintf(cmd + k, sizeof(cmd) - k, "'");
	for (i = 0; i < sizeof(shells) / sizeof(shells[0]); i++) {
		struct guest g;
		struct result r;

		if (!start_shell(&g, i, &r))
			continue;
		assert_int_equal(r.agent_ok, 1);
		result_free(&r);

		result_init(&r, &g);
		run(&g, 10, cmd, 0, &r);
		assert_int_equal(r.losses, 0);
		assert_int_equal(r.status, 0);
		assert_true(r.pid > 0);
		assert_int_equal(r.out.len, 256);
		assert_memory_equal(r.out.data, want, 256);
		result_free(&r);

		result_init(&r, &g);
		run(&g, 11, "for i in 1 2 3; do echo o$i; echo e$i >&2; done; "
		    "printf tail", 0, &r);
		assert_int_equal(r.status, 0);
		assert_int_equal(r.out.len, 13);
		assert_memory_equal(r.out.data, "o1\no2\no3\ntail", 13);
		assert_int_equal(r.err.len, 9);
		assert_memory_equal(r.err.data, "e1\ne2\ne3\n", 9);
		result_free(&r);

		result_init(&r, &g);
		run(&g, 12, "sh -c 'kill -TERM $$'", 0, &r);
		assert_int_equal(r.status, 128 + SIGTERM);
		result_free(&r);

		/* The frame ends with the command, not with its child. */
		result_init(&r, &g);
		run(&g, 13, "sleep 100 & echo started; exit 4", 0, &r);
		assert_int_equal(r.status, 4);
		assert_int_equal(r.out.len, 8);
		assert_memory_equal(r.out.data, "started\n", 8);
		result_free(&r);

		/* ...and what that child writes later is nobody's output. */
		result_init(&r, &g);
		run(&g, 14, "(sleep 1; echo late) & echo now", 0, &r);
		result_free(&r);
		result_init(&r, &g);
		run(&g, 15, "sleep 2; echo next", 0, &r);
		assert_int_equal(r.out.len, 5);
		assert_memory_equal(r.out.data, "next\n", 5);
		result_free(&r);
		guest_stop(&g);
	}
}

/*
 * bash on a socket takes long commands raw (one read -N); the others keep
 * them quoted on the line. Either way a command is the same: quotes,
 * backslashes, newlines, a here-document, leading blanks, a command just
 * below and at the size that goes raw, one of 100 KiB, one with a stdin
 * file and a watchdog; and the line after a raw command is the next one.
 */
static void
test_bulk_commands_in_every_shell(void **state)
{
	static const char *const cmds[][2] = {
		{ "cat <<'EOF'\na'b\"c\\d $HOME `x`\nEOF\nprintf '%s\\n' \"it's\" "
		  "'and a line long enough to go raw'",
		  "a'b\"c\\d $HOME `x`\nit's\nand a line long enough to go raw\n" },
		{ "\t  echo leading blanks, then the rest of a line long enough "
		  "to go raw, and a newline\n\n",
		  "leading blanks, then the rest of a line long enough to go raw, "
		  "and a newline\n" },
		{ "echo 79 bytes: the longest command still quoted on the line, however long it is",
		  "79 bytes: the longest command still quoted on the line, however long it is\n" },
		{ "echo 80 bytes: the shortest command sent raw, after its header line, as it is...",
		  "80 bytes: the shortest command sent raw, after its header line, as it is...\n" },
		{ "true", "" },
	};
	struct strbuf big;
	size_t i, k;

	(void)state;
	assert_true(strlen(cmds[0][0]) >= SHELL_BULK_MIN);
	assert_true(strlen(cmds[1][0]) >= SHELL_BULK_MIN);
	assert_int_equal(strlen(cmds[2][0]), SHELL_BULK_MIN - 1);
	assert_int_equal(strlen(cmds[3][0]), SHELL_BULK_MIN);
	sb_init(&big);
	sb_adds(&big, "echo big # ");
	while (big.len < 100 * 1024)
		sb_adds(&big, "0123456789abcdef");
	for (i = 0; i < sizeof(shells) / sizeof(shells[0]); i++) {
		struct guest g;
		struct result r;

		if (!start_shell(&g, i, &r))
			continue;
		result_free(&r);
		assert_int_equal(g.bulk, !strcmp(shells[i], "bash"));
		for (k = 0; k < sizeof(cmds) / sizeof(cmds[0]); k++)
			run_status(&g, 20 + (long long)k, cmds[k][0], NULL, 0,
				   cmds[k][1], "");
		run_status(&g, 30, big.data, NULL, 0, "big\n", "");
		run_status(&g, 31, "printf 'stdin of a raw command\\n' >/tmp/bulk-in",
			   NULL, 0, "", "");
		result_init(&r, &g);
		run_in(&g, 32, "cat; echo 'and its watchdog waits'; exit 3",
		       "/tmp/bulk-in", 30, &r);
		assert_int_equal(r.losses, 0);
		assert_int_equal(r.status, 3);
		assert_string_equal(r.out.data,
				    "stdin of a raw command\nand its watchdog waits\n");
		result_free(&r);
		guest_stop(&g);
	}
	sb_free(&big);
}

/* 64 MiB on the lossless channel: every byte, in order. */
static void
test_large_output(void **state)
{
	struct guest g;
	struct result r;
	uint64_t want = 14695981039346656037ULL;
	size_t i;

	guest_start(&g, "dash", 0, 2, "", &r);
	assert_int_equal(r.agent_ok, 1);
	result_free(&r);
	result_init(&r, &g);
	run(&g, 20, "yes 0123456789abcdef0123456789abcde | head -c 67108864",
	    0, &r);
	assert_int_equal(r.losses, 0);
	assert_int_equal(r.status, 0);
	assert_int_equal(r.out_len, 67108864);
	for (i = 0; i < 67108864; i++)
		want = (want ^ (unsigned char)"0123456789abcdef0123456789"
					      "abcde\n"[i % 32]) *
		       1099511628211ULL;
	assert_true(r.out_hash == want);
	result_free(&r);
	guest_stop(&g);
}

/* The agent keeps the command's deadline itself. */
static void
test_timeout_kills(void **state)
{
	struct guest g;
	struct result r;

	guest_start(&g, "dash", 0, 2, "", &r);
	result_free(&r);
	result_init(&r, &g);
	run(&g, 30, "echo before; sleep 100; echo after", 1, &r);
	assert_int_equal(r.status, 128 + SIGKILL);
	assert_string_equal(r.out.data, "before\n");
	result_free(&r);
	/* the shell goes on */
	result_init(&r, &g);
	run(&g, 31, "echo ok", 0, &r);
	assert_int_equal(r.status, 0);
	result_free(&r);
	guest_stop(&g);
}

/*
 * hvc0: QEMU keeps at most ~208 KiB for a slow host and drops the rest;
 * counted with the kernel's overhead for its small writes, far less payload
 * fits (t1210 lost bytes with 128 KiB in flight): the emulation keeps 96 KiB.
 * With a window of 2 chunks (64 KiB of base64) nothing is dropped and all
 * arrives exactly; a window that does not fit is caught as a loss, never
 * returned as wrong bytes, and the shell answers its SYNC afterwards.
 */
static void
test_lossy_channel_paced(void **state)
{
	struct guest g;
	struct result r;
	int i;
	static const char cmd[] =
		"yes 0123456789abcdef0123456789abcde 2>/dev/null | "
		"head -c 1500000; "
		"echo done >&2";

	guest_start(&g, "dash", 1, 2, "", &r);
	assert_int_equal(r.agent_ok, 1);
	result_free(&r);
	g.emulate = 1;
	g.cap = 96 << 10;
	result_init(&r, &g);
	run(&g, 40, cmd, 0, &r);
	assert_int_equal(g.dropped, 0);
	assert_int_equal(r.losses, 0);
	assert_int_equal(r.status, 0);
	assert_int_equal(r.out_len, 1500000);
	assert_string_equal(r.err.data, "done\n");
	assert_true(r.chunks > 1500000 / 24576);
	result_free(&r);
	guest_stop(&g);

	guest_start(&g, "dash", 1, 8, "", &r);
	result_free(&r);
	g.emulate = 1;
	g.cap = 64 << 10;
	result_init(&r, &g);
	run(&g, 41, cmd, 0, &r);
	assert_true(g.dropped > 0);
	assert_int_equal(r.losses, 1);
	assert_int_equal(r.ended, 0);
	/* what the host does after a loss: "K", then SYNC until answered */
	g.emulate = 0;
	sb_free(&g.held);
	assert_int_equal(write_all(g.fd, "K\n", 2), 0);
	for (i = 0; i < 30 && !r.syncs; i++) {
		assert_int_equal(write_all(g.fd, "echo SYNC9\n", 11), 0);
		while (pump_for(&g, &r, 2000) && !r.syncs)
			;
	}
	assert_int_equal(r.syncs, 1);
	result_free(&r);
	guest_stop(&g);
}

/* hvc0: "K" instead of a go-ahead kills the command; its frame ends. */
static void
test_lossy_kill_request(void **state)
{
	struct guest g;
	struct result r;

	guest_start(&g, "bash", 1, 2, "", &r);
	result_free(&r);
	result_init(&r, &g);
	r.kill_at_chunk = 1;
	run(&g, 50, "yes 2>/dev/null", 0, &r);
	assert_int_equal(r.losses, 0);
	assert_int_equal(r.status, 128 + SIGKILL);
	result_free(&r);
	result_init(&r, &g);
	run(&g, 51, "echo ok", 0, &r);
	assert_string_equal(r.out.data, "ok\n");
	result_free(&r);
	guest_stop(&g);
}

/* A shell line that ends by echoing SYNC<n>, sent between commands on a
 * fresh busybox guest with its agent; n. */
static long long
line_between_commands(struct guest *g, int lossy, const char *line)
{
	struct result r;
	long long n;

	guest_start(g, "busybox sh", lossy, 2, "", &r);
	assert_int_equal(r.agent_ok, 1);
	result_free(&r);
	result_init(&r, g);
	assert_int_equal(write_all(g->fd, line, strlen(line)), 0);
	while (!r.syncs)
		pump(g, &r);
	n = r.sync_num;
	result_free(&r);
	return n;
}

/*
 * "C SEC NSEC" between commands (a continued guest's clock, _atclk): the
 * agent answers on ar and serves the next command as before. An invalid
 * time (EINVAL before any permission check) leaves this host's clock alone
 * and answers "1".
 */
static void
test_clock_line_between_commands(void **state)
{
	static const char line[] = "printf 'C 5 2000000000\\n' >&7 && "
				   "read -r _atq <&5; echo SYNC9$_atq\n";
	int lossy;

	for (lossy = 0; lossy < 2; lossy++) {
		struct guest g;

		assert_int_equal(line_between_commands(&g, lossy, line), 91);
		run_status(&g, 70, "echo after", NULL, 0, "after\n", "");
		guest_stop(&g);
	}
}

/*
 * _athost NAME ID (a clone's resume script): the agent sets the kernel's
 * hostname, /etc/hostname and an existing /etc/machine-id, and _athost
 * succeeds; it creates no machine-id. As root only: the shell gets a UTS
 * namespace and a tmpfs /etc of its own, so this host's are never touched.
 */
static void
test_identity_line(void **state)
{
	static const char *const lines[] = {
		"_athost c-7 0123456789abcdef0123456789abcdef; echo SYNC9$?\n",
		"rm /etc/machine-id; _athost c-8 00112233445566778899aabbccddeeff;"
		" echo SYNC9$?\n",
	};
	static const char *const want[] = {
		"c-7\nc-7\n0123456789abcdef0123456789abcdef\n",
		"c-8\nc-8\nno id\n",
	};
	int lossy, i;

	if (geteuid() != 0)
		skip();
	guest_setup = "mount -t tmpfs none /etc && : >/etc/machine-id && ";
	for (lossy = 0; lossy < 2; lossy++) {
		for (i = 0; i < 2; i++) {
			struct guest g;
			struct result r;

			assert_int_equal(line_between_commands(&g, lossy,
							       lines[i]), 90);
			result_init(&r, &g);
			run(&g, 70, "cat /proc/sys/kernel/hostname /etc/hostname; "
			    "cat /etc/machine-id 2>/dev/null || echo no id", 0,
			    &r);
			assert_int_equal(r.losses, 0);
			assert_string_equal(r.out.data, want[i]);
			result_free(&r);
			guest_stop(&g);
		}
	}
}

static int
guest_setup_teardown(void **state)
{
	(void)state;
	guest_setup = "";
	return 0;
}

/* A shell started without its agent says why, and runs a command as the
 * user it runs as (user). */
static void
falls_back(const char *shell, const char *run_opts, const char *why,
	   const char *user)
{
	struct guest g;
	struct result r;
	struct strbuf want;

	guest_start(&g, shell, 0, 2, run_opts, &r);
	assert_int_equal(r.agent_ok, 0);
	assert_non_null(strstr(r.agent.data, why));
	result_free(&r);
	result_init(&r, &g);
	run(&g, 60, "id -un; echo path >&2", 0, &r);
	assert_int_equal(r.status, 0);
	sb_init(&want);
	sb_addf(&want, "%s\n", user);
	assert_string_equal(r.out.data, want.data);
	sb_free(&want);
	assert_string_equal(r.err.data, "path\n");
	result_free(&r);
	guest_stop(&g);
}

/* Where the agent cannot run, the shell says why and works as before. */
static void
test_noexec_falls_back(void **state)
{
	if (geteuid() != 0)
		skip();
	falls_back("dash", ",noexec", "cannot run", "root");
}

/*
 * guest_setup that puts data in the guest as the agent's file, so that _atup
 * finds it there already and does not write it; mode: its mode, dir_owner:
 * the owner of the directory (the shell's user).
 */
static void
place_agent(struct strbuf *setup, const void *data, size_t len,
	    const char *mode, const char *dir_owner)
{
	struct strbuf upload;
	char hash[17];

	sb_init(&upload);
	shell_agent_upload(&upload, 0, 2);
	assert_int_equal(sscanf(upload.data, "_atup %16s", hash), 1);
	sb_free(&upload);
	sb_init(setup);
	sb_addf(setup, "mkdir -m 700 /run/attestfs && printf %%s '");
	shell_base64(setup, data, len);
	sb_addf(setup, "' | base64 -d >/run/attestfs/agent-%s && "
		"chmod %s /run/attestfs/agent-%s && "
		"chown %s /run/attestfs && ", hash, mode, hash, dir_owner);
	guest_setup = setup->data;
}

/*
 * Where the shell may not open the agent's fds through /proc/PID/fd, it says
 * why and works as before. Here the agent is not dumpable: the shell's user
 * (nobody) may run its file but not read it, so /proc/AGENT/fd is root's.
 * The check must not be a special builtin's redirection: its failure would
 * end ash and dash.
 */
static void
test_unopenable_fds_fall_back(void **state)
{
	struct strbuf setup, shell;
	FILE *f;
	int dumpable = -1;
	size_t i;

	if (geteuid() != 0 || !have("setpriv"))
		skip();
	f = fopen("/proc/sys/fs/suid_dumpable", "r");
	assert_non_null(f);
	assert_int_equal(fscanf(f, "%d", &dumpable), 1);
	fclose(f);
	if (dumpable != 0)
		skip(); /* an unreadable program's process stays dumpable */
	place_agent(&setup, shell_agent_blob, shell_agent_blob_len, "711",
		    "nobody");
	for (i = 0; i < sizeof(shells) / sizeof(shells[0]); i++) {
		if (!shell_usable(shells[i]))
			continue;
		sb_init(&shell);
		sb_addf(&shell, "setpriv --reuid=nobody --regid=nogroup "
			"--clear-groups %s", shells[i]);
		falls_back(shell.data, "", "cannot open its FIFOs", "nobody");
		sb_free(&shell);
	}
	guest_setup = "";
	sb_free(&setup);
}

/*
 * An agent that passes the check but dies before it runs (here: a program
 * that fails "run") leaves no shell waiting for its answers: the shell says
 * so and works as before.
 */
static void
test_agent_dies_at_start(void **state)
{
	static const char dies[] = "#!/bin/sh\n[ \"$1\" = check ]\n";
	struct strbuf setup;
	size_t i;

	if (geteuid() != 0)
		skip();
	place_agent(&setup, dies, strlen(dies), "700", "root");
	for (i = 0; i < sizeof(shells) / sizeof(shells[0]); i++)
		if (shell_usable(shells[i]))
			falls_back(shells[i], "", "the agent did not start",
				   "root");
	guest_setup = "";
	sb_free(&setup);
}

/* The agent's sleeps so far (each one wake-up later), from /proc. */
static long long
agent_sleeps(const struct result *r)
{
	char path[64], line[256];
	long long n = -1;
	FILE *f;

	snprintf(path, sizeof(path), "/proc/%.*s/status", (int)r->agent.len,
		 r->agent.data);
	f = fopen(path, "r");
	assert_non_null(f);
	while (fgets(line, sizeof(line), f))
		if (sscanf(line, "voluntary_ctxt_switches: %lld", &n) == 1)
			break;
	fclose(f);
	return n;
}

/*
 * A quick command wakes the agent twice: the shell's two lines. The
 * command's open and close of its output FIFOs wake it not at all (the
 * agent holds a writer of its own), and the FIFOs are kept, not renewed,
 * when nothing else holds them: output stays whole either way.
 */
static void
test_quiet_agent(void **state)
{
	struct guest g;
	struct result r, agent;
	long long before;
	int i;

	guest_start(&g, "dash", 0, 2, "", &agent);
	assert_int_equal(agent.agent_ok, 1);
	result_init(&r, &g);
	run(&g, 70, "true", 0, &r);
	result_free(&r);
	before = agent_sleeps(&agent);
	for (i = 0; i < 20; i++) {
		result_init(&r, &g);
		run(&g, 71 + i, "true", 0, &r);
		assert_int_equal(r.status, 0);
		result_free(&r);
	}
	/* 2 each, and room for the P line's timer on a slow host */
	assert_true(agent_sleeps(&agent) - before <= 20 * 3);
	result_init(&r, &g);
	run(&g, 91, "(echo bg) & wait; exec >&- 2>&-", 0, &r);
	assert_string_equal(r.out.data, "bg\n");
	result_free(&r);
	result_init(&r, &g);
	run(&g, 92, "echo out; echo err >&2", 0, &r);
	assert_string_equal(r.out.data, "out\n");
	assert_string_equal(r.err.data, "err\n");
	result_free(&r);
	result_free(&agent);
	guest_stop(&g);
}

/* A process's state letter and parent from /proc/PID/stat; 0 once gone. */
static char
proc_state(pid_t pid, pid_t *parent)
{
	char path[64], line[512], *after, state = 0;
	int ppid = 0;
	FILE *f;

	snprintf(path, sizeof(path), "/proc/%d/stat", (int)pid);
	f = fopen(path, "r");
	if (!f)
		return 0;
	if (fgets(line, sizeof(line), f) && (after = strrchr(line, ')')))
		sscanf(after + 1, " %c %d", &state, &ppid);
	fclose(f);
	if (parent)
		*parent = (pid_t)ppid;
	return state;
}

/* Until the agent is in one of the states (a signal is not instant); 'Z'
 * is dead, reaped or not. */
static void
wait_agent_state(pid_t pid, const char *states)
{
	int ms;

	for (ms = 0; ms < 60000; ms++) {
		char st = proc_state(pid, NULL);

		if (strchr(states, st ? st : 'Z'))
			return;
		poll(NULL, 0, 1);
	}
	fail_msg("the agent %d never reached a state of \"%s\"", (int)pid,
		 states);
}

/* What a test waits for the agent's shell (its parent) to do. */
enum shell_wait {
	SHELL_READING,  /* sleep with the command reaped, the agent its only
			 * child: in a read, as nothing else blocks it then */
	SHELL_IDLE,     /* read the channel on fd 0, its next command (not
			 * the agent's line after the last end, which a
			 * `read <&5` also reads on fd 0) */
	SHELL_FORKED,   /* have a child that is not the agent: a command */
};

/* The shell's fd 0 is the channel (its fd 1), not the agent's answers:
 * dash and bash read those with `read <&5` on fd 0 too. */
static int
reads_channel(pid_t shell)
{
	char path[64], in[128], out[128];
	ssize_t n_in, n_out;

	snprintf(path, sizeof(path), "/proc/%d/fd/0", (int)shell);
	n_in = readlink(path, in, sizeof(in));
	snprintf(path, sizeof(path), "/proc/%d/fd/1", (int)shell);
	n_out = readlink(path, out, sizeof(out));
	return n_in > 0 && n_in == n_out && !memcmp(in, out, (size_t)n_in);
}

static int
shell_in(pid_t shell, pid_t agent, enum shell_wait what)
{
	char path[96], line[128];
	int has_agent = 0, other = 0;
	FILE *f;

	if (what == SHELL_IDLE)
		snprintf(path, sizeof(path), "/proc/%d/syscall", (int)shell);
	else
		snprintf(path, sizeof(path), "/proc/%d/task/%d/children",
			 (int)shell, (int)shell);
	f = fopen(path, "r");
	assert_non_null(f);
	if (!fgets(line, sizeof(line), f))
		line[0] = '\0';
	fclose(f);
	if (what == SHELL_IDLE)
		return !strncmp(line, "0 0x0 ", 6) && reads_channel(shell);
	for (char *k = strtok(line, " \n"); k; k = strtok(NULL, " \n")) {
		has_agent |= atoi(k) == agent;
		other |= atoi(k) != agent;
	}
	if (what == SHELL_FORKED)
		return other;
	return has_agent && !other && proc_state(shell, NULL) == 'S';
}

/* Until the shell does what, polled every 1 ms for up to 60 s. */
static void
wait_shell(pid_t agent, enum shell_wait what)
{
	static const char *const never[] = {
		"went back to a read", "went back to its stdin",
		"forked the command",
	};
	pid_t shell = 0;
	int ms;

	assert_true(proc_state(agent, &shell) && shell > 1);
	for (ms = 0; ms < 60000; ms++) {
		if (shell_in(shell, agent, what))
			return;
		poll(NULL, 0, 1);
	}
	fail_msg("the shell never %s", never[what]);
}

/* The command sent last ends as a loss; the next one, tag, runs. */
static void
loss_then_next(struct guest *g, long long tag)
{
	struct result r;

	result_init(&r, g);
	while (!r.ended && !r.losses)
		pump(g, &r);
	assert_int_equal(r.losses, 1);
	result_free(&r);
	run_status(g, tag, "echo then", NULL, 0, "then\n", "");
}

/*
 * An agent that dies ends the frame of its command as a loss (the host
 * resynchronises), whenever it dies: during the command (whose writes then
 * fail, however much it has left to write), or after the command's exit
 * and before the agent sent the end (the shell waits for the agent's
 * answer, and EOF says it died). With one found dead before a command,
 * reaped or still a zombie, the command runs without it, with an output
 * larger than the agent's FIFO whole.
 */
static void
test_dead_agent(void **state)
{
	char cmd[128];
	size_t i;

	for (i = 0; i < sizeof(shells) / sizeof(shells[0]); i++) {
		struct guest g;
		struct result r, agent;
		pid_t pid;

		if (!shell_usable(shells[i]))
			continue;
		guest_start(&g, shells[i], 0, 2, "", &agent);
		assert_int_equal(agent.agent_ok, 1);
		/* more than the FIFO holds (1 MiB) after the agent's death */
		snprintf(cmd, sizeof(cmd),
			 "echo x; kill -9 %.*s; head -c 4000000 /dev/zero",
			 (int)agent.agent.len, agent.agent.data);
		result_init(&r, &g);
		run(&g, 100, cmd, 0, &r);
		assert_int_equal(r.losses, 1);
		result_free(&r);
		run_status(&g, 101, "echo after; echo err >&2; exit 3", NULL, 3,
			   "after\n", "err\n");
		result_free(&agent);
		guest_stop(&g);

		/* stopped by the command, killed once the shell has its status */
		guest_start(&g, shells[i], 0, 2, "", &agent);
		assert_int_equal(agent.agent_ok, 1);
		pid = (pid_t)atoi(agent.agent.data);
		snprintf(cmd, sizeof(cmd), "kill -STOP %d", (int)pid);
		send_command(&g, 102, cmd, NULL, 0);
		wait_agent_state(pid, "T");
		wait_shell(pid, SHELL_READING);
		assert_int_equal(kill(pid, SIGKILL), 0);
		loss_then_next(&g, 103);
		result_free(&agent);
		guest_stop(&g);

		guest_start(&g, shells[i], 0, 2, "", &agent);
		pid = (pid_t)atoi(agent.agent.data);
		result_init(&r, &g);
		run(&g, 104, "true", 0, &r);
		result_free(&r);
		assert_int_equal(kill(pid, SIGKILL), 0);
		wait_agent_state(pid, "Z");
		result_init(&r, &g);
		run(&g, 105, "head -c 3000000 /dev/zero", 0, &r);
		assert_int_equal(r.losses, 0);
		assert_int_equal(r.status, 0);
		assert_int_equal(r.out_len, 3000000);
		result_free(&r);
		result_free(&agent);
		guest_stop(&g);
	}
}

/*
 * The agent dies after the shell found it alive and before the command
 * opened its FIFOs: that open fails at once (it goes through the agent's
 * own fds, gone with it), the command ends as a loss, and the next one runs
 * without the agent. The command's stdin, a FIFO that nobody writes yet,
 * holds it before the open (its redirections go in order) until the agent
 * is dead. By the FIFOs' names the open would wait for a reader for ever.
 */
static void
test_agent_dies_before_the_open(void **state)
{
	size_t i;

	for (i = 0; i < sizeof(shells) / sizeof(shells[0]); i++) {
		struct guest g;
		struct result r, agent;
		char guest_in[64], in[160];
		pid_t pid, shell = 0;
		int fd;

		if (!shell_usable(shells[i]))
			continue;
		guest_start(&g, shells[i], 0, 2, "", &agent);
		assert_int_equal(agent.agent_ok, 1);
		pid = (pid_t)atoi(agent.agent.data);
		/* in the guest's /tmp (its own tmpfs as root), which the test
		 * reaches through its shell's root */
		result_init(&r, &g);
		run(&g, 130, "mkfifo /tmp/in.$$ && printf %s /tmp/in.$$", 0, &r);
		assert_int_equal(r.status, 0);
		snprintf(guest_in, sizeof(guest_in), "%.*s", (int)r.out.len,
			 r.out.data);
		result_free(&r);
		assert_true(proc_state(pid, &shell) && shell > 1);
		snprintf(in, sizeof(in), "/proc/%d/root%s", (int)shell, guest_in);
		/* alive at the shell's check, stopped (once it has answered
		 * the shell after the last command): it reads nothing */
		wait_shell(pid, SHELL_IDLE);
		assert_int_equal(kill(pid, SIGSTOP), 0);
		wait_agent_state(pid, "T");
		send_command(&g, 131, "cat", guest_in, 0);
		wait_shell(pid, SHELL_FORKED);
		assert_int_equal(kill(pid, SIGKILL), 0);
		wait_agent_state(pid, "Z");
		/* the command's stdin open goes on, then its stdout's, which
		 * fails at once: nothing is written, as the subshell may be
		 * gone before a write */
		fd = open(in, O_WRONLY | O_CLOEXEC);
		assert_true(fd >= 0);
		close(fd);
		unlink(in);
		loss_then_next(&g, 132);
		result_free(&agent);
		guest_stop(&g);
	}
}

/*
 * Without the agent a command's files are in the shell's directory. Gone
 * for good (here: a file takes each place _atmk tries, and mktemp has no
 * $TMPDIR), each command is reported lost and the shell lives: a failed
 * redirection of exec would end ash. Once a place is free, the next command
 * runs as before.
 */
static void
test_staging_dir_gone(void **state)
{
	char held[64];
	size_t i;

	if (geteuid() != 0)
		skip();
	guest_setup = "export TMPDIR=/nonexistent && ";
	for (i = 0; i < sizeof(shells) / sizeof(shells[0]); i++) {
		struct guest g;
		struct result r;

		if (!shell_usable(shells[i]))
			continue;
		guest_start(&g, shells[i], 0, 0, "", &r);
		assert_int_equal(r.agent_ok, 0);
		result_free(&r);
		result_init(&r, &g);
		run(&g, 70, "rm -rf \"$_atr\" && : >/run/attestfs && "
		    ": >/tmp/.attestfs", 0, &r);
		assert_int_equal(r.losses, 1);
		result_free(&r);
		result_init(&r, &g);
		run(&g, 71, "echo lost", 0, &r);
		assert_int_equal(r.losses, 1);
		result_free(&r);
		/* the shell's mount namespace is timeout's, its parent's */
		snprintf(held, sizeof(held), "/proc/%d/root/run/attestfs",
			 (int)g.pid);
		assert_int_equal(unlink(held), 0);
		run_status(&g, 72, "echo then", NULL, 0, "then\n", "");
		guest_stop(&g);
	}
	guest_setup = "";
}

/* set -x traces what the command ran, nothing of the prelude's (bash
 * marks the depth with more '+'). */
static void
trace_only_its_own(struct guest *g)
{
	struct result r;

	result_init(&r, g);
	run(g, 117, "set -x; echo hi", 0, &r);
	assert_int_equal(r.status, 0);
	assert_string_equal(r.out.data, "hi\n");
	assert_non_null(r.err.data);
	assert_int_equal(strspn(r.err.data, "+") + strlen(" echo hi\n"),
			 r.err.len);
	assert_string_equal(r.err.data + strspn(r.err.data, "+"), " echo hi\n");
	result_free(&r);
}

/*
 * The status is the command's, exactly, however it leaves: exit, a failure
 * under set -e, its own subshell killed by a signal (bash runs an EXIT trap
 * then, with a stale $?: a status reported from such a trap would be 0),
 * exec; its own EXIT trap still runs inside its frame; set -x traces only
 * what it ran; stdin is its file or /dev/null, never the channel. Both
 * channels, every shell: a guard for any change to how a command's end is
 * found (an early status from the command's subshell was tried, stop 21).
 */
static void
test_exact_status(void **state)
{
	size_t i;
	int lossy;

	for (i = 0; i < sizeof(shells) / sizeof(shells[0]); i++) {
		for (lossy = 0; lossy < 2; lossy++) {
			struct guest g;
			struct result r;

			if (!shell_usable(shells[i]))
				continue;
			guest_start(&g, shells[i], lossy, 2, "", &r);
			assert_int_equal(r.agent_ok, 1);
			result_free(&r);
			run_status(&g, 110, "echo x; exit 3", NULL, 3, "x\n", "");
			run_status(&g, 111, "false", NULL, 1, "", "");
			run_status(&g, 112, "set -e; false; echo no", NULL, 1, "",
				   "");
			run_status(&g, 113, "echo x; sh -c 'kill -TERM $PPID'; "
				   "sleep 5", NULL, 128 + SIGTERM, "x\n", "");
			run_status(&g, 114, "exec true", NULL, 0, "", "");
			run_status(&g, 115, "exec sh -c 'echo y; exit 5'", NULL,
				   5, "y\n", "");
			run_status(&g, 116, "trap 'echo bye' EXIT; echo hi", NULL,
				   0, "hi\nbye\n", "");
			trace_only_its_own(&g);
			run_status(&g, 118, "(sleep 1; echo late) & echo now; "
				   "exit 6", NULL, 6, "now\n", "");
			run_status(&g, 119, "printf 'in\\n' >/tmp/atin", NULL, 0,
				   "", "");
			run_status(&g, 120, "cat; exit 2", "/tmp/atin", 2, "in\n",
				   "");
			run_status(&g, 121, "cat; echo end; rm /tmp/atin", NULL,
				   0, "end\n", "");
			guest_stop(&g);
		}
	}
}

static int
setup(void **state)
{
	if (!have("unshare") && geteuid() == 0)
		return -1;
	return 0;
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_frames_in_every_shell),
		cmocka_unit_test(test_bulk_commands_in_every_shell),
		cmocka_unit_test(test_large_output),
		cmocka_unit_test(test_timeout_kills),
		cmocka_unit_test(test_lossy_channel_paced),
		cmocka_unit_test(test_lossy_kill_request),
		cmocka_unit_test(test_noexec_falls_back),
		cmocka_unit_test_teardown(test_unopenable_fds_fall_back,
					  guest_setup_teardown),
		cmocka_unit_test_teardown(test_agent_dies_at_start,
					  guest_setup_teardown),
		cmocka_unit_test(test_clock_line_between_commands),
		cmocka_unit_test_teardown(test_identity_line, guest_setup_teardown),
		cmocka_unit_test(test_quiet_agent),
		cmocka_unit_test(test_dead_agent),
		cmocka_unit_test(test_agent_dies_before_the_open),
		cmocka_unit_test(test_exact_status),
		cmocka_unit_test_teardown(test_staging_dir_gone,
					  guest_setup_teardown),
	};

	return cmocka_run_group_tests_name("agent", tests, setup, NULL);
}
