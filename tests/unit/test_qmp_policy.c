/*
 * machine/qmp_policy.c: what <m>/qmp lets through to QEMU. The lists here
 * are written out again on purpose, not read from the policy's tables: a
 * name that slips onto (or off) the allowlist fails a test.
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <json-c/json.h>

#include "machine/qmp_policy.h"

#define REFUSED "; refused without -o host_access"
#define N(a) (sizeof(a) / sizeof((a)[0]))

static char why[512];

/* parse + check, as machine/tx.c does. */
static int
check_json(const char *text, unsigned flags)
{
	json_object *o = NULL;
	int ret;

	ret = qmp_policy_parse(text, strlen(text), &o, why, sizeof(why));
	if (ret < 0) {
		assert_null(o);
		assert_true(why[0]);
		return ret;
	}
	ret = qmp_policy_check(o, flags, why, sizeof(why));
	json_object_put(o);
	if (ret < 0)
		assert_true(why[0]);
	return ret;
}

static int
check_name(const char *name, unsigned flags)
{
	char text[256];

	snprintf(text, sizeof(text), "{\"execute\": \"%s\"}", name);
	return check_json(text, flags);
}

static int
check_args(const char *name, const char *args, unsigned flags)
{
	char text[1024];

	snprintf(text, sizeof(text), "{\"execute\": \"%s\", \"arguments\": %s, "
		 "\"id\": 7}", name, args);
	return check_json(text, flags);
}

/* human-monitor-command with this command line (a C string, JSON-escaped
 * here). */
static int
check_hmp(const char *line, unsigned flags)
{
	json_object *o = json_object_new_object();
	json_object *args = json_object_new_object();
	int ret;

	json_object_object_add(args, "command-line",
			       json_object_new_string(line));
	json_object_object_add(o, "execute",
			       json_object_new_string("human-monitor-command"));
	json_object_object_add(o, "arguments", args);
	ret = check_json(json_object_to_json_string(o), flags);
	json_object_put(o);
	return ret;
}

static const char *const allowed_plain[] = {
	"qmp_capabilities",
	"query-acpi-ospm-status", "query-audiodevs", "query-balloon",
	"query-block", "query-block-exports", "query-block-jobs",
	"query-blockstats", "query-chardev", "query-chardev-backends",
	"query-colo-status", "query-command-line-options", "query-commands",
	"query-cpu-definitions", "query-cpu-model-expansion",
	"query-cpus-fast", "query-cryptodev", "query-current-machine",
	"query-dirty-rate", "query-display-options", "query-dump",
	"query-dump-guest-memory-capability", "query-fdsets",
	"query-hotpluggable-cpus", "query-iothreads", "query-jobs",
	"query-kvm", "query-machines", "query-memdev", "query-memory-devices",
	"query-memory-size-summary", "query-mice", "query-migrate",
	"query-migrate-capabilities", "query-migrate-parameters",
	"query-migrationthreads", "query-name", "query-named-block-nodes",
	"query-pci", "query-pr-managers", "query-qmp-schema", "query-replay",
	"query-rocker", "query-rocker-of-dpa-flows",
	"query-rocker-of-dpa-groups", "query-rocker-ports", "query-rx-filter",
	"query-sev", "query-sev-attestation-report", "query-sev-capabilities",
	"query-sev-launch-measure", "query-sgx", "query-sgx-capabilities",
	"query-spice", "query-stats", "query-stats-schemas", "query-status",
	"query-target", "query-tpm", "query-tpm-models", "query-tpm-types",
	"query-uuid", "query-vcpu-dirty-limit", "query-version",
	"query-vm-generation-id", "query-vnc", "query-vnc-servers",
	"query-xen-replication-status", "query-yank",
	"x-query-irq", "x-query-jit", "x-query-numa", "x-query-opcount",
	"x-query-profile", "x-query-ramblock", "x-query-rdma", "x-query-roms",
	"x-query-usb", "x-query-virtio", "x-query-virtio-queue-element",
	"x-query-virtio-queue-status", "x-query-virtio-status",
	"x-query-virtio-vhost-queue-status",
	"qom-get", "qom-list", "qom-list-types", "qom-list-properties",
	"device-list-properties", "trace-event-get-state",
	"system_reset", "system_powerdown", "system_wakeup", "stop", "cont",
	"inject-nmi", "balloon", "send-key", "input-send-event",
	"set_link", "device_del",
};

