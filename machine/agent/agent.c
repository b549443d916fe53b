/*
 * attestfs-agent: streams a guest command's stdout and stderr to the host as
 * the command writes them. Static x86_64 Linux, no libc (raw system calls),
 * so it runs on any x86_64 guest; the daemon embeds it and the guest shell's
 * prelude uploads it once per boot into its private 0700 directory.
 *
 *   attestfs-agent check             exits 0: it can run here
 *   attestfs-agent run DIR LOSSY W   the shell's companion, in the background
 *
 * One agent serves one backdoor shell for that shell's life. The shell makes
 * the FIFOs DIR/ao DIR/ae (the command's stdout and stderr), DIR/ac (the
 * shell's messages) and DIR/ar (the agent's answers, our fd 4: the shell's
 * redirection opens it before our exec). Per command the shell
 * forks the command's subshell with stdout and stderr on ao/ae, as before
 * (so the command keeps the shell's functions), opened as our own fds of
 * them (/proc/AGENT/fd/N, see tell_fds), writes "TAG PID TIMEOUT" to ac,
 * waits for the pid (never for EOF: a background child holding stdout
 * cannot hang the frame) and writes the status to ac, then reads our fds'
 * line from ar (EOF: the agent died before the end) before it reads its
 * next command; the first such line comes once we run. Between commands
 * "C SEC NSEC" on ac sets the wall clock (a continued guest's, see
 * set_clock), and "H NAME [ID]" a clone's name and machine-id (see
 * set_identity), answered on ar. The agent meanwhile writes
 * the frames to its stdout, the channel (see machine/shell.h):
 *   \001P TAG PID                             with the first output or the
 *                                            end, at most AG_PEND_MS late
 *   \001o TAG LEN \n + LEN raw bytes          stdout (lossless channels)
 *   \001e TAG LEN \n + LEN raw bytes          stderr
 *   \001O TAG LEN \n + base64 \n              stdout on a lossy channel (hvc0)
 *   \001E TAG LEN \n + base64 \n              stderr on a lossy channel
 *   \001X TAG STATUS OUTBYTES ERRBYTES        the end; the host checks the sums
 * On the lossy channel at most W chunks are unanswered: the host answers each
 * with a line on the channel, read here byte by byte (so nothing after it is
 * taken from the shell): "." goes on, anything else stops sending and kills
 * the command. After the exit, what the pipes hold is drained; a FIFO that a
 * background child still holds is replaced by a new one and the old one is
 * read and discarded until its writers go, so they do not block; only past
 * AG_ORPHANS held at once is the oldest closed, and its writers get SIGPIPE,
 * as all of them do once the agent is gone.
 */
#define _GNU_SOURCE
#include <stddef.h>

#define AG_CHUNK 65536          /* a raw chunk, at most */
/* 32 KiB of base64 per chunk on hvc0, two in flight: QEMU drops console
 * bytes once its socket's send buffer (about 208 KiB, counted with the
 * kernel's overhead for each of QEMU's small writes) is full, and with two
 * chunks of 64 KiB (t1210's slow reader on a busy host) it was. */
#define AG_LOSSY_CHUNK 24576
#define AG_HDR 192              /* room for frame headers before the data */
#define AG_ORPHANS 8
#define AG_IN_FD 6              /* the channel, for the host's answers */
#define AG_REP_FD 4             /* DIR/ar, opened for us by the shell */
/* The P line waits this long for the end: a quick command then costs the
 * channel one write (one wake-up of the host), whichever of the shell and
 * the agent the guest runs first. Only a kill on the host needs the pid. */
#define AG_PEND_MS 20

enum {
	SYS_read = 0, SYS_write = 1, SYS_open = 2, SYS_close = 3, SYS_poll = 7,
	SYS_fcntl = 72,
	SYS_getpid = 39, SYS_kill = 62, SYS_getppid = 110, SYS_prctl = 157,
	SYS_getdents64 = 217, SYS_clock_settime = 227, SYS_clock_gettime = 228,
	SYS_exit_group = 231,
	SYS_unlink = 87, SYS_mknod = 133, SYS_sethostname = 170,
};

