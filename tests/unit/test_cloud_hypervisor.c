/*
 * backends/cloud_hypervisor*.c without a VMM: a CH machine's config keys
 * as the config file loader checks them (each bad key refused with its path
 * and reason), the VmConfig of vm.create field by field, and a snapshot's
 * config.json made a new launch's.
 */
#include <errno.h>
#include <fcntl.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>
#include <json-c/json.h>

#include "backends/cloud_hypervisor.h"
#include "common/util.h"
#include "machine/config.h"

struct fixture {
	char *dir;
	char *file;	/* dir/machines.json */
	char *ch;	/* dir/bin/cloud-hypervisor, also $CH_BINARY */
	char *old_path;
};

/* name in dir with len bytes of head at offset off, the rest zero. */
static void
put_file(const char *dir, const char *name, const void *head, size_t len,
	 size_t off, mode_t mode)
{
	char *p = xasprintf("%s/%s", dir, name);
	char buf[1024] = { 0 };
	int fd = open(p, O_WRONLY | O_CREAT | O_TRUNC, mode);

	assert_true(fd >= 0);
	assert_true(off + len <= sizeof(buf));
	memcpy(buf + off, head, len);
	assert_int_equal(write_all(fd, buf, sizeof(buf)), 0);
	close(fd);
	assert_int_equal(chmod(p, mode), 0);
	free(p);
}

static int
setup(void **state)
{
	struct fixture *f = xcalloc(1, sizeof(*f));
	char tmpl[] = "/tmp/attestfs-test-chv-XXXXXX";
	char *bin;

	assert_non_null(mkdtemp(tmpl));
	f->dir = realpath(tmpl, NULL);
	assert_non_null(f->dir);
	f->file = xasprintf("%s/machines.json", f->dir);
	put_file(f->dir, "vmlinux", "\177ELF", 4, 0, 0644);
	put_file(f->dir, "vmlinuz", "HdrS", 4, 0x202, 0644);
	put_file(f->dir, "kernel.txt", "hello", 5, 0, 0644);
	put_file(f->dir, "initrd.img", "070701", 6, 0, 0644);
	put_file(f->dir, "root.img", "", 0, 0, 0644);
	put_file(f->dir, "root.qcow2", "QFI\373", 4, 0, 0644);
	bin = xasprintf("%s/bin", f->dir);
	assert_int_equal(mkdir(bin, 0755), 0);
	put_file(bin, "cloud-hypervisor", "#!/bin/sh\n", 10, 0, 0755);
	f->ch = xasprintf("%s/cloud-hypervisor", bin);
	free(bin);
	setenv("CH_BINARY", f->ch, 1);
	f->old_path = xstrdup(getenv("PATH") ? getenv("PATH") : "/usr/bin");
	*state = f;
	return 0;
}

static int
teardown(void **state)
{
	struct fixture *f = *state;

	setenv("PATH", f->old_path, 1);
	unsetenv("CH_BINARY");
	assert_int_equal(remove_tree(f->dir), 0);
	free(f->dir);
	free(f->file);
	free(f->ch);
	free(f->old_path);
	free(f);
	return 0;
}

/* {"machines": {"db": {"backend": "cloud-hypervisor", "kernel":
 * "vmlinux", BODY}}}, loaded: 0 or -errno, the reason in err. */
static int
load_ch(struct fixture *f, const char *body, struct attest_config *cfg,
	struct aerr *err)
{
	char *text = xasprintf("{\"machines\": {\"db\": {\"backend\": "
			       "\"cloud-hypervisor\", %s}}}", body);
	int ret;

	assert_int_equal(write_file_atomic(f->file, text, strlen(text)), 0);
	free(text);
	memset(cfg, 0, sizeof(*cfg));
	ret = config_load(f->file, cfg, err);
	return ret;
}

/* Refused with "FILE: machines.db.<want...>" (want: the key path and the
 * reason as they must appear, right after the file name). */
