/*
 * The same protocol without FUSE: links machine/ directly, boots one machine
 * of a config, and times `true` round trips and BYTES of stdout, so the
 * benchmark can compare the mount against it on the same guest. Given a
 * mount's exec file too, it times that in the same rounds, taking turns
 * (which goes first alternates), so both see the same load on a busy host.
 *
 *   bench-client CONFIG MACHINE ROUNDS STATE_DIR [STDOUT_ROUNDS [BYTES [EXEC]]]
 *   -> "true_ms MEDIAN P99 MEAN", "stdout_ms MEDIAN P99" (BYTES of
 *      stdout, 64 MiB unless given), "first_byte_ms MEDIAN P99" (from the
 *      command's start to its first byte) and "stdout_mib_s AT_MEDIAN AT_P99"
 *      lines; with EXEC the same with "mount_" in front, and
 *      "mount_true_phase_median_ms OPEN WRITE READ CLOSE"; medians and p99
 *      as tests/bench/stats.h takes them
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define HARNESS_NO_CMOCKA
#include "tests/unit/harness.h"
#include "tests/bench/fstx.h"
#include "tests/bench/stats.h"

#define WARMUP 20	/* the guest's translation cache warms up */

/* Its result, however long it takes. */
static int
call(struct call *c)
{
	call_sem_wait(c, 0);
	sem_destroy(&c->sem);
	return c->r.result;
}

/* Run cmd; returns bytes of stdout, or -errno. *first_ms (if not NULL):
 * when the first byte came. */
static long long
run(struct machine *m, const char *cmd, double *first_ms)
{
	struct mtx *tx = machine_tx_open(m, MTX_EXEC);
	long long total = 0;
	int ret;

	machine_tx_write(tx, cmd, strlen(cmd));
	for (;;) {
		struct call c;

		call_init(&c, 128 * 1024);
		machine_tx_read(tx, &c.r);
		ret = call(&c);
		free(c.r.data);
		if (ret < 0) {
			total = ret;
			break;
		}
		if (!c.r.len)
			break;
		if (!total && first_ms)
			*first_ms = bench_now_ms();
		total += (long long)c.r.len;
	}
	machine_tx_close(tx);
	return total;
}

/* Samples of one side: no FUSE (exec NULL) or the mount's exec file. */
struct side {
	const char *exec;
	double *lat, *first, *phase[4];
};

static int
side_init(struct side *sd, const char *exec, int rounds)
{
	int j;

	sd->exec = exec;
	sd->lat = calloc((size_t)rounds * 6, sizeof(double));
	if (!sd->lat)
		return -ENOMEM;
	sd->first = sd->lat + rounds;
	for (j = 0; j < 4; j++)
		sd->phase[j] = sd->lat + (size_t)rounds * (size_t)(j + 2);
	return 0;
}

/* Round i of cmd on one side; bytes of stdout or -errno. */
static long long
side_run(struct machine *m, struct side *sd, const char *cmd, int i)
{
	double t0 = bench_now_ms(), first = 0;
	struct bench_fstx t = { .on_bytes = NULL };
	long long n;
	int j;

	if (sd->exec) {
		n = bench_fstx(sd->exec, cmd, &t);
		first = t.first_byte;
		for (j = 0; j < 4; j++)
			sd->phase[j][i] = t.phase[j];
	} else {
		n = run(m, cmd, &first);
	}
	sd->lat[i] = bench_now_ms() - t0;
	sd->first[i] = first ? first - t0 : sd->lat[i];
	return n;
}

/* ROUNDS of cmd on each side, taking turns; 0, or -EIO with the reason
 * on stderr when one gave other than want bytes. */
static int
take_turns(struct machine *m, struct side *sd, int sides, const char *cmd,
	   int rounds, long long want)
{
	long long n;
	int i, k;

	for (i = 0; i < rounds; i++) {
		for (k = 0; k < sides; k++) {
			struct side *s = &sd[(i + k) % sides];

			n = side_run(m, s, cmd, i);
			if (n != want) {
				fprintf(stderr, "bench-client: `%s`%s gave %lld\n",
					cmd, s->exec ? " through the mount" : "", n);
				return -EIO;
			}
		}
	}
	return 0;
}

