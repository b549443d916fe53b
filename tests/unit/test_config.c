/*
 * machine/config.c against real files in a temporary directory: the path
 * checks use access(), so the files have to exist.
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
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

#include "backends/config.h"
#include "common/util.h"
#include "machine/config.h"

struct fixture {
	char *dir;	/* canonical, as the messages print it */
	char *file;	/* dir/machines.json */
};

static void
touch(const char *dir, const char *name, mode_t mode)
{
	char *p = xasprintf("%s/%s", dir, name);
	int fd = open(p, O_WRONLY | O_CREAT | O_TRUNC, mode);

	assert_true(fd >= 0);
	assert_int_equal(write_all(fd, "x", 1), 0);
	close(fd);
	assert_int_equal(chmod(p, mode), 0);
	free(p);
}

static int
setup(void **state)
{
	struct fixture *f = xcalloc(1, sizeof(*f));
	char tmpl[] = "/tmp/attestfs-test-config-XXXXXX";
	char *sub;

	assert_non_null(mkdtemp(tmpl));
	f->dir = realpath(tmpl, NULL);
	assert_non_null(f->dir);
	f->file = xasprintf("%s/machines.json", f->dir);
	touch(f->dir, "vmlinuz", 0644);
	touch(f->dir, "initrd.img", 0644);
	touch(f->dir, "base.img", 0644);
	touch(f->dir, "run-vm", 0755);
	touch(f->dir, "not-exec", 0644);
	sub = xasprintf("%s/sub", f->dir);
	assert_int_equal(mkdir(sub, 0755), 0);
	free(sub);
	touch(f->dir, "sub/disk.qcow2", 0644);
	*state = f;
	return 0;
}

static int
teardown(void **state)
{
	struct fixture *f = *state;

	assert_int_equal(remove_tree(f->dir), 0);
	free(f->dir);
	free(f->file);
	free(f);
	return 0;
}

static void
write_config(struct fixture *f, const char *text, size_t len)
{
	assert_int_equal(write_file_atomic(f->file, text, len), 0);
}

static void
load_ok(struct fixture *f, const char *text, struct attest_config *cfg)
{
	struct aerr err = { "" };
	int ret;

	write_config(f, text, strlen(text));
	ret = config_load(f->file, cfg, &err);
	if (ret != 0)
		fail_msg("config rejected: %s\n--- config:\n%s", err.msg, text);
}

static char *
path_in(struct fixture *f, const char *name)
{
	return xasprintf("%s/%s", f->dir, name);
}

static void
assert_str_in_dir(struct fixture *f, const char *got, const char *name)
{
	char *want = path_in(f, name);

	assert_non_null(got);
	assert_string_equal(got, want);
	free(want);
}

/*
 * Load TEXT and expect it rejected with a message that starts with the
 * file and contains every one of the NULL-terminated substrings.
 */
static void
expect_error_len(struct fixture *f, const char *text, size_t len, ...)
{
	struct attest_config cfg;
	struct aerr err = { "" };
	const char *want;
	va_list ap;
	int ret;

	write_config(f, text, len);
	memset(&cfg, 0xa5, sizeof(cfg));
	ret = config_load(f->file, &cfg, &err);
	if (ret != -EINVAL)
		fail_msg("expected -EINVAL, got %d (%s)\n--- config:\n%s", ret,
			 err.msg, text);
	/* A rejected config leaves nothing to free. */
	assert_null(cfg.machines);
	assert_int_equal(cfg.n_machines, 0);
	assert_null(cfg.path);
	if (strncmp(err.msg, f->file, strlen(f->file)) ||
	    err.msg[strlen(f->file)] != ':')
		fail_msg("message does not start with \"%s:\": %s", f->file,
			 err.msg);
	va_start(ap, len);
	while ((want = va_arg(ap, const char *))) {
		if (!strstr(err.msg, want))
			fail_msg("message lacks \"%s\": %s\n--- config:\n%s",
				 want, err.msg, text);
	}
	va_end(ap);
}

#define expect_error(f, text, ...) \
	expect_error_len(f, text, strlen(text), __VA_ARGS__, NULL)

/* Wrap one machine's body in a whole config. */
static void
expect_machine_error(struct fixture *f, const char *body, ...)
{
	char *text = xasprintf("{\"machines\": {\"db\": %s}}", body);
	struct strbuf sb;
	const char *want;
	va_list ap;

	/* Join the wanted parts into one: the order is the message's. */
	sb_init(&sb);
	va_start(ap, body);
	while ((want = va_arg(ap, const char *))) {
		sb_adds(&sb, want);
	}
	va_end(ap);
	expect_error(f, text, sb.data);
	sb_free(&sb);
	free(text);
}

/* The "qemu_args" the QEMU backend's check_config kept for launches. */
static struct json_object *
qemu_args_of(const struct machine_config *m)
{
	struct json_object *v = NULL;

	assert_non_null(m->backend_keys);
	assert_true(json_object_object_get_ex(m->backend_keys, "qemu_args",
					      &v));
	assert_true(json_object_is_type(v, json_type_array));
	return v;
}

static const char *
arg_at(struct json_object *a, size_t i)
{
	return json_object_get_string(json_object_array_get_idx(a, i));
}

/* ---- good configs ---------------------------------------------------- */

