/*
 * The mount's network namespace for TAP NICs (tapnet.h). Every operation
 * inside it runs in a forked child that enters the namespace first: a
 * threaded daemon cannot join a user namespace itself, and its own threads
 * stay in the host's network either way. The children make only system
 * calls (names are formatted before the fork).
 */
#include "backends/tapnet.h"

#include <errno.h>
#include <fcntl.h>
#include <linux/if_tun.h>
#include <linux/sockios.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include "common/proc.h"

struct tapnet {
	int user_fd;               /* -1: privileged, no user namespace */
	int net_fd;
};

/* What one operation in the namespace needs, formatted before the fork. */
struct tapnet_op {
	char tap[IFNAMSIZ];
	char bridge[IFNAMSIZ];
	int up;
};

/* A child's exit code: a value below TAPNET_ERRNO_BASE, or that plus an
 * errno. */
#define TAPNET_ERRNO_BASE 100

/* ---- the namespace's holder ----------------------------------------- */

/* The first child: unshares, says how that went, and waits until the
 * parent has opened the namespaces (EOF on hold: the parent's end is the
 * only writer left). Never returns. */
static void
holder_child(pid_t parent, int flags, const int ready[2], const int hold[2])
{
	int result = 0, ready_fd = ready[1], hold_fd = hold[0];
	char c;

	proc_child_init(parent);
	close(ready[0]);
	close(hold[1]);
	if (unshare(flags) < 0)
		result = errno;
	if (write(ready_fd, &result, sizeof(result)) != sizeof(result))
		_exit(1);
	while (read(hold_fd, &c, 1) < 0 && errno == EINTR)
		;
	_exit(0);
}

