/*
 * The allowlists behind <m>/qmp (qmp_policy.h). What a test needs from QMP
 * is reading state (query-*, qom-get), input (send-key), power (system_reset)
 * and links (set_link); what reaches the host is writing or opening a path,
 * a socket or a program (screendump, migrate, blockdev-add, chardev-add,
 * netdev_add, object-add, getfd, device_add of a host device ...). A name
 * missing here is refused: QEMU grows new commands of the second kind too.
 *
 *	$ q='{"execute": "screendump", "arguments": {"filename": "/tmp/x"}}'
 *	$ (exec 3<>/vms/a/qmp; printf '%s' "$q" >&3; cat <&3)
 *	cat: -: Operation not permitted
 *	$ tail -1 /vms/a/log
 *	... qmp: 'screendump' writes host files; refused without -o host_access
 */
#include <errno.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "machine/qmp_policy.h"

#define REFUSED "; refused without -o host_access"

typedef int (*qmp_args_fn)(json_object *args, char *why, size_t whylen);

struct qmp_rule {
	const char *name;
	qmp_args_fn check;    /* NULL: no argument can name a host resource */
};

struct qmp_reason {
	const char *name;
	const char *why;
};

static int qmp_args_set_link(json_object *args, char *why, size_t whylen);
static int qmp_args_device_del(json_object *args, char *why, size_t whylen);
static int qmp_args_device_add(json_object *args, char *why, size_t whylen);
static int qmp_args_hmp(json_object *args, char *why, size_t whylen);

/* query-* and x-query-* only report (QEMU 7.2, plus later names). */
static const struct qmp_rule qmp_allowed[] = {
	{ "qmp_capabilities", NULL },
	{ "query-acpi-ospm-status", NULL }, { "query-audiodevs", NULL },
	{ "query-balloon", NULL }, { "query-block", NULL },
	{ "query-block-exports", NULL }, { "query-block-jobs", NULL },
	{ "query-blockstats", NULL }, { "query-chardev", NULL },
	{ "query-chardev-backends", NULL }, { "query-colo-status", NULL },
	{ "query-command-line-options", NULL }, { "query-commands", NULL },
	{ "query-cpu-definitions", NULL }, { "query-cpu-model-expansion", NULL },
	{ "query-cpus-fast", NULL }, { "query-cryptodev", NULL },
	{ "query-current-machine", NULL }, { "query-dirty-rate", NULL },
	{ "query-display-options", NULL }, { "query-dump", NULL },
	{ "query-dump-guest-memory-capability", NULL }, { "query-fdsets", NULL },
	{ "query-hotpluggable-cpus", NULL }, { "query-iothreads", NULL },
	{ "query-jobs", NULL }, { "query-kvm", NULL }, { "query-machines", NULL },
	{ "query-memdev", NULL }, { "query-memory-devices", NULL },
	{ "query-memory-size-summary", NULL }, { "query-mice", NULL },
	{ "query-migrate", NULL }, { "query-migrate-capabilities", NULL },
	{ "query-migrate-parameters", NULL }, { "query-migrationthreads", NULL },
	{ "query-name", NULL }, { "query-named-block-nodes", NULL },
	{ "query-pci", NULL }, { "query-pr-managers", NULL },
	{ "query-qmp-schema", NULL }, { "query-replay", NULL },
	{ "query-rocker", NULL }, { "query-rocker-of-dpa-flows", NULL },
	{ "query-rocker-of-dpa-groups", NULL }, { "query-rocker-ports", NULL },
	{ "query-rx-filter", NULL }, { "query-sev", NULL },
	{ "query-sev-attestation-report", NULL },
	{ "query-sev-capabilities", NULL }, { "query-sev-launch-measure", NULL },
	{ "query-sgx", NULL }, { "query-sgx-capabilities", NULL },
	{ "query-spice", NULL }, { "query-stats", NULL },
	{ "query-stats-schemas", NULL }, { "query-status", NULL },
	{ "query-target", NULL }, { "query-tpm", NULL },
	{ "query-tpm-models", NULL }, { "query-tpm-types", NULL },
	{ "query-uuid", NULL }, { "query-vcpu-dirty-limit", NULL },
	{ "query-version", NULL }, { "query-vm-generation-id", NULL },
	{ "query-vnc", NULL }, { "query-vnc-servers", NULL },
	{ "query-xen-replication-status", NULL }, { "query-yank", NULL },
	{ "x-query-irq", NULL }, { "x-query-jit", NULL },
	{ "x-query-numa", NULL }, { "x-query-opcount", NULL },
	{ "x-query-profile", NULL }, { "x-query-ramblock", NULL },
	{ "x-query-rdma", NULL }, { "x-query-roms", NULL },
	{ "x-query-usb", NULL }, { "x-query-virtio", NULL },
	{ "x-query-virtio-queue-element", NULL },
	{ "x-query-virtio-queue-status", NULL },
	{ "x-query-virtio-status", NULL },
	{ "x-query-virtio-vhost-queue-status", NULL },
	{ "qom-get", NULL }, { "qom-list", NULL }, { "qom-list-types", NULL },
	{ "qom-list-properties", NULL }, { "device-list-properties", NULL },
	{ "trace-event-get-state", NULL },
	{ "system_reset", NULL }, { "system_powerdown", NULL },
	{ "system_wakeup", NULL }, { "stop", NULL }, { "cont", NULL },
	{ "inject-nmi", NULL }, { "balloon", NULL },
	{ "send-key", NULL }, { "input-send-event", NULL },
	{ "set_link", qmp_args_set_link },
	{ "device_del", qmp_args_device_del },
	{ "device_add", qmp_args_device_add },
	{ "human-monitor-command", qmp_args_hmp },
};