static void
expect_refused(struct fixture *f, const char *body, const char *want)
{
	struct attest_config cfg;
	struct aerr err = { "" };
	char *prefix = xasprintf("%s: machines.db%s", f->file, want);
	int ret = load_ch(f, body, &cfg, &err);

	if (ret != -EINVAL)
		fail_msg("expected -EINVAL, got %d (%s) for %s", ret, err.msg,
			 body);
	if (strncmp(err.msg, prefix, strlen(prefix)))
		fail_msg("for %s\nwant: %s...\ngot:  %s", body, prefix,
			 err.msg);
	free(prefix);
}

static struct json_object *
own_of(const struct machine_config *m)
{
	struct json_object *o = NULL;

	assert_true(json_object_object_get_ex(m->backend_keys,
					      "cloud-hypervisor", &o));
	return o;
}

static const char *
str_at(struct json_object *o, const char *key)
{
	struct json_object *v;

	if (!json_object_object_get_ex(o, key, &v))
		fail_msg("no \"%s\" in %s", key, json_object_to_json_string(o));
	return json_object_get_string(v);
}

/* ---- config keys -------------------------------------------------------- */

static void
test_defaults(void **state)
{
	struct fixture *f = *state;
	struct attest_config cfg;
	struct backend_config bc;
	struct aerr err = { "" };
	struct chv_own own;
	struct json_object *o, *v;
	char *path;

	assert_int_equal(load_ch(f, "\"kernel\": \"vmlinux\"", &cfg, &err), 0);
	o = own_of(&cfg.machines[0]);
	/* $CH_BINARY, as mount time saw it: kept for every launch. */
	assert_string_equal(str_at(o, "binary"), f->ch);
	assert_true(json_object_object_get_ex(o, "args", &v));
	assert_int_equal(json_object_array_length(v), 0);
	assert_true(json_object_object_get_ex(o, "power_button_ms", &v));
	assert_int_equal(json_object_get_int(v), CHV_POWER_BUTTON_MS);
	/* ...and what a launch reads back. */
	machine_backend_config(&cfg.machines[0], &bc);
	chv_own_get(&bc, &own);
	assert_string_equal(own.binary, f->ch);
	assert_int_equal(own.n_args, 0);
	assert_null(own.args[0]);
	assert_int_equal(own.power_button_ms, CHV_POWER_BUTTON_MS);
	chv_own_free(&own);
	config_free(&cfg);

	/* Without CH_BINARY: cloud-hypervisor in PATH. */
	unsetenv("CH_BINARY");
	path = xasprintf("%s/bin", f->dir);
	setenv("PATH", path, 1);
	free(path);
	assert_int_equal(load_ch(f, "\"kernel\": \"vmlinux\"", &cfg, &err), 0);
	assert_string_equal(str_at(own_of(&cfg.machines[0]), "binary"),
			    "cloud-hypervisor");
	config_free(&cfg);
}

static void
test_own_keys(void **state)
{
	struct fixture *f = *state;
	struct attest_config cfg;
	struct backend_config bc;
	struct aerr err = { "" };
	struct chv_own own;
	char *body = xasprintf("\"kernel\": \"vmlinux\", \"initrd\": "
			       "\"initrd.img\", \"disks\": [\"root.img\"], "
			       "\"cloud-hypervisor\": {\"binary\": \"%s\", "
			       "\"args\": [\"-v\", \"--seccomp=false\"], "
			       "\"power_button_ms\": 0}", f->ch);

	unsetenv("CH_BINARY");
	assert_int_equal(load_ch(f, body, &cfg, &err), 0);
	machine_backend_config(&cfg.machines[0], &bc);
	chv_own_get(&bc, &own);
	assert_string_equal(own.binary, f->ch);
	assert_int_equal(own.n_args, 2);
	assert_string_equal(own.args[0], "-v");
	assert_string_equal(own.args[1], "--seccomp=false");
	assert_null(own.args[2]);
	assert_int_equal(own.power_button_ms, 0);
	chv_own_free(&own);
	config_free(&cfg);
	free(body);
}

