/*
 * backends/qemu.c: the command line (a pure function), and the launch
 * lifecycle against a fake QEMU. The fake is this very binary: run with
 * FAKE_QEMU_MODE set, main() plays a QEMU that serves QMP on the -qmp socket,
 * writes -pidfile, connects to the console chardev and answers commands.
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>
#include <json-c/json.h>

#include "backends/accel.h"
#include "backends/backend.h"
#include "backends/qemu.h"
#include "common/util.h"
#include "common/proc.h"
#include "common/sock.h"

/* How long a test waits for what must come (an event, a connection, an
 * EOF): a loaded two-core host (CI) may stall a thread for seconds, so only
 * a hang should exceed it; the waits end as soon as it comes. */
#define WAIT_MS 60000

/* ---- the fake QEMU ---------------------------------------------------- */

/* "unix:PATH,server=on" or "socket,id=x,path=PATH,..." -> PATH */
static char *
fake_opt_path(const char *s, const char *prefix)
{
	const char *p = strstr(s, prefix);
	struct strbuf sb;

	if (!p)
		return NULL;
	sb_init(&sb);
	for (p += strlen(prefix); *p; p++) {
		if (*p == ',' && p[1] == ',') {
			sb_add(&sb, ",", 1);
			p++;
		} else if (*p == ',') {
			break;
		} else {
			sb_add(&sb, p, 1);
		}
	}
	return sb_detach(&sb, NULL);
}

static void
fake_send(int fd, const char *s)
{
	if (write_all(fd, s, strlen(s)) < 0)
		_exit(3);
}

/* Every command, one JSON line, into $FAKE_QEMU_RECORD when set. */
static void
fake_record(json_object *o)
{
	const char *path = getenv("FAKE_QEMU_RECORD");
	FILE *f;

	if (!path || !o)
		return;
	f = fopen(path, "a");
	if (!f)
		return;
	fprintf(f, "%s\n", json_object_to_json_string_ext(
			o, JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE));
	fclose(f);
}

/* HMP answers in text: hostfwd_add to host port 1 fails as in QEMU. */
static char *
fake_hmp_reply(json_object *o, json_object *id)
{
	json_object *args, *line;
	const char *text = "";

	if (json_object_object_get_ex(o, "arguments", &args) &&
	    json_object_object_get_ex(args, "command-line", &line) &&
	    strstr(json_object_get_string(line), ":1-:"))
		text = "Could not set up host forwarding rule "
		       "'tcp:127.0.0.1:1-:80'\\r\\n";
	return xasprintf("{\"return\": \"%s\", \"id\": %s}\r\n", text,
			 id ? json_object_to_json_string(id) : "null");
}

static int
fake_qemu_main(int argc, char **argv)
{
	char *qmp = NULL, *pidfile = NULL, *console = NULL;
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	int i, lfd, fd, cfd = -1;
	struct strbuf buf;
	char chunk[4096];

	if (getenv("FAKE_QEMU_FAIL")) {
		fprintf(stderr, "qemu-system-x86_64: -bogus: invalid option\n");
		_exit(1);
	}
	for (i = 1; i + 1 < argc; i++) {
		if (!strcmp(argv[i], "-qmp"))
			qmp = fake_opt_path(argv[i + 1], "unix:");
		else if (!strcmp(argv[i], "-pidfile"))
			pidfile = argv[i + 1];
		else if (!strcmp(argv[i], "-chardev") &&
			 strstr(argv[i + 1], "id=console,"))
			console = fake_opt_path(argv[i + 1], "path=");
	}
	if (!qmp || !pidfile) {
		fprintf(stderr, "fake qemu: no -qmp or -pidfile\n");
		_exit(2);
	}
	if (console) {
		cfd = sock_unix_connect(console);
		if (cfd < 0) {
			fprintf(stderr, "fake qemu: console: %s\n",
				strerror(-cfd));
			_exit(1);
		}
		fake_send(cfd, "fake: booted\n");
	}
	/* FAKE_QEMU_PID: a pid file that names somebody else */
	if (getenv("FAKE_QEMU_PID"))
		snprintf(chunk, sizeof(chunk), "%s\n", getenv("FAKE_QEMU_PID"));
	else
		snprintf(chunk, sizeof(chunk), "%d\n", (int)getpid());
	write_file_atomic(pidfile, chunk, strlen(chunk));
	if (getenv("FAKE_QEMU_SLOW"))
		usleep(300000);
	lfd = socket(AF_UNIX, SOCK_STREAM, 0);
	snprintf(sa.sun_path, sizeof(sa.sun_path), "%s", qmp);
	if (bind(lfd, (struct sockaddr *)&sa, sizeof(sa)) < 0 ||
	    listen(lfd, 1) < 0)
		_exit(4);
	fd = accept(lfd, NULL, NULL);
	if (fd < 0)
		_exit(5);
	fake_send(fd, "{\"QMP\": {\"version\": {}, \"capabilities\": []}}\r\n");
	sb_init(&buf);
	for (;;) {
		ssize_t n = read(fd, chunk, sizeof(chunk));
		char *nl;

		if (n <= 0)
			_exit(0);
		sb_add(&buf, chunk, (size_t)n);
		while ((nl = memchr(buf.data, '\n', buf.len))) {
			json_object *o, *v, *id = NULL;
			const char *cmd = "";
			char *reply;

			*nl = '\0';
			o = json_tokener_parse(buf.data);
			sb_consume(&buf, (size_t)(nl - buf.data) + 1);
			if (o && json_object_object_get_ex(o, "execute", &v))
				cmd = json_object_get_string(v);
			if (o)
				json_object_object_get_ex(o, "id", &id);
			fake_record(o);
			if (!strcmp(cmd, "human-monitor-command"))
				reply = fake_hmp_reply(o, id);
			else
				reply = xasprintf("{\"return\": {}, \"id\": "
						  "%s}\r\n",
						  id ? json_object_to_json_string(id)
						     : "null");
			if (!strcmp(cmd, "quit")) {
				fake_send(fd, "{\"event\": \"SHUTDOWN\", \"data\": "
					  "{\"guest\": false, \"reason\": "
					  "\"host-qmp-quit\"}}\r\n");
				fake_send(fd, reply);
				_exit(0);
			} else if (!strcmp(cmd, "stop")) {
				fake_send(fd, "{\"event\": \"STOP\"}\r\n");
			} else if (!strcmp(cmd, "cont")) {
				fake_send(fd, "{\"event\": \"RESUME\"}\r\n");
			} else if (!strcmp(cmd, "hang")) {
				free(reply);
				json_object_put(o);
				continue;
			}
			fake_send(fd, reply);
			if (!strcmp(cmd, "system_reset"))
				fake_send(fd, "{\"event\": \"RESET\", \"data\": "
					  "{\"guest\": false, \"reason\": "
					  "\"host-qmp-system-reset\"}}\r\n");
			free(reply);
			json_object_put(o);
		}
	}
}

