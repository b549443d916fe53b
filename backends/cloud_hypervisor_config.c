/*
 * The Cloud Hypervisor backend's config keys, checked at mount time, and
 * the JSON bodies it sends (shared/specs/cloud-hypervisor.yaml, VmConfig).
 * Pure but for the files the checks look at: no process, no socket.
 *
 * A CH machine boots an uncompressed ELF vmlinux (PVH) with its initrd and
 * raw disks, copied fresh for every boot; its shells are vsock channels;
 * its VLAN NICs are TAPs in the mount's network namespace (tapnet.h).
 * What it cannot have is refused here, with the key and the reason, rather
 * than at its first boot.
 */
#include "backends/cloud_hypervisor.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <json-c/json.h>

#define CHV_KEY "cloud-hypervisor"

const char *const chv_config_keys[] = { CHV_KEY, NULL };

static const char *const chv_own_keys[] = {
	"binary", "args", "power_button_ms", NULL,
};

/* ---- the generic keys ---------------------------------------------------- */

/* What a CH machine cannot be, whatever its own keys say. */
static int
chv_check_generic(struct backend_check *c)
{
	const struct backend_config *cfg = c->cfg;
	struct json_object *v;

	if (cfg->start_command)
		return backend_check_fail(c, "start_command", "cloud-hypervisor "
					  "machines boot \"kernel\" themselves; "
					  "start scripts are for qemu machines");
	if (!cfg->kernel)
		return backend_check_fail(c, NULL, "a cloud-hypervisor machine "
					  "needs \"kernel\" (an uncompressed "
					  "ELF vmlinux)");
	if (json_object_object_get_ex(c->obj, "accel", &v) &&
	    !strcmp(json_object_get_string(v), "tcg"))
		return backend_check_fail(c, "accel", "cloud-hypervisor runs "
					  "guests on KVM only (use \"auto\" or "
					  "\"kvm\", or the qemu backend)");
	if (cfg->shell_console)
		return backend_check_fail(c, "shell_channel", "the shells of a "
					  "cloud-hypervisor machine are vsock "
					  "channels (\"virtserialport\"), not "
					  "its console");
	return 0;
}

/* The first n bytes of path into buf (fewer: the rest zeroed). */
static int
chv_read_head(const char *path, unsigned char *buf, size_t n)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	ssize_t got;

	memset(buf, 0, n);
	if (fd < 0)
		return -errno;
	got = pread(fd, buf, n, 0);
	close(fd);
	return got < 0 ? -errno : 0;
}

/* CH loads an ELF (PVH entry) and nothing else; a bzImage is the usual
 * mistake, since distributions install that as vmlinuz. */
static int
chv_check_kernel(struct backend_check *c)
{
	unsigned char head[0x210];
	int ret = chv_read_head(c->cfg->kernel, head, sizeof(head));

	if (ret < 0)
		return backend_check_fail(c, "kernel", "%s: %s", c->cfg->kernel,
					  strerror(-ret));
	if (!memcmp(head, "\177ELF", 4))
		return 0;
	if (!memcmp(head + 0x202, "HdrS", 4))
		return backend_check_fail(c, "kernel", "%s is a compressed "
					  "bzImage; cloud-hypervisor boots an "
					  "uncompressed ELF vmlinux (PVH): "
					  "extract it with the kernel's "
					  "scripts/extract-vmlinux",
					  c->cfg->kernel);
	return backend_check_fail(c, "kernel", "%s is not an ELF vmlinux "
				  "(cloud-hypervisor boots an uncompressed "
				  "ELF kernel)", c->cfg->kernel);
}

/* Each boot gets a writable raw copy of each disk (sparse, reflinked where
 * the file system can): a qcow2 base would be copied as a file CH would
 * then read as qcow2 with its backing chain, which it refuses by default. */
static int
chv_check_disks(struct backend_check *c)
{
	unsigned char head[4];
	size_t i;
	int ret = 0;

	for (i = 0; ret == 0 && i < c->cfg->n_disks; i++) {
		char *key = xasprintf("disks[%zu]", i);

		ret = chv_read_head(c->cfg->disks[i], head, sizeof(head));
		if (ret < 0)
			ret = backend_check_fail(c, key, "%s: %s",
						 c->cfg->disks[i],
						 strerror(-ret));
		else if (!memcmp(head, "QFI\373", 4))
			ret = backend_check_fail(c, key, "%s is a qcow2 image; "
						 "cloud-hypervisor machines take "
						 "raw images, copied fresh for "
						 "every boot (qemu-img convert "
						 "-O raw)", c->cfg->disks[i]);
		free(key);
	}
	return ret;
}

