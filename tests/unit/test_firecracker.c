/*
 * The Firecracker backend without Firecracker: its config checks, its
 * command line, and the requests it sends, in order, to an in-test HTTP
 * server (tests/unit/httpd.h). The lifecycle tests run a shell script as
 * the binary: it records its arguments and directory, links the API socket
 * path to the test's server, says a line on the console and sleeps.
 */
#include <errno.h>
#include <pthread.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>
#include <json-c/json.h>

#include "backends/firecracker.h"
#include "tests/unit/httpd.h"

static const char fake_fc[] =
	"#!/bin/sh\n"
	"pwd >\"$FAKEFC_DIR/cwd\"\n"
	"printf '%s\\n' \"$@\" >\"$FAKEFC_DIR/args\"\n"
	"[ -z \"$FAKEFC_FAIL\" ] || { echo \"$FAKEFC_FAIL\" >&2; exit 3; }\n"
	"ln -s \"$FAKEFC_DIR/srv.sock\" \"$2\"\n"
	"echo 'fake firecracker: booted'\n"
	"exec sleep 600\n";

struct ffix {
	char dir[64];
	char *path[16];
	struct httpd h;
	struct backend_config cfg;
	const char *disks[2];
	json_object *own;
	/* what the callbacks saw */
	pthread_mutex_t lock;
	pthread_cond_t cond;
	int exits;
	int status;
	struct backend *b;
};

enum { P_SRV, P_BIN, P_KERNEL, P_INITRD, P_DISK, P_CONSOLE, P_STATE, P_SNAP,
       P_N };

static char *
fpath(struct ffix *f, const char *name)
{
	return xasprintf("%s/%s", f->dir, name);
}

static void
put_file(const char *path, const void *data, size_t len, int mode)
{
	FILE *fp = fopen(path, "w");

	assert_non_null(fp);
	assert_int_equal(fwrite(data, 1, len, fp), len);
	fclose(fp);
	chmod(path, mode);
}

static int
setup(void **state)
{
	static const char *const names[P_N] = {
		"srv.sock", "fakefc", "vmlinux", "initrd", "base.img",
		"console.sock", "state", "snap",
	};
	struct ffix *f = calloc(1, sizeof(*f));
	unsigned char elf[64] = { 0x7f, 'E', 'L', 'F' };
	size_t i;

	snprintf(f->dir, sizeof(f->dir), "/tmp/attestfs-fc.XXXXXX");
	if (!mkdtemp(f->dir))
		return -1;
	for (i = 0; i < P_N; i++)
		f->path[i] = fpath(f, names[i]);
	put_file(f->path[P_BIN], fake_fc, strlen(fake_fc), 0700);
	put_file(f->path[P_KERNEL], elf, sizeof(elf), 0600);
	put_file(f->path[P_INITRD], "initrd", 6, 0600);
	put_file(f->path[P_DISK], "a raw disk", 10, 0600);
	mkdir(f->path[P_STATE], 0700);
	mkdir(f->path[P_SNAP], 0700);
	setenv("FAKEFC_DIR", f->dir, 1);
	unsetenv("FAKEFC_FAIL");
	unsetenv("FC_BINARY");
	if (httpd_start(&f->h, f->path[P_SRV]) < 0)
		return -1;
	f->disks[0] = f->path[P_DISK];
	f->cfg.name = "vm_1";
	f->cfg.cpus = 2;
	f->cfg.memory_mib = 256;
	f->cfg.kernel = f->path[P_KERNEL];
	f->cfg.initrd = f->path[P_INITRD];
	f->cfg.append = "quiet";
	f->cfg.disks = f->disks;
	f->cfg.n_disks = 1;
	f->cfg.shells = 1;
	pthread_mutex_init(&f->lock, NULL);
	pthread_cond_init(&f->cond, NULL);
	*state = f;
	return 0;
}

