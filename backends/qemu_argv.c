/*
 * The QEMU command line as a pure function of struct qemu_cmd_params: no
 * file is touched, so tests/unit/test_qemu_argv.c checks it without QEMU.
 * With a start command the machine-defining arguments are the script's own
 * and the rest go to it in QEMU_OPTS.
 */
#include "backends/qemu_internal.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void
qemu_vec_push(struct qemu_vec *vec, char *s)
{
	if (vec->n + 2 > vec->cap) {
		vec->cap = vec->cap ? vec->cap * 2 : 32;
		vec->v = xrealloc(vec->v, vec->cap * sizeof(char *));
	}
	vec->v[vec->n++] = s;
	vec->v[vec->n] = NULL;
}

void
qemu_vec_free(struct qemu_vec *vec)
{
	size_t i;

	for (i = 0; i < vec->n; i++)
		free(vec->v[i]);
	free(vec->v);
	vec->v = NULL;
	vec->n = vec->cap = 0;
}

void
qemu_sb_add_opt_value(struct strbuf *sb, const char *s)
{
	for (; *s; s++) {
		if (*s == ',')
			sb_add(sb, ",", 1);
		sb_add(sb, s, 1);
	}
}

bool
qemu_sb_add_opts_word(struct strbuf *sb, const char *arg)
{
	const char *p;

	if (*arg) {
		for (p = arg; *p; p++)
			if (!strchr("abcdefghijklmnopqrstuvwxyz"
				    "ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789"
				    "_@%+=:,./-", *p))
				break;
		if (!*p) {
			sb_adds(sb, arg);
			return false;
		}
	}
	sb_add_shell_quoted(sb, arg, strlen(arg));
	return true;
}

unsigned
qemu_name_byte(const char *name)
{
	uint32_t h = 2166136261u;

	for (; name && *name; name++) {
		h ^= (unsigned char)*name;
		h *= 16777619u;
	}
	return h % 254 + 1;
}

/*
 * Collects the arguments. With a start command, the machine-defining ones
 * (the script has its own) are left out and the rest go to QEMU_OPTS.
 */
struct qemu_args {
	struct qemu_vec vec;
	bool script;
};

static void
qemu_arg(struct qemu_args *a, bool machine_only, const char *s)
{
	if (a->script && machine_only)
		return;
	qemu_vec_push(&a->vec, xstrdup(s));
}

static void
qemu_arg2(struct qemu_args *a, bool machine_only, const char *opt,
	  const char *val)
{
	qemu_arg(a, machine_only, opt);
	qemu_arg(a, machine_only, val);
}

/* Append opt and a value from a printf format with %s parts that are
 * already escaped by the caller. */
static void
qemu_argf(struct qemu_args *a, bool machine_only, const char *opt,
	  struct strbuf *val)
{
	qemu_arg2(a, machine_only, opt, val->data ? val->data : "");
	sb_free(val);
}

char *
qemu_overlay_path(const char *state_dir, size_t i, unsigned launch)
{
	return launch ? xasprintf("%s/disk.%zu.%u.qcow2", state_dir, i, launch) :
			xasprintf("%s/disk.%zu.qcow2", state_dir, i);
}


/* What the command line cannot be built from. */
static int
qemu_cmd_check(const struct qemu_cmd_params *p, struct aerr *err)
{
	const struct backend_config *cfg = p->cfg;
	size_t i;

	if (!cfg->name || !*cfg->name) {
		aerr_set(err, "qemu: machine has no name");
		return -EINVAL;
	}
	if (!p->console_path || !p->state_dir) {
		aerr_set(err, "qemu: console socket and state directory needed");
		return -EINVAL;
	}
	if (cfg->shell_console && p->n_shells < 1) {
		aerr_set(err, "qemu: the console shell channel needs a socket");
		return -EINVAL;
	}
	if (!cfg->start_command && strcmp(p->accel, "kvm") &&
	    strcmp(p->accel, "tcg")) {
		aerr_set(err, "qemu: accel must be kvm or tcg, not '%s'",
			 p->accel);
		return -EINVAL;
	}
	for (i = 0; i < p->n_nics; i++) {
		if (p->nics[i].vlan < 1 || p->nics[i].vlan > 255 ||
		    !p->nics[i].switch_path) {
			aerr_set(err, "qemu: VLAN NIC %zu: bad vlan %u or no "
				 "switch", i, p->nics[i].vlan);
			return -EINVAL;
		}
	}
	return 0;
}