static void
test_defaults(void **state)
{
	struct fixture *f = *state;
	struct attest_config cfg;
	struct machine_config *m;

	load_ok(f, "{\"machines\": {\"db\": {\"kernel\": \"vmlinuz\"}}}", &cfg);
	assert_string_equal(cfg.path, f->file);
	assert_int_equal(cfg.timeout, 0);
	assert_int_equal(cfg.n_machines, 1);
	m = &cfg.machines[0];
	assert_string_equal(m->name, "db");
	assert_string_equal(m->backend, "qemu");
	assert_int_equal(m->cpus, 1);
	assert_int_equal(m->memory_mib, 256);
	assert_str_in_dir(f, m->kernel, "vmlinuz");
	assert_null(m->initrd);
	assert_null(m->append);
	assert_int_equal(m->n_disks, 0);
	assert_null(m->accel);
	assert_null(m->start_command);
	assert_int_equal(json_object_array_length(qemu_args_of(m)), 0);
	assert_int_equal(m->shells, 4);
	assert_int_equal(m->shell_channel, SHELL_CHANNEL_PORTS);
	assert_int_equal(m->timeout, 0);
	assert_int_equal(m->guest_agent, 1);
	assert_non_null(m->json);
	config_free(&cfg);
	config_free(&cfg);	/* idempotent */
}

static void
test_full(void **state)
{
	struct fixture *f = *state;
	struct attest_config cfg;
	struct machine_config *m;
	char *abs_disk = path_in(f, "base.img");
	char *text = xasprintf(
		"{\n"
		"  \"timeout\": 900,\n"
		"  \"machines\": {\n"
		"    \"db\": {\n"
		"      \"backend\": \"qemu\", \"cpus\": 64,\n"
		"      \"memory_mib\": 1048576,\n"
		"      \"kernel\": \"./vmlinuz\", \"initrd\": \"initrd.img\",\n"
		"      \"append\": \"console=ttyS0 quiet\",\n"
		"      \"disks\": [\"base.img\", \"./sub/disk.qcow2\", \"%s\"],\n"
		"      \"accel\": \"tcg\",\n"
		"      \"qemu_args\": [\"-device\", \"virtio-rng-pci\", \"x/y\"],\n"
		"      \"shells\": 16, \"shell_channel\": \"virtserialport\",\n"
		"      \"timeout\": 600, \"guest_agent\": false\n"
		"    }\n"
		"  }\n"
		"}\n", abs_disk);

	load_ok(f, text, &cfg);
	assert_int_equal(cfg.timeout, 900);
	assert_int_equal(cfg.n_machines, 1);
	m = &cfg.machines[0];
	assert_int_equal(m->cpus, 64);
	assert_int_equal(m->memory_mib, 1048576);
	assert_str_in_dir(f, m->kernel, "vmlinuz");
	assert_str_in_dir(f, m->initrd, "initrd.img");
	assert_string_equal(m->append, "console=ttyS0 quiet");
	assert_int_equal(m->n_disks, 3);
	assert_str_in_dir(f, m->disks[0], "base.img");
	assert_str_in_dir(f, m->disks[1], "sub/disk.qcow2");
	assert_string_equal(m->disks[2], abs_disk);
	assert_string_equal(m->accel, "tcg");
	assert_int_equal(json_object_array_length(qemu_args_of(m)), 3);
	assert_string_equal(arg_at(qemu_args_of(m), 0), "-device");
	assert_string_equal(arg_at(qemu_args_of(m), 1), "virtio-rng-pci");
	/* Arguments are verbatim, never resolved like paths. */
	assert_string_equal(arg_at(qemu_args_of(m), 2), "x/y");
	assert_int_equal(m->shells, 16);
	assert_int_equal(m->timeout, 600);
	assert_int_equal(m->guest_agent, 0);
	config_free(&cfg);
	free(text);
	free(abs_disk);
}

static void
test_sorted(void **state)
{
	struct fixture *f = *state;
	struct attest_config cfg;

	load_ok(f, "{\"machines\": {"
		"\"web\": {\"backend\": \"mock\"},"
		"\"db\": {\"backend\": \"mock\"},"
		"\"a-1\": {\"backend\": \"mock\"},"
		"\"Z.x_9\": {\"backend\": \"mock\"},"
		"\"db2\": {\"backend\": \"mock\"}}}", &cfg);
	assert_int_equal(cfg.n_machines, 5);
	assert_string_equal(cfg.machines[0].name, "Z.x_9");
	assert_string_equal(cfg.machines[1].name, "a-1");
	assert_string_equal(cfg.machines[2].name, "db");
	assert_string_equal(cfg.machines[3].name, "db2");
	assert_string_equal(cfg.machines[4].name, "web");
	config_free(&cfg);
}

