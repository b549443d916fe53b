/*
 * What <m>/qmp lets through. QMP is root over the host: `migrate` to
 * "exec:..." runs a host program, `screendump` writes a host file,
 * `blockdev-add` opens one. A command passes only when it is on an allowlist
 * (and its arguments on that command's); the mount option host_access lets
 * every well-formed command through. Pure functions: no machine, no I/O.
 */
#ifndef ATTESTFS_QMP_POLICY_H
#define ATTESTFS_QMP_POLICY_H

#include <stddef.h>

#include <json-c/json.h>

/* The mount grants full host access (-o host_access): no allowlist. */
#define QMP_POLICY_HOST_ACCESS (1u << 0)

/*
 * The bytes written to <m>/qmp as exactly one JSON object (whitespace around
 * it is fine, anything else after it is not). 0 and *out (the caller puts
 * it), or -EINVAL with the reason in why.
 */
int qmp_policy_parse(const char *text, size_t len, json_object **out,
		     char *why, size_t whylen);

/*
 * 0 when cmd may go to QEMU. -EINVAL when it is not a QMP command as the
 * file takes it ("execute" a string, optional "arguments" object and "id",
 * nothing else; no exec-oob); -EPERM when it is not on the allowlist and
 * flags lack QMP_POLICY_HOST_ACCESS. why (always terminated) says which.
 */
int qmp_policy_check(json_object *cmd, unsigned flags, char *why,
		     size_t whylen);

#endif
