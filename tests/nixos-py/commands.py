# execute, succeed, fail, the waits on commands, retry, t, subtest, polling_condition
start_all()

for m in [client, server]:
    with subtest(f"commands on {m.name}"):
        t.assertEqual(m.execute("echo out; echo err >&2; exit 3"), (3, "out\n"))
        t.assertEqual(m.succeed("echo a", "echo b"), "a\nb\n")
        t.assertEqual(m.fail("echo no; false"), "no\n")
        # set -euo pipefail, as the driver runs commands
        t.assertEqual(m.execute("false; echo reached")[0], 1)
        t.assertNotEqual(m.execute("echo $UNSET_VARIABLE")[0], 0)
        # check_return=False / check_output=False
        t.assertEqual(m.execute("echo x; exit 2", check_return=False), (-1, "x\n"))
        t.assertEqual(m.execute("sleep 1; touch /tmp/detached", check_output=False), (-2, ""))
        m.wait_for_file("/tmp/detached")
        # a command past its timeout: status 124, as coreutils' timeout
        t.assertEqual(m.execute("sleep 20", timeout=1)[0], 124)
        m.succeed("rm -f /tmp/later; (sleep 2; touch /tmp/later) >/dev/null 2>&1 &")
        t.assertEqual(m.wait_until_succeeds("cat /tmp/later && echo there", timeout=60), "there\n")
        m.wait_until_fails("rm /tmp/later", timeout=60)
        m.sleep(1)
        with t.assertRaises(AssertionError):
            m.wait_until_succeeds("false", timeout=2)

server.succeed("[[ $(echo abc | tr a A) == Abc ]]")   # bash syntax, as on NixOS

tries = []
retry(lambda last: tries.append(last) or len(tries) == 3)
t.assertEqual(tries, [False, False, False])


@polling_condition(seconds_interval=0)
def server_is_up():
    "the server answers"
    server.succeed("true")


with server_is_up:
    client.succeed("true")
