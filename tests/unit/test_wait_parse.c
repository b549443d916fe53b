/*
 * The syntax of wait conditions (machine/wait_parse.c) on its own: each
 * kind's arguments, and for a refusal the reason the log gets.
 */
#include "machine/internal.h"
#include "tests/unit/harness.h"

static int
setup(void **state)
{
	return fixture_setup(state, "{\"machines\": {\"m\": {\"backend\": "
			     "\"mock\"}}}", 20, 0);
}

/* tx_wait_parse's result for len bytes of cond; why: what the log must
 * then hold. */
static int
parse_n(struct machine *m, const char *cond, size_t len, const char *why)
{
	size_t n;
	char *log;
	int ret;

	machine_lock(m);
	ret = tx_wait_parse(m, cond, len);
	machine_unlock(m);
	log = machine_render(m, MACHINE_VIEW_LOG, &n);
	if (why && !strstr(log, why))
		fail_msg("'%s': no '%s' in the log:\n%s", cond, why, log);
	free(log);
	return ret;
}

static int
parse(struct machine *m, const char *cond, const char *why)
{
	return parse_n(m, cond, strlen(cond), why);
}

static void
test_every_kind_parses(void **state)
{
	struct machine *m = ((struct fixture *)*state)->m;
	static const char *const good[] = {
		"status running", "timeout=5 status crashed\n",
		"console login: ", "screen [Ll]ogin", "succeeds test -e /x",
		"fails pgrep -f x", "file /etc/passwd", "socket /run/s.sock",
		"unit sshd.service", "unit getty@tty1.service inactive",
		"unit x.service user=alice", "unit x.service failed user=a_b.c-d",
		"port 22", "port 65535 closed", "  timeout=1   port 1  ",
	};
	size_t i;

	for (i = 0; i < sizeof(good) / sizeof(good[0]); i++)
		if (parse(m, good[i], NULL) != 0)
			fail_msg("'%s' was refused", good[i]);
}

static void
test_refusals_say_why(void **state)
{
	struct machine *m = ((struct fixture *)*state)->m;
	static const struct {
		const char *cond, *why;
	} bad[] = {
		{ "sometime soon", "wait: unknown condition 'sometime'" },
		{ "status", "wait: 'status' needs an argument" },
		{ "status asleep", "wait: unknown status 'asleep'" },
		{ "timeout=0 status running", "wait: bad timeout in" },
		{ "timeout=5", "wait: bad timeout in 'timeout=5'" },
		{ "console (", "wait: bad regular expression '('" },
		{ "screen (a{100}){100}{10}", "too big" },
		{ "unit a b c", "wait: unit: unexpected 'c'" },
		{ "unit a user=", "wait: unit: bad user name ''" },
		{ "unit a user=x;y", "wait: unit: bad user name 'x;y'" },
		{ "unit a Active", "wait: unit: bad state 'Active'" },
		{ "port 0", "wait: port: expected 'port N [closed]'" },
		{ "port 22 open", "wait: port: expected 'port N [closed]'" },
		{ "port 22 closed now", "wait: port: unexpected 'now'" },
		{ "port 22 user=x", "wait: port: expected 'port N [closed]'" },
	};
	size_t i;

	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		assert_int_equal(parse(m, bad[i].cond, bad[i].why), -EINVAL);
	assert_int_equal(parse_n(m, "status running\0x", 16,
				 "wait: the condition contains a NUL byte"),
			 -EINVAL);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_every_kind_parses, setup,
						fixture_teardown),
		cmocka_unit_test_setup_teardown(test_refusals_say_why, setup,
						fixture_teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
