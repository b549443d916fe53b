/*
 * backends/tapnet.c: the mount's network namespace. Frames really cross
 * the bridge: a child inside the namespace opens the TAPs as a VMM would
 * and sends an Ethernet broadcast from one to the others. Skips where the
 * kernel refuses namespaces or TAP devices.
 */
#include <errno.h>
#include <fcntl.h>
#include <linux/capability.h>
#include <linux/if_tun.h>
#include <poll.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>
#include <cmocka.h>

#include "backends/tapnet.h"

/* How long a frame may take to cross the bridge, and how long one that
 * must not cross is waited for. */
#define FRAME_MS 5000
#define RESEND_MS 50
#define NO_FRAME_MS 300

/* The child's verdicts: what arrived where. */
enum { ARRIVED = 1, NOT_ARRIVED = 2, SEND_FAILED = 3 };

static struct tapnet *net;

static int
setup(void **state)
{
	struct aerr err = { "" };

	if (access("/dev/net/tun", R_OK | W_OK) < 0 ||
	    tapnet_open(&net, &err) < 0)
		net = NULL;
	if (!net)
		fprintf(stderr, "# no namespace or TAP devices here (%s): "
			"the tapnet tests skip\n", err.msg);
	return 0;
}

static int
teardown(void **state)
{
	tapnet_close(net);
	return 0;
}

static int
tap_open(const char *name)
{
	struct ifreq ifr;
	int fd = open("/dev/net/tun", O_RDWR | O_CLOEXEC);

	if (fd < 0)
		return -1;
	memset(&ifr, 0, sizeof(ifr));
	snprintf(ifr.ifr_name, sizeof(ifr.ifr_name), "%s", name);
	ifr.ifr_flags = IFF_TAP | IFF_NO_PI;
	if (ioctl(fd, TUNSETIFF, &ifr) < 0) {
		close(fd);
		return -1;
	}
	return fd;
}

/* A broadcast with a payload that tells this test's frames apart from the
 * kernel's own (IPv6 router solicitations and the like). */
static size_t
make_frame(unsigned char *f, unsigned tag)
{
	static const unsigned char head[14] = {
		0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
		0x52, 0x54, 0x00, 0x12, 0x07, 0x01,
		0x88, 0xb5,        /* local experimental EtherType */
	};

	memcpy(f, head, sizeof(head));
	memset(f + 14, 0, 46);
	snprintf((char *)f + 14, 46, "attestfs tapnet %u", tag);
	return 60;
}

/* Whether a frame tagged tag comes out of fd within ms. */
static int
frame_arrives(int fd, unsigned tag, int ms)
{
	unsigned char want[60], got[2048];
	struct pollfd p = { .fd = fd, .events = POLLIN };

	make_frame(want, tag);
	while (poll(&p, 1, ms) > 0) {
		ssize_t n = read(fd, got, sizeof(got));

		if (n >= 60 && !memcmp(got, want, 60))
			return ARRIVED;
	}
	return NOT_ARRIVED;
}

/* The child of cross(): a bridge port forwards only once the kernel has
 * seen the TAP's carrier (asynchronously, after the open), so the frame
 * goes out again every RESEND_MS until `seen` has it: then it has left
 * `from` and crossed the bridge, and `to` either has it too or never will. */
static int
cross_child(const char *from, const char *to, const char *seen, unsigned tag)
{
	unsigned char f[60];
	int a, b, c, i;

	if (tapnet_enter(net) < 0)
		_exit(90);
	a = tap_open(from);
	b = tap_open(to);
	c = seen ? tap_open(seen) : b;
	if (a < 0 || b < 0 || c < 0)
		_exit(91);
	for (i = 0; i < FRAME_MS / RESEND_MS; i++) {
		if (write(a, f, make_frame(f, tag)) != 60)
			return SEND_FAILED;
		if (frame_arrives(c, tag, RESEND_MS) == ARRIVED)
			return c == b ? ARRIVED : frame_arrives(b, tag, NO_FRAME_MS);
	}
	return NOT_ARRIVED;
}

/* A frame from `from` inside the namespace: did it reach `to`? With seen
 * (a TAP that does get it), `to` is looked at once the frame has crossed. */
static int
cross(const char *from, const char *to, const char *seen, unsigned tag)
{
	pid_t pid = fork();
	int status;

	assert_true(pid >= 0);
	if (pid == 0)
		_exit(cross_child(from, to, seen, tag));
	assert_int_equal(waitpid(pid, &status, 0), pid);
	assert_true(WIFEXITED(status));
	return WEXITSTATUS(status);
}

static void
test_nics_on_one_vlan_share_a_bridge_and_no_other(void **state)
{
	struct aerr err = { "" };
	struct stat st;

	if (!net)
		skip();
	assert_int_equal(tapnet_add_nic(net, 7, "at1-7", &err), 0);
	assert_int_equal(tapnet_add_nic(net, 7, "at2-7", &err), 0);
	assert_int_equal(tapnet_add_nic(net, 8, "at3-8", &err), 0);
	/* nothing of it in the host's network */
	assert_int_equal(if_nametoindex("at1-7"), 0);
	assert_int_equal(if_nametoindex("atbr7"), 0);
	assert_true(stat("/sys/class/net/atbr7", &st) < 0);

	assert_int_equal(cross("at1-7", "at2-7", NULL, 1), ARRIVED);
	assert_int_equal(cross("at2-7", "at1-7", NULL, 2), ARRIVED);
	assert_int_equal(cross("at1-7", "at3-8", "at2-7", 3), NOT_ARRIVED);
	/* adding it again (a VMM started anew) changes nothing */
	assert_int_equal(tapnet_add_nic(net, 7, "at1-7", &err), 0);
	assert_int_equal(cross("at1-7", "at2-7", NULL, 4), ARRIVED);
}