static void
test_effective_json(void **state)
{
	struct fixture *f = *state;
	struct attest_config cfg;
	struct json_object *o, *v;
	const char *json;
	char *kernel = path_in(f, "vmlinuz");
	char *disk = path_in(f, "base.img");

	load_ok(f, "{\"machines\": {\"db\": {\"kernel\": \"vmlinuz\","
		"\"disks\": [\"base.img\"]}}}", &cfg);
	json = cfg.machines[0].json;
	assert_int_equal(json[strlen(json) - 1], '\n');
	/* Pretty, and paths without json-c's "\/" escaping. */
	assert_non_null(strstr(json, "\n  \"name\""));
	assert_null(strstr(json, "\\/"));
	o = json_tokener_parse(json);
	assert_non_null(o);
	assert_true(json_object_object_get_ex(o, "name", &v));
	assert_string_equal(json_object_get_string(v), "db");
	assert_true(json_object_object_get_ex(o, "backend", &v));
	assert_string_equal(json_object_get_string(v), "qemu");
	assert_true(json_object_object_get_ex(o, "cpus", &v));
	assert_int_equal(json_object_get_int(v), 1);
	assert_true(json_object_object_get_ex(o, "memory_mib", &v));
	assert_int_equal(json_object_get_int(v), 256);
	assert_true(json_object_object_get_ex(o, "shells", &v));
	assert_int_equal(json_object_get_int(v), 4);
	assert_true(json_object_object_get_ex(o, "shell_channel", &v));
	assert_string_equal(json_object_get_string(v), "virtserialport");
	assert_true(json_object_object_get_ex(o, "guest_agent", &v));
	assert_true(json_object_is_type(v, json_type_boolean));
	assert_true(json_object_get_boolean(v));
	assert_true(json_object_object_get_ex(o, "kernel", &v));
	assert_string_equal(json_object_get_string(v), kernel);
	assert_true(json_object_object_get_ex(o, "disks", &v));
	assert_int_equal(json_object_array_length(v), 1);
	assert_string_equal(json_object_get_string(
		json_object_array_get_idx(v, 0)), disk);
	assert_true(json_object_object_get_ex(o, "qemu_args", &v));
	assert_int_equal(json_object_array_length(v), 0);
	/* Unset means "the mount's": left out, not invented. */
	assert_false(json_object_object_get_ex(o, "accel", NULL));
	assert_false(json_object_object_get_ex(o, "timeout", NULL));
	assert_false(json_object_object_get_ex(o, "initrd", NULL));
	json_object_put(o);
	config_free(&cfg);
	free(kernel);
	free(disk);
}

static void
test_virtconsole(void **state)
{
	struct fixture *f = *state;
	struct attest_config cfg;
	struct json_object *o, *v;

	load_ok(f, "{\"machines\": {"
		"\"a\": {\"kernel\": \"vmlinuz\", \"shell_channel\": \"virtconsole\"},"
		"\"b\": {\"kernel\": \"vmlinuz\", \"shell_channel\": \"virtconsole\","
		"        \"shells\": 1},"
		"\"c\": {\"kernel\": \"vmlinuz\", \"shells\": 1,"
		"        \"shell_channel\": \"virtconsole\"}}}", &cfg);
	assert_int_equal(cfg.n_machines, 3);
	/* The pool started from hvc0 (4 by default), or hvc0 alone (1). */
	for (size_t i = 0; i < 3; i++) {
		assert_int_equal(cfg.machines[i].shell_channel,
				 SHELL_CHANNEL_CONSOLE);
		assert_int_equal(cfg.machines[i].shells, i ? 1 : 4);
	}
	o = json_tokener_parse(cfg.machines[0].json);
	assert_true(json_object_object_get_ex(o, "shell_channel", &v));
	assert_string_equal(json_object_get_string(v), "virtconsole");
	assert_true(json_object_object_get_ex(o, "shells", &v));
	assert_int_equal(json_object_get_int(v), 4);
	json_object_put(o);
	config_free(&cfg);
}

static void
test_mock_needs_no_files(void **state)
{
	struct fixture *f = *state;
	struct attest_config cfg;

	load_ok(f, "{\"machines\": {"
		"\"m\": {\"backend\": \"mock\", \"kernel\": \"missing\","
		"        \"initrd\": \"missing.img\", \"disks\": [\"gone.img\"],"
		"        \"start_command\": \"./nowhere/run\"},"
		"\"n\": {\"backend\": \"mock\"}}}", &cfg);
	assert_int_equal(cfg.n_machines, 2);
	assert_string_equal(cfg.machines[0].backend, "mock");
	/* Still resolved: the mock may be asked what it would have run. */
	assert_str_in_dir(f, cfg.machines[0].kernel, "missing");
	assert_str_in_dir(f, cfg.machines[0].initrd, "missing.img");
	assert_str_in_dir(f, cfg.machines[0].disks[0], "gone.img");
	assert_str_in_dir(f, cfg.machines[0].start_command, "nowhere/run");
	assert_null(cfg.machines[1].kernel);
	config_free(&cfg);
}

/* What a backend is given: the generic keys, translated once for all. */
static void
test_backend_config(void **state)
{
	struct fixture *f = *state;
	struct attest_config cfg;
	struct backend_config bc;
	struct machine_config *m;

	load_ok(f, "{\"machines\": {\"db\": {\"kernel\": \"vmlinuz\","
		"\"initrd\": \"initrd.img\", \"append\": \"quiet\","
		"\"disks\": [\"base.img\"], \"cpus\": 3, \"memory_mib\": 512,"
		"\"start_command\": \"./run-vm\", \"qemu_args\": [\"-S\"],"
		"\"shell_channel\": \"virtconsole\"},"
		"\"m\": {\"backend\": \"mock\"}}}", &cfg);
	m = &cfg.machines[0];
	memset(&bc, 0xa5, sizeof(bc));
	machine_backend_config(m, &bc);
	/* Borrowed, not copied: one translation serves every launch. */
	assert_ptr_equal(bc.name, m->name);
	assert_int_equal(bc.cpus, 3);
	assert_int_equal(bc.memory_mib, 512);
	assert_ptr_equal(bc.kernel, m->kernel);
	assert_ptr_equal(bc.initrd, m->initrd);
	assert_string_equal(bc.append, "quiet");
	assert_int_equal(bc.n_disks, 1);
	assert_ptr_equal(bc.disks[0], m->disks[0]);
	assert_ptr_equal(bc.start_command, m->start_command);
	assert_int_equal(bc.shells, 4); /* the pool started from hvc0 */
	assert_true(bc.shell_console);
	assert_ptr_equal(bc.own, m->backend_keys);
	assert_string_equal(arg_at(qemu_args_of(m), 0), "-S");

	m = &cfg.machines[1];
	machine_backend_config(m, &bc);
	assert_string_equal(bc.name, "m");
	assert_null(bc.kernel);
	assert_null(bc.start_command);
	assert_int_equal(bc.n_disks, 0);
	assert_int_equal(bc.shells, 4);
	assert_false(bc.shell_console);
	/* The mock has no keys: an empty object, not NULL. */
	assert_non_null(bc.own);
	assert_int_equal(json_object_object_length(bc.own), 0);
	config_free(&cfg);
}

