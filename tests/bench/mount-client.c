/*
 * The mount side of `make bench`: plain system calls on attestfs files, one
 * process, no fork per round, so the figures are attestfs's and not the
 * host's process start-up.
 *
 *   mount-client true   EXEC ROUNDS WARMUP  -> "true_ms MEDIAN P99 MEAN" and
 *                        "true_phase_median_ms OPEN WRITE READ CLOSE"
 *   mount-client stdout EXEC BYTES ROUNDS   -> "stdout_ms MEDIAN P99",
 *                        "stdout_mib_s AT_MEDIAN AT_P99" and
 *                        "first_byte_ms MEDIAN P99" (from the open)
 *   mount-client stream EXEC BYTES          -> execs `head -c BYTES /dev/zero`
 *                        until SIGTERM/SIGINT; prints "flowing" at the first
 *                        byte, at the end "stream_mib_s RATE RUNS" (RATE:
 *                        every byte read since the first, RUNS: whole runs)
 *   mount-client status FILE ROUNDS GAP_US  -> "status_ms MEDIAN P99 MAX"
 *   mount-client ctl    FILE WORD           -> "ctl_ms ELAPSED"
 *   mount-client restore CTL EXEC INFO SNAPSHOT ROUNDS -> one
 *                        "restore_round_ms MS CTL_MS CMD_MS FAULTS_CTL
 *                        FAULTS_ALL" a round (faults: BENCH_FAULTS_DIR),
 *                        "restore_ms MEDIAN P99"
 *   mount-client clone  VMS SOURCE SNAPSHOT PREFIX ROUNDS -> one
 *                        "clone_round_ms MS" a round, "clone_ms MEDIAN P99"
 *
 * One exec round is one transaction: open O_RDWR, write the command, read to
 * EOF, close. A non-zero exit or short read is an error (exit status 1).
 * Medians and p99 as tests/bench/stats.h takes them, the same rule as
 * tests/bench/client.c.
 */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "tests/bench/fstx.h"
#include "tests/bench/stats.h"

#define BUF_SIZE (128 * 1024)

static char buf[BUF_SIZE];
static volatile sig_atomic_t stop;
static long long streamed;	/* every byte read by tx(), partial runs too */
static double first_byte_ms;	/* when tx() first read a byte, or 0 */
static int announce;		/* stream: print "flowing" at the first byte */
static double *phase;		/* last tx(): open, write, read to EOF, close */

static double
now_ms(void)
{
	return bench_now_ms();
}

static void
on_bytes(struct bench_fstx *t, size_t n)
{
	if (!first_byte_ms) {
		first_byte_ms = t->first_byte;
		if (announce) {
			printf("flowing\n");
			fflush(stdout);
		}
	}
	streamed += (long long)n;
}

/* One transaction; returns bytes read, or -errno (-EINTR if stopped). */
static long long
tx(const char *path, const char *cmd)
{
	static struct bench_fstx t = { .on_bytes = on_bytes };

	phase = t.phase;
	return bench_fstx(path, cmd, &t);
}

static int
fail(const char *what, const char *path, long long ret)
{
	fprintf(stderr, "mount-client: %s on %s: %s\n", what, path,
		ret < 0 ? strerror((int)-ret) : "wrong size");
	return 1;
}

static int
do_true(const char *path, int rounds, int warmup)
{
	double *lat, *ph[4], t0, sum = 0;
	long long ret;
	int i, j;

	for (i = 0; i < warmup; i++)
		if ((ret = tx(path, "true")) != 0)
			return fail("warm-up true", path, ret);
	lat = calloc((size_t)rounds * 5, sizeof(*lat));
	if (!lat)
		return 1;
	for (j = 0; j < 4; j++)
		ph[j] = lat + (size_t)rounds * (size_t)(j + 1);
	for (i = 0; i < rounds; i++) {
		t0 = now_ms();
		ret = tx(path, "true");
		lat[i] = now_ms() - t0;
		if (ret != 0) {
			free(lat);
			return fail("true", path, ret);
		}
		sum += lat[i];
		for (j = 0; j < 4; j++)
			ph[j][i] = phase[j];
	}
	printf("true_ms %.3f %.3f %.3f\n", bench_pct(lat, rounds, 0.5),
	       bench_pct(lat, rounds, 0.99), sum / rounds);
	printf("true_phase_median_ms %.3f %.3f %.3f %.3f\n",
	       bench_pct(ph[0], rounds, 0.5), bench_pct(ph[1], rounds, 0.5),
	       bench_pct(ph[2], rounds, 0.5), bench_pct(ph[3], rounds, 0.5));
	free(lat);
	return 0;
}