/*
 * What -cpu max offers that TCG runs slowly, off under TCG. With ERMS the
 * guest kernel clears and copies pages with rep stosb/movsb, which TCG runs
 * one byte an iteration (4096 for a page, 512 with rep stosq); LA57 gives
 * every softmmu page walk a fifth level; with SMAP each user copy switches
 * the kernel's MMU index and ends a translation block. Measured in the tiny
 * guest: a subshell fork 27 % and `true` 26 % faster (README, "Speed").
 * Defaults of the max CPU's class rather than a -cpu of our own, so a start
 * script's own -cpu max gets them too and a user's -cpu has the last word;
 * on another architecture QEMU only warns of the unknown class.
 */
static const char *const tcg_cpu_globals[] = {
	"max-x86_64-cpu.erms=off",
	"max-x86_64-cpu.la57=off",
	"max-x86_64-cpu.smap=off",
};

/* The machine itself: name, board, accelerator, CPUs, memory, kernel. */
static void
qemu_cmd_machine(struct qemu_args *a, const struct qemu_cmd_params *p)
{
	const struct backend_config *cfg = p->cfg;
	int mib = cfg->memory_mib > 0 ? cfg->memory_mib : 256;
	struct strbuf sb;
	char num[32];
	size_t i;

	sb_init(&sb);
	if (!a->script)
		qemu_arg(a, true, p->qemu_bin);
	qemu_sb_add_opt_value(&sb, cfg->name);
	qemu_argf(a, true, "-name", &sb);
	qemu_arg(a, false, "-nodefaults");
	qemu_arg(a, false, "-no-user-config");
	qemu_arg2(a, false, "-display", "none");
	qemu_arg2(a, false, "-vga", "std");
	if (p->ram_path && !a->script) {
		sb_addf(&sb, "memory-backend-file,id=mem,size=%dM,mem-path=",
			mib);
		qemu_sb_add_opt_value(&sb, p->ram_path);
		sb_addf(&sb, ",share=%s", p->ram_shared ? "on" : "off");
		qemu_argf(a, true, "-object", &sb);
		qemu_arg2(a, true, "-machine", "q35,memory-backend=mem");
	} else {
		qemu_arg2(a, true, "-machine", "q35");
	}
	qemu_arg2(a, true, "-accel", p->accel);
	qemu_arg2(a, true, "-cpu", "max");
	for (i = 0; p->tcg_cpu && i < sizeof(tcg_cpu_globals) /
		    sizeof(tcg_cpu_globals[0]); i++)
		qemu_arg2(a, false, "-global", tcg_cpu_globals[i]);
	snprintf(num, sizeof(num), "%d", cfg->cpus > 0 ? cfg->cpus : 1);
	qemu_arg2(a, true, "-smp", num);
	snprintf(num, sizeof(num), "%d", mib);
	qemu_arg2(a, true, "-m", num);
	if (cfg->kernel)
		qemu_arg2(a, true, "-kernel", cfg->kernel);
	if (cfg->initrd)
		qemu_arg2(a, true, "-initrd", cfg->initrd);
	if (cfg->append)
		qemu_arg2(a, true, "-append", cfg->append);
}