static void
test_start_command(void **state)
{
	struct fixture *f = *state;
	struct attest_config cfg;

	load_ok(f, "{\"machines\": {"
		"\"a\": {\"start_command\": \"./run-vm\"},"
		"\"b\": {\"start_command\": \"run-b-vm\"},"
		"\"c\": {\"start_command\": \"sub/../run-vm\"}}}", &cfg);
	assert_str_in_dir(f, cfg.machines[0].start_command, "run-vm");
	/* No slash: a command found in PATH when it runs. */
	assert_string_equal(cfg.machines[1].start_command, "run-b-vm");
	assert_str_in_dir(f, cfg.machines[2].start_command, "sub/../run-vm");
	config_free(&cfg);
}

static void
test_other_backends(void **state)
{
	struct fixture *f = *state;
	struct attest_config cfg;
	struct json_object *o;

	load_ok(f, "{\"machines\": {"
		"\"m\": {\"backend\": \"mock\", \"kernel\": \"vmlinuz\","
		"         \"accel\": \"kvm\"},"
		"\"q\": {\"disks\": [\"base.img\"], \"accel\": \"auto\"}}}", &cfg);
	assert_string_equal(cfg.machines[0].backend, "mock");
	assert_string_equal(cfg.machines[0].accel, "kvm");
	assert_string_equal(cfg.machines[1].backend, "qemu");
	assert_string_equal(cfg.machines[1].accel, "auto");
	/* The mock has no keys of its own: none in its config.json. */
	o = json_tokener_parse(cfg.machines[0].json);
	assert_non_null(o);
	assert_false(json_object_object_get_ex(o, "qemu_args", NULL));
	json_object_put(o);
	config_free(&cfg);

	/* Only what the backend table has: refused at mount time. */
	expect_machine_error(f, "{\"backend\": \"xen\", "
			     "\"kernel\": \"vmlinuz\"}",
			     ": machines.db.backend: unknown backend "
			     "\"xen\" (expected \"qemu\", \"mock\"", NULL);
	/* One backend's keys are not another's, wherever "backend" is. */
	expect_machine_error(f, "{\"qemu_args\": [], \"backend\": \"mock\"}",
			     ": machines.db: unknown key \"qemu_args\"", NULL);
	expect_machine_error(f, "{\"backend\": \"mock\", \"qemu_arg\": []}",
			     ": machines.db: unknown key \"qemu_arg\"", NULL);
}

static void
test_parse_string(void **state)
{
	struct fixture *f = *state;
	struct attest_config cfg;
	struct aerr err = { "" };
	char *base = xasprintf("%s/", f->dir);
	int ret;

	ret = config_parse("{\"machines\": {\"x\": {\"kernel\": \"vmlinuz\"}}}",
			   "/etc/some.json", base, &cfg, &err);
	assert_int_equal(ret, 0);
	assert_string_equal(cfg.path, "/etc/some.json");
	assert_str_in_dir(f, cfg.machines[0].kernel, "vmlinuz");
	config_free(&cfg);

	ret = config_parse("{\"machines\": {\"x\": {\"cpus\": 0}}}",
			   "/etc/some.json", base, &cfg, &err);
	assert_int_equal(ret, -EINVAL);
	assert_string_equal(err.msg, "/etc/some.json: machines.x.cpus: "
			    "must be between 1 and 64, got 0");
	free(base);
}

static void
test_load_relative(void **state)
{
	struct fixture *f = *state;
	struct attest_config cfg;
	struct aerr err = { "" };
	char *cwd = getcwd(NULL, 0);
	char *sub = path_in(f, "sub");

	const char *text = "{\"machines\": {\"x\": {\"kernel\": \"vmlinuz\"}}}";

	write_config(f, text, strlen(text));
	assert_int_equal(chdir(sub), 0);
	assert_int_equal(config_load("../machines.json", &cfg, &err), 0);
	assert_int_equal(chdir(cwd), 0);
	assert_string_equal(cfg.path, f->file);
	assert_str_in_dir(f, cfg.machines[0].kernel, "vmlinuz");
	config_free(&cfg);
	free(cwd);
	free(sub);
}

static void
test_load_missing_file(void **state)
{
	struct fixture *f = *state;
	struct attest_config cfg;
	struct aerr err = { "" };
	char *p = path_in(f, "nope.json");

	assert_int_equal(config_load(p, &cfg, &err), -ENOENT);
	assert_non_null(strstr(err.msg, p));
	assert_non_null(strstr(err.msg, "No such file"));
	assert_null(cfg.machines);
	free(p);
}

