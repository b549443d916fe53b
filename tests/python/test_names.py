"""Every public name of the pinned NixOS driver and of issue 14 exists, with
the driver's defaults (python/attestfs_nixos/pinned.py says which commit)."""
import inspect
import io
import os
import sys
import tempfile
import unittest

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "python"))

import attestfs_nixos  # noqa: E402
from attestfs_nixos import pinned  # noqa: E402
from attestfs_nixos.logger import CompositeLogger, TerminalLogger  # noqa: E402


def public_methods(cls):
    return {n for n, v in inspect.getmembers(cls) if not n.startswith("_") and callable(v)}


class Names(unittest.TestCase):
    def setUp(self):
        self.tmp = tempfile.TemporaryDirectory()
        logger = CompositeLogger([TerminalLogger(stream=io.StringIO(), color=False)])
        self.driver = attestfs_nixos.Driver(self.tmp.name, self.tmp.name, logger)

    def tearDown(self):
        self.tmp.cleanup()

    def test_machine_has_every_method_of_the_issue(self):
        missing = set(pinned.ISSUE_MACHINE_METHODS) - public_methods(attestfs_nixos.Machine)
        self.assertEqual(missing, set())

    def test_machine_has_every_public_method_of_the_pinned_driver(self):
        missing = set(pinned.PINNED_MACHINE_METHODS) - public_methods(attestfs_nixos.Machine)
        self.assertEqual(missing, set())

    def test_the_issue_list_is_part_of_the_pinned_driver(self):
        # the issue names nothing the pinned driver does not have
        self.assertEqual(set(pinned.ISSUE_MACHINE_METHODS) - set(pinned.PINNED_MACHINE_METHODS), set())

    def test_no_public_method_beyond_the_driver_but_attestfs_extras(self):
        extra = public_methods(attestfs_nixos.Machine) - set(pinned.PINNED_MACHINE_METHODS)
        self.assertEqual(extra, set(pinned.ATTESTFS_EXTRAS) | {"info"})

    def test_defaults_are_the_drivers(self):
        for name, defaults in pinned.PINNED_DEFAULTS.items():
            sig = inspect.signature(getattr(attestfs_nixos.Machine, name))
            for arg, value in defaults.items():
                with self.subTest(method=name, arg=arg):
                    self.assertIn(arg, sig.parameters)
                    self.assertEqual(sig.parameters[arg].default, value)

    def test_retry_default(self):
        sig = inspect.signature(attestfs_nixos.retry)
        self.assertEqual(list(sig.parameters), ["fn", "timeout_seconds"])
        self.assertEqual(sig.parameters["timeout_seconds"].default, 900)

    def test_script_symbols_are_the_drivers_and_the_issues(self):
        symbols = self.driver.test_symbols(announce=False)
        self.assertEqual(set(pinned.PINNED_SYMBOLS) - set(symbols), set())
        self.assertEqual(set(pinned.ISSUE_SYMBOLS) - set(symbols), set())

    def test_exception_types(self):
        self.assertTrue(issubclass(attestfs_nixos.RequestedAssertionFailed, AssertionError))
        self.assertTrue(issubclass(attestfs_nixos.NotSupported, attestfs_nixos.MachineError))
        t = self.driver.test_symbols(announce=False)["t"]
        with self.assertRaises(attestfs_nixos.RequestedAssertionFailed):
            t.assertEqual(1, 2)

    def test_pythonized_names(self):
        self.assertEqual(attestfs_nixos.pythonize_name("web-1"), "web_1")
        self.assertEqual(attestfs_nixos.pythonize_name("1st"), "_st")

    def test_python_3_9_syntax(self):
        # nixpkgs' and Debian's Pythons: nothing newer than 3.9's grammar
        import ast
        import glob
        pkg = os.path.dirname(attestfs_nixos.__file__)
        for path in sorted(glob.glob(os.path.join(pkg, "*.py"))):
            with self.subTest(path=os.path.basename(path)), open(path) as f:
                ast.parse(f.read(), path, feature_version=(3, 9))

    def test_start_script_names(self):
        from attestfs_nixos.cli import config_from_start_scripts, machine_name
        self.assertEqual(machine_name("/nix/store/x-nixos-vm/bin/run-web-vm"), "web")
        self.assertEqual(machine_name("/x/start"), "machine")
        cfg = config_from_start_scripts(["/s/bin/run-db-vm"], ["2", "1"])
        self.assertEqual(cfg["machines"]["db"]["vlans"], [1, 2])
        self.assertEqual(cfg["machines"]["db"]["shell_channel"], "virtconsole")


if __name__ == "__main__":
    unittest.main()
