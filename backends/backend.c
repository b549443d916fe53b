/* The backend table and the capability names. */
#include "backends/backend.h"

#include <stdbool.h>
#include <string.h>

#include "backends/qemu.h"

/* The first row is the default of a machine that names none. */
static const struct backend_ops *const backend_table[] = {
	&qemu_backend_ops,
	&mock_backend_ops,
	/* firecracker, cloud-hypervisor: later */
};

const struct backend_ops *
backend_find(const char *name)
{
	const struct backend_ops *ops;
	size_t i;

	for (i = 0; name && (ops = backend_at(i)); i++)
		if (!strcmp(ops->name, name))
			return ops;
	return NULL;
}

const struct backend_ops *
backend_at(size_t i)
{
	if (i >= sizeof(backend_table) / sizeof(backend_table[0]))
		return NULL;
	return backend_table[i];
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
	{ BACKEND_CAP_TAPNET, "tapnet" },
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