static void
test_copy(void **state)
{
	struct fixture *f = *state;
	struct attest_config cfg;
	struct machine_config copy;

	load_ok(f, "{\"machines\": {\"db\": {\"kernel\": \"vmlinuz\","
		"\"initrd\": \"initrd.img\", \"append\": \"quiet\","
		"\"disks\": [\"base.img\"], \"accel\": \"tcg\","
		"\"start_command\": \"./run-vm\", \"qemu_args\": [\"-a\", \"b\"],"
		"\"timeout\": 5, \"vlans\": [3, 1]}}}", &cfg);
	machine_config_copy(&copy, &cfg.machines[0]);
	config_free(&cfg);
	/* The copy owns everything: the original is gone. */
	assert_string_equal(copy.name, "db");
	assert_str_in_dir(f, copy.kernel, "vmlinuz");
	assert_str_in_dir(f, copy.initrd, "initrd.img");
	assert_string_equal(copy.append, "quiet");
	assert_int_equal(copy.n_disks, 1);
	assert_str_in_dir(f, copy.disks[0], "base.img");
	assert_string_equal(copy.accel, "tcg");
	assert_str_in_dir(f, copy.start_command, "run-vm");
	assert_int_equal(json_object_array_length(qemu_args_of(&copy)), 2);
	assert_string_equal(arg_at(qemu_args_of(&copy), 1), "b");
	assert_int_equal(copy.timeout, 5);
	assert_int_equal(copy.n_vlans, 2);
	assert_int_equal(copy.vlans[0], 3);
	assert_int_equal(copy.vlans[1], 1);
	assert_non_null(strstr(copy.json, "\"name\": \"db\""));

	/* A clone renames itself and re-renders. */
	free(copy.name);
	copy.name = xstrdup("db2");
	machine_config_render_json(&copy);
	assert_non_null(strstr(copy.json, "\"name\": \"db2\""));
	assert_non_null(strstr(copy.json, "\"timeout\": 5"));
	machine_config_free(&copy);
	assert_null(copy.name);
	machine_config_free(&copy);
	machine_config_free(NULL);
	config_free(NULL);
}

static void
test_vlans(void **state)
{
	struct fixture *f = *state;
	struct attest_config cfg;
	struct json_object *o, *v;

	load_ok(f, "{\"machines\": {"
		"\"web\": {\"backend\": \"mock\", \"vlans\": [2, 1, 255]},"
		"\"db\": {\"backend\": \"mock\", \"vlans\": []},"
		"\"client\": {\"backend\": \"mock\"}}}", &cfg);
	assert_string_equal(cfg.machines[0].name, "client");
	assert_int_equal(cfg.machines[0].n_vlans, 0);
	assert_int_equal(cfg.machines[1].n_vlans, 0);
	/* config order is NIC order: kept, not sorted */
	assert_int_equal(cfg.machines[2].n_vlans, 3);
	assert_int_equal(cfg.machines[2].vlans[0], 2);
	assert_int_equal(cfg.machines[2].vlans[1], 1);
	assert_int_equal(cfg.machines[2].vlans[2], 255);
	o = json_tokener_parse(cfg.machines[2].json);
	assert_true(json_object_object_get_ex(o, "vlans", &v));
	assert_string_equal(json_object_to_json_string_ext(
				    v, JSON_C_TO_STRING_PLAIN), "[2,1,255]");
	json_object_put(o);
	o = json_tokener_parse(cfg.machines[0].json);
	assert_true(json_object_object_get_ex(o, "vlans", &v));
	assert_int_equal(json_object_array_length(v), 0);
	json_object_put(o);
	config_free(&cfg);

	expect_machine_error(f, "{\"backend\": \"mock\", \"vlans\": 1}",
			     ": machines.db.vlans: expected an array of VLAN "
			     "numbers, got integer", NULL);
	expect_machine_error(f, "{\"backend\": \"mock\", \"vlans\": [0]}",
			     ": machines.db.vlans[0]: must be between 1 and 255, "
			     "got 0", NULL);
	expect_machine_error(f, "{\"backend\": \"mock\", \"vlans\": [1, 256]}",
			     ": machines.db.vlans[1]: must be between 1 and 255, "
			     "got 256", NULL);
	expect_machine_error(f, "{\"backend\": \"mock\", \"vlans\": [\"1\"]}",
			     ": machines.db.vlans[0]: expected an integer, "
			     "got string", NULL);
	expect_machine_error(f, "{\"backend\": \"mock\", \"vlans\": [1.5]}",
			     ": machines.db.vlans[0]: expected an integer, "
			     "got 1.5", NULL);
	expect_machine_error(f, "{\"backend\": \"mock\", \"vlans\": [1, 2, 1]}",
			     ": machines.db.vlans[2]: VLAN 1 is listed twice",
			     NULL);
	expect_machine_error(f, "{\"backend\": \"mock\", \"vlan\": [1]}",
			     ": machines.db: unknown key \"vlan\" (did you mean "
			     "\"vlans\"?)", NULL);
}