static int
teardown(void **state)
{
	struct ffix *f = *state;
	size_t i;

	httpd_stop(&f->h);
	json_object_put(f->own);
	for (i = 0; i < P_N; i++)
		free(f->path[i]);
	remove_tree(f->dir);
	pthread_mutex_destroy(&f->lock);
	pthread_cond_destroy(&f->cond);
	free(f);
	return 0;
}

/* ---- config ------------------------------------------------------------ */

/* check_config of a machine object; 0 or -EINVAL with the message. */
static int
check(struct ffix *f, const char *json, struct aerr *err)
{
	json_object *obj = json_tokener_parse(json);
	struct backend_check c = {
		.obj = obj, .cfg = &f->cfg, .where = "m.json: machines.a",
		.err = err,
	};
	int ret;

	assert_non_null(obj);
	json_object_put(f->own);
	f->own = c.own = json_object_new_object();
	err->msg[0] = 0;
	ret = fc_check_config(&c);
	json_object_put(obj);
	return ret;
}

static void
test_config_keys(void **state)
{
	struct ffix *f = *state;
	struct aerr err;
	struct fc_keys k;
	char *json = xasprintf("{\"firecracker\": {\"binary\": \"%s\", "
			       "\"log_level\": \"debug\"}}", f->path[P_BIN]);

	assert_int_equal(check(f, json, &err), 0);
	free(json);
	f->cfg.own = f->own;
	fc_keys_get(&f->cfg, &k);
	assert_string_equal(k.binary, f->path[P_BIN]);
	assert_string_equal(k.log_level, "debug");
	assert_int_equal(k.api_timeout_ms, FC_DEFAULT_TIMEOUT_MS);

	/* Without the key: $FC_BINARY. */
	setenv("FC_BINARY", f->path[P_BIN], 1);
	assert_int_equal(check(f, "{}", &err), 0);
	f->cfg.own = f->own;
	fc_keys_get(&f->cfg, &k);
	assert_string_equal(k.binary, f->path[P_BIN]);
	assert_string_equal(k.log_level, "Warning");

	assert_int_equal(check(f, "{\"firecracker\": {\"bogus\": 1}}", &err),
			 -EINVAL);
	assert_string_equal(err.msg, "m.json: machines.a.firecracker.bogus: "
			    "unknown key (known: binary, log_level, "
			    "api_timeout_ms)");
	assert_int_equal(check(f, "{\"firecracker\": {\"log_level\": "
			       "\"loud\"}}", &err), -EINVAL);
	assert_string_equal(err.msg, "m.json: machines.a.firecracker.log_level: "
			    "expected one of Error, Warning, Info, Debug, "
			    "Trace, Off");
	assert_int_equal(check(f, "{\"firecracker\": {\"api_timeout_ms\": "
			       "5}}", &err), -EINVAL);
	assert_non_null(strstr(err.msg, "firecracker.api_timeout_ms: expected "
			       "an integer"));
	assert_int_equal(check(f, "{\"firecracker\": \"fc\"}", &err), -EINVAL);
	assert_string_equal(err.msg, "m.json: machines.a.firecracker: "
			    "expected an object, got string");
	assert_int_equal(check(f, "{\"firecracker\": {\"binary\": "
			       "\"/nonexistent/fc\"}}", &err), -EINVAL);
	assert_string_equal(err.msg, "m.json: machines.a.firecracker.binary: "
			    "/nonexistent/fc: No such file or directory");
	assert_int_equal(check(f, "{\"firecracker\": {\"binary\": "
			       "\"no-such-firecracker\"}}", &err), -EINVAL);
	assert_non_null(strstr(err.msg, "no-such-firecracker is not in PATH"));
	unsetenv("FC_BINARY");
}

