/* attest.sh: the NixOS driver's names as thin shell wrappers over the files. */
#include <string.h>

#include "machine/internal.h"

static const char library[] =
	"# attest.sh — source it from a test: . \"$VMS/attest.sh\"\n"
	"# POSIX sh. Every function is a thin wrapper over the files of the mount.\n"
	": \"${VMS:=@MOUNT@}\"\n"
	"\n"
	"# _attest_tx FILE TEXT: one transaction (write, then read the answer).\n"
	"_attest_tx() { ( exec 3<>\"$1\" && printf '%s' \"$2\" >&3 && cat <&3 ); }\n"
	"_attest_ctl() { printf '%s\\n' \"$2\" > \"$VMS/$1/ctl\"; }\n"
	"_attest_log() { printf 'attest: %s\\n' \"$*\" >&2; }\n"
	"\n"
	"# succeed MACHINE CMD...: run CMD, print its stdout, fail if it fails.\n"
	"succeed() { _m=$1; shift; _attest_tx \"$VMS/$_m/exec\" \"$*\"; }\n"
	"# fail MACHINE CMD...: run CMD, fail if it succeeds.\n"
	"fail() {\n"
	"\t_m=$1; shift\n"
	"\tif _attest_tx \"$VMS/$_m/exec\" \"$*\" 2>/dev/null; then\n"
	"\t\t_attest_log \"command succeeded unexpectedly on $_m: $*\"; return 1\n"
	"\tfi\n"
	"\treturn 0\n"
	"}\n"
	"# execute MACHINE CMD...: run CMD as a job, print its stdout, return its\n"
	"# exact exit status (128+signal when killed).\n"
	"execute() {\n"
	"\t_m=$1; shift\n"
	"\t_attest_n=$((${_attest_n:-0} + 1)); _j=$VMS/$_m/jobs/attest.$$.$_attest_n\n"
	"\tmkdir \"$_j\" || return 125\n"
	"\tprintf '%s' \"$*\" > \"$_j/cmd\" || { rmdir \"$_j\"; return 125; }\n"
	"\t: > \"$_j/stdin\"\n"
	"\t_s=$(cat \"$_j/exit\") || _s=125\n"
	"\tcat \"$_j/stdout\"; cat \"$_j/stderr\" >&2\n"
	"\trmdir \"$_j\"\n"
	"\treturn \"$_s\"\n"
	"}\n"
	"start_job() { printf 'start\\n' > \"$VMS/$1/units/$2/ctl\"; }\n"
	"stop_job() { printf 'stop\\n' > \"$VMS/$1/units/$2/ctl\"; }\n"
	"get_unit_info() { cat \"$VMS/$1/units/$2/properties\"; }\n"
	"require_unit_state() {\n"
	"\t_s=$(cat \"$VMS/$1/units/$2/state\") || return 1\n"
	"\t[ \"$_s\" = \"${3:-active}\" ] || { _attest_log \"unit $2 on $1 is $_s, not ${3:-active}\"; return 1; }\n"
	"}\n"
	"wait_for() { _m=$1; shift; _attest_tx \"$VMS/$_m/wait\" \"$*\" >/dev/null; }\n"
	"wait_until_succeeds() { _m=$1; shift; _attest_tx \"$VMS/$_m/wait\" \"succeeds $*\"; }\n"
	"wait_until_fails() { _m=$1; shift; _attest_tx \"$VMS/$_m/wait\" \"fails $*\" >/dev/null; }\n"
	"wait_for_file() { wait_for \"$1\" file \"$2\"; }\n"
	"wait_for_unit() { wait_for \"$1\" unit \"$2\" ${3:+\"$3\"}; }\n"
	"wait_for_open_port() { wait_for \"$1\" port \"$2\"; }\n"
	"wait_for_closed_port() { wait_for \"$1\" port \"$2\" closed; }\n"
	"wait_for_console_text() { wait_for \"$1\" console \"$2\"; }\n"
	"wait_for_status() { wait_for \"$1\" status \"$2\"; }\n"
	"wait_for_text() { wait_for \"$1\" screen \"$2\"; }\n"
	"get_screen_text() { cat \"$VMS/$1/screen.txt\"; }\n"
	"screenshot() { cat \"$VMS/$1/screen.png\" > \"$2\"; }\n"
	"send_key() { printf '%s\\n' \"$2\" > \"$VMS/$1/keys\"; }\n"
	"send_chars() { printf '%s' \"$2\" > \"$VMS/$1/type\"; }\n"
	"wait_for_shutdown() { wait_for \"$1\" status stopped; }\n"
	"start() { _attest_ctl \"$1\" start; }\n"
	"shutdown() { _attest_ctl \"$1\" shutdown; }\n"
	"halt() { _attest_ctl \"$1\" halt; }\n"
	"crash() { _attest_ctl \"$1\" crash; }\n"
	"reboot() { _attest_ctl \"$1\" reboot; }\n"
	"block() { _attest_ctl \"$1\" block; }\n"
	"unblock() { _attest_ctl \"$1\" unblock; }\n"
	"# forward_port MACHINE HOST_PORT GUEST_PORT (HOST_PORT 0 picks one: see info)\n"
	"forward_port() { _attest_ctl \"$1\" \"forward tcp:$2:$3\"; }\n"
	"start_all() { printf 'start-all\\n' > \"$VMS/ctl\"; }\n"
	"shutdown_all() { printf 'shutdown-all\\n' > \"$VMS/ctl\"; }\n"
	"halt_all() { printf 'halt-all\\n' > \"$VMS/ctl\"; }\n"
	"systemctl() { _m=$1; shift; succeed \"$_m\" systemctl \"$@\"; }\n"
	"get_console_log() { cat \"$VMS/$1/console\"; }\n"
	"send_console() { printf '%s' \"$2\" > \"$VMS/$1/console\"; }\n"
	"status() { cat \"$VMS/$1/status\"; }\n"
	"# copy_from_host SRC MACHINE DST / copy_from_vm MACHINE SRC DST\n"
	"copy_from_host() { cp \"$1\" \"$VMS/$2/files$3\"; }\n"
	"copy_from_vm() { cp \"$VMS/$1/files$2\" \"$3\"; }\n"
	"# subtest NAME CMD...: run CMD, report it like the NixOS driver.\n"
	"subtest() {\n"
	"\t_n=$1; shift\n"
	"\tprintf 'subtest: %s\\n' \"$_n\" >&2\n"
	"\tif \"$@\"; then return 0; fi\n"
	"\t_s=$?; printf 'subtest failed: %s\\n' \"$_n\" >&2; return $_s\n"
	"}\n";

char *
vmset_render_attest_sh(struct vmset *s, size_t *len)
{
	struct strbuf sb;
	const char *at = strstr(library, "@MOUNT@");

	sb_init(&sb);
	sb_add(&sb, library, (size_t)(at - library));
	sb_adds(&sb, s->mountpoint);
	sb_adds(&sb, at + 7);
	return sb_detach(&sb, len);
}
