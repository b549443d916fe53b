/* accel=auto: probe KVM by booting the machine's kernel under it; cache it. */
#include "backends/accel.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/utsname.h>
#include <sys/wait.h>
#include <unistd.h>

#include "backends/qemu.h"
#include "common/proc.h"

#define ACCEL_PROBE_TIMEOUT_MS 4000

/* Serialises the probes and the cache file's read-modify-write: a second
 * machine waits, then finds the first one's verdict in the cache. */
static pthread_mutex_t accel_lock = PTHREAD_MUTEX_INITIALIZER;

char *
accel_cache_path(void)
{
	const char *xdg = getenv("XDG_CACHE_HOME");
	const char *home = getenv("HOME");

	if (xdg && *xdg == '/')
		return xasprintf("%s/attestfs/accel-probe", xdg);
	if (home && *home)
		return xasprintf("%s/.cache/attestfs/accel-probe", home);
	return NULL;
}

/* The binary execvp would run, or NULL. */
static char *
accel_which(const char *bin)
{
	const char *path = getenv("PATH"), *p, *colon;

	if (strchr(bin, '/'))
		return access(bin, X_OK) == 0 ? realpath(bin, NULL) : NULL;
	if (!path)
		path = "/usr/local/bin:/usr/bin:/bin";
	for (p = path; ; p = colon + 1) {
		char *cand;

		colon = strchrnul(p, ':');
		cand = xasprintf("%.*s%s%s", (int)(colon - p), p,
				 colon == p ? "" : "/", bin);
		if (access(cand, X_OK) == 0) {
			char *real = realpath(cand, NULL);

			free(cand);
			return real;
		}
		free(cand);
		if (!*colon)
			return NULL;
	}
}

static char *
accel_cache_key(const char *qemu_bin)
{
	struct utsname u;
	struct stat st;
	char *real = accel_which(qemu_bin), *key;

	if (!real || stat(real, &st) < 0 || uname(&u) < 0) {
		free(real);
		return NULL;
	}
	key = xasprintf("qemu=%s:%lld:%lld.%09ld host=%s", real,
			(long long)st.st_size, (long long)st.st_mtim.tv_sec,
			st.st_mtim.tv_nsec, u.release);
	free(real);
	return key;
}

/* Find key's line: "KEY\tVERDICT\tREASON". */
static bool
accel_cache_lookup(const char *key, char *verdict, size_t vlen,
		   struct strbuf *reason)
{
	char *path = accel_cache_path(), *text = NULL, *line, *save = NULL;
	bool found = false;
	size_t len;

	if (!path || read_file(path, &text, &len) < 0) {
		free(path);
		return false;
	}
	for (line = strtok_r(text, "\n", &save); line;
	     line = strtok_r(NULL, "\n", &save)) {
		char *t1 = strchr(line, '\t'), *t2;

		if (!t1)
			continue;
		*t1 = '\0';
		if (strcmp(line, key))
			continue;
		t2 = strchr(t1 + 1, '\t');
		if (t2)
			*t2 = '\0';
		if (strcmp(t1 + 1, "kvm") && strcmp(t1 + 1, "tcg"))
			continue;
		snprintf(verdict, vlen, "%s", t1 + 1);
		sb_adds(reason, t2 ? t2 + 1 : "");
		found = true;
		break;
	}
	free(text);
	free(path);
	return found;
}

static void
accel_cache_store(const char *key, const char *verdict, const char *reason)
{
	char *path = accel_cache_path(), *text = NULL, *line, *save = NULL;
	char *slash;
	struct strbuf sb;
	size_t len, klen = strlen(key);

	if (!path)
		return;
	sb_init(&sb);
	if (read_file(path, &text, &len) == 0) {
		for (line = strtok_r(text, "\n", &save); line;
		     line = strtok_r(NULL, "\n", &save)) {
			if (!strncmp(line, key, klen) && line[klen] == '\t')
				continue;
			sb_addf(&sb, "%s\n", line);
		}
		free(text);
	}
	sb_addf(&sb, "%s\t%s\t%s\n", key, verdict, reason);
	slash = strrchr(path, '/');
	*slash = '\0';
	mkdir_p(path, 0755);
	*slash = '/';
	write_file_atomic(path, sb.data, sb.len);
	sb_free(&sb);
	free(path);
}