static void
test_bad_own_keys(void **state)
{
	struct fixture *f = *state;

	expect_refused(f, "\"kernel\": \"vmlinux\", \"cloud-hypervisor\": 5",
		       ".cloud-hypervisor: expected an object, got integer");
	expect_refused(f, "\"kernel\": \"vmlinux\", \"cloud-hypervisor\": "
		       "{\"binry\": \"x\"}",
		       ".cloud-hypervisor: unknown key \"binry\" (expected "
		       "\"binary\", \"args\" or \"power_button_ms\")");
	expect_refused(f, "\"kernel\": \"vmlinux\", \"cloud-hypervisor\": "
		       "{\"binary\": 3}",
		       ".cloud-hypervisor.binary: expected a command name or "
		       "an absolute path, got 3");
	expect_refused(f, "\"kernel\": \"vmlinux\", \"cloud-hypervisor\": "
		       "{\"binary\": \"\"}",
		       ".cloud-hypervisor.binary: expected a command name");
	expect_refused(f, "\"kernel\": \"vmlinux\", \"cloud-hypervisor\": "
		       "{\"binary\": \"bin/cloud-hypervisor\"}",
		       ".cloud-hypervisor.binary: bin/cloud-hypervisor (from "
		       "this key) is a relative path");
	expect_refused(f, "\"kernel\": \"vmlinux\", \"cloud-hypervisor\": "
		       "{\"binary\": \"/nonexistent/ch\"}",
		       ".cloud-hypervisor.binary: /nonexistent/ch (from this "
		       "key): No such file or directory");
	expect_refused(f, "\"kernel\": \"vmlinux\", \"cloud-hypervisor\": "
		       "{\"binary\": \"no-such-vmm-here\"}",
		       ".cloud-hypervisor.binary: no-such-vmm-here is not in "
		       "PATH");
	expect_refused(f, "\"kernel\": \"vmlinux\", \"cloud-hypervisor\": "
		       "{\"args\": \"-v\"}",
		       ".cloud-hypervisor.args: expected an array of strings, "
		       "got string");
	expect_refused(f, "\"kernel\": \"vmlinux\", \"cloud-hypervisor\": "
		       "{\"args\": [\"-v\", 1]}",
		       ".cloud-hypervisor.args: [1]: expected a string");
	expect_refused(f, "\"kernel\": \"vmlinux\", \"cloud-hypervisor\": "
		       "{\"power_button_ms\": \"1\"}",
		       ".cloud-hypervisor.power_button_ms: expected an "
		       "integer, got \"1\"");
	expect_refused(f, "\"kernel\": \"vmlinux\", \"cloud-hypervisor\": "
		       "{\"power_button_ms\": -1}",
		       ".cloud-hypervisor.power_button_ms: -1 is out of range");
	expect_refused(f, "\"kernel\": \"vmlinux\", \"cloud-hypervisor\": "
		       "{\"power_button_ms\": 600001}",
		       ".cloud-hypervisor.power_button_ms: 600001 is out of "
		       "range");
	/* QEMU's key is not CH's. */
	expect_refused(f, "\"kernel\": \"vmlinux\", \"qemu_args\": []",
		       ": unknown key \"qemu_args\"");

	/* No binary at all: not at the first boot, at mount time. */
	unsetenv("CH_BINARY");
	setenv("PATH", f->dir, 1);
	expect_refused(f, "\"kernel\": \"vmlinux\"",
		       ".cloud-hypervisor.binary: cloud-hypervisor is not in "
		       "PATH (set this key or CH_BINARY");
}

