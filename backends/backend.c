/* The backend table and the capability names. */
#include "backends/backend.h"

#include <stdbool.h>
#include <string.h>

#include "backends/qemu.h"

static const struct backend_ops *const backend_table[] = {
	&qemu_backend_ops,
	&mock_backend_ops,
	/* firecracker, cloud-hypervisor: later */
};

const struct backend_ops *
backend_find(const char *name)
{
	size_t i;

	if (!name)
		return NULL;
	for (i = 0; i < sizeof(backend_table) / sizeof(backend_table[0]); i++)
		if (!strcmp(backend_table[i]->name, name))
			return backend_table[i];
	return NULL;
}

static const struct {
	unsigned cap;
	const char *name;
} backend_cap_names[] = {
	{ BACKEND_CAP_PAUSE, "pause" },
	{ BACKEND_CAP_SCREENSHOT, "screenshot" },
	{ BACKEND_CAP_KEYS, "keys" },
	{ BACKEND_CAP_SNAPSHOT, "snapshot" },
	{ BACKEND_CAP_LINKS, "links" },
	{ BACKEND_CAP_FORWARD, "forward" },
	{ BACKEND_CAP_QMP, "qmp" },
};

void
backend_caps_render(unsigned caps, struct strbuf *out)
{
	size_t i;
	bool first = true;

	for (i = 0; i < sizeof(backend_cap_names) / sizeof(backend_cap_names[0]);
	     i++) {
		if (!(caps & backend_cap_names[i].cap))
			continue;
		if (!first)
			sb_adds(out, ",");
		sb_adds(out, backend_cap_names[i].name);
		first = false;
	}
}