/* Why some refused commands are refused; any other gets a general reason. */
static const struct qmp_reason qmp_reasons[] = {
	{ "screendump", "writes host files" },
	{ "dump-guest-memory", "writes host files" },
	{ "pmemsave", "writes host files" },
	{ "memsave", "writes host files" },
	{ "dumpdtb", "writes host files" },
	{ "migrate", "runs host programs (exec:) and writes host files (file:)" },
	{ "migrate-incoming", "runs host programs (exec:) and reads host files" },
	{ "migrate-recover", "opens host sockets" },
	{ "blockdev-add", "opens host files" },
	{ "blockdev-create", "creates host files" },
	{ "blockdev-reopen", "opens host files" },
	{ "blockdev-change-medium", "opens host files" },
	{ "blockdev-snapshot-sync", "creates host files" },
	{ "drive-mirror", "writes host files" },
	{ "drive-backup", "writes host files" },
	{ "blockdev-mirror", "writes host files" },
	{ "blockdev-backup", "writes host files" },
	{ "block-commit", "writes host files" },
	{ "block-stream", "writes host files" },
	{ "change-backing-file", "writes host files" },
	{ "x-blockdev-amend", "writes host files" },
	{ "snapshot-save", "writes host files" },
	{ "snapshot-load", "reads host files" },
	{ "snapshot-delete", "writes host files" },
	{ "transaction", "writes host files" },
	{ "block-export-add", "opens host sockets" },
	{ "nbd-server-start", "opens host sockets" },
	{ "netdev_add", "opens host sockets, tap devices and helper programs" },
	{ "chardev-add", "opens host files and sockets" },
	{ "chardev-change", "opens host files and sockets" },
	{ "object-add", "creates objects that open host files" },
	{ "qom-set", "sets properties that can name host files" },
	{ "getfd", "takes host file descriptors" },
	{ "add-fd", "takes host file descriptors" },
	{ "quit", "ends QEMU behind the machine's back (write halt to ctl)" },
};

/* HMP, through human-monitor-command: words as QEMU 7.2 spells them. */
static const char *const hmp_allowed[] = {
	"info", "help", "sendkey", "system_reset", "system_powerdown",
	"system_wakeup", "stop", "cont", "set_link", "device_del",
	"mouse_move", "mouse_button", "nmi",
};

/* `info` subcommands that only report QEMU's own state. */
static const char *const hmp_info_allowed[] = {
	"balloon", "block", "block-jobs", "blockstats", "chardev", "cpus",
	"dump", "hotpluggable-cpus", "iothreads", "irq", "jit", "kvm", "lapic",
	"mem", "memdev", "memory-devices", "memory_size_summary", "mice",
	"migrate", "mtree", "name", "network", "numa", "pci", "pic", "qdm",
	"qom-tree", "qtree", "registers", "replay", "sev", "sgx", "spice",
	"stats", "status", "tlb", "tpm", "usb", "usernet", "uuid", "version",
	"virtio", "vm-generation-id", "vnc",
};

