# calls a guest or backend cannot serve raise NotSupported, saying why
from attestfs_nixos import NotSupported

for m in [client, server]:
    for call in (lambda: m.wait_for_x(timeout=5), m.get_window_names,
                 lambda: m.wait_for_window("xterm", timeout=5), m.switch_root):
        try:
            call()
        except NotSupported as e:
            log.info(f"{m.name}: refused as expected: {e}")
        else:
            raise AssertionError(f"{m.name}: expected NotSupported")

try:
    client.send_monitor_command("screendump /tmp/x.ppm")
except NotSupported as e:
    t.assertIn("host_access", str(e))
else:
    raise AssertionError("screendump through the monitor was not refused")

try:
    create_machine("run-extra-vm")
except NotSupported as e:
    t.assertIn("clone", str(e))
