/*
 * backends/cloud_hypervisor.c's lifecycle against a fake cloud-hypervisor:
 * this very binary, run as `test_chv_launch --api-socket path=P`, serves
 * the API with tests/unit/httpd.h, records every request (one JSON line
 * each in $FAKE_CH_RECORD), listens on the serial and vsock sockets the
 * VmConfig names (serial: a banner, then an echo; vsock: CONNECT/OK, as
 * CH) and writes what vm.snapshot writes. The test plays machine/: it
 * listens on the console socket and takes the vsock channels.
 *
 * What it checks: the requests and their order (vmm.ping, vm.create with
 * the launch's own disk copy, vm.boot; vm.pause, vm.snapshot, vm.resume;
 * vm.restore of a rewritten config.json, vm.resume; vm.power-button,
 * vmm.shutdown), the console both ways, the channels, and CH's error body
 * (an array of strings) as the reason and errno of a failed launch.
 */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>
#include <json-c/json.h>

#include "backends/backend.h"
#include "common/sock.h"
#include "common/util.h"
#include "tests/unit/httpd.h"

static char self_exe[4096];

/* ---- the fake cloud-hypervisor (a child process) ------------------------ */

static struct json_object *fake_created; /* the vm.create body */

static void
fake_record(const struct httpd_req *r)
{
	const char *path = getenv("FAKE_CH_RECORD");
	struct json_object *o = json_object_new_object();
	FILE *f;

	json_object_object_add(o, "method", json_object_new_string(r->method));
	json_object_object_add(o, "path", json_object_new_string(r->path));
	json_object_object_add(o, "body", json_object_new_string(r->body));
	f = path ? fopen(path, "a") : NULL;
	if (f) {
		fprintf(f, "%s\n", json_object_to_json_string_ext(
				o, JSON_C_TO_STRING_PLAIN |
				JSON_C_TO_STRING_NOSLASHESCAPE));
		fclose(f);
	}
	json_object_put(o);
}

/* serial: a banner to each client, then whatever it sends, back; with
 * $FAKE_CH_SERIAL_DEAF a guest that never reads its input and prints
 * "tick" every 20 ms. */
static void *
fake_serial_main(void *arg)
{
	int lfd = (int)(intptr_t)arg, fd;
	char buf[256];
	ssize_t n;

	while ((fd = accept(lfd, NULL, NULL)) >= 0) {
		if (write_all(fd, "fake-ch: serial up\n", 19) < 0) {
			close(fd);
			continue;
		}
		while (getenv("FAKE_CH_SERIAL_DEAF") &&
		       write_all(fd, "tick\n", 5) == 0)
			usleep(20000);
		while ((n = read(fd, buf, sizeof(buf))) > 0)
			if (write_all(fd, buf, (size_t)n) < 0)
				break;
		close(fd);
	}
	return NULL;
}

/* vsock: "CONNECT 1024\n" -> "OK 1073741824\n", then held open. */
static void *
fake_vsock_main(void *arg)
{
	int lfd = (int)(intptr_t)arg, fd;
	char buf[64];
	ssize_t n;

	while ((fd = accept(lfd, NULL, NULL)) >= 0) {
		n = read(fd, buf, sizeof(buf) - 1);
		if (n > 0 && !strncmp(buf, "CONNECT 1024\n", 13) &&
		    write_all(fd, "OK 1073741824\n", 14) == 0)
			continue; /* kept: the dialer's shell */
		close(fd);
	}
	return NULL;
}

static void
fake_listen(const char *path, void *(*fn)(void *))
{
	struct aerr err;
	pthread_t t;
	int fd = sock_listen_unix(path, &err);

	if (fd < 0)
		_exit(4);
	pthread_create(&t, NULL, fn, (void *)(intptr_t)fd);
	pthread_detach(t);
}

