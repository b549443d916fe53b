/*
 * guest-insns: a QEMU TCG plugin that counts the guest instructions a
 * stretch of work executes, split into the guest kernel's functions and
 * user space. Timings on a shared host swing by 2x; the count of
 * instructions the guest executed for one command does not, so a change to
 * the guest side of the protocol can be judged by it (tests/bench/rows.d/
 * 60-guest-insns.sh). Only the bench loads it.
 *
 *   qemu-system-x86_64 -plugin build/guest-insns.so,dir=DIR ...
 *   cat /proc/kallsyms (in the guest) > DIR/kallsyms     # optional
 *   echo "LABEL N" > DIR/mark.tmp && mv DIR/mark.tmp DIR/mark
 *   # ... DIR/mark is gone once DIR/LABEL.txt holds what ran since the
 *   # mark before, per N: "insns", "kernel", "user", "tb_execs",
 *   # "translations", then "sym NAME INSNS" for the top kernel functions
 *   # (25, or top=N after dir=)
 *
 * Each translation block gets an inline counter (added to the block's own
 * code: no call per execution); a thread of ours reads the counters when a
 * mark appears. The reads race with the vCPU's increments, which only
 * shifts an instruction or two across a mark.
 *
 * QEMU 7.2's plugin API, version 1: Debian ships no qemu-plugin.h, so the
 * few declarations used are here, as include/qemu/qemu-plugin.h has them.
 */
#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

typedef uint64_t qemu_plugin_id_t;
struct qemu_plugin_tb;
enum qemu_plugin_op { QEMU_PLUGIN_INLINE_ADD_U64 };
typedef void (*qemu_plugin_vcpu_tb_trans_cb_t)(qemu_plugin_id_t id,
					       struct qemu_plugin_tb *tb);
void qemu_plugin_register_vcpu_tb_trans_cb(qemu_plugin_id_t id,
					   qemu_plugin_vcpu_tb_trans_cb_t cb);
void qemu_plugin_register_vcpu_tb_exec_inline(struct qemu_plugin_tb *tb,
					      enum qemu_plugin_op op,
					      void *ptr, uint64_t imm);
size_t qemu_plugin_tb_n_insns(const struct qemu_plugin_tb *tb);
uint64_t qemu_plugin_tb_vaddr(const struct qemu_plugin_tb *tb);

#define EXPORT __attribute__((visibility("default")))
EXPORT extern int qemu_plugin_version;
EXPORT int qemu_plugin_install(qemu_plugin_id_t id, const void *info,
			       int argc, char **argv);
EXPORT int qemu_plugin_version = 1;

/* x86_64: the kernel's half of the address space. */
#define KERNEL_BASE 0xffff800000000000ull
#define BUCKETS (1u << 18)

/* One block: the same address and length is the same code (user space of
 * every process shares these, by virtual address). */
struct block {
	uint64_t vaddr;
	uint64_t execs;		/* the vCPU's inline counter */
	uint64_t execs_seen;	/* at the last mark */
	uint64_t translations;
	uint64_t translations_seen;
	uint32_t insns;
	struct block *next;
};

struct sym {
	uint64_t addr;
	uint64_t insns;
	char *name;
};

static struct block *table[BUCKETS];
static pthread_mutex_t table_lock = PTHREAD_MUTEX_INITIALIZER;
static char *dir;
static size_t top_syms = 25;
static struct sym *syms;
static size_t n_syms;

static size_t
bucket(uint64_t vaddr)
{
	return (size_t)((vaddr * 0x9e3779b97f4a7c15ull) >> 46) & (BUCKETS - 1);
}

static void
on_translate(qemu_plugin_id_t id, struct qemu_plugin_tb *tb)
{
	uint64_t vaddr = qemu_plugin_tb_vaddr(tb);
	uint32_t insns = (uint32_t)qemu_plugin_tb_n_insns(tb);
	size_t h = bucket(vaddr);
	struct block *b;

	(void)id;
	pthread_mutex_lock(&table_lock);
	for (b = table[h]; b; b = b->next)
		if (b->vaddr == vaddr && b->insns == insns)
			break;
	if (!b) {
		b = calloc(1, sizeof(*b));
		if (!b) {
			pthread_mutex_unlock(&table_lock);
			return;
		}
		b->vaddr = vaddr;
		b->insns = insns;
		b->next = table[h];
		table[h] = b;
	}
	b->translations++;
	pthread_mutex_unlock(&table_lock);
	qemu_plugin_register_vcpu_tb_exec_inline(tb, QEMU_PLUGIN_INLINE_ADD_U64,
						 &b->execs, 1);
}

static int
by_addr(const void *a, const void *b)
{
	const struct sym *x = a, *y = b;

	return x->addr < y->addr ? -1 : x->addr > y->addr;
}