/* ---- the command line --------------------------------------------------- */

static void
cfg_init(struct backend_config *c, const char *name)
{
	memset(c, 0, sizeof(*c));
	c->name = name;
	c->cpus = 2;
	c->memory_mib = 384;
	c->shells = 2;
	c->shell_console = false;
}

/* The argv as one string, arguments joined by '|'. */
static char *
joined(char **v)
{
	struct strbuf sb;

	sb_init(&sb);
	for (; *v; v++) {
		sb_adds(&sb, *v);
		if (v[1])
			sb_adds(&sb, "|");
	}
	return sb_detach(&sb, NULL);
}

static void
test_argv_plain(void **state)
{
	struct backend_config c;
	const char *shells[] = { "/s/shell0.sock", "/s/shell1.sock" };
	const char *disks[] = { "/img/a.raw", "/img/b.qcow2" };
	const char *extra[] = { "-S", "-d", "guest_errors" };
	struct qemu_cmd_params p = {
		.cfg = &c,
		.qemu_bin = "qemu-system-x86_64",
		.state_dir = "/st/web",
		.console_path = "/s/console.sock",
		.shell_paths = shells,
		.n_shells = 2,
		.accel = "tcg",
		.tcg_cpu = true,
		.mac_byte = 0x0a,
	};
	struct qemu_cmd cmd;
	struct aerr err = { "" };
	char *s;

	cfg_init(&c, "web");
	c.kernel = "/k/vmlinuz";
	c.initrd = "/k/initrd.gz";
	c.append = "console=ttyS0 quiet";
	c.disks = disks;
	c.n_disks = 2;
	p.qemu_args = extra;
	p.n_qemu_args = 3;
	assert_int_equal(qemu_build_cmd(&p, &cmd, &err), 0);
	s = joined(cmd.argv);
	assert_string_equal(s,
		"qemu-system-x86_64|-name|web|-nodefaults|-no-user-config|"
		"-display|none|-vga|std|-machine|q35|-accel|tcg|-cpu|max|"
		"-global|max-x86_64-cpu.erms=off|"
		"-global|max-x86_64-cpu.la57=off|"
		"-global|max-x86_64-cpu.smap=off|"
		"-smp|2|-m|384|"
		"-kernel|/k/vmlinuz|-initrd|/k/initrd.gz|"
		"-append|console=ttyS0 quiet|"
		"-chardev|socket,id=console,path=/s/console.sock|"
		"-serial|chardev:console|"
		"-qmp|unix:/st/web/qmp.sock,server=on,wait=off|"
		"-device|virtio-serial-pci,id=vser0|"
		"-chardev|socket,id=shell0,path=/s/shell0.sock|"
		"-device|virtserialport,bus=vser0.0,chardev=shell0,"
		"name=attestfs.shell.0|"
		"-chardev|socket,id=shell1,path=/s/shell1.sock|"
		"-device|virtserialport,bus=vser0.0,chardev=shell1,"
		"name=attestfs.shell.1|"
		"-device|virtio-rng-pci|"
		"-netdev|user,id=user0,restrict=on|"
		"-device|virtio-net-pci,netdev=user0,id=nic0,guest_announce=off,"
		"mac=52:54:00:12:00:0a|"
		"-drive|file=/st/web/disk.0.qcow2,format=qcow2,if=none,"
		"id=disk.0,cache=unsafe,discard=unmap|"
		"-device|virtio-blk-pci,drive=disk.0|"
		"-drive|file=/st/web/disk.1.qcow2,format=qcow2,if=none,"
		"id=disk.1,cache=unsafe,discard=unmap|"
		"-device|virtio-blk-pci,drive=disk.1|"
		"-pidfile|/st/web/qemu.pid|-S|-d|guest_errors");
	assert_int_equal(cmd.argc, 66);
	assert_null(cmd.argv[cmd.argc]);
	assert_int_equal(cmd.n_env, 0);
	assert_null(cmd.env[0]);
	free(s);
	qemu_cmd_free(&cmd);
}

static void
test_argv_console_kvm_commas(void **state)
{
	struct backend_config c;
	const char *shells[] = { "/s,x/shell0.sock" };
	struct qemu_cmd_params p = {
		.cfg = &c,
		.qemu_bin = "/opt/qemu",
		.state_dir = "/st,1/db",
		.console_path = "/s,x/console.sock",
		.shell_paths = shells,
		.n_shells = 1,
		.accel = "kvm",
		.mac_byte = 7,
	};
	struct qemu_cmd cmd;
	struct aerr err = { "" };
	const char *disks[] = { "/img/a.raw" };
	char *s;

	cfg_init(&c, "db");
	c.cpus = 0;         /* defaults */
	c.memory_mib = 0;
	c.shell_console = true;
	c.disks = disks;
	c.n_disks = 1;
	assert_int_equal(qemu_build_cmd(&p, &cmd, &err), 0);
	s = joined(cmd.argv);
	assert_non_null(strstr(s, "|-accel|kvm|"));
	assert_null(strstr(s, "-global"));  /* KVM keeps the host's CPU */
	assert_non_null(strstr(s, "|-smp|1|-m|256|"));
	assert_null(strstr(s, "-kernel"));
	assert_null(strstr(s, "-append"));
	assert_null(strstr(s, "virtserialport"));
	assert_non_null(strstr(s, "|-chardev|socket,id=shell0,"
			       "path=/s,,x/shell0.sock|"
			       "-device|virtconsole,chardev=shell0|"));
	assert_non_null(strstr(s, "|-chardev|socket,id=console,"
			       "path=/s,,x/console.sock|"));
	assert_non_null(strstr(s, "|-qmp|unix:/st,,1/db/qmp.sock,server=on,"
			       "wait=off|"));
	assert_non_null(strstr(s, "|-drive|file=/st,,1/db/disk.0.qcow2,"));
	assert_non_null(strstr(s, "mac=52:54:00:12:00:07|"));
	assert_non_null(strstr(s, "|-pidfile|/st,1/db/qemu.pid"));
	free(s);
	qemu_cmd_free(&cmd);

	p.accel = "auto"; /* must be resolved before */
	assert_int_equal(qemu_build_cmd(&p, &cmd, &err), -EINVAL);
	p.accel = "kvm";
	p.n_shells = 0;
	assert_int_equal(qemu_build_cmd(&p, &cmd, &err), -EINVAL);
}