static const char *
fake_str(struct json_object *o, const char *a, const char *b)
{
	struct json_object *v;

	if (!json_object_object_get_ex(o, a, &v) ||
	    !json_object_object_get_ex(v, b, &v))
		_exit(5);
	return json_object_get_string(v);
}

/* The sockets of a VmConfig come up as CH's do at boot or restore. */
static void
fake_devices(struct json_object *vm)
{
	fake_listen(fake_str(vm, "serial", "socket"), fake_serial_main);
	fake_listen(fake_str(vm, "vsock", "socket"), fake_vsock_main);
}

static void *
fake_exit_main(void *arg)
{
	usleep(50000); /* the answer goes out first */
	_exit(0);
}

static void
fake_exit_soon(void)
{
	pthread_t t;

	pthread_create(&t, NULL, fake_exit_main, NULL);
}

/* file:///DIR -> DIR */
static const char *
fake_dir(struct json_object *body, const char *key)
{
	struct json_object *v;

	if (!json_object_object_get_ex(body, key, &v))
		_exit(6);
	return json_object_get_string(v) + strlen("file://");
}

static void
fake_put_file(const char *dir, const char *name, const char *text)
{
	char *p = xasprintf("%s/%s", dir, name);

	if (write_file_atomic(p, text, strlen(text)) < 0)
		_exit(7);
	free(p);
}

static void
fake_on_request(struct httpd *h, const struct httpd_req *r)
{
	struct json_object *body = json_tokener_parse(r->body);
	const char *dir;

	fake_record(r);
	if (!strcmp(r->path, "/api/v1/vm.create")) {
		fake_created = body;
		return;
	}
	if (!strcmp(r->path, "/api/v1/vm.boot") && fake_created)
		fake_devices(fake_created);
	if (!strcmp(r->path, "/api/v1/vm.snapshot")) {
		dir = fake_dir(body, "destination_url");
		fake_put_file(dir, "config.json",
			      json_object_to_json_string(fake_created));
		fake_put_file(dir, "state.json", "{}");
		fake_put_file(dir, "memory-ranges", "guest RAM");
	}
	if (!strcmp(r->path, "/api/v1/vm.restore")) {
		char *cfg = xasprintf("%s/config.json",
				      fake_dir(body, "source_url"));

		fake_created = json_object_from_file(cfg);
		free(cfg);
		if (!fake_created)
			_exit(8);
		fake_devices(fake_created);
	}
	if (!strcmp(r->path, "/api/v1/vmm.shutdown") ||
	    (!strcmp(r->path, "/api/v1/vm.power-button") &&
	     getenv("FAKE_CH_POWEROFF")))
		fake_exit_soon();
	if (body != fake_created)
		json_object_put(body);
}

static int
fake_main(int argc, char **argv)
{
	static struct httpd h;
	const char *create = getenv("FAKE_CH_CREATE");
	char *tmp;

	if (argc > 3 && !strcmp(argv[3], "--fail")) {
		fprintf(stderr, "error: unexpected argument '--fail' found\n");
		return 1;
	}
	if (argc < 3 || strncmp(argv[2], "path=", 5))
		return 2;
	/* Served under another name until the answers are queued: the
	 * backend connects as soon as the path exists. */
	tmp = xasprintf("%s.tmp", argv[2] + 5);
	if (httpd_start(&h, tmp) < 0)
		return 2;
	h.on_request = fake_on_request;
	httpd_push(&h, httpd_resp(200, "{\"version\":\"v53.0-fake\","
				  "\"pid\":1}"));
	if (create)
		httpd_push(&h, httpd_resp(400, create));
	if (rename(tmp, argv[2] + 5) < 0)
		return 3;
	for (;;)
		pause();
}

/* ---- the test's side: machine/'s part ---------------------------------- */

