/*
 * The Firecracker backend's checks and requests (see firecracker.h): its
 * config keys, its command line, and the API calls of a boot, a snapshot
 * and a restore, against the published API (shared/specs/firecracker.yaml).
 */
#include "backends/firecracker.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include <json-c/json.h>

const char *const fc_config_keys[] = { "firecracker", NULL };

static const char *const fc_known_keys[] = { "binary", "log_level",
					     "api_timeout_ms", NULL };
static const char *const fc_levels[] = { "Error", "Warning", "Info", "Debug",
					 "Trace", "Off", NULL };

/* ---- config ------------------------------------------------------------ */

static bool
fc_in_list(const char *s, const char *const *list, bool nocase)
{
	for (; *list; list++)
		if (nocase ? !strcasecmp(s, *list) : !strcmp(s, *list))
			return true;
	return false;
}

/* name in PATH, like execvp will look it up. */
static bool
fc_in_path(const char *name)
{
	const char *path = getenv("PATH"), *p, *end;
	bool found = false;

	for (p = path ? path : "/usr/bin:/bin"; !found && *p; p = end) {
		char *full;

		end = strchrnul(p, ':');
		full = xasprintf("%.*s/%s", (int)(end - p), p, name);
		found = access(full, X_OK) == 0;
		free(full);
		if (*end)
			end++;
	}
	return found;
}

static int
fc_check_binary(struct backend_check *c, const char *bin, bool from_key)
{
	if (strchr(bin, '/')) {
		if (access(bin, X_OK) == 0)
			return 0;
		return backend_check_fail(c, "firecracker.binary", "%s: %s%s",
					  bin, strerror(errno), from_key ? "" :
					  " (from $FC_BINARY)");
	}
	if (fc_in_path(bin))
		return 0;
	return backend_check_fail(c, "firecracker.binary", "%s is not in "
				  "PATH (name the binary here, or set "
				  "$FC_BINARY)", bin);
}

/* One member of "firecracker": {...}, into keys. */
static int
fc_check_key(struct backend_check *c, const char *key, json_object *v,
	     json_object *keys)
{
	char *path = xasprintf("firecracker.%s", key);
	int ret = 0;

	if (!fc_in_list(key, fc_known_keys, false)) {
		ret = backend_check_fail(c, path, "unknown key (known: binary, "
					 "log_level, api_timeout_ms)");
	} else if (!strcmp(key, "api_timeout_ms")) {
		if (!json_object_is_type(v, json_type_int) ||
		    json_object_get_int64(v) < 100 ||
		    json_object_get_int64(v) > 600000)
			ret = backend_check_fail(c, path, "expected an integer "
						 "from 100 to 600000");
	} else if (!json_object_is_type(v, json_type_string) ||
		   !json_object_get_string_len(v) ||
		   strlen(json_object_get_string(v)) !=
		   (size_t)json_object_get_string_len(v)) {
		ret = backend_check_fail(c, path, "expected a non-empty string, "
					 "got %s", backend_json_type(v));
	} else if (!strcmp(key, "log_level") &&
		   !fc_in_list(json_object_get_string(v), fc_levels, true)) {
		ret = backend_check_fail(c, path, "expected one of Error, "
					 "Warning, Info, Debug, Trace, Off");
	}
	free(path);
	if (ret == 0)
		json_object_object_add(keys, key, json_object_get(v));
	return ret;
}