static void
test_a_link_down_passes_nothing_until_it_is_up(void **state)
{
	struct aerr err = { "" };
	int verdict;

	if (!net)
		skip();
	assert_int_equal(tapnet_add_nic(net, 9, "at1-9", &err), 0);
	assert_int_equal(tapnet_add_nic(net, 9, "at2-9", &err), 0);
	assert_int_equal(tapnet_add_nic(net, 9, "at3-9", &err), 0);
	assert_int_equal(tapnet_link(net, "at1-9", &err), 1);

	assert_int_equal(tapnet_set_link(net, "at1-9", 0, &err), 0);
	assert_int_equal(tapnet_link(net, "at1-9", &err), 0);
	/* into it: at3-9 gets the broadcast, at1-9 does not */
	assert_int_equal(cross("at2-9", "at1-9", "at3-9", 5), NOT_ARRIVED);
	/* out of it: the guest's write fails or the frame goes nowhere */
	verdict = cross("at1-9", "at2-9", NULL, 6);
	assert_true(verdict == NOT_ARRIVED || verdict == SEND_FAILED);

	assert_int_equal(tapnet_set_link(net, "at1-9", 1, &err), 0);
	assert_int_equal(tapnet_link(net, "at1-9", &err), 1);
	assert_int_equal(cross("at1-9", "at2-9", NULL, 7), ARRIVED);
	assert_int_equal(cross("at2-9", "at1-9", NULL, 8), ARRIVED);
}

static void
test_bad_names_and_missing_taps_say_why(void **state)
{
	struct aerr err = { "" };

	if (!net)
		skip();
	assert_int_equal(tapnet_add_nic(net, 1, "a-name-far-too-long", &err),
			 -EINVAL);
	assert_non_null(strstr(err.msg, "1 to 15 characters"));
	assert_int_equal(tapnet_add_nic(net, 1, "", &err), -EINVAL);
	assert_int_equal(tapnet_set_link(net, "nosuchtap", 0, &err), -ENODEV);
	assert_non_null(strstr(err.msg, "nosuchtap"));
	assert_int_equal(tapnet_link(net, "nosuchtap", &err), -ENODEV);
}

static void
test_two_mounts_have_two_networks(void **state)
{
	struct aerr err = { "" };
	struct tapnet *other;

	if (!net)
		skip();
	assert_int_equal(tapnet_open(&other, &err), 0);
	assert_int_equal(tapnet_add_nic(net, 4, "at1-4", &err), 0);
	/* the same name in the other namespace is another device */
	assert_int_equal(tapnet_link(other, "at1-4", &err), -ENODEV);
	assert_int_equal(tapnet_add_nic(other, 4, "at1-4", &err), 0);
	assert_int_equal(tapnet_set_link(other, "at1-4", 0, &err), 0);
	assert_int_equal(tapnet_link(net, "at1-4", &err), 1);
	tapnet_close(other);
}

/* Without CAP_SYS_ADMIN and CAP_NET_ADMIN, as a daemon that is not root:
 * the namespace then lives in a user namespace of its own. */
static int
drop_admin_caps(void)
{
	struct __user_cap_header_struct h = { _LINUX_CAPABILITY_VERSION_3, 0 };
	struct __user_cap_data_struct d[2];
	unsigned drop[] = { CAP_SYS_ADMIN, CAP_NET_ADMIN };
	size_t i;

	if (syscall(SYS_capget, &h, d) < 0)
		return -1;
	for (i = 0; i < sizeof(drop) / sizeof(drop[0]); i++) {
		d[drop[i] / 32].effective &= ~(1U << (drop[i] % 32));
		d[drop[i] / 32].permitted &= ~(1U << (drop[i] % 32));
		d[drop[i] / 32].inheritable &= ~(1U << (drop[i] % 32));
	}
	return (int)syscall(SYS_capset, &h, d);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_nics_on_one_vlan_share_a_bridge_and_no_other),
		cmocka_unit_test(test_a_link_down_passes_nothing_until_it_is_up),
		cmocka_unit_test(test_bad_names_and_missing_taps_say_why),
		cmocka_unit_test(test_two_mounts_have_two_networks),
	};
	int failed, status;
	pid_t pid;

	failed = cmocka_run_group_tests_name("tapnet", tests, setup, teardown);
	if (geteuid() != 0)
		return failed;
	/* again as an unprivileged daemon */
	fflush(NULL);
	pid = fork();
	if (pid == 0) {
		if (drop_admin_caps() < 0) {
			perror("capset");
			_exit(1);
		}
		_exit(cmocka_run_group_tests_name("tapnet without "
						  "CAP_SYS_ADMIN", tests,
						  setup, teardown));
	}
	if (pid < 0 || waitpid(pid, &status, 0) != pid || !WIFEXITED(status))
		return failed + 1;
	return failed + WEXITSTATUS(status);
}
