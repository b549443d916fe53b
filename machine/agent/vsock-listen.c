/*
 * attestfs-vsock-listen: the guest's end of the vsock channel (Firecracker,
 * Cloud Hypervisor). Listens on AF_VSOCK port PORT (any CID) and runs CMD
 * once per connection, with the connection as its stdin and stdout, in a
 * session of its own; the host's dialer (backends/vsock.c) connects one
 * connection per shell. CMD is the backdoor shell, which greets first
 * ("Spawning backdoor root shell...", tests/guest/backdoor-vsock) and ends
 * when the host goes away (EOF): after a snapshot the host connects anew and
 * gets new shells. Static x86_64 Linux without a libc, like the agent
 * beside it, so busybox-only guests run it; `make` builds it into
 * build/agent/ for the guest builders.
 *
 *   attestfs-vsock-listen check              exits 0 when AF_VSOCK works
 *   attestfs-vsock-listen PORT CMD [ARG...]  CMD is an absolute path
 *   attestfs-vsock-listen -u PATH CMD [ARG...]
 *                      the same on a unix socket (the host's unit tests)
 *
 * Exits 2 on bad arguments, 1 when it cannot listen; otherwise it runs
 * until killed. Finished commands are reaped by the kernel (SIGCHLD
 * ignored here; the commands get the default back).
 */
#define _GNU_SOURCE
#include "nolibc.h"

enum {
	SYS_write = 1, SYS_close = 3, SYS_rt_sigaction = 13, SYS_dup2 = 33,
	SYS_socket = 41, SYS_bind = 49, SYS_listen = 50, SYS_fork = 57,
	SYS_execve = 59, SYS_fcntl = 72, SYS_unlink = 87, SYS_setsid = 112,
	SYS_exit_group = 231, SYS_accept4 = 288,
};

#define VL_AF_UNIX 1
#define VL_AF_VSOCK 40
#define VL_SOCK_STREAM 1
#define VL_SOCK_CLOEXEC 02000000
#define VL_VMADDR_CID_ANY 0xffffffffu
#define VL_SIGCHLD 17
#define VL_SIG_IGN 1
#define VL_EINTR 4

struct vl_sockaddr_vm {
	unsigned short family;
	unsigned short reserved1;
	unsigned int port;
	unsigned int cid;
	unsigned char flags;
	unsigned char zero[3];
};

struct vl_sockaddr_un {
	unsigned short family;
	char path[108];
};

struct vl_sigaction {
	unsigned long handler;
	unsigned long flags;
	unsigned long restorer;
	unsigned long mask;
};

#define sc(n, a, b, c) nl_syscall(n, a, b, c, 0)
#define sc4 nl_syscall
#define VL_F_DUPFD 0

static size_t
vl_len(const char *s)
{
	size_t n = 0;

	while (s[n])
		n++;
	return n;
}

static int
vl_eq(const char *a, const char *b)
{
	while (*a && *a == *b) {
		a++;
		b++;
	}
	return *a == *b;
}

static void
vl_say(const char *what, long err)
{
	char num[24];
	int i = (int)sizeof(num);
	unsigned long e = (unsigned long)(err < 0 ? -err : err);

	num[--i] = '\n';
	do {
		num[--i] = (char)('0' + e % 10);
		e /= 10;
	} while (e);
	sc(SYS_write, 2, (long)"attestfs-vsock-listen: ", 23);
	sc(SYS_write, 2, (long)what, (long)vl_len(what));
	sc(SYS_write, 2, (long)" (errno ", 8);
	sc(SYS_write, 2, (long)(num + i), (long)(sizeof(num) - i - 1));
	sc(SYS_write, 2, (long)")\n", 2);
}

static int
vl_port(const char *s, unsigned int *out)
{
	unsigned long v = 0;

	if (!*s)
		return -1;
	for (; *s; s++) {
		if (*s < '0' || *s > '9' || v > 0xffffffffUL / 10)
			return -1;
		v = v * 10 + (unsigned long)(*s - '0');
	}
	if (v > 0xffffffffUL)
		return -1;
	*out = (unsigned int)v;
	return 0;
}