static int
do_stdout(const char *path, long long bytes, int rounds)
{
	double *lat = calloc((size_t)rounds * 2, sizeof(*lat)), *first, t0;
	double med, p99;
	char cmd[64];
	long long ret;
	int i;

	if (!lat)
		return 1;
	first = lat + rounds;
	snprintf(cmd, sizeof(cmd), "head -c %lld /dev/zero", bytes);
	for (i = 0; i < rounds; i++) {
		first_byte_ms = 0;
		t0 = now_ms();
		ret = tx(path, cmd);
		lat[i] = now_ms() - t0;
		first[i] = first_byte_ms - t0;
		if (ret != bytes) {
			free(lat);
			return fail("stdout", path, ret);
		}
	}
	med = bench_pct(lat, rounds, 0.5);
	p99 = bench_pct(lat, rounds, 0.99);
	printf("stdout_ms %.1f %.1f\n", med, p99);
	printf("stdout_mib_s %.1f %.1f\n", (double)bytes / 1048576.0 / med * 1e3,
	       (double)bytes / 1048576.0 / p99 * 1e3);
	printf("first_byte_ms %.1f %.1f\n", bench_pct(first, rounds, 0.5),
	       bench_pct(first, rounds, 0.99));
	free(lat);
	return 0;
}

static void
on_stop(int sig)
{
	(void)sig;
	stop = 1;
}

static int
do_stream(const char *path, long long bytes)
{
	struct sigaction sa;
	char cmd[64];
	long long ret;
	double t0;
	int runs = 0;

	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = on_stop;	/* no SA_RESTART: a parked read ends */
	sigaction(SIGTERM, &sa, NULL);
	sigaction(SIGINT, &sa, NULL);
	snprintf(cmd, sizeof(cmd), "head -c %lld /dev/zero", bytes);
	announce = 1;
	t0 = now_ms();
	while (!stop) {
		ret = tx(path, cmd);
		if (stop)
			break;
		if (ret != bytes)
			return fail("stream", path, ret);
		runs++;
	}
	if (first_byte_ms)
		t0 = first_byte_ms;
	printf("stream_mib_s %.1f %d\n",
	       (double)streamed / 1048576.0 / ((now_ms() - t0) / 1e3), runs);
	return 0;
}

static int
do_status(const char *path, int rounds, int gap_us)
{
	double *lat, t0, med, p99;
	ssize_t n;
	int i, fd;

	lat = calloc((size_t)rounds, sizeof(*lat));
	if (!lat)
		return 1;
	for (i = 0; i < rounds; i++) {
		t0 = now_ms();
		fd = open(path, O_RDONLY);
		if (fd < 0) {
			free(lat);
			return fail("open status", path, -errno);
		}
		while ((n = read(fd, buf, sizeof(buf))) > 0)
			;
		if (n < 0) {
			n = -errno;
			close(fd);
			free(lat);
			return fail("read status", path, n);
		}
		close(fd);
		lat[i] = now_ms() - t0;
		if (gap_us > 0)
			usleep((useconds_t)gap_us);
	}
	med = bench_pct(lat, rounds, 0.5);
	p99 = bench_pct(lat, rounds, 0.99);
	printf("status_ms %.3f %.3f %.3f\n", med, p99, lat[rounds - 1]);
	free(lat);
	return 0;
}

static int
do_ctl(const char *path, const char *word)
{
	double t0 = now_ms();
	size_t len = strlen(word);
	int fd = open(path, O_WRONLY | O_TRUNC);

	if (fd < 0)
		return fail("open ctl", path, -errno);
	if (write(fd, word, len) != (ssize_t)len) {
		int e = errno;

		close(fd);
		return fail(word, path, -e);
	}
	if (close(fd) < 0)
		return fail("close ctl", path, -errno);
	printf("ctl_ms %.1f\n", now_ms() - t0);
	return 0;
}

/* Restore a snapshot and run the first command, ROUNDS times. */
/* Wait until info names a VMM waiting (key "spare": to restore name,
 * "clone_spare": for a clone of it), as a test does its work between
 * restores; 0, or -ETIMEDOUT after 20 s. */