struct lfix {
	char *dir;
	char *state;
	char *record;
	char *console;
	int console_fd;          /* listening, as machine/'s */
	char *disk;
	struct json_object *own;
	/* The callbacks' (backend threads): guarded by lock. */
	pthread_mutex_t lock;
	pthread_cond_t cond;
	int channels[8];
	int n_channels;
	int exits;
	int status;
};

static void
on_exited(void *owner, int status)
{
	struct lfix *f = owner;

	pthread_mutex_lock(&f->lock);
	f->exits++;
	f->status = status;
	pthread_cond_broadcast(&f->cond);
	pthread_mutex_unlock(&f->lock);
}

static void
on_vm_event(void *owner, const char *name, const char *detail)
{
}

static void
on_log(void *owner, const char *text)
{
}

static void
on_channel(void *owner, size_t index, int fd)
{
	struct lfix *f = owner;

	pthread_mutex_lock(&f->lock);
	if (f->n_channels < 8)
		f->channels[f->n_channels++] = fd;
	else
		close(fd);
	pthread_cond_broadcast(&f->cond);
	pthread_mutex_unlock(&f->lock);
}

static const struct backend_events events = {
	.exited = on_exited,
	.vm_event = on_vm_event,
	.log = on_log,
	.channel = on_channel,
};

static int
setup(void **state)
{
	struct lfix *f = xcalloc(1, sizeof(*f));
	char tmpl[] = "/tmp/attestfs-chv-XXXXXX";
	struct aerr err;
	struct json_object *ch, *args;

	assert_non_null(mkdtemp(tmpl));
	f->dir = xstrdup(tmpl);
	f->state = xasprintf("%s/state", f->dir);
	f->record = xasprintf("%s/record", f->dir);
	f->console = xasprintf("%s/console.sock", f->dir);
	f->disk = xasprintf("%s/root.img", f->dir);
	assert_int_equal(write_file_atomic(f->disk, "root fs", 7), 0);
	f->console_fd = sock_listen_unix(f->console, &err);
	assert_true(f->console_fd >= 0);
	pthread_mutex_init(&f->lock, NULL);
	pthread_cond_init(&f->cond, NULL);
	f->own = json_object_new_object();
	ch = json_object_new_object();
	args = json_object_new_array();
	json_object_object_add(ch, "binary", json_object_new_string(self_exe));
	json_object_object_add(ch, "args", args);
	/* The fake that powers off on the button exits at once; the wait
	 * ends then, and a loaded host may take seconds to get there. */
	json_object_object_add(ch, "power_button_ms",
			       json_object_new_int(60000));
	json_object_object_add(f->own, "cloud-hypervisor", ch);
	setenv("FAKE_CH_RECORD", f->record, 1);
	unsetenv("FAKE_CH_CREATE");
	unsetenv("FAKE_CH_POWEROFF");
	unsetenv("FAKE_CH_SERIAL_DEAF");
	*state = f;
	return 0;
}

static int
teardown(void **state)
{
	struct lfix *f = *state;
	int i;

	for (i = 0; i < f->n_channels; i++)
		close(f->channels[i]);
	close(f->console_fd);
	json_object_put(f->own);
	assert_int_equal(remove_tree(f->dir), 0);
	free(f->dir);
	free(f->state);
	free(f->record);
	free(f->console);
	free(f->disk);
	free(f);
	return 0;
}

static void
launch_params(struct lfix *f, struct backend_launch *l, const char **disks)
{
	memset(l, 0, sizeof(*l));
	disks[0] = f->disk;
	l->cfg.name = "vm";
	l->cfg.cpus = 2;
	l->cfg.memory_mib = 128;
	l->cfg.kernel = "/k/vmlinux";
	l->cfg.append = "console=ttyS0";
	l->cfg.disks = disks;
	l->cfg.n_disks = 1;
	l->cfg.shells = 2;
	l->cfg.own = f->own;
	l->state_dir = f->state;
	l->console_path = f->console;
	l->n_shells = 2;
	l->accel = "auto";
	l->events = &events;
	l->owner = f;
}