/* The sockets machine/ listens on (console, shells) and QMP's. */
static void
qemu_cmd_chardevs(struct qemu_args *a, const struct qemu_cmd_params *p)
{
	struct strbuf sb;
	size_t i, first = 0;

	sb_init(&sb);
	sb_adds(&sb, "socket,id=console,path=");
	qemu_sb_add_opt_value(&sb, p->console_path);
	qemu_argf(a, false, "-chardev", &sb);
	qemu_arg2(a, false, "-serial", "chardev:console");

	sb_adds(&sb, "unix:");
	qemu_sb_add_opt_value(&sb, p->state_dir);
	if (p->vmm_tag) {
		sb_adds(&sb, "/qmp.");
		qemu_sb_add_opt_value(&sb, p->vmm_tag);
		sb_adds(&sb, ".sock,server=on,wait=off");
	} else {
		sb_adds(&sb, "/qmp.sock,server=on,wait=off");
	}
	qemu_argf(a, false, "-qmp", &sb);

	qemu_arg2(a, false, "-device", "virtio-serial-pci,id=vser0");
	/*
	 * A stock NixOS guest's shell is on the console (hvc0, port 0 of the
	 * bus: added first). The sockets after it are virtserialports that
	 * machine/ starts shells on from hvc0 (attestfs.shell.0 is the second
	 * socket); a guest that ignores them still boots as before.
	 */
	if (p->cfg->shell_console) {
		sb_adds(&sb, "socket,id=shell0,path=");
		qemu_sb_add_opt_value(&sb, p->shell_paths[0]);
		qemu_argf(a, false, "-chardev", &sb);
		qemu_arg2(a, false, "-device", "virtconsole,chardev=shell0");
		first = 1;
	}
	for (i = first; i < p->n_shells; i++) {
		sb_addf(&sb, "socket,id=shell%zu,path=", i);
		qemu_sb_add_opt_value(&sb, p->shell_paths[i]);
		qemu_argf(a, false, "-chardev", &sb);
		sb_addf(&sb, "virtserialport,bus=vser0.0,chardev=shell%zu,"
			"name=attestfs.shell.%zu", i, i - first);
		qemu_argf(a, false, "-device", &sb);
	}
}

/*
 * After loading a saved state, QEMU has every virtio NIC that offers guest
 * announce raise it five times (0, 50, 200, 450 and 800 ms of guest time):
 * each a config interrupt, gratuitous ARP, unsolicited neighbour adverts
 * and rtnetlink events in the guest, translated afresh under TCG while a
 * restore's first command runs, and a clone's first ones carry its
 * source's MAC. QEMU still sends its own RARP with the NIC's MAC. Not
 * announce-rounds 0: QEMU 7.2 then frees the NIC's announce timer on load
 * and dereferences it at the next device reset, a guest reboot.
 */
#define NO_GUEST_ANNOUNCE "guest_announce=off,"

/* The RNG, the NICs and the disks. */
static void
qemu_cmd_devices(struct qemu_args *a, const struct qemu_cmd_params *p)
{
	struct strbuf sb;
	size_t i;

	sb_init(&sb);
	qemu_arg2(a, false, "-device", "virtio-rng-pci");
	qemu_arg2(a, true, "-netdev", "user,id=user0,restrict=on");
	sb_addf(&sb, "virtio-net-pci,netdev=user0,id=nic0," NO_GUEST_ANNOUNCE
		"mac=52:54:00:12:00:%02x", p->mac_byte & 0xff);
	qemu_argf(a, true, "-device", &sb);
	/* One NIC per VLAN, as NixOS lays them out: eth1, eth2, ... */
	for (i = 0; i < p->n_nics; i++) {
		const struct backend_nic *n = &p->nics[i];

		sb_addf(&sb, "vde,id=vlan%u,sock=", n->vlan);
		qemu_sb_add_opt_value(&sb, n->switch_path);
		qemu_argf(a, true, "-netdev", &sb);
		sb_addf(&sb, "virtio-net-pci,netdev=vlan%u," NO_GUEST_ANNOUNCE
			"mac=", n->vlan);
		qemu_sb_add_opt_value(&sb, n->mac);
		qemu_argf(a, true, "-device", &sb);
	}
	for (i = 0; i < p->cfg->n_disks && !a->script; i++) {
		char *overlay = qemu_overlay_path(p->state_dir, i, p->launch);

		sb_adds(&sb, "file=");
		qemu_sb_add_opt_value(&sb, overlay);
		free(overlay);
		sb_addf(&sb, ",format=qcow2,if=none,id=disk.%zu,"
			"cache=unsafe,discard=unmap", i);
		qemu_argf(a, true, "-drive", &sb);
		sb_addf(&sb, "virtio-blk-pci,drive=disk.%zu", i);
		qemu_argf(a, true, "-device", &sb);
	}
}