static void
test_config_generic(void **state)
{
	struct ffix *f = *state;
	unsigned char bz[0x300] = { 0 };
	char *bzimage = fpath(f, "bzImage"), *qcow = fpath(f, "d.qcow2");
	struct aerr err;

	setenv("FC_BINARY", f->path[P_BIN], 1);
	f->cfg.shell_console = true;
	assert_int_equal(check(f, "{}", &err), -EINVAL);
	assert_non_null(strstr(err.msg, "machines.a.shell_channel: "));
	f->cfg.shell_console = false;
	f->cfg.start_command = "/bin/true";
	assert_int_equal(check(f, "{}", &err), -EINVAL);
	assert_non_null(strstr(err.msg, "machines.a.start_command: "));
	f->cfg.start_command = NULL;

	memcpy(bz + 0x202, "HdrS", 4);
	put_file(bzimage, bz, sizeof(bz), 0600);
	f->cfg.kernel = bzimage;
	assert_int_equal(check(f, "{}", &err), -EINVAL);
	assert_non_null(strstr(err.msg, "machines.a.kernel: "));
	assert_non_null(strstr(err.msg, "is a bzImage; Firecracker boots an "
			       "uncompressed ELF vmlinux"));
	f->cfg.kernel = NULL;
	assert_int_equal(check(f, "{}", &err), -EINVAL);
	assert_string_equal(err.msg, "m.json: machines.a: a firecracker "
			    "machine needs \"kernel\" (an uncompressed ELF "
			    "vmlinux)");
	f->cfg.kernel = f->path[P_KERNEL];

	put_file(qcow, "QFI\xfb\0\0\0\3", 8, 0600);
	f->disks[0] = qcow;
	assert_int_equal(check(f, "{}", &err), -EINVAL);
	assert_non_null(strstr(err.msg, "machines.a.disks[0]: "));
	assert_non_null(strstr(err.msg, "is a qcow2 image; Firecracker takes "
			       "raw images only"));
	f->disks[0] = f->path[P_DISK];
	assert_int_equal(check(f, "{}", &err), 0);
	unsetenv("FC_BINARY");
	free(bzimage);
	free(qcow);
}

static void
test_argv(void **state)
{
	struct fc_keys k = { "firecracker", "Info", 1000 };
	char **argv = fc_argv(&k, "/s/firecracker.sock", "web_1.a", "/s/l");
	const char *want[] = { "firecracker", "--api-sock", "/s/firecracker.sock",
			       "--id", "web-1-a", "--level", "Info",
			       "--log-path", "/s/l", NULL };
	size_t i;

	(void)state;
	for (i = 0; want[i]; i++)
		assert_string_equal(argv[i], want[i]);
	assert_null(argv[i]);
	fc_argv_free(argv);
}

/* ---- requests ---------------------------------------------------------- */

static void
assert_req(struct ffix *f, size_t i, const char *method, const char *path,
	   const char *body)
{
	const struct httpd_req *r;

	assert_true(f->h.n_reqs > i);
	r = &f->h.reqs[i];
	assert_string_equal(r->method, method);
	assert_string_equal(r->path, path);
	if (body)
		assert_string_equal(r->body, body);
	else
		assert_int_equal(r->body_len, 0);
}

static struct rest_client *
client(struct ffix *f)
{
	struct rest_client *c;
	struct aerr err;

	assert_int_equal(rest_open(f->path[P_SRV], "http://localhost", 5000,
				   &c, &err), 0);
	return c;
}

