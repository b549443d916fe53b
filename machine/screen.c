/*
 * The screen and the keyboard. screen.png is a screenshot taken at the first
 * read; screen.txt is its text, read by OCR in a child process
 * (attestfs-ocr: libtesseract and its model are big, the daemon stays small,
 * and a cancelled read kills the child). Both run on a
 * thread of their own, so neither QMP nor OCR holds up the machine.
 * keys presses key combinations ("ctrl-alt-delete ret"), type types text.
 */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "common/proc.h"
#include "machine/internal.h"

/* screen.txt's OCR of a screenshot, on its own thread. */
struct shot {
	struct machine *m;
	struct mreq *r;     /* NULL once the caller gave up */
	char *png;          /* the screenshot */
	pid_t child;        /* the OCR process while it runs */
};

/* With the lock. */
static void
shot_cancel(struct mreq *r)
{
	struct shot *s = r->priv_data;

	if (s->child > 0)
		kill(s->child, SIGKILL);
	s->r = NULL;
	mreq_finish(s->m, r, -EINTR);
}

/* attestfs-ocr beside the daemon's own binary (make install puts it
 * there; so does the build), else the one in PATH. */
static char *
ocr_helper(void)
{
	char self[4096];
	ssize_t n = readlink("/proc/self/exe", self, sizeof(self) - 1);
	char *slash, *path;

	if (n > 0) {
		self[n] = '\0';
		slash = strrchr(self, '/');
		if (slash) {
			*slash = '\0';
			path = xasprintf("%s/attestfs-ocr", self);
			if (access(path, X_OK) == 0)
				return path;
			free(path);
		}
	}
	return xstrdup("attestfs-ocr");
}

/* Run attestfs-ocr on png with its stdout into out; 0 or -errno. */
static int
ocr_run(struct shot *s, const char *png, struct strbuf *out)
{
	struct machine *m = s->m;
	pid_t parent = getpid(), pid;
	char *helper = ocr_helper();
	int fds[2], status = 0;
	char buf[4096];
	ssize_t n;

	if (pipe2(fds, O_CLOEXEC) < 0) {
		free(helper);
		return -errno;
	}
	pid = fork();
	if (pid == 0) {
		/* stdin /dev/null, stdout the pipe, stderr the daemon's */
		int null = open("/dev/null", O_RDONLY);

		proc_child_init(parent);
		if (null >= 0)
			dup2(null, 0);
		dup2(fds[1], 1);
		proc_close_from(3);
		execlp(helper, "attestfs-ocr", png, (char *)NULL);
		_exit(127);
	}
	free(helper);
	close(fds[1]);
	if (pid < 0) {
		close(fds[0]);
		return -errno;
	}
	machine_lock(m);
	/* A cancel before now found no child to kill. */
	if (!s->r)
		kill(pid, SIGKILL);
	s->child = pid;
	machine_unlock(m);
	while ((n = read(fds[0], buf, sizeof(buf))) != 0) {
		if (n < 0) {
			if (errno == EINTR)
				continue;
			break;
		}
		sb_add(out, buf, (size_t)n);
	}
	close(fds[0]);
	while (waitpid(pid, &status, 0) < 0 && errno == EINTR)
		;
	machine_lock(m);
	s->child = 0;
	machine_unlock(m);
	if (!WIFEXITED(status) || WEXITSTATUS(status) != 0)
		return -EIO;
	return 0;
}

/* The OCR of a screenshot, on a thread of its own: it may take seconds. */
static void *
shot_main(void *arg)
{
	struct shot *s = arg;
	struct machine *m = s->m;
	struct strbuf out;
	char *data = NULL;
	size_t len = 0;
	int ret;

	sb_init(&out);
	machine_lock(m);
	ret = s->r ? 0 : -EINTR;
	machine_unlock(m);
	if (ret == 0)
		ret = ocr_run(s, s->png, &out);
	machine_lock(m);
	if (ret < 0 && s->r)
		machine_logl(m, "screen.txt: attestfs-ocr failed (its "
			     "reason is on the daemon's stderr)");
	data = sb_detach(&out, &len);
	if (s->r) {
		s->r->data = data;
		s->r->len = len;
		data = NULL;
		mreq_finish(m, s->r, ret < 0 ? ret : 0);
	}
	m->screen_threads--;
	pthread_cond_broadcast(&m->cond);
	machine_unlock(m);
	unlink(s->png);
	free(data);
	free(s->png);
	free(s);
	return NULL;
}

