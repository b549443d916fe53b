/* A machine's log and the mount's events. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <stdarg.h>

#include "machine/internal.h"

#define LOG_LINE_MAX 4096

void
machine_log_line(struct machine *m, const char *text)
{
	size_t n = strlen(text), keep = n > LOG_LINE_MAX ? LOG_LINE_MAX : n;
	struct strbuf line;
	size_t pre;

	sb_init(&line);
	sb_addf(&line, "%lld ", (long long)now_unix_ms());
	pre = line.len;
	sb_add(&line, text, keep);
	if (keep < n)
		sb_addf(&line, " [... %zu bytes of this line dropped ...]",
			n - keep);
	sb_adds(&line, "\n");
	tailbuf_add(&m->log, line.data, line.len);
	rotfile_write(&m->log_file, line.data, line.len);
	if (m->set->opt.foreground)
		fprintf(stderr, "%s: %.*s\n", m->cfg.name,
			(int)(line.len - pre - 1), line.data + pre);
	sb_free(&line);
}

void
machine_logl(struct machine *m, const char *fmt, ...)
{
	struct strbuf sb;
	va_list ap;

	sb_init(&sb);
	va_start(ap, fmt);
	sb_vaddf(&sb, fmt, ap);
	va_end(ap);
	machine_log_line(m, sb.data ? sb.data : "");
	sb_free(&sb);
}

void
machine_log(struct machine *m, const char *fmt, ...)
{
	struct strbuf sb;
	va_list ap;

	sb_init(&sb);
	va_start(ap, fmt);
	sb_vaddf(&sb, fmt, ap);
	va_end(ap);
	pthread_mutex_lock(&m->lock);
	machine_log_line(m, sb.data ? sb.data : "");
	pthread_mutex_unlock(&m->lock);
	sb_free(&sb);
}

void
vmset_event(struct vmset *s, const char *machine, const char *event,
	    const char *detail)
{
	struct strbuf line;

	sb_init(&line);
	sb_addf(&line, "%lld %s %s", (long long)now_unix_ms(), machine, event);
	if (detail && *detail)
		sb_addf(&line, " %s", detail);
	sb_adds(&line, "\n");
	pthread_mutex_lock(&s->lock);
	tailbuf_add(&s->events, line.data, line.len);
	rotfile_write(&s->events_file, line.data, line.len);
	pthread_mutex_unlock(&s->lock);
	sb_free(&line);
}

char *
vmset_render_events(struct vmset *s, size_t *len)
{
	struct strbuf sb;
	char *note = NULL;

	sb_init(&sb);
	pthread_mutex_lock(&s->lock);
	if (s->events.tb_dropped)
		note = xasprintf("older ones are in %s", s->events_file.rf_path ?
							 s->events_file.rf_path :
							 "state_dir/events");
	tailbuf_render(&s->events, &sb, note);
	pthread_mutex_unlock(&s->lock);
	free(note);
	return sb_detach(&sb, len);
}