static void
test_boot_requests(void **state)
{
	struct ffix *f = *state;
	struct rest_client *c = client(f);
	struct aerr err = { "" };
	char *bs;

	f->disks[1] = f->path[P_DISK];
	f->cfg.n_disks = 2;
	assert_int_equal(fc_api_boot(c, &f->cfg, NULL, 0, &err), 0);
	assert_int_equal(f->h.n_reqs, 6);
	assert_req(f, 0, "PUT", "/machine-config",
		   "{\"vcpu_count\":2,\"mem_size_mib\":256}");
	bs = xasprintf("{\"kernel_image_path\":\"%s\",\"boot_args\":\"console="
		       "ttyS0 reboot=k panic=1 quiet\",\"initrd_path\":\"%s\"}",
		       f->path[P_KERNEL], f->path[P_INITRD]);
	assert_req(f, 1, "PUT", "/boot-source", bs);
	free(bs);
	assert_req(f, 2, "PUT", "/drives/disk0",
		   "{\"drive_id\":\"disk0\",\"path_on_host\":\"disk.0\","
		   "\"is_root_device\":false,\"is_read_only\":false}");
	assert_req(f, 3, "PUT", "/drives/disk1",
		   "{\"drive_id\":\"disk1\",\"path_on_host\":\"disk.1\","
		   "\"is_root_device\":false,\"is_read_only\":false}");
	assert_req(f, 4, "PUT", "/vsock",
		   "{\"guest_cid\":3,\"uds_path\":\"v.sock\"}");
	assert_req(f, 5, "PUT", "/actions",
		   "{\"action_type\":\"InstanceStart\"}");
	rest_close(c);
}

static void
test_nic_requests(void **state)
{
	struct ffix *f = *state;
	struct rest_client *c = client(f);
	struct backend_nic nics[2] = {
		{ .vlan = 1, .mac = "52:54:00:12:01:02", .tap = "at2-1" },
		{ .vlan = 7, .mac = "52:54:00:12:07:02", .tap = "at2-7" },
	};
	struct aerr err = { "" };

	f->cfg.n_disks = 0;
	assert_int_equal(fc_api_boot(c, &f->cfg, nics, 2, &err), 0);
	assert_int_equal(f->h.n_reqs, 6);
	assert_req(f, 2, "PUT", "/network-interfaces/eth0",
		   "{\"iface_id\":\"eth0\",\"host_dev_name\":\"at2-1\","
		   "\"guest_mac\":\"52:54:00:12:01:02\"}");
	assert_req(f, 3, "PUT", "/network-interfaces/eth1",
		   "{\"iface_id\":\"eth1\",\"host_dev_name\":\"at2-7\","
		   "\"guest_mac\":\"52:54:00:12:07:02\"}");
	assert_req(f, 4, "PUT", "/vsock", f->h.reqs[4].body);
	/* a restore (a clone's TAPs are its own): network_overrides */
	assert_int_equal(fc_api_load(c, "/s/state", "/s/ram", nics, 1, &err),
			 0);
	assert_req(f, 6, "PUT", "/snapshot/load",
		   "{\"snapshot_path\":\"/s/state\",\"mem_backend\":"
		   "{\"backend_type\":\"File\",\"backend_path\":\"/s/ram\"},"
		   "\"network_overrides\":[{\"iface_id\":\"eth0\","
		   "\"host_dev_name\":\"at2-1\"}],\"resume_vm\":true}");
	rest_close(c);
}

static void
test_boot_fault(void **state)
{
	struct ffix *f = *state;
	struct rest_client *c = client(f);
	struct aerr err = { "" };

	httpd_push(&f->h, httpd_resp(204, NULL));
	httpd_push(&f->h, httpd_resp(400, "{\"fault_message\":\"Invalid Elf "
					  "magic number.\"}"));
	assert_int_equal(fc_api_boot(c, &f->cfg, NULL, 0, &err), -EINVAL);
	assert_string_equal(err.msg, "firecracker: PUT /boot-source: Invalid "
			    "Elf magic number.");
	/* Nothing after the failed step. */
	assert_int_equal(f->h.n_reqs, 2);
	rest_close(c);
}