/* With the lock: screen.txt's OCR of png goes on on its own thread. */
static void
shot_ocr(struct machine *m, struct mreq *r, char *png)
{
	struct shot *s = xcalloc(1, sizeof(*s));
	pthread_attr_t attr;
	pthread_t th;
	int ret;

	s->m = m;
	s->r = r;
	s->png = png;
	mreq_park(m, r, shot_cancel, s);
	m->screen_threads++;
	pthread_attr_init(&attr);
	pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
	ret = pthread_create(&th, &attr, shot_main, s);
	pthread_attr_destroy(&attr);
	if (ret) {
		m->screen_threads--;
		machine_logl(m, "screen: cannot start a thread: %s",
			     strerror(ret));
		mreq_finish(m, r, -EAGAIN);
		unlink(png);
		free(png);
		free(s);
	}
}

/* The supervisor's part: the screenshot (then, for screen.txt, its OCR). */
static void
shot_take(struct machine *m, struct mop *op)
{
	static unsigned seq;
	struct backend *be = m->be;
	struct aerr err = { "" };
	struct mreq *r;
	char *png;
	int ret;

	if (!be || m->state == MS_STOPPING) {
		machine_logl(m, "screen: the machine is %s",
			     mstate_name(m->state));
		mop_finish(m, op, -EHOSTDOWN);
		return;
	}
	png = xasprintf("%s/screen.%u.png", m->dir,
			__atomic_add_fetch(&seq, 1, __ATOMIC_RELAXED));
	machine_unlock(m);
	ret = m->ops->screenshot(be, png, &err);
	machine_lock(m);
	r = mop_take_req(op);
	if (ret < 0 && r)
		machine_logl(m, "screen: %s", err.msg[0] ? err.msg :
			     strerror(-ret));
	if (ret == 0 && r && op->mo_num) {
		shot_ocr(m, r, png);
		return;
	}
	if (ret == 0 && r) {
		ret = read_file(png, &r->data, &r->len);
		if (ret < 0)
			machine_logl(m, "screen: %s: %s", png, strerror(-ret));
	}
	if (r)
		mreq_finish(m, r, ret < 0 ? ret : 0);
	unlink(png);
	free(png);
}

void
machine_screen_read(struct machine *m, int text, struct mreq *r)
{
	machine_lock(m);
	screen_read_locked(m, text, r);
	machine_unlock(m);
}

void
screen_read_locked(struct machine *m, int text, struct mreq *r)
{
	struct mop *op;

	if (!(m->ops->caps & BACKEND_CAP_SCREENSHOT) || !m->ops->screenshot) {
		machine_logl(m, "screen: the %s backend has no screen",
			     m->ops->name);
		mreq_finish(m, r, -EOPNOTSUPP);
		return;
	}
	op = mop_new("screenshot", shot_take, r);
	op->mo_num = text;
	op->mo_vmm = 1;
	mop_push(m, op);
}

/* With the lock held by no one: machine_destroy waits for the threads. */
void
screen_wait_idle(struct machine *m)
{
	machine_lock(m);
	while (m->screen_threads)
		pthread_cond_wait(&m->cond, &m->lock);
	machine_unlock(m);
}

/* ---- the keyboard ------------------------------------------------------ */