/* ---- "cloud-hypervisor": {...} ------------------------------------------- */

static int
chv_in_path(const char *name)
{
	const char *path = getenv("PATH");
	char *dirs, *dir, *save = NULL;
	int found = 0;

	dirs = xstrdup(path && *path ? path : "/usr/local/bin:/usr/bin:/bin");
	for (dir = strtok_r(dirs, ":", &save); dir && !found;
	     dir = strtok_r(NULL, ":", &save)) {
		char *p = xasprintf("%s/%s", *dir ? dir : ".", name);

		found = access(p, X_OK) == 0;
		free(p);
	}
	free(dirs);
	return found;
}

/* The binary: the key, else $CH_BINARY, else cloud-hypervisor in PATH. */
static int
chv_check_binary(struct backend_check *c, struct json_object *own,
		 struct json_object *v)
{
	const char *bin = getenv("CH_BINARY"), *from = "CH_BINARY";

	if (v) {
		if (!json_object_is_type(v, json_type_string) ||
		    !json_object_get_string_len(v) ||
		    strlen(json_object_get_string(v)) !=
		    (size_t)json_object_get_string_len(v))
			return backend_check_fail(c, CHV_KEY ".binary",
						  "expected a command name or "
						  "an absolute path, got %s",
						  json_object_to_json_string(v));
		bin = json_object_get_string(v);
		from = "this key";
	} else if (!bin || !*bin) {
		bin = "cloud-hypervisor";
		from = NULL;
	}
	if (strchr(bin, '/')) {
		if (bin[0] != '/')
			return backend_check_fail(c, CHV_KEY ".binary", "%s (from "
						  "%s) is a relative path; give "
						  "an absolute one", bin, from);
		if (access(bin, X_OK) < 0)
			return backend_check_fail(c, CHV_KEY ".binary", "%s (from "
						  "%s): %s", bin, from,
						  strerror(errno));
	} else if (!chv_in_path(bin)) {
		return backend_check_fail(c, CHV_KEY ".binary", "%s is not in "
					  "PATH (set this key or CH_BINARY to "
					  "the cloud-hypervisor binary)", bin);
	}
	json_object_object_add(own, "binary", json_object_new_string(bin));
	return 0;
}

static int
chv_check_args(struct backend_check *c, struct json_object *own,
	       struct json_object *v)
{
	struct json_object *args = json_object_new_array();
	size_t i, n = 0;

	json_object_object_add(own, "args", args);
	if (v && !json_object_is_type(v, json_type_array))
		return backend_check_fail(c, CHV_KEY ".args", "expected an array "
					  "of strings, got %s",
					  backend_json_type(v));
	if (v)
		n = json_object_array_length(v);
	for (i = 0; i < n; i++) {
		struct json_object *e = json_object_array_get_idx(v, i);

		if (!json_object_is_type(e, json_type_string) ||
		    strlen(json_object_get_string(e)) !=
		    (size_t)json_object_get_string_len(e))
			return backend_check_fail(c, CHV_KEY ".args", "[%zu]: "
						  "expected a string without NUL "
						  "characters, got %s", i,
						  json_object_to_json_string(e));
		json_object_array_add(args, json_object_new_string(
						    json_object_get_string(e)));
	}
	return 0;
}

static int
chv_check_power_button(struct backend_check *c, struct json_object *own,
		       struct json_object *v)
{
	int64_t ms = CHV_POWER_BUTTON_MS;

	if (v) {
		if (!json_object_is_type(v, json_type_int))
			return backend_check_fail(c, CHV_KEY ".power_button_ms",
						  "expected an integer, got %s",
						  json_object_to_json_string(v));
		ms = json_object_get_int64(v);
		if (ms < 0 || ms > 600000)
			return backend_check_fail(c, CHV_KEY ".power_button_ms",
						  "%lld is out of range (0 .. "
						  "600000 ms)", (long long)ms);
	}
	json_object_object_add(own, "power_button_ms",
			       json_object_new_int((int)ms));
	return 0;
}

