"""Driver: the pinned driver's test-script namespace over a mount."""
import os
import re
import signal
import sys
import threading
import time
import traceback
from contextlib import contextmanager
from math import isfinite
from typing import Any, Callable, Dict, Iterator, List, Optional
from unittest import TestCase

from . import mount
from .errors import MachineError, NotSupported, RequestedAssertionFailed
from .logger import AbstractLogger
from .machine import Machine, retry


class AssertionTester(TestCase):
    """`t`: unittest's assertions, failing with RequestedAssertionFailed."""

    failureException = RequestedAssertionFailed


class PollingConditionError(Exception):
    pass


class PollingCondition:
    """As the driver's: checked before every command when overdue."""

    def __init__(self, condition: Callable[[], Optional[bool]], logger: AbstractLogger,
                 seconds_interval: float = 2.0, description: Optional[str] = None) -> None:
        self.condition = condition
        self.seconds_interval = seconds_interval
        self.logger = logger
        if description is None:
            description = condition.__doc__ or condition.__name__
        self.description = str(description)
        self.last_called = float("-inf")
        self.entry_count = 0

    def check(self, force: bool = False) -> bool:
        if (self.entered or not self.overdue) and not force:
            return True
        with self, self.logger.nested(self.nested_message):
            since = time.monotonic() - self.last_called
            self.logger.info(f"Time since last: {since:.2f}s" if isfinite(since) else "(not called yet)")
            try:
                res = self.condition()
            except Exception:
                res = False
            res = res is None or res
            self.logger.info(self.status_message(res))
            return res

    def maybe_raise(self) -> None:
        if not self.check():
            raise PollingConditionError(self.status_message(False))

    def status_message(self, status: bool) -> str:
        return f"Polling condition {'succeeded' if status else 'failed'}: {self.description}"

    @property
    def nested_message(self) -> str:
        return f"Checking polling condition {self.description!r}"

    @property
    def overdue(self) -> bool:
        return self.last_called + self.seconds_interval < time.monotonic()

    @property
    def entered(self) -> bool:
        return self.entry_count > 0

    def __enter__(self) -> None:
        self.entry_count += 1

    def __exit__(self, *_: Any) -> None:
        self.entry_count -= 1
        self.last_called = time.monotonic()


class VLan:
    """vlanN in the script: attestfs's switch N (its socket in state_dir)."""

    def __init__(self, nr: int) -> None:
        self.nr = nr

    def __repr__(self) -> str:
        return f"<Vlan Nr. {self.nr}>"


class DebugNop:
    def breakpoint(self) -> None:
        pass


def pythonize_name(name: str) -> str:
    return re.sub(r"^[^A-Za-z_]|[^A-Za-z0-9_]", "_", name)