/* The last non-empty line of a file, for a reason. */
static void
accel_last_line(const char *path, struct strbuf *out)
{
	char *text = NULL, *end, *start;
	size_t len;

	if (read_file(path, &text, &len) < 0)
		return;
	end = text + len;
	while (end > text && (end[-1] == '\n' || end[-1] == '\r' ||
			      end[-1] == ' '))
		end--;
	*end = '\0';
	start = strrchr(text, '\n');
	start = start ? start + 1 : text;
	sb_add(out, start, (size_t)(end - start) > 200 ? 200 :
	       (size_t)(end - start));
	free(text);
}

static bool
accel_serial_booted(const char *path, size_t *bytes)
{
	char *text = NULL;
	size_t len = 0;
	bool ok;

	*bytes = 0;
	if (read_file(path, &text, &len) < 0)
		return false;
	*bytes = len;
	ok = strstr(text, "as init process") ||
	     strstr(text, "Freeing unused kernel");
	free(text);
	return ok;
}

/* The probe's command line into argv (at most 32 entries, pointers into
 * p and chardev). */
static void
accel_probe_argv(const struct accel_probe_params *p, const char *chardev,
		 const char *argv[32])
{
	int argc = 0;

	argv[argc++] = p->qemu_bin;
	argv[argc++] = "-accel";
	argv[argc++] = "kvm";
	argv[argc++] = "-machine";
	argv[argc++] = "q35";
	argv[argc++] = "-cpu";
	argv[argc++] = "max";
	argv[argc++] = "-m";
	argv[argc++] = "256";
	argv[argc++] = "-nodefaults";
	argv[argc++] = "-no-user-config";
	argv[argc++] = "-display";
	argv[argc++] = "none";
	argv[argc++] = "-no-reboot";
	argv[argc++] = "-kernel";
	argv[argc++] = p->kernel;
	if (p->initrd) {
		argv[argc++] = "-initrd";
		argv[argc++] = p->initrd;
	}
	argv[argc++] = "-append";
	argv[argc++] = "console=ttyS0 panic=-1";
	argv[argc++] = "-serial";
	argv[argc++] = chardev;
	argv[argc] = NULL;
}

/*
 * Watch the probe until its serial output shows init, it exits, or the
 * timeout: true when it booted; *exited when it is gone (reaped).
 */
static bool
accel_probe_wait(pid_t pid, const char *serial, int timeout, int64_t t0,
		 bool *exited, size_t *bytes)
{
	int status;

	*exited = false;
	while (now_mono_ms() - t0 < timeout) {
		pid_t r = waitpid(pid, &status, WNOHANG);

		if (accel_serial_booted(serial, bytes))
			return true;
		if (r == pid) {
			*exited = true;
			return false;
		}
		usleep(50000);
	}
	return false;
}

/*
 * Boot the kernel under KVM with a serial file; true when it reached init
 * within the timeout. reason says why not (or how long it took).
 */
