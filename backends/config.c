/* Helpers for the backends' check_config hooks (see config.h). */
#include "backends/config.h"

#include <errno.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <json-c/json.h>

int
backend_check_fail(struct backend_check *c, const char *key,
		   const char *fmt, ...)
{
	struct strbuf sb;
	va_list ap;

	sb_init(&sb);
	sb_adds(&sb, c->where);
	if (key)
		sb_addf(&sb, ".%s", key);
	sb_adds(&sb, ": ");
	va_start(ap, fmt);
	aerr_vset_after(c->err, sb.data, fmt, ap);
	va_end(ap);
	sb_free(&sb);
	return -EINVAL;
}

const char *
backend_json_type(const struct json_object *v)
{
	switch (json_object_get_type(v)) {
	case json_type_null:
		return "null";
	case json_type_boolean:
		return "boolean";
	case json_type_double:
		return "number";
	case json_type_int:
		return "integer";
	case json_type_object:
		return "object";
	case json_type_array:
		return "array";
	case json_type_string:
		return "string";
	}
	return "unknown";
}

int
backend_check_strings(struct backend_check *c, const char *key)
{
	struct json_object *v, *copy;
	size_t i, n;

	if (!json_object_object_get_ex(c->obj, key, &v)) {
		json_object_object_add(c->own, key, json_object_new_array());
		return 0;
	}
	if (!json_object_is_type(v, json_type_array))
		return backend_check_fail(c, key, "expected an array of "
					  "strings, got %s",
					  backend_json_type(v));
	n = json_object_array_length(v);
	for (i = 0; i < n; i++) {
		struct json_object *e = json_object_array_get_idx(v, i);
		char *ekey = xasprintf("%s[%zu]", key, i);
		int ret = 0;

		if (!json_object_is_type(e, json_type_string))
			ret = backend_check_fail(c, ekey, "expected a string, "
						 "got %s", backend_json_type(e));
		else if (strlen(json_object_get_string(e)) !=
			 (size_t)json_object_get_string_len(e))
			ret = backend_check_fail(c, ekey, "contains a NUL "
						 "character");
		free(ekey);
		if (ret < 0)
			return ret;
	}
	copy = NULL;
	if (json_object_deep_copy(v, &copy, NULL) < 0)
		abort();
	json_object_object_add(c->own, key, copy);
	return 0;
}

static int
backend_check_file(struct backend_check *c, const char *key, const char *path,
		   int mode)
{
	if (access(path, mode) == 0)
		return 0;
	if (errno == ENOENT || errno == ENOTDIR)
		return backend_check_fail(c, key, "no such file: %s", path);
	if (errno == EACCES && mode == X_OK && access(path, F_OK) == 0)
		return backend_check_fail(c, key, "not executable: %s", path);
	return backend_check_fail(c, key, "%s: %s", path, strerror(errno));
}

int
backend_check_files(struct backend_check *c)
{
	const struct backend_config *cfg = c->cfg;
	size_t i;
	int ret = 0;

	if (cfg->kernel)
		ret = backend_check_file(c, "kernel", cfg->kernel, R_OK);
	if (ret == 0 && cfg->initrd)
		ret = backend_check_file(c, "initrd", cfg->initrd, R_OK);
	for (i = 0; ret == 0 && i < cfg->n_disks; i++) {
		char *key = xasprintf("disks[%zu]", i);

		ret = backend_check_file(c, key, cfg->disks[i], R_OK);
		free(key);
	}
	/* A bare command name is looked up in PATH when it runs. */
	if (ret == 0 && cfg->start_command && strchr(cfg->start_command, '/'))
		ret = backend_check_file(c, "start_command",
					 cfg->start_command, X_OK);
	return ret;
}
