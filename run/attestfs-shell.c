/*
 * attestfs-shell: a terminal in a guest, through the mount's jobs.
 *
 *	$ attestfs-shell /vms/web           # or: VMS=/vms attestfs-shell web
 *	web:~# stty size; vi /etc/hosts; sleep 100 ^C; exit 3
 *	$ echo $?
 *	3
 *
 * A job (jobs/shell-PID) runs a login shell, or -c CMD, on a pseudo-terminal
 * in the guest (its ctl "tty ROWS COLS": job control, Ctrl-C, full-screen
 * programs), sized like the local terminal, with the local TERM. The local
 * terminal is raw, so every key goes to the guest as it is, and is restored
 * at the end whatever ends it. A resize here (SIGWINCH) is ctl "winsize" there.
 * Exits with the guest command's status (128+N for signal N), 125 when the
 * job could not be made or started (the machine's log says why), 2 for a bad
 * command line.
 *
 * Three threads: main copies the job's stdout here until its end, one copies
 * the keys there (each write is a guest command: the next keys queue up here
 * meanwhile and go together), one takes the signals.
 */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <termios.h>
#include <unistd.h>

#define SH_EXIT_USAGE 2
#define SH_EXIT_SETUP 125
#define SH_BUF 65536
#define SH_DEFAULT_CMD \
	"if command -v bash >/dev/null 2>&1; then exec bash -l; fi; exec sh -l"

struct sh {
	char *job;              /* MACHINE/jobs/shell-PID */
	int in_fd, out_fd;      /* the job's stdin and stdout */
	int tty;                /* stdin is a terminal: raw mode, sizes */
	struct termios saved;
	int raw;
	sigset_t sigs;
};

static struct sh sh;

static void
sh_usage(FILE *f)
{
	fprintf(f,
		"usage: attestfs-shell [-c CMD] [-u USER] [-d DIR] MACHINE\n"
		"\n"
		"Opens a terminal in a guest: MACHINE is its directory in an "
		"attestfs mount\n"
		"(/vms/web), or its name when VMS is set. The guest runs a "
		"login shell (bash\n"
		"where it has one), or CMD, on a pseudo-terminal; exits with "
		"its status.\n"
		"\n"
		"    -c CMD    run CMD (sh -c) instead of a login shell\n"
		"    -u USER   as USER (su)\n"
		"    -d DIR    in DIR\n"
		"    -h        this text\n");
}

static void
sh_restore(void)
{
	if (sh.raw) {
		tcsetattr(STDIN_FILENO, TCSAFLUSH, &sh.saved);
		sh.raw = 0;
	}
}

static int
sh_raw(void)
{
	struct termios t;

	if (tcgetattr(STDIN_FILENO, &sh.saved) < 0)
		return -errno;
	t = sh.saved;
	cfmakeraw(&t);
	/* TCSANOW: keys typed already are kept, they go to the guest */
	if (tcsetattr(STDIN_FILENO, TCSANOW, &t) < 0)
		return -errno;
	sh.raw = 1;
	return 0;
}

/* One write of text to the job's file NAME: 0 or -errno. */
static int
sh_put(const char *name, const char *text)
{
	char path[4096];
	ssize_t n;
	int fd, err = 0;

	snprintf(path, sizeof(path), "%s/%s", sh.job, name);
	fd = open(path, O_WRONLY);
	if (fd < 0)
		return -errno;
	n = write(fd, text, strlen(text));
	if (n < 0)
		err = -errno;
	close(fd);
	return err;
}

static void
sh_size(int *rows, int *cols)
{
	struct winsize ws;

	*rows = 24;
	*cols = 80;
	if (sh.tty && ioctl(STDIN_FILENO, TIOCGWINSZ, &ws) == 0 && ws.ws_row &&
	    ws.ws_col) {
		*rows = ws.ws_row;
		*cols = ws.ws_col;
	}
}

static int
sh_ctl_size(const char *verb)
{
	char msg[64];
	int rows, cols;

	sh_size(&rows, &cols);
	snprintf(msg, sizeof(msg), "%s %d %d\n", verb, rows, cols);
	return sh_put("ctl", msg);
}

/* TERM goes along when the guest's shell can take it as it is. */
static int
sh_term(void)
{
	const char *term = getenv("TERM");
	char msg[128];

	if (!term || !*term || strlen(term) > 64 ||
	    strspn(term, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"
			 "0123456789-_.+") != strlen(term))
		term = "xterm";
	snprintf(msg, sizeof(msg), "env TERM=%s\n", term);
	return sh_put("ctl", msg);
}

static int
sh_fail(const char *what, int err)
{
	sh_restore();
	fprintf(stderr, "attestfs-shell: %s: %s (the machine's log says more)\n",
		what, strerror(-err));
	return SH_EXIT_SETUP;
}

/* The job, configured and started; its stdin and stdout open. */
static int
sh_start(const char *machine, const char *cmd, const char *user,
	 const char *dir)
{
	char msg[4200];
	int ret;

	if (asprintf(&sh.job, "%s/jobs/shell-%d", machine, (int)getpid()) < 0)
		return sh_fail("memory", -ENOMEM);
	if (mkdir(sh.job, 0700) < 0) {
		ret = -errno;
		free(sh.job);
		sh.job = NULL;
		return sh_fail(machine, ret);
	}
	ret = sh_term();
	if (!ret)
		ret = sh_ctl_size("tty");
	if (!ret && user) {
		snprintf(msg, sizeof(msg), "user %s\n", user);
		ret = sh_put("ctl", msg);
	}
	if (!ret && dir) {
		snprintf(msg, sizeof(msg), "dir %s\n", dir);
		ret = sh_put("ctl", msg);
	}
	if (ret)
		return sh_fail("the job's ctl", ret);
	ret = sh_put("cmd", cmd);
	if (ret)
		return sh_fail("the job's cmd", ret);
	snprintf(msg, sizeof(msg), "%s/stdin", sh.job);
	sh.in_fd = open(msg, O_WRONLY);
	snprintf(msg, sizeof(msg), "%s/stdout", sh.job);
	sh.out_fd = open(msg, O_RDONLY);
	if (sh.in_fd < 0 || sh.out_fd < 0)
		return sh_fail("the job's stdin and stdout", -errno);
	return 0;
}

