/*
 * The real prelude in real shells (busybox ash, bash, dash), as root in a
 * private mount namespace with its own tmpfs on /run and /tmp: the command
 * files go to a private 0700 directory, never directly into /tmp, and a
 * directory planted under the fixed names is never used. Skips when not root
 * or without unshare(1). A shell that hangs is ended after 60 s.
 */
#include <errno.h>
#include <fnmatch.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>

#include "common/util.h"
#include "machine/shell.h"

struct outs {
	struct strbuf out[4];
	int n, status[4], losses;
	int in_frame;
};

static void
record(void *ctx, enum shell_event ev, long long tag, long long num,
       const char *data, size_t len)
{
	struct outs *o = ctx;

	switch (ev) {
	case SHELL_EV_STATUS:
		if (o->n < 4)
			o->status[o->n] = (int)num;
		o->in_frame = 1;
		break;
	case SHELL_EV_STDOUT:
		if (o->in_frame && o->n < 4)
			sb_add(&o->out[o->n], data, len);
		break;
	case SHELL_EV_END:
		o->n++;
		o->in_frame = 0;
		break;
	case SHELL_EV_LOSS:
		o->losses++;
		break;
	default:
		break;
	}
}

/* Shows where the command files went, from inside a command. */
static const char inspect[] =
	"echo \"r=$_atr\"; ls -A /tmp | tr '\\n' ' '; echo; "
	"stat -c '%a %u %F' \"$_atr\"; "
	"case $_atd in \"$_atr\"/*) echo inside;; *) echo outside;; esac";

static void
child(int to[2], int from[2], const char *script)
{
	dup2(to[0], 0);
	dup2(from[1], 1);
	close(to[1]);
	close(from[0]);
	execlp("unshare", "unshare", "-m", "sh", "-c", script, (char *)NULL);
	_exit(127);
}

/*
 * Run setup (sh, as root, in the namespace), then the shell with the
 * prelude, "echo hi", the raw line between (not a command: something else
 * in the guest), and the inspection with extra; both answers go to o.
 */
static void
run_shell(const char *shell, const char *setup, const char *between,
	  const char *extra, struct outs *o)
{
	struct strbuf in, script, cmd;
	struct shell_parser p;
	int to[2], from[2], st;
	char buf[4096];
	ssize_t n;
	pid_t pid;

	sb_init(&script);
	sb_addf(&script, "mount -t tmpfs -o mode=0755 none /run && "
		"mount -t tmpfs -o mode=1777 none /tmp && cd /tmp && %s && "
		"echo '" SHELL_BANNER "' && exec timeout 60 %s", setup, shell);
	assert_int_equal(pipe(to), 0);
	assert_int_equal(pipe(from), 0);
	pid = fork();
	assert_true(pid >= 0);
	if (pid == 0)
		child(to, from, script.data);
	close(to[0]);
	close(from[1]);
	sb_init(&in);
	sb_init(&cmd);
	shell_prelude(&in, 0, 0, 1);
	shell_command(&in, 2, "echo hi", 7, NULL, 0, 0);
	if (between)
		sb_addf(&in, "%s\n", between);
	sb_addf(&cmd, "%s; %s", inspect, extra ? extra : "true");
	shell_command(&in, 3, cmd.data, cmd.len, NULL, 0, 0);
	signal(SIGPIPE, SIG_IGN);
	assert_int_equal(write_all(to[1], in.data, in.len), 0);
	close(to[1]);
	memset(o, 0, sizeof(*o));
	shell_parser_init(&p, 0);
	while ((n = read(from[0], buf, sizeof(buf))) > 0)
		shell_parse(&p, buf, (size_t)n, record, o);
	close(from[0]);
	waitpid(pid, &st, 0);
	sb_free(&in);
	sb_free(&cmd);
	sb_free(&script);
}

static void
outs_free(struct outs *o)
{
	int i;

	for (i = 0; i < 4; i++)
		sb_free(&o->out[i]);
}

static int
usable(void)
{
	return geteuid() == 0 &&
	       system("unshare -m true >/dev/null 2>&1") == 0;
}

static const char *const shells[] = { "busybox ash", "bash", "dash" };

static int
have(const char *shell)
{
	char cmd[128];

	snprintf(cmd, sizeof(cmd), "command -v %s >/dev/null 2>&1",
		 strncmp(shell, "busybox", 7) ? shell : "busybox");
	return system(cmd) == 0;
}

/* In each shell both commands run, and the inspection matches the
 * fnmatch(3) pattern want. */
static void
expect_each_shell(const char *setup, const char *between, const char *extra,
		  const char *want)
{
	size_t i;
	int ran = 0;

	if (!usable())
		skip();
	for (i = 0; i < sizeof(shells) / sizeof(shells[0]); i++) {
		struct outs o;
		const char *got;

		if (!have(shells[i]))
			continue;
		run_shell(shells[i], setup, between, extra, &o);
		got = o.out[1].data ? o.out[1].data : "(none)";
		if (o.n != 2 || o.status[1] || fnmatch(want, got, 0))
			print_error("%s: %d frames, status %d, inspection:\n%s"
				    "want:\n%s", shells[i], o.n, o.status[1],
				    got, want);
		assert_int_equal(o.losses, 0);
		assert_int_equal(o.n, 2);
		assert_int_equal(o.status[0], 0);
		assert_string_equal(o.out[0].data, "hi\n");
		assert_int_equal(o.status[1], 0);
		assert_int_equal(fnmatch(want, got, 0), 0);
		outs_free(&o);
		ran++;
	}
	assert_true(ran > 0);
}

static void
test_private_dir_under_run(void **state)
{
	expect_each_shell("true", NULL, NULL,
			  "r=/run/attestfs\n\n700 0 directory\ninside\n");
}

static void
test_planted_symlink_in_run_is_not_followed(void **state)
{
	expect_each_shell("mkdir -m 777 /tmp/evil && ln -s /tmp/evil /run/attestfs",
			  NULL, "ls -A /tmp/evil | wc -l",
			  "r=/tmp/.attestfs\n.attestfs evil \n700 0 directory\n"
			  "inside\n0\n");
}

static void
test_planted_dirs_not_ours_or_open_are_refused(void **state)
{
	/* one not ours, one ours but open to all: mktemp -d's is taken */
	expect_each_shell("mkdir -m 700 /run/attestfs && chown 4242 /run/attestfs "
			  "&& mkdir -m 777 /tmp/.attestfs && mkdir /tmp/m && "
			  "export TMPDIR=/tmp/m",
			  NULL, "find /run/attestfs /tmp/.attestfs -mindepth 1 | wc -l",
			  "r=/tmp/m/tmp.*\n.attestfs m \n700 0 directory\n"
			  "inside\n0\n");
}

static void
test_made_again_when_run_is_mounted_over(void **state)
{
	/* a guest mounting its own /run after the backdoor started */
	expect_each_shell("true", "mount -t tmpfs -o mode=0755 none /run", NULL,
			  "r=/run/attestfs\n\n700 0 directory\ninside\n");
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_private_dir_under_run),
		cmocka_unit_test(test_planted_symlink_in_run_is_not_followed),
		cmocka_unit_test(test_planted_dirs_not_ours_or_open_are_refused),
		cmocka_unit_test(test_made_again_when_run_is_mounted_over),
	};

	return cmocka_run_group_tests_name("prelude", tests, NULL, NULL);
}
