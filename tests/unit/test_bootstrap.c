/*
 * machine/shell_bootstrap.c: what the hvc0 shell is told to run to start
 * the port shells, run in real shells (dash, bash, busybox ash) against a
 * stand-in for sysfs and /dev (the same text with its two paths moved into
 * a temporary directory): the attestfs.shell ports are found by name, a
 * port without a device node is reported, a shell greets on a port (a pty
 * here), answers, and greets again after it exits; and the reading of what
 * the command says. Its loops are this process's descendants (a
 * subreaper), killed by pid at the end of each case.
 */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pty.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <dirent.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <termios.h>
#include <unistd.h>

#include <cmocka.h>

#include "common/util.h"
#include "machine/bootstrap.h"
#include "machine/shell.h"

/* ---- reading the reply ------------------------------------------------ */

static int
reply(const char *text, unsigned n, char **why)
{
	struct strbuf sb;
	int found;

	sb_init(&sb);
	found = shell_bootstrap_reply(text, strlen(text), n, &sb);
	*why = sb_detach(&sb, NULL);
	return found;
}

static void
test_reply(void **state)
{
	char *why;

	assert_int_equal(reply("port attestfs.shell.0 /dev/vport1p1\n"
			       "port attestfs.shell.1 /dev/vport1p2\n", 2,
			       &why), 2);
	assert_true(!why || !*why);
	free(why);
	/* each port once; other names and numbers out of range are not ours */
	assert_int_equal(reply("port attestfs.shell.1 /dev/a\n"
			       "port attestfs.shell.1 /dev/b\n"
			       "port attestfs.shell.7 /dev/c\n"
			       "port attestfs.shellx /dev/d\n"
			       "port attestfs.shell.1x /dev/e\n"
			       "noise\n", 3, &why), 1);
	assert_string_equal(why, "the guest has 1 of the 3 attestfs.shell "
			    "ports");
	free(why);
	assert_int_equal(reply("none the guest has no /sys/class/virtio-ports"
			       " (no virtio_console?)\n", 4, &why), 0);
	assert_string_equal(why, "the guest has no /sys/class/virtio-ports "
			    "(no virtio_console?)");
	free(why);
	assert_int_equal(reply("port attestfs.shell.0 /dev/vport1p1\n"
			       "nodev attestfs.shell.1 /dev/vport1p2\n", 2,
			       &why), 1);
	assert_string_equal(why, "no device node for attestfs.shell.1 "
			    "/dev/vport1p2");
	free(why);
	/* nothing at all (the output went missing), no final newline */
	assert_int_equal(reply("", 2, &why), 0);
	assert_string_equal(why, "the guest has 0 of the 2 attestfs.shell "
			    "ports");
	free(why);
	assert_int_equal(reply("port attestfs.shell.0 /dev/x", 1, &why), 1);
	free(why);
	/* all there: no reason, whatever else the guest said */
	assert_int_equal(reply("port attestfs.shell.0 /dev/x\nnone but\n", 1,
			       &why), 1);
	assert_true(!why || !*why);
	free(why);
	/* the guest's words, made printable for the log */
	assert_int_equal(reply("none a\033[2Jb\n", 1, &why), 0);
	assert_string_equal(why, "a?[2Jb");
	free(why);
}

/* ---- the command in real shells --------------------------------------- */

/* Every occurrence of from in s replaced by to (malloc'd). */
static char *
subst(const char *s, const char *from, const char *to)
{
	struct strbuf sb;
	const char *p;

	sb_init(&sb);
	while ((p = strstr(s, from))) {
		sb_add(&sb, s, (size_t)(p - s));
		sb_adds(&sb, to);
		s = p + strlen(from);
	}
	sb_adds(&sb, s);
	return sb_detach(&sb, NULL);
}

/* The command for n ports with sysfs at dir/sys, the nodes in dir/dev and
 * no serial console. */
static char *
script_in(const char *dir, unsigned n)
{
	struct strbuf sb;
	char *a, *b, *c, *to;

	sb_init(&sb);
	shell_bootstrap(&sb, n);
	to = xasprintf("%s/sys", dir);
	a = subst(sb.data, "/sys/class/virtio-ports", to);
	free(to);
	to = xasprintf("_atbd=%s/dev/", dir);
	b = subst(a, "_atbd=/dev/", to);
	free(to);
	c = subst(b, "/dev/ttyS0", "/nonexistent/ttyS0");
	free(a);
	free(b);
	sb_free(&sb);
	return c;
}