#define AG_O_RDONLY 0
#define AG_O_WRONLY 1
#define AG_O_CREAT 0100
#define AG_O_TRUNC 01000
#define AG_O_NONBLOCK 04000
#define AG_O_DIRECTORY 0200000
#define AG_O_CLOEXEC 02000000
#define AG_POLLIN 1
#define AG_POLLHUP 0x10
#define AG_POLLERR 0x8
#define AG_EINTR 4
#define AG_EAGAIN 11
#define AG_SIGKILL 9
#define AG_SIGSTOP 19
#define AG_PR_SET_PDEATHSIG 1
#define AG_S_IFIFO 0010000
#define AG_F_SETPIPE_SZ 1031
#define AG_F_SETFD 2
#define AG_FD_CLOEXEC 1

struct ag_pollfd {
	int fd;
	short events, revents;
};

static long
sc(long n, long a, long b, long c)
{
	long r;

	__asm__ volatile("syscall"
			 : "=a"(r)
			 : "a"(n), "D"(a), "S"(b), "d"(c)
			 : "rcx", "r11", "memory");
	return r;
}

static void
ag_exit(int code)
{
	sc(SYS_exit_group, code, 0, 0);
	for (;;)
		;
}

static size_t
ag_strlen(const char *s)
{
	size_t n = 0;

	while (s[n])
		n++;
	return n;
}

static void
ag_copy(char *dst, const char *src, size_t n)
{
	while (n--)
		*dst++ = *src++;
}

/* Decimal of v, right-aligned so that it ends just before end. */
static char *
put_num(char *end, long long v)
{
	unsigned long long u = v < 0 ? -(unsigned long long)v : (unsigned long long)v;

	do {
		*--end = (char)('0' + u % 10);
		u /= 10;
	} while (u);
	if (v < 0)
		*--end = '-';
	return end;
}

static long long
parse_num(const char **s)
{
	long long v = 0;
	int neg = 0;

	while (**s == ' ')
		(*s)++;
	if (**s == '-') {
		neg = 1;
		(*s)++;
	}
	while (**s >= '0' && **s <= '9')
		v = v * 10 + (*(*s)++ - '0');
	return neg ? -v : v;
}

static int
write_all(int fd, const char *p, size_t n)
{
	while (n) {
		long r = sc(SYS_write, fd, (long)p, (long)n);

		if (r == -AG_EINTR || r == -AG_EAGAIN)
			continue;
		if (r <= 0)
			return -1;
		p += r;
		n -= (size_t)r;
	}
	return 0;
}

static long long
now_ms(void)
{
	long ts[2];

	sc(SYS_clock_gettime, 1 /* CLOCK_MONOTONIC */, (long)ts, 0);
	return (long long)ts[0] * 1000 + ts[1] / 1000000;
}

struct stream {
	int fd;
	int hold;               /* our own writer (see hold_fifo) */
	char kind;              /* 'o' or 'e' */
	int eof;                /* its writers are gone */
	long long sent;         /* bytes framed for this command */
	char path[512];
};

static struct {
	int lossy, window;
	int ctl, rep;
	struct stream s[2];
	int orphan[AG_ORPHANS];
	int n_orphans;
	char cline[128];
	size_t clen;
	long long tag, deadline;
	int pid, running, unacked, deaf, killed;
	char pend[AG_HDR / 2];  /* the P line, until output or the end comes */
	size_t pend_len;
	long long pend_at;      /* ... or until then */
	char buf[AG_HDR + AG_CHUNK];
	char out[AG_HDR + AG_CHUNK / 3 * 4 + 8];
} ag;

static const char b64[] =
	"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

static size_t
base64(char *out, const unsigned char *in, size_t n)
{
	size_t i, o = 0;

	for (i = 0; i + 2 < n; i += 3) {
		out[o++] = b64[in[i] >> 2];
		out[o++] = b64[(in[i] & 3) << 4 | in[i + 1] >> 4];
		out[o++] = b64[(in[i + 1] & 15) << 2 | in[i + 2] >> 6];
		out[o++] = b64[in[i + 2] & 63];
	}
	if (n - i == 1) {
		out[o++] = b64[in[i] >> 2];
		out[o++] = b64[(in[i] & 3) << 4];
		out[o++] = '=';
		out[o++] = '=';
	} else if (n - i == 2) {
		out[o++] = b64[in[i] >> 2];
		out[o++] = b64[(in[i] & 3) << 4 | in[i + 1] >> 4];
		out[o++] = b64[(in[i + 1] & 15) << 2];
		out[o++] = '=';
	}
	return o;
}

