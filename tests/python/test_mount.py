"""attestfs_nixos.mount without a mount: reading the reason of a failure."""
import errno
import os
import sys
import tempfile
import unittest

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "python"))

from attestfs_nixos import mount  # noqa: E402


class Reasons(unittest.TestCase):
    def log(self, text):
        f = tempfile.NamedTemporaryFile("w", delete=False)
        self.addCleanup(os.unlink, f.name)
        f.write(text)
        f.close()
        return f.name

    def test_the_reason_is_not_the_errno_line_after_it(self):
        path = self.log("1 units: stop nginx\n"
                        "2 wait unit nginx.service: the unit is inactive and there are no pending jobs\n"
                        "3 wait unit nginx.service: Remote I/O error\n")
        self.assertEqual(mount.last_reason(path, "wait", errno.EREMOTEIO),
                         "wait unit nginx.service: the unit is inactive and there are no pending jobs")
        self.assertEqual(mount.last_reason(path), "wait unit nginx.service: Remote I/O error")
        self.assertEqual(mount.last_reason(path, "units"), "units: stop nginx")

    def test_no_log_no_reason(self):
        self.assertEqual(mount.last_reason("/nonexistent/log"), "")


if __name__ == "__main__":
    unittest.main()


class GuestCommand(unittest.TestCase):
    """Commands run as the driver's `bash -c 'set -euo pipefail; CMD'`."""

    def run_in(self, shell, command, path=None, mode="bash"):
        import subprocess
        from attestfs_nixos.machine import guest_command
        env = dict(os.environ)
        if path is not None:
            env["PATH"] = path
        p = subprocess.run([shell, "-c", guest_command(command, mode)], env=env,
                           stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
        return p.returncode, p.stdout

    def test_in_bash_itself(self):
        self.assertEqual(self.run_in("/bin/bash", "false | true")[0], 1)
        self.assertEqual(self.run_in("/bin/bash", "[[ a == a ]] && echo $'x\\ty'"), (0, "x\ty\n"))
        self.assertEqual(self.run_in("/bin/bash", "echo $$ > /dev/null; exit 4")[0], 4)

    def test_from_another_sh_through_bash(self):
        self.assertEqual(self.run_in("/bin/sh", "[[ -n $BASH_VERSION ]] && echo bash"), (0, "bash\n"))
        self.assertEqual(self.run_in("/bin/sh", "false | true")[0], 1)

    def test_without_bash_set_eu(self):
        empty = tempfile.mkdtemp()
        self.addCleanup(os.rmdir, empty)
        sh = os.path.realpath("/bin/sh")
        self.assertEqual(self.run_in(sh, "false; echo reached", path=empty), (1, ""))
        self.assertNotEqual(self.run_in(sh, "echo $NO_SUCH_VAR_HERE", path=empty)[0], 0)
        self.assertEqual(self.run_in(sh, "echo 'it''s'", path=empty), (0, "its\n"))

    def test_sh_mode_starts_no_bash(self):
        sh = os.path.realpath("/bin/sh")
        self.assertEqual(self.run_in(sh, "echo ${BASH_VERSION:-none}", mode="sh"), (0, "none\n"))
        self.assertEqual(self.run_in(sh, "false; echo reached", mode="sh"), (1, ""))
        self.assertEqual(self.run_in("/bin/bash", "false | true", mode="sh")[0], 1)

    def test_systemctl_for_a_user_is_quoted_for_any_sh(self):
        import io
        import attestfs_nixos
        from attestfs_nixos.logger import CompositeLogger, TerminalLogger
        d = tempfile.mkdtemp()
        self.addCleanup(os.rmdir, d)
        m = attestfs_nixos.Machine(attestfs_nixos.Driver(d, d, CompositeLogger([TerminalLogger(io.StringIO())])), "m")
        seen = []
        m.execute = lambda cmd, **kw: seen.append(cmd) or (0, "")
        m.systemctl("show 'a b'", user="alice")
        self.assertEqual(seen, ["su -l alice --shell /bin/sh -c 'XDG_RUNTIME_DIR=/run/user/`id -u` "
                                "systemctl --user show '\"'\"'a b'\"'\"''"])
