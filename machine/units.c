/*
 * units/: systemd units of the guest, one systemctl or journalctl command
 * per call. Names go to the guest quoted and after "--", so a unit name is
 * never an option or shell syntax.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "machine/guestcall.h"

#define SYSTEMCTL "SYSTEMD_COLORS=0 systemctl --no-pager "


static int
no_systemctl(struct cmd *c)
{
	return c->status == 127;
}

static int
list_done(struct cmd *c, struct mreq *r, void *arg)
{
	struct strbuf names;
	const char *p = c->out.data, *end = p + c->out.len;

	if (c->status) {
		/* A guest without systemd simply has no units. */
		machine_logl(c->m, "units: no systemd units (systemctl: %s)",
			     no_systemctl(c) ? "not found" :
			     c->errout.data ? c->errout.data : "failed");
		return 0;
	}
	sb_init(&names);
	while (p && p < end) {
		const char *nl = memchr(p, '\n', (size_t)(end - p));
		const char *stop = nl ? nl : end;
		const char *w = p;

		while (w < stop && (*w == ' ' || *w == '\t'))
			w++;
		const char *e = w;

		while (e < stop && *e != ' ' && *e != '\t')
			e++;
		if (e > w) {
			sb_add(&names, w, (size_t)(e - w));
			sb_add(&names, "", 1);
		}
		p = stop + 1;
	}
	r->data = sb_detach(&names, &r->len);
	return 0;
}

void
machine_unit_list(struct machine *m, struct mreq *r)
{
	static const char cmd[] = SYSTEMCTL "list-units --all --no-legend "
				  "--plain --full";

	guest_call(m, cmd, sizeof(cmd) - 1, 1, list_done, NULL, r);
}

/* "Id=x\nLoadState=y\n" -> the value of key, malloc'd, or NULL. */
static char *
show_value(const char *out, const char *key)
{
	size_t kl = strlen(key);
	const char *p = out;

	while (p && *p) {
		const char *nl = strchr(p, '\n');
		size_t n = nl ? (size_t)(nl - p) : strlen(p);

		if (n > kl && !strncmp(p, key, kl) && p[kl] == '=')
			return xasprintf("%.*s", (int)(n - kl - 1), p + kl + 1);
		p = nl ? nl + 1 : NULL;
	}
	return NULL;
}

static int
resolve_done(struct cmd *c, struct mreq *r, void *arg)
{
	char *id, *load;
	int ret = 0;

	if (c->status || !c->out.data)
		return no_systemctl(c) ? -ENOENT : guest_errno(c);
	id = show_value(c->out.data, "Id");
	load = show_value(c->out.data, "LoadState");
	if (!id || !load || !strcmp(load, "not-found") || !*id) {
		ret = -ENOENT;
	} else {
		r->len = strlen(id);
		r->data = id;
		id = NULL;
	}
	free(id);
	free(load);
	return ret;
}

void
machine_unit_resolve(struct machine *m, const char *name, struct mreq *r)
{
	guest_call_quoted(m, SYSTEMCTL "show -p Id -p LoadState -- ", name, "", 1,
		  resolve_done, NULL, r);
}

static int
read_done(struct cmd *c, struct mreq *r, void *arg)
{
	if (c->status)
		return no_systemctl(c) ? -ENOENT : guest_errno(c);
	if (c->out_dropped)
		sb_addf(&c->out, "%s[... %llu bytes dropped: units/ show the "
			"first %zu bytes; exec shows all of it ...]\n",
			c->out.len && c->out.data[c->out.len - 1] != '\n' ?
				"\n" : "",
			(unsigned long long)c->out_dropped, c->out_keep);
	r->len = c->out.len;
	r->data = sb_detach(&c->out, NULL);
	return 0;
}

void
machine_unit_read(struct machine *m, const char *name, enum unit_file f,
		  struct mreq *r)
{
	switch (f) {
	case UNIT_STATE:
		guest_call_quoted(m, SYSTEMCTL "show -p ActiveState --value -- ", name,
			  "", 1, read_done, NULL, r);
		break;
	case UNIT_SUBSTATE:
		guest_call_quoted(m, SYSTEMCTL "show -p SubState --value -- ", name, "",
			  1, read_done, NULL, r);
		break;
	case UNIT_PROPERTIES:
		guest_call_quoted(m, SYSTEMCTL "show -- ", name, "", 1, read_done, NULL,
			  r);
		break;
	case UNIT_LOG:
		/* journalctl -u knows no aliases: ask systemd for the Id. */
		guest_call_quoted(m, "u=$(" SYSTEMCTL "show -p Id --value -- ", name,
			  ") && journalctl --no-pager -o short-iso -u \"$u\"", 0,
			  read_done, NULL, r);
		break;
	}
}

static int
ctl_done(struct cmd *c, struct mreq *r, void *arg)
{
	const char *verb = arg;

	if (!c->status)
		return (int)r->size;
	machine_logl(c->m, "units: systemctl %s failed (status %d): %.*s", verb,
		     c->status, (int)(c->errout.len > 1000 ? 1000 : c->errout.len),
		     c->errout.data ? c->errout.data : "");
	return -EREMOTEIO;
}

void
machine_unit_ctl(struct machine *m, const char *name, const char *msg,
		 size_t len, struct mreq *r)
{
	static const char *const verbs[] = { "start", "stop", "restart",
					     "reload" };
	size_t i, n = len;
	char before[80];

	while (n && (msg[n - 1] == '\n' || msg[n - 1] == ' '))
		n--;
	for (i = 0; i < sizeof(verbs) / sizeof(verbs[0]); i++)
		if (strlen(verbs[i]) == n && !memcmp(msg, verbs[i], n))
			break;
	if (i == sizeof(verbs) / sizeof(verbs[0])) {
		machine_log(m, "units/%s/ctl: unknown command '%.*s' (expected: "
			    "start | stop | restart | reload)", name,
			    (int)(n > 64 ? 64 : n), msg);
		r->result = -EINVAL;
		r->done(r);
		return;
	}
	r->size = len;
	machine_log(m, "units: %s %s", verbs[i], name);
	snprintf(before, sizeof(before), SYSTEMCTL "%s -- ", verbs[i]);
	guest_call_quoted(m, before, name, "", 0, ctl_done, (void *)verbs[i], r);
}