/* "firecracker": {...}: its members, with defaults, into c->own. */
static int
fc_check_keys(struct backend_check *c)
{
	json_object *obj = NULL, *keys = json_object_new_object(), *v;
	const char *env = getenv("FC_BINARY");
	int ret = 0;

	json_object_object_add(c->own, "firecracker", keys);
	if (json_object_object_get_ex(c->obj, "firecracker", &obj) &&
	    !json_object_is_type(obj, json_type_object))
		return backend_check_fail(c, "firecracker", "expected an "
					  "object, got %s",
					  backend_json_type(obj));
	if (obj) {
		json_object_object_foreach(obj, key, val) {
			ret = fc_check_key(c, key, val, keys);
			if (ret < 0)
				return ret;
		}
	}
	if (!json_object_object_get_ex(keys, "binary", &v)) {
		ret = fc_check_binary(c, env && *env ? env : "firecracker",
				      false);
		json_object_object_add(keys, "binary", json_object_new_string(
					       env && *env ? env :
					       "firecracker"));
	} else {
		ret = fc_check_binary(c, json_object_get_string(v), true);
	}
	if (!json_object_object_get_ex(keys, "log_level", NULL))
		json_object_object_add(keys, "log_level",
				       json_object_new_string("Warning"));
	if (!json_object_object_get_ex(keys, "api_timeout_ms", NULL))
		json_object_object_add(keys, "api_timeout_ms",
				       json_object_new_int(FC_DEFAULT_TIMEOUT_MS));
	return ret;
}

/* The first bytes of path, or -errno. */
static ssize_t
fc_read_head(const char *path, unsigned char *buf, size_t len)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	ssize_t n;

	if (fd < 0)
		return -errno;
	n = pread(fd, buf, len, 0);
	close(fd);
	return n < 0 ? -errno : n;
}

/* Firecracker boots an ELF vmlinux (PVH): no bzImage, nothing else. */
static int
fc_check_kernel(struct backend_check *c, const char *kernel)
{
	unsigned char h[0x206] = { 0 };
	ssize_t n = fc_read_head(kernel, h, sizeof(h));

	if (n >= 4 && !memcmp(h, "\177ELF", 4))
		return 0;
	if (n >= 0x206 && !memcmp(h + 0x202, "HdrS", 4))
		return backend_check_fail(c, "kernel", "%s is a bzImage; "
					  "Firecracker boots an uncompressed "
					  "ELF vmlinux", kernel);
	return backend_check_fail(c, "kernel", "%s is not an ELF vmlinux "
				  "(Firecracker boots an uncompressed ELF "
				  "kernel)", kernel);
}

/* Firecracker's block devices are raw files. */
static int
fc_check_disks(struct backend_check *c)
{
	const struct backend_config *cfg = c->cfg;
	unsigned char h[4];
	size_t i;
	int ret = 0;

	for (i = 0; ret == 0 && i < cfg->n_disks; i++) {
		char *key;

		if (fc_read_head(cfg->disks[i], h, 4) != 4 ||
		    memcmp(h, "QFI\xfb", 4))
			continue;
		key = xasprintf("disks[%zu]", i);
		ret = backend_check_fail(c, key, "%s is a qcow2 image; "
					 "Firecracker takes raw images only "
					 "(qemu-img convert -O raw)",
					 cfg->disks[i]);
		free(key);
	}
	return ret;
}

/* What the generic keys ask that Firecracker cannot do. */
static int
fc_check_generic(struct backend_check *c)
{
	const struct backend_config *cfg = c->cfg;
	json_object *v;

	if (cfg->start_command)
		return backend_check_fail(c, "start_command", "a firecracker "
					  "machine boots its kernel itself "
					  "(start scripts are the qemu "
					  "backend's)");
	if (!cfg->kernel)
		return backend_check_fail(c, NULL, "a firecracker machine "
					  "needs \"kernel\" (an uncompressed "
					  "ELF vmlinux)");
	if (cfg->cpus > 32)
		return backend_check_fail(c, "cpus", "Firecracker runs at most "
					  "32 vCPUs");
	if (cfg->shell_console)
		return backend_check_fail(c, "shell_channel", "virtconsole is "
					  "the qemu backend's; a firecracker "
					  "guest's shells run over vsock");
	if (json_object_object_get_ex(c->obj, "vlans", &v) &&
	    json_object_is_type(v, json_type_array) &&
	    json_object_array_length(v) > 0)
		return backend_check_fail(c, "vlans", "networks are not "
					  "supported on firecracker machines "
					  "yet");
	return 0;
}