static void
test_snapshot_requests(void **state)
{
	struct ffix *f = *state;
	struct rest_client *c = client(f);
	struct aerr err = { "" };
	char *v;

	assert_int_equal(fc_api_set_state(c, true, &err), 0);
	assert_int_equal(fc_api_snapshot(c, "/s/state", "/r/ram", &err), 0);
	assert_int_equal(fc_api_set_state(c, false, &err), 0);
	assert_int_equal(fc_api_load(c, "/s/state", "/s/ram", NULL, 0, &err), 0);
	assert_int_equal(fc_api_ctrl_alt_del(c, &err), 0);
	httpd_push(&f->h, httpd_resp(200, "{\"firecracker_version\":"
					  "\"1.16.1\"}"));
	v = fc_api_version(c);
	assert_string_equal(v, "1.16.1");
	free(v);
	assert_req(f, 0, "PATCH", "/vm", "{\"state\":\"Paused\"}");
	assert_req(f, 1, "PUT", "/snapshot/create",
		   "{\"snapshot_type\":\"Full\",\"snapshot_path\":"
		   "\"/s/state\",\"mem_file_path\":\"/r/ram\"}");
	assert_req(f, 2, "PATCH", "/vm", "{\"state\":\"Resumed\"}");
	assert_req(f, 3, "PUT", "/snapshot/load",
		   "{\"snapshot_path\":\"/s/state\",\"mem_backend\":"
		   "{\"backend_type\":\"File\",\"backend_path\":"
		   "\"/s/ram\"},\"resume_vm\":true}");
	assert_req(f, 4, "PUT", "/actions",
		   "{\"action_type\":\"SendCtrlAltDel\"}");
	assert_req(f, 5, "GET", "/version", NULL);
	rest_close(c);
}

/* ---- the process -------------------------------------------------------- */

static void
on_exited(void *owner, int status)
{
	struct ffix *f = owner;

	pthread_mutex_lock(&f->lock);
	f->exits++;
	f->status = status;
	pthread_cond_broadcast(&f->cond);
	pthread_mutex_unlock(&f->lock);
}

static void
on_log(void *owner, const char *text)
{
	(void)owner;
	(void)text;
}

static const struct backend_events events = {
	.exited = on_exited,
	.log = on_log,
};

/* SendCtrlAltDel: the guest resets and Firecracker exits, as the real one. */
static void
on_request(struct httpd *h, const struct httpd_req *r)
{
	struct ffix *f = h->arg;

	if (r->body && strstr(r->body, "SendCtrlAltDel"))
		kill(firecracker_backend_ops.pid(f->b), SIGTERM);
}

/* A launch of the fake binary with the config checked first. */
static int
launch(struct ffix *f, struct backend_launch *l, struct aerr *err)
{
	struct aerr cerr;
	char *json = xasprintf("{\"firecracker\": {\"binary\": \"%s\"}}",
			       f->path[P_BIN]);

	assert_int_equal(check(f, json, &cerr), 0);
	free(json);
	f->cfg.own = f->own;
	memset(l, 0, sizeof(*l));
	l->cfg = f->cfg;
	l->state_dir = f->path[P_STATE];
	/* test_launch_boot listens there */
	if (access(f->path[P_CONSOLE], F_OK) == 0)
		l->console_path = f->path[P_CONSOLE];
	l->n_shells = 1;
	l->events = &events;
	l->owner = f;
	f->h.on_request = on_request;
	f->h.arg = f;
	err->msg[0] = 0;
	return firecracker_backend_ops.launch(l, &f->b, err);
}

static char *
slurp(const char *path)
{
	char *text = NULL;
	size_t len;

	assert_int_equal(read_file(path, &text, &len), 0);
	return text;
}

static char *
state_file(struct ffix *f, const char *name)
{
	return xasprintf("%s/%s", f->path[P_STATE], name);
}

static void
assert_file(const char *path, const char *content)
{
	char *text = slurp(path);

	assert_string_equal(text, content);
	free(text);
}

