/*
 * attestfs-pty: runs a job's command on a pseudo-terminal in the guest, for
 * jobs/<j>/ctl "tty ROWS COLS" (attestfs-shell). Static x86_64 Linux, no
 * libc (raw system calls, like the agent beside it), so it runs on any
 * x86_64 guest, busybox-only ones too: the daemon embeds it and the job's
 * start uploads it into the job's private directory.
 *
 *   attestfs-pty check                       exits 0: it can run here
 *   attestfs-pty ROWS COLS TTYFILE CMD       runs /bin/sh -c CMD on a pty
 *
 * The command gets a new session with the pty's slave as its controlling
 * terminal, sized ROWS x COLS, so job control, Ctrl-C (a 0x03 byte on
 * stdin) and full-screen programs work. stdin (the job's FIFO) goes to the
 * master, the master's output to stdout (the job's output file), both
 * unchanged. TTYFILE gets the slave's path: the host's "winsize" runs stty -F
 * on it, and the kernel sends SIGWINCH to the foreground process group.
 * Ends when the command ends (what the session still prints is drained),
 * with its status (128+N for a signal N). When stdin ends (the host closed
 * it or went away) the session gets SIGHUP, as from a dropped line.
 */
#define _GNU_SOURCE
#include "nolibc.h"

enum {
	SYS_read = 0, SYS_write = 1, SYS_open = 2, SYS_close = 3, SYS_poll = 7,
	SYS_rt_sigaction = 13, SYS_rt_sigprocmask = 14, SYS_ioctl = 16, SYS_dup2 = 33, SYS_fork = 57,
	SYS_execve = 59, SYS_wait4 = 61, SYS_kill = 62, SYS_setsid = 112,
	SYS_exit_group = 231, SYS_signalfd4 = 289,
};

#define PT_O_RDWR 2
#define PT_O_WRONLY 1
#define PT_O_CREAT 0100
#define PT_O_TRUNC 01000
#define PT_O_NOCTTY 0400
#define PT_O_NONBLOCK 04000
#define PT_O_CLOEXEC 02000000
#define PT_TIOCSPTLCK 0x40045431
#define PT_TIOCGPTN 0x80045430
#define PT_TIOCSWINSZ 0x5414
#define PT_TIOCSCTTY 0x540E
#define PT_TIOCGPGRP 0x540F
#define PT_SIGHUP 1
#define PT_SIGCONT 18
#define PT_POLLIN 1
#define PT_EINTR 4
#define PT_EAGAIN 11
#define PT_SIGCHLD 17
#define PT_WNOHANG 1
#define PT_SIG_BLOCK 0
#define PT_SIG_SETMASK 2

struct pt_pollfd {
	int fd;
	short events, revents;
};

#define sc(n, a, b, c) nl_syscall(n, a, b, c, 0)
#define sc4 nl_syscall

static void
pt_exit(int code)
{
	sc(SYS_exit_group, code, 0, 0);
	for (;;)
		;
}

static int
pt_num(const char *s)
{
	int v = 0;

	if (!*s)
		return -1;
	for (; *s; s++) {
		if (*s < '0' || *s > '9' || v > 100000)
			return -1;
		v = v * 10 + (*s - '0');
	}
	return v;
}

static int
write_all(int fd, const char *p, long n)
{
	while (n > 0) {
		long r = sc(SYS_write, fd, (long)p, n);

		if (r == -PT_EINTR || r == -PT_EAGAIN)
			continue;
		if (r <= 0)
			return -1;
		p += r;
		n -= r;
	}
	return 0;
}

/* "/dev/pts/N\n" into TTYFILE; len of the path without the newline. */
static int
tell_tty(const char *file, unsigned n, char *path)
{
	char digits[16], *d = digits + sizeof(digits);
	int len = 9, fd, r;

	do {
		*--d = (char)('0' + n % 10);
		n /= 10;
	} while (n);
	for (r = 0; r < 9; r++)
		path[r] = "/dev/pts/"[r];
	while (d < digits + sizeof(digits))
		path[len++] = *d++;
	path[len] = '\n';
	fd = (int)sc(SYS_open, (long)file, PT_O_WRONLY | PT_O_CREAT | PT_O_TRUNC |
		     PT_O_CLOEXEC, 0600);
	if (fd < 0)
		return -1;
	r = write_all(fd, path, len + 1);
	sc(SYS_close, fd, 0, 0);
	path[len] = '\0';
	return r;
}

/* The child: a session led by the command, the slave its terminal. */
static void
child(const char *slave, char *cmd, char **envp)
{
	long dfl[4] = { 0 };     /* SIG_DFL, no flags, no restorer, no mask */
	char *argv[] = { "sh", "-c", cmd, NULL };
	unsigned long none = 0;
	int fd, sig;

	/* A job starts in the background of a shell without job control, so
	 * it ignores SIGINT and SIGQUIT, and an ignored signal stays so across
	 * exec: Ctrl-C would never end the command on the terminal. */
	for (sig = 1; sig < 65; sig++)
		if (sig != 9 && sig != 19)
			sc4(SYS_rt_sigaction, sig, (long)dfl, 0, 8);
	sc4(SYS_rt_sigprocmask, PT_SIG_SETMASK, (long)&none, 0, 8);
	sc(SYS_setsid, 0, 0, 0);
	fd = (int)sc(SYS_open, (long)slave, PT_O_RDWR, 0);
	if (fd < 0)
		pt_exit(127);
	sc(SYS_ioctl, fd, PT_TIOCSCTTY, 0);
	sc(SYS_dup2, fd, 0, 0);
	sc(SYS_dup2, fd, 1, 0);
	sc(SYS_dup2, fd, 2, 0);
	if (fd > 2)
		sc(SYS_close, fd, 0, 0);
	sc(SYS_execve, (long)"/bin/sh", (long)argv, (long)envp);
	pt_exit(127);
}