/* RAM in a file (shared, or a snapshot's mapped privately), and a VMM
 * started beside the running one with its own QMP socket and pid file. */
static void
test_argv_ram_file_and_tag(void **state)
{
	struct backend_config c;
	const char *shells[] = { "/s/shell0.sock" };
	struct qemu_cmd_params p = {
		.cfg = &c,
		.qemu_bin = "qemu",
		.state_dir = "/st/a",
		.console_path = "/s/console.sock",
		.shell_paths = shells,
		.n_shells = 1,
		.accel = "tcg",
		.mac_byte = 1,
		.ram_path = "/dev/shm/r,1/a.1.ram",
		.ram_shared = true,
	};
	struct qemu_cmd cmd;
	struct aerr err = { "" };
	char *s;

	(void)state;
	cfg_init(&c, "a");
	c.memory_mib = 512;
	assert_int_equal(qemu_build_cmd(&p, &cmd, &err), 0);
	s = joined(cmd.argv);
	assert_non_null(strstr(s, "|-object|memory-backend-file,id=mem,"
			       "size=512M,mem-path=/dev/shm/r,,1/a.1.ram,"
			       "share=on|-machine|q35,memory-backend=mem|"));
	assert_non_null(strstr(s, "|-m|512|"));
	assert_non_null(strstr(s, "|-qmp|unix:/st/a/qmp.sock,"));
	free(s);
	qemu_cmd_free(&cmd);

	p.ram_shared = false;
	p.vmm_tag = "spare3";
	assert_int_equal(qemu_build_cmd(&p, &cmd, &err), 0);
	s = joined(cmd.argv);
	assert_non_null(strstr(s, ",share=off|"));
	assert_non_null(strstr(s, "|-qmp|unix:/st/a/qmp.spare3.sock,"
			       "server=on,wait=off|"));
	assert_non_null(strstr(s, "|-pidfile|/st/a/qemu.spare3.pid"));
	free(s);
	qemu_cmd_free(&cmd);

	p.ram_path = NULL;
	assert_int_equal(qemu_build_cmd(&p, &cmd, &err), 0);
	s = joined(cmd.argv);
	assert_null(strstr(s, "memory-backend"));
	assert_non_null(strstr(s, "|-machine|q35|"));
	free(s);
	qemu_cmd_free(&cmd);
}

/* A console machine with a pool: hvc0 first (port 0 of the bus), then the
 * attestfs.shell.N ports machine/ bootstraps from it, in argv and in a start
 * script's QEMU_OPTS alike. */
static void
test_argv_console_and_ports(void **state)
{
	struct backend_config c;
	const char *shells[] = { "/s/shell0.sock", "/s/shell1.sock",
				 "/s/shell2.sock" };
	struct qemu_cmd_params p = {
		.cfg = &c,
		.qemu_bin = "qemu",
		.state_dir = "/st/n",
		.console_path = "/s/console.sock",
		.shell_paths = shells,
		.n_shells = 3,
		.accel = "tcg",
		.mac_byte = 2,
	};
	static const char devs[] =
		"-device|virtio-serial-pci,id=vser0|"
		"-chardev|socket,id=shell0,path=/s/shell0.sock|"
		"-device|virtconsole,chardev=shell0|"
		"-chardev|socket,id=shell1,path=/s/shell1.sock|"
		"-device|virtserialport,bus=vser0.0,chardev=shell1,"
		"name=attestfs.shell.0|"
		"-chardev|socket,id=shell2,path=/s/shell2.sock|"
		"-device|virtserialport,bus=vser0.0,chardev=shell2,"
		"name=attestfs.shell.1|"
		"-device|virtio-rng-pci|";
	struct qemu_cmd cmd;
	struct aerr err = { "" };
	char *s;

	cfg_init(&c, "n");
	c.kernel = "/k/vmlinuz";
	c.shell_console = true;
	assert_int_equal(qemu_build_cmd(&p, &cmd, &err), 0);
	s = joined(cmd.argv);
	assert_non_null(strstr(s, devs));
	assert_null(strstr(s, "attestfs.shell.2"));
	free(s);
	qemu_cmd_free(&cmd);

	c.start_command = "/bin/run-n-vm";
	assert_int_equal(qemu_build_cmd(&p, &cmd, &err), 0);
	assert_non_null(strstr(cmd.env[0],
		" -device virtio-serial-pci,id=vser0 "
		"-chardev socket,id=shell0,path=/s/shell0.sock "
		"-device virtconsole,chardev=shell0 "
		"-chardev socket,id=shell1,path=/s/shell1.sock "
		"-device virtserialport,bus=vser0.0,chardev=shell1,"
		"name=attestfs.shell.0 "
		"-chardev socket,id=shell2,path=/s/shell2.sock "
		"-device virtserialport,bus=vser0.0,chardev=shell2,"
		"name=attestfs.shell.1 -device virtio-rng-pci "));
	assert_false(cmd.opts_quoted);
	qemu_cmd_free(&cmd);
}