/* Runs argv with stdout captured; its exit status, or -1. */
static int
run(char *const argv[], struct strbuf *out)
{
	int fds[2], status;
	char buf[4096];
	ssize_t n;
	pid_t pid;

	if (pipe(fds) < 0)
		return -1;
	pid = fork();
	if (pid == 0) {
		dup2(fds[1], 1);
		close(fds[0]);
		close(fds[1]);
		execvp(argv[0], argv);
		_exit(127);
	}
	close(fds[1]);
	while ((n = read(fds[0], buf, sizeof(buf))) > 0)
		sb_add(out, buf, (size_t)n);
	close(fds[0]);
	if (waitpid(pid, &status, 0) < 0)
		return -1;
	return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

/* Reads from fd until want appeared (5 s at most); 1 when it did. */
static int
read_until(int fd, const char *want)
{
	struct strbuf sb;
	int64_t end = now_mono_ms() + 5000;
	int found = 0;

	sb_init(&sb);
	while (!found && now_mono_ms() < end) {
		struct pollfd p = { .fd = fd, .events = POLLIN };
		char buf[512];
		ssize_t n;

		if (poll(&p, 1, 100) <= 0)
			continue;
		n = read(fd, buf, sizeof(buf));
		if (n <= 0)
			break;
		sb_add(&sb, buf, (size_t)n);
		sb_add(&sb, "", 1);
		sb.len--;
		found = strstr(sb.data, want) != NULL;
	}
	sb_free(&sb);
	return found;
}

/* The loops the command left: our descendants, reparented to us. */
static void
kill_children(void)
{
	DIR *d = opendir("/proc");
	struct dirent *e;
	int again = 1;

	while (d && again) {
		again = 0;
		rewinddir(d);
		while ((e = readdir(d))) {
			char path[300], *stat = NULL, *p;
			size_t len;
			int ppid;

			if (e->d_name[0] < '1' || e->d_name[0] > '9')
				continue;
			snprintf(path, sizeof(path), "/proc/%s/stat", e->d_name);
			if (read_file(path, &stat, &len) < 0)
				continue;
			p = strrchr(stat, ')');
			if (p && sscanf(p + 2, "%*c %d", &ppid) == 1 &&
			    ppid == getpid()) {
				kill(atoi(e->d_name), SIGKILL);
				waitpid(atoi(e->d_name), NULL, 0);
				again = 1;
			}
			free(stat);
		}
	}
	if (d)
		closedir(d);
}

static void
write_file(const char *path, const char *text)
{
	assert_int_equal(write_file_atomic(path, text, strlen(text)), 0);
}

/* Three ports: two of ours (one with a device node: a pty), one not. */
static void
bootstrap_in(const char *shell)
{
	char dir[] = "/tmp/attestfs-test-bootstrap.XXXXXX";
	char *p, *script, slave[64];
	struct strbuf out;
	struct termios raw;
	int master, fd, ret;

	if (access(shell, X_OK) != 0) {
		print_message("skip: no %s\n", shell);
		return;
	}
	assert_non_null(mkdtemp(dir));
	p = xasprintf("%s/sys/vport1p1", dir);
	assert_int_equal(mkdir_p(p, 0755), 0);
	free(p);
	p = xasprintf("%s/sys/vport1p2", dir);
	assert_int_equal(mkdir_p(p, 0755), 0);
	free(p);
	p = xasprintf("%s/sys/vport1p3", dir);
	assert_int_equal(mkdir_p(p, 0755), 0);
	free(p);
	p = xasprintf("%s/dev", dir);
	assert_int_equal(mkdir_p(p, 0755), 0);
	free(p);
	p = xasprintf("%s/sys/vport1p1/name", dir);
	write_file(p, "attestfs.shell.0\n");
	free(p);
	p = xasprintf("%s/sys/vport1p2/name", dir);
	write_file(p, "attestfs.shell.1\n");
	free(p);
	p = xasprintf("%s/sys/vport1p3/name", dir);
	write_file(p, "org.qemu.guest_agent.0\n");
	free(p);

	/* the port: a raw pty (a virtserialport does not echo either) */
	assert_int_equal(openpty(&master, &fd, slave, NULL, NULL), 0);
	cfmakeraw(&raw);
	tcsetattr(fd, TCSANOW, &raw);
	/* held open: the master reads EIO while no slave is open */
	p = xasprintf("%s/dev/vport1p1", dir);
	assert_int_equal(symlink(slave, p), 0);

	script = script_in(dir, 2);
	sb_init(&out);
	{
		char *argv[] = { (char *)shell, "-c", script, NULL };
		char *argv_ash[] = { (char *)shell, "sh", "-c", script, NULL };

		ret = run(strstr(shell, "busybox") ? argv_ash : argv, &out);
	}
	assert_int_equal(ret, 0);
	sb_add(&out, "", 1);
	{
		char *want = xasprintf("port attestfs.shell.0 %s\n"
				       "nodev attestfs.shell.1 %s/dev/vport1p2\n",
				       p, dir);

		if (!strstr(out.data, want))
			fail_msg("%s said:\n%s", shell, out.data);
		free(want);
	}
	/* the shell greets, answers, and greets again after it exits */
	assert_true(read_until(master, SHELL_BANNER));
	assert_int_equal(write_all(master, "echo $((6 * 7))\n", 16), 0);
	assert_true(read_until(master, "42\n"));
	/* the port runs the bootstrapping shell when that is bash (NixOS's
	 * backdoor), else /bin/sh */
	assert_int_equal(write_all(master, "echo sh-${BASH_VERSION:+bash}\n", 30),
			 0);
	assert_true(read_until(master, strstr(shell, "bash") ? "sh-bash\n" :
								"sh-\n"));
	assert_int_equal(write_all(master, "exit\n", 5), 0);
	assert_true(read_until(master, SHELL_BANNER));
	assert_int_equal(write_all(master, "echo again\n", 11), 0);
	assert_true(read_until(master, "again\n"));

	kill_children();
	close(fd);
	close(master);
	sb_free(&out);
	free(script);
	free(p);
	assert_int_equal(remove_tree(dir), 0);
}

/* Also after a failed assertion: no loop outlives its case. */
static int
teardown_children(void **state)
{
	kill_children();
	return 0;
}

static void
test_in_dash(void **state)
{
	bootstrap_in("/bin/dash");
}

static void
test_in_bash(void **state)
{
	bootstrap_in("/bin/bash");
}

static void
test_in_busybox(void **state)
{
	bootstrap_in("/bin/busybox");
}

/* No sysfs directory at all, or no port of ours in it: "none" and why. */
static void
test_no_ports(void **state)
{
	char dir[] = "/tmp/attestfs-test-bootstrap.XXXXXX";
	char *script, *why = NULL;
	struct strbuf out, sb;
	char *argv[] = { "/bin/sh", "-c", NULL, NULL };

	assert_non_null(mkdtemp(dir));
	script = script_in(dir, 4);
	argv[2] = script;
	sb_init(&out);
	assert_int_equal(run(argv, &out), 0);
	sb_init(&sb);
	assert_int_equal(shell_bootstrap_reply(out.data, out.len, 4, &sb), 0);
	why = sb_detach(&sb, NULL);
	assert_non_null(strstr(why, "the guest has no "));
	assert_non_null(strstr(why, "/sys (no virtio_console?)"));
	free(why);
	sb_free(&out);

	free(script);
	script = xasprintf("%s/sys/vport1p1", dir);
	assert_int_equal(mkdir_p(script, 0755), 0);
	free(script);
	script = script_in(dir, 4);
	argv[2] = script;
	sb_init(&out);
	assert_int_equal(run(argv, &out), 0);
	sb_add(&out, "", 1);
	assert_string_equal(out.data, "none no virtserialport is named "
			    "attestfs.shell.N in the guest\n");
	sb_free(&out);
	free(script);
	assert_int_equal(remove_tree(dir), 0);
}

/* One line, and what is sent is what a shell parses. */
static void
test_text(void **state)
{
	struct strbuf sb;

	sb_init(&sb);
	shell_bootstrap(&sb, 4);
	sb_add(&sb, "", 1);
	assert_null(strchr(sb.data, '\n'));
	assert_non_null(strstr(sb.data, "[ $_atbn -ge 4 ]"));
	assert_non_null(strstr(sb.data, "/sys/class/virtio-ports"));
	assert_non_null(strstr(sb.data, "attestfs.shell.[0-9]*)"));
	assert_non_null(strstr(sb.data, SHELL_BANNER));
	sb_free(&sb);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_reply),
		cmocka_unit_test(test_text),
		cmocka_unit_test(test_no_ports),
		cmocka_unit_test_teardown(test_in_dash, teardown_children),
		cmocka_unit_test_teardown(test_in_bash, teardown_children),
		cmocka_unit_test_teardown(test_in_busybox, teardown_children),
	};

	/* The command's loops detach (setsid): they come back to us. */
	prctl(PR_SET_CHILD_SUBREAPER, 1);
	signal(SIGPIPE, SIG_IGN);
	return cmocka_run_group_tests(tests, NULL, NULL);
}
