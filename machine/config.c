/*
 * The JSON config file. Everything a user can get wrong is caught here, at
 * mount time, with the file, the key and the reason, because a mistake found
 * later only shows up as an errno on some file in the tree.
 */
#include "machine/config.h"

#include <ctype.h>
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <json-c/json.h>

#include "backends/backend.h"

#define NAME_MAX_LEN 63

static const char *const reserved_names[] = { "ctl", "events", "attest.sh" };

static const char *const top_keys[] = { "timeout", "machines", NULL };

/* Every backend's; a backend's own keys are in its backend_ops. */
static const char *const machine_keys[] = {
	"backend", "cpus", "memory_mib", "kernel", "initrd", "append",
	"disks", "accel", "start_command", "shells", "shell_channel",
	"timeout", "vlans", "guest_agent", NULL,
};

static const char *const accel_names[] = { "auto", "kvm", "tcg", NULL };

static const char *const channel_names[] = {
	"virtserialport", "virtconsole", NULL,
};

/* What the parse is looking at, so every message can say where. */
struct ctx {
	const char *file;
	const char *base_dir;
	char *where;	/* "machines.NAME" or NULL at the top level */
	struct aerr *err;
};

/*
 * Names and keys come from the user's file and end up in a log line: keep
 * control bytes out of it.
 */
static void
sb_add_printable(struct strbuf *sb, const char *s)
{
	for (; *s; s++) {
		unsigned char c = (unsigned char)*s;

		if (c < 0x20 || c == 0x7f)
			sb_addf(sb, "\\x%02x", c);
		else
			sb_add(sb, s, 1);
	}
}