/* "\001K TAG A [B [C]]\n" ending just before end; returns its start. */
static char *
header(char *end, char kind, long long a, long long b, int nb, long long c,
       long long d)
{
	*--end = '\n';
	if (nb >= 4)
		end = put_num(end, d), *--end = ' ';
	if (nb >= 3)
		end = put_num(end, c), *--end = ' ';
	if (nb >= 2)
		end = put_num(end, b), *--end = ' ';
	end = put_num(end, a);
	*--end = ' ';
	*--end = kind;
	*--end = '\001';
	return end;
}

/* Kill a process and all it spawned, stopped first so none escapes. */
static void
kill_tree(int pid)
{
	char path[64], *p = path + sizeof(path);
	char dents[1024];
	int dfd;
	long n;

	sc(SYS_kill, pid, AG_SIGSTOP, 0);
	*--p = '\0';
	p -= 5;
	ag_copy(p, "/task", 5);
	p = put_num(p, pid);
	p -= 6;
	ag_copy(p, "/proc/", 6);
	dfd = (int)sc(SYS_open, (long)p, AG_O_RDONLY | AG_O_DIRECTORY |
		      AG_O_CLOEXEC, 0);
	while (dfd >= 0 &&
	       (n = sc(SYS_getdents64, dfd, (long)dents, sizeof(dents))) > 0) {
		long off = 0;

		while (off < n) {
			unsigned short reclen = *(unsigned short *)(dents + off + 16);
			const char *name = dents + off + 19;
			char cpath[96], kids[512];
			size_t pl = ag_strlen(p), nl = ag_strlen(name);
			long r;
			int cfd;

			off += reclen;
			if (name[0] < '0' || name[0] > '9' || pl + nl + 11 > sizeof(cpath))
				continue;
			ag_copy(cpath, p, pl);
			cpath[pl] = '/';
			ag_copy(cpath + pl + 1, name, nl);
			ag_copy(cpath + pl + 1 + nl, "/children", 10);
			cfd = (int)sc(SYS_open, (long)cpath, AG_O_RDONLY | AG_O_CLOEXEC, 0);
			if (cfd < 0)
				continue;
			r = sc(SYS_read, cfd, (long)kids, sizeof(kids) - 1);
			sc(SYS_close, cfd, 0, 0);
			if (r <= 0)
				continue;
			kids[r] = '\0';
			for (const char *k = kids; *k;) {
				long long child = parse_num(&k);

				if (child > 0)
					kill_tree((int)child);
				while (*k && (*k < '0' || *k > '9'))
					k++;
			}
		}
	}
	if (dfd >= 0)
		sc(SYS_close, dfd, 0, 0);
	sc(SYS_kill, pid, AG_SIGKILL, 0);
}

static void
kill_command(void)
{
	if (ag.running && !ag.killed && ag.pid > 0) {
		ag.killed = 1;
		kill_tree(ag.pid);
	}
}

/* The host's answer to a chunk, one line read byte by byte (the shell reads
 * what follows); -1 when the channel is gone. After a "K" the chunks still
 * in flight are answered too, and those answers are read as well. */
static int
read_answer(void)
{
	char c, first = 0;
	int n = 0;

	for (;;) {
		long r = sc(SYS_read, AG_IN_FD, (long)&c, 1);

		if (r == -AG_EINTR || r == -AG_EAGAIN)
			continue;
		if (r <= 0)
			return -1;
		if (c == '\n')
			break;
		if (c == '\r')
			continue;
		if (!n++)
			first = c;
	}
	if (ag.unacked > 0)
		ag.unacked--;
	if (n == 1 && first == '.')
		return 0;
	/* "K", or the host's resynchronisation: send no more, stop it */
	ag.deaf = 1;
	kill_command();
	return 0;
}