static const struct qmp_reason hmp_reasons[] = {
	{ "migrate", "runs host programs (exec:) and writes host files" },
	{ "migrate_incoming", "runs host programs (exec:) and reads host files" },
	{ "screendump", "writes host files" },
	{ "dump-guest-memory", "writes host files" },
	{ "memsave", "writes host files" },
	{ "pmemsave", "writes host files" },
	{ "dumpdtb", "writes host files" },
	{ "logfile", "writes host files" },
	{ "wavcapture", "writes host files" },
	{ "savevm", "writes host files" },
	{ "loadvm", "reads host files" },
	{ "delvm", "writes host files" },
	{ "commit", "writes host files" },
	{ "drive_add", "opens host files" },
	{ "drive_backup", "writes host files" },
	{ "drive_mirror", "writes host files" },
	{ "snapshot_blkdev", "creates host files" },
	{ "change", "opens host files" },
	{ "qemu-io", "writes host files" },
	{ "chardev-add", "opens host files and sockets" },
	{ "chardev-change", "opens host files and sockets" },
	{ "netdev_add", "opens host sockets, tap devices and helper programs" },
	{ "hostfwd_add", "opens host sockets (write forward to ctl)" },
	{ "object_add", "creates objects that open host files" },
	{ "device_add", "adds devices that can open host files" },
	{ "gdbserver", "opens host sockets" },
	{ "getfd", "takes host file descriptors" },
	{ "quit", "ends QEMU behind the machine's back (write halt to ctl)" },
	{ "q", "ends QEMU behind the machine's back (write halt to ctl)" },
};

/* device_add: devices with no host side, and properties naming none (not
 * romfile, pcap, chardev, drive, rng, memdev, host ...). */
static const char *const device_drivers[] = {
	"usb-kbd", "usb-mouse", "usb-tablet", "virtio-keyboard-pci",
	"virtio-mouse-pci", "virtio-tablet-pci", "virtio-net-pci", "e1000",
	"rtl8139", "virtio-rng-pci",
};

static const char *const device_props[] = {
	"driver", "id", "bus", "addr", "port", "mac", "netdev",
};

#define N(a) (sizeof(a) / sizeof((a)[0]))

static int
qmp_why(char *why, size_t whylen, int err, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(why, whylen, fmt, ap);
	va_end(ap);
	return err;
}

static int
in_list(const char *const *list, size_t n, const char *s, size_t len)
{
	size_t i;

	for (i = 0; i < n; i++)
		if (strlen(list[i]) == len && !memcmp(list[i], s, len))
			return 1;
	return 0;
}

static const char *
reason_of(const struct qmp_reason *r, size_t n, const char *s, size_t len)
{
	size_t i;

	for (i = 0; i < n; i++)
		if (strlen(r[i].name) == len && !memcmp(r[i].name, s, len))
			return r[i].why;
	return NULL;
}

/* A JSON string without a NUL inside: QEMU would see another string. */
static const char *
plain_string(json_object *o)
{
	const char *s;

	if (!json_object_is_type(o, json_type_string))
		return NULL;
	s = json_object_get_string(o);
	if (strlen(s) != (size_t)json_object_get_string_len(o))
		return NULL;
	return s;
}

int
qmp_policy_parse(const char *text, size_t len, json_object **out,
		 char *why, size_t whylen)
{
	json_tokener *tok;
	json_object *o;
	enum json_tokener_error jerr;
	size_t used;

	*out = NULL;
	if (why && whylen)
		why[0] = '\0';
	if (len > (size_t)INT32_MAX)
		return qmp_why(why, whylen, -EINVAL, "the request is too long");
	tok = json_tokener_new();
	o = json_tokener_parse_ex(tok, text, (int)len);
	jerr = json_tokener_get_error(tok);
	used = json_tokener_get_parse_end(tok);
	json_tokener_free(tok);
	if (!o || jerr != json_tokener_success) {
		json_object_put(o);
		return qmp_why(why, whylen, -EINVAL, "the request is not JSON: %s",
			       jerr == json_tokener_continue ?
			       "it ends early" : json_tokener_error_desc(jerr));
	}
	for (; used < len; used++) {
		if (!strchr(" \t\r\n", text[used]) || !text[used]) {
			json_object_put(o);
			return qmp_why(why, whylen, -EINVAL, "one command per "
				       "request: something follows the JSON "
				       "object");
		}
	}
	if (!json_object_is_type(o, json_type_object)) {
		json_object_put(o);
		return qmp_why(why, whylen, -EINVAL, "the request is not a JSON "
			       "object");
	}
	*out = o;
	return 0;
}