/* QEMU 7.2's QKeyCode names (qapi/ui.json). */
static const char *const qcodes[] = {
	"shift", "shift_r", "alt", "alt_r", "ctrl", "ctrl_r", "menu", "esc",
	"1", "2", "3", "4", "5", "6", "7", "8", "9", "0", "minus", "equal",
	"backspace", "tab", "q", "w", "e", "r", "t", "y", "u", "i", "o", "p",
	"bracket_left", "bracket_right", "ret", "a", "s", "d", "f", "g", "h",
	"j", "k", "l", "semicolon", "apostrophe", "grave_accent", "backslash",
	"z", "x", "c", "v", "b", "n", "m", "comma", "dot", "slash", "asterisk",
	"spc", "caps_lock", "f1", "f2", "f3", "f4", "f5", "f6", "f7", "f8",
	"f9", "f10", "f11", "f12", "num_lock", "scroll_lock", "kp_divide",
	"kp_multiply", "kp_subtract", "kp_add", "kp_enter", "kp_decimal",
	"sysrq", "kp_0", "kp_1", "kp_2", "kp_3", "kp_4", "kp_5", "kp_6",
	"kp_7", "kp_8", "kp_9", "less", "home", "pgup", "pgdn", "end", "left",
	"up", "down", "right", "insert", "delete", "stop", "again", "props",
	"undo", "front", "copy", "open", "paste", "find", "cut", "lf", "help",
	"meta_l", "meta_r", "compose", "pause", "ro", "hiragana", "henkan",
	"yen", "muhenkan", "katakanahiragana", "kp_comma", "kp_equals",
	"power", "sleep", "wake", "audionext", "audioprev", "audiostop",
	"audioplay", "audiomute", "volumeup", "volumedown", "mediaselect",
	"mail", "calculator", "computer", "ac_home", "ac_back", "ac_forward",
	"ac_refresh", "ac_bookmarks", "lang1", "lang2", "f13", "f14", "f15",
	"f16", "f17", "f18", "f19", "f20", "f21", "f22", "f23", "f24",
};

/* The names people write for some of them (the NixOS driver's too). */
static const struct {
	const char *name, *qcode;
} key_aliases[] = {
	{ "enter", "ret" }, { "return", "ret" }, { "space", "spc" },
	{ "escape", "esc" }, { "del", "delete" }, { "control", "ctrl" },
	{ "super", "meta_l" }, { "pageup", "pgup" }, { "pagedown", "pgdn" },
};

static const char *
qcode_of(const char *name)
{
	size_t i;

	for (i = 0; i < sizeof(key_aliases) / sizeof(key_aliases[0]); i++)
		if (!strcmp(name, key_aliases[i].name))
			return key_aliases[i].qcode;
	for (i = 0; i < sizeof(qcodes) / sizeof(qcodes[0]); i++)
		if (!strcmp(name, qcodes[i]))
			return qcodes[i];
	return NULL;
}

/* The US layout: a character and whether it needs shift. */
static const char *
qcode_of_char(unsigned char c, int *shift)
{
	static const char shifted[] = "!@#$%^&*()_+{}|:\"~<>?";
	static const char plain[] = "1234567890-=[]\\;'`,./";
	static const char *const names[] = {
		"1", "2", "3", "4", "5", "6", "7", "8", "9", "0", "minus",
		"equal", "bracket_left", "bracket_right", "backslash",
		"semicolon", "apostrophe", "grave_accent", "comma", "dot",
		"slash",
	};
	static char letter[2];
	const char *p;

	*shift = 0;
	if (c >= 'a' && c <= 'z') {
		letter[0] = (char)c;
		return qcode_of(letter);
	}
	if (c >= 'A' && c <= 'Z') {
		*shift = 1;
		letter[0] = (char)(c - 'A' + 'a');
		return qcode_of(letter);
	}
	if (c == ' ')
		return "spc";
	if (c == '\n')
		return "ret";
	if (c == '\t')
		return "tab";
	if (c && (p = strchr(plain, c)))
		return names[p - plain];
	if (c && (p = strchr(shifted, c))) {
		*shift = 1;
		return names[p - shifted];
	}
	return NULL;
}

#define MAX_COMBO 8

struct combo {
	const char *keys[MAX_COMBO];
	size_t n;
};