static int
wait_info(const char *info, const char *key, const char *name)
{
	char want[160], text[4096];
	double deadline = now_ms() + 20000;

	snprintf(want, sizeof(want), "\n%s %s\n", key, name);
	while (now_ms() < deadline) {
		int fd = open(info, O_RDONLY);
		ssize_t n = fd >= 0 ? read(fd, text + 1, sizeof(text) - 2) : -1;

		if (fd >= 0)
			close(fd);
		if (n > 0) {
			text[0] = '\n';
			text[n + 1] = '\0';
			if (strstr(text, want))
				return 0;
		}
		usleep(5000);
	}
	return -ETIMEDOUT;
}

/* One control message; 0 or -errno. */
static int
ctl_write(const char *ctl, const char *word)
{
	size_t len = strlen(word);
	int fd = open(ctl, O_WRONLY | O_TRUNC), ret = 0;

	if (fd < 0 || write(fd, word, len) != (ssize_t)len)
		ret = -errno;
	if (fd >= 0)
		close(fd);
	return ret;
}

/* The first line of a small file, or "" (buf has size n). */
static void
read_small(const char *path, char *text, size_t n)
{
	int fd = open(path, O_RDONLY);
	ssize_t r = fd >= 0 ? read(fd, text, n - 1) : -1;

	if (fd >= 0)
		close(fd);
	text[r > 0 ? r : 0] = '\0';
}

/* The newest VMM pre-started in BENCH_FAULTS_DIR (a machine's state
 * directory: qemu.spareN.pid), or 0. */
static int
spare_pid(void)
{
	const char *dir = getenv("BENCH_FAULTS_DIR");
	char path[4096], text[64];
	unsigned seq, best = 0;

	if (!dir)
		return 0;
	for (seq = 1; seq < 10000 && best + 64 > seq; seq++) {
		snprintf(path, sizeof(path), "%s/qemu.spare%u.pid", dir, seq);
		if (access(path, F_OK) == 0)
			best = seq;
	}
	snprintf(path, sizeof(path), "%s/qemu.spare%u.pid", dir, best);
	read_small(path, text, sizeof(text));
	return atoi(text);
}

/* A process's minor page faults so far, or -1. */
static long long
minflt(int pid)
{
	char path[64], text[1024], *p;
	int j;

	if (pid <= 0)
		return -1;
	snprintf(path, sizeof(path), "/proc/%d/stat", pid);
	read_small(path, text, sizeof(text));
	/* minflt is field 10; fields 3.. follow the ")" of the name. */
	p = strrchr(text, ')');
	for (j = 2; p && j < 10; j++)
		p = strchr(p + 1, ' ');
	return p ? atoll(p + 1) : -1;
}

/*
 * ROUNDS times: restore NAME, then `true`, timed. With a spare: wait first
 * until a VMM waits for NAME, as a test does its work between restores.
 * Without (other != NULL): restore OTHER first and wait for its spare, so
 * that NAME's restore has none and starts a new VMM.
 */
static int
do_restore(const char *ctl, const char *exec, const char *info,
	   const char *name, const char *other, int rounds)
{
	char word[128], prep[128];
	double *lat, t0, t1;
	long long f0, f1, f2;
	ssize_t ret;
	int i, pid;

	snprintf(word, sizeof(word), "restore %s", name);
	snprintf(prep, sizeof(prep), "restore %s", other ? other : "");
	lat = calloc((size_t)rounds, sizeof(*lat));
	if (!lat)
		return 1;
	for (i = 0; i < rounds; i++) {
		if (other && (ret = ctl_write(ctl, prep)) < 0) {
			free(lat);
			return fail(prep, ctl, ret);
		}
		ret = wait_info(info, "spare", other ? other : name);
		if (ret < 0) {
			free(lat);
			return fail("no spare", info, ret);
		}
		/* The restore's VMM: its faults while it takes over. */
		pid = other ? 0 : spare_pid();
		f0 = minflt(pid);
		t0 = now_ms();
		ret = ctl_write(ctl, word);
		if (ret < 0) {
			free(lat);
			return fail(word, ctl, ret);
		}
		t1 = now_ms();
		f1 = minflt(pid);
		ret = tx(exec, "true");
		if (ret != 0) {
			free(lat);
			return fail("first command", exec, ret);
		}
		lat[i] = now_ms() - t0;
		f2 = minflt(pid);
		/* The ctl write's part, then the command's; faults likewise
		 * (-1: not asked for, BENCH_FAULTS_DIR). */
		printf("restore_round_ms %.1f %.1f %.1f %lld %lld\n", lat[i],
		       t1 - t0, lat[i] - (t1 - t0),
		       f0 >= 0 && f1 >= 0 ? f1 - f0 : -1,
		       f0 >= 0 && f2 >= 0 ? f2 - f0 : -1);
	}
	printf("restore_ms %.1f %.1f\n", bench_pct(lat, rounds, 0.5),
	       bench_pct(lat, rounds, 0.99));
	free(lat);
	return 0;
}