/* The recorded requests: a JSON array of {method, path, body}. */
static struct json_object *
record(struct lfix *f)
{
	struct json_object *a = json_object_new_array();
	char *text = NULL, *line, *save = NULL;
	size_t len;

	if (read_file(f->record, &text, &len) < 0)
		return a;
	for (line = strtok_r(text, "\n", &save); line;
	     line = strtok_r(NULL, "\n", &save))
		json_object_array_add(a, json_tokener_parse(line));
	free(text);
	return a;
}

static const char *
rec_field(struct json_object *a, size_t i, const char *key)
{
	struct json_object *v;

	if (i >= json_object_array_length(a))
		fail_msg("request %zu missing: %s", i,
			 json_object_to_json_string(a));
	assert_true(json_object_object_get_ex(json_object_array_get_idx(a, i),
					      key, &v));
	return json_object_get_string(v);
}

/* Request i was "METHOD PATH". */
static void
assert_req(struct json_object *a, size_t i, const char *method,
	   const char *path)
{
	if (strcmp(rec_field(a, i, "method"), method) ||
	    strcmp(rec_field(a, i, "path"), path))
		fail_msg("request %zu: want %s %s, got %s", i, method, path,
			 json_object_to_json_string(a));
}

static struct json_object *
rec_body(struct json_object *a, size_t i)
{
	return json_tokener_parse(rec_field(a, i, "body"));
}

static const char *
jstr(struct json_object *o, const char *a, const char *b)
{
	struct json_object *v;

	assert_true(json_object_object_get_ex(o, a, &v));
	if (b)
		assert_true(json_object_object_get_ex(v, b, &v));
	return json_object_get_string(v);
}

static void
wait_channels(struct lfix *f, int n)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	ts.tv_sec += 20;
	pthread_mutex_lock(&f->lock);
	while (f->n_channels < n &&
	       pthread_cond_timedwait(&f->cond, &f->lock, &ts) == 0)
		;
	pthread_mutex_unlock(&f->lock);
	assert_true(f->n_channels >= n);
}

static void
wait_exit(struct lfix *f)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	ts.tv_sec += 20;
	pthread_mutex_lock(&f->lock);
	while (!f->exits &&
	       pthread_cond_timedwait(&f->cond, &f->lock, &ts) == 0)
		;
	pthread_mutex_unlock(&f->lock);
	assert_int_equal(f->exits, 1);
}

/* Read from fd until want has come (or 20 s passed). */
static void
expect_bytes(int fd, const char *want)
{
	struct strbuf sb;
	struct pollfd p = { .fd = fd, .events = POLLIN };
	char buf[256];
	ssize_t n;

	sb_init(&sb);
	while (!sb.data || !strstr(sb.data, want)) {
		if (poll(&p, 1, 20000) != 1)
			fail_msg("no \"%s\" on the console: \"%s\"", want,
				 sb.data ? sb.data : "");
		n = read(fd, buf, sizeof(buf));
		if (n <= 0)
			fail_msg("console closed before \"%s\"", want);
		sb_add(&sb, buf, (size_t)n);
	}
	sb_free(&sb);
}

static struct backend *
launch_ok(struct lfix *f, struct backend_launch *l)
{
	const struct backend_ops *ops = &cloud_hypervisor_backend_ops;
	struct backend *b = NULL;
	struct aerr err = { "" };
	int ret = ops->launch(l, &b, &err);

	if (ret < 0)
		fail_msg("launch: %d %s", ret, err.msg);
	return b;
}