/* The supervisor's part: each combination in turn, without the lock. */
static void
press_run(struct machine *m, struct mop *op)
{
	const struct combo *combos = op->mo_data;
	struct backend *be = m->be;
	struct aerr err = { "" };
	size_t i;
	int ret = 0;

	if (!be || m->state == MS_STOPPING) {
		machine_logl(m, "keys: the machine is %s", mstate_name(m->state));
		mop_finish(m, op, -EHOSTDOWN);
		return;
	}
	machine_unlock(m);
	for (i = 0; i < (size_t)op->mo_num && ret == 0; i++)
		ret = m->ops->send_keys(be, combos[i].keys, combos[i].n, &err);
	machine_lock(m);
	if (ret < 0)
		machine_logl(m, "keys: %s", err.msg[0] ? err.msg : strerror(-ret));
	mop_finish(m, op, ret < 0 ? ret : (int)op->mo_len);
}

/* With the lock: the n combos (taken) are pressed in order with the
 * machine's other actions; the write took len bytes. ret < 0: refused. */
static void
press(struct machine *m, struct combo *combos, size_t n, size_t len,
      int ret, struct mreq *r)
{
	struct mop *op;

	if (ret < 0) {
		mreq_finish(m, r, ret);
		free(combos);
		return;
	}
	op = mop_new("keys", press_run, r);
	op->mo_data = combos;
	op->mo_num = (int)n;
	op->mo_len = len;
	op->mo_vmm = 1;
	mop_push(m, op);
}

static int
keys_capable(struct machine *m, const char *what)
{
	if ((m->ops->caps & BACKEND_CAP_KEYS) && m->ops->send_keys)
		return 1;
	machine_logl(m, "%s: the %s backend has no keyboard", what,
		     m->ops->name);
	return 0;
}

void
machine_keys(struct machine *m, const char *msg, size_t len, struct mreq *r)
{
	char *text = xmalloc(len + 1), *word, *save = NULL;
	struct combo *combos = NULL;
	size_t n = 0;
	int ret = 0;

	memcpy(text, msg, len);
	text[len] = '\0';
	machine_lock(m);
	if (!keys_capable(m, "keys")) {
		ret = -EOPNOTSUPP;
		goto out;
	}
	for (word = strtok_r(text, " \t\n", &save); word && ret == 0;
	     word = strtok_r(NULL, " \t\n", &save)) {
		char *key, *save2 = NULL;
		struct combo c = { .n = 0 };

		for (key = strtok_r(word, "-", &save2); key;
		     key = strtok_r(NULL, "-", &save2)) {
			const char *q = qcode_of(key);

			if (!q) {
				machine_logl(m, "keys: '%s' is not a key (QEMU's "
					     "names: a, 1, ret, spc, ctrl, alt, "
					     "shift, delete, f1, up, ...)", key);
				ret = -EINVAL;
				break;
			}
			if (c.n == MAX_COMBO) {
				machine_logl(m, "keys: at most %d keys at once",
					     MAX_COMBO);
				ret = -EINVAL;
				break;
			}
			c.keys[c.n++] = q;
		}
		combos = xrealloc(combos, (n + 1) * sizeof(*combos));
		combos[n++] = c;
	}
	if (ret == 0 && n == 0) {
		machine_logl(m, "keys: no key names given");
		ret = -EINVAL;
	}
out:
	press(m, combos, n, len, ret, r);
	machine_unlock(m);
	free(text);
}

void
machine_type(struct machine *m, const char *msg, size_t len, struct mreq *r)
{
	struct combo *combos = xcalloc(len ? len : 1, sizeof(*combos));
	size_t i;
	int ret = 0;

	machine_lock(m);
	if (!keys_capable(m, "type")) {
		ret = -EOPNOTSUPP;
		goto out;
	}
	for (i = 0; i < len && ret == 0; i++) {
		int shift;
		const char *q = qcode_of_char((unsigned char)msg[i], &shift);

		if (!q) {
			machine_logl(m, "type: character %zu (0x%02x) has no key "
				     "on a US keyboard", i,
				     (unsigned char)msg[i]);
			ret = -EINVAL;
			break;
		}
		if (shift)
			combos[i].keys[combos[i].n++] = "shift";
		combos[i].keys[combos[i].n++] = q;
	}
out:
	press(m, combos, len, len, ret, r);
	machine_unlock(m);
}