/* The listening socket, or -errno. */
static long
vl_listen(const char *path, unsigned int port)
{
	long fd, r;

	if (path) {
		struct vl_sockaddr_un sa = { .family = VL_AF_UNIX };
		size_t n = vl_len(path);

		if (n >= sizeof(sa.path))
			return -36; /* ENAMETOOLONG */
		memcpy(sa.path, path, n + 1);
		sc(SYS_unlink, (long)path, 0, 0);
		fd = sc(SYS_socket, VL_AF_UNIX,
			VL_SOCK_STREAM | VL_SOCK_CLOEXEC, 0);
		if (fd < 0)
			return fd;
		r = sc(SYS_bind, fd, (long)&sa, sizeof(sa));
	} else {
		struct vl_sockaddr_vm sa = {
			.family = VL_AF_VSOCK,
			.port = port,
			.cid = VL_VMADDR_CID_ANY,
		};

		fd = sc(SYS_socket, VL_AF_VSOCK,
			VL_SOCK_STREAM | VL_SOCK_CLOEXEC, 0);
		if (fd < 0)
			return fd;
		r = sc(SYS_bind, fd, (long)&sa, sizeof(sa));
	}
	if (r >= 0)
		r = sc(SYS_listen, fd, 16, 0);
	if (r < 0) {
		sc(SYS_close, fd, 0, 0);
		return r;
	}
	return fd;
}

static void __attribute__((noreturn))
vl_exit(int code)
{
	for (;;)
		sc(SYS_exit_group, code, 0, 0);
}

/* One connection's command: a session of its own, the connection as
 * stdin and stdout; stderr stays ours (the guest's serial log). */
static void __attribute__((noreturn))
vl_child(long conn, char **cmd, char **envp)
{
	/* Above 0-2 first and without close-on-exec, whatever conn was. */
	long fd = sc(SYS_fcntl, conn, VL_F_DUPFD, 3);
	/* Our ignored SIGCHLD would be the command's too (exec keeps it):
	 * the kernel would reap its children before a wait saw them. */
	struct vl_sigaction dfl = { .handler = 0 };

	sc4(SYS_rt_sigaction, VL_SIGCHLD, (long)&dfl, 0, 8);
	sc(SYS_setsid, 0, 0, 0);
	if (fd < 0)
		vl_exit(126);
	sc(SYS_dup2, fd, 0, 0);
	sc(SYS_dup2, fd, 1, 0);
	sc(SYS_close, fd, 0, 0);
	sc(SYS_execve, (long)cmd[0], (long)cmd, (long)envp);
	vl_say("cannot run the command", -2);
	vl_exit(127);
}

static int
vl_main(int argc, char **argv, char **envp)
{
	struct vl_sigaction ign = { .handler = VL_SIG_IGN };
	const char *path = (void *)0;
	unsigned int port = 0;
	int i = 1;
	long lfd;

	if (argc == 2 && vl_eq(argv[1], "check")) {
		lfd = sc(SYS_socket, VL_AF_VSOCK, VL_SOCK_STREAM, 0);
		if (lfd < 0) {
			vl_say("no AF_VSOCK", lfd);
			return 1;
		}
		sc(SYS_close, lfd, 0, 0);
		return 0;
	}
	if (argc > 2 && vl_eq(argv[1], "-u")) {
		path = argv[2];
		i = 3;
	} else if (argc < 2 || vl_port(argv[1], &port) < 0) {
		vl_say("usage: attestfs-vsock-listen PORT|-u PATH CMD [ARG...]",
		       22);
		return 2;
	} else {
		i = 2;
	}
	if (i >= argc || argv[i][0] != '/') {
		vl_say("CMD must be an absolute path", 22);
		return 2;
	}
	lfd = vl_listen(path, port);
	if (lfd < 0) {
		vl_say(path ? "cannot listen on the unix socket" :
			      "cannot listen on AF_VSOCK", lfd);
		return 1;
	}
	sc4(SYS_rt_sigaction, VL_SIGCHLD, (long)&ign, 0, 8);
	for (;;) {
		long conn = sc4(SYS_accept4, lfd, 0, 0, VL_SOCK_CLOEXEC);
		long pid;

		if (conn < 0)
			continue; /* EINTR, ECONNABORTED, EMFILE: again */
		pid = sc(SYS_fork, 0, 0, 0);
		if (pid == 0) {
			sc(SYS_close, lfd, 0, 0);
			vl_child(conn, argv + i, envp);
		}
		sc(SYS_close, conn, 0, 0);
	}
}

#ifdef AGENT_NOLIBC
void vl_start(long *sp);

void
vl_start(long *sp)
{
	int argc = (int)sp[0];
	char **argv = (char **)(sp + 1);

	vl_exit(vl_main(argc, argv, argv + argc + 1));
}

NOLIBC_START(vl_start);
#else
extern char **environ;
int main(int argc, char **argv);

int
main(int argc, char **argv)
{
	return vl_main(argc, argv, environ);
}
#endif