static void
test_boot_console_halt(void **state)
{
	const struct backend_ops *ops = &cloud_hypervisor_backend_ops;
	struct lfix *f = *state;
	struct backend_launch l;
	struct json_object *rec, *vm, *disk;
	const char *disks[1];
	struct strbuf info;
	struct backend *b;
	char *text = NULL, *copy;
	size_t len;
	int con;

	launch_params(f, &l, disks);
	setenv("FAKE_CH_POWEROFF", "1", 1);
	b = launch_ok(f, &l);
	rec = record(f);
	assert_req(rec, 0, "GET", "/api/v1/vmm.ping");
	assert_req(rec, 1, "PUT", "/api/v1/vm.create");
	assert_req(rec, 2, "PUT", "/api/v1/vm.boot");
	vm = rec_body(rec, 1);
	assert_string_equal(jstr(vm, "payload", "kernel"), "/k/vmlinux");
	assert_string_equal(jstr(vm, "payload", "cmdline"), "console=ttyS0");
	/* The launch's own copy of the disk, not the base. */
	disk = json_object_array_get_idx(json_object_object_get(vm, "disks"), 0);
	assert_string_not_equal(jstr(disk, "path", NULL), f->disk);
	assert_int_equal(strncmp(jstr(disk, "path", NULL), f->state,
				 strlen(f->state)), 0);
	assert_int_equal(read_file(jstr(disk, "path", NULL), &text, &len), 0);
	assert_string_equal(text, "root fs");
	free(text);
	copy = xstrdup(jstr(disk, "path", NULL));
	json_object_put(vm);
	json_object_put(rec);

	/* The console, both ways, through the backend's splice. */
	con = accept(f->console_fd, NULL, NULL);
	assert_true(con >= 0);
	expect_bytes(con, "fake-ch: serial up\n");
	assert_int_equal(write_all(con, "hello\n", 6), 0);
	expect_bytes(con, "hello\n");
	wait_channels(f, 2);

	sb_init(&info);
	ops->info(b, &info);
	assert_non_null(strstr(info.data, "vmm cloud-hypervisor v53.0-fake\n"));
	assert_non_null(strstr(info.data, "pid "));
	sb_free(&info);
	assert_int_equal(ops->pid(b), ops->pid(b));
	assert_true(ops->pid(b) > 0);

	assert_int_equal(ops->pause(b), 0);
	assert_int_equal(ops->resume(b), 0);
	/* The guest powers off on the button: CH exits, nothing more. */
	assert_int_equal(ops->quit(b), 0);
	wait_exit(f);
	assert_true(WIFEXITED(f->status) && WEXITSTATUS(f->status) == 0);
	rec = record(f);
	assert_req(rec, 3, "PUT", "/api/v1/vm.pause");
	assert_req(rec, 4, "PUT", "/api/v1/vm.resume");
	assert_req(rec, 5, "PUT", "/api/v1/vm.power-button");
	assert_int_equal(json_object_array_length(rec), 6);
	json_object_put(rec);
	ops->destroy(b);
	close(con);
	/* The launch's disk copy went with it. */
	assert_int_equal(access(copy, F_OK), -1);
	free(copy);
}

/* A guest that ignores the power button: vmm.shutdown ends the VMM. */
static void
test_halt_ignored_button(void **state)
{
	const struct backend_ops *ops = &cloud_hypervisor_backend_ops;
	struct lfix *f = *state;
	struct backend_launch l;
	struct json_object *rec;
	const char *disks[1];
	struct backend *b;

	json_object_object_add(json_object_object_get(f->own,
						      "cloud-hypervisor"),
			       "power_button_ms", json_object_new_int(100));
	launch_params(f, &l, disks);
	b = launch_ok(f, &l);
	assert_int_equal(ops->quit(b), 0);
	wait_exit(f);
	rec = record(f);
	assert_req(rec, 3, "PUT", "/api/v1/vm.power-button");
	assert_req(rec, 4, "PUT", "/api/v1/vmm.shutdown");
	json_object_put(rec);
	ops->destroy(b);
}