/* Start script: `/bin/sh -c CMD`, the arguments in QEMU_OPTS. */
static void
qemu_cmd_script(struct qemu_args *a, const struct qemu_cmd_params *p,
		struct qemu_cmd *out)
{
	struct qemu_vec env = { 0 };
	struct strbuf sb;
	size_t i;

	sb_init(&sb);
	sb_adds(&sb, "QEMU_OPTS=");
	for (i = 0; i < a->vec.n; i++) {
		if (i)
			sb_adds(&sb, " ");
		if (qemu_sb_add_opts_word(&sb, a->vec.v[i]))
			out->opts_quoted = true;
	}
	qemu_vec_push(&env, sb_detach(&sb, NULL));
	qemu_vec_push(&env, xasprintf("TMPDIR=%s", p->state_dir));
	qemu_vec_push(&env, xasprintf("SHARED_DIR=%s/shared", p->state_dir));
	qemu_vec_push(&env, xstrdup("USE_TMPDIR=1"));
	for (i = 0; i < p->n_nics; i++)
		qemu_vec_push(&env, xasprintf("QEMU_VDE_SOCKET_%u=%s",
					      p->nics[i].vlan,
					      p->nics[i].switch_path));
	qemu_vec_free(&a->vec);

	qemu_vec_push(&a->vec, xstrdup("/bin/sh"));
	qemu_vec_push(&a->vec, xstrdup("-c"));
	qemu_vec_push(&a->vec, xstrdup(p->cfg->start_command));
	out->argv = a->vec.v;
	out->argc = a->vec.n;
	out->env = env.v;
	out->n_env = env.n;
}

/* The "qemu_args" key (an array of strings: check_config saw to it), as a
 * malloc'd vector of strings borrowed from cfg->own. */
const char **
qemu_own_args(const struct backend_config *cfg, size_t *n)
{
	struct json_object *a = NULL;
	const char **v;
	size_t i;

	*n = 0;
	if (cfg->own && json_object_object_get_ex(cfg->own, "qemu_args", &a) &&
	    json_object_is_type(a, json_type_array))
		*n = json_object_array_length(a);
	v = xcalloc(*n + 1, sizeof(*v));
	for (i = 0; i < *n; i++)
		v[i] = json_object_get_string(json_object_array_get_idx(a, i));
	return v;
}

int
qemu_build_cmd(const struct qemu_cmd_params *p, struct qemu_cmd *out,
	       struct aerr *err)
{
	struct qemu_args a = { .script = p->cfg->start_command != NULL };
	struct qemu_vec env = { 0 };
	struct strbuf sb;
	size_t i;
	int ret;

	memset(out, 0, sizeof(*out));
	ret = qemu_cmd_check(p, err);
	if (ret < 0)
		return ret;
	qemu_cmd_machine(&a, p);
	qemu_cmd_chardevs(&a, p);
	qemu_cmd_devices(&a, p);
	sb_init(&sb);
	if (p->vmm_tag)
		sb_addf(&sb, "%s/qemu.%s.pid", p->state_dir, p->vmm_tag);
	else
		sb_addf(&sb, "%s/qemu.pid", p->state_dir);
	qemu_argf(&a, false, "-pidfile", &sb);
	for (i = 0; i < p->n_qemu_args; i++)
		qemu_arg(&a, false, p->qemu_args[i]);
	if (a.script) {
		qemu_cmd_script(&a, p, out);
		return 0;
	}
	out->argv = a.vec.v;
	out->argc = a.vec.n;
	qemu_vec_push(&env, NULL); /* an empty, NULL-terminated list */
	env.n = 0;
	out->env = env.v;
	return 0;
}

void
qemu_cmd_free(struct qemu_cmd *c)
{
	struct qemu_vec v = { .v = c->argv, .n = c->argc };
	struct qemu_vec e = { .v = c->env, .n = c->n_env };

	qemu_vec_free(&v);
	qemu_vec_free(&e);
	memset(c, 0, sizeof(*c));
}