/* Every command of QEMU 7.2 that is not on the allowlist, and some
 * spellings that must not pass for allowed ones. */
static const char *const denied[] = {
	"add-fd", "add_client", "announce-self", "block-commit",
	"block-dirty-bitmap-add", "block-dirty-bitmap-clear",
	"block-dirty-bitmap-disable", "block-dirty-bitmap-enable",
	"block-dirty-bitmap-merge", "block-dirty-bitmap-remove",
	"block-export-add", "block-export-del", "block-job-cancel",
	"block-job-complete", "block-job-dismiss", "block-job-finalize",
	"block-job-pause", "block-job-resume", "block-job-set-speed",
	"block-latency-histogram-set", "block-set-write-threshold",
	"block-stream", "block_resize", "block_set_io_throttle",
	"blockdev-add", "blockdev-backup", "blockdev-change-medium",
	"blockdev-close-tray", "blockdev-create", "blockdev-del",
	"blockdev-insert-medium", "blockdev-mirror", "blockdev-open-tray",
	"blockdev-remove-medium", "blockdev-reopen", "blockdev-snapshot",
	"blockdev-snapshot-delete-internal-sync",
	"blockdev-snapshot-internal-sync", "blockdev-snapshot-sync",
	"calc-dirty-rate", "cancel-vcpu-dirty-limit", "change-backing-file",
	"change-vnc-password", "chardev-add", "chardev-change",
	"chardev-remove", "chardev-send-break", "client_migrate_info",
	"closefd", "display-reload", "display-update", "drive-backup",
	"drive-mirror", "dump-guest-memory", "dumpdtb", "eject",
	"expire_password", "getfd", "job-cancel", "job-complete",
	"job-dismiss", "job-finalize", "job-pause", "job-resume", "memsave",
	"migrate", "migrate-continue", "migrate-incoming", "migrate-pause",
	"migrate-recover", "migrate-set-capabilities",
	"migrate-set-parameters", "migrate-start-postcopy", "migrate_cancel",
	"nbd-server-add", "nbd-server-remove", "nbd-server-start",
	"nbd-server-stop", "netdev_add", "netdev_del", "object-add",
	"object-del", "pmemsave", "qom-set", "quit", "remove-fd",
	"replay-break", "replay-delete-break", "replay-seek", "ringbuf-read",
	"ringbuf-write", "rtc-reset-reinjection", "screendump", "set-action",
	"set-numa-node", "set-vcpu-dirty-limit", "set_password",
	"sev-inject-launch-secret", "snapshot-delete", "snapshot-load",
	"snapshot-save", "trace-event-set-state", "transaction",
	"watchdog-set-action", "x-blockdev-amend", "x-blockdev-change",
	"x-blockdev-set-iothread", "x-colo-lost-heartbeat",
	"x-debug-block-dirty-bitmap-sha256", "x-debug-query-block-graph",
	"x-exit-preconfig", "xen-colo-do-checkpoint",
	"xen-load-devices-state", "xen-save-devices-state",
	"xen-set-global-dirty-log", "xen-set-replication", "yank",
	/* no such command, or not this spelling */
	"no-such-command", "QUERY-STATUS", "Screendump", "query-status ",
	" query-status", "query-", "query-anything-new", "x-query-new",
	"system-reset", "device-add", "qmp-capabilities", "human_monitor_command",
};

static void
test_allowed_commands(void **state)
{
	size_t i;

	(void)state;
	for (i = 0; i < N(allowed_plain); i++) {
		if (check_name(allowed_plain[i], 0) != 0)
			fail_msg("%s: %s", allowed_plain[i], why);
		assert_int_equal(check_args(allowed_plain[i], "{}", 0), 0);
	}
	assert_int_equal(check_json("{\"execute\": \"send-key\", \"arguments\": "
				    "{\"keys\": [{\"type\": \"qcode\", \"data\": "
				    "\"ret\"}]}}", 0), 0);
	assert_int_equal(check_json("{\"execute\": \"input-send-event\", "
				    "\"arguments\": {\"events\": [{\"type\": "
				    "\"key\", \"data\": {\"down\": true, \"key\": "
				    "{\"type\": \"qcode\", \"data\": \"a\"}}}]}}",
				    0), 0);
	assert_int_equal(check_json("{\"execute\": \"qom-get\", \"arguments\": "
				    "{\"path\": \"/machine\", \"property\": "
				    "\"type\"}}", 0), 0);
	assert_int_equal(check_json("{\"execute\": \"qom-list\", \"arguments\": "
				    "{\"path\": \"/\"}}", 0), 0);
	/* any id, whitespace around the object */
	assert_int_equal(check_json(" \n{\"execute\": \"query-status\", \"id\": "
				    "{\"a\": [1, \"x\"]}}\r\n\t ", 0), 0);
}

