/*
 * What is done with a parsed machine config: copied (a clone gets its own),
 * freed, shown as config.json, and translated once into the backend's own
 * struct backend_config. Parsing and checking live in config.c.
 */
#include "machine/config.h"

#include <stdlib.h>
#include <string.h>

#include <json-c/json.h>

#include "backends/backend.h"

void
config_strv_free(char **v, size_t n)
{
	size_t i;

	for (i = 0; i < n; i++)
		free(v[i]);
	free(v);
}

void
machine_config_free(struct machine_config *mc)
{
	if (!mc)
		return;
	free(mc->name);
	free(mc->backend);
	free(mc->kernel);
	free(mc->initrd);
	free(mc->append);
	config_strv_free(mc->disks, mc->n_disks);
	free(mc->accel);
	free(mc->start_command);
	free(mc->vlans);
	free(mc->json);
	json_object_put(mc->backend_keys);
	memset(mc, 0, sizeof(*mc));
}

void
config_free(struct attest_config *cfg)
{
	size_t i;

	if (!cfg)
		return;
	for (i = 0; i < cfg->n_machines; i++)
		machine_config_free(&cfg->machines[i]);
	free(cfg->machines);
	free(cfg->path);
	memset(cfg, 0, sizeof(*cfg));
}

static char *
strdup_or_null(const char *s)
{
	return s ? xstrdup(s) : NULL;
}

static char **
strv_copy(char **v, size_t n)
{
	char **copy;
	size_t i;

	if (!v)
		return NULL;
	copy = xcalloc(n + 1, sizeof(*copy));
	for (i = 0; i < n; i++)
		copy[i] = xstrdup(v[i]);
	return copy;
}

void
machine_config_copy(struct machine_config *dst,
		    const struct machine_config *src)
{
	*dst = *src;
	dst->name = strdup_or_null(src->name);
	dst->backend = strdup_or_null(src->backend);
	dst->kernel = strdup_or_null(src->kernel);
	dst->initrd = strdup_or_null(src->initrd);
	dst->append = strdup_or_null(src->append);
	dst->disks = strv_copy(src->disks, src->n_disks);
	dst->accel = strdup_or_null(src->accel);
	dst->start_command = strdup_or_null(src->start_command);
	dst->backend_keys = NULL;
	if (src->backend_keys &&
	    json_object_deep_copy(src->backend_keys, &dst->backend_keys,
				  NULL) < 0)
		abort(); /* out of memory */
	dst->vlans = NULL;
	if (src->vlans) {
		dst->vlans = xcalloc(src->n_vlans + 1, sizeof(*dst->vlans));
		memcpy(dst->vlans, src->vlans,
		       src->n_vlans * sizeof(*dst->vlans));
	}
	dst->json = strdup_or_null(src->json);
}

static void
add_string(struct json_object *o, const char *key, const char *val)
{
	if (val)
		json_object_object_add(o, key, json_object_new_string(val));
}

static void
add_strv(struct json_object *o, const char *key, char **v, size_t n)
{
	struct json_object *a = json_object_new_array();
	size_t i;

	for (i = 0; i < n; i++)
		json_object_array_add(a, json_object_new_string(v[i]));
	json_object_object_add(o, key, a);
}

static void
add_vlans(struct json_object *o, const unsigned *vlans, size_t n)
{
	struct json_object *a = json_object_new_array();
	size_t i;

	for (i = 0; i < n; i++)
		json_object_array_add(a, json_object_new_int((int)vlans[i]));
	json_object_object_add(o, "vlans", a);
}

static void
add_backend_keys(struct json_object *o, struct json_object *own)
{
	if (!own)
		return;
	json_object_object_foreach(own, key, v) {
		struct json_object *copy = NULL;

		if (v && json_object_deep_copy(v, &copy, NULL) < 0)
			abort(); /* out of memory */
		json_object_object_add(o, key, copy);
	}
}

void
machine_config_render_json(struct machine_config *mc)
{
	struct json_object *o = json_object_new_object();
	const char *s;

	add_string(o, "name", mc->name);
	add_string(o, "backend", mc->backend);
	json_object_object_add(o, "cpus", json_object_new_int(mc->cpus));
	json_object_object_add(o, "memory_mib",
			       json_object_new_int(mc->memory_mib));
	add_string(o, "kernel", mc->kernel);
	add_string(o, "initrd", mc->initrd);
	add_string(o, "append", mc->append);
	add_strv(o, "disks", mc->disks, mc->n_disks);
	add_string(o, "accel", mc->accel);
	add_string(o, "start_command", mc->start_command);
	add_backend_keys(o, mc->backend_keys);
	json_object_object_add(o, "shells", json_object_new_int(mc->shells));
	add_string(o, "shell_channel",
		   mc->shell_channel == SHELL_CHANNEL_CONSOLE ?
		   "virtconsole" : "virtserialport");
	if (mc->timeout > 0)
		json_object_object_add(o, "timeout",
				       json_object_new_int(mc->timeout));
	add_vlans(o, mc->vlans, mc->n_vlans);
	json_object_object_add(o, "guest_agent",
			       json_object_new_boolean(mc->guest_agent));
	/* Paths are the point of this file: "\/nix\/store" helps nobody. */
	s = json_object_to_json_string_ext(o, JSON_C_TO_STRING_PRETTY |
					   JSON_C_TO_STRING_SPACED |
					   JSON_C_TO_STRING_NOSLASHESCAPE);
	free(mc->json);
	mc->json = xasprintf("%s\n", s);
	json_object_put(o);
}

void
machine_backend_config(const struct machine_config *mc,
		       struct backend_config *out)
{
	memset(out, 0, sizeof(*out));
	out->name = mc->name;
	out->cpus = mc->cpus;
	out->memory_mib = mc->memory_mib;
	out->kernel = mc->kernel;
	out->initrd = mc->initrd;
	out->append = mc->append;
	out->disks = (const char *const *)mc->disks;
	out->n_disks = mc->n_disks;
	out->start_command = mc->start_command;
	out->shells = mc->shells;
	out->shell_console = mc->shell_channel == SHELL_CHANNEL_CONSOLE;
	out->own = mc->backend_keys;
}
