# two machines on VLAN 1: traffic by name, block/unblock, a forwarded port
import urllib.request

server.start_job("nginx")  # scripts run in any order on the same machines
server.wait_for_unit("nginx")
server.succeed("echo page-of-server > /var/www/html/index.html")
t.assertEqual(client.succeed("wget -q -O- http://server/"), "page-of-server\n")
client.succeed("ping -c 1 -W 5 server")

with subtest("block and unblock"):
    server.block()
    client.fail("timeout 5 wget -q -O- http://server/")
    server.unblock()
    client.wait_until_succeeds("timeout 5 wget -q -O- http://server/", timeout=60)

with subtest("a port forwarded from the host"):
    import socket
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    server.forward_port(port, 80)
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=30) as r:
        t.assertEqual(r.read(), b"page-of-server\n")
