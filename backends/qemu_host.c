/*
 * What the QEMU backend needs of the host: the binaries, a fresh qcow2
 * overlay above each read-only disk per launch (qemu-img), QEMU's
 * environment, whether a pid is one of ours, and the config's files.
 */
#include "backends/qemu_internal.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "backends/config.h"
#include "common/proc.h"

extern char **environ;

const char *
qemu_binary(void)
{
	const char *s = getenv("ATTESTFS_QEMU");

	return s && *s ? s : "qemu-system-x86_64";
}

const char *
qemu_img_binary(void)
{
	const char *s = getenv("ATTESTFS_QEMU_IMG");

	return s && *s ? s : "qemu-img";
}

unsigned
qemu_pick_launch(const char *state_dir, size_t n_disks)
{
	unsigned launch;

	for (launch = 0; n_disks; launch++) {
		char *path = qemu_overlay_path(state_dir, 0, launch);
		int taken = access(path, F_OK) == 0;

		free(path);
		if (!taken)
			break;
	}
	return n_disks ? launch : 0;
}

void
qemu_describe_status(struct strbuf *sb, int status)
{
	if (WIFEXITED(status))
		sb_addf(sb, "exit status %d", WEXITSTATUS(status));
	else if (WIFSIGNALED(status))
		sb_addf(sb, "killed by signal %d (%s)", WTERMSIG(status),
			strsignal(WTERMSIG(status)));
	else
		sb_addf(sb, "wait status %#x", status);
}

void
qemu_tail(struct strbuf *sb, const char *text, size_t len, size_t max)
{
	const char *start;
	size_t i;

	while (len && (text[len - 1] == '\n' || text[len - 1] == ' ' ||
		       text[len - 1] == '\r'))
		len--;
	start = len > max ? text + len - max : text;
	if (start != text) {
		const char *nl = memchr(start, '\n', text + len - start);

		if (nl)
			start = nl + 1;
	}
	for (i = 0; start + i < text + len; i++) {
		char c = start[i];

		if (c == '\n')
			sb_adds(sb, " | ");
		else if (c != '\r')
			sb_add(sb, &c, 1);
	}
}

/*
 * Run qemu-img with argv; on failure the reason, "WHAT PATH: why" (its
 * stderr's last lines), goes to err for disk i. 0, or -errno/-EIO.
 */
static int
qemu_img(char *const argv[], size_t i, const char *what, const char *path,
	 struct strbuf *out, struct aerr *err)
{
	struct strbuf errout, why;
	int st, ret = 0;

	sb_init(&errout);
	sb_init(&why);
	st = proc_run_capture(argv, 30000, out, &errout);
	if (st < 0 || !WIFEXITED(st) || WEXITSTATUS(st) != 0) {
		ret = st < 0 ? st : -EIO;
		if (st < 0)
			sb_adds(&why, strerror(-st));
		else
			qemu_tail(&why, errout.data ? errout.data : "",
				  errout.len, 300);
		aerr_set(err, "disk %zu: qemu-img %s %s: %s", i, what, path,
			 why.data ? why.data : "");
	}
	sb_free(&errout);
	sb_free(&why);
	return ret;
}

/* The image format qemu-img sees in base, malloc'd into *format. */
static int
qemu_img_format(const char *base, size_t i, char **format, struct aerr *err)
{
	char *argv[] = { (char *)qemu_img_binary(), "info", "-U",
			 "--output=json", (char *)base, NULL };
	json_object *info = NULL, *fmt;
	const char *f = NULL;
	struct strbuf out;
	int ret;

	sb_init(&out);
	ret = qemu_img(argv, i, "info", base, &out, err);
	if (ret == 0) {
		info = json_tokener_parse(out.data ? out.data : "");
		if (info && json_object_object_get_ex(info, "format", &fmt))
			f = json_object_get_string(fmt);
		if (!f || !*f || strpbrk(f, ", '\"")) {
			ret = -EIO;
			aerr_set(err, "disk %zu: qemu-img info %s: no format",
				 i, base);
		} else {
			*format = xstrdup(f);
		}
	}
	json_object_put(info);
	sb_free(&out);
	return ret;
}

/* A fresh overlay above disk i's base path (realpath'd: the overlay names
 * it); messages call the disk by its configured name. */
static int
qemu_prepare_disk(const char *path, const char *name, size_t i,
		  const char *overlay, struct aerr *err)
{
	char *base = realpath(path, NULL), *format = NULL;
	struct strbuf out;
	int ret;

	if (!base) {
		ret = -errno;
		aerr_set(err, "disk %zu: %s: %s", i, name, strerror(errno));
		return ret;
	}
	ret = qemu_img_format(base, i, &format, err);
	if (ret == 0) {
		char *argv[] = { (char *)qemu_img_binary(), "create", "-q",
				 "-f", "qcow2", "-b", base, "-F", format,
				 (char *)overlay, NULL };

		unlink(overlay);
		sb_init(&out);
		ret = qemu_img(argv, i, "create", overlay, &out, err);
		sb_free(&out);
	}
	free(format);
	free(base);
	return ret;
}

int
qemu_prepare_disks(const struct backend_config *cfg, const char *state_dir,
		   const char *const *bases, unsigned launch, char ***active,
		   struct aerr *err)
{
	size_t i;
	int ret = 0;

	for (i = 0; i < cfg->n_disks && ret == 0; i++) {
		(*active)[i] = qemu_overlay_path(state_dir, i, launch);
		ret = qemu_prepare_disk(bases ? bases[i] : cfg->disks[i],
					cfg->disks[i], i, (*active)[i], err);
	}
	return ret;
}

char **
qemu_make_envp(char *const *add, size_t n_add)
{
	struct qemu_vec v = { 0 };
	char **e;
	size_t i;

	for (e = environ; e && *e; e++) {
		bool dup = false;

		for (i = 0; i < n_add && !dup; i++) {
			size_t k = strcspn(add[i], "=");

			dup = !strncmp(*e, add[i], k) && (*e)[k] == '=';
		}
		if (!dup)
			qemu_vec_push(&v, xstrdup(*e));
	}
	for (i = 0; i < n_add; i++)
		qemu_vec_push(&v, xstrdup(add[i]));
	if (!v.v)
		qemu_vec_push(&v, NULL);
	return v.v;
}

void
qemu_free_strv(char **v)
{
	char **p;

	for (p = v; p && *p; p++)
		free(*p);
	free(v);
}

bool
qemu_pid_is_ours(pid_t pid, pid_t child)
{
	long ppid, pgrp, sid;

	if (pid <= 0 || child <= 0)
		return false;
	if (pid == child)
		return true;
	if (proc_stat_ids(pid, &ppid, &pgrp, &sid) < 0)
		return false;
	return sid == child || pgrp == child || ppid == child;
}

const char *const qemu_config_keys[] = { "qemu_args", NULL };

int
qemu_check_config(struct backend_check *c)
{
	const struct backend_config *cfg = c->cfg;
	int ret = backend_check_strings(c, "qemu_args");

	if (ret < 0)
		return ret;
	if (!cfg->kernel && !cfg->n_disks && !cfg->start_command)
		return backend_check_fail(c, NULL, "a qemu machine needs "
					  "\"kernel\", \"disks\" or "
					  "\"start_command\"");
	return backend_check_files(c);
}