static int
chv_check_own(struct backend_check *c)
{
	struct json_object *in = NULL, *own = json_object_new_object(), *v;
	int ret;

	json_object_object_add(c->own, CHV_KEY, own);
	if (json_object_object_get_ex(c->obj, CHV_KEY, &in) &&
	    !json_object_is_type(in, json_type_object))
		return backend_check_fail(c, CHV_KEY, "expected an object, got "
					  "%s", backend_json_type(in));
	if (in) {
		json_object_object_foreach(in, key, val) {
			size_t i;

			(void)val;
			for (i = 0; chv_own_keys[i]; i++)
				if (!strcmp(key, chv_own_keys[i]))
					break;
			if (!chv_own_keys[i])
				return backend_check_fail(c, CHV_KEY, "unknown "
							  "key \"%s\" (expected "
							  "\"binary\", \"args\" "
							  "or \"power_button_ms\")",
							  key);
		}
	}
	ret = chv_check_binary(c, own, in && json_object_object_get_ex(
					       in, "binary", &v) ? v : NULL);
	if (ret == 0)
		ret = chv_check_args(c, own, in && json_object_object_get_ex(
						     in, "args", &v) ? v : NULL);
	if (ret == 0)
		ret = chv_check_power_button(c, own, in &&
					     json_object_object_get_ex(
						     in, "power_button_ms", &v) ?
					     v : NULL);
	return ret;
}

int
chv_check_config(struct backend_check *c)
{
	int ret = chv_check_generic(c);

	if (ret == 0)
		ret = backend_check_files(c);
	if (ret == 0)
		ret = chv_check_kernel(c);
	if (ret == 0)
		ret = chv_check_disks(c);
	if (ret == 0)
		ret = chv_check_own(c);
	return ret;
}

void
chv_own_get(const struct backend_config *cfg, struct chv_own *own)
{
	struct json_object *o = NULL, *v;
	const char **args;
	size_t i, n = 0;

	memset(own, 0, sizeof(*own));
	own->binary = "cloud-hypervisor";
	own->power_button_ms = CHV_POWER_BUTTON_MS;
	if (cfg->own)
		json_object_object_get_ex(cfg->own, CHV_KEY, &o);
	if (o && json_object_object_get_ex(o, "binary", &v))
		own->binary = json_object_get_string(v);
	if (o && json_object_object_get_ex(o, "power_button_ms", &v))
		own->power_button_ms = json_object_get_int(v);
	if (o && json_object_object_get_ex(o, "args", &v))
		n = json_object_array_length(v);
	args = xcalloc(n + 1, sizeof(*args));
	for (i = 0; i < n; i++)
		args[i] = json_object_get_string(json_object_array_get_idx(v, i));
	own->args = args;
	own->n_args = n;
}

void
chv_own_free(struct chv_own *own)
{
	free((void *)own->args);
	own->args = NULL;
	own->n_args = 0;
}

/* ---- request bodies ------------------------------------------------------ */

static void
chv_add_str(struct json_object *o, const char *key, const char *value)
{
	json_object_object_add(o, key, json_object_new_string(value));
}

/* {"mode": "Socket", "socket": path}: CH listens there, one client. */
static struct json_object *
chv_serial(const char *socket)
{
	struct json_object *o = json_object_new_object();

	chv_add_str(o, "mode", "Socket");
	chv_add_str(o, "socket", socket);
	return o;
}

/* A VLAN NIC: the TAP machine/ made for it, the guest's MAC. */
static struct json_object *
chv_net(const struct backend_nic *n)
{
	struct json_object *o = json_object_new_object();

	chv_add_str(o, "tap", n->tap);
	chv_add_str(o, "mac", n->mac);
	return o;
}

static struct json_object *
chv_disk(const char *path)
{
	struct json_object *d = json_object_new_object();

	chv_add_str(d, "path", path);
	json_object_object_add(d, "readonly", json_object_new_boolean(0));
	/* A raw copy: never probed, so a guest that writes a qcow2 header
	 * into its disk cannot make CH open host files as its backing. */
	chv_add_str(d, "image_type", "Raw");
	return d;
}

