/*
 * The JSON configuration (machine/config.c), as machines.json gives it.
 * Beyond the sanitizers: a machine's effective configuration (its config
 * file in the tree) minus "name" is itself a valid machine entry that
 * renders the same, and a copy (what a clone starts from) renders the same.
 */
#include <json-c/json.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "machine/config.h"
#include "tests/fuzz/fuzz.h"

static void
check_roundtrip(const struct machine_config *mc)
{
	struct json_object *o = json_tokener_parse(mc->json), *top, *ms;
	struct attest_config again;
	struct machine_config copy;
	struct aerr err = { "" };
	char *text;

	if (!o)
		abort();
	json_object_object_del(o, "name");
	top = json_object_new_object();
	ms = json_object_new_object();
	json_object_object_add(ms, mc->name, o);
	json_object_object_add(top, "machines", ms);
	text = xstrdup(json_object_to_json_string(top));
	json_object_put(top);
	if (config_parse(text, "/tmp/again.json", "/tmp", &again, &err) < 0) {
		fprintf(stderr, "rendered %s\nrejected: %s\n", mc->json, err.msg);
		abort();
	}
	if (again.n_machines != 1 || strcmp(again.machines[0].json, mc->json)) {
		fprintf(stderr, "rendered %s\nagain %s\n", mc->json,
			again.n_machines ? again.machines[0].json : "(none)");
		abort();
	}
	config_free(&again);
	free(text);
	machine_config_copy(&copy, mc);
	machine_config_render_json(&copy);
	if (strcmp(copy.json, mc->json))
		abort();
	machine_config_free(&copy);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct attest_config cfg;
	struct aerr err = { "" };
	char *text;
	size_t i;

	/* config_load refuses a NUL byte before it parses */
	if (memchr(data, '\0', size))
		return 0;
	text = xmalloc(size + 1);
	memcpy(text, data, size);
	text[size] = '\0';
	if (config_parse(text, "/tmp/machines.json", "/tmp", &cfg, &err) == 0) {
		for (i = 0; i < cfg.n_machines; i++)
			check_roundtrip(&cfg.machines[i]);
		config_free(&cfg);
	} else if (!err.msg[0]) {
		abort();  /* a refusal says why */
	}
	free(text);
	return 0;
}
