/*
 * The guest's devices over QMP, on a running QEMU machine: the VLAN NICs'
 * links, host port forwards through the user-mode NIC, the screen, keys.
 */
#include "backends/qemu_internal.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int
qemu_set_links(struct backend *b, int up, struct aerr *err)
{
	struct aerr e = { "" };
	json_object *args;
	char name[16];
	size_t i;
	int ret;

	for (i = 0; i < b->n_vlans; i++) {
		snprintf(name, sizeof(name), "vlan%u", b->vlans[i]);
		args = qemu_obj1("name", json_object_new_string(name));
		json_object_object_add(args, "up", json_object_new_boolean(up));
		ret = qmp_execute(b->qmp, "set_link",
				  json_object_to_json_string(args),
				  QEMU_OP_TIMEOUT_MS, NULL, &e);
		json_object_put(args);
		if (ret < 0) {
			aerr_set(err, "set_link vlan%u: %s", b->vlans[i],
				 ret == -EPIPE ? "QEMU is not running" : e.msg);
			return ret == -EPIPE ? -EIO : ret;
		}
	}
	return 0;
}

/* hostfwd_add through HMP: QEMU 7.2 has no QMP command for it. */
int
qemu_forward(struct backend *b, unsigned host_port, unsigned guest_port,
	     struct aerr *err)
{
	struct aerr e = { "" };
	json_object *args = json_object_new_object(), *text;
	char *line, *reply = NULL;
	const char *said;
	size_t n;
	int ret;

	/* A start script names its user-mode netdev itself: use the first. */
	line = xasprintf("hostfwd_add %stcp:127.0.0.1:%u-:%u",
			 b->script ? "" : "user0 ", host_port, guest_port);
	json_object_object_add(args, "command-line",
			       json_object_new_string(line));
	ret = qmp_execute(b->qmp, "human-monitor-command",
			  json_object_to_json_string(args), QEMU_OP_TIMEOUT_MS,
			  &reply, &e);
	json_object_put(args);
	if (ret < 0) {
		aerr_set(err, "%s: %s", line,
			 ret == -EPIPE ? "QEMU is not running" : e.msg);
		free(line);
		return ret == -EPIPE ? -EIO : ret;
	}
	/* HMP says what went wrong as its output; success says nothing. */
	text = json_tokener_parse(reply ? reply : "");
	said = json_object_is_type(text, json_type_string) ?
		       json_object_get_string(text) : "";
	n = strlen(said);
	while (n && (said[n - 1] == '\n' || said[n - 1] == '\r'))
		n--;
	if (n) {
		aerr_set(err, "%s: %.*s", line, (int)n, said);
		ret = strstr(said, "Could not set up") ? -EADDRINUSE : -EIO;
	}
	json_object_put(text);
	free(reply);
	free(line);
	return ret;
}

int
qemu_screenshot(struct backend *b, const char *path, struct aerr *err)
{
	json_object *args = json_object_new_object();

	json_object_object_add(args, "filename", json_object_new_string(path));
	json_object_object_add(args, "format", json_object_new_string("png"));
	return qemu_qmp_args(b, "screendump", args, QEMU_OP_TIMEOUT_MS, NULL,
			     err);
}

int
qemu_send_keys(struct backend *b, const char *const *keys, size_t n,
	       struct aerr *err)
{
	json_object *list = json_object_new_array(), *args;
	size_t i;

	for (i = 0; i < n; i++) {
		json_object *k = json_object_new_object();

		json_object_object_add(k, "type", json_object_new_string("qcode"));
		json_object_object_add(k, "data", json_object_new_string(keys[i]));
		json_object_array_add(list, k);
	}
	args = qemu_obj1("keys", list);
	/* QEMU holds each key 100 ms by default: typing would crawl. */
	json_object_object_add(args, "hold-time", json_object_new_int(20));
	return qemu_qmp_args(b, "send-key", args, QEMU_OP_TIMEOUT_MS, NULL,
			     err);
}
