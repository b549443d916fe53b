/*
 * backends/mock.c: the host's /bin/sh plays the guest behind sockets the
 * test listens on, as machine/ does.
 */
#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <sched.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>

#include "backends/backend.h"
#include "common/util.h"

#define BANNER "Spawning backdoor root shell...\n"
/* How long a test waits for what must come (an event, a connection, an
 * EOF): a loaded two-core host (CI) may stall a thread for seconds, so only
 * a hang should exceed it; the waits end as soon as it comes. */
#define WAIT_MS 60000

struct rec {
	pthread_mutex_t lock;
	struct strbuf events;
	int exited;
	int status;
};

static struct rec rec = { .lock = PTHREAD_MUTEX_INITIALIZER };

static void
on_exited(void *owner, int status)
{
	pthread_mutex_lock(&rec.lock);
	rec.exited++;
	rec.status = status;
	sb_adds(&rec.events, "exited\n");
	pthread_mutex_unlock(&rec.lock);
}

static void
on_vm_event(void *owner, const char *name, const char *detail)
{
	pthread_mutex_lock(&rec.lock);
	sb_addf(&rec.events, "%s %s\n", name, detail);
	pthread_mutex_unlock(&rec.lock);
}

static void
on_log(void *owner, const char *text)
{
}

static const struct backend_events events = {
	.exited = on_exited,
	.vm_event = on_vm_event,
	.log = on_log,
};

static bool
rec_wait_for(const char *s, int ms)
{
	int64_t end = now_mono_ms() + ms;
	bool ok;

	pthread_mutex_lock(&rec.lock);
	while (!(ok = rec.events.data && strstr(rec.events.data, s)) &&
	       now_mono_ms() < end) {
		pthread_mutex_unlock(&rec.lock);
		usleep(5000);
		pthread_mutex_lock(&rec.lock);
	}
	pthread_mutex_unlock(&rec.lock);
	return ok;
}

struct fx {
	char dir[64];
	char *console;
	char *shell[2];
	int console_lfd;
	int shell_lfd[2];
	const char *shells[2];
	struct backend_launch l;
};