static void
test_argv_start_command(void **state)
{
	struct backend_config c;
	const char *shells[] = { "/s/shell0.sock" };
	const char *extra[] = { "-device", "e1000,id=it's" };
	const char *disks[] = { "/img/a.raw" };
	struct qemu_cmd_params p = {
		.cfg = &c,
		.qemu_bin = "qemu-system-x86_64",
		.state_dir = "/st/vm",
		.console_path = "/s/console.sock",
		.shell_paths = shells,
		.n_shells = 1,
		.accel = "script",
		.mac_byte = 1,
	};
	struct qemu_cmd cmd;
	struct aerr err = { "" };
	char *s;

	cfg_init(&c, "vm");
	c.start_command = "/nix/store/x/bin/run-vm-vm";
	c.shell_console = true;
	c.kernel = "/k/vmlinuz";
	c.append = "quiet";
	c.disks = disks;
	c.n_disks = 1;
	assert_int_equal(qemu_build_cmd(&p, &cmd, &err), 0);
	assert_int_equal(cmd.argc, 3);
	assert_string_equal(cmd.argv[0], "/bin/sh");
	assert_string_equal(cmd.argv[1], "-c");
	assert_string_equal(cmd.argv[2], "/nix/store/x/bin/run-vm-vm");
	assert_int_equal(cmd.n_env, 4);
	assert_string_equal(cmd.env[0],
		"QEMU_OPTS=-nodefaults -no-user-config -display none -vga std "
		"-chardev socket,id=console,path=/s/console.sock "
		"-serial chardev:console "
		"-qmp unix:/st/vm/qmp.sock,server=on,wait=off "
		"-device virtio-serial-pci,id=vser0 "
		"-chardev socket,id=shell0,path=/s/shell0.sock "
		"-device virtconsole,chardev=shell0 "
		"-device virtio-rng-pci "
		"-pidfile /st/vm/qemu.pid");
	assert_string_equal(cmd.env[1], "TMPDIR=/st/vm");
	assert_string_equal(cmd.env[2], "SHARED_DIR=/st/vm/shared");
	assert_string_equal(cmd.env[3], "USE_TMPDIR=1");
	assert_null(cmd.env[4]);
	assert_false(cmd.opts_quoted);
	qemu_cmd_free(&cmd);

	/* extra arguments; ones that need it are shell-quoted */
	p.qemu_args = extra;
	p.n_qemu_args = 2;
	p.state_dir = "/st/my vm";
	assert_int_equal(qemu_build_cmd(&p, &cmd, &err), 0);
	s = cmd.env[0];
	assert_non_null(strstr(s, " -qmp 'unix:/st/my vm/qmp.sock,server=on,"
			       "wait=off' "));
	assert_non_null(strstr(s, " -pidfile '/st/my vm/qemu.pid' -device "
			       "'e1000,id=it'\\''s'"));
	assert_null(strstr(s, "-netdev"));
	assert_null(strstr(s, "-drive"));
	assert_null(strstr(s, "-kernel"));
	assert_null(strstr(s, " -m "));
	assert_null(strstr(s, "-name"));
	assert_null(strstr(s, "-accel"));
	assert_true(cmd.opts_quoted);
	assert_string_equal(cmd.env[1], "TMPDIR=/st/my vm");
	qemu_cmd_free(&cmd);
}

static void
test_argv_vlans(void **state)
{
	struct backend_config c;
	const char *shells[] = { "/s/shell0.sock" };
	struct backend_nic nics[] = {
		{ .vlan = 1, .switch_path = "/st/vde1.ctl",
		  .mac = "52:54:00:12:01:02" },
		{ .vlan = 255, .switch_path = "/st,x/vde255.ctl",
		  .mac = "52:54:00:12:ff:02" },
	};
	struct qemu_cmd_params p = {
		.cfg = &c,
		.qemu_bin = "qemu-system-x86_64",
		.state_dir = "/st/b",
		.console_path = "/s/console.sock",
		.shell_paths = shells,
		.n_shells = 1,
		.accel = "tcg",
		.mac_byte = 2,
		.nics = nics,
		.n_nics = 2,
	};
	struct qemu_cmd cmd;
	struct aerr err = { "" };
	char *s;

	cfg_init(&c, "b");
	c.shells = 1;
	assert_int_equal(qemu_build_cmd(&p, &cmd, &err), 0);
	s = joined(cmd.argv);
	/* eth0 the restricted user-mode NIC, then one NIC per VLAN in order */
	assert_non_null(strstr(s,
		"|-netdev|user,id=user0,restrict=on|"
		"-device|virtio-net-pci,netdev=user0,id=nic0,guest_announce=off,"
		"mac=52:54:00:12:00:02|"
		"-netdev|vde,id=vlan1,sock=/st/vde1.ctl|"
		"-device|virtio-net-pci,netdev=vlan1,guest_announce=off,"
		"mac=52:54:00:12:01:02|"
		"-netdev|vde,id=vlan255,sock=/st,,x/vde255.ctl|"
		"-device|virtio-net-pci,netdev=vlan255,guest_announce=off,"
		"mac=52:54:00:12:ff:02|"
		"-pidfile|"));
	/* never QEMU's multicast socket networking */
	assert_null(strstr(s, "mcast"));
	assert_null(strstr(s, "-netdev|socket"));
	assert_int_equal(cmd.n_env, 0);
	free(s);
	qemu_cmd_free(&cmd);

	/* a start script attaches its own NICs: it gets the sockets */
	c.start_command = "run-b-vm";
	assert_int_equal(qemu_build_cmd(&p, &cmd, &err), 0);
	assert_null(strstr(cmd.env[0], "vde"));
	assert_null(strstr(cmd.env[0], "-netdev"));
	assert_int_equal(cmd.n_env, 6);
	assert_string_equal(cmd.env[4], "QEMU_VDE_SOCKET_1=/st/vde1.ctl");
	assert_string_equal(cmd.env[5], "QEMU_VDE_SOCKET_255=/st,x/vde255.ctl");
	assert_null(cmd.env[6]);
	qemu_cmd_free(&cmd);
	c.start_command = NULL;

	nics[1].vlan = 0;
	assert_int_equal(qemu_build_cmd(&p, &cmd, &err), -EINVAL);
	assert_non_null(strstr(err.msg, "VLAN NIC 1"));
	nics[1].vlan = 256;
	assert_int_equal(qemu_build_cmd(&p, &cmd, &err), -EINVAL);
	nics[1].vlan = 2;
	nics[1].switch_path = NULL;
	assert_int_equal(qemu_build_cmd(&p, &cmd, &err), -EINVAL);
}

static void
test_helpers(void **state)
{
	struct strbuf sb;
	unsigned a = qemu_name_byte("web"), b = qemu_name_byte("db");

	assert_int_equal(a, qemu_name_byte("web"));
	assert_true(a >= 1 && a <= 254);
	assert_true(b >= 1 && b <= 254);
	sb_init(&sb);
	qemu_sb_add_opt_value(&sb, "a,b,,c");
	assert_string_equal(sb.data, "a,,b,,,,c");
	sb_free(&sb);
	assert_false(qemu_sb_add_opts_word(&sb, "-device"));
	assert_true(qemu_sb_add_opts_word(&sb, ""));
	assert_true(qemu_sb_add_opts_word(&sb, "*"));
	assert_string_equal(sb.data, "-device'''*'");
	sb_free(&sb);
}