static void
test_bad_generic_keys(void **state)
{
	struct fixture *f = *state;

	expect_refused(f, "\"initrd\": \"initrd.img\"",
		       ": a cloud-hypervisor machine needs \"kernel\" (an "
		       "uncompressed ELF vmlinux)");
	expect_refused(f, "\"kernel\": \"vmlinuz\"", ".kernel: ");
	expect_refused(f, "\"kernel\": \"kernel.txt\"", ".kernel: ");
	expect_refused(f, "\"kernel\": \"missing\"", ".kernel: no such file");
	expect_refused(f, "\"kernel\": \"vmlinux\", \"disks\": "
		       "[\"root.img\", \"root.qcow2\"]", ".disks[1]: ");
	expect_refused(f, "\"kernel\": \"vmlinux\", \"start_command\": "
		       "\"run-vm\"",
		       ".start_command: cloud-hypervisor machines boot "
		       "\"kernel\" themselves");
	expect_refused(f, "\"kernel\": \"vmlinux\", \"accel\": \"tcg\"",
		       ".accel: cloud-hypervisor runs guests on KVM only");
	expect_refused(f, "\"kernel\": \"vmlinux\", \"shell_channel\": "
		       "\"virtconsole\"",
		       ".shell_channel: the shells of a cloud-hypervisor "
		       "machine are vsock channels");
}

/* The reasons in full where they name a file. */
static void
test_bad_files_reasons(void **state)
{
	struct fixture *f = *state;
	char *want;

	want = xasprintf(".kernel: %s/vmlinuz is a compressed bzImage; "
			 "cloud-hypervisor boots an uncompressed ELF vmlinux",
			 f->dir);
	expect_refused(f, "\"kernel\": \"vmlinuz\"", want);
	free(want);
	want = xasprintf(".kernel: %s/kernel.txt is not an ELF vmlinux",
			 f->dir);
	expect_refused(f, "\"kernel\": \"kernel.txt\"", want);
	free(want);
	want = xasprintf(".disks[1]: %s/root.qcow2 is a qcow2 image; "
			 "cloud-hypervisor machines take raw images", f->dir);
	expect_refused(f, "\"kernel\": \"vmlinux\", \"disks\": "
		       "[\"root.img\", \"root.qcow2\"]", want);
	free(want);
}

/* ---- request bodies ----------------------------------------------------- */

static struct json_object *
get(struct json_object *o, const char *key)
{
	struct json_object *v = NULL;

	if (!json_object_object_get_ex(o, key, &v))
		fail_msg("no \"%s\" in %s", key, json_object_to_json_string(o));
	return v;
}

static void
assert_keys(struct json_object *o, const char *const *keys)
{
	size_t n = 0;

	while (keys[n]) {
		get(o, keys[n]);
		n++;
	}
	if ((size_t)json_object_object_length(o) != n)
		fail_msg("keys other than expected in %s",
			 json_object_to_json_string(o));
}