/*
 * ROUNDS times: clone PREFIX<i> of SNAPSHOT of SOURCE, then `true` on it,
 * timed, once SOURCE's info names the VMM pre-started for the clone (as
 * the restore rounds wait for their spare). The clones keep running.
 */
static int
do_clone(const char *vms, const char *source, const char *snap,
	 const char *prefix, int rounds)
{
	char ctl[4096], info[4096], exec[4096], word[256];
	double *lat, t0;
	ssize_t ret;
	int i;

	snprintf(ctl, sizeof(ctl), "%s/%s/ctl", vms, source);
	snprintf(info, sizeof(info), "%s/%s/info", vms, source);
	lat = calloc((size_t)rounds, sizeof(*lat));
	if (!lat)
		return 1;
	for (i = 0; i < rounds; i++) {
		snprintf(word, sizeof(word), "clone %s%d %s", prefix, i + 1,
			 snap);
		snprintf(exec, sizeof(exec), "%s/%s%d/exec", vms, prefix,
			 i + 1);
		ret = wait_info(info, "clone_spare", snap);
		if (ret < 0) {
			free(lat);
			return fail("no clone spare", info, ret);
		}
		t0 = now_ms();
		ret = ctl_write(ctl, word);
		if (ret < 0) {
			free(lat);
			return fail(word, ctl, ret);
		}
		ret = tx(exec, "true");
		if (ret != 0) {
			free(lat);
			return fail("first command", exec, ret);
		}
		lat[i] = now_ms() - t0;
		printf("clone_round_ms %.1f\n", lat[i]);
	}
	printf("clone_ms %.1f %.1f\n", bench_pct(lat, rounds, 0.5),
	       bench_pct(lat, rounds, 0.99));
	free(lat);
	return 0;
}

static int
usage(void)
{
	fprintf(stderr,
		"usage: mount-client true EXEC ROUNDS WARMUP\n"
		"       mount-client stdout EXEC BYTES ROUNDS\n"
		"       mount-client stream EXEC BYTES\n"
		"       mount-client status FILE ROUNDS GAP_US\n"
		"       mount-client ctl FILE WORD\n"
		"       mount-client restore CTL EXEC INFO SNAPSHOT ROUNDS\n"
		"       mount-client restore-cold CTL EXEC INFO SNAPSHOT OTHER ROUNDS\n"
		"       mount-client clone VMS SOURCE SNAPSHOT PREFIX ROUNDS\n");
	return 2;
}

int
main(int argc, char **argv)
{
	int ret;

	if (argc < 4)
		return usage();
	if (!strcmp(argv[1], "true") && argc == 5)
		ret = do_true(argv[2], atoi(argv[3]) > 0 ? atoi(argv[3]) : 1,
			      atoi(argv[4]));
	else if (!strcmp(argv[1], "stdout") && argc == 5)
		ret = do_stdout(argv[2], atoll(argv[3]),
				atoi(argv[4]) > 0 ? atoi(argv[4]) : 1);
	else if (!strcmp(argv[1], "stream") && argc == 4)
		ret = do_stream(argv[2], atoll(argv[3]));
	else if (!strcmp(argv[1], "status") && argc == 5)
		ret = do_status(argv[2], atoi(argv[3]) > 0 ? atoi(argv[3]) : 1,
				atoi(argv[4]));
	else if (!strcmp(argv[1], "ctl") && argc == 4)
		ret = do_ctl(argv[2], argv[3]);
	else if (!strcmp(argv[1], "restore") && argc == 7)
		ret = do_restore(argv[2], argv[3], argv[4], argv[5], NULL,
				 atoi(argv[6]) > 0 ? atoi(argv[6]) : 1);
	else if (!strcmp(argv[1], "restore-cold") && argc == 8)
		ret = do_restore(argv[2], argv[3], argv[4], argv[5], argv[6],
				 atoi(argv[7]) > 0 ? atoi(argv[7]) : 1);
	else if (!strcmp(argv[1], "clone") && argc == 7)
		ret = do_clone(argv[2], argv[3], argv[4], argv[5],
			       atoi(argv[6]) > 0 ? atoi(argv[6]) : 1);
	else
		return usage();
	fflush(stdout);
	return ret;
}