/* Lossy: wait until fewer than limit chunks are unanswered. */
static void
wait_window(int limit)
{
	while (ag.lossy && ag.unacked >= limit)
		if (read_answer() < 0)
			ag_exit(0);
}

/* The P line goes out with the first output or with the end: a quick
 * command costs the channel one write, not two. */
static void
flush_pend(void)
{
	if (ag.pend_len && write_all(1, ag.pend, ag.pend_len) < 0)
		ag_exit(0);
	ag.pend_len = 0;
}

/* Milliseconds until the next thing due without input: the P line, the
 * command's deadline; -1 for none. */
static int
poll_timeout(void)
{
	long long due = 0, left;

	if (ag.pend_len)
		due = ag.pend_at;
	if (ag.running && ag.deadline && !ag.killed &&
	    (!due || ag.deadline < due))
		due = ag.deadline;
	if (!due)
		return -1;
	left = due - now_ms();
	return left < 0 ? 0 : (int)left;
}

/* Frame n bytes that sit at ag.buf + AG_HDR. */
static void
send_chunk(struct stream *st, size_t n)
{
	char *h;

	if (ag.deaf)
		return;
	flush_pend();
	if (!ag.lossy) {
		h = header(ag.buf + AG_HDR, st->kind, ag.tag, (long long)n, 2,
			   0, 0);
		if (write_all(1, h, (size_t)(ag.buf + AG_HDR - h) + n) < 0)
			ag_exit(0);
	} else {
		size_t m;

		wait_window(ag.window);
		if (ag.deaf)
			return;
		h = header(ag.out + AG_HDR, (char)(st->kind - 'a' + 'A'), ag.tag,
			   (long long)n, 2, 0, 0);
		m = base64(ag.out + AG_HDR, (unsigned char *)ag.buf + AG_HDR, n);
		ag.out[AG_HDR + m] = '\n';
		if (write_all(1, h, (size_t)(ag.out + AG_HDR - h) + m + 1) < 0)
			ag_exit(0);
		ag.unacked++;
	}
	st->sent += (long long)n;
}

/* Read once from a stream; 1 data, 0 nothing now, -1 its writers left. */
static int
pump(struct stream *st)
{
	size_t max = ag.lossy ? AG_LOSSY_CHUNK : AG_CHUNK, got = 0;
	long r;

	/* What the pipe holds now goes as one chunk (a writer's pieces are
	 * often 4 or 8 KiB): fewer frames, and never a wait for more. */
	do {
		r = sc(SYS_read, st->fd, (long)(ag.buf + AG_HDR + got),
		       (long)(max - got));
		if (r > 0)
			got += (size_t)r;
	} while ((r > 0 || r == -AG_EINTR) && got < max);
	if (r == 0)
		st->eof = 1;
	if (got)
		send_chunk(st, got);
	if (got)
		return 1;
	return r == -AG_EAGAIN ? 0 : -1;
}

/* A deep pipe: the command writes on while a chunk goes out (a write to
 * a virtio port returns once the host took it), so chunks come full. */
static int
open_fifo(const char *path)
{
	int fd = (int)sc(SYS_open, (long)path, AG_O_RDONLY | AG_O_NONBLOCK |
			 AG_O_CLOEXEC, 0);

	if (fd >= 0)
		sc(SYS_fcntl, fd, AG_F_SETPIPE_SZ, 1 << 20);
	return fd;
}

/*
 * The agent holds a writer on each output FIFO of its own: the command's
 * open and close of it are then neither the first nor the last writer's,
 * which wake the reader (the agent: four wake-ups, each a switch and, under
 * TCG, a TLB flush, of a command's six). Its end is the shell's status
 * line, not EOF; what the command wrote is in the pipe by then.
 */
static int
hold_fifo(struct stream *st)
{
	st->hold = (int)sc(SYS_open, (long)st->path, AG_O_WRONLY |
			   AG_O_NONBLOCK | AG_O_CLOEXEC, 0);
	return st->hold;
}

/*
 * After the command, before its end line goes out (the host sends the next
 * command only after that line, so its writers find these). Without our
 * own writer, a FIFO that hangs up and holds nothing is nobody's: it is
 * kept, with our writer back. One that a leftover process still holds (or
 * wrote to after the drain) is kept to be drained and discarded, and a new
 * FIFO takes its name.
 */
