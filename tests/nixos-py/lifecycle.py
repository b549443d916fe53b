# start, reboot, crash, shutdown; attestfs's snapshot, restore and clone
start_all()
client.connect()
t.assertTrue(client.is_up())

with subtest("snapshot, restore, clone"):
    client.succeed("echo before > /root/state")
    client.snapshot("base")
    client.succeed("echo after > /root/state")
    client.restore("base")
    t.assertEqual(client.succeed("cat /root/state"), "before\n")
    twin = client.clone("twin", "base")
    t.assertEqual(twin.succeed("cat /root/state"), "before\n")
    t.assertNotEqual(twin.succeed("hostname"), client.succeed("hostname"))
    twin.shutdown()

with subtest("reboot"):
    client.succeed("touch /tmp/gone-after-reboot")
    client.reboot()
    client.fail("test -e /tmp/gone-after-reboot")

with subtest("crash, and the next command boots it again"):
    client.crash()
    t.assertFalse(client.is_up())
    client.succeed("true")
    t.assertTrue(client.is_up())

with subtest("shutdown"):
    client.shutdown()
    t.assertFalse(client.is_up())
    client.wait_for_shutdown()
    server.shutdown()
    join_all()