static void
test_vm_config(void **state)
{
	static const char *const top[] = { "payload", "cpus", "memory",
					   "disks", "net", "serial", "console",
					   "vsock", NULL };
	static const char *const payload[] = { "kernel", "initramfs",
					       "cmdline", NULL };
	struct backend_config cfg = {
		.name = "db", .cpus = 2, .memory_mib = 384,
		.kernel = "/k/vmlinux", .initrd = "/k/initrd.gz",
		.append = "console=ttyS0 quiet",
	};
	const char *disks[] = { "/s/disk.0.1.raw", "/s/disk.1.1.raw" };
	const struct backend_nic nics[] = {
		{ .vlan = 1, .mac = "52:54:00:12:01:03", .tap = "at3-1" },
		{ .vlan = 7, .mac = "52:54:00:12:07:03", .tap = "at3-7" },
	};
	struct chv_vm_params p = {
		.cfg = &cfg, .disks = disks, .n_disks = 2,
		.serial_socket = "/s/ch.1.serial",
		.vsock_socket = "/s/ch.1.vsock",
		.nics = nics, .n_nics = 2,
	};
	struct json_object *vm = chv_vm_config(&p), *o, *d;
	size_t i;

	assert_keys(vm, top);
	o = get(vm, "payload");
	assert_keys(o, payload);
	assert_string_equal(str_at(o, "kernel"), "/k/vmlinux");
	assert_string_equal(str_at(o, "initramfs"), "/k/initrd.gz");
	assert_string_equal(str_at(o, "cmdline"), "console=ttyS0 quiet");
	o = get(vm, "cpus");
	assert_int_equal(json_object_get_int(get(o, "boot_vcpus")), 2);
	assert_int_equal(json_object_get_int(get(o, "max_vcpus")), 2);
	assert_int_equal(json_object_object_length(o), 2);
	/* Bytes, not MiB. */
	o = get(vm, "memory");
	assert_true(json_object_get_int64(get(o, "size")) ==
		    384LL * 1024 * 1024);
	assert_int_equal(json_object_object_length(o), 1);
	o = get(vm, "disks");
	assert_int_equal(json_object_array_length(o), 2);
	for (i = 0; i < 2; i++) {
		d = json_object_array_get_idx(o, i);
		assert_string_equal(str_at(d, "path"), disks[i]);
		assert_false(json_object_get_boolean(get(d, "readonly")));
		assert_string_equal(str_at(d, "image_type"), "Raw");
		assert_int_equal(json_object_object_length(d), 3);
	}
	/* The TAPs machine/ made, in the order of "vlans": eth0, eth1. */
	o = get(vm, "net");
	assert_int_equal(json_object_array_length(o), 2);
	for (i = 0; i < 2; i++) {
		d = json_object_array_get_idx(o, i);
		assert_string_equal(str_at(d, "tap"), nics[i].tap);
		assert_string_equal(str_at(d, "mac"), nics[i].mac);
		assert_int_equal(json_object_object_length(d), 2);
	}
	o = get(vm, "serial");
	assert_string_equal(str_at(o, "mode"), "Socket");
	assert_string_equal(str_at(o, "socket"), "/s/ch.1.serial");
	assert_int_equal(json_object_object_length(o), 2);
	o = get(vm, "console");
	assert_string_equal(str_at(o, "mode"), "Off");
	assert_int_equal(json_object_object_length(o), 1);
	o = get(vm, "vsock");
	assert_int_equal(json_object_get_int(get(o, "cid")), 3);
	assert_string_equal(str_at(o, "socket"), "/s/ch.1.vsock");
	assert_int_equal(json_object_object_length(o), 2);
	json_object_put(vm);
}

/* Without initrd, command line and disks those keys are absent, not
 * empty: CH would try to open "" as an initramfs. */
static void
test_vm_config_minimal(void **state)
{
	static const char *const top[] = { "payload", "cpus", "memory",
					   "serial", "console", "vsock", NULL };
	struct backend_config cfg = {
		.name = "t", .cpus = 1, .memory_mib = 16,
		.kernel = "/k/vmlinux",
	};
	struct chv_vm_params p = {
		.cfg = &cfg, .serial_socket = "/s/a", .vsock_socket = "/s/b",
	};
	struct json_object *vm = chv_vm_config(&p), *o;

	assert_keys(vm, top);
	o = get(vm, "payload");
	assert_int_equal(json_object_object_length(o), 1);
	assert_string_equal(str_at(o, "kernel"), "/k/vmlinux");
	assert_true(json_object_get_int64(get(get(vm, "memory"), "size")) ==
		    16LL << 20);
	json_object_put(vm);
}

/* config.json as CH writes it: more fields than attestfs sent. */
static const char saved_config[] =
	"{\"cpus\": {\"boot_vcpus\": 1, \"max_vcpus\": 1},"
	" \"memory\": {\"size\": 268435456, \"shared\": false},"
	" \"payload\": {\"kernel\": \"/k/vmlinux\"},"
	" \"disks\": [{\"path\": \"/old/disk.0.7.raw\", \"readonly\": false,"
	"   \"id\": \"_disk0\", \"num_queues\": 1}],"
	" \"serial\": {\"mode\": \"Socket\", \"socket\": \"/old/ch.7.serial\"},"
	" \"console\": {\"mode\": \"Off\"},"
	" \"vsock\": {\"cid\": 3, \"socket\": \"/old/ch.7.vsock\","
	"   \"id\": \"_vsock0\"},"
	" \"net\": [{\"tap\": \"at1-1\", \"mac\": \"52:54:00:12:01:01\","
	"   \"id\": \"_net0\", \"num_queues\": 2}]}";