static void
test_name_is_valid(void **state)
{
	static const char *const good[] = {
		"db", "a", "web-1", "node_2", "a.b", "A9", "ctl2", "ctl.d",
		"events-x", "0", "x-",
	};
	static const struct {
		const char *name;
		const char *reason;
	} bad[] = {
		{ "", "empty name" },
		{ "ctl", "reserved name" },
		{ "events", "reserved name" },
		{ "attest.sh", "reserved name" },
		{ ".hidden", "must not start with '.'" },
		{ ".", "must not start with '.'" },
		{ "..", "must not start with '.'" },
		{ "-x", "must not start with '-'" },
		{ "a b", "invalid character ' '" },
		{ "a/b", "invalid character '/'" },
		{ "a\nb", "invalid character \\x0a" },
		{ "caf\xc3\xa9", "invalid character \\xc3" },
	};
	struct aerr err;
	char name[70];
	size_t i;

	(void)state;
	for (i = 0; i < sizeof(good) / sizeof(good[0]); i++) {
		err.msg[0] = '\0';
		if (config_name_is_valid(good[i], &err))
			fail_msg("\"%s\" rejected: %s", good[i], err.msg);
	}
	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		err.msg[0] = '\0';
		assert_int_equal(config_name_is_valid(bad[i].name, &err),
				 -EINVAL);
		if (!strstr(err.msg, bad[i].reason))
			fail_msg("\"%s\": want \"%s\", got \"%s\"", bad[i].name,
				 bad[i].reason, err.msg);
	}
	memset(name, 'a', sizeof(name));
	name[63] = '\0';
	assert_int_equal(config_name_is_valid(name, &err), 0);
	name[63] = 'a';
	name[64] = '\0';
	assert_int_equal(config_name_is_valid(name, &err), -EINVAL);
	assert_non_null(strstr(err.msg, "longer than 63"));
	assert_int_equal(config_name_is_valid(NULL, &err), -EINVAL);
	assert_int_equal(config_name_is_valid("ctl", NULL), -EINVAL);
}

/* ---- bad configs ----------------------------------------------------- */

static void
test_bad_syntax(void **state)
{
	struct fixture *f = *state;
	char *prefix = xasprintf("%s:3:22: invalid JSON at byte 39: ", f->file);

	expect_error(f, "{\n  \"machines\": {\n    \"db\": {\"cpus\": 1,,}\n  }\n}\n",
		     prefix, "quoted object property name expected");
	free(prefix);
	expect_error(f, "", ":1:1: invalid JSON at byte 0: unexpected end of data");
	expect_error(f, "{\"machines\": {\"db\": {",
		     ":1:22: invalid JSON at byte 21: unexpected end of data");
	expect_error(f, "{\"machines\": {}} x", "invalid JSON", "byte 17");
	expect_error(f, "{\"machines\": /* no */ {}}", ":1:14: invalid JSON");
	expect_error(f, "{\"machines\": {\"db\": {\"cpus\": 1,}}}", "invalid JSON");
	expect_error(f, "{\"machines\": {\"\xff\": {}}}", "invalid JSON");
	expect_error_len(f, "{\"machines\": {}}\0", 17, "byte 16", "NUL byte",
			 NULL);
}

static void
test_bad_top(void **state)
{
	struct fixture *f = *state;

	expect_error(f, "[]", ": expected a JSON object at the top, got array");
	expect_error(f, "42", ": expected a JSON object at the top, got integer");
	expect_error(f, "{}", ": machines: required key missing");
	expect_error(f, "{\"timeout\": 5}", ": machines: required key missing");
	expect_error(f, "{\"machines\": {}}",
		     ": machines: at least one machine is required");
	expect_error(f, "{\"machines\": []}",
		     ": machines: expected an object, got array");
	expect_error(f, "{\"machines\": null}",
		     ": machines: expected an object, got null");
	expect_error(f, "{\"machine\": {\"db\": {}}}",
		     ": unknown key \"machine\" (did you mean \"machines\"?)");
	expect_error(f, "{\"Timeout\": 1, \"machines\": {}}",
		     ": unknown key \"Timeout\" (did you mean \"timeout\"?)");
	expect_error(f, "{\"zzz\": 1, \"machines\": {}}",
		     ": unknown key \"zzz\"");
	expect_error(f, "{\"timeout\": \"900\", \"machines\": {}}",
		     ": timeout: expected an integer, got string");
	expect_error(f, "{\"timeout\": 0, \"machines\": {}}",
		     ": timeout: must be between 1 and 2147483647, got 0");
	expect_error(f, "{\"timeout\": 2147483648, \"machines\": {}}",
		     ": timeout: must be between 1 and 2147483647, got 2147483648");
}

static void
test_bad_unknown_machine_key(void **state)
{
	struct fixture *f = *state;

	expect_machine_error(f, "{\"kernel\": \"vmlinuz\", \"cpu\": 2}",
			     ": machines.db: unknown key \"cpu\" "
			     "(did you mean \"cpus\"?)", NULL);
	expect_machine_error(f, "{\"memory\": 512}",
			     ": machines.db: unknown key \"memory\" "
			     "(did you mean \"memory_mib\"?)", NULL);
	expect_machine_error(f, "{\"qemu_arg\": []}",
			     "(did you mean \"qemu_args\"?)", NULL);
	expect_machine_error(f, "{\"shell_chanel\": \"virtconsole\"}",
			     "(did you mean \"shell_channel\"?)", NULL);
	expect_machine_error(f, "{\"name\": \"db\"}",
			     ": machines.db: unknown key \"name\"", NULL);
	expect_machine_error(f, "{\"x\\ny\": 1}",
			     ": machines.db: unknown key \"x\\x0ay\"", NULL);
}