static void
print_true(const struct side *sd, int rounds)
{
	const char *pre = sd->exec ? "mount_" : "";

	printf("%strue_ms %.3f %.3f %.3f\n", pre, bench_pct(sd->lat, rounds, 0.5),
	       bench_pct(sd->lat, rounds, 0.99), bench_mean(sd->lat, rounds));
	if (sd->exec)
		printf("mount_true_phase_median_ms %.3f %.3f %.3f %.3f\n",
		       bench_pct(sd->phase[0], rounds, 0.5),
		       bench_pct(sd->phase[1], rounds, 0.5),
		       bench_pct(sd->phase[2], rounds, 0.5),
		       bench_pct(sd->phase[3], rounds, 0.5));
}

static void
print_stdout(const struct side *sd, int rounds, long long bytes)
{
	const char *pre = sd->exec ? "mount_" : "";
	double med = bench_pct(sd->lat, rounds, 0.5);
	double p99 = bench_pct(sd->lat, rounds, 0.99);
	double mib = (double)bytes / 1048576.0;

	printf("%sstdout_ms %.1f %.1f\n", pre, med, p99);
	printf("%sstdout_mib_s %.1f %.1f\n", pre, mib / med * 1e3,
	       mib / p99 * 1e3);
	printf("%sfirst_byte_ms %.1f %.1f\n", pre,
	       bench_pct(sd->first, rounds, 0.5),
	       bench_pct(sd->first, rounds, 0.99));
}

/* `true` and BYTES of stdout on each side (the mount's if exec is set). */
static int
bench(struct machine *m, const char *exec, int rounds, int stdout_rounds,
      long long bytes)
{
	struct side sd[2];
	int sides = exec ? 2 : 1, n = rounds > stdout_rounds ? rounds :
							 stdout_rounds;
	char cmd[64];
	int k, ret;

	for (k = 0; k < sides; k++)
		if (side_init(&sd[k], k ? exec : NULL, n) < 0)
			return -ENOMEM;
	ret = take_turns(m, sd, sides, "true", WARMUP, 0);
	if (!ret)
		ret = take_turns(m, sd, sides, "true", rounds, 0);
	for (k = 0; k < sides && !ret; k++)
		print_true(&sd[k], rounds);
	snprintf(cmd, sizeof(cmd), "head -c %lld /dev/zero", bytes);
	if (!ret)
		ret = take_turns(m, sd, sides, cmd, stdout_rounds, bytes);
	for (k = 0; k < sides && !ret; k++)
		print_stdout(&sd[k], stdout_rounds, bytes);
	for (k = 0; k < sides; k++)
		free(sd[k].lat);
	return ret;
}

int
main(int argc, char **argv)
{
	struct attest_config cfg;
	struct vmset_options opt = { 0 };
	struct vmset *set = NULL;
	struct machine *m;
	struct aerr err = { "" };
	struct call c;
	long long bytes = 64ll << 20;
	int rounds, stdout_rounds = 1, status = 1;

	if (argc < 5 || argc > 8) {
		fprintf(stderr, "usage: %s CONFIG MACHINE ROUNDS STATE_DIR "
			"[STDOUT_ROUNDS [BYTES [EXEC]]]\n", argv[0]);
		return 2;
	}
	rounds = atoi(argv[3]) > 0 ? atoi(argv[3]) : 1;
	if (argc > 5)
		stdout_rounds = atoi(argv[5]) > 0 ? atoi(argv[5]) : 1;
	if (argc > 6)
		bytes = atoll(argv[6]) > 0 ? atoll(argv[6]) : bytes;
	if (config_load(argv[1], &cfg, &err) < 0) {
		fprintf(stderr, "bench-client: %s\n", err.msg);
		return 1;
	}
	opt.state_dir = argv[4];
	opt.timeout = 300;
	opt.accel = "auto";
	if (vmset_create(&opt, &cfg, &set, &err) < 0) {
		fprintf(stderr, "bench-client: %s\n", err.msg);
		goto out;
	}
	m = vmset_find(set, argv[2]);
	if (!m) {
		fprintf(stderr, "bench-client: no machine %s\n", argv[2]);
		goto out;
	}
	call_init(&c, 0);
	machine_ctl(m, "start", 5, &c.r);
	if (call(&c) < 0) {
		fprintf(stderr, "bench-client: start failed\n");
		goto out;
	}
	if (bench(m, argc > 7 ? argv[7] : NULL, rounds, stdout_rounds,
		  bytes) < 0)
		goto out;
	fflush(stdout);
	status = 0;
out:
	vmset_destroy(set);
	return status;
}