static void
test_launch_boot(void **state)
{
	struct ffix *f = *state;
	struct backend_launch l;
	struct aerr err;
	int con_fd, fd;
	char buf[64] = { 0 }, *cwd, *p, *p2, *want;
	struct strbuf info;
	int ram_saved = -1;

	con_fd = sock_listen_unix(f->path[P_CONSOLE], &err);
	assert_true(con_fd >= 0);
	f->cfg.n_disks = 1;
	assert_int_equal(launch(f, &l, &err), 0);
	/* fresh boot: the API calls in order */
	assert_req(f, 0, "GET", "/version", NULL);
	/* (their bodies: test_boot_requests) */
	assert_req(f, 1, "PUT", "/machine-config", f->h.reqs[1].body);
	assert_req(f, 2, "PUT", "/boot-source", f->h.reqs[2].body);
	assert_req(f, 3, "PUT", "/drives/disk0", f->h.reqs[3].body);
	assert_req(f, 4, "PUT", "/vsock", f->h.reqs[4].body);
	assert_req(f, 5, "PUT", "/actions",
		   "{\"action_type\":\"InstanceStart\"}");
	/* its own directory, its own copy of the disk */
	p = state_file(f, "fc.0");
	want = xasprintf("%s\n", p);
	p2 = fpath(f, "cwd");
	cwd = slurp(p2);
	assert_string_equal(cwd, want);
	free(cwd);
	free(p2);
	free(want);
	free(p);
	p = state_file(f, "fc.0/disk.0");
	assert_file(p, "a raw disk");
	free(p);
	p = state_file(f, "firecracker.sock");
	p2 = state_file(f, "fc.0.log");
	want = xasprintf("--api-sock\n%s\n--id\nvm-1\n--level\nWarning\n"
			 "--log-path\n%s\n", p, p2);
	free(p2);
	free(p);
	p = fpath(f, "args");
	assert_file(p, want);
	free(p);
	free(want);
	/* the console is its stdout */
	fd = accept(con_fd, NULL, NULL);
	assert_true(fd >= 0);
	assert_true(read(fd, buf, sizeof(buf) - 1) > 0);
	assert_string_equal(buf, "fake firecracker: booted\n");
	close(fd);
	close(con_fd);

	sb_init(&info);
	firecracker_backend_ops.info(f->b, &info);
	assert_non_null(strstr(info.data, "pid "));
	assert_non_null(strstr(info.data, "vmm firecracker"));
	sb_free(&info);

	assert_int_equal(firecracker_backend_ops.pause(f->b), 0);
	assert_int_equal(firecracker_backend_ops.resume(f->b), 0);
	assert_req(f, 6, "PATCH", "/vm", "{\"state\":\"Paused\"}");
	assert_req(f, 7, "PATCH", "/vm", "{\"state\":\"Resumed\"}");

	p = fpath(f, "snap.ram");
	assert_int_equal(firecracker_backend_ops.save(f->b, f->path[P_SNAP], p,
						      &ram_saved, &err), 0);
	assert_int_equal(ram_saved, 1);
	assert_req(f, 8, "PATCH", "/vm", "{\"state\":\"Paused\"}");
	want = xasprintf("{\"snapshot_type\":\"Full\",\"snapshot_path\":"
			 "\"%s/state\",\"mem_file_path\":\"%s\"}",
			 f->path[P_SNAP], p);
	assert_req(f, 9, "PUT", "/snapshot/create", want);
	assert_req(f, 10, "PATCH", "/vm", "{\"state\":\"Resumed\"}");
	free(want);
	free(p);
	p = xasprintf("%s/disk.0.qcow2", f->path[P_SNAP]);
	assert_file(p, "a raw disk");
	free(p);

	/* halt: SendCtrlAltDel, and the process is gone */
	assert_int_equal(firecracker_backend_ops.quit(f->b), 0);
	assert_req(f, 11, "PUT", "/actions",
		   "{\"action_type\":\"SendCtrlAltDel\"}");
	pthread_mutex_lock(&f->lock);
	while (!f->exits)
		pthread_cond_wait(&f->cond, &f->lock);
	pthread_mutex_unlock(&f->lock);
	assert_int_equal(f->exits, 1);
	firecracker_backend_ops.destroy(f->b);
	/* its launch directory goes with it */
	p = state_file(f, "fc.0");
	assert_int_equal(access(p, F_OK), -1);
	free(p);
}

