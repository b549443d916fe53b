/*
 * The same protocol without FUSE: links machine/ directly, boots one machine
 * of a config, and times `true` round trips and a 64 MiB stdout, so the
 * benchmark can compare the mount against it on the same guest.
 *
 *   bench-client CONFIG MACHINE ROUNDS STATE_DIR
 *   -> "true_ms MEDIAN P99" and "stdout_mib_s RATE" lines
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define HARNESS_NO_CMOCKA
#include "tests/unit/harness.h"

/* Its result, however long it takes. */
static int
call(struct call *c)
{
	call_sem_wait(c, 0);
	sem_destroy(&c->sem);
	return c->r.result;
}

/* Run cmd; returns bytes of stdout, or -errno. */
static long long
run(struct machine *m, const char *cmd)
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
		total += (long long)c.r.len;
	}
	machine_tx_close(tx);
	return total;
}

static int
cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return x < y ? -1 : x > y;
}

static double
now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
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
	double *lat, t0;
	long long n;
	int rounds, i, status = 1;

	if (argc != 5) {
		fprintf(stderr, "usage: %s CONFIG MACHINE ROUNDS STATE_DIR\n",
			argv[0]);
		return 2;
	}
	rounds = atoi(argv[3]);
	if (rounds < 1)
		rounds = 1;
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
	for (i = 0; i < 20; i++)	/* warm the guest's translation cache */
		run(m, "true");
	lat = calloc((size_t)rounds, sizeof(*lat));
	for (i = 0; i < rounds; i++) {
		t0 = now_s();
		if (run(m, "true") < 0) {
			fprintf(stderr, "bench-client: true failed\n");
			free(lat);
			goto out;
		}
		lat[i] = (now_s() - t0) * 1000;
	}
	qsort(lat, (size_t)rounds, sizeof(*lat), cmp_double);
	printf("true_ms %.2f %.2f\n", lat[rounds / 2],
	       lat[(int)((rounds - 1) * 0.99)]);
	free(lat);
	t0 = now_s();
	n = run(m, "head -c 67108864 /dev/zero");
	if (n != 67108864) {
		fprintf(stderr, "bench-client: 64 MiB gave %lld\n", n);
		goto out;
	}
	printf("stdout_mib_s %.1f\n", 64 / (now_s() - t0));
	status = 0;
out:
	vmset_destroy(set);
	return status;
}