static void
test_denied_commands(void **state)
{
	size_t i;

	(void)state;
	for (i = 0; i < N(denied); i++) {
		if (check_name(denied[i], 0) != -EPERM)
			fail_msg("%s was not refused", denied[i]);
		assert_non_null(strstr(why, REFUSED));
		if (check_args(denied[i], "{\"filename\": \"/tmp/x\"}", 0) !=
		    -EPERM)
			fail_msg("%s with arguments was not refused", denied[i]);
		/* the mount's full host access: only the shape counts */
		if (check_name(denied[i], QMP_POLICY_HOST_ACCESS) != 0)
			fail_msg("%s: refused with host_access: %s", denied[i],
				 why);
	}
}

static void
test_denied_reasons(void **state)
{
	static const struct {
		const char *name, *why;
	} r[] = {
		{ "screendump", "'screendump' writes host files" REFUSED },
		{ "dump-guest-memory", "'dump-guest-memory' writes host files"
		  REFUSED },
		{ "pmemsave", "'pmemsave' writes host files" REFUSED },
		{ "migrate", "'migrate' runs host programs (exec:) and writes "
		  "host files (file:)" REFUSED },
		{ "blockdev-add", "'blockdev-add' opens host files" REFUSED },
		{ "drive-mirror", "'drive-mirror' writes host files" REFUSED },
		{ "netdev_add", "'netdev_add' opens host sockets, tap devices "
		  "and helper programs" REFUSED },
		{ "chardev-add", "'chardev-add' opens host files and sockets"
		  REFUSED },
		{ "object-add", "'object-add' creates objects that open host "
		  "files" REFUSED },
		{ "getfd", "'getfd' takes host file descriptors" REFUSED },
		{ "add-fd", "'add-fd' takes host file descriptors" REFUSED },
		{ "no-such-command", "'no-such-command' is not on the "
		  "allowlist" REFUSED },
	};
	size_t i;

	(void)state;
	for (i = 0; i < N(r); i++) {
		assert_int_equal(check_name(r[i].name, 0), -EPERM);
		assert_string_equal(why, r[i].why);
	}
}

static void
test_shape(void **state)
{
	static const char *const bad[] = {
		"{}",
		"{\"arguments\": {}}",
		"{\"execute\": 1}",
		"{\"execute\": null}",
		"{\"execute\": true}",
		"{\"execute\": [\"query-status\"]}",
		"{\"execute\": {\"name\": \"query-status\"}}",
		"{\"execute\": \"\"}",
		"{\"execute\": \"query-status\\u0000screendump\"}",
		"{\"exec-oob\": \"query-status\"}",
		"{\"execute\": \"query-status\", \"exec-oob\": \"migrate\"}",
		"{\"execute\": \"query-status\", \"control\": {}}",
		"{\"execute\": \"query-status\", \"Arguments\": {}}",
		"{\"execute\": \"query-status\", \"arguments\": []}",
		"{\"execute\": \"query-status\", \"arguments\": \"x\"}",
		"{\"execute\": \"query-status\", \"arguments\": null}",
		"[{\"execute\": \"query-status\"}]",
		"\"query-status\"",
		"42",
	};
	size_t i;

	(void)state;
	for (i = 0; i < N(bad); i++) {
		if (check_json(bad[i], 0) != -EINVAL)
			fail_msg("accepted: %s", bad[i]);
		if (check_json(bad[i], QMP_POLICY_HOST_ACCESS) != -EINVAL)
			fail_msg("accepted with host_access: %s", bad[i]);
	}
	assert_int_equal(check_json("{\"exec-oob\": \"query-status\"}", 0),
			 -EINVAL);
	assert_string_equal(why, "exec-oob is not supported: use execute");
	assert_int_equal(check_json("{\"execute\": \"query-status\", \"x\": 1}",
				    0), -EINVAL);
	assert_string_equal(why, "unexpected key 'x' (expected execute, "
			    "arguments, id)");
}