static int
fail(struct ctx *c, const char *key, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

static int
fail(struct ctx *c, const char *key, const char *fmt, ...)
{
	struct strbuf sb;
	va_list ap;

	sb_init(&sb);
	sb_addf(&sb, "%s: ", c->file);
	if (c->where)
		sb_adds(&sb, c->where);
	if (c->where && key)
		sb_adds(&sb, ".");
	if (key)
		sb_add_printable(&sb, key);
	if (c->where || key)
		sb_adds(&sb, ": ");
	va_start(ap, fmt);
	aerr_vset_after(c->err, sb.data, fmt, ap);
	va_end(ap);
	sb_free(&sb);
	return -EINVAL;
}

static int
lower(int ch)
{
	return tolower((unsigned char)ch);
}

/* Case-insensitive edit distance: "CPUS" and "cpu" both point at "cpus". */
static size_t
edit_distance(const char *a, const char *b)
{
	size_t la = strlen(a), lb = strlen(b), i, j;
	size_t *row, d;

	if (la > 64 || lb > 64)
		return SIZE_MAX;
	row = xcalloc(lb + 1, sizeof(*row));
	for (j = 0; j <= lb; j++)
		row[j] = j;
	for (i = 1; i <= la; i++) {
		size_t diag = row[0];

		row[0] = i;
		for (j = 1; j <= lb; j++) {
			size_t up = row[j];
			size_t best = diag + (lower(a[i - 1]) != lower(b[j - 1]));

			if (up + 1 < best)
				best = up + 1;
			if (row[j - 1] + 1 < best)
				best = row[j - 1] + 1;
			diag = up;
			row[j] = best;
		}
	}
	d = row[lb];
	free(row);
	return d;
}

static const char *
suggest(const char *key, const char *const *known)
{
	const char *best = NULL;
	size_t best_d = SIZE_MAX, klen = strlen(key);

	for (; *known; known++) {
		size_t d = edit_distance(key, *known);
		size_t n = strlen(*known);

		/* "memory" for "memory_mib": a prefix is a clear intent. */
		if (klen >= 3 && klen < n && !strncasecmp(key, *known, klen))
			d = 1;
		if (d < best_d) {
			best_d = d;
			best = *known;
		}
	}
	if (best_d <= 2 && best_d < klen)
		return best;
	return NULL;
}

static int
in_list(const char *s, const char *const *list)
{
	for (; *list; list++)
		if (!strcmp(s, *list))
			return 1;
	return 0;
}

static void
sb_add_choices(struct strbuf *sb, const char *const *list)
{
	size_t n = 0, i;

	while (list[n])
		n++;
	for (i = 0; i < n; i++) {
		if (i > 0)
			sb_adds(sb, i + 1 == n ? " or " : ", ");
		sb_addf(sb, "\"%s\"", list[i]);
	}
}

/* known, then more (NULL: none): the keys a suggestion may name. */
static int
fail_unknown_key(struct ctx *c, const char *key, const char *const *known,
		 const char *const *more)
{
	size_t n = 0, m = 0;
	const char **all, *hint;
	struct strbuf sb;
	int ret;

	while (known[n])
		n++;
	while (more && more[m])
		m++;
	all = xcalloc(n + m + 1, sizeof(*all));
	memcpy(all, known, n * sizeof(*all));
	if (m)
		memcpy(all + n, more, m * sizeof(*all));
	hint = suggest(key, all);
	free(all);

	sb_init(&sb);
	sb_add_printable(&sb, key);
	if (hint)
		ret = fail(c, NULL, "unknown key \"%s\" (did you mean \"%s\"?)",
			   sb.data, hint);
	else
		ret = fail(c, NULL, "unknown key \"%s\"", sb.data);
	sb_free(&sb);
	return ret;
}

static int
get_int(struct ctx *c, const char *key, struct json_object *v,
	int64_t min, int64_t max, int *out)
{
	int64_t n;

	if (json_object_is_type(v, json_type_double))
		return fail(c, key, "expected an integer, got %s",
			    json_object_to_json_string(v));
	if (!json_object_is_type(v, json_type_int))
		return fail(c, key, "expected an integer, got %s",
			    backend_json_type(v));
	n = json_object_get_int64(v);
	/* json-c clamps larger literals to INT64_MAX; still out of range. */
	if (n < min || n > max)
		return fail(c, key, "must be between %lld and %lld, got %s",
			    (long long)min, (long long)max,
			    json_object_to_json_string(v));
	*out = (int)n;
	return 0;
}

static int
get_bool(struct ctx *c, const char *key, struct json_object *v, int *out)
{
	if (!json_object_is_type(v, json_type_boolean))
		return fail(c, key, "expected true or false, got %s",
			    backend_json_type(v));
	*out = json_object_get_boolean(v) ? 1 : 0;
	return 0;
}

/* A string without NUL bytes: everything here ends up in argv or a path. */
static int
check_string(struct ctx *c, const char *key, struct json_object *v,
	     const char *what)
{
	const char *s;

	if (!json_object_is_type(v, json_type_string))
		return fail(c, key, "expected %s, got %s", what, backend_json_type(v));
	s = json_object_get_string(v);
	if (strlen(s) != (size_t)json_object_get_string_len(v))
		return fail(c, key, "contains a NUL character");
	return 0;
}

static int
get_string(struct ctx *c, const char *key, struct json_object *v, char **out)
{
	int ret = check_string(c, key, v, "a string");

	if (ret < 0)
		return ret;
	free(*out);
	*out = xstrdup(json_object_get_string(v));
	return 0;
}

static int
get_path(struct ctx *c, const char *key, struct json_object *v, char **out)
{
	int ret = get_string(c, key, v, out);

	if (ret < 0)
		return ret;
	if (!**out)
		return fail(c, key, "empty path");
	return 0;
}

static int
get_choice(struct ctx *c, const char *key, struct json_object *v,
	   const char *const *choices, const char *what, char **out)
{
	struct strbuf sb;
	int ret = get_string(c, key, v, out);

	if (ret < 0)
		return ret;
	if (in_list(*out, choices))
		return 0;
	sb_init(&sb);
	sb_addf(&sb, "unknown %s \"", what);
	sb_add_printable(&sb, *out);
	sb_adds(&sb, "\" (expected ");
	sb_add_choices(&sb, choices);
	sb_adds(&sb, ")");
	ret = fail(c, key, "%s", sb.data);
	sb_free(&sb);
	return ret;
}

static int
get_string_array(struct ctx *c, const char *key, struct json_object *v,
		 int paths, char ***out, size_t *n_out)
{
	size_t i, n;
	char **strv;

	if (!json_object_is_type(v, json_type_array))
		return fail(c, key, "expected an array of strings, got %s",
			    backend_json_type(v));
	n = json_object_array_length(v);
	strv = xcalloc(n + 1, sizeof(*strv));
	for (i = 0; i < n; i++) {
		struct json_object *e = json_object_array_get_idx(v, i);
		char *ekey = xasprintf("%s[%zu]", key, i);
		int ret = check_string(c, ekey, e, "a string");

		if (ret == 0 && paths && !*json_object_get_string(e))
			ret = fail(c, ekey, "empty path");
		free(ekey);
		if (ret < 0) {
			config_strv_free(strv, i);
			return ret;
		}
		strv[i] = xstrdup(json_object_get_string(e));
	}
	config_strv_free(*out, *n_out);
	*out = strv;
	*n_out = n;
	return 0;
}

/* "vlans": [1, 2]: distinct VLAN numbers, 1..255. */
static int
get_vlans(struct ctx *c, const char *key, struct json_object *v,
	  unsigned **out, size_t *n_out)
{
	size_t i, j, n;
	unsigned *vlans;

	if (!json_object_is_type(v, json_type_array))
		return fail(c, key, "expected an array of VLAN numbers, got %s",
			    backend_json_type(v));
	n = json_object_array_length(v);
	vlans = xcalloc(n + 1, sizeof(*vlans));
	for (i = 0; i < n; i++) {
		char *ekey = xasprintf("%s[%zu]", key, i);
		int num = 0, ret;

		ret = get_int(c, ekey, json_object_array_get_idx(v, i), 1, 255,
			      &num);
		for (j = 0; ret == 0 && j < i; j++)
			if (vlans[j] == (unsigned)num)
				ret = fail(c, ekey, "VLAN %d is listed twice",
					   num);
		free(ekey);
		if (ret < 0) {
			free(vlans);
			return ret;
		}
		vlans[i] = (unsigned)num;
	}
	free(*out);
	*out = vlans;
	*n_out = n;
	return 0;
}

int
config_name_is_valid(const char *name, struct aerr *err)
{
	size_t i, len = name ? strlen(name) : 0;

	if (len == 0) {
		aerr_set(err, "empty name");
		return -EINVAL;
	}
	if (len > NAME_MAX_LEN) {
		aerr_set(err, "name longer than %d characters", NAME_MAX_LEN);
		return -EINVAL;
	}
	for (i = 0; i < len; i++) {
		unsigned char ch = (unsigned char)name[i];

		if (isalnum(ch) || ch == '_' || ch == '.' || ch == '-')
			continue;
		if (ch >= 0x20 && ch < 0x7f)
			aerr_set(err, "invalid character '%c' in name "
				 "(allowed: A-Z a-z 0-9 _ . -)", ch);
		else
			aerr_set(err, "invalid character \\x%02x in name "
				 "(allowed: A-Z a-z 0-9 _ . -)", ch);
		return -EINVAL;
	}
	/* A leading '-' reads as an option to every tool; '.' hides it. */
	if (name[0] == '.' || name[0] == '-') {
		aerr_set(err, "name must not start with '%c'", name[0]);
		return -EINVAL;
	}
	for (i = 0; i < sizeof(reserved_names) / sizeof(reserved_names[0]); i++) {
		if (!strcmp(name, reserved_names[i])) {
			aerr_set(err, "reserved name");
			return -EINVAL;
		}
	}
	return 0;
}

/* Copies: a launch may be reading the originals meanwhile. */
/*
 * Unset optional strings are left out rather than written as null, so the
 * output (minus "name") is itself a valid machine entry.
 */
static char *
resolve_path(const char *base_dir, const char *p)
{
	size_t blen;

	if (p[0] == '/')
		return xstrdup(p);
	while (p[0] == '.' && p[1] == '/') {
		p += 2;
		while (*p == '/')
			p++;
	}
	blen = strlen(base_dir);
	while (blen > 1 && base_dir[blen - 1] == '/')
		blen--;
	if (blen == 1 && base_dir[0] == '/')
		return xasprintf("/%s", p);
	return xasprintf("%.*s/%s", (int)blen, base_dir, p);
}

/*
 * Relative paths against the config file's directory. Whether the files
 * must exist is the backend's to say (the mock runs none of them).
 */
static void
resolve_files(struct ctx *c, struct machine_config *mc)
{
	size_t i;
	char *p;

	if (mc->kernel) {
		p = resolve_path(c->base_dir, mc->kernel);
		free(mc->kernel);
		mc->kernel = p;
	}
	if (mc->initrd) {
		p = resolve_path(c->base_dir, mc->initrd);
		free(mc->initrd);
		mc->initrd = p;
	}
	for (i = 0; i < mc->n_disks; i++) {
		p = resolve_path(c->base_dir, mc->disks[i]);
		free(mc->disks[i]);
		mc->disks[i] = p;
	}
	/* A bare command name is looked up in PATH when it runs. */
	if (mc->start_command && strchr(mc->start_command, '/')) {
		p = resolve_path(c->base_dir, mc->start_command);
		free(mc->start_command);
		mc->start_command = p;
	}
}

/* "backend": a row of backends/'s table. */
static int
get_backend(struct ctx *c, struct json_object *v, struct machine_config *mc)
{
	const char **names;
	size_t n = 0, i;
	int ret;

	while (backend_at(n))
		n++;
	names = xcalloc(n + 1, sizeof(*names));
	for (i = 0; i < n; i++)
		names[i] = backend_at(i)->name;
	ret = get_choice(c, "backend", v, names, "backend", &mc->backend);
	free(names);
	return ret;
}

/* The backend's own keys and what it makes of the generic ones. */
static int
check_backend(struct ctx *c, const struct backend_ops *ops,
	      struct json_object *obj, struct machine_config *mc)
{
	struct backend_config bc;
	struct backend_check chk = { .obj = obj, .cfg = &bc, .err = c->err };
	int ret = 0;

	machine_backend_config(mc, &bc);
	chk.own = json_object_new_object();
	chk.where = xasprintf("%s: %s", c->file, c->where);
	if (ops->check_config)
		ret = ops->check_config(&chk);
	free((char *)chk.where);
	if (ret < 0) {
		json_object_put(chk.own);
		return ret;
	}
	json_object_put(mc->backend_keys);
	mc->backend_keys = chk.own;
	return 0;
}

static int
parse_machine_key(struct ctx *c, struct machine_config *mc,
		  const struct backend_ops *ops, const char *key,
		  struct json_object *v)
{
	char *s = NULL;
	int ret;

	if (!strcmp(key, "backend"))
		return 0; /* parse_machine's, first */
	if (!strcmp(key, "cpus"))
		return get_int(c, key, v, 1, 64, &mc->cpus);
	if (!strcmp(key, "memory_mib"))
		return get_int(c, key, v, 16, 1048576, &mc->memory_mib);
	if (!strcmp(key, "kernel"))
		return get_path(c, key, v, &mc->kernel);
	if (!strcmp(key, "initrd"))
		return get_path(c, key, v, &mc->initrd);
	if (!strcmp(key, "append"))
		return get_string(c, key, v, &mc->append);
	if (!strcmp(key, "disks"))
		return get_string_array(c, key, v, 1, &mc->disks,
					&mc->n_disks);
	if (!strcmp(key, "accel"))
		return get_choice(c, key, v, accel_names, "accelerator",
				  &mc->accel);
	if (!strcmp(key, "start_command"))
		return get_path(c, key, v, &mc->start_command);
	/* On the console, the pool started on virtserialports from hvc0
	 * (machine/bootstrap.c); 1 there is hvc0 alone. */
	if (!strcmp(key, "shells"))
		return get_int(c, key, v, 1, 16, &mc->shells);
	if (!strcmp(key, "shell_channel")) {
		ret = get_choice(c, key, v, channel_names, "shell channel", &s);
		if (ret == 0)
			mc->shell_channel = !strcmp(s, "virtconsole") ?
				SHELL_CHANNEL_CONSOLE : SHELL_CHANNEL_PORTS;
		free(s);
		return ret;
	}
	if (!strcmp(key, "timeout"))
		return get_int(c, key, v, 1, INT_MAX, &mc->timeout);
	if (!strcmp(key, "vlans"))
		return get_vlans(c, key, v, &mc->vlans, &mc->n_vlans);
	if (!strcmp(key, "guest_agent"))
		return get_bool(c, key, v, &mc->guest_agent);
	if (ops->config_keys && in_list(key, ops->config_keys))
		return 0; /* the backend's: check_backend() */
	return fail_unknown_key(c, key, machine_keys, ops->config_keys);
}

/* The keys of an object already known to be a machine's. */
static int
parse_machine_keys(struct ctx *c, struct json_object *obj,
		   struct machine_config *mc, const struct backend_ops **ops)
{
	struct json_object *v;
	int ret;

	/* First: which keys the others may be depends on it. */
	if (json_object_object_get_ex(obj, "backend", &v)) {
		ret = get_backend(c, v, mc);
		if (ret < 0)
			return ret;
	}
	*ops = backend_find(mc->backend);
	json_object_object_foreach(obj, key, val) {
		ret = parse_machine_key(c, mc, *ops, key, val);
		if (ret < 0)
			return ret;
	}
	return 0;
}

static int
parse_machine(struct ctx *c, const char *name, struct json_object *obj,
	      struct machine_config *mc)
{
	const struct backend_ops *ops = NULL;
	struct aerr why;
	struct strbuf where;
	int ret;

	sb_init(&where);
	sb_adds(&where, "machines.");
	sb_add_printable(&where, name);
	c->where = sb_detach(&where, NULL);

	memset(mc, 0, sizeof(*mc));
	mc->name = xstrdup(name);
	mc->backend = xstrdup(backend_at(0)->name);
	mc->cpus = 1;
	mc->memory_mib = 256;
	mc->shells = 4;
	mc->shell_channel = SHELL_CHANNEL_PORTS;
	mc->guest_agent = 1;

	if (config_name_is_valid(name, &why) < 0) {
		ret = fail(c, NULL, "%s", why.msg);
		goto out;
	}
	if (!json_object_is_type(obj, json_type_object)) {
		ret = fail(c, NULL, "expected an object, got %s",
			   backend_json_type(obj));
		goto out;
	}
	ret = parse_machine_keys(c, obj, mc, &ops);
	if (ret < 0)
		goto out;
	resolve_files(c, mc);
	ret = check_backend(c, ops, obj, mc);
	if (ret < 0)
		goto out;
	machine_config_render_json(mc);
out:
	free(c->where);
	c->where = NULL;
	return ret;
}

static int
cmp_machine(const void *a, const void *b)
{
	const struct machine_config *x = a, *y = b;

	return strcmp(x->name, y->name);
}

static int
parse_machines(struct ctx *c, struct json_object *obj,
	       struct attest_config *cfg)
{
	size_t n, i = 0;
	int ret;

	if (!json_object_is_type(obj, json_type_object))
		return fail(c, "machines", "expected an object, got %s",
			    backend_json_type(obj));
	n = (size_t)json_object_object_length(obj);
	if (n == 0)
		return fail(c, "machines", "at least one machine is required");
	cfg->machines = xcalloc(n, sizeof(*cfg->machines));
	json_object_object_foreach(obj, name, v) {
		ret = parse_machine(c, name, v, &cfg->machines[i]);
		/* Count it either way: config_free() takes partial ones. */
		cfg->n_machines = ++i;
		if (ret < 0)
			return ret;
	}
	qsort(cfg->machines, cfg->n_machines, sizeof(*cfg->machines),
	      cmp_machine);
	return 0;
}

static int
parse_text(struct ctx *c, const char *text, struct json_object **out)
{
	struct json_tokener *tok = json_tokener_new();
	size_t len = strlen(text), off, i, line = 1, col = 1;
	enum json_tokener_error jerr;
	struct json_object *root;
	const char *desc;

	/* Strict: a config is JSON, not json-c's lenient superset. */
	json_tokener_set_flags(tok, JSON_TOKENER_STRICT |
			       JSON_TOKENER_VALIDATE_UTF8);
	/* The NUL too: without it a bare trailing number is "continue". */
	root = json_tokener_parse_ex(tok, text, (int)len + 1);
	jerr = json_tokener_get_error(tok);
	if (root && jerr == json_tokener_success) {
		json_tokener_free(tok);
		*out = root;
		return 0;
	}
	json_object_put(root);
	off = json_tokener_get_parse_end(tok);
	if (jerr == json_tokener_continue) {
		desc = "unexpected end of file";
		off = len;
	} else {
		desc = json_tokener_error_desc(jerr);
	}
	json_tokener_free(tok);
	if (off > len)
		off = len;
	for (i = 0; i < off; i++) {
		if (text[i] == '\n') {
			line++;
			col = 1;
		} else {
			col++;
		}
	}
	aerr_set(c->err, "%s:%zu:%zu: invalid JSON at byte %zu: %s",
		 c->file, line, col, off, desc);
	return -EINVAL;
}

int
config_parse(const char *text, const char *path, const char *base_dir,
	     struct attest_config *out, struct aerr *err)
{
	struct ctx c = { .file = path ? path : "(config)", .err = err };
	struct json_object *root = NULL, *machines = NULL;
	char *cwd = NULL;
	int have_machines = 0, ret;

	memset(out, 0, sizeof(*out));
	if (!base_dir) {
		cwd = getcwd(NULL, 0);
		if (!cwd) {
			ret = -errno;
			aerr_set(err, "%s: getcwd: %s", c.file, strerror(errno));
			return ret;
		}
		base_dir = cwd;
	}
	c.base_dir = base_dir;

	ret = parse_text(&c, text, &root);
	if (ret < 0)
		goto out;
	if (!json_object_is_type(root, json_type_object)) {
		ret = fail(&c, NULL, "expected a JSON object at the top, got %s",
			   backend_json_type(root));
		goto out;
	}
	json_object_object_foreach(root, key, v) {
		if (!strcmp(key, "timeout"))
			ret = get_int(&c, key, v, 1, INT_MAX, &out->timeout);
		else if (!strcmp(key, "machines"))
			machines = v, have_machines = 1;
		else
			ret = fail_unknown_key(&c, key, top_keys, NULL);
		if (ret < 0)
			goto out;
	}
	/* json-c's null is a NULL pointer: "machines": null is present. */
	if (!have_machines) {
		ret = fail(&c, "machines", "required key missing");
		goto out;
	}
	ret = parse_machines(&c, machines, out);
	if (ret < 0)
		goto out;
	out->path = xstrdup(c.file);
out:
	json_object_put(root);
	free(cwd);
	if (ret < 0)
		config_free(out);
	return ret;
}

/*
 * The directory is canonical so that every resolved path is clean; the file
 * name is kept, so a symlinked config resolves next to the link, which is
 * where its author sees it.
 */
static int
absolute_path(const char *path, char **abs, char **dir)
{
	const char *slash = strrchr(path, '/');
	char *d, *real;

	if (!slash)
		d = xstrdup(".");
	else if (slash == path)
		d = xstrdup("/");
	else
		d = xasprintf("%.*s", (int)(slash - path), path);
	real = realpath(d, NULL);
	free(d);
	if (!real)
		return -errno;
	*dir = real;
	*abs = resolve_path(real, slash ? slash + 1 : path);
	return 0;
}

int
config_load(const char *path, struct attest_config *out, struct aerr *err)
{
	char *text = NULL, *abs = NULL, *dir = NULL;
	size_t len;
	int ret;

	memset(out, 0, sizeof(*out));
	ret = read_file(path, &text, &len);
	if (ret < 0) {
		aerr_set(err, "%s: %s", path, strerror(-ret));
		return ret;
	}
	/* read_file() does not terminate an empty buffer (util.c's sb_detach). */
	if (len == 0)
		text[0] = '\0';
	ret = absolute_path(path, &abs, &dir);
	if (ret < 0) {
		aerr_set(err, "%s: %s", path, strerror(-ret));
		goto out;
	}
	if (strlen(text) != len) {
		aerr_set(err, "%s: invalid JSON at byte %zu: NUL byte", abs,
			 strlen(text));
		ret = -EINVAL;
		goto out;
	}
	ret = config_parse(text, abs, dir, out, err);
out:
	free(text);
	free(abs);
	free(dir);
	return ret;
}