/* Every key of args is one of keys[], of type types[] (same index). */
static int
args_exactly(json_object *args, const char *cmd, const char *const *keys,
	     const json_type *types, size_t n, char *why, size_t whylen)
{
	size_t i;

	json_object_object_foreach(args, key, val) {
		for (i = 0; i < n; i++)
			if (!strcmp(key, keys[i]))
				break;
		if (i == n)
			return qmp_why(why, whylen, -EPERM, "'%s' with argument "
				       "'%s' is not on the allowlist" REFUSED,
				       cmd, key);
		if (!json_object_is_type(val, types[i]) ||
		    (types[i] == json_type_string && !plain_string(val)))
			return qmp_why(why, whylen, -EINVAL, "'%s': argument "
				       "'%s' must be a %s", cmd, key,
				       json_type_to_name(types[i]));
	}
	return 0;
}

static int
qmp_args_set_link(json_object *args, char *why, size_t whylen)
{
	static const char *const keys[] = { "name", "up" };
	static const json_type types[] = { json_type_string,
					   json_type_boolean };

	return args_exactly(args, "set_link", keys, types, N(keys), why,
			    whylen);
}

static int
qmp_args_device_del(json_object *args, char *why, size_t whylen)
{
	static const char *const keys[] = { "id" };
	static const json_type types[] = { json_type_string };

	return args_exactly(args, "device_del", keys, types, N(keys), why,
			    whylen);
}

static int
qmp_args_device_add(json_object *args, char *why, size_t whylen)
{
	json_object *d = NULL;
	const char *driver;

	if (!json_object_object_get_ex(args, "driver", &d) ||
	    !(driver = plain_string(d)))
		return qmp_why(why, whylen, -EINVAL, "'device_add' needs a "
			       "string 'driver'");
	if (!in_list(device_drivers, N(device_drivers), driver,
		     strlen(driver)))
		return qmp_why(why, whylen, -EPERM, "'device_add' of '%.64s' "
			       "may open host files; allowed: usb-kbd, "
			       "usb-mouse, usb-tablet, virtio-keyboard-pci, "
			       "virtio-mouse-pci, virtio-tablet-pci, "
			       "virtio-net-pci, e1000, rtl8139, virtio-rng-pci"
			       REFUSED, driver);
	json_object_object_foreach(args, key, val) {
		if (!in_list(device_props, N(device_props), key, strlen(key)))
			return qmp_why(why, whylen, -EPERM, "'device_add' "
				       "property '%.64s' may name host files; "
				       "allowed: id, bus, addr, port, mac, "
				       "netdev" REFUSED, key);
		if (!plain_string(val) &&
		    !json_object_is_type(val, json_type_int) &&
		    !json_object_is_type(val, json_type_boolean))
			return qmp_why(why, whylen, -EINVAL, "'device_add' "
				       "property '%.64s' must be a string, a "
				       "number or a boolean", key);
	}
	return 0;
}

static int
hmp_blank(char c)
{
	return c == ' ' || c == '\t';
}

/*
 * QEMU splits a command line as: blanks, a word up to a blank or '/', and
 * for info a second word the same way. Taking words up to a blank only and
 * comparing them whole, case and all, is at least as strict: "info/x",
 * "INFO" and "migrate\t" never match a name of the allowlist by accident.
 */
