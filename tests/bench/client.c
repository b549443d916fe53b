/*
 * The same protocol without FUSE: links machine/ directly, boots one machine
 * of a config, and times `true` round trips and BYTES of stdout, so the
 * benchmark can compare the mount against it on the same guest.
 *
 *   bench-client CONFIG MACHINE ROUNDS STATE_DIR [STDOUT_ROUNDS [BYTES]]
 *   -> "true_ms MEDIAN P99 MEAN", "stdout_ms MEDIAN P99" (BYTES of
 *      stdout, 64 MiB unless given), "first_byte_ms MEDIAN P99" (from the
 *      command's start to its first byte) and "stdout_mib_s AT_MEDIAN AT_P99"
 *      lines; medians and p99 as tests/bench/stats.h takes them
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define HARNESS_NO_CMOCKA
#include "tests/unit/harness.h"
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

static int
time_true(struct machine *m, int rounds)
{
	double *lat = calloc((size_t)rounds, sizeof(*lat)), t0;
	int i;

	if (!lat)
		return -ENOMEM;
	for (i = 0; i < WARMUP; i++)
		run(m, "true", NULL);
	for (i = 0; i < rounds; i++) {
		t0 = bench_now_ms();
		if (run(m, "true", NULL) < 0) {
			fprintf(stderr, "bench-client: true failed\n");
			free(lat);
			return -EIO;
		}
		lat[i] = bench_now_ms() - t0;
	}
	printf("true_ms %.3f %.3f %.3f\n", bench_pct(lat, rounds, 0.5),
	       bench_pct(lat, rounds, 0.99), bench_mean(lat, rounds));
	free(lat);
	return 0;
}

static int
time_stdout(struct machine *m, int rounds, long long bytes)
{
	double *lat = calloc((size_t)rounds * 2, sizeof(*lat)), *first, t0;
	double med, p99;
	char cmd[64];
	long long n;
	int i;

	if (!lat)
		return -ENOMEM;
	first = lat + rounds;
	snprintf(cmd, sizeof(cmd), "head -c %lld /dev/zero", bytes);
	for (i = 0; i < rounds; i++) {
		t0 = bench_now_ms();
		first[i] = t0;
		n = run(m, cmd, &first[i]);
		lat[i] = bench_now_ms() - t0;
		first[i] -= t0;
		if (n != bytes) {
			fprintf(stderr, "bench-client: %lld bytes of stdout gave "
				"%lld\n", bytes, n);
			free(lat);
			return -EIO;
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

	if (argc < 5 || argc > 7) {
		fprintf(stderr, "usage: %s CONFIG MACHINE ROUNDS STATE_DIR "
			"[STDOUT_ROUNDS [BYTES]]\n", argv[0]);
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
	if (time_true(m, rounds) < 0 || time_stdout(m, stdout_rounds, bytes) < 0)
		goto out;
	fflush(stdout);
	status = 0;
out:
	vmset_destroy(set);
	return status;
}