/* CH's error body, an array of strings, is the reason; 400 is EINVAL. */
static void
test_create_refused(void **state)
{
	const struct backend_ops *ops = &cloud_hypervisor_backend_ops;
	struct lfix *f = *state;
	struct backend_launch l;
	struct backend *b = NULL;
	struct aerr err = { "" };
	const char *disks[1];

	setenv("FAKE_CH_CREATE", "[\"Error from API\",\"The VM could not be "
	       "created\",\"Invalid kernel: not an ELF\"]", 1);
	launch_params(f, &l, disks);
	assert_int_equal(ops->launch(&l, &b, &err), -EINVAL);
	assert_null(b);
	assert_string_equal(err.msg, "cloud-hypervisor: PUT /vm.create: Error "
			    "from API: The VM could not be created: Invalid "
			    "kernel: not an ELF");
	/* No callbacks after a failed launch. */
	assert_int_equal(f->exits, 0);
}

/* A VMM that exits at once: its exit status and its last words. */
static void
test_exits_at_start(void **state)
{
	const struct backend_ops *ops = &cloud_hypervisor_backend_ops;
	struct lfix *f = *state;
	struct backend_launch l;
	struct backend *b = NULL;
	struct aerr err = { "" };
	const char *disks[1];

	json_object_array_add(json_object_object_get(
				      json_object_object_get(f->own,
							     "cloud-hypervisor"),
				      "args"),
			      json_object_new_string("--fail"));
	launch_params(f, &l, disks);
	assert_int_equal(ops->launch(&l, &b, &err), -EIO);
	assert_string_equal(err.msg, "cloud-hypervisor exited (exit status 1): "
			    "error: unexpected argument '--fail' found");
}

/*
 * A guest that does not read its serial port: console input piles up, its
 * output still reaches the console (the splice never blocks on the guest's
 * side; it did, and a full input then stopped the output for good).
 */
static void
test_console_input_not_read(void **state)
{
	const struct backend_ops *ops = &cloud_hypervisor_backend_ops;
	struct lfix *f = *state;
	struct backend_launch l;
	const char *disks[1];
	struct backend *b;
	char buf[65536];
	size_t total = 0;
	int con, ticks = 0;

	setenv("FAKE_CH_SERIAL_DEAF", "1", 1);
	launch_params(f, &l, disks);
	b = launch_ok(f, &l);
	con = accept(f->console_fd, NULL, NULL);
	assert_true(con >= 0);
	expect_bytes(con, "fake-ch: serial up\n");
	memset(buf, 'x', sizeof(buf));
	/* Until the console socket takes no more: the splice stopped
	 * reading it (at most 256 MiB, in case it never does). */
	while (total < (256u << 20)) {
		ssize_t n = send(con, buf, sizeof(buf), MSG_DONTWAIT);

		if (n < 0 && errno == EAGAIN)
			break;
		assert_true(n > 0);
		total += (size_t)n;
	}
	assert_true(total < (256u << 20));
	/* What came meanwhile, then new output. */
	while (recv(con, buf, sizeof(buf), MSG_DONTWAIT) > 0)
		;
	while (ticks < 5) {
		struct pollfd p = { .fd = con, .events = POLLIN };
		ssize_t n;

		if (poll(&p, 1, 5000) != 1)
			fail_msg("the guest's output stopped after %d ticks",
				 ticks);
		n = read(con, buf, sizeof(buf) - 1);
		assert_true(n > 0);
		buf[n] = 0;
		for (char *t = buf; (t = strstr(t, "tick")); t += 4)
			ticks++;
	}
	ops->destroy(b);
	close(con);
	unsetenv("FAKE_CH_SERIAL_DEAF");
}