static int
renew(struct stream *st)
{
	struct ag_pollfd p = { st->fd, AG_POLLIN, 0 };

	sc(SYS_close, st->hold, 0, 0);
	if (sc(SYS_poll, (long)&p, 1, 0) == 1 &&
	    (p.revents & (AG_POLLHUP | AG_POLLIN)) == AG_POLLHUP) {
		st->eof = 0;
		st->sent = 0;
		return hold_fifo(st);
	}
	if (ag.n_orphans == AG_ORPHANS) {
		sc(SYS_close, ag.orphan[0], 0, 0);
		ag.n_orphans--;
		for (int i = 0; i < ag.n_orphans; i++)
			ag.orphan[i] = ag.orphan[i + 1];
	}
	ag.orphan[ag.n_orphans++] = st->fd;
	sc(SYS_unlink, (long)st->path, 0, 0);
	sc(SYS_mknod, (long)st->path, AG_S_IFIFO | 0600, 0);
	st->fd = open_fifo(st->path);
	st->eof = 0;
	st->sent = 0;
	return st->fd < 0 ? st->fd : hold_fifo(st);
}

/*
 * "OUT ERR" on ar: our fds of the two FIFOs, which the next command opens
 * as /proc/AGENT/fd/OUT and .../ERR. Once we are gone those are gone too,
 * so its open fails at once; by their names it would wait for ever for a
 * reader (the shell's liveness check comes before its fork, and we may die
 * in between).
 */
static int
tell_fds(void)
{
	char line[32], *p = line + sizeof(line);

	*--p = '\n';
	p = put_num(p, ag.s[1].fd);
	*--p = ' ';
	p = put_num(p, ag.s[0].fd);
	return write_all(ag.rep, p, (size_t)(line + sizeof(line) - p));
}

/*
 * The end: "\001X" with what each stream sent, after the P line if that
 * still waits, then our fds on ar for the shell, which waits for them (on
 * the lossy channel it must not read the channel while the agent reads
 * answers there, and on any, EOF instead tells it the agent died before
 * the end).
 * The FIFOs are new before the end.
 */
static void
finish(int status)
{
	long long sent[2];
	char *h;
	int i;

	for (i = 0; i < 2; i++)
		while (!ag.s[i].eof && pump(&ag.s[i]) > 0)
			;
	wait_window(1);
	for (i = 0; i < 2; i++) {
		sent[i] = ag.s[i].sent;
		if (renew(&ag.s[i]) < 0)
			ag_exit(3);
	}
	h = header(ag.buf + AG_HDR, 'X', ag.tag, status, 4, sent[0], sent[1]);
	h -= ag.pend_len;
	ag_copy(h, ag.pend, ag.pend_len);
	ag.pend_len = 0;
	if (write_all(1, h, (size_t)(ag.buf + AG_HDR - h)) < 0)
		ag_exit(0);
	ag.running = 0;
	ag.deaf = 0;
	ag.killed = 0;
	ag.unacked = 0;
	if (tell_fds() < 0)
		ag_exit(0);
}

/*
 * "C SEC NSEC" between commands: the wall clock of a continued guest (it
 * stood still at the save). Here, not in date(1): a new process is slow
 * while TCG translates afresh. "0" or "1" (it failed) answers on ar.
 */
static void
set_clock(const char *line)
{
	long ts[2];

	line++;
	ts[0] = (long)parse_num(&line);
	ts[1] = (long)parse_num(&line);
	if (write_all(ag.rep, sc(SYS_clock_settime, 0 /* CLOCK_REALTIME */,
				 (long)ts, 0) < 0 ? "1\n" : "0\n", 2) < 0)
		ag_exit(0);
}

/* The next space-separated word of s into w (cut at n - 1 bytes). */
static const char *
next_word(const char *s, char *w, size_t n)
{
	size_t i = 0;

	while (*s == ' ')
		s++;
	for (; *s && *s != ' '; s++)
		if (i < n - 1)
			w[i++] = *s;
	w[i] = '\0';
	return s;
}