static int
status_code(int st)
{
	return (st & 0x7f) ? 128 + (st & 0x7f) : (st >> 8) & 0xff;
}

/* stdin ended (the host closed it, or went): as when a terminal's line
 * drops, SIGHUP to the session and to the terminal's foreground group. */
static void
hang_up(int master, int pid)
{
	int fg = 0;

	if (!sc(SYS_ioctl, master, PT_TIOCGPGRP, (long)&fg) && fg > 0) {
		sc(SYS_kill, -fg, PT_SIGHUP, 0);
		sc(SYS_kill, -fg, PT_SIGCONT, 0);
	}
	sc(SYS_kill, -pid, PT_SIGHUP, 0);
	sc(SYS_kill, -pid, PT_SIGCONT, 0);
}

/* Copies until the command ends; its exit code. */
static int
relay(int master, int sfd, int pid)
{
	static char buf[16384];
	struct pt_pollfd p[3] = {
		{ .fd = 0, .events = PT_POLLIN },
		{ .fd = master, .events = PT_POLLIN },
		{ .fd = sfd, .events = PT_POLLIN },
	};
	int st = 0;

	for (;;) {
		long r = sc(SYS_poll, (long)p, 3, -1);

		if (r == -PT_EINTR)
			continue;
		if (r < 0)
			return 126;
		if (p[1].revents) {
			r = sc(SYS_read, master, (long)buf, sizeof(buf));
			if (r > 0 && write_all(1, buf, r) < 0)
				return 126;
			if (r <= 0 && r != -PT_EINTR && r != -PT_EAGAIN)
				p[1].fd = -1;   /* EIO: no slave is open */
		}
		if (p[0].revents) {
			r = sc(SYS_read, 0, (long)buf, sizeof(buf));
			if (r == 0 || (r < 0 && r != -PT_EINTR && r != -PT_EAGAIN)) {
				p[0].fd = -1;
				hang_up(master, pid);
			}
			if (r > 0 && write_all(master, buf, r) < 0)
				return 126;
		}
		if (p[2].revents) {
			char info[128];

			sc(SYS_read, sfd, (long)info, sizeof(info));
			if (sc4(SYS_wait4, pid, (long)&st, PT_WNOHANG, 0) == pid)
				break;
		}
	}
	/* The command ended: what it printed last is still in the master. */
	sc(SYS_ioctl, master, 0x5421 /* FIONBIO */, (long)&(int){ 1 });
	while (p[1].fd >= 0) {
		long r = sc(SYS_read, master, (long)buf, sizeof(buf));

		if (r <= 0 || write_all(1, buf, r) < 0)
			break;
	}
	return status_code(st);
}

int pty_main(int argc, char **argv, char **envp);

int
pty_main(int argc, char **argv, char **envp)
{
	unsigned long chld = 1UL << (PT_SIGCHLD - 1);
	unsigned short ws[4] = { 0 };
	char slave[32];
	int master, sfd, pid, rows, cols;
	unsigned n = 0, unlock = 0;

	if (argc == 2 && argv[1][0] == 'c')
		return 0;
	if (argc != 5)
		return 2;
	rows = pt_num(argv[1]);
	cols = pt_num(argv[2]);
	if (rows < 1 || cols < 1 || rows > 65535 || cols > 65535)
		return 2;
	master = (int)sc(SYS_open, (long)"/dev/ptmx",
			 PT_O_RDWR | PT_O_NOCTTY | PT_O_CLOEXEC, 0);
	if (master < 0 || sc(SYS_ioctl, master, PT_TIOCSPTLCK, (long)&unlock) ||
	    sc(SYS_ioctl, master, PT_TIOCGPTN, (long)&n))
		return 125;
	ws[0] = (unsigned short)rows;
	ws[1] = (unsigned short)cols;
	sc(SYS_ioctl, master, PT_TIOCSWINSZ, (long)ws);
	if (tell_tty(argv[3], n, slave) < 0)
		return 125;
	/* SIGCHLD as a readable fd: poll sees the command end. */
	sc4(SYS_rt_sigprocmask, PT_SIG_BLOCK, (long)&chld, 0, 8);
	sfd = (int)sc4(SYS_signalfd4, -1, (long)&chld, 8, PT_O_CLOEXEC |
		       PT_O_NONBLOCK);
	if (sfd < 0)
		return 125;
	pid = (int)sc(SYS_fork, 0, 0, 0);
	if (pid < 0)
		return 125;
	if (pid == 0)
		child(slave, argv[4], envp);
	return relay(master, sfd, pid);
}

#ifdef AGENT_NOLIBC
void pty_start(long *sp);

void
pty_start(long *sp)
{
	int argc = (int)sp[0];
	char **argv = (char **)(sp + 1);

	pt_exit(pty_main(argc, argv, argv + argc + 1));
}

NOLIBC_START(pty_start);
#else
extern char **environ;
int main(int argc, char **argv);

int
main(int argc, char **argv)
{
	return pty_main(argc, argv, environ);
}
#endif