static void
test_parse(void **state)
{
	static const char *const bad[] = {
		"",
		"   \n",
		"{\"execute\": \"query-status\"",
		"{\"execute\": \"query-status\"} {\"execute\": \"migrate\"}",
		"{\"execute\": \"query-status\"}x",
		"{\"execute\": \"query-status\"}}",
		"not json",
	};
	const char nul[] = "{\"execute\": \"query-status\"}\0{\"execute\": "
			   "\"quit\"}";
	json_object *o = (json_object *)1;
	size_t i;

	(void)state;
	for (i = 0; i < N(bad); i++) {
		if (check_json(bad[i], QMP_POLICY_HOST_ACCESS) != -EINVAL)
			fail_msg("parsed: '%s'", bad[i]);
	}
	/* a NUL byte after the object is something after it too */
	assert_int_equal(qmp_policy_parse(nul, sizeof(nul) - 1, &o, why,
					  sizeof(why)), -EINVAL);
	assert_null(o);
	assert_string_equal(why, "one command per request: something follows "
			    "the JSON object");
}

/* A duplicate key: json-c keeps the last one, which is both what is checked
 * and (written out again by machine/tx.c) what QEMU gets. */
static void
test_duplicate_keys(void **state)
{
	const char *a = "{\"execute\": \"query-status\", \"execute\": "
			"\"screendump\"}";
	const char *b = "{\"execute\": \"screendump\", \"execute\": "
			"\"query-status\"}";
	json_object *o = NULL, *e = NULL;

	(void)state;
	assert_int_equal(check_json(a, 0), -EPERM);
	assert_int_equal(qmp_policy_parse(b, strlen(b), &o, why, sizeof(why)),
			 0);
	assert_int_equal(qmp_policy_check(o, 0, why, sizeof(why)), 0);
	assert_true(json_object_object_get_ex(o, "execute", &e));
	assert_string_equal(json_object_get_string(e), "query-status");
	assert_null(strstr(json_object_to_json_string(o), "screendump"));
	json_object_put(o);
}

static void
test_hmp_allowed(void **state)
{
	static const char *const ok[] = {
		"info status", "  info status", "\tinfo\tstatus",
		" \t info \t status \t", "info", "info ", "info registers -a",
		"info version", "info network", "info block", "info chardev",
		"info qtree", "info mtree -f", "info cpus", "info kvm",
		"info usernet", "info pci", "info name", "info uuid",
		"info mice", "info migrate", "info qom-tree /machine",
		"help", "help info", "sendkey ctrl-alt-delete",
		"sendkey ret 100", "system_reset", "system_powerdown",
		"system_wakeup", "stop", "cont", "set_link vlan1 off",
		"set_link vlan1 on", "device_del kbd0", "mouse_move 10 10",
		"mouse_button 1", "nmi",
	};
	size_t i;

	(void)state;
	for (i = 0; i < N(ok); i++)
		if (check_hmp(ok[i], 0) != 0)
			fail_msg("'%s' refused: %s", ok[i], why);
	assert_int_equal(check_json("{\"execute\": \"human-monitor-command\", "
				    "\"arguments\": {\"command-line\": \"info "
				    "registers\", \"cpu-index\": 0}}", 0), 0);
}