static void
test_launch_restore(void **state)
{
	struct ffix *f = *state;
	struct backend_launch l;
	struct aerr err;
	char *snapdisk = fpath(f, "snapdisk"), *want, *p;
	const char *bases[] = { snapdisk };

	put_file(snapdisk, "saved disk", 10, 0600);
	f->cfg.n_disks = 1;
	memset(&l, 0, sizeof(l));
	{
		/* launch() with the snapshot's files */
		char *json = xasprintf("{\"firecracker\": {\"binary\": \"%s\"}}",
				       f->path[P_BIN]);

		assert_int_equal(check(f, json, &err), 0);
		free(json);
	}
	f->cfg.own = f->own;
	l.cfg = f->cfg;
	l.state_dir = f->path[P_STATE];
	l.n_shells = 1;
	l.events = &events;
	l.owner = f;
	l.incoming = "/snap/state";
	l.incoming_ram = "/snap/ram";
	l.disk_bases = bases;
	l.defer_incoming = 1;
	l.vmm_tag = "spare1";
	assert_int_equal(firecracker_backend_ops.launch(&l, &f->b, &err), 0);
	/* deferred: nothing but the version until incoming() */
	assert_int_equal(f->h.n_reqs, 1);
	assert_req(f, 0, "GET", "/version", NULL);
	p = state_file(f, "fc.0/disk.0");
	assert_file(p, "saved disk");
	free(p);
	p = state_file(f, "firecracker.spare1.pid");
	assert_int_equal(access(p, F_OK), 0);
	free(p);
	assert_int_equal(firecracker_backend_ops.incoming(f->b, &err), 0);
	want = xstrdup("{\"snapshot_path\":\"/snap/state\",\"mem_backend\":"
		       "{\"backend_type\":\"File\",\"backend_path\":"
		       "\"/snap/ram\"},\"resume_vm\":true}");
	assert_req(f, 1, "PUT", "/snapshot/load", want);
	free(want);
	firecracker_backend_ops.destroy(f->b);
	/* destroyed: no "exited" callback */
	assert_int_equal(f->exits, 0);
	free(snapdisk);
}

static void
test_launch_api_fault(void **state)
{
	struct ffix *f = *state;
	struct backend_launch l;
	struct aerr err;
	char *p;

	httpd_push(&f->h, httpd_resp(204, NULL)); /* GET /version */
	httpd_push(&f->h, httpd_resp(400, "{\"fault_message\":\"Invalid "
					  "vCPU count.\"}"));
	f->cfg.n_disks = 0;
	assert_int_equal(launch(f, &l, &err), -EINVAL);
	assert_string_equal(err.msg, "firecracker: PUT /machine-config: "
			    "Invalid vCPU count.");
	assert_null(f->b);
	/* killed, its directory removed, no callback */
	p = state_file(f, "fc.0");
	assert_int_equal(access(p, F_OK), -1);
	free(p);
	assert_int_equal(f->exits, 0);
}

static void
test_launch_exits(void **state)
{
	struct ffix *f = *state;
	struct backend_launch l;
	struct aerr err;

	setenv("FAKEFC_FAIL", "error: unexpected argument", 1);
	f->cfg.n_disks = 0;
	assert_int_equal(launch(f, &l, &err), -EIO);
	assert_string_equal(err.msg, "firecracker exited (exit status 3): "
			    "error: unexpected argument");
	unsetenv("FAKEFC_FAIL");
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_config_keys, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_config_generic, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_argv, setup, teardown),
		cmocka_unit_test_setup_teardown(test_boot_requests, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_nic_requests, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_boot_fault, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_snapshot_requests, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_launch_boot, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_launch_restore, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_launch_api_fault, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_launch_exits, setup,
						teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