/* text and a newline into path, truncated; 0 or -1. */
static int
put_line(const char *path, const char *text, long flags)
{
	char buf[80];
	size_t n = ag_strlen(text);
	int fd = (int)sc(SYS_open, (long)path, AG_O_WRONLY | AG_O_TRUNC |
			 AG_O_CLOEXEC | flags, 0644);
	int ret;

	if (fd < 0)
		return -1;
	ag_copy(buf, text, n);
	buf[n++] = '\n';
	ret = write_all(fd, buf, n);
	sc(SYS_close, fd, 0, 0);
	return ret;
}

/*
 * "H NAME [ID]" between commands: a clone's own name (the kernel's and
 * /etc/hostname) and, where /etc/machine-id exists, its machine-id, as the
 * resume script's builtins write them, without the shell: each path it
 * takes is slow while TCG translates afresh. "0", or "1" when the kernel
 * refused the name (the shell then does it all itself), answers on ar.
 */
static void
set_identity(const char *line)
{
	char name[72], id[40];
	int ok;

	line = next_word(line + 1, name, sizeof(name));
	next_word(line, id, sizeof(id));
	ok = name[0] && sc(SYS_sethostname, (long)name, (long)ag_strlen(name),
			   0) == 0;
	if (ok) {
		put_line("/etc/hostname", name, AG_O_CREAT);
		if (id[0])
			put_line("/etc/machine-id", id, 0);
	}
	if (write_all(ag.rep, ok ? "0\n" : "1\n", 2) < 0)
		ag_exit(0);
}

/* "TAG PID TIMEOUT" starts a command, then "STATUS" ends it. */
static void
on_ctl_line(const char *line)
{
	if (!ag.running && line[0] == 'C') {
		set_clock(line);
		return;
	}
	if (!ag.running && line[0] == 'H') {
		set_identity(line);
		return;
	}
	if (!ag.running) {
		long long timeout;
		char *h;

		ag.tag = parse_num(&line);
		ag.pid = (int)parse_num(&line);
		timeout = parse_num(&line);
		ag.deadline = timeout > 0 ? now_ms() + timeout * 1000 : 0;
		ag.running = 1;
		h = header(ag.pend + sizeof(ag.pend), 'P', ag.tag, ag.pid, 2, 0,
			   0);
		ag.pend_len = (size_t)(ag.pend + sizeof(ag.pend) - h);
		ag_copy(ag.pend, h, ag.pend_len);
		ag.pend_at = now_ms() + AG_PEND_MS;
		return;
	}
	finish((int)parse_num(&line));
}

static void
read_ctl(void)
{
	char buf[128];
	long r = sc(SYS_read, ag.ctl, (long)buf, sizeof(buf));
	long i;

	if (r == -AG_EAGAIN || r == -AG_EINTR)
		return;
	if (r <= 0)
		ag_exit(0);  /* the shell is gone */
	for (i = 0; i < r; i++) {
		if (buf[i] != '\n') {
			if (ag.clen < sizeof(ag.cline) - 1)
				ag.cline[ag.clen++] = buf[i];
			continue;
		}
		ag.cline[ag.clen] = '\0';
		ag.clen = 0;
		on_ctl_line(ag.cline);
	}
}

static void
drain_orphan(int i)
{
	long r = sc(SYS_read, ag.orphan[i], (long)(ag.buf + AG_HDR), AG_CHUNK);

	if (r == -AG_EAGAIN || r == -AG_EINTR || r > 0)
		return;
	sc(SYS_close, ag.orphan[i], 0, 0);
	ag.orphan[i] = ag.orphan[--ag.n_orphans];
}