static void
test_hmp_denied(void **state)
{
	static const char *const perm[] = {
		"migrate \"exec:touch /tmp/x\"", "migrate exec:touch /tmp/x",
		"migrate -d exec:sh", " migrate exec:sh", "\tmigrate exec:sh",
		"migrate\texec:sh", "MIGRATE exec:sh", "Migrate exec:sh",
		"migrate_incoming exec:sh", "migrate_cancel",
		"screendump /tmp/x", "SCREENDUMP /tmp/x",
		"dump-guest-memory /tmp/x", "memsave 0 4096 /tmp/x",
		"pmemsave 0 4096 /tmp/x", "dumpdtb /tmp/x", "logfile /tmp/x",
		"log all", "wavcapture /tmp/x.wav", "savevm s1", "loadvm s1",
		"delvm s1", "commit all", "drive_add 0 file=/etc/shadow",
		"drive_backup d /tmp/x", "drive_mirror d /tmp/x",
		"snapshot_blkdev d /tmp/x", "change ide1-cd0 /etc/shadow",
		"eject ide1-cd0", "qemu-io d \"write 0 1\"",
		"chardev-add file,id=c,path=/tmp/x",
		"chardev-change c file,path=/tmp/x",
		"netdev_add tap,id=t,script=/tmp/x",
		"hostfwd_add tcp::2222-:22",
		"object_add memory-backend-file,id=m,mem-path=/tmp/x,size=1M",
		"device_add loader,file=/etc/shadow,addr=0",
		"device_add usb-kbd", "gdbserver tcp::1234", "getfd f",
		"closefd f", "quit", "q", "i 0x60", "x /10x 0", "c", "s",
		"info/x status", "info status/x", "info usbhost",
		"info snapshots", "info roms", "info history",
		"info trace-events", "info STATUS", "INFO status",
		"sendkey/x", "", "   ", "\t", "trace-file on /tmp/x",
		"boot_set c", "balloon 10", "cpu 0",
	};
	static const char *const inval[] = {
		"info status\nmigrate exec:sh", "\nmigrate exec:sh",
		"\vmigrate exec:sh", "\fmigrate exec:sh", "\rmigrate exec:sh",
		"info status\r", "sendkey a\x7f", "info\x1bstatus",
	};
	size_t i;

	(void)state;
	for (i = 0; i < N(perm); i++) {
		if (check_hmp(perm[i], 0) != -EPERM)
			fail_msg("HMP '%s' was not refused (%s)", perm[i], why);
		assert_non_null(strstr(why, REFUSED));
		assert_int_equal(check_hmp(perm[i], QMP_POLICY_HOST_ACCESS),
				 0);
	}
	for (i = 0; i < N(inval); i++)
		if (check_hmp(inval[i], 0) != -EINVAL)
			fail_msg("HMP with a control character: %d", (int)i);
	assert_int_equal(check_hmp("migrate \"exec:touch /tmp/x\"", 0), -EPERM);
	assert_string_equal(why, "HMP 'migrate' runs host programs (exec:) and "
			    "writes host files" REFUSED);
	assert_int_equal(check_hmp("  screendump /tmp/x", 0), -EPERM);
	assert_string_equal(why, "HMP 'screendump' writes host files" REFUSED);
	assert_int_equal(check_hmp("info usbhost", 0), -EPERM);
	assert_string_equal(why, "HMP 'info usbhost' is not on the allowlist"
			    REFUSED);
}

static void
test_hmp_arguments(void **state)
{
	static const char *const bad[] = {
		/* a NUL inside: QEMU would read a shorter line */
		"{\"command-line\": \"info status\\u0000 migrate\"}",
		"{\"command-line\": 1}",
		"{\"command-line\": [\"info status\"]}",
		"{\"command-line\": \"info status\", \"cpu-index\": \"0\"}",
		"{}",
	};
	size_t i;

	(void)state;
	for (i = 0; i < N(bad); i++)
		if (check_args("human-monitor-command", bad[i], 0) != -EINVAL)
			fail_msg("accepted: %s", bad[i]);
	assert_int_equal(check_name("human-monitor-command", 0), -EINVAL);
	assert_int_equal(check_args("human-monitor-command", "{\"command-line\""
				    ": \"info status\", \"file\": \"/tmp/x\"}",
				    0), -EPERM);
}