class Driver:
    """The machines of the mount at `vms`, and the test-script symbols."""

    def __init__(self, vms: str, out_dir: str, logger: AbstractLogger,
                 tests: str = "", global_timeout: int = 24 * 60 * 60 * 7,
                 serial_log: Optional[str] = None, own_mount: bool = False) -> None:
        self.vms = vms
        self.out_dir = out_dir
        self.logger = logger
        self.tests = tests
        self.global_timeout = global_timeout
        self.race_timer = threading.Timer(global_timeout, self.terminate_test)
        self.race_timer.daemon = True
        self.polling_conditions: List[PollingCondition] = []
        self.debug = DebugNop()
        self.own_mount = own_mount
        # "bash" (the driver's semantics) or "sh" (see machine.guest_command)
        self.guest_shell = os.environ.get("ATTESTFS_NIXOS_SHELL", "bash")
        if self.guest_shell not in ("bash", "sh"):
            raise MachineError(f"ATTESTFS_NIXOS_SHELL={self.guest_shell}: expected bash or sh")
        self._machines: Dict[str, Machine] = {}
        for name in sorted(os.listdir(vms)):
            if os.path.isfile(os.path.join(vms, name, "ctl")):
                self._machines[name] = Machine(self, name)
        self.vlans = [VLan(n) for n in self._vlan_numbers()]
        self._serial_stop = threading.Event()
        self._serial_thread: Optional[threading.Thread] = None
        if serial_log:
            self._serial_thread = threading.Thread(
                target=self._follow_serial, args=(serial_log,), daemon=True)
            self._serial_thread.start()

    def _vlan_numbers(self) -> List[int]:
        nrs = set()
        for m in self._machines.values():
            try:
                for line in mount.read_text(m._path("info")).splitlines():
                    hit = re.match(r"address vlan(\d+) ", line)
                    if hit:
                        nrs.add(int(hit.group(1)))
            except OSError:
                pass
        return sorted(nrs)

    def _follow_serial(self, path: str) -> None:
        """The daemon's `name # line` console lines (attestfs-run -l) into
        the loggers, so that serial_stdout_off mutes them as in the driver."""
        # a mount of someone else's: its console from now on
        offset, buf = 0 if self.own_mount or not os.path.exists(path) else os.path.getsize(path), b""
        while True:
            stop = self._serial_stop.is_set()
            data, offset = mount.read_from(path, offset)
            buf += data
            *lines, buf = buf.split(b"\n")
            for raw in lines:
                line = raw.decode(errors="ignore").replace("\r", "").rstrip()
                name, sep, text = line.partition(" # ")
                if sep and " " not in name:
                    self.logger.log_serial(text, name)
            if stop:
                return
            self._serial_stop.wait(0.05)

    def add_machine(self, name: str) -> Machine:
        self._machines[name] = Machine(self, name)
        return self._machines[name]

    @property
    def machines(self) -> List[Machine]:
        return [self._machines[n] for n in sorted(self._machines)]

    def __enter__(self) -> "Driver":
        return self

    def __exit__(self, *_: Any) -> None:
        with self.logger.nested("cleanup"):
            self.race_timer.cancel()
            if self.own_mount:
                for machine in self.machines:
                    try:
                        machine.release()
                    except Exception as e:
                        self.logger.error(f"Error during cleanup of {machine.name}: {e}")
        self.stop_serial()

    def stop_serial(self) -> None:
        if self._serial_thread:
            self._serial_stop.set()
            self._serial_thread.join()
            self._serial_thread = None

    def subtest(self, name: str) -> Iterator[None]:
        with self.logger.subtest(name):
            try:
                yield
            except Exception as e:
                self.logger.log_test_error(f'Test "{name}" failed with error: "{e}"')
                raise e

    def test_symbols(self, announce: bool = True) -> Dict[str, Any]:
        @contextmanager
        def subtest(name: str) -> Iterator[None]:
            return self.subtest(name)

        general_symbols = dict(
            start_all=self.start_all,
            test_script=self.test_script,
            machines_qemu=self.machines,
            machines_nspawn=[],
            vlans=self.vlans,
            driver=self,
            log=self.logger,
            os=os,
            create_machine=self.create_machine,
            subtest=subtest,
            run_tests=self.run_tests,
            join_all=self.join_all,
            retry=retry,
            serial_stdout_off=self.serial_stdout_off,
            serial_stdout_on=self.serial_stdout_on,
            polling_condition=self.polling_condition,
            BaseMachine=Machine,
            t=AssertionTester(),
            debug=self.debug,
        )
        machine_symbols = {pythonize_name(m.name): m for m in self.machines}
        if len(self.machines) == 1:
            (machine_symbols["machine"],) = self.machines
        vlan_symbols = {f"vlan{v.nr}": v for v in self.vlans}
        if announce:
            print("additionally exposed symbols:\n    "
                  + ", ".join(m.name for m in self.machines) + ",\n    "
                  + ", ".join(f"vlan{v.nr}" for v in self.vlans) + ",\n    "
                  + ", ".join(general_symbols.keys()))
        return {**general_symbols, **machine_symbols, **vlan_symbols}

    def test_script(self) -> None:
        with self.logger.nested("run the VM test script"):
            symbols = self.test_symbols()
            try:
                exec(self.tests, symbols, None)
            except MachineError:
                for line in traceback.format_exc().splitlines():
                    self.logger.log_test_error(line)
                sys.exit(1)
            except RequestedAssertionFailed:
                exc_type, exc, tb = sys.exc_info()
                # only the test script's frames (its file name is `<string>`)
                filtered = [f for f in traceback.extract_tb(tb) if f.filename == "<string>"]
                self.logger.log_test_error("Traceback (most recent call last):")
                code = self.tests.splitlines()
                for frame, line in zip(filtered, traceback.format_list(filtered)):
                    self.logger.log_test_error(line.rstrip())
                    if frame.lineno:
                        self.logger.log_test_error(f"    {code[frame.lineno - 1].strip()}")
                self.logger.log_test_error("")
                prefix = exc_type.__name__ if exc_type is not None else "Error"
                for line in f"{prefix}: {exc}".splitlines():
                    self.logger.log_test_error(line)
                sys.exit(1)

    def run_tests(self) -> None:
        self.logger.info(f"Test will time out and terminate in {self.global_timeout} seconds")
        self.race_timer.start()
        self.test_script()
        for machine in self.machines:
            if machine.is_up():
                machine.execute("sync")

    def start_all(self) -> None:
        """ctl start-all: every machine boots at once."""
        with self.logger.nested("start all VMs"):
            for machine in self.machines:
                if not machine.booted:
                    machine.log("starting vm")
            mount.write(os.path.join(self.vms, "ctl"), "start-all\n")

    def join_all(self) -> None:
        with self.logger.nested("wait for all VMs to finish"):
            for machine in self.machines:
                machine.wait_for_shutdown()
            self.race_timer.cancel()

    def terminate_test(self) -> None:
        # From the timer's thread. The SIGTERM comes first: its default
        # action ends the process at once (128 + 15), where a halt first
        # let the script's command fail and the script exit 1 before the
        # signal came. A script that handles SIGTERM lives on: then the
        # machines are halted, so that nothing it waits for keeps it.
        with self.logger.nested("timeout reached; test terminating..."):
            os.kill(os.getpid(), signal.SIGTERM)
            try:
                mount.write(os.path.join(self.vms, "ctl"), "halt-all\n")
            except OSError:
                pass

    def create_machine(self, start_command: str, *, name: Optional[str] = None,
                       keep_machine_state: bool = False) -> Machine:
        raise NotSupported(
            "create_machine: machines come from the attestfs config (or "
            "--start-scripts) when the mount is made; clone() makes new ones")

    def serial_stdout_on(self) -> None:
        self.logger.print_serial_logs(True)

    def serial_stdout_off(self) -> None:
        self.logger.print_serial_logs(False)

    def check_polling_conditions(self) -> None:
        for condition in self.polling_conditions:
            condition.maybe_raise()

    def polling_condition(self, fun_: Optional[Callable] = None, *,
                          seconds_interval: float = 2.0,
                          description: Optional[str] = None) -> Any:
        driver = self

        class Poll:
            def __init__(self, fun: Callable) -> None:
                self.condition = PollingCondition(fun, driver.logger, seconds_interval, description)

            def __enter__(self) -> None:
                driver.polling_conditions.append(self.condition)

            def __exit__(self, *_: Any) -> None:
                res = driver.polling_conditions.pop()
                assert res is self.condition

            def wait(self, timeout: int = 900) -> None:
                def condition(last: bool) -> bool:
                    if last:
                        driver.logger.info(f"Last chance for {self.condition.description}")
                    ret = self.condition.check(force=True)
                    if not ret and not last:
                        driver.logger.info(f"({self.condition.description} failure not fatal yet)")
                    return ret

                with driver.logger.nested(f"waiting for {self.condition.description}"):
                    retry(condition, timeout_seconds=timeout)

        if fun_ is None:
            return Poll
        return Poll(fun_)