static void
loop(void)
{
	struct ag_pollfd pfd[4 + AG_ORPHANS];
	int idx[2], in_idx, n, i;

	for (;;) {
		n = 0;
		pfd[n++] = (struct ag_pollfd){ ag.ctl, AG_POLLIN, 0 };
		idx[0] = idx[1] = in_idx = -1;
		for (i = 0; i < 2 && ag.running; i++) {
			if (ag.s[i].eof || (ag.lossy && !ag.deaf &&
					    ag.unacked >= ag.window))
				continue;
			idx[i] = n;
			pfd[n++] = (struct ag_pollfd){ ag.s[i].fd, AG_POLLIN, 0 };
		}
		if (ag.lossy && ag.running && (!ag.deaf || ag.unacked)) {
			in_idx = n;
			pfd[n++] = (struct ag_pollfd){ AG_IN_FD, AG_POLLIN, 0 };
		}
		for (i = 0; i < ag.n_orphans; i++)
			pfd[n + i] = (struct ag_pollfd){ ag.orphan[i], AG_POLLIN, 0 };
		if (sc(SYS_poll, (long)pfd, n + ag.n_orphans,
		       poll_timeout()) < 0)
			continue;
		if (ag.running && ag.deadline && !ag.killed &&
		    now_ms() >= ag.deadline)
			kill_command();
		if (ag.pend_len && now_ms() >= ag.pend_at)
			flush_pend();
		for (i = ag.n_orphans - 1; i >= 0; i--)
			if (pfd[n + i].revents)
				drain_orphan(i);
		if (in_idx >= 0 && pfd[in_idx].revents &&
		    read_answer() < 0)
			ag_exit(0);
		for (i = 0; i < 2; i++)
			if (idx[i] >= 0 && pfd[idx[i]].revents)
				pump(&ag.s[i]);
		if (pfd[0].revents)
			read_ctl();
	}
}

static int
setup(const char *dir, const char *lossy, const char *window)
{
	static const char *const names[] = { "/ao", "/ae", "/ac" };
	char paths[3][512];
	size_t dl = ag_strlen(dir);
	int i;

	if (dl + 4 > sizeof(paths[0]))
		return 2;
	for (i = 0; i < 3; i++) {
		ag_copy(paths[i], dir, dl);
		ag_copy(paths[i] + dl, names[i], 4);
	}
	ag.lossy = lossy[0] == '1';
	ag.window = (int)parse_num(&window);
	if (ag.window < 1)
		ag.window = 1;
	/* Gone with the shell, even when it could not say so. */
	sc(SYS_prctl, AG_PR_SET_PDEATHSIG, AG_SIGKILL, 0);
	/* The answers' FIFO is open already, as fd 4: the shell's redirection
	 * opened it before our exec, so the shell's open of it to read ends
	 * even when we die before we run, and its read of the line below sees
	 * EOF when anything failed. */
	ag.rep = AG_REP_FD;
	if (sc(SYS_fcntl, ag.rep, AG_F_SETFD, AG_FD_CLOEXEC) < 0)
		return 2;
	ag.ctl = open_fifo(paths[2]);
	if (ag.ctl < 0)
		return 2;
	for (i = 0; i < 2; i++) {
		ag.s[i].kind = i ? 'e' : 'o';
		ag_copy(ag.s[i].path, paths[i], dl + 4);
		ag.s[i].fd = open_fifo(paths[i]);
		if (ag.s[i].fd < 0 || hold_fifo(&ag.s[i]) < 0)
			return 2;
	}
	return tell_fds() < 0 ? 2 : 0;
}

int agent_main(int argc, char **argv);

int
agent_main(int argc, char **argv)
{
	int r;

	if (argc == 2 && argv[1][0] == 'c')
		return 0;
	if (argc != 5 || argv[1][0] != 'r')
		return 2;
	r = setup(argv[2], argv[3], argv[4]);
	if (r)
		return r;
	loop();
	return 0;
}

#ifdef AGENT_NOLIBC
void agent_start(long *sp);

void
agent_start(long *sp)
{
	ag_exit(agent_main((int)sp[0], (char **)(sp + 1)));
}

/* The compiler may call these even without a libc. */
void *memcpy(void *d, const void *s, size_t n);
void *memset(void *d, int c, size_t n);

void *
memcpy(void *d, const void *s, size_t n)
{
	ag_copy(d, s, n);
	return d;
}

void *
memset(void *d, int c, size_t n)
{
	char *p = d;

	while (n--)
		*p++ = (char)c;
	return d;
}

__asm__(".text\n.global _start\n_start:\n\txor %rbp,%rbp\n\tmov %rsp,%rdi\n"
	"\tand $-16,%rsp\n\tcall agent_start\n\thlt\n");
#else
int
main(int argc, char **argv)
{
	return agent_main(argc, argv);
}
#endif