static void
test_snapshot_restore(void **state)
{
	const struct backend_ops *ops = &cloud_hypervisor_backend_ops;
	struct lfix *f = *state;
	struct backend_launch l;
	struct json_object *rec, *o, *cfg, *first;
	const char *disks[1];
	struct aerr err = { "" };
	struct backend *b, *b2;
	char *snap = xasprintf("%s/snap", f->dir), *p, *text = NULL, *want;
	size_t len;
	int ram_saved = 1;

	launch_params(f, &l, disks);
	b = launch_ok(f, &l);
	wait_channels(f, 2);
	assert_int_equal(mkdir(snap, 0700), 0);
	assert_int_equal(ops->save(b, snap, "/nonexistent/ram", &ram_saved,
				   &err), 0);
	assert_int_equal(ram_saved, 0);
	rec = record(f);
	first = rec_body(rec, 1);
	assert_req(rec, 3, "PUT", "/api/v1/vm.pause");
	assert_req(rec, 4, "PUT", "/api/v1/vm.snapshot");
	assert_req(rec, 5, "PUT", "/api/v1/vm.resume");
	o = rec_body(rec, 4);
	want = xasprintf("file://%s", snap);
	assert_string_equal(jstr(o, "destination_url", NULL), want);
	free(want);
	json_object_put(o);
	json_object_put(rec);
	p = xasprintf("%s/state", snap);
	assert_int_equal(access(p, R_OK), 0);
	free(p);
	p = xasprintf("%s/disk.0.raw", snap);
	assert_int_equal(read_file(p, &text, &len), 0);
	assert_string_equal(text, "root fs");
	free(text);
	free(p);
	assert_int_equal(ops->kill(b), 0);
	wait_exit(f);
	ops->destroy(b);

	/* Restore into a fresh process: its own disk copy and sockets. */
	unlink(f->record);
	l.incoming = p = xasprintf("%s/state", snap);
	b2 = launch_ok(f, &l);
	rec = record(f);
	assert_req(rec, 0, "GET", "/api/v1/vmm.ping");
	assert_req(rec, 1, "PUT", "/api/v1/vm.restore");
	assert_req(rec, 2, "PUT", "/api/v1/vm.resume");
	assert_int_equal(json_object_array_length(rec), 3);
	o = rec_body(rec, 1);
	text = xasprintf("%s/config.json",
			 jstr(o, "source_url", NULL) + strlen("file://"));
	json_object_put(o);
	cfg = json_object_from_file(text);
	free(text);
	assert_non_null(cfg);
	o = json_object_array_get_idx(json_object_object_get(cfg, "disks"), 0);
	assert_int_equal(strncmp(jstr(o, "path", NULL), f->state,
				 strlen(f->state)), 0);
	assert_string_not_equal(jstr(o, "path", NULL),
				jstr(json_object_array_get_idx(
					     json_object_object_get(first,
								    "disks"),
					     0), "path", NULL));
	assert_int_equal(read_file(jstr(o, "path", NULL), &text, &len), 0);
	assert_string_equal(text, "root fs");
	free(text);
	assert_string_not_equal(jstr(cfg, "vsock", "socket"),
				jstr(first, "vsock", "socket"));
	assert_string_not_equal(jstr(cfg, "serial", "socket"),
				jstr(first, "serial", "socket"));
	json_object_put(cfg);
	json_object_put(first);
	json_object_put(rec);
	/* The restored guest's shells come back over vsock. */
	wait_channels(f, 4);
	ops->destroy(b2);
	free(p);
	free(snap);
}

int
main(int argc, char **argv)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_boot_console_halt, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_halt_ignored_button, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_create_refused, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_exits_at_start, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_console_input_not_read,
						setup, teardown),
		cmocka_unit_test_setup_teardown(test_snapshot_restore, setup,
						teardown),
	};
	ssize_t n;

	if (argc > 1 && !strcmp(argv[1], "--api-socket"))
		return fake_main(argc, argv);
	n = readlink("/proc/self/exe", self_exe, sizeof(self_exe) - 1);
	if (n < 0)
		return 1;
	self_exe[n] = 0;
	signal(SIGPIPE, SIG_IGN);
	return cmocka_run_group_tests(tests, NULL, NULL);
}