static int
write_all(int fd, const char *p, size_t n)
{
	while (n) {
		ssize_t w = write(fd, p, n);

		if (w < 0 && errno == EINTR)
			continue;
		if (w <= 0)
			return -1;
		p += w;
		n -= (size_t)w;
	}
	return 0;
}

/* Keys to the guest. At the end of a stdin that is no terminal, a Ctrl-D:
 * the guest's shell ends as a typed one does. */
static void *
sh_keys(void *arg)
{
	static char buf[4096];

	for (;;) {
		ssize_t n = read(STDIN_FILENO, buf, sizeof(buf));

		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0) {
			if (!sh.tty)
				write_all(sh.in_fd, "\004", 1);
			return NULL;
		}
		if (write_all(sh.in_fd, buf, (size_t)n) < 0)
			return NULL;
	}
}

/* Resizes go to the guest; a signal that ends us restores the terminal. */
static void *
sh_signals(void *arg)
{
	for (;;) {
		int sig;

		if (sigwait(&sh.sigs, &sig))
			continue;
		if (sig == SIGWINCH) {
			sh_ctl_size("winsize");
			continue;
		}
		sh_restore();
		if (sh.job)
			rmdir(sh.job);
		signal(sig, SIG_DFL);
		pthread_sigmask(SIG_UNBLOCK, &sh.sigs, NULL);
		raise(sig);
	}
	return NULL;
}

/* What the job said on stderr (the pty has the command's own): why the
 * guest could not start it. */
static void
sh_job_stderr(void)
{
	static char buf[4096];
	char path[4200];
	ssize_t n;
	int fd;

	snprintf(path, sizeof(path), "%s/stderr", sh.job);
	fd = open(path, O_RDONLY);
	if (fd < 0)
		return;
	while ((n = read(fd, buf, sizeof(buf))) > 0)
		write_all(STDERR_FILENO, buf, (size_t)n);
	close(fd);
}

/* The guest's output until the job ends; then its status. */
static int
sh_relay(void)
{
	static char buf[SH_BUF];
	char path[4200];
	int fd, status = SH_EXIT_SETUP;
	ssize_t n;

	for (;;) {
		n = read(sh.out_fd, buf, sizeof(buf));
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			break;
		if (write_all(STDOUT_FILENO, buf, (size_t)n) < 0)
			break;
	}
	if (n < 0) {
		int err = -errno;

		sh_restore();
		fprintf(stderr, "attestfs-shell: reading the guest's output: "
				"%s\n", strerror(-err));
		return SH_EXIT_SETUP;
	}
	snprintf(path, sizeof(path), "%s/exit", sh.job);
	fd = open(path, O_RDONLY);
	if (fd >= 0) {
		char st[32];

		n = read(fd, st, sizeof(st) - 1);
		if (n > 0) {
			st[n] = '\0';
			status = atoi(st);
		}
		close(fd);
	}
	sh_restore();
	sh_job_stderr();
	return status;
}

int
main(int argc, char **argv)
{
	const char *cmd = SH_DEFAULT_CMD, *user = NULL, *dir = NULL;
	char *machine;
	pthread_t keys, sigs;
	int c, status;

	while ((c = getopt(argc, argv, "+c:u:d:h")) != -1) {
		switch (c) {
		case 'c': cmd = optarg; break;
		case 'u': user = optarg; break;
		case 'd': dir = optarg; break;
		case 'h': sh_usage(stdout); return 0;
		default: sh_usage(stderr); return SH_EXIT_USAGE;
		}
	}
	if (optind != argc - 1) {
		sh_usage(stderr);
		return SH_EXIT_USAGE;
	}
	if (!strchr(argv[optind], '/') && getenv("VMS")) {
		if (asprintf(&machine, "%s/%s", getenv("VMS"), argv[optind]) < 0)
			return SH_EXIT_SETUP;
	} else {
		machine = argv[optind];
	}
	sh.tty = isatty(STDIN_FILENO);
	sigemptyset(&sh.sigs);
	sigaddset(&sh.sigs, SIGWINCH);
	sigaddset(&sh.sigs, SIGTERM);
	sigaddset(&sh.sigs, SIGHUP);
	sigaddset(&sh.sigs, SIGINT);
	sigaddset(&sh.sigs, SIGQUIT);
	pthread_sigmask(SIG_BLOCK, &sh.sigs, NULL);
	if (pthread_create(&sigs, NULL, sh_signals, NULL))
		return SH_EXIT_SETUP;
	/* Raw first: no key typed while the guest starts is echoed here. */
	if (sh.tty && sh_raw() < 0)
		fprintf(stderr, "attestfs-shell: the terminal stays cooked: "
				"%s\n", strerror(errno));
	status = sh_start(machine, cmd, user, dir);
	if (status)
		goto out;
	if (pthread_create(&keys, NULL, sh_keys, NULL)) {
		status = sh_fail("a thread", -EAGAIN);
		goto out;
	}
	status = sh_relay();
	sh_restore();
out:
	/* The keys' thread may sit in read(): the process ends it. */
	if (sh.job && rmdir(sh.job) < 0 && errno != ENOENT)
		fprintf(stderr, "attestfs-shell: rmdir %s: %s\n", sh.job,
			strerror(errno));
	return status;
}
