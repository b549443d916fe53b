/*
 * The guest shell protocol, without I/O: the lines attestfs sends to a
 * backdoor shell and a parser for what comes back.
 *
 * Host -> guest, one line each:
 *   prelude   defines _atx/_atk/_atf... in the guest shell (one line), then
 *             _atup HASH LOSSY WINDOW 'BASE64' (the guest agent, below),
 *             then _atnb (bash on a port or socket answers "\001N 1"),
 *             then "echo SYNC<n>"
 *   command   _atx TAG 'CMD' [STDIN [TIMEOUT_S]]
 *             or, after "\001N 1", _atxn TAG LEN [STDIN [TIMEOUT_S]] and
 *             LEN bytes of CMD (shell_command)
 *
 * Guest -> host, with the agent (machine/agent/agent.c), per command:
 *   \001A 1 PID | \001A 0 WHY   (after _atup, or when _atx loses the agent)
 *   \001P TAG PID              the command runs (its process, for kills);
 *                              held until output or the end comes, at most
 *                              20 ms: a quick command's P and X are one write
 *   \001o TAG LEN\n + LEN bytes  stdout as it comes (virtio ports, vsock:
 *   \001e TAG LEN\n + LEN bytes  lossless; stderr likewise)
 *   \001O TAG LEN\n BASE64\n    the same on a lossy channel (hvc0), where
 *   \001E TAG LEN\n BASE64\n    each chunk waits for the host's line "."
 *                              (go on) or "K" (kill it; send no more), at
 *                              most WINDOW of them unanswered
 *   \001X TAG STATUS NOUT NERR  the end: 128+signal when killed; the byte
 *                              counts must match what came, or it is a loss
 *
 * Without the agent (the machine's "guest_agent": false, or it cannot run:
 * another architecture, noexec), per command:
 *   \001P TAG PID
 *   \001O TAG LEN\n BASE64\n    stdout so far, while it runs (any number)
 *                          (lossy channel: each waits for the host's line
 *                          "." or "K", then all of stdout comes so, before
 *                          the status: the host paces it)
 *   \001S TAG STATUS       it exited (128+signal when killed)
 *   BASE64-OF-STDOUT\n     all of it; chunks already sent are dropped (lossy channel:
 *                          "LEN BASE64\n", "" when empty)
 *   BASE64-OF-STDERR\n
 * There the command runs in the background with its output in files on the
 * guest's tmpfs.
 *
 * Either way the shell waits for the command's pid, not for EOF on stdout:
 * a background child holding stdout cannot hang the frame.
 */
#ifndef ATTESTFS_SHELL_H
#define ATTESTFS_SHELL_H

#include <stddef.h>

#include "common/util.h"

#define SHELL_BANNER "Spawning backdoor root shell..."

enum shell_event {
	SHELL_EV_BANNER,  /* a (new) shell greeted: everything before is void */
	SHELL_EV_SYNC,    /* num = the SYNC tag echoed back */
	SHELL_EV_PID,     /* tag, num = guest pid */
	SHELL_EV_STATUS,  /* tag, num = exit status; stdout/stderr follow */
	SHELL_EV_STDOUT,  /* data, len; tag: the chunk's, 0 after the status */
	SHELL_EV_STDERR,  /* data, len */
	SHELL_EV_END,     /* the frame is complete */
	SHELL_EV_LOSS,    /* bytes were lost or garbled: resynchronise */
	SHELL_EV_JUNK,    /* a line outside any frame (data, len) */
	SHELL_EV_CHUNK,   /* a chunk (tag) ended: on the lossy channel the guest
			   * now waits for the host's go-ahead line */
	SHELL_EV_AGENT,   /* num: 1 the guest agent runs, 0 it does not; data:
			   * why (a line of text) */
	SHELL_EV_BARE,    /* num = the probe's tag: a shell without the
			   * prelude answered it (shell_probe) */
	SHELL_EV_BULK,    /* num 1: the shell takes long commands raw
			   * (shell_command's bulk) */
};

/* A chunk is at most this long (the agent sends 64 KiB). */
#define SHELL_CHUNK_MAX (1 << 20)

typedef void (*shell_event_fn)(void *ctx, enum shell_event ev, long long tag,
			       long long num, const char *data, size_t len);

struct shell_parser {
	int state;
	int lossy;              /* console channel: lengths are checked */
	char line[4096];
	size_t line_len;
	int line_overflow;
	unsigned char quad[4];  /* base64 characters not yet decoded */
	int quad_len;
	long long want;         /* lossy: announced length, -1 = none yet */
	long long got;
	int have_len;
	long long chunk_tag;    /* the chunk being read */
	int chunk_ev;           /* ...stdout or stderr */
	long long streamed;     /* stdout bytes the chunks gave this command */
	long long streamed_err; /* ...and stderr bytes */
	long long skip;         /* ... and so dropped from the final stdout */
	long long ended_tag;    /* the last command the agent ended whole */
};

void shell_parser_init(struct shell_parser *p, int lossy);
/* Feed bytes; events are reported through fn in order. */
void shell_parse(struct shell_parser *p, const char *buf, size_t len,
		 shell_event_fn fn, void *ctx);

/* The prelude's lines, the agent's upload with agent_window > 0, and
 * "echo SYNC<sync_tag>\n". */
void shell_prelude(struct strbuf *out, int lossy, int agent_window,
		   long long sync_tag);
/* "echo SYNC<tag>\n" alone (after a banner). */
void shell_sync(struct strbuf *out, long long sync_tag);
/* A connection that may reach a living shell or a new one (vsock, after a
 * reset): "SYNC<tag>" from a shell that has the prelude, "BARE<tag>" from
 * one that does not (its banner may have gone to nobody). */
void shell_probe(struct strbuf *out, long long tag);
/*
 * "_atx TAG 'cmd' [stdin [watchdog_s]]\n"; watchdog_s 0: none. With bulk
 * (the shell said "\001N 1": bash reading its commands from a port or
 * socket, which it reads a byte a syscall) a command of SHELL_BULK_MIN
 * bytes or more, all ASCII (a character a byte in every locale, as read -N
 * counts), goes as "_atxn TAG LEN [stdin [watchdog_s]]\n" and its LEN
 * bytes as they are, which the shell takes in one read -N. Counted in a
 * stock NixOS-style guest under TCG: 1.7 thousand guest instructions a
 * byte quoted, 0.54 raw; the raw path's own cost is even at about 65
 * bytes.
 */
#define SHELL_BULK_MIN 80
void shell_command(struct strbuf *out, long long tag, const char *cmd,
		   size_t cmd_len, const char *stdin_path, unsigned watchdog_s,
		   int bulk);

/* The guest agent (machine/agent/agent.c), built into the daemon. */
extern const unsigned char shell_agent_blob[];
extern const size_t shell_agent_blob_len;
/* The line that uploads and starts it in a shell that has the prelude: it
 * answers "\001A 1 PID" or "\001A 0 why" (SHELL_EV_AGENT). window: chunks
 * in flight on a lossy channel. */
void shell_agent_upload(struct strbuf *out, int lossy, int window);

/* Base64 of data, appended (for host -> guest payloads inside commands). */
void shell_base64(struct strbuf *out, const void *data, size_t len);

#endif
