"""attestfs_nixos against a mount of the mock backend (the host's /bin/sh
plays the guest: no VM, no VM lock). Every guest command and path stays in
this test's temporary directory; shutdown and reboot are never asked (and
stand-ins are first in the mock's PATH all the same, as tests/contract/)."""
import errno
import io
import os
import re
import shutil
import subprocess
import sys
import tempfile
import threading
import time
import unittest
import xml.etree.ElementTree as ET

TOP = os.path.abspath(os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", ".."))
sys.path.insert(0, os.path.join(TOP, "python"))

import attestfs_nixos  # noqa: E402
from attestfs_nixos import NotSupported, RequestedAssertionFailed  # noqa: E402
from attestfs_nixos.driver import PollingConditionError  # noqa: E402
from attestfs_nixos.logger import CompositeLogger, TerminalLogger  # noqa: E402

DRIVER = os.path.join(TOP, "python", "bin", "attestfs-test-driver")
DEADLINE = int(os.environ.get("ATTESTFS_TEST_TIMEOUT", "120"))
MOCK = '{"machines": {"m": {"backend": "mock"}, "web-1": {"backend": "mock"}}}\n'


def until(cond, what):
    end = time.monotonic() + DEADLINE
    while not cond():
        if time.monotonic() > end:
            raise AssertionError(f"never: {what}")
        time.sleep(0.02)


class MockMount(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.tmp = tempfile.mkdtemp(prefix="attestfs-pytest.")
        cls.power = os.path.join(cls.tmp, "host-power")
        guard = os.path.join(cls.tmp, "bin")
        os.mkdir(guard)
        for c in ("poweroff", "reboot", "halt", "shutdown", "systemctl", "init", "telinit"):
            with open(os.path.join(guard, c), "w") as f:
                f.write(f'#!/bin/sh\necho "{c} $*" >>"{cls.power}"\n')
            os.chmod(os.path.join(guard, c), 0o755)
        with open(os.path.join(cls.tmp, "machines.json"), "w") as f:
            f.write(MOCK)
        cls.vms = os.path.join(cls.tmp, "vms")
        os.mkdir(cls.vms)
        env = dict(os.environ, PATH=guard + ":" + os.environ["PATH"])
        cls.daemon_log = open(os.path.join(cls.tmp, "daemon.log"), "w")
        cls.daemon = subprocess.Popen(
            [os.path.join(TOP, "attestfs"), "-f", "-o",
             f"config={cls.tmp}/machines.json,state_dir={cls.tmp}/state,timeout={DEADLINE}",
             cls.vms], env=env, stdout=cls.daemon_log, stderr=subprocess.STDOUT)
        until(lambda: os.path.exists(os.path.join(cls.vms, "ctl")), "the mount")

    @classmethod
    def tearDownClass(cls):
        subprocess.run(["fusermount3", "-u", cls.vms], check=False)
        try:
            cls.daemon.wait(DEADLINE)
        except subprocess.TimeoutExpired:
            cls.daemon.kill()
            cls.daemon.wait()
        cls.daemon_log.close()
        power = os.path.exists(cls.power)
        shutil.rmtree(cls.tmp, ignore_errors=True)
        assert not power, "the mock's shell was asked to power off the host"

    def setUp(self):
        self.w = tempfile.mkdtemp(dir=self.tmp)
        self.out = io.StringIO()
        logger = CompositeLogger([TerminalLogger(stream=self.out, color=False)])
        self.driver = attestfs_nixos.Driver(self.vms, self.w, logger)
        self.s = self.driver.test_symbols(announce=False)
        self.m = self.s["m"]
        self.s["start_all"]()

    def log(self):
        return self.out.getvalue()

    # --- execute, succeed, fail ------------------------------------------

    def test_execute_gives_the_exact_status_and_stdout(self):
        self.assertEqual(self.m.execute("echo out; echo err >&2; exit 7"), (7, "out\n"))
        self.assertEqual(self.m.execute("printf 'a\\nb'"), (0, "a\nb"))

    def test_execute_runs_with_set_eu_as_the_driver(self):
        # `set -euo pipefail`: an unset variable fails, a failed step stops
        rc, out = self.m.execute("echo $NO_SUCH_VARIABLE_HERE")
        self.assertNotEqual(rc, 0)
        rc, out = self.m.execute("false; echo reached")
        self.assertEqual((rc, out), (1, ""))
        # under bash, as the driver runs them: pipefail and bash's syntax
        self.assertEqual(self.m.execute("false | true")[0], 1)
        self.assertEqual(self.m.execute("[[ a == a ]] && echo $'x\\ty'"), (0, "x\ty\n"))

    def test_the_status_of_a_command_of_several_lines(self):
        self.m.execute("exit 9")
        self.assertEqual(self.m.execute("echo a\nexit 5"), (5, "a\n"))

    def test_execute_check_return_false_and_check_output_false(self):
        self.assertEqual(self.m.execute("echo x; exit 3", check_return=False), (-1, "x\n"))
        flag = os.path.join(self.w, "detached")
        self.assertEqual(self.m.execute(f"sleep 0.2; touch {flag}", check_output=False), (-2, ""))
        self.m.wait_for_file(flag, timeout=DEADLINE)

    def test_execute_past_its_timeout_is_status_124(self):
        rc, out = self.m.execute("echo early; sleep 30", timeout=1)
        self.assertEqual(rc, 124)

    def test_succeed_concatenates_and_fails_with_the_drivers_message(self):
        self.assertEqual(self.m.succeed("echo a", "echo b"), "a\nb\n")
        with self.assertRaisesRegex(RequestedAssertionFailed,
                                    r"^command `echo half; exit 4` failed \(exit code 4\)$"):
            self.m.succeed("echo half; exit 4")
        self.assertIn("m: must succeed: echo half; exit 4\n", self.log())
        self.assertIn("m: output: half\n", self.log())
        self.assertRegex(self.log(), r"m: \(finished: must succeed: echo a, in \d+\.\d\d seconds\)")

    def test_fail(self):
        self.assertEqual(self.m.fail("echo no; false"), "no\n")
        with self.assertRaisesRegex(RequestedAssertionFailed, r"^command `true` unexpectedly succeeded$"):
            self.m.fail("true")

    # --- waits and retry -------------------------------------------------

    def test_wait_until_succeeds_returns_the_output_once_it_holds(self):
        flag = os.path.join(self.w, "flag")
        threading.Timer(0.3, lambda: open(flag, "w").close()).start()
        out = self.m.wait_until_succeeds(f"cat {flag} && echo seen", timeout=DEADLINE)
        self.assertEqual(out, "seen\n")
        self.assertIn(f"m: waiting for success: cat {flag} && echo seen\n", self.log())

    def test_wait_until_fails_and_the_timeout_message(self):
        self.m.wait_until_fails("false", timeout=DEADLINE)
        with self.assertRaisesRegex(RequestedAssertionFailed,
                                    r"^action timed out after \d+\.\d\d seconds \(timeout=1\)$"):
            self.m.wait_until_succeeds("false", timeout=1)
        with self.assertRaises(RequestedAssertionFailed):
            self.m.wait_for_file(os.path.join(self.w, "never"), timeout=1)

    def test_retry_calls_until_true_and_once_more_with_last_try(self):
        calls = []
        self.s["retry"](lambda last: calls.append(last) or len(calls) == 2)
        self.assertEqual(calls, [False, False])
        calls.clear()
        with self.assertRaisesRegex(RequestedAssertionFailed, r"action timed out after .* \(timeout=1\)"):
            self.s["retry"](lambda last: calls.append(last) and False, timeout_seconds=1)
        self.assertEqual(calls[-1], True)
        self.assertTrue(all(c is False for c in calls[:-1]))

    def test_polling_condition_fails_the_next_command(self):
        flag = os.path.join(self.w, "ok")
        open(flag, "w").close()

        @self.s["polling_condition"](seconds_interval=0)
        def flag_is_there():
            return os.path.exists(flag)

        with flag_is_there:
            self.m.succeed("true")
            os.unlink(flag)
            with self.assertRaisesRegex(PollingConditionError, "Polling condition failed: flag_is_there"):
                self.m.succeed("true")
        self.m.succeed("true")  # no longer active

    # --- subtests and logs -----------------------------------------------

    def test_subtest_nesting_timing_and_failure_lines(self):
        subtest = self.s["subtest"]
        with subtest("outer"):
            with subtest("inner"):
                self.m.succeed("true")
        with self.assertRaises(RequestedAssertionFailed):
            with subtest("broken"):
                self.m.succeed("exit 2")
        log = self.log()
        self.assertRegex(log, r"subtest: outer\nsubtest: inner\nm: must succeed: true\n")
        self.assertRegex(log, r"\(finished: subtest: inner, in \d+\.\d\d seconds\)\n"
                              r"\(finished: subtest: outer, in \d+\.\d\d seconds\)")
        self.assertIn('!!! Test "broken" failed with error: "command `exit 2` failed (exit code 2)"', log)

    def test_serial_lines_are_muted_by_serial_stdout_off(self):
        lg = TerminalLogger(stream=io.StringIO(), color=False)
        lg.log_serial("one", "m")
        lg.print_serial_logs(False)
        lg.log_serial("two", "m")
        self.assertEqual(lg.stream.getvalue(), "m # one\n")

    # --- files, console, refusals ----------------------------------------

    def test_copy_from_host_and_from_machine_through_files(self):
        src = os.path.join(self.w, "src.txt")
        with open(src, "w") as f:
            f.write("payload\n")
        os.chmod(src, 0o640)
        dst = os.path.join(self.w, "deep", "dir", "dst.txt")
        self.m.copy_from_host(src, dst)
        self.assertEqual(self.m.succeed(f"cat {dst}"), "payload\n")
        self.assertEqual(self.m.succeed(f"stat -c %a {dst}"), "640\n")
        self.m.copy_from_machine(dst, "got")
        with open(os.path.join(self.w, "got", "dst.txt")) as f:
            self.assertEqual(f.read(), "payload\n")
        tree = os.path.join(self.w, "tree")
        os.makedirs(os.path.join(tree, "sub"))
        with open(os.path.join(tree, "sub", "f"), "w") as f:
            f.write("in a tree\n")
        big = os.path.join(self.w, "big")
        with open(big, "wb") as f:
            f.write(os.urandom(600 * 1024))  # past the inline size: through files/
        self.m.copy_from_host(tree, os.path.join(self.w, "copied-tree"))
        self.m.copy_from_host(big, os.path.join(self.w, "copied-big"))
        self.assertEqual(self.m.succeed(f"cat {self.w}/copied-tree/sub/f"), "in a tree\n")
        self.assertEqual(self.m.succeed(f"cmp {big} {self.w}/copied-big && echo same"), "same\n")
        self.m.copy_from_machine(os.path.join(self.w, "copied-tree"), "back")
        with open(os.path.join(self.w, "back", "copied-tree", "sub", "f")) as f:
            self.assertEqual(f.read(), "in a tree\n")
        via = os.path.join(self.w, "via", "shell.txt")
        self.m.copy_from_host_via_shell(src, via)
        self.assertEqual(self.m.succeed(f"cat {via}"), "payload\n")

    def test_console_log_and_wait_for_console_text(self):
        self.m.wait_for_console_text("mock: booted m", timeout=DEADLINE)
        self.assertIn("mock: booted m", self.m.get_console_log())
        with self.assertRaises(RequestedAssertionFailed):
            self.m.wait_for_console_text("never printed", timeout=1)

    def test_what_the_mock_cannot_serve_raises_with_the_reason(self):
        for call in (lambda: self.m.screenshot("x"), self.m.get_screen_text,
                     lambda: self.m.send_key("ret"), lambda: self.m.send_chars("hi"),
                     lambda: self.m.send_monitor_command("info status"),
                     lambda: self.m.wait_for_text("x", timeout=1)):
            with self.assertRaisesRegex(NotSupported, r"m: .* needs .*which this machine \(backend mock\)"):
                call()
        for call in (lambda: self.m.wait_for_unit("foo.service", timeout=1),
                     lambda: self.m.require_unit_state("foo.service"),
                     lambda: self.m.start_job("foo.service")):
            with self.assertRaisesRegex(NotSupported, "no systemd"):
                call()
        if not any(shutil.which(x) for x in ("xwininfo", "Xorg", "X")):  # the mock's guest is the host
            with self.assertRaisesRegex(NotSupported, "no X server"):
                self.m.wait_for_x(timeout=1)
        with self.assertRaisesRegex(NotSupported, "create_machine"):
            self.s["create_machine"]("run-x-vm")

    def test_machines_by_pythonized_name(self):
        self.assertEqual(self.s["web_1"].name, "web-1")
        self.assertNotIn("machine", self.s)  # two machines
        self.assertTrue(self.s["web_1"].is_up())

    def test_wait_for_qmp_event_sees_the_mounts_events(self):
        n = self.s["web_1"]
        n._ctl("pause")
        threading.Timer(0.2, lambda: n._ctl("resume")).start()
        evt = n.wait_for_qmp_event(lambda e: e["event"] == "RESUMED" or e["event"] == "RUNNING",
                                   timeout=DEADLINE)
        self.assertIn(evt["event"], ("RESUMED", "RUNNING"))


class CommandLine(unittest.TestCase):
    """attestfs-test-driver --config: through attestfs-run, as in a build."""

    def run_driver(self, script, *args, env_extra=None, stdin=None):
        d = tempfile.mkdtemp(prefix="attestfs-pytest-cli.")
        self.addCleanup(shutil.rmtree, d, True)
        with open(os.path.join(d, "machines.json"), "w") as f:
            f.write('{"machines": {"m": {"backend": "mock"}}}\n')
        with open(os.path.join(d, "test.py"), "w") as f:
            f.write(script)
        env = dict(os.environ, **(env_extra or {}))
        env.pop("VMS", None)
        p = subprocess.run([DRIVER, "--config", os.path.join(d, "machines.json"), "-o", d, *args,
                            os.path.join(d, "test.py")], env=env, stdout=subprocess.PIPE,
                           stderr=subprocess.PIPE, timeout=DEADLINE, input=stdin)
        self.stdout = p.stdout.decode()
        return p.returncode, p.stderr.decode(), d

    def test_logfile_is_the_drivers_xml_log(self):
        log = os.path.join(tempfile.mkdtemp(prefix="attestfs-pytest-log."), "log.xml")
        self.addCleanup(shutil.rmtree, os.path.dirname(log), True)
        rc, err, _ = self.run_driver("with subtest('one'):\n    machine.succeed('echo hi')\n",
                                     env_extra={"LOGFILE": log})
        self.assertEqual(rc, 0, err)
        root = ET.parse(log).getroot()
        self.assertEqual(root.tag, "logfile")
        heads = [h.text for h in root.iter("head")]
        self.assertIn("subtest: one", heads)
        self.assertIn("must succeed: echo hi", heads)
        lines = [ln.text for ln in root.iter("line")]
        self.assertTrue(any(ln and ln.startswith("(finished: subtest: one, in ") for ln in lines))

    def test_interactive_runs_what_it_is_given(self):
        rc, err, _ = self.run_driver("", "-I", stdin=b'print(machine.succeed("echo from-repl"))\n')
        self.assertEqual(rc, 0, err)
        self.assertIn("from-repl", self.stdout)

    def test_a_passing_script_exits_0_with_the_drivers_lines(self):
        rc, err, _ = self.run_driver("start_all()\nmachine.succeed('true')\n")
        self.assertEqual(rc, 0, err)
        self.assertIn("run the VM test script", err)
        self.assertRegex(err, r"test script finished in \d+\.\d\ds")

    def test_a_failing_script_exits_1_with_only_its_frames(self):
        rc, err, _ = self.run_driver("start_all()\n\nmachine.succeed('exit 3')\n")
        self.assertEqual(rc, 1, err)
        self.assertIn('!!!   File "<string>", line 3, in <module>', err)
        self.assertIn("!!!     machine.succeed('exit 3')", err)
        self.assertIn("!!! RequestedAssertionFailed: command `exit 3` failed (exit code 3)", err)
        self.assertNotIn("machine.py", err)

    def test_junit_xml_has_one_testcase_per_subtest(self):
        rc, err, d = self.run_driver(
            "with subtest('good'):\n    machine.succeed('true')\n"
            "with subtest('bad'):\n    machine.succeed('false')\n", "--junit-xml", "junit.xml")
        self.assertEqual(rc, 1, err)
        suite = ET.parse(os.path.join(d, "junit.xml")).getroot().find("testsuite")
        self.assertEqual(suite.get("name"), "NixOS integration test")
        cases = {c.get("name"): c for c in suite.findall("testcase")}
        self.assertEqual(set(cases), {"good", "bad"})
        self.assertIsNone(cases["good"].find("failure"))
        self.assertEqual(cases["bad"].find("failure").get("message"), "test case failed")
        self.assertEqual(suite.get("failures"), "1")

    def test_global_timeout_terminates_the_test(self):
        rc, err, _ = self.run_driver("machine.succeed('sleep 60')\n", "--global-timeout", "2")
        self.assertIn("timeout reached; test terminating...", err)
        self.assertEqual(rc, 128 + 15, err)

    def test_keep_machines_on_failure_says_how_to_attach(self):
        d = tempfile.mkdtemp(prefix="attestfs-pytest-cli.")
        self.addCleanup(shutil.rmtree, d, True)
        with open(os.path.join(d, "machines.json"), "w") as f:
            f.write('{"machines": {"m": {"backend": "mock"}}}\n')
        with open(os.path.join(d, "test.py"), "w") as f:
            f.write("machine.succeed('echo kept > %s/mark')\nmachine.succeed('false')\n" % d)
        env = dict(os.environ)
        env.pop("VMS", None)
        p = subprocess.Popen([DRIVER, "--config", os.path.join(d, "machines.json"), "-o", d,
                              "--keep-machines-on-failure", os.path.join(d, "test.py")],
                             env=env, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                             stderr=subprocess.PIPE, text=True)
        try:
            lines = []
            for line in p.stderr:
                lines.append(line)
                if "press Enter" in line:
                    break
            attach = [ln for ln in lines if "nsenter --target" in ln]
            self.assertEqual(len(attach), 1, "".join(lines))
            pid = re.search(r"--target (\d+)", attach[0]).group(1)
            vms = re.search(r"VMS=(\S+)", attach[0]).group(1)
            # the machine is still there, in the mount's namespaces
            st = subprocess.run(["nsenter", "--target", pid, "--user", "--mount", "--preserve-credentials",
                                 "cat", vms + "/m/status"], stdout=subprocess.PIPE, text=True,
                                timeout=DEADLINE)
            self.assertEqual(st.stdout.strip(), "running")
            # SIGTERM ends it (attestfs-run's status for a signal: 128 + 15)
            p.send_signal(15)
            self.assertEqual(p.wait(DEADLINE), 128 + 15)
        finally:
            if p.poll() is None:
                p.kill()
                p.wait()

    def test_bad_command_line_exits_2(self):
        p = subprocess.run([DRIVER, "--config"], stderr=subprocess.PIPE, timeout=DEADLINE)
        self.assertEqual(p.returncode, 2)


if __name__ == "__main__":
    unittest.main()