static bool
accel_probe_kvm(const struct accel_probe_params *p, struct strbuf *reason)
{
	char *serial = xasprintf("%s/accel-probe.serial", p->work_dir);
	char *log = xasprintf("%s/accel-probe.log", p->work_dir);
	int timeout = p->timeout_ms > 0 ? p->timeout_ms : ACCEL_PROBE_TIMEOUT_MS;
	struct strbuf chardev;
	const char *argv[32];
	bool ok = false, exited = false;
	int64_t t0;
	size_t bytes = 0;
	pid_t pid, parent = getpid();
	int status;

	unlink(serial);
	unlink(log);
	sb_init(&chardev);
	sb_adds(&chardev, "file:");
	qemu_sb_add_opt_value(&chardev, serial);
	accel_probe_argv(p, chardev.data, argv);
	t0 = now_mono_ms();
	pid = fork();
	if (pid == 0) {
		proc_child_init(parent);
		setsid();
		proc_child_stdio(log);
		execvp(argv[0], (char *const *)argv);
		_exit(127);
	}
	if (pid < 0) {
		sb_addf(reason, "fork: %s", strerror(errno));
		goto out;
	}
	ok = accel_probe_wait(pid, serial, timeout, t0, &exited, &bytes);
	if (ok) {
		sb_addf(reason, "booted to init in %lld ms",
			(long long)(now_mono_ms() - t0));
	} else if (exited) {
		sb_adds(reason, "QEMU exited: ");
		accel_last_line(log, reason);
	} else if (bytes == 0) {
		sb_addf(reason, "no serial output in %d s", timeout / 1000);
	} else {
		sb_addf(reason, "kernel did not reach init in %d s",
			timeout / 1000);
	}
	if (!exited) {
		kill(-pid, SIGKILL);
		kill(pid, SIGKILL);
		while (waitpid(pid, &status, 0) < 0 && errno == EINTR)
			;
	}
out:
	unlink(serial);
	sb_free(&chardev);
	free(serial);
	free(log);
	return ok;
}

/* 0 when /dev/kvm opens for use, else why not (an errno). */
static int
kvm_open_error(void)
{
	int fd = open("/dev/kvm", O_RDWR | O_CLOEXEC);

	if (fd < 0)
		return errno;
	close(fd);
	return 0;
}

bool
accel_script_runs_tcg(const char *want)
{
	if (want && *want && strcmp(want, "auto"))
		return !strcmp(want, "tcg");
	return kvm_open_error() != 0;
}

int
accel_choose(const char *want, const struct accel_probe_params *p,
	     const char **out, struct strbuf *why, struct aerr *err)
{
	struct strbuf reason;
	char verdict[8];
	char *key;
	int kvm_error;

	if (!want || !*want)
		want = "auto";
	if (!strcmp(want, "kvm") || !strcmp(want, "tcg")) {
		*out = !strcmp(want, "kvm") ? "kvm" : "tcg";
		return 0;
	}
	if (strcmp(want, "auto")) {
		aerr_set(err, "accel: unknown accelerator '%s' (auto, kvm, tcg)",
			 want);
		return -EINVAL;
	}
	*out = "tcg";
	kvm_error = kvm_open_error();
	if (kvm_error) {
		sb_addf(why, "accel auto: /dev/kvm: %s, using tcg",
			strerror(kvm_error));
		return 0;
	}
	if (!p || !p->kernel) {
		sb_adds(why, "accel auto: no kernel to probe kvm with, "
			"using tcg");
		return 0;
	}
	key = accel_cache_key(p->qemu_bin);
	sb_init(&reason);
	pthread_mutex_lock(&accel_lock);
	if (key && accel_cache_lookup(key, verdict, sizeof(verdict),
				      &reason)) {
		*out = !strcmp(verdict, "kvm") ? "kvm" : "tcg";
		sb_addf(why, "accel auto: kvm probe %s (%s, cached), using %s",
			!strcmp(*out, "kvm") ? "passed" : "failed",
			reason.data ? reason.data : "", *out);
	} else {
		bool ok = accel_probe_kvm(p, &reason);

		*out = ok ? "kvm" : "tcg";
		sb_addf(why, "accel auto: kvm probe %s (%s), using %s",
			ok ? "passed" : "failed", reason.data ? reason.data : "",
			*out);
		if (key)
			accel_cache_store(key, *out,
					  reason.data ? reason.data : "");
	}
	pthread_mutex_unlock(&accel_lock);
	sb_free(&reason);
	free(key);
	return 0;
}