static void
test_bad_types(void **state)
{
	struct fixture *f = *state;

	expect_machine_error(f, "[]",
			     ": machines.db: expected an object, got array", NULL);
	expect_machine_error(f, "{\"cpus\": \"2\"}",
			     ": machines.db.cpus: expected an integer, got string",
			     NULL);
	expect_machine_error(f, "{\"cpus\": 1.5}",
			     ": machines.db.cpus: expected an integer, got 1.5",
			     NULL);
	expect_machine_error(f, "{\"memory_mib\": true}",
			     ": machines.db.memory_mib: expected an integer, "
			     "got boolean", NULL);
	expect_machine_error(f, "{\"shells\": null}",
			     ": machines.db.shells: expected an integer, got null",
			     NULL);
	expect_machine_error(f, "{\"guest_agent\": 1}",
			     ": machines.db.guest_agent: expected true or "
			     "false, got integer", NULL);
	expect_machine_error(f, "{\"guest_agent\": \"yes\"}",
			     ": machines.db.guest_agent: expected true or "
			     "false, got string", NULL);
	expect_machine_error(f, "{\"timeout\": {}}",
			     ": machines.db.timeout: expected an integer, got object",
			     NULL);
	expect_machine_error(f, "{\"kernel\": 1}",
			     ": machines.db.kernel: expected a string, got integer",
			     NULL);
	expect_machine_error(f, "{\"initrd\": [\"x\"]}",
			     ": machines.db.initrd: expected a string, got array",
			     NULL);
	expect_machine_error(f, "{\"append\": false}",
			     ": machines.db.append: expected a string, got boolean",
			     NULL);
	expect_machine_error(f, "{\"backend\": 1}",
			     ": machines.db.backend: expected a string, got integer",
			     NULL);
	expect_machine_error(f, "{\"disks\": \"base.img\"}",
			     ": machines.db.disks: expected an array of strings, "
			     "got string", NULL);
	expect_machine_error(f, "{\"disks\": [\"base.img\", 7]}",
			     ": machines.db.disks[1]: expected a string, "
			     "got integer", NULL);
	expect_machine_error(f, "{\"kernel\": \"vmlinuz\", \"qemu_args\": [null]}",
			     ": machines.db.qemu_args[0]: expected a string, "
			     "got null", NULL);
	expect_machine_error(f, "{\"qemu_args\": \"-snapshot\"}",
			     ": machines.db.qemu_args: expected an array of "
			     "strings, got string", NULL);
	expect_machine_error(f, "{\"accel\": 0}",
			     ": machines.db.accel: expected a string, got integer",
			     NULL);
	expect_machine_error(f, "{\"shell_channel\": []}",
			     ": machines.db.shell_channel: expected a string, "
			     "got array", NULL);
	expect_machine_error(f, "{\"start_command\": {}}",
			     ": machines.db.start_command: expected a string, "
			     "got object", NULL);
	expect_machine_error(f, "{\"append\": \"a\\u0000b\"}",
			     ": machines.db.append: contains a NUL character", NULL);
	expect_machine_error(f, "{\"kernel\": \"\"}",
			     ": machines.db.kernel: empty path", NULL);
	expect_machine_error(f, "{\"disks\": [\"\"]}",
			     ": machines.db.disks[0]: empty path", NULL);
}

static void
test_bad_names(void **state)
{
	struct fixture *f = *state;
	char long_name[65], *text;

	expect_error(f, "{\"machines\": {\"ctl\": {\"backend\": \"mock\"}}}",
		     ": machines.ctl: reserved name");
	expect_error(f, "{\"machines\": {\"events\": {\"backend\": \"mock\"}}}",
		     ": machines.events: reserved name");
	expect_error(f, "{\"machines\": {\"attest.sh\": {\"backend\": \"mock\"}}}",
		     ": machines.attest.sh: reserved name");
	expect_error(f, "{\"machines\": {\"a b\": {\"backend\": \"mock\"}}}",
		     ": machines.a b: invalid character ' ' in name");
	expect_error(f, "{\"machines\": {\"../x\": {\"backend\": \"mock\"}}}",
		     ": machines.../x: invalid character '/' in name");
	expect_error(f, "{\"machines\": {\".db\": {\"backend\": \"mock\"}}}",
		     ": machines..db: name must not start with '.'");
	expect_error(f, "{\"machines\": {\"-db\": {\"backend\": \"mock\"}}}",
		     ": machines.-db: name must not start with '-'");
	expect_error(f, "{\"machines\": {\"\": {\"backend\": \"mock\"}}}",
		     ": machines.: empty name");
	expect_error(f, "{\"machines\": {\"a\\tb\": {\"backend\": \"mock\"}}}",
		     ": machines.a\\x09b: invalid character \\x09 in name");
	memset(long_name, 'n', 64);
	long_name[64] = '\0';
	text = xasprintf("{\"machines\": {\"%s\": {\"backend\": \"mock\"}}}",
			 long_name);
	expect_error(f, text, "name longer than 63 characters");
	free(text);
	/* The first machine is fine and parsed; it must not leak. */
	expect_error(f, "{\"machines\": {\"ok\": {\"kernel\": \"vmlinuz\","
		     "\"disks\": [\"base.img\"], \"qemu_args\": [\"-a\"]},"
		     "\"ctl\": {}}}", ": machines.ctl: reserved name");
}