static int
write_proc_file(pid_t pid, const char *name, const char *text)
{
	char path[64];
	int fd, ret = 0;

	snprintf(path, sizeof(path), "/proc/%d/%s", (int)pid, name);
	fd = open(path, O_WRONLY | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	if (write(fd, text, strlen(text)) < 0)
		ret = -errno;
	close(fd);
	return ret;
}

/* The unprivileged case: the daemon's user is root in the new namespace. */
static int
map_ids(pid_t pid, struct aerr *err)
{
	char map[64];
	int ret;

	ret = write_proc_file(pid, "setgroups", "deny");
	if (ret == 0) {
		snprintf(map, sizeof(map), "0 %u 1", (unsigned)geteuid());
		ret = write_proc_file(pid, "uid_map", map);
	}
	if (ret == 0) {
		snprintf(map, sizeof(map), "0 %u 1", (unsigned)getegid());
		ret = write_proc_file(pid, "gid_map", map);
	}
	if (ret < 0)
		aerr_set(err, "network namespace: cannot map the user ids: %s",
			 strerror(-ret));
	return ret;
}

static int
open_ns(pid_t pid, const char *name, int *fd)
{
	char path[64];

	snprintf(path, sizeof(path), "/proc/%d/ns/%s", (int)pid, name);
	*fd = open(path, O_RDONLY | O_CLOEXEC);
	return *fd < 0 ? -errno : 0;
}

/* With the holder unshared: its namespaces into t. */
static int
adopt_holder(struct tapnet *t, pid_t pid, int with_user, struct aerr *err)
{
	int ret = 0;

	if (with_user)
		ret = map_ids(pid, err);
	if (ret == 0 && with_user && (ret = open_ns(pid, "user", &t->user_fd)))
		aerr_set(err, "network namespace: %s", strerror(-ret));
	if (ret == 0 && (ret = open_ns(pid, "net", &t->net_fd)))
		aerr_set(err, "network namespace: %s", strerror(-ret));
	return ret;
}

/* Unshare flags in a holder and keep its namespaces. 0, or -errno (the
 * holder's unshare() failing is its errno, without a message). */
static int
holder_run(struct tapnet *t, int flags, struct aerr *err)
{
	int ready[2], hold[2], result = 0, ret, status;
	pid_t parent = getpid(), pid;
	ssize_t n;

	if (pipe2(ready, O_CLOEXEC) < 0)
		return -errno;
	if (pipe2(hold, O_CLOEXEC) < 0) {
		ret = -errno;
		close(ready[0]);
		close(ready[1]);
		return ret;
	}
	pid = fork();
	if (pid == 0)
		holder_child(parent, flags, ready, hold);
	close(ready[1]);
	close(hold[0]);
	ret = pid < 0 ? -errno : 0;
	if (ret == 0) {
		do
			n = read(ready[0], &result, sizeof(result));
		while (n < 0 && errno == EINTR);
		ret = n != sizeof(result) ? -ECHILD : -result;
	}
	if (ret == 0)
		ret = adopt_holder(t, pid, (flags & CLONE_NEWUSER) != 0, err);
	close(hold[1]);
	close(ready[0]);
	while (pid > 0 && waitpid(pid, &status, 0) < 0 && errno == EINTR)
		;
	return ret;
}

int
tapnet_open(struct tapnet **out, struct aerr *err)
{
	struct tapnet *t = xcalloc(1, sizeof(*t));
	int ret;

	t->user_fd = -1;
	t->net_fd = -1;
	ret = holder_run(t, CLONE_NEWNET, err);
	if (ret == -EPERM)
		ret = holder_run(t, CLONE_NEWUSER | CLONE_NEWNET, err);
	if (ret < 0) {
		if (!err->msg[0])
			aerr_set(err, "cannot make a network namespace for "
				 "the TAP devices: %s", strerror(-ret));
		tapnet_close(t);
		return ret;
	}
	*out = t;
	return 0;
}

void
tapnet_close(struct tapnet *t)
{
	if (!t)
		return;
	if (t->user_fd >= 0)
		close(t->user_fd);
	if (t->net_fd >= 0)
		close(t->net_fd);
	free(t);
}

int
tapnet_enter(const struct tapnet *t)
{
	if (t->user_fd >= 0 && setns(t->user_fd, CLONE_NEWUSER) < 0)
		return -errno;
	if (setns(t->net_fd, CLONE_NEWNET) < 0)
		return -errno;
	return 0;
}

/* ---- operations inside ----------------------------------------------- */

static int
if_flags(int s, const char *name, short *flags)
{
	struct ifreq ifr;

	memset(&ifr, 0, sizeof(ifr));
	memcpy(ifr.ifr_name, name, IFNAMSIZ);
	if (ioctl(s, SIOCGIFFLAGS, &ifr) < 0)
		return -errno;
	*flags = ifr.ifr_flags;
	return 0;
}

static int
if_set_up(int s, const char *name, int up)
{
	struct ifreq ifr;
	short flags = 0;
	int ret = if_flags(s, name, &flags);

	if (ret < 0)
		return ret;
	memset(&ifr, 0, sizeof(ifr));
	memcpy(ifr.ifr_name, name, IFNAMSIZ);
	ifr.ifr_flags = up ? (short)(flags | IFF_UP) : (short)(flags & ~IFF_UP);
	if (ioctl(s, SIOCSIFFLAGS, &ifr) < 0)
		return -errno;
	return 0;
}

/* The TAP exists and outlives this child (TUNSETPERSIST). EBUSY: a VMM
 * has it open, so it exists already. */
static int
tap_make(const char *name)
{
	struct ifreq ifr;
	int fd, ret = 0;

	fd = open("/dev/net/tun", O_RDWR | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	memset(&ifr, 0, sizeof(ifr));
	memcpy(ifr.ifr_name, name, IFNAMSIZ);
	ifr.ifr_flags = IFF_TAP | IFF_NO_PI;
	if (ioctl(fd, TUNSETIFF, &ifr) < 0)
		ret = errno == EBUSY ? 0 : -errno;
	else if (ioctl(fd, TUNSETPERSIST, 1) < 0)
		ret = -errno;
	close(fd);
	return ret;
}

/* tap into bridge; EBUSY: it has a master already (this one, when it
 * is reused). */
static int
bridge_join(int s, const char *bridge, const char *tap)
{
	struct ifreq ifr;

	memset(&ifr, 0, sizeof(ifr));
	memcpy(ifr.ifr_name, tap, IFNAMSIZ);
	if (ioctl(s, SIOCGIFINDEX, &ifr) < 0)
		return -errno;
	memcpy(ifr.ifr_name, bridge, IFNAMSIZ);
	if (ioctl(s, SIOCBRADDIF, &ifr) < 0 && errno != EBUSY)
		return -errno;
	return 0;
}

static int
op_add_nic(const struct tapnet_op *op)
{
	int s, ret;

	s = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	if (s < 0)
		return -errno;
	ret = ioctl(s, SIOCBRADDBR, op->bridge) < 0 && errno != EEXIST ?
	      -errno : 0;
	if (ret == 0)
		ret = if_set_up(s, op->bridge, 1);
	if (ret == 0)
		ret = tap_make(op->tap);
	if (ret == 0)
		ret = bridge_join(s, op->bridge, op->tap);
	if (ret == 0)
		ret = if_set_up(s, op->tap, 1);
	close(s);
	return ret;
}

static int
op_set_link(const struct tapnet_op *op)
{
	int s = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0), ret;

	if (s < 0)
		return -errno;
	ret = if_set_up(s, op->tap, op->up);
	close(s);
	return ret;
}

static int
op_link(const struct tapnet_op *op)
{
	int s = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0), ret;
	short flags = 0;

	if (s < 0)
		return -errno;
	ret = if_flags(s, op->tap, &flags);
	close(s);
	return ret < 0 ? ret : (flags & IFF_UP) != 0;
}