static void
test_caps(void **state)
{
	struct strbuf sb;

	sb_init(&sb);
	backend_caps_render(qemu_backend_ops.caps, &sb);
	assert_string_equal(sb.data,
			    "pause,screenshot,keys,snapshot,links,forward,qmp");
	sb_free(&sb);
	assert_ptr_equal(backend_find("qemu"), &qemu_backend_ops);
	assert_ptr_equal(backend_find("mock"), &mock_backend_ops);
	assert_ptr_equal(backend_find("firecracker"),
			 &firecracker_backend_ops);
	assert_ptr_equal(backend_find("cloud-hypervisor"),
			 &cloud_hypervisor_backend_ops);
	assert_null(backend_find(NULL));
}

/* ---- launch against the fake ------------------------------------------ */

struct rec {
	pthread_mutex_t lock;
	pthread_cond_t cond;
	struct strbuf events;
	struct strbuf logs;
	int exited;
	int status;
};

static struct rec rec = {
	.lock = PTHREAD_MUTEX_INITIALIZER,
	.cond = PTHREAD_COND_INITIALIZER,
};

/* Plays machine/'s lock: its callbacks take it, and it may call pause()
 * while holding it. */
static pthread_mutex_t owner_lock = PTHREAD_MUTEX_INITIALIZER;

static void
on_exited(void *owner, int status)
{
	pthread_mutex_lock(&owner_lock);
	pthread_mutex_unlock(&owner_lock);
	pthread_mutex_lock(&rec.lock);
	rec.exited++;
	rec.status = status;
	sb_adds(&rec.events, "exited\n");
	pthread_cond_broadcast(&rec.cond);
	pthread_mutex_unlock(&rec.lock);
}

static void
on_vm_event(void *owner, const char *name, const char *detail)
{
	pthread_mutex_lock(&owner_lock);
	pthread_mutex_unlock(&owner_lock);
	pthread_mutex_lock(&rec.lock);
	sb_addf(&rec.events, "%s %s\n", name, detail);
	pthread_cond_broadcast(&rec.cond);
	pthread_mutex_unlock(&rec.lock);
}

static void
on_log(void *owner, const char *text)
{
	pthread_mutex_lock(&rec.lock);
	sb_addf(&rec.logs, "%s\n", text);
	pthread_mutex_unlock(&rec.lock);
}

static const struct backend_events events = {
	.exited = on_exited,
	.vm_event = on_vm_event,
	.log = on_log,
};

/* Wait until the events text contains s. */
static bool
rec_wait_for(const char *s, int ms)
{
	int64_t end = now_mono_ms() + ms;
	bool ok;

	pthread_mutex_lock(&rec.lock);
	while (!(ok = rec.events.data && strstr(rec.events.data, s)) &&
	       now_mono_ms() < end) {
		pthread_mutex_unlock(&rec.lock);
		usleep(5000);
		pthread_mutex_lock(&rec.lock);
	}
	pthread_mutex_unlock(&rec.lock);
	return ok;
}

struct fx {
	char dir[64];
	char *state;
	char *console;
	char *shell;
	int console_lfd;
	int shell_lfd;
	struct backend_launch l;
	const char *shells[1];
	char *self;
	pid_t other;            /* a process of the test's, not the fake's */
};

