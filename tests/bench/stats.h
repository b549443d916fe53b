/*
 * What both bench clients print: a sample's median and p99 by one rule, so
 * bench.sh compares like with like. Nearest rank: the p-quantile of n sorted
 * values is the ceil(p * n)-th, so with few rounds p99 is the slowest one.
 */
#ifndef ATTESTFS_BENCH_STATS_H
#define ATTESTFS_BENCH_STATS_H

#include <stdlib.h>
#include <time.h>

static inline double
bench_now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec / 1e6;
}

static inline int
bench_cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return x < y ? -1 : x > y;
}

/* Sorts v in place. */
static inline double
bench_pct(double *v, int n, double p)
{
	int k = (int)(p * n);

	if (k < p * n)
		k++;
	qsort(v, (size_t)n, sizeof(*v), bench_cmp_double);
	return v[k < 1 ? 0 : k > n ? n - 1 : k - 1];
}

static inline double
bench_mean(const double *v, int n)
{
	double sum = 0;
	int i;

	for (i = 0; i < n; i++)
		sum += v[i];
	return n ? sum / n : 0;
}

#endif