/* fn(op) in a child inside the namespace: its result (>= 0) or -errno. */
static int
tapnet_run(const struct tapnet *t, int (*fn)(const struct tapnet_op *),
	   const struct tapnet_op *op)
{
	pid_t parent = getpid(), pid;
	int status, ret;

	pid = fork();
	if (pid < 0)
		return -errno;
	if (pid == 0) {
		proc_child_init(parent);
		ret = tapnet_enter(t);
		if (ret == 0)
			ret = fn(op);
		_exit(ret < 0 ? TAPNET_ERRNO_BASE - ret : ret);
	}
	while (waitpid(pid, &status, 0) < 0)
		if (errno != EINTR)
			return -errno;
	if (!WIFEXITED(status))
		return -EIO;
	ret = WEXITSTATUS(status);
	return ret >= TAPNET_ERRNO_BASE ? -(ret - TAPNET_ERRNO_BASE) : ret;
}

static int
op_init(struct tapnet_op *op, const char *tap, struct aerr *err)
{
	memset(op, 0, sizeof(*op));
	if (!tap[0] || strlen(tap) >= IFNAMSIZ || strchr(tap, '/')) {
		aerr_set(err, "TAP name \"%s\": 1 to %d characters, no '/'",
			 tap, IFNAMSIZ - 1);
		return -EINVAL;
	}
	memcpy(op->tap, tap, strlen(tap));
	return 0;
}

int
tapnet_add_nic(struct tapnet *t, unsigned vlan, const char *tap,
	       struct aerr *err)
{
	struct tapnet_op op;
	int ret = op_init(&op, tap, err);

	if (ret < 0)
		return ret;
	snprintf(op.bridge, sizeof(op.bridge), "atbr%u", vlan);
	ret = tapnet_run(t, op_add_nic, &op);
	if (ret < 0)
		aerr_set(err, "TAP %s on bridge %s: %s", tap, op.bridge,
			 strerror(-ret));
	return ret < 0 ? ret : 0;
}

int
tapnet_set_link(struct tapnet *t, const char *tap, int up, struct aerr *err)
{
	struct tapnet_op op;
	int ret = op_init(&op, tap, err);

	if (ret < 0)
		return ret;
	op.up = up;
	ret = tapnet_run(t, op_set_link, &op);
	if (ret < 0)
		aerr_set(err, "TAP %s link %s: %s", tap, up ? "up" : "down",
			 strerror(-ret));
	return ret < 0 ? ret : 0;
}

int
tapnet_set_links(struct tapnet *t, const struct backend_nic *nics, size_t n,
		 int up, struct aerr *err)
{
	size_t i;
	int ret = 0;

	for (i = 0; ret == 0 && i < n; i++)
		ret = tapnet_set_link(t, nics[i].tap, up, err);
	return ret;
}

int
tapnet_link(struct tapnet *t, const char *tap, struct aerr *err)
{
	struct tapnet_op op;
	int ret = op_init(&op, tap, err);

	if (ret < 0)
		return ret;
	ret = tapnet_run(t, op_link, &op);
	if (ret < 0)
		aerr_set(err, "TAP %s: %s", tap, strerror(-ret));
	return ret;
}
