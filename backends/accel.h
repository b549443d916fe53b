/*
 * Choosing QEMU's accelerator. "auto" uses KVM only after a probe booted the
 * machine's kernel under it: on some hosts /dev/kvm opens and creates VMs,
 * yet ordinary guest kernels hang (a nested PVM host). The verdict is cached
 * in $XDG_CACHE_HOME/attestfs/accel-probe (or ~/.cache/attestfs/...), keyed
 * by the QEMU binary (path, size, mtime) and the host kernel release.
 */
#ifndef ATTESTFS_BACKENDS_ACCEL_H
#define ATTESTFS_BACKENDS_ACCEL_H

#include <stdbool.h>

#include "common/util.h"

struct accel_probe_params {
	const char *qemu_bin;   /* as given to execvp */
	const char *kernel;     /* NULL: the probe cannot run, tcg */
	const char *initrd;     /* may be NULL */
	const char *work_dir;   /* probe files go here (the state dir) */
	int timeout_ms;         /* 0: 4000 */
};

/*
 * Resolve want ("auto" | "kvm" | "tcg"; NULL = "auto") to "kvm" or "tcg"
 * (a static string in *out). For auto, why gets one line for the machine's
 * log ("accel auto: kvm probe failed (...), using tcg"). Unknown values are
 * -EINVAL. Thread-safe: concurrent probes are serialised.
 */
int accel_choose(const char *want, const struct accel_probe_params *p,
		 const char **out, struct strbuf *why, struct aerr *err);

/*
 * Whether a start script's QEMU runs TCG, as far as attestfs can know: the
 * script picks its own accelerator, so only want "tcg", or "auto" (NULL)
 * without a /dev/kvm to open, say so.
 */
bool accel_script_runs_tcg(const char *want);

/* The cache file's path (malloc'd), or NULL without $XDG_CACHE_HOME/$HOME. */
char *accel_cache_path(void);

#endif