static int
listen_at(const char *path)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);

	snprintf(sa.sun_path, sizeof(sa.sun_path), "%s", path);
	assert_int_equal(bind(fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
	assert_int_equal(listen(fd, 4), 0);
	return fd;
}

static int
fx_setup(void **state)
{
	struct fx *f = xcalloc(1, sizeof(*f));

	snprintf(f->dir, sizeof(f->dir), "/tmp/attestfs-qemu-XXXXXX");
	assert_non_null(mkdtemp(f->dir));
	f->state = xasprintf("%s/state", f->dir);
	f->console = xasprintf("%s/console.sock", f->dir);
	f->shell = xasprintf("%s/shell0.sock", f->dir);
	f->console_lfd = listen_at(f->console);
	f->shell_lfd = listen_at(f->shell);
	f->shells[0] = f->shell;
	f->self = realpath("/proc/self/exe", NULL);
	cfg_init(&f->l.cfg, "fake");
	f->l.cfg.shells = 1;
	f->l.state_dir = f->state;
	f->l.console_path = f->console;
	f->l.shell_paths = f->shells;
	f->l.n_shells = 1;
	f->l.accel = "tcg";
	f->l.events = &events;
	f->l.owner = f;
	setenv("ATTESTFS_QEMU", f->self, 1);
	setenv("FAKE_QEMU_MODE", "1", 1);
	pthread_mutex_lock(&rec.lock);
	sb_free(&rec.events);
	sb_free(&rec.logs);
	rec.exited = 0;
	rec.status = -1;
	pthread_mutex_unlock(&rec.lock);
	*state = f;
	return 0;
}

static int
fx_teardown(void **state)
{
	struct fx *f = *state;

	unsetenv("ATTESTFS_QEMU");
	unsetenv("FAKE_QEMU_MODE");
	unsetenv("FAKE_QEMU_FAIL");
	unsetenv("FAKE_QEMU_PID");
	if (f->other > 0) {
		kill(f->other, SIGKILL);
		waitpid(f->other, NULL, 0);
	}
	close(f->console_lfd);
	close(f->shell_lfd);
	remove_tree(f->dir);
	free(f->state);
	free(f->console);
	free(f->shell);
	free(f->self);
	free(f);
	return 0;
}

static void
test_launch_pause_quit(void **state)
{
	struct fx *f = *state;
	struct backend *b = NULL;
	struct aerr err = { "" };
	struct strbuf info;
	char *reply = NULL, *want, buf[64];
	ssize_t n;
	int cfd;

	assert_int_equal(qemu_backend_ops.launch(&f->l, &b, &err), 0);
	assert_non_null(b);
	/* the fake connected to the console we listen on */
	cfd = accept(f->console_lfd, NULL, NULL);
	assert_true(cfd >= 0);
	n = read(cfd, buf, sizeof(buf) - 1);
	assert_true(n > 0);
	buf[n] = '\0';
	assert_string_equal(buf, "fake: booted\n");

	sb_init(&info);
	qemu_backend_ops.info(b, &info);
	want = xasprintf("accel tcg\npid %d\nqmp %s/qmp.sock\n",
			 (int)qemu_backend_ops.pid(b), f->state);
	assert_string_equal(info.data, want);
	assert_true(qemu_backend_ops.pid(b) > 0);
	assert_int_equal(kill(qemu_backend_ops.pid(b), 0), 0);
	free(want);
	sb_free(&info);

	/* STOP comes before the reply, and its callback waits for the lock
	 * held around pause(): the reply must still get through (else pause
	 * fails with ETIMEDOUT after QEMU_OP_TIMEOUT_MS). */
	pthread_mutex_lock(&owner_lock);
	assert_int_equal(qemu_backend_ops.pause(b), 0);
	pthread_mutex_unlock(&owner_lock);
	assert_true(rec_wait_for("STOP \n", WAIT_MS));
	assert_int_equal(qemu_backend_ops.resume(b), 0);
	assert_true(rec_wait_for("RESUME \n", WAIT_MS));
	/* An event QEMU sends after the reply still reaches the owner. */
	assert_int_equal(qemu_backend_ops.command(b, "{\"execute\": "
						  "\"system_reset\"}", &reply,
						  &err), 0);
	free(reply);
	assert_true(rec_wait_for("RESET {\"guest\":false,"
				 "\"reason\":\"host-qmp-system-reset\"}\n",
				 WAIT_MS));
	assert_int_equal(qemu_backend_ops.command(b, "{\"execute\": "
						  "\"query-status\", \"id\": "
						  "\"u1\"}", &reply, &err), 0);
	assert_string_equal(reply, "{\"return\":{},\"id\":\"u1\"}");
	free(reply);
	assert_int_equal(qemu_backend_ops.command(b, "nonsense", &reply,
						  &err), -EINVAL);

	assert_int_equal(qemu_backend_ops.quit(b), 0);
	assert_true(rec_wait_for("exited\n", WAIT_MS));
	pthread_mutex_lock(&rec.lock);
	/* QEMU's last event comes before exited */
	assert_non_null(strstr(rec.events.data,
			       "SHUTDOWN {\"guest\":false,"
			       "\"reason\":\"host-qmp-quit\"}\nexited\n"));
	assert_int_equal(rec.exited, 1);
	assert_true(WIFEXITED(rec.status));
	assert_int_equal(WEXITSTATUS(rec.status), 0);
	pthread_mutex_unlock(&rec.lock);

	/* calls on a dead machine fail cleanly */
	assert_int_equal(qemu_backend_ops.quit(b), 0);
	assert_int_equal(qemu_backend_ops.pause(b), -EIO);
	assert_int_equal(qemu_backend_ops.kill(b), 0);
	qemu_backend_ops.destroy(b);
	pthread_mutex_lock(&rec.lock);
	assert_int_equal(rec.exited, 1);
	pthread_mutex_unlock(&rec.lock);
	close(cfd);
}

static void
test_launch_kill(void **state)
{
	struct fx *f = *state;
	struct backend *b = NULL;
	struct aerr err = { "" };
	pid_t pid;

	f->l.cfg.shell_console = true;
	assert_int_equal(qemu_backend_ops.launch(&f->l, &b, &err), 0);
	pid = qemu_backend_ops.pid(b);
	assert_int_equal(qemu_backend_ops.kill(b), 0);
	assert_true(rec_wait_for("exited\n", WAIT_MS));
	pthread_mutex_lock(&rec.lock);
	assert_true(WIFSIGNALED(rec.status));
	assert_int_equal(WTERMSIG(rec.status), SIGKILL);
	pthread_mutex_unlock(&rec.lock);
	assert_int_equal(kill(pid, 0), -1); /* reaped */
	qemu_backend_ops.destroy(b);
}

static void
test_launch_destroy_running(void **state)
{
	struct fx *f = *state;
	struct backend *b = NULL;
	struct aerr err = { "" };
	pid_t pid;

	assert_int_equal(qemu_backend_ops.launch(&f->l, &b, &err), 0);
	pid = qemu_backend_ops.pid(b);
	qemu_backend_ops.destroy(b);
	assert_int_equal(kill(pid, 0), -1);
	usleep(50000);
	pthread_mutex_lock(&rec.lock);
	assert_int_equal(rec.exited, 0); /* no callbacks from destroy */
	assert_null(rec.events.data);
	pthread_mutex_unlock(&rec.lock);
}

static void
test_launch_fails_with_log_tail(void **state)
{
	struct fx *f = *state;
	struct backend *b = NULL;
	struct aerr err = { "" };

	setenv("FAKE_QEMU_FAIL", "1", 1);
	assert_int_equal(qemu_backend_ops.launch(&f->l, &b, &err), -EIO);
	assert_null(b);
	print_message("launch: %s\n", err.msg);
	assert_non_null(strstr(err.msg, "QEMU exited before QMP answered "
			       "(exit status 1)"));
	assert_non_null(strstr(err.msg, "-bogus: invalid option"));
	pthread_mutex_lock(&rec.lock);
	assert_int_equal(rec.exited, 0);
	pthread_mutex_unlock(&rec.lock);

	/* a second failure reports only its own part of qemu.log */
	f->l.accel = "warp";
	assert_int_equal(qemu_backend_ops.launch(&f->l, &b, &err), -EINVAL);
	assert_non_null(strstr(err.msg, "warp"));
	f->l.accel = "tcg";
	assert_int_equal(qemu_backend_ops.launch(&f->l, &b, &err), -EIO);
	assert_null(strstr(strstr(err.msg, "invalid option") + 1,
			   "invalid option"));
}

static void
test_launch_start_command(void **state)
{
	struct fx *f = *state;
	struct backend *b = NULL;
	struct aerr err = { "" };
	struct strbuf info;
	char *shared;
	struct stat st;

	setenv("FAKE_QEMU_SLOW", "1", 1);
	/* like NixOS's run-*-vm: $QEMU_OPTS expanded unquoted; told tcg, the
	 * script's -cpu max is tuned for TCG too */
	f->l.cfg.start_command = "test \"$USE_TMPDIR\" = 1 && "
			       "test \"$TMPDIR\" = \"$PWD\" && "
			       "case \"$QEMU_OPTS\" in *' -global "
			       "max-x86_64-cpu.erms=off '*) ;; *) exit 3;; "
			       "esac && "
			       "exec \"$ATTESTFS_QEMU\" -name x $QEMU_OPTS";
	assert_int_equal(qemu_backend_ops.launch(&f->l, &b, &err), 0);
	sb_init(&info);
	qemu_backend_ops.info(b, &info);
	assert_non_null(strstr(info.data, "accel script\n"));
	sb_free(&info);
	shared = xasprintf("%s/shared", f->state);
	assert_int_equal(stat(shared, &st), 0);
	assert_true(S_ISDIR(st.st_mode));
	free(shared);
	assert_int_equal(qemu_backend_ops.quit(b), 0);
	assert_true(rec_wait_for("exited\n", WAIT_MS));
	qemu_backend_ops.destroy(b);
	unsetenv("FAKE_QEMU_SLOW");
	f->l.cfg.start_command = NULL;
}

/* A start script picks its own accelerator: attestfs tunes its -cpu max
 * for TCG only when it knows the script runs TCG. */
static void
test_script_runs_tcg(void **state)
{
	bool no_kvm = access("/dev/kvm", R_OK | W_OK) != 0;

	(void)state;
	assert_true(accel_script_runs_tcg("tcg"));
	assert_false(accel_script_runs_tcg("kvm"));
	assert_int_equal(accel_script_runs_tcg("auto"), no_kvm);
	assert_int_equal(accel_script_runs_tcg(NULL), no_kvm);
	assert_int_equal(accel_script_runs_tcg(""), no_kvm);
}

static void
test_launch_disks(void **state)
{
	struct fx *f = *state;
	struct backend *b = NULL;
	struct aerr err = { "" };
	char *base = xasprintf("%s/base.raw", f->dir);
	char *missing = xasprintf("%s/missing.raw", f->dir);
	const char *disks[] = { base };
	char *overlay = xasprintf("%s/disk.0.qcow2", f->state);
	struct strbuf out, errout;
	int fd, st;

	if (access("/usr/bin/qemu-img", X_OK) != 0 &&
	    access("/usr/local/bin/qemu-img", X_OK) != 0) {
		print_message("SKIP: no qemu-img\n");
		goto out;
	}
	fd = open(base, O_WRONLY | O_CREAT, 0644);
	assert_true(fd >= 0);
	assert_int_equal(ftruncate(fd, 1 << 20), 0);
	close(fd);
	f->l.cfg.disks = disks;
	f->l.cfg.n_disks = 1;
	assert_int_equal(qemu_backend_ops.launch(&f->l, &b, &err), 0);
	{
		char *argv[] = { "qemu-img", "info", "-U", "--output=json",
				 overlay, NULL };

		sb_init(&out);
		sb_init(&errout);
		st = proc_run_capture(argv, 10000, &out, &errout);
		assert_int_equal(st, 0);
		assert_non_null(strstr(out.data, "\"backing-filename-format\": "
				       "\"raw\""));
		assert_non_null(strstr(out.data, base));
		sb_free(&out);
		sb_free(&errout);
	}
	qemu_backend_ops.destroy(b);

	disks[0] = missing;
	assert_int_equal(qemu_backend_ops.launch(&f->l, &b, &err), -ENOENT);
	assert_non_null(strstr(err.msg, "missing.raw"));
	f->l.cfg.disks = NULL;
	f->l.cfg.n_disks = 0;
out:
	free(base);
	free(missing);
	free(overlay);
}

/* The fake's command line, NUL-separated arguments joined by '|'. */
static char *
proc_cmdline(pid_t pid)
{
	char *path = xasprintf("/proc/%d/cmdline", (int)pid), *text = NULL;
	size_t len = 0, i;

	assert_int_equal(read_file(path, &text, &len), 0);
	for (i = 0; i + 1 < len; i++)
		if (!text[i])
			text[i] = '|';
	free(path);
	return text;
}

static void
test_launch_links_forward(void **state)
{
	struct fx *f = *state;
	struct backend *b = NULL;
	struct aerr err = { "" };
	struct backend_nic nics[] = {
		{ .vlan = 1, .switch_path = "/nonexistent/vde1.ctl",
		  .mac = "52:54:00:12:01:03" },
		{ .vlan = 2, .switch_path = "/nonexistent/vde2.ctl",
		  .mac = "52:54:00:12:02:03" },
	};
	char *record = xasprintf("%s/record", f->dir), *text = NULL, *cl;
	size_t len;

	setenv("FAKE_QEMU_RECORD", record, 1);
	f->l.node = 3;
	f->l.nics = nics;
	f->l.n_nics = 2;
	assert_int_equal(qemu_backend_ops.launch(&f->l, &b, &err), 0);
	/* the user-mode NIC's MAC ends in the node number */
	cl = proc_cmdline(qemu_backend_ops.pid(b));
	assert_non_null(strstr(cl, "netdev=user0,id=nic0,guest_announce=off,"
			       "mac=52:54:00:12:00:03|-netdev|vde,id=vlan1,"));
	free(cl);

	assert_int_equal(qemu_backend_ops.set_links(b, 0, &err), 0);
	assert_int_equal(qemu_backend_ops.set_links(b, 1, &err), 0);
	assert_int_equal(qemu_backend_ops.forward(b, 8080, 80, &err), 0);
	assert_int_equal(qemu_backend_ops.forward(b, 1, 80, &err),
			 -EADDRINUSE);
	assert_non_null(strstr(err.msg, "hostfwd_add user0 "
			       "tcp:127.0.0.1:1-:80: Could not set up host "
			       "forwarding rule"));
	assert_null(strstr(err.msg, "\r"));
	assert_int_equal(read_file(record, &text, &len), 0);
	assert_non_null(strstr(text,
		"{\"execute\":\"set_link\",\"arguments\":{\"name\":\"vlan1\","
		"\"up\":false},"));
	assert_non_null(strstr(text,
		"{\"execute\":\"set_link\",\"arguments\":{\"name\":\"vlan2\","
		"\"up\":false},"));
	assert_non_null(strstr(text,
		"{\"execute\":\"set_link\",\"arguments\":{\"name\":\"vlan2\","
		"\"up\":true},"));
	assert_non_null(strstr(text, "{\"execute\":\"human-monitor-command\","
			       "\"arguments\":{\"command-line\":\"hostfwd_add "
			       "user0 tcp:127.0.0.1:8080-:80\"},"));
	free(text);
	qemu_backend_ops.destroy(b);

	/* gone: calls fail cleanly */
	f->l.n_nics = 0;
	assert_int_equal(qemu_backend_ops.launch(&f->l, &b, &err), 0);
	assert_int_equal(qemu_backend_ops.set_links(b, 0, &err), 0);
	assert_int_equal(qemu_backend_ops.quit(b), 0);
	assert_true(rec_wait_for("exited\n", WAIT_MS));
	assert_int_equal(qemu_backend_ops.forward(b, 8080, 80, &err), -EIO);
	assert_non_null(strstr(err.msg, "QEMU is not running"));
	qemu_backend_ops.destroy(b);
	unsetenv("FAKE_QEMU_RECORD");
	f->l.nics = NULL;
	f->l.node = 0;
	free(record);
}

static void
test_accel_auto_without_kernel(void **state)
{
	struct fx *f = *state;
	struct backend *b = NULL;
	struct aerr err = { "" };
	struct strbuf info;

	f->l.accel = "auto";
	assert_int_equal(qemu_backend_ops.launch(&f->l, &b, &err), 0);
	sb_init(&info);
	qemu_backend_ops.info(b, &info);
	assert_non_null(strstr(info.data, "accel tcg\n"));
	sb_free(&info);
	pthread_mutex_lock(&rec.lock);
	assert_non_null(rec.logs.data);
	assert_non_null(strstr(rec.logs.data, "accel auto: "));
	assert_non_null(strstr(rec.logs.data, "using tcg"));
	pthread_mutex_unlock(&rec.lock);
	qemu_backend_ops.destroy(b);
	f->l.accel = "tcg";
}

/* The pid file's pid: signalled only while it is a process of the VMM. */
static void
test_pidfile_pid_checked_before_kill(void **state)
{
	struct fx *f = *state;
	struct backend *b = NULL;
	struct aerr err = { "" };
	char num[16];
	pid_t other;
	int st;

	/* Not in the fake's session: like a pid reused by someone else. */
	other = fork();
	if (other == 0) {
		pause();
		_exit(0);
	}
	assert_true(other > 0);
	f->other = other;
	assert_true(qemu_pid_is_ours(other, getpid()));
	assert_false(qemu_pid_is_ours(getpid(), other));
	assert_false(qemu_pid_is_ours(1, getpid()));
	assert_false(qemu_pid_is_ours(0, getpid()));
	snprintf(num, sizeof(num), "%d", (int)other);
	setenv("FAKE_QEMU_PID", num, 1);
	assert_int_equal(qemu_backend_ops.launch(&f->l, &b, &err), 0);
	assert_int_not_equal(qemu_backend_ops.pid(b), other);
	assert_int_equal(qemu_backend_ops.kill(b), 0);
	assert_true(rec_wait_for("exited\n", WAIT_MS));
	qemu_backend_ops.destroy(b);
	assert_int_equal(waitpid(other, &st, WNOHANG), 0);  /* alive */
	pthread_mutex_lock(&rec.lock);
	assert_non_null(strstr(rec.logs.data, "not a process of this VMM"));
	pthread_mutex_unlock(&rec.lock);
	unsetenv("FAKE_QEMU_PID");
}

/* A start script that forks QEMU (no exec): its pid file is believed. */
static void
test_pidfile_pid_of_a_script_child_is_adopted(void **state)
{
	struct fx *f = *state;
	struct backend *b = NULL;
	struct aerr err = { "" };
	char *pidfile, *text = NULL;
	size_t len;
	pid_t pid;

	f->l.cfg.start_command = "\"$ATTESTFS_QEMU\" -name x $QEMU_OPTS; :";
	assert_int_equal(qemu_backend_ops.launch(&f->l, &b, &err), 0);
	pidfile = xasprintf("%s/qemu.pid", f->state);
	assert_int_equal(read_file(pidfile, &text, &len), 0);
	pid = qemu_backend_ops.pid(b);
	assert_int_equal(pid, atoi(text));
	assert_int_equal(qemu_backend_ops.kill(b), 0);
	assert_true(rec_wait_for("exited\n", WAIT_MS));
	qemu_backend_ops.destroy(b);
	free(text);
	free(pidfile);
	f->l.cfg.start_command = NULL;
}

int
main(int argc, char **argv)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_argv_plain),
		cmocka_unit_test(test_argv_console_kvm_commas),
		cmocka_unit_test(test_argv_ram_file_and_tag),
		cmocka_unit_test(test_argv_console_and_ports),
		cmocka_unit_test(test_argv_start_command),
		cmocka_unit_test(test_argv_vlans),
		cmocka_unit_test(test_helpers),
		cmocka_unit_test(test_caps),
		cmocka_unit_test_setup_teardown(test_launch_pause_quit,
						fx_setup, fx_teardown),
		cmocka_unit_test_setup_teardown(test_launch_kill,
						fx_setup, fx_teardown),
		cmocka_unit_test_setup_teardown(test_launch_destroy_running,
						fx_setup, fx_teardown),
		cmocka_unit_test_setup_teardown(test_launch_fails_with_log_tail,
						fx_setup, fx_teardown),
		cmocka_unit_test_setup_teardown(
			test_pidfile_pid_checked_before_kill, fx_setup,
			fx_teardown),
		cmocka_unit_test_setup_teardown(
			test_pidfile_pid_of_a_script_child_is_adopted, fx_setup,
			fx_teardown),
		cmocka_unit_test(test_script_runs_tcg),
		cmocka_unit_test_setup_teardown(test_launch_start_command,
						fx_setup, fx_teardown),
		cmocka_unit_test_setup_teardown(test_launch_disks,
						fx_setup, fx_teardown),
		cmocka_unit_test_setup_teardown(test_launch_links_forward,
						fx_setup, fx_teardown),
		cmocka_unit_test_setup_teardown(test_accel_auto_without_kernel,
						fx_setup, fx_teardown),
	};

	if (getenv("FAKE_QEMU_MODE"))
		return fake_qemu_main(argc, argv);
	signal(SIGPIPE, SIG_IGN);
	return cmocka_run_group_tests(tests, NULL, NULL);
}