static int
hmp_check(const char *line, char *why, size_t whylen)
{
	const char *p, *word, *reason;
	size_t n;

	for (p = line; *p; p++)
		if (((unsigned char)*p < 0x20 && *p != '\t') || *p == 0x7f)
			return qmp_why(why, whylen, -EINVAL, "HMP: the command "
				       "line holds a control character");
	for (p = line; hmp_blank(*p); p++)
		;
	for (word = p, n = 0; word[n] && !hmp_blank(word[n]); n++)
		;
	if (!in_list(hmp_allowed, N(hmp_allowed), word, n)) {
		reason = reason_of(hmp_reasons, N(hmp_reasons), word, n);
		return qmp_why(why, whylen, -EPERM, "HMP '%.*s' %s" REFUSED,
			       (int)(n > 64 ? 64 : n), word,
			       reason ? reason : "is not on the allowlist");
	}
	if (n != 4 || memcmp(word, "info", 4))
		return 0;
	for (p = word + n; hmp_blank(*p); p++)
		;
	for (word = p, n = 0; word[n] && !hmp_blank(word[n]); n++)
		;
	if (n && !in_list(hmp_info_allowed, N(hmp_info_allowed), word, n))
		return qmp_why(why, whylen, -EPERM, "HMP 'info %.*s' is not on "
			       "the allowlist" REFUSED,
			       (int)(n > 64 ? 64 : n), word);
	return 0;
}

static int
qmp_args_hmp(json_object *args, char *why, size_t whylen)
{
	static const char *const keys[] = { "command-line", "cpu-index" };
	static const json_type types[] = { json_type_string, json_type_int };
	json_object *line = NULL;
	int ret;

	ret = args_exactly(args, "human-monitor-command", keys, types, N(keys),
			   why, whylen);
	if (ret < 0)
		return ret;
	if (!json_object_object_get_ex(args, "command-line", &line))
		return qmp_why(why, whylen, -EINVAL, "'human-monitor-command' "
			       "needs a 'command-line'");
	return hmp_check(json_object_get_string(line), why, whylen);
}

/* The request's shape, whatever the mount grants. */
static int
qmp_shape(json_object *cmd, const char **name, json_object **args,
	  char *why, size_t whylen)
{
	json_object *exec = NULL;

	*args = NULL;
	if (!json_object_is_type(cmd, json_type_object))
		return qmp_why(why, whylen, -EINVAL, "the request is not a JSON "
			       "object");
	json_object_object_foreach(cmd, key, val) {
		if (!strcmp(key, "exec-oob"))
			return qmp_why(why, whylen, -EINVAL, "exec-oob is not "
				       "supported: use execute");
		if (strcmp(key, "execute") && strcmp(key, "arguments") &&
		    strcmp(key, "id"))
			return qmp_why(why, whylen, -EINVAL, "unexpected key "
				       "'%.64s' (expected execute, arguments, "
				       "id)", key);
		(void)val;
	}
	if (!json_object_object_get_ex(cmd, "execute", &exec))
		return qmp_why(why, whylen, -EINVAL, "the request has no "
			       "'execute'");
	*name = plain_string(exec);
	if (!*name || !**name)
		return qmp_why(why, whylen, -EINVAL, "'execute' must be a "
			       "command name (a non-empty string)");
	if (json_object_object_get_ex(cmd, "arguments", args) &&
	    !json_object_is_type(*args, json_type_object))
		return qmp_why(why, whylen, -EINVAL, "'arguments' must be a "
			       "JSON object");
	return 0;
}

int
qmp_policy_check(json_object *cmd, unsigned flags, char *why, size_t whylen)
{
	const char *name = NULL, *reason;
	json_object *args, *empty;
	size_t i;
	int ret;

	if (why && whylen)
		why[0] = '\0';
	ret = qmp_shape(cmd, &name, &args, why, whylen);
	if (ret < 0 || (flags & QMP_POLICY_HOST_ACCESS))
		return ret;
	for (i = 0; i < N(qmp_allowed); i++)
		if (!strcmp(qmp_allowed[i].name, name))
			break;
	if (i == N(qmp_allowed)) {
		reason = reason_of(qmp_reasons, N(qmp_reasons), name,
				   strlen(name));
		return qmp_why(why, whylen, -EPERM, "'%.64s' %s" REFUSED, name,
			       reason ? reason : "is not on the allowlist");
	}
	if (!qmp_allowed[i].check)
		return 0;
	if (args)
		return qmp_allowed[i].check(args, why, whylen);
	empty = json_object_new_object();
	ret = qmp_allowed[i].check(empty, why, whylen);
	json_object_put(empty);
	return ret;
}