static int
listen_at(const char *path)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);

	snprintf(sa.sun_path, sizeof(sa.sun_path), "%s", path);
	assert_int_equal(bind(fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
	assert_int_equal(listen(fd, 4), 0);
	return fd;
}

static int
accept_within(int lfd, int ms)
{
	struct pollfd p = { .fd = lfd, .events = POLLIN };

	if (poll(&p, 1, ms) != 1)
		return -1;
	return accept4(lfd, NULL, NULL, SOCK_CLOEXEC);
}

/* Read until the text read so far ends with want (or time runs out). */
static bool
read_until(int fd, const char *want, int ms, struct strbuf *got)
{
	int64_t end = now_mono_ms() + ms;
	size_t wl = strlen(want);

	for (;;) {
		struct pollfd p = { .fd = fd, .events = POLLIN };
		int64_t left = end - now_mono_ms();
		char buf[512];
		ssize_t n;

		if (got->len >= wl && !memcmp(got->data + got->len - wl, want,
					      wl))
			return true;
		if (left <= 0 || poll(&p, 1, (int)left) != 1)
			return false;
		n = read(fd, buf, sizeof(buf));
		if (n <= 0)
			return false;
		sb_add(got, buf, (size_t)n);
	}
}

static bool
expect(int fd, const char *want)
{
	struct strbuf got;
	bool ok;

	sb_init(&got);
	ok = read_until(fd, want, WAIT_MS, &got);
	if (!ok)
		print_message("wanted '%s', got '%s'\n", want,
			      got.data ? got.data : "");
	sb_free(&got);
	return ok;
}

/* True when fd reaches EOF within ms. */
static bool
eof_within(int fd, int ms)
{
	int64_t end = now_mono_ms() + ms;

	for (;;) {
		struct pollfd p = { .fd = fd, .events = POLLIN };
		int64_t left = end - now_mono_ms();
		char buf[256];

		if (left <= 0 || poll(&p, 1, (int)left) != 1)
			return false;
		if (read(fd, buf, sizeof(buf)) <= 0)
			return true;
	}
}

static void
say(int fd, const char *s)
{
	assert_int_equal(write_all(fd, s, strlen(s)), 0);
}

static int
fx_setup(void **state)
{
	struct fx *f = xcalloc(1, sizeof(*f));
	int i;

	snprintf(f->dir, sizeof(f->dir), "/tmp/attestfs-mock-XXXXXX");
	assert_non_null(mkdtemp(f->dir));
	f->console = xasprintf("%s/console.sock", f->dir);
	f->console_lfd = listen_at(f->console);
	for (i = 0; i < 2; i++) {
		f->shell[i] = xasprintf("%s/shell%d.sock", f->dir, i);
		f->shell_lfd[i] = listen_at(f->shell[i]);
		f->shells[i] = f->shell[i];
	}
	f->l.cfg.name = "m1";
	f->l.cfg.cpus = 1;
	f->l.cfg.memory_mib = 256;
	f->l.cfg.shells = 2;
	f->l.state_dir = f->dir;
	f->l.console_path = f->console;
	f->l.shell_paths = f->shells;
	f->l.n_shells = 2;
	f->l.accel = "tcg";
	f->l.events = &events;
	f->l.owner = f;
	pthread_mutex_lock(&rec.lock);
	sb_free(&rec.events);
	rec.exited = 0;
	rec.status = -1;
	pthread_mutex_unlock(&rec.lock);
	*state = f;
	return 0;
}

static int
fx_teardown(void **state)
{
	struct fx *f = *state;
	int i;

	close(f->console_lfd);
	for (i = 0; i < 2; i++) {
		close(f->shell_lfd[i]);
		free(f->shell[i]);
	}
	remove_tree(f->dir);
	free(f->console);
	free(f);
	return 0;
}

static void
test_shell_roundtrip_and_kill(void **state)
{
	struct fx *f = *state;
	struct backend *b = NULL;
	struct aerr err = { "" };
	struct strbuf info;
	int cfd, s0, s1;
	pid_t pid;
	char *want;

	assert_int_equal(mock_backend_ops.launch(&f->l, &b, &err), 0);
	pid = mock_backend_ops.pid(b);
	assert_true(pid > 0);
	assert_int_equal(kill(pid, 0), 0);
	sb_init(&info);
	mock_backend_ops.info(b, &info);
	want = xasprintf("pid %d\n", (int)pid);
	assert_string_equal(info.data, want);
	free(want);
	sb_free(&info);

	cfd = accept_within(f->console_lfd, WAIT_MS);
	assert_true(cfd >= 0);
	assert_true(expect(cfd, "mock: booted m1\n"));
	s0 = accept_within(f->shell_lfd[0], WAIT_MS);
	s1 = accept_within(f->shell_lfd[1], WAIT_MS);
	assert_true(s0 >= 0 && s1 >= 0);
	assert_true(expect(s0, BANNER));
	assert_true(expect(s1, BANNER));
	say(s0, "echo hi\n");
	assert_true(expect(s0, "hi\n"));
	say(s1, "echo two; echo err >&2\n");
	assert_true(expect(s1, "two\n"));
	assert_true(expect(cfd, "err\n")); /* stderr goes to the console */

	assert_int_equal(mock_backend_ops.kill(b), 0);
	assert_true(rec_wait_for("exited\n", WAIT_MS));
	pthread_mutex_lock(&rec.lock);
	assert_int_equal(rec.exited, 1);
	assert_true(WIFSIGNALED(rec.status));
	assert_int_equal(WTERMSIG(rec.status), SIGKILL);
	pthread_mutex_unlock(&rec.lock);
	/* everything is gone: the connections end */
	assert_true(eof_within(s0, WAIT_MS));
	assert_true(eof_within(s1, WAIT_MS));
	assert_true(eof_within(cfd, WAIT_MS));
	assert_int_equal(kill(pid, 0), -1);
	assert_int_equal(mock_backend_ops.pause(b), -EIO);
	assert_int_equal(mock_backend_ops.quit(b), 0);
	mock_backend_ops.destroy(b);
	pthread_mutex_lock(&rec.lock);
	assert_int_equal(rec.exited, 1);
	pthread_mutex_unlock(&rec.lock);
	close(cfd);
	close(s0);
	close(s1);
}

static void
test_pause_resume_quit(void **state)
{
	struct fx *f = *state;
	struct backend *b = NULL;
	struct aerr err = { "" };
	struct strbuf got;
	int s0;

	f->l.n_shells = 1;
	assert_int_equal(mock_backend_ops.launch(&f->l, &b, &err), 0);
	s0 = accept_within(f->shell_lfd[0], WAIT_MS);
	assert_true(s0 >= 0);
	assert_true(expect(s0, BANNER));

	assert_int_equal(mock_backend_ops.pause(b), 0);
	assert_true(rec_wait_for("STOP {}\n", WAIT_MS));
	say(s0, "echo x\n");
	sb_init(&got);
	assert_false(read_until(s0, "x\n", 300, &got)); /* stopped */
	sb_free(&got);
	assert_int_equal(mock_backend_ops.resume(b), 0);
	assert_true(rec_wait_for("RESUME {}\n", WAIT_MS));
	assert_true(expect(s0, "x\n"));

	/* quit while paused still ends it */
	assert_int_equal(mock_backend_ops.pause(b), 0);
	assert_int_equal(mock_backend_ops.quit(b), 0);
	assert_true(rec_wait_for("exited\n", WAIT_MS));
	pthread_mutex_lock(&rec.lock);
	assert_string_equal(rec.events.data,
			    "STOP {}\nRESUME {}\nSTOP {}\n"
			    "SHUTDOWN {\"guest\":false,\"reason\":"
			    "\"host-qmp-quit\"}\nexited\n");
	assert_true(WIFSIGNALED(rec.status));
	assert_int_equal(WTERMSIG(rec.status), SIGTERM);
	pthread_mutex_unlock(&rec.lock);
	mock_backend_ops.destroy(b);
	close(s0);
}

static void
test_shell_respawn_and_destroy(void **state)
{
	struct fx *f = *state;
	struct backend *b = NULL;
	struct aerr err = { "" };
	int s0, s1;
	pid_t pid;

	assert_int_equal(mock_backend_ops.launch(&f->l, &b, &err), 0);
	pid = mock_backend_ops.pid(b);
	s0 = accept_within(f->shell_lfd[0], WAIT_MS);
	s1 = accept_within(f->shell_lfd[1], WAIT_MS);
	assert_true(expect(s0, BANNER));
	assert_true(expect(s1, BANNER));
	/* the guest's shell exits: a new one greets on the same port */
	say(s0, "exit\n");
	assert_true(expect(s0, BANNER));
	say(s0, "echo again\n");
	assert_true(expect(s0, "again\n"));
	/* the host hangs up one port: the machine lives on */
	close(s1);
	usleep(200000);
	assert_int_equal(kill(pid, 0), 0);
	say(s0, "echo still\n");
	assert_true(expect(s0, "still\n"));

	mock_backend_ops.destroy(b);
	assert_int_equal(kill(pid, 0), -1);
	assert_true(eof_within(s0, WAIT_MS));
	pthread_mutex_lock(&rec.lock);
	assert_int_equal(rec.exited, 0); /* no callbacks from destroy */
	pthread_mutex_unlock(&rec.lock);
	close(s0);
}

static void
test_launch_failures(void **state)
{
	struct fx *f = *state;
	struct backend *b = NULL;
	struct aerr err = { "" };
	char *gone;

	f->l.cfg.append = "console=ttyS0 mock.fail=no-kernel quiet";
	assert_int_equal(mock_backend_ops.launch(&f->l, &b, &err), -EIO);
	assert_null(b);
	assert_string_equal(err.msg, "mock: launch failed: no-kernel");
	f->l.cfg.append = "mock.fail";
	assert_int_equal(mock_backend_ops.launch(&f->l, &b, &err), -EIO);
	assert_string_equal(err.msg, "mock: launch failed (mock.fail)");
	f->l.cfg.append = NULL;

	/* nobody listens on a shell socket: like QEMU, fail */
	gone = xasprintf("%s/nobody.sock", f->dir);
	f->shells[1] = gone;
	assert_int_equal(mock_backend_ops.launch(&f->l, &b, &err), -ENOENT);
	assert_non_null(strstr(err.msg, "nobody.sock"));
	assert_null(b);
	free(gone);
	pthread_mutex_lock(&rec.lock);
	assert_int_equal(rec.exited, 0);
	pthread_mutex_unlock(&rec.lock);
}

static void
test_unsupported(void **state)
{
	struct fx *f = *state;
	struct backend *b = NULL;
	struct aerr err = { "" };
	char *reply = (char *)"x";
	struct strbuf sb;

	f->l.n_shells = 0;
	f->l.console_path = NULL;
	assert_int_equal(mock_backend_ops.launch(&f->l, &b, &err), 0);
	assert_int_equal(mock_backend_ops.command(b, "{\"execute\":\"x\"}",
						  &reply, &err), -EOPNOTSUPP);
	assert_null(reply);
	mock_backend_ops.destroy(b);

	sb_init(&sb);
	backend_caps_render(mock_backend_ops.caps, &sb);
	assert_string_equal(sb.data, "pause");
	sb_free(&sb);
	assert_ptr_equal(backend_find("mock"), &mock_backend_ops);
}

/* A shell's pid, from the directory it made the way the prelude does. */
static int
shell_makes_its_dir(int fd)
{
	struct strbuf got;
	int pid = -1;
	char *p;

	say(fd, "mkdir -p /run/attestfs/$$ && echo pid=$$ made\n");
	sb_init(&got);
	assert_true(read_until(fd, " made\n", WAIT_MS, &got));
	p = strstr(got.data, "pid=");
	assert_non_null(p);
	pid = atoi(p + 4);
	sb_free(&got);
	return pid;
}

static bool
runtime_has(int pid)
{
	char path[64];

	snprintf(path, sizeof(path), "/run/attestfs/%d", pid);
	return access(path, F_OK) == 0;
}

/* /run/attestfs is this test's own (a tmpfs in a mount namespace of its
 * own): mocks elsewhere on the host clean theirs, not ours. */
static bool private_runtime;

static void
make_runtime_private(void)
{
	if (unshare(CLONE_NEWNS) < 0 ||
	    mount("none", "/", NULL, MS_REC | MS_PRIVATE, NULL) < 0 ||
	    (mkdir("/run/attestfs", 0700) < 0 && errno != EEXIST) ||
	    mount("none", "/run/attestfs", "tmpfs", MS_NOSUID | MS_NODEV,
		  "mode=0700") < 0)
		return;
	private_runtime = true;
}

/*
 * The machine's end removes its shells' directories under /run/attestfs,
 * and no one else's: a directory whose pid is not in our /proc may be a
 * live shell of another mock (another pid namespace: attestfs-run), whose
 * command's output would vanish from under it.
 */
static void
test_forgets_only_its_own_shell_dirs(void **state)
{
	struct fx *f = *state;
	struct backend *b = NULL;
	struct aerr err = { "" };
	char foreign[64];
	int s0, first, second;
	pid_t gone;

	if (!private_runtime)
		skip(); /* not root */
	gone = fork();
	if (gone == 0)
		_exit(0);
	assert_true(gone > 0);
	assert_int_equal(waitpid(gone, NULL, 0), gone);
	snprintf(foreign, sizeof(foreign), "/run/attestfs/%d", (int)gone);
	if (mkdir(foreign, 0700) < 0)
		skip(); /* a real one of that pid: leave it be */

	f->l.n_shells = 1;
	assert_int_equal(mock_backend_ops.launch(&f->l, &b, &err), 0);
	s0 = accept_within(f->shell_lfd[0], WAIT_MS);
	assert_true(s0 >= 0);
	assert_true(expect(s0, BANNER));
	first = shell_makes_its_dir(s0);
	/* a shell that ends (a reboot's) is replaced: both are ours */
	say(s0, "exit\n");
	assert_true(expect(s0, BANNER));
	second = shell_makes_its_dir(s0);
	assert_int_not_equal(first, second);

	assert_int_equal(mock_backend_ops.kill(b), 0);
	assert_true(rec_wait_for("exited\n", WAIT_MS));
	assert_true(runtime_has((int)gone));
	assert_false(runtime_has(first));
	assert_false(runtime_has(second));
	mock_backend_ops.destroy(b);
	rmdir(foreign);
	close(s0);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_shell_roundtrip_and_kill,
						fx_setup, fx_teardown),
		cmocka_unit_test_setup_teardown(test_pause_resume_quit,
						fx_setup, fx_teardown),
		cmocka_unit_test_setup_teardown(test_shell_respawn_and_destroy,
						fx_setup, fx_teardown),
		cmocka_unit_test_setup_teardown(test_launch_failures,
						fx_setup, fx_teardown),
		cmocka_unit_test_setup_teardown(test_unsupported,
						fx_setup, fx_teardown),
		cmocka_unit_test_setup_teardown(
			test_forgets_only_its_own_shell_dirs, fx_setup,
			fx_teardown),
	};

	signal(SIGPIPE, SIG_IGN);
	make_runtime_private();
	return cmocka_run_group_tests(tests, NULL, NULL);
}