static void
test_bad_range(void **state)
{
	struct fixture *f = *state;

	expect_machine_error(f, "{\"cpus\": 0}",
			     ": machines.db.cpus: must be between 1 and 64, got 0",
			     NULL);
	expect_machine_error(f, "{\"cpus\": 65}",
			     ": machines.db.cpus: must be between 1 and 64, got 65",
			     NULL);
	expect_machine_error(f, "{\"cpus\": -1}", "got -1", NULL);
	expect_machine_error(f, "{\"cpus\": 99999999999999999999}",
			     ": machines.db.cpus: must be between 1 and 64", NULL);
	expect_machine_error(f, "{\"memory_mib\": 15}",
			     ": machines.db.memory_mib: must be between 16 and "
			     "1048576, got 15", NULL);
	expect_machine_error(f, "{\"memory_mib\": 1048577}",
			     "must be between 16 and 1048576, got 1048577", NULL);
	expect_machine_error(f, "{\"shells\": 0}",
			     ": machines.db.shells: must be between 1 and 16, got 0",
			     NULL);
	expect_machine_error(f, "{\"shells\": 17}",
			     ": machines.db.shells: must be between 1 and 16, got 17",
			     NULL);
	expect_machine_error(f, "{\"timeout\": 0}",
			     ": machines.db.timeout: must be between 1 and "
			     "2147483647, got 0", NULL);
	expect_machine_error(f, "{\"timeout\": -5}", "got -5", NULL);
}

static void
test_bad_choices(void **state)
{
	struct fixture *f = *state;

	expect_machine_error(f, "{\"backend\": \"xen\"}",
			     ": machines.db.backend: unknown backend \"xen\" "
			     "(expected \"qemu\", \"mock\"", NULL);
	expect_machine_error(f, "{\"backend\": \"QEMU\"}",
			     ": machines.db.backend: unknown backend \"QEMU\"",
			     NULL);
	expect_machine_error(f, "{\"accel\": \"hvf\"}",
			     ": machines.db.accel: unknown accelerator \"hvf\" "
			     "(expected \"auto\", \"kvm\" or \"tcg\")", NULL);
	expect_machine_error(f, "{\"shell_channel\": \"serial\"}",
			     ": machines.db.shell_channel: unknown shell channel "
			     "\"serial\" (expected \"virtserialport\" or "
			     "\"virtconsole\")", NULL);
}

static void
test_bad_missing_files(void **state)
{
	struct fixture *f = *state;
	char *want;

	want = xasprintf(": machines.db.kernel: no such file: %s/nope", f->dir);
	expect_machine_error(f, "{\"kernel\": \"nope\"}", want, NULL);
	free(want);

	want = xasprintf(": machines.db.initrd: no such file: %s/initrd.gz",
			 f->dir);
	expect_machine_error(f, "{\"kernel\": \"vmlinuz\", \"initrd\": "
			     "\"./initrd.gz\"}", want, NULL);
	free(want);

	want = xasprintf(": machines.db.disks[1]: no such file: %s/sub/x.img",
			 f->dir);
	expect_machine_error(f, "{\"disks\": [\"base.img\", \"sub/x.img\"]}",
			     want, NULL);
	free(want);

	expect_machine_error(f, "{\"kernel\": \"/nonexistent/attestfs/vmlinuz\"}",
			     ": machines.db.kernel: no such file: "
			     "/nonexistent/attestfs/vmlinuz", NULL);
	/* ENOTDIR reads the same to a user: the file is not there. */
	expect_machine_error(f, "{\"kernel\": \"vmlinuz/x\"}",
			     ": machines.db.kernel: no such file: ", NULL);

	want = xasprintf(": machines.db.start_command: no such file: "
			 "%s/result/bin/run-db-vm", f->dir);
	expect_machine_error(f, "{\"start_command\": "
			     "\"./result/bin/run-db-vm\"}", want, NULL);
	free(want);

	if (geteuid() != 0) {
		want = xasprintf(": machines.db.start_command: not executable: "
				 "%s/not-exec", f->dir);
		expect_machine_error(f, "{\"start_command\": \"./not-exec\"}",
				     want, NULL);
		free(want);
	}
}

static void
test_bad_combinations(void **state)
{
	struct fixture *f = *state;

	/* A pool on the console is started from hvc0: its size is bounded as
	 * any pool's. */
	expect_machine_error(f, "{\"kernel\": \"vmlinuz\", \"shell_channel\": "
			     "\"virtconsole\", \"shells\": 17}",
			     ": machines.db.shells: ", NULL);
	expect_machine_error(f, "{}",
			     ": machines.db: a qemu machine needs \"kernel\", "
			     "\"disks\" or \"start_command\"", NULL);
	expect_machine_error(f, "{\"backend\": \"qemu\", \"disks\": [], "
			     "\"initrd\": \"initrd.img\"}",
			     ": machines.db: a qemu machine needs", NULL);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_defaults, setup, teardown),
		cmocka_unit_test_setup_teardown(test_full, setup, teardown),
		cmocka_unit_test_setup_teardown(test_sorted, setup, teardown),
		cmocka_unit_test_setup_teardown(test_effective_json, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_virtconsole, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_mock_needs_no_files, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_backend_config, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_start_command, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_other_backends, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_parse_string, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_load_relative, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_load_missing_file, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_copy, setup, teardown),
		cmocka_unit_test_setup_teardown(test_vlans, setup, teardown),
		cmocka_unit_test(test_name_is_valid),
		cmocka_unit_test_setup_teardown(test_bad_syntax, setup, teardown),
		cmocka_unit_test_setup_teardown(test_bad_top, setup, teardown),
		cmocka_unit_test_setup_teardown(test_bad_unknown_machine_key,
						setup, teardown),
		cmocka_unit_test_setup_teardown(test_bad_types, setup, teardown),
		cmocka_unit_test_setup_teardown(test_bad_names, setup, teardown),
		cmocka_unit_test_setup_teardown(test_bad_range, setup, teardown),
		cmocka_unit_test_setup_teardown(test_bad_choices, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_bad_missing_files, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_bad_combinations, setup,
						teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
