# copies between the host and the guests, and waiting for files
import tempfile

src = os.path.join(tempfile.mkdtemp(), "payload.txt")
with open(src, "w") as f:
    f.write("from the host\n")
os.chmod(src, 0o640)

for m in [client, server]:
    with subtest(f"files on {m.name}"):
        m.copy_from_host(src, "/root/in/payload.txt")
        t.assertEqual(m.succeed("cat /root/in/payload.txt"), "from the host\n")
        t.assertEqual(m.succeed("stat -c %a /root/in/payload.txt"), "640\n")
        m.copy_from_host_via_shell(src, "/root/via-shell/payload.txt")
        t.assertEqual(m.succeed("cat /root/via-shell/payload.txt"), "from the host\n")
        m.succeed("mkdir -p /root/out && echo from-" + m.name + " > /root/out/result.txt")
        m.copy_from_machine("/root/out/result.txt", m.name)
        with open(os.path.join(driver.out_dir, m.name, "result.txt")) as f:
            t.assertEqual(f.read(), f"from-{m.name}\n")
        m.copy_from_vm("/root/out", m.name + "-dir")
        t.assertTrue(os.path.isfile(os.path.join(driver.out_dir, m.name + "-dir", "out", "result.txt")))
        m.succeed("(sleep 1; touch /tmp/appears) >/dev/null 2>&1 &")
        m.wait_for_file("/tmp/appears", timeout=60)
