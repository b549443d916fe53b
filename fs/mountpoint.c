/*
 * Take back a mount point that a killed daemon left dead.
 *
 *	$ kill -9 $(pidof attestfs); ls /vms
 *	ls: cannot access '/vms': Transport endpoint is not connected
 *	$ attestfs -o config=machines.json /vms
 *	attestfs: /vms: detached the dead FUSE mount a killed daemon left
 *
 * Only ENOTCONN proves a FUSE mount dead: its daemon is gone and the
 * kernel answers every access so. A live mount stats fine and is never
 * touched, whoever serves it.
 */
#include <errno.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/wait.h>

#include "fs/mountpoint.h"

extern char **environ;

/* mountinfo escapes space, tab, newline and backslash as \ooo; in place. */
static void
unescape_octal(char *s)
{
	char *out = s;

	while (*s) {
		if (s[0] == '\\' && s[1] >= '0' && s[1] <= '3' &&
		    s[2] >= '0' && s[2] <= '7' && s[3] >= '0' && s[3] <= '7') {
			*out++ = (char)((s[1] - '0') << 6 | (s[2] - '0') << 3 |
					(s[3] - '0'));
			s += 4;
		} else {
			*out++ = *s++;
		}
	}
	*out = '\0';
}

/* Is this line a mount at MOUNTPOINT? Then *fuse says if it is FUSE. */
static int
mountinfo_line(char *line, const char *mountpoint, int *fuse)
{
	char *save = NULL, *tok, *mnt = NULL;
	int field = 0, after_dash = 0;

	for (tok = strtok_r(line, " \n", &save); tok;
	     tok = strtok_r(NULL, " \n", &save), field++) {
		if (field == 4)
			mnt = tok;
		if (field > 5 && !strcmp(tok, "-")) {
			after_dash = 1;
			break;
		}
	}
	tok = after_dash ? strtok_r(NULL, " \n", &save) : NULL;
	if (!mnt || !tok)
		return 0;
	unescape_octal(mnt);
	if (strcmp(mnt, mountpoint))
		return 0;
	*fuse = !strcmp(tok, "fuse") || !strcmp(tok, "fuseblk") ||
		!strncmp(tok, "fuse.", 5);
	return 1;
}

int
fs_mountinfo_is_fuse(FILE *f, const char *mountpoint)
{
	char *line = NULL;
	size_t cap = 0;
	int fuse = 0, last = 0;

	/* Later lines are mounted on top of earlier ones: the last counts. */
	while (getline(&line, &cap, f) > 0) {
		if (mountinfo_line(line, mountpoint, &fuse))
			last = fuse;
	}
	free(line);
	return last;
}

static int
dead_fuse_mount(const char *mountpoint)
{
	struct stat st;
	FILE *f;
	int fuse;

	if (stat(mountpoint, &st) == 0 || errno != ENOTCONN)
		return 0;
	f = fopen("/proc/self/mountinfo", "re");
	if (!f)
		return 0;
	fuse = fs_mountinfo_is_fuse(f, mountpoint);
	fclose(f);
	return fuse;
}

/* Without CAP_SYS_ADMIN the setuid helper detaches it for its owner. */
static int
fusermount_detach(const char *mountpoint)
{
	char *argv[] = { "fusermount3", "-u", "-z", "--", (char *)mountpoint,
			 NULL };
	pid_t pid;
	int ret, status;

	ret = posix_spawnp(&pid, argv[0], NULL, NULL, argv, environ);
	if (ret)
		return -ret;
	while (waitpid(pid, &status, 0) < 0)
		if (errno != EINTR)
			return -errno;
	return WIFEXITED(status) && WEXITSTATUS(status) == 0 ? 0 : -EPERM;
}

int
fs_reclaim_dead_mount(const char *mountpoint)
{
	int ret = 0;

	if (!dead_fuse_mount(mountpoint))
		return 0;
	if (umount2(mountpoint, MNT_DETACH) < 0)
		ret = fusermount_detach(mountpoint);
	if (ret < 0) {
		fprintf(stderr, "attestfs: %s: a dead FUSE mount (its daemon "
				"was killed) is in the way and could not be "
				"detached: %s\n", mountpoint, strerror(-ret));
		return ret;
	}
	fprintf(stderr, "attestfs: %s: detached the dead FUSE mount a killed "
			"daemon left\n", mountpoint);
	return 0;
}
