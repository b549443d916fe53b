/*
 * What a continued guest runs first (machine/snapshot.c): a clone's
 * identity comes from the host, so two clones of one snapshot differ even
 * though their guests share the saved random state.
 */
#include <ctype.h>

#include "machine/internal.h"
#include "tests/unit/harness.h"

/* The resume script of a clone named name (malloc'd). */
static char *
clone_script(const char *name)
{
	struct machine m;
	struct strbuf sb;

	memset(&m, 0, sizeof(m));
	m.cfg.name = (char *)name;
	m.is_clone = 1;
	sb_init(&sb);
	snapshot_resume_script(&m, &sb);
	return sb_detach(&sb, NULL);
}

/* The machine-id the script writes (32 hex digits), into id[33]. */
static void
written_id(const char *script, char *id)
{
	const char *p = strstr(script, "then echo ");
	size_t i;

	assert_non_null(p);
	p += strlen("then echo ");
	for (i = 0; i < 32; i++) {
		if (!isxdigit((unsigned char)p[i]) || isupper((unsigned char)p[i]))
			fail_msg("no machine-id of 32 hex digits in: %s", script);
		id[i] = p[i];
	}
	id[32] = '\0';
	assert_non_null(strstr(p + 32, " >/etc/machine-id;"));
}

static void
test_clones_get_their_own_machine_id(void **state)
{
	char *a = clone_script("k1"), *b = clone_script("k2");
	char ida[33], idb[33];

	(void)state;
	written_id(a, ida);
	written_id(b, idb);
	assert_string_not_equal(ida, idb);
	/* a version 4 UUID, as systemd makes them */
	assert_int_equal(ida[12], '4');
	assert_non_null(strchr("89ab", ida[16]));
	/* not from the guest's random state, the same in every clone */
	assert_null(strstr(a, "random/uuid"));
	assert_non_null(strstr(a, "echo 'k1' >/proc/sys/kernel/hostname;"));
	assert_non_null(strstr(b, "echo 'k2' >/etc/hostname"));
	free(a);
	free(b);
}

static void
test_a_restore_keeps_its_identity(void **state)
{
	struct machine m;
	struct strbuf sb;

	(void)state;
	memset(&m, 0, sizeof(m));
	m.cfg.name = "a";
	sb_init(&sb);
	snapshot_resume_script(&m, &sb);
	/* the clock through the agent, date(1) in a guest saved without it */
	assert_non_null(strstr(sb.data, "then _atclk "));
	assert_non_null(strstr(sb.data, "else date -s @"));
	assert_null(strstr(sb.data, "hostname"));
	assert_null(strstr(sb.data, "machine-id"));
	sb_free(&sb);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_clones_get_their_own_machine_id),
		cmocka_unit_test(test_a_restore_keeps_its_identity),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