static void
test_restore_config(void **state)
{
	struct backend_config cfg = { .name = "c", .cpus = 1 };
	const char *disks[] = { "/new/disk.0.9.raw" };
	const struct backend_nic nics[] = {
		{ .vlan = 1, .mac = "52:54:00:12:01:04", .tap = "at4-1" },
	};
	struct chv_vm_params p = {
		.cfg = &cfg, .disks = disks, .n_disks = 1,
		.serial_socket = "/new/ch.9.serial",
		.vsock_socket = "/new/ch.9.vsock",
		.nics = nics, .n_nics = 1,
	};
	struct json_object *vm = json_tokener_parse(saved_config), *d, *o;
	struct aerr err = { "" };

	assert_non_null(vm);
	assert_int_equal(chv_restore_config(vm, &p, &err), 0);
	d = json_object_array_get_idx(get(vm, "disks"), 0);
	assert_string_equal(str_at(d, "path"), "/new/disk.0.9.raw");
	/* What CH saved about the device stays. */
	assert_string_equal(str_at(d, "id"), "_disk0");
	o = get(vm, "vsock");
	assert_string_equal(str_at(o, "socket"), "/new/ch.9.vsock");
	assert_string_equal(str_at(o, "id"), "_vsock0");
	assert_int_equal(json_object_get_int(get(o, "cid")), 3);
	o = get(vm, "serial");
	assert_string_equal(str_at(o, "mode"), "Socket");
	assert_string_equal(str_at(o, "socket"), "/new/ch.9.serial");
	assert_true(json_object_get_int64(get(get(vm, "memory"), "size")) ==
		    268435456LL);
	/* A clone's NIC: its own TAP and MAC, the device as saved. */
	d = json_object_array_get_idx(get(vm, "net"), 0);
	assert_string_equal(str_at(d, "tap"), "at4-1");
	assert_string_equal(str_at(d, "mac"), "52:54:00:12:01:04");
	assert_string_equal(str_at(d, "id"), "_net0");
	json_object_put(vm);

	/* A machine on other VLANs than the snapshot's. */
	vm = json_tokener_parse(saved_config);
	p.n_nics = 0;
	assert_int_equal(chv_restore_config(vm, &p, &err), -EINVAL);
	assert_string_equal(err.msg, "the snapshot's config.json has 1 NICs, "
			    "the machine 0");
	json_object_put(vm);
	p.n_nics = 1;

	/* A machine whose disks are not the snapshot's. */
	vm = json_tokener_parse(saved_config);
	p.n_disks = 0;
	assert_int_equal(chv_restore_config(vm, &p, &err), -EINVAL);
	assert_string_equal(err.msg, "the snapshot's config.json has 1 disks, "
			    "the machine 0");
	json_object_put(vm);

	vm = json_tokener_parse("{\"payload\": {\"kernel\": \"/k\"}}");
	assert_int_equal(chv_restore_config(vm, &p, &err), -EINVAL);
	assert_string_equal(err.msg, "the snapshot's config.json has no vsock "
			    "device");
	json_object_put(vm);
	vm = json_tokener_parse("[1]");
	assert_int_equal(chv_restore_config(vm, &p, &err), -EINVAL);
	json_object_put(vm);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_defaults, setup, teardown),
		cmocka_unit_test_setup_teardown(test_own_keys, setup, teardown),
		cmocka_unit_test_setup_teardown(test_bad_own_keys, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_bad_generic_keys, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_bad_files_reasons, setup,
						teardown),
		cmocka_unit_test(test_vm_config),
		cmocka_unit_test(test_vm_config_minimal),
		cmocka_unit_test(test_restore_config),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