static void
test_device_add(void **state)
{
	static const char *const ok[] = {
		"{\"driver\": \"usb-kbd\"}",
		"{\"driver\": \"usb-tablet\", \"id\": \"t0\", \"bus\": "
		"\"usb-bus.0\", \"port\": \"2\"}",
		"{\"driver\": \"virtio-net-pci\", \"id\": \"n1\", \"netdev\": "
		"\"vlan1\", \"mac\": \"52:54:00:12:34:56\", \"addr\": 9}",
		"{\"driver\": \"e1000\", \"id\": \"e\"}",
		"{\"driver\": \"virtio-keyboard-pci\", \"id\": \"k\"}",
		"{\"driver\": \"virtio-rng-pci\"}",
	};
	static const char *const perm[] = {
		"{\"driver\": \"loader\", \"file\": \"/etc/shadow\", \"addr\": 0}",
		"{\"driver\": \"usb-kbd\", \"pcap\": \"/tmp/x\"}",
		"{\"driver\": \"virtio-net-pci\", \"romfile\": \"/etc/shadow\"}",
		"{\"driver\": \"vfio-pci\", \"host\": \"00:02.0\"}",
		"{\"driver\": \"usb-host\"}",
		"{\"driver\": \"vhost-vsock-pci\", \"guest-cid\": 3}",
		"{\"driver\": \"virtio-rng-pci\", \"rng\": \"r0\"}",
		"{\"driver\": \"virtserialport\", \"chardev\": \"c\"}",
		"{\"driver\": \"virtio-blk-pci\", \"drive\": \"d\"}",
		"{\"driver\": \"ivshmem-plain\", \"memdev\": \"m\"}",
		"{\"driver\": \"isa-debugcon\"}",
		"{\"driver\": \"USB-KBD\"}",
	};
	static const char *const inval[] = {
		"{}",
		"{\"driver\": 1}",
		"{\"driver\": \"usb-kbd\\u0000x\"}",
		"{\"driver\": \"usb-kbd\", \"id\": {\"a\": 1}}",
		"{\"driver\": \"usb-kbd\", \"id\": [\"a\"]}",
	};
	size_t i;

	(void)state;
	for (i = 0; i < N(ok); i++)
		if (check_args("device_add", ok[i], 0) != 0)
			fail_msg("refused: %s: %s", ok[i], why);
	for (i = 0; i < N(perm); i++) {
		if (check_args("device_add", perm[i], 0) != -EPERM)
			fail_msg("accepted: %s", perm[i]);
		assert_non_null(strstr(why, REFUSED));
		assert_int_equal(check_args("device_add", perm[i],
					    QMP_POLICY_HOST_ACCESS), 0);
	}
	for (i = 0; i < N(inval); i++)
		if (check_args("device_add", inval[i], 0) != -EINVAL)
			fail_msg("accepted: %s", inval[i]);
	assert_int_equal(check_name("device_add", 0), -EINVAL);
}

static void
test_set_link_device_del(void **state)
{
	(void)state;
	assert_int_equal(check_args("set_link", "{\"name\": \"vlan1\", \"up\": "
				    "false}", 0), 0);
	assert_int_equal(check_args("set_link", "{\"name\": \"vlan1\", \"up\": "
				    "true, \"script\": \"/tmp/x\"}", 0), -EPERM);
	assert_int_equal(check_args("set_link", "{\"name\": \"vlan1\", \"up\": "
				    "\"off\"}", 0), -EINVAL);
	assert_int_equal(check_args("set_link", "{\"name\": 5, \"up\": true}",
				    0), -EINVAL);
	assert_int_equal(check_args("device_del", "{\"id\": \"kbd0\"}", 0), 0);
	assert_int_equal(check_args("device_del", "{\"id\": \"kbd0\", "
				    "\"file\": \"/tmp/x\"}", 0), -EPERM);
	assert_int_equal(check_args("device_del", "{\"id\": 1}", 0), -EINVAL);
}

/* A short buffer still gets a terminated (cut) reason. */
static void
test_short_why(void **state)
{
	char small[8];
	json_object *o = json_tokener_parse("{\"execute\": \"screendump\"}");

	(void)state;
	memset(small, 'x', sizeof(small));
	assert_int_equal(qmp_policy_check(o, 0, small, sizeof(small)), -EPERM);
	assert_string_equal(small, "'screen");
	assert_int_equal(qmp_policy_check(o, 0, NULL, 0), -EPERM);
	json_object_put(o);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_allowed_commands),
		cmocka_unit_test(test_denied_commands),
		cmocka_unit_test(test_denied_reasons),
		cmocka_unit_test(test_shape),
		cmocka_unit_test(test_parse),
		cmocka_unit_test(test_duplicate_keys),
		cmocka_unit_test(test_hmp_allowed),
		cmocka_unit_test(test_hmp_denied),
		cmocka_unit_test(test_hmp_arguments),
		cmocka_unit_test(test_device_add),
		cmocka_unit_test(test_set_link_device_del),
		cmocka_unit_test(test_short_why),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
