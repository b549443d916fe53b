# the serial console, the screen and the keyboard (tiny guest), QMP
client.succeed("echo console-marker-1234 > /dev/console")
client.wait_for_console_text("console-marker-[0-9]+", timeout=60)
t.assertIn("console-marker-1234", client.get_console_log())
client.send_console("\n")

with subtest("screen and keyboard"):
    client.succeed("printf '\\033[2J\\033[H\\n\\n   %s\\n' 'PYTHON OCR CHECK 4711' > /dev/tty0")
    client.wait_for_text("OCR CHECK", timeout=120)
    t.assertIn("4711", client.get_screen_text())
    t.assertEqual(len(client.get_screen_text_variants()), 1)
    client.screenshot("client-screen")
    with open(os.path.join(driver.out_dir, "client-screen.png"), "rb") as f:
        t.assertEqual(f.read(8), b"\x89PNG\r\n\x1a\n")
    client.send_key("ret")
    client.send_chars("typed text\n")

with subtest("ttys"):
    client.succeed("printf 'TTY MARK 99' > /dev/tty1")
    t.assertIn("TTY MARK 99", client.get_tty_text("1"))
    client.wait_until_tty_matches("1", "TTY MARK [0-9]+", timeout=60)

with subtest("monitor and qmp"):
    t.assertIn("running", client.send_monitor_command("info status"))
    server.succeed("true")
