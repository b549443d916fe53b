# systemd units, ports and sockets on the debian guest
server.wait_for_unit("multi-user.target")
server.wait_for_unit("nginx.service")
server.wait_for_open_port(80)
server.wait_for_open_port(80, addr="127.0.0.1")
info = server.get_unit_info("nginx")
t.assertEqual(info["ActiveState"], "active")
t.assertEqual(info["Id"], "nginx.service")
t.assertEqual(server.get_unit_property("nginx", "SubState"), "running")
t.assertEqual(server.get_unit_property("nginx", "ActiveState"), "active")
server.require_unit_state("nginx")
with t.assertRaises(AssertionError):
    server.require_unit_state("nginx", "inactive")

with subtest("stop and start a service"):
    t.assertEqual(server.stop_job("nginx")[0], 0)
    server.wait_for_closed_port(80)
    server.require_unit_state("nginx", "inactive")
    with t.assertRaisesRegex(AssertionError, 'unit "nginx.service" is inactive and there are no pending jobs'):
        server.wait_for_unit("nginx.service", timeout=30)
    t.assertEqual(server.start_job("nginx")[0], 0)
    server.wait_for_unit("nginx")
    server.wait_for_open_port(80)
    t.assertNotEqual(server.start_job("no-such-unit-here")[0], 0)

with subtest("systemctl and user units"):
    rc, out = server.systemctl("is-active nginx")
    t.assertEqual((rc, out), (0, "active\n"))
    server.systemctl("start user@1000.service")
    server.wait_for_unit("attestfs-hello.service", user="alice")
    rc, out = server.systemctl("is-active attestfs-hello.service", user="alice")
    t.assertEqual(out.strip(), "active")

with subtest("a unix socket"):
    server.start_job("postgresql")  # (it may have failed at boot on a loaded host)
    server.wait_for_unit("postgresql")
    server.wait_for_open_unix_socket("/run/postgresql/.s.PGSQL.5432")
    server.wait_for_open_port(5432)