/* DIR/kallsyms: the guest's text symbols (its own addresses: KASLR). */
static void
load_syms(void)
{
	char path[4096], line[512], name[256], type;
	size_t cap = 0;
	uint64_t addr;
	FILE *f;

	snprintf(path, sizeof(path), "%s/kallsyms", dir);
	f = fopen(path, "r");
	if (!f)
		return;
	while (fgets(line, sizeof(line), f)) {
		if (sscanf(line, "%" SCNx64 " %c %255s", &addr, &type, name) != 3 ||
		    !strchr("tTwW", type) || addr < KERNEL_BASE)
			continue;
		if (n_syms == cap) {
			struct sym *n;

			cap = cap ? 2 * cap : 4096;
			n = realloc(syms, cap * sizeof(*syms));
			if (!n)
				break;
			syms = n;
		}
		syms[n_syms].addr = addr;
		syms[n_syms].insns = 0;
		syms[n_syms].name = strdup(name);
		if (syms[n_syms].name)
			n_syms++;
	}
	fclose(f);
	qsort(syms, n_syms, sizeof(*syms), by_addr);
}

static struct sym *
sym_of(uint64_t addr)
{
	size_t lo = 0, hi = n_syms;

	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;

		if (syms[mid].addr <= addr)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo ? &syms[lo - 1] : NULL;
}

static int
by_insns_desc(const void *a, const void *b)
{
	const struct sym *x = *(struct sym *const *)a;
	const struct sym *y = *(struct sym *const *)b;

	return x->insns > y->insns ? -1 : x->insns < y->insns;
}

static void
write_top_syms(FILE *out, double per)
{
	struct sym **top = malloc(n_syms * sizeof(*top));
	size_t n = 0;

	for (size_t i = 0; top && i < n_syms; i++)
		if (syms[i].insns)
			top[n++] = &syms[i];
	if (top)
		qsort(top, n, sizeof(*top), by_insns_desc);
	for (size_t i = 0; top && i < n && i < top_syms; i++)
		fprintf(out, "sym %s %.0f\n", top[i]->name,
			(double)top[i]->insns / per);
	free(top);
}

/* What ran since the last mark, per `per`, into DIR/LABEL.txt. */
static void
report(const char *label, double per)
{
	uint64_t kernel = 0, user = 0, execs = 0, translations = 0;
	char path[4096], tmp[4096];
	FILE *out;

	if (!n_syms)
		load_syms();
	for (size_t i = 0; i < n_syms; i++)
		syms[i].insns = 0;
	pthread_mutex_lock(&table_lock);
	for (size_t h = 0; h < BUCKETS; h++) {
		for (struct block *b = table[h]; b; b = b->next) {
			uint64_t now = __atomic_load_n(&b->execs,
						       __ATOMIC_RELAXED);
			uint64_t d = now - b->execs_seen;
			struct sym *s;

			b->execs_seen = now;
			translations += b->translations - b->translations_seen;
			b->translations_seen = b->translations;
			execs += d;
			if (b->vaddr < KERNEL_BASE) {
				user += d * b->insns;
				continue;
			}
			kernel += d * b->insns;
			s = sym_of(b->vaddr);
			if (s)
				s->insns += d * b->insns;
		}
	}
	pthread_mutex_unlock(&table_lock);
	if (!strcmp(label, "-"))
		return;
	if (snprintf(path, sizeof(path), "%s/%s.txt", dir, label) >=
		    (int)sizeof(path) ||
	    snprintf(tmp, sizeof(tmp), "%s/%s.tmp", dir, label) >=
		    (int)sizeof(tmp))
		return;
	out = fopen(tmp, "w");
	if (!out)
		return;
	fprintf(out, "insns %.0f\nkernel %.0f\nuser %.0f\ntb_execs %.0f\n"
		"translations %.0f\n", (double)(kernel + user) / per,
		(double)kernel / per, (double)user / per, (double)execs / per,
		(double)translations / per);
	write_top_syms(out, per);
	if (fclose(out) == 0)
		rename(tmp, path);
}

/* Marks come as files (QEMU owns stdin and the monitor). */
static void *
watch_marks(void *arg)
{
	char path[4096], label[128];
	double per;

	(void)arg;
	snprintf(path, sizeof(path), "%s/mark", dir);
	for (;;) {
		FILE *f = fopen(path, "r");

		if (!f) {
			usleep(20000);
			continue;
		}
		if (fscanf(f, "%127s %lf", label, &per) != 2 || !(per > 0) ||
		    strchr(label, '/')) {
			snprintf(label, sizeof(label), "-");
			per = 1;
		}
		fclose(f);
		report(label, per);
		unlink(path);
	}
	return NULL;
}

int
qemu_plugin_install(qemu_plugin_id_t id, const void *info, int argc,
		    char **argv)
{
	pthread_t watcher;

	(void)info;
	for (int i = 0; i < argc; i++)
		if (!strncmp(argv[i], "dir=", 4))
			dir = strdup(argv[i] + 4);
		else if (!strncmp(argv[i], "top=", 4))
			top_syms = strtoul(argv[i] + 4, NULL, 10);
	if (!dir) {
		fprintf(stderr, "guest-insns: no dir=PATH argument\n");
		return -1;
	}
	qemu_plugin_register_vcpu_tb_trans_cb(id, on_translate);
	if (pthread_create(&watcher, NULL, watch_marks, NULL)) {
		fprintf(stderr, "guest-insns: %s\n", strerror(errno));
		return -1;
	}
	pthread_detach(watcher);
	return 0;
}
