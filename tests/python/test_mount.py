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