struct json_object *
chv_vm_config(const struct chv_vm_params *p)
{
	const struct backend_config *cfg = p->cfg;
	struct json_object *vm = json_object_new_object(), *o, *a;
	size_t i;

	o = json_object_new_object();
	chv_add_str(o, "kernel", cfg->kernel);
	if (cfg->initrd)
		chv_add_str(o, "initramfs", cfg->initrd);
	if (cfg->append)
		chv_add_str(o, "cmdline", cfg->append);
	json_object_object_add(vm, "payload", o);
	o = json_object_new_object();
	json_object_object_add(o, "boot_vcpus", json_object_new_int(cfg->cpus));
	json_object_object_add(o, "max_vcpus", json_object_new_int(cfg->cpus));
	json_object_object_add(vm, "cpus", o);
	o = json_object_new_object();
	json_object_object_add(o, "size", json_object_new_int64(
					     (int64_t)cfg->memory_mib << 20));
	json_object_object_add(vm, "memory", o);
	if (p->n_disks) {
		a = json_object_new_array();
		for (i = 0; i < p->n_disks; i++)
			json_object_array_add(a, chv_disk(p->disks[i]));
		json_object_object_add(vm, "disks", a);
	}
	if (p->n_nics) {
		a = json_object_new_array();
		for (i = 0; i < p->n_nics; i++)
			json_object_array_add(a, chv_net(&p->nics[i]));
		json_object_object_add(vm, "net", a);
	}
	/* The legacy serial port (ttyS0) is the machine's console; the
	 * virtio console cannot be a socket, and the shells are vsock. */
	json_object_object_add(vm, "serial", chv_serial(p->serial_socket));
	o = json_object_new_object();
	chv_add_str(o, "mode", "Off");
	json_object_object_add(vm, "console", o);
	o = json_object_new_object();
	json_object_object_add(o, "cid", json_object_new_int64(CHV_GUEST_CID));
	chv_add_str(o, "socket", p->vsock_socket);
	json_object_object_add(vm, "vsock", o);
	return vm;
}

/* Each saved NIC gets this launch's TAP and MAC (all of them, in order). */
static int
chv_restore_nets(struct json_object *vmcfg, const struct chv_vm_params *p,
		 struct aerr *err)
{
	struct json_object *nets = NULL;
	size_t i, n = 0;

	if (json_object_object_get_ex(vmcfg, "net", &nets) &&
	    json_object_is_type(nets, json_type_array))
		n = json_object_array_length(nets);
	if (n != p->n_nics) {
		aerr_set(err, "the snapshot's config.json has %zu NICs, the "
			 "machine %zu", n, p->n_nics);
		return -EINVAL;
	}
	for (i = 0; i < n; i++) {
		struct json_object *o = json_object_array_get_idx(nets, i);

		if (!json_object_is_type(o, json_type_object)) {
			aerr_set(err, "the snapshot's config.json: net[%zu] is "
				 "not an object", i);
			return -EINVAL;
		}
		chv_add_str(o, "tap", p->nics[i].tap);
		chv_add_str(o, "mac", p->nics[i].mac);
	}
	return 0;
}

int
chv_restore_config(struct json_object *vmcfg, const struct chv_vm_params *p,
		   struct aerr *err)
{
	struct json_object *disks = NULL, *vsock = NULL;
	size_t i, n = 0;

	if (!json_object_is_type(vmcfg, json_type_object)) {
		aerr_set(err, "the snapshot's config.json is not a VmConfig");
		return -EINVAL;
	}
	if (json_object_object_get_ex(vmcfg, "disks", &disks) &&
	    json_object_is_type(disks, json_type_array))
		n = json_object_array_length(disks);
	if (n != p->n_disks) {
		aerr_set(err, "the snapshot's config.json has %zu disks, the "
			 "machine %zu", n, p->n_disks);
		return -EINVAL;
	}
	if (!json_object_object_get_ex(vmcfg, "vsock", &vsock) ||
	    !json_object_is_type(vsock, json_type_object)) {
		aerr_set(err, "the snapshot's config.json has no vsock device");
		return -EINVAL;
	}
	for (i = 0; i < n; i++) {
		struct json_object *d = json_object_array_get_idx(disks, i);

		if (!json_object_is_type(d, json_type_object)) {
			aerr_set(err, "the snapshot's config.json: disks[%zu] "
				 "is not an object", i);
			return -EINVAL;
		}
		chv_add_str(d, "path", p->disks[i]);
	}
	chv_add_str(vsock, "socket", p->vsock_socket);
	json_object_object_add(vmcfg, "serial", chv_serial(p->serial_socket));
	return chv_restore_nets(vmcfg, p, err);
}