int
fc_check_config(struct backend_check *c)
{
	int ret = fc_check_keys(c);

	if (ret == 0)
		ret = fc_check_generic(c);
	if (ret == 0)
		ret = backend_check_files(c);
	if (ret == 0)
		ret = fc_check_kernel(c, c->cfg->kernel);
	if (ret == 0)
		ret = fc_check_disks(c);
	return ret;
}

void
fc_keys_get(const struct backend_config *cfg, struct fc_keys *k)
{
	json_object *keys = NULL, *v;

	k->binary = "firecracker";
	k->log_level = "Warning";
	k->api_timeout_ms = FC_DEFAULT_TIMEOUT_MS;
	if (!cfg->own ||
	    !json_object_object_get_ex(cfg->own, "firecracker", &keys))
		return;
	if (json_object_object_get_ex(keys, "binary", &v))
		k->binary = json_object_get_string(v);
	if (json_object_object_get_ex(keys, "log_level", &v))
		k->log_level = json_object_get_string(v);
	if (json_object_object_get_ex(keys, "api_timeout_ms", &v))
		k->api_timeout_ms = (long)json_object_get_int64(v);
}

/* ---- the command line -------------------------------------------------- */

char *
fc_instance_id(const char *name)
{
	char *id = xasprintf("%.64s", *name ? name : "vm");
	char *p;

	for (p = id; *p; p++)
		if (!((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') ||
		      (*p >= '0' && *p <= '9') || *p == '-'))
			*p = '-';
	return id;
}

char **
fc_argv(const struct fc_keys *k, const char *api_path, const char *name,
	const char *log_path)
{
	char **argv = xcalloc(10, sizeof(char *));
	size_t n = 0;

	argv[n++] = xstrdup(k->binary);
	argv[n++] = xstrdup("--api-sock");
	argv[n++] = xstrdup(api_path);
	argv[n++] = xstrdup("--id");
	argv[n++] = fc_instance_id(name);
	argv[n++] = xstrdup("--level");
	argv[n++] = xstrdup(k->log_level);
	if (log_path) {
		argv[n++] = xstrdup("--log-path");
		argv[n++] = xstrdup(log_path);
	}
	return argv;
}

void
fc_argv_free(char **argv)
{
	for (size_t i = 0; argv && argv[i]; i++)
		free(argv[i]);
	free(argv);
}

char *
fc_drive_name(size_t i)
{
	return xasprintf("disk.%zu", i);
}

/* ---- requests ---------------------------------------------------------- */

/* One call, body consumed; the reason prefixed with "firecracker: ". */
static int
fc_call(struct rest_client *api, const char *method, const char *path,
	json_object *body, long timeout_ms, json_object **reply,
	struct aerr *err)
{
	struct aerr e = { "" };
	int ret = rest_call_timeout(api, method, path, body, timeout_ms, NULL,
				    reply, &e);

	json_object_put(body);
	if (ret < 0)
		aerr_set(err, "firecracker: %s", e.msg);
	return ret;
}

static json_object *
fc_obj_str(json_object *o, const char *key, const char *value)
{
	json_object_object_add(o, key, json_object_new_string(value));
	return o;
}

static json_object *
fc_boot_source(const struct backend_config *cfg)
{
	json_object *o = json_object_new_object();
	char *args = xasprintf("%s%s%s", FC_BOOT_ARGS,
			       cfg->append && *cfg->append ? " " : "",
			       cfg->append ? cfg->append : "");

	fc_obj_str(o, "kernel_image_path", cfg->kernel);
	fc_obj_str(o, "boot_args", args);
	if (cfg->initrd)
		fc_obj_str(o, "initrd_path", cfg->initrd);
	free(args);
	return o;
}

static int
fc_put_drive(struct rest_client *api, size_t i, struct aerr *err)
{
	json_object *o = json_object_new_object();
	char *id = xasprintf("disk%zu", i), *path = xasprintf("/drives/%s", id);
	char *file = fc_drive_name(i);
	int ret;

	fc_obj_str(o, "drive_id", id);
	fc_obj_str(o, "path_on_host", file);
	/* root= is the config's "append": no root device of ours. */
	json_object_object_add(o, "is_root_device",
			       json_object_new_boolean(0));
	json_object_object_add(o, "is_read_only", json_object_new_boolean(0));
	ret = fc_call(api, "PUT", path, o, 0, NULL, err);
	free(id);
	free(path);
	free(file);
	return ret;
}

int
fc_api_boot(struct rest_client *api, const struct backend_config *cfg,
	    struct aerr *err)
{
	json_object *o = json_object_new_object();
	size_t i;
	int ret;

	json_object_object_add(o, "vcpu_count", json_object_new_int(cfg->cpus));
	json_object_object_add(o, "mem_size_mib",
			       json_object_new_int(cfg->memory_mib));
	ret = fc_call(api, "PUT", "/machine-config", o, 0, NULL, err);
	if (ret == 0)
		ret = fc_call(api, "PUT", "/boot-source", fc_boot_source(cfg),
			      0, NULL, err);
	for (i = 0; ret == 0 && i < cfg->n_disks; i++)
		ret = fc_put_drive(api, i, err);
	if (ret == 0) {
		o = json_object_new_object();
		json_object_object_add(o, "guest_cid",
				       json_object_new_int(FC_GUEST_CID));
		fc_obj_str(o, "uds_path", FC_VSOCK_NAME);
		ret = fc_call(api, "PUT", "/vsock", o, 0, NULL, err);
	}
	if (ret == 0)
		ret = fc_call(api, "PUT", "/actions",
			      fc_obj_str(json_object_new_object(),
					 "action_type", "InstanceStart"),
			      FC_LONG_TIMEOUT_MS, NULL, err);
	return ret;
}

int
fc_api_load(struct rest_client *api, const char *state, const char *mem,
	    struct aerr *err)
{
	json_object *o = json_object_new_object();
	json_object *backend = json_object_new_object();

	fc_obj_str(backend, "backend_type", "File");
	fc_obj_str(backend, "backend_path", mem);
	fc_obj_str(o, "snapshot_path", state);
	json_object_object_add(o, "mem_backend", backend);
	json_object_object_add(o, "resume_vm", json_object_new_boolean(1));
	return fc_call(api, "PUT", "/snapshot/load", o, FC_LONG_TIMEOUT_MS,
		       NULL, err);
}

int
fc_api_set_state(struct rest_client *api, bool paused, struct aerr *err)
{
	return fc_call(api, "PATCH", "/vm",
		       fc_obj_str(json_object_new_object(), "state",
				  paused ? "Paused" : "Resumed"), 0, NULL, err);
}

int
fc_api_snapshot(struct rest_client *api, const char *state, const char *mem,
		struct aerr *err)
{
	json_object *o = json_object_new_object();

	fc_obj_str(o, "snapshot_type", "Full");
	fc_obj_str(o, "snapshot_path", state);
	fc_obj_str(o, "mem_file_path", mem);
	return fc_call(api, "PUT", "/snapshot/create", o, FC_LONG_TIMEOUT_MS,
		       NULL, err);
}

int
fc_api_ctrl_alt_del(struct rest_client *api, struct aerr *err)
{
	return fc_call(api, "PUT", "/actions",
		       fc_obj_str(json_object_new_object(), "action_type",
				  "SendCtrlAltDel"), 0, NULL, err);
}

char *
fc_api_version(struct rest_client *api)
{
	json_object *reply = NULL, *v;
	struct aerr e;
	char *s = NULL;

	if (fc_call(api, "GET", "/version", NULL, 0, &reply, &e) == 0 &&
	    json_object_object_get_ex(reply, "firecracker_version", &v) &&
	    json_object_is_type(v, json_type_string))
		s = xstrdup(json_object_get_string(v));
	json_object_put(reply);
	return s;
}
