"""Machine: the pinned driver's QemuMachine API over one machine directory.

Each method is a thin mapping onto <vms>/<name>/: exec, wait, ctl, status,
info, console, screen.txt/png, keys, type, files/, units/, jobs/, qmp and
/vms/events. Where the driver runs a guest command (systemctl, nc, fold
/dev/vcsN, xwininfo) and attestfs has no file for it, the same command runs
through exec. Names, defaults (timeouts 900 s, wait_for_console_text none,
wait_for_qmp_event 600 s), exception types, failure messages and log lines
follow the pinned driver (see __init__.py for the commits).
"""
import base64
import errno
import json
import math
import os
import re
import shlex
import shutil
import subprocess
import sys
import time
import warnings
from contextlib import nullcontext
from typing import Any, Callable, Dict, List, Optional, Tuple

from . import mount
from .errors import MachineError, NotSupported, RequestedAssertionFailed
from .logger import AbstractLogger

# copy_from_host: a file up to this size goes in one exec (base64 is 4/3 of
# it; exec takes 1 MiB), a larger one through files/
COPY_INLINE = 512 * 1024
# attestfs clamps a timeout to a year: the driver's "no timeout" (None)
NO_TIMEOUT = 365 * 24 * 3600
# The driver runs every command as `bash -c "set -euo pipefail; CMD"` (tests
# use bash's syntax); a guest without bash (busybox) gets its own sh with
# `set -eu` and pipefail where that sh has it.
SH_OPTS = "set -eu; (set -o pipefail) 2>/dev/null && set -o pipefail; "


def guest_command(command: str, shell: str = "bash") -> str:
    """COMMAND as the driver runs it. A shell that is bash already (NixOS's
    backdoor) runs it itself: no bash to start per command. Another shell
    starts bash for it, unless SHELL is "sh" (ATTESTFS_NIXOS_SHELL=sh: the
    guest's own sh with set -eu, no bash start; under TCG that is ~130 ms
    less per command on the debian guest, whose shells are dash). (attestfs
    runs each command in a subshell of the guest's shell, so `set` and
    `exec` end with it.)"""
    q = shlex.quote(command)
    if shell == "sh":
        return (f'if [ -n "${{BASH_VERSION:-}}" ]; then set -euo pipefail; eval {q}; '
                f"else {SH_OPTS}eval {q}; fi")
    bash = shlex.quote("set -euo pipefail; " + command)
    return (f'if [ -n "${{BASH_VERSION:-}}" ]; then set -euo pipefail; eval {q}; '
            f"elif command -v bash >/dev/null 2>&1; then exec bash -c {bash}; "
            f"else {SH_OPTS}eval {q}; fi")


def make_command(args: list) -> str:
    return " ".join(map(shlex.quote, map(str, args)))


def _secs(timeout: Optional[float]) -> int:
    if timeout is None:
        return NO_TIMEOUT
    return max(1, min(NO_TIMEOUT, int(math.ceil(timeout))))


def retry(fn: Callable, timeout_seconds: int = 900) -> None:
    """Call fn(False) with a one second interval until it returns True; when
    time is up, one last fn(True), then RequestedAssertionFailed (as the
    pinned driver's retry)."""
    start = time.monotonic()
    while time.monotonic() - start < timeout_seconds:
        if fn(False):
            return
        time.sleep(1)
    elapsed = time.monotonic() - start
    if not fn(True):
        raise RequestedAssertionFailed(
            f"action timed out after {elapsed:.2f} seconds (timeout={timeout_seconds})"
        )


def _copy_into(src: str, dst: str) -> None:
    """cp -r without utime/chown, which files/ does not take."""
    if os.path.isdir(src):
        os.makedirs(dst, exist_ok=True)
        for name in sorted(os.listdir(src)):
            _copy_into(os.path.join(src, name), os.path.join(dst, name))
        os.chmod(dst, os.stat(src).st_mode & 0o7777)
    else:
        shutil.copyfile(src, dst)
        os.chmod(dst, os.stat(src).st_mode & 0o7777)


class Machine:
    """A machine of the mount, by name (its directory under the mount)."""

    def __init__(self, driver: Any, name: str) -> None:
        self.driver = driver
        self.name = name
        self.dir = os.path.join(driver.vms, name)
        self.logger: AbstractLogger = driver.logger
        self.out_dir = driver.out_dir
        self.callbacks: List[Callable] = [driver.check_polling_conditions]
        self.keep_machine_state = False
        self._timeout: Optional[int] = None
        self._events_offset = 0
        self._systemd: Optional[Tuple[Optional[str], bool]] = None

    def __repr__(self) -> str:
        return f"<Machine '{self.name}'>"

    # --- the files -------------------------------------------------------

    def _path(self, f: str) -> str:
        return os.path.join(self.dir, f)

    def _reason(self, prefix: Optional[str] = None, err: int = 0) -> str:
        return mount.last_reason(self._path("log"), prefix, err)

    def _ctl(self, verb: str) -> None:
        try:
            mount.write(self._path("ctl"), verb + "\n")
        except OSError as e:
            raise MachineError(
                f"{self.name}: ctl {verb}: {e.strerror}: {self._reason()}"
            ) from None

    def _status(self) -> str:
        return mount.read_text(self._path("status")).strip()

    def info(self) -> Dict[str, str]:
        """The machine's info file as a dict (first word -> the rest)."""
        out: Dict[str, str] = {}
        for line in mount.read_text(self._path("info")).splitlines():
            key, _, value = line.partition(" ")
            out.setdefault(key, value)
        return out

    def _require(self, f: str, what: str) -> str:
        path = self._path(f)
        if not os.path.exists(path):
            backend = self.info().get("backend", "?")
            raise NotSupported(
                f"{self.name}: {what} needs {f}, which this machine "
                f"(backend {backend}) does not have: no screen, keyboard or "
                "QMP on this backend"
            )
        return path

    def _set_timeout(self, timeout: Optional[float]) -> None:
        secs = _secs(timeout)
        if secs != self._timeout:
            self._ctl(f"timeout {secs}")
            self._timeout = secs

    def _exit_status(self) -> int:
        """The status the daemon logged for the command that just failed
        (the newest `...`: exit status N`; a command may span lines)."""
        try:
            text = mount.read_text(self._path("log"))
        except OSError:
            return 1
        m = re.search(r"`: exit status (\d+)\n?$", text[text.rfind("`: exit status "):])
        return int(m.group(1)) if m else 1

    def _wait(self, condition: str, timeout: Optional[float]) -> str:
        """One read of `wait`; the driver's timeout error past its deadline."""
        secs = _secs(timeout)
        tic = time.monotonic()
        try:
            out = mount.tx(self._path("wait"), f"timeout={secs} {condition}")
        except mount.TxError as e:
            if e.errno == errno.ETIMEDOUT:
                raise RequestedAssertionFailed(
                    f"action timed out after {time.monotonic() - tic:.2f} seconds "
                    f"(timeout={timeout})"
                ) from None
            reason = self._reason("wait", e.errno)
            if e.errno == errno.EREMOTEIO:
                raise RequestedAssertionFailed(reason) from None
            raise MachineError(f"{self.name}: wait {condition}: {e.strerror}: {reason}") from None
        return out.decode(errors="replace")

    # --- logging (as the driver's BaseMachine) ---------------------------

    def log(self, msg: str) -> None:
        self.logger.log(msg, {"machine": self.name})

    def log_serial(self, msg: str) -> None:
        self.logger.log_serial(msg, self.name)

    def nested(self, msg: str, attrs: Dict[str, str] = {}):  # type: ignore
        my_attrs = {"machine": self.name}
        my_attrs.update(attrs)
        return self.logger.nested(msg, my_attrs)

    def run_callbacks(self) -> None:
        for callback in self.callbacks:
            callback()

    def cleanup_statedir(self) -> None:
        # attestfs-run removes its state directory itself (unless -K)
        self.log("the machine state is attestfs's state_dir; -K keeps it")

    # --- lifecycle -------------------------------------------------------

    @property
    def booted(self) -> bool:
        return self._status() not in ("stopped", "crashed")

    @property
    def connected(self) -> bool:
        return self._status() == "running"

    @property
    def pid(self) -> Optional[int]:
        pid = self.info().get("pid")
        return int(pid) if pid and pid.isdigit() else None

    @property
    def state_dir(self) -> str:
        return self.info().get("state_dir", "")

    def is_up(self) -> bool:
        return self._status() == "running"

    def start(self, allow_reboot: bool = False) -> None:
        """Start the machine; asynchronous, as in the driver (a guest reboot
        is always a reboot in attestfs: allow_reboot changes nothing)."""
        if self.booted:
            return
        self.log("starting vm")
        self._ctl("start")
        info = self.info()
        backend = "QEMU" if info.get("backend") == "qemu" else info.get("backend", "?")
        self.log(f"{backend} running (pid {info.get('pid', '?')})")

    def connect(self) -> None:
        """Wait until the guest's root shell answers (status running)."""
        if self._status() == "running":
            return
        with self.nested("waiting for the VM to finish booting"):
            self.start()
            tic = time.time()
            self._wait("status running", None)
            self.log("connected to guest root shell")
            self.log(f"(connecting took {time.time() - tic:.2f} seconds)")

    def wait_for_shutdown(self) -> None:
        if not self.booted:
            return
        with self.nested("waiting for the VM to power off"):
            self._wait("status stopped", None)

    def shutdown(self) -> None:
        if not self.booted:
            return
        self._ctl("shutdown")
        self.wait_for_shutdown()

    def crash(self) -> None:
        if not self.booted:
            return
        self.log("forced crash")
        self._ctl("crash")
        # crashed -> stopped: the next command boots it again, as in the driver
        self._ctl("halt")
        self.wait_for_shutdown()

    def reboot(self) -> None:
        """Reboot the guest (ctl reboot: attestfs asks the guest and waits
        for its shells again; the driver presses Ctrl+Alt+Delete)."""
        with self.nested("rebooting"):
            self._ctl("reboot")

    def release(self) -> None:
        if self.booted:
            self.logger.info(f"kill machine (pid {self.pid})")
            self._ctl("halt")

    # --- commands --------------------------------------------------------

    def execute(self, command: str, check_return: bool = True,
                check_output: bool = True, timeout: Optional[int] = 900) -> Tuple[int, str]:
        """Run COMMAND (with `set -euo pipefail`), return (status, stdout).
        check_output=False: start it as a job and return (-2, "") at once;
        check_return=False: (-1, stdout), also if the machine went away
        (commands that power off). A timeout is status 124, as `timeout`."""
        self.run_callbacks()
        return self._execute(command, check_return, check_output, timeout)

    def _execute(self, command: str, check_return: bool, check_output: bool,
                 timeout: Optional[int]) -> Tuple[int, str]:
        self._set_timeout(timeout)
        if not check_output:
            self._detach(guest_command(command, self.driver.guest_shell))
            return (-2, "")
        try:
            out = mount.tx(self._path("exec"), guest_command(command, self.driver.guest_shell))
            rc = 0
        except mount.TxError as e:
            out = e.output
            if e.errno == errno.EREMOTEIO:
                rc = self._exit_status()
            elif e.errno == errno.ETIMEDOUT:
                rc = 124
            elif not check_return:
                rc = -1
            else:
                raise MachineError(
                    f"{self.name}: command `{command}`: {e.strerror}: {self._reason()}"
                ) from None
        if not check_return:
            return (-1, out.decode(errors="replace"))
        return (rc, out.decode(errors="replace"))

    def _detach(self, command: str) -> None:
        job = os.path.join(self._path("jobs"), f"detached.{os.getpid()}.{time.monotonic_ns()}")
        os.mkdir(job)
        mount.write(os.path.join(job, "cmd"), command)
        mount.write(os.path.join(job, "stdin"), "")

    def succeed(self, *commands: str, timeout: Optional[int] = None) -> str:
        output = ""
        for command in commands:
            with self.nested(f"must succeed: {command}"):
                (status, out) = self.execute(command, timeout=timeout)
                if status != 0:
                    self.log(f"output: {out}")
                    raise RequestedAssertionFailed(
                        f"command `{command}` failed (exit code {status})"
                    )
                output += out
        return output

    def fail(self, *commands: str, timeout: Optional[int] = None) -> str:
        output = ""
        for command in commands:
            with self.nested(f"must fail: {command}"):
                (status, out) = self.execute(command, timeout=timeout)
                if status == 0:
                    raise RequestedAssertionFailed(f"command `{command}` unexpectedly succeeded")
                output += out
        return output

    def wait_until_succeeds(self, command: str, timeout: int = 900) -> str:
        """`wait succeeds CMD`: the daemon polls (back-off 50 ms to 1 s)."""
        with self.nested(f"waiting for success: {command}"):
            self.run_callbacks()
            return self._wait(f"succeeds {guest_command(command, self.driver.guest_shell)}", timeout)

    def wait_until_fails(self, command: str, timeout: int = 900) -> str:
        with self.nested(f"waiting for failure: {command}"):
            self.run_callbacks()
            return self._wait(f"fails {guest_command(command, self.driver.guest_shell)}", timeout)

    def sleep(self, secs: int) -> None:
        # in *guest* time, as the driver does
        self.succeed(f"sleep {secs}")

    def systemctl(self, q: str, user: Optional[str] = None) -> Tuple[int, str]:
        if user is not None:
            # the driver's command, quoted for any sh (it uses bash's $'...')
            inner = f"XDG_RUNTIME_DIR=/run/user/`id -u` systemctl --user {q}"
            return self.execute(f"su -l {user} --shell /bin/sh -c {shlex.quote(inner)}")
        return self.execute(f"systemctl {q}")

    # --- systemd units ---------------------------------------------------

    def _unit(self, unit: str, f: str) -> str:
        return os.path.join(self.dir, "units", unit, f)

    def _no_units(self) -> None:
        """NotSupported unless the guest runs systemd (sd_booted's test,
        asked once per boot)."""
        if not os.path.isdir(self._path("units")):
            raise NotSupported(f"{self.name}: the guest has no systemd (no units/)")
        boot = self.info().get("boots")
        if self._systemd is None or self._systemd[0] != boot:
            rc, _ = self.execute("test -d /run/systemd/system", timeout=None)
            self._systemd = (boot, rc == 0)
        if not self._systemd[1]:
            raise NotSupported(f"{self.name}: the guest has no systemd (no /run/systemd/system)")

    def wait_for_unit(self, unit: str, user: Optional[str] = None, timeout: int = 900) -> None:
        with self.nested(f"waiting for unit {unit}" + (f" with user {user}" if user is not None else "")):
            self.run_callbacks()
            self._no_units()
            try:
                self._wait(f"unit {unit}" + (f" user={user}" if user else ""), timeout)
            except RequestedAssertionFailed as e:
                msg = str(e)
                if msg.endswith("the unit failed"):
                    raise RequestedAssertionFailed(f'unit "{unit}" reached state "failed"') from None
                if "inactive" in msg and "no" in msg and "jobs" in msg:
                    raise RequestedAssertionFailed(
                        f'unit "{unit}" is inactive and there are no pending jobs') from None
                raise

    def get_unit_info(self, unit: str, user: Optional[str] = None) -> Dict[str, str]:
        if user is None and os.path.isdir(self._path("units")):
            try:
                lines = mount.read_text(self._unit(unit, "properties"))
            except OSError:
                lines = None  # unknown to attestfs: ask systemctl, as the driver
        else:
            lines = None
        if lines is None:
            status, lines = self.systemctl(f'--no-pager show "{unit}"', user)
            if status != 0:
                raise RequestedAssertionFailed(
                    f'retrieving systemctl info for unit "{unit}"'
                    + ("" if user is None else f' under user "{user}"')
                    + f" failed with exit code {status}"
                )
        pattern = re.compile(r"^([^=]+)=(.*)$")
        return dict(m.groups() for m in map(pattern.match, lines.split("\n")) if m)  # type: ignore

    def get_unit_property(self, unit: str, property: str, user: Optional[str] = None) -> str:
        if property == "ActiveState" and user is None and os.path.isdir(self._path("units")):
            try:
                return mount.read_text(self._unit(unit, "state")).strip()
            except OSError:
                pass
        info = self.get_unit_info(unit, user)
        assert property in info, f'systemctl show --property "{property}" "{unit}" produced invalid output'
        return info[property]

    def require_unit_state(self, unit: str, require_state: str = "active") -> None:
        with self.nested(f"checking if unit '{unit}' has reached state '{require_state}'"):
            self._no_units()
            state = self.get_unit_property(unit, "ActiveState")
            if state != require_state:
                raise RequestedAssertionFailed(
                    f"Expected unit '{unit}' to to be in state "
                    f"'{require_state}' but it is in state '{state}'"
                )

    def _unit_ctl(self, verb: str, jobname: str, user: Optional[str]) -> Tuple[int, str]:
        self._no_units()
        if user is not None:
            return self.systemctl(f"{verb} {jobname}", user)
        self.run_callbacks()
        try:
            mount.write(self._unit(jobname, "ctl"), verb + "\n")
        except OSError as e:
            # systemctl's own status: 5 for a unit it does not know
            return (5 if e.errno == errno.ENOENT else 1, self._reason() + "\n")
        return (0, "")

    def start_job(self, jobname: str, user: Optional[str] = None) -> Tuple[int, str]:
        return self._unit_ctl("start", jobname, user)

    def stop_job(self, jobname: str, user: Optional[str] = None) -> Tuple[int, str]:
        return self._unit_ctl("stop", jobname, user)

    # --- waits -----------------------------------------------------------

    def wait_for_file(self, filename: str, timeout: int = 900) -> None:
        with self.nested(f"waiting for file '{filename}'"):
            self.run_callbacks()
            self._wait(f"file {filename}", timeout)

    def wait_for_open_port(self, port: int, addr: str = "localhost", timeout: int = 900) -> None:
        with self.nested(f"waiting for TCP port {port} on {addr}"):
            self.run_callbacks()
            if addr in ("localhost", "127.0.0.1", "::1"):
                self._wait(f"port {port}", timeout)
            else:
                self._wait(f"succeeds nc -z {addr} {port}", timeout)

    def wait_for_closed_port(self, port: int, addr: str = "localhost", timeout: int = 900) -> None:
        with self.nested(f"waiting for TCP port {port} on {addr} to be closed"):
            self.run_callbacks()
            if addr in ("localhost", "127.0.0.1", "::1"):
                self._wait(f"port {port} closed", timeout)
            else:
                self._wait(f"fails nc -z {addr} {port}", timeout)

    def wait_for_open_unix_socket(self, addr: str, is_datagram: bool = False,
                                  timeout: int = 900) -> None:
        with self.nested(f"waiting for UNIX-domain {'datagram' if is_datagram else 'stream'} on '{addr}'"):
            self.run_callbacks()
            if is_datagram:
                self._wait(f"succeeds nc -z -uU {addr}", timeout)
            else:
                self._wait(f"socket {addr}", timeout)

    # --- console ---------------------------------------------------------

    def wait_for_console_text(self, regex: str, timeout: Optional[int] = None) -> None:
        """A line of this boot's console matching REGEX (attestfs matches
        line by line; the driver also matches across lines)."""
        with self.nested(f"waiting for {regex} to appear on console"):
            self._wait(f"console {regex}", timeout)

    def get_console_log(self) -> str:
        return mount.read_text(self._path("console")).replace("\r", "")

    def send_console(self, chars: str) -> None:
        mount.write(self._path("console"), chars)

    def console_interact(self) -> None:
        """Forward the terminal's input to the serial console; Ctrl-D ends."""
        self.log("Terminal is ready (there is no prompt):")
        while True:
            try:
                char = sys.stdin.buffer.read(1)
            except KeyboardInterrupt:
                break
            if char == b"":
                self.log("Closing connection to the console")
                break
            mount.write(self._path("console"), char)

    def shell_interact(self, address: Optional[str] = None) -> None:
        """A shell in the guest: attestfs-shell (a pty) when installed, else
        a line loop over exec. `address` (a socat address) is not supported."""
        if address is not None:
            raise NotSupported("shell_interact(address): attestfs has no shell socket to hand to socat")
        shell = shutil.which("attestfs-shell")
        if shell:
            subprocess.run([shell, self.dir])
            return
        self.log("Terminal is ready (prompt `$ `, Ctrl-D ends):")
        while True:
            try:
                line = input("$ ")
            except (EOFError, KeyboardInterrupt):
                break
            status, out = self.execute(line, timeout=None)
            sys.stdout.write(out)
            if status:
                sys.stdout.write(f"(exit code {status})\n")

    # --- screen and keyboard --------------------------------------------

    def screenshot(self, filename: str) -> None:
        if "." not in filename:
            filename += ".png"
        if "/" not in filename:
            filename = os.path.join(self.out_dir, filename)
        with self.nested(f"making screenshot {filename}", {"image": os.path.basename(filename)}):
            png = mount.read(self._require("screen.png", "screenshot"))
            with open(filename, "wb") as f:
                f.write(png)

    def get_screen_text(self) -> str:
        return mount.read_text(self._require("screen.txt", "get_screen_text"))

    def get_screen_text_variants(self) -> List[str]:
        # attestfs's OCR gives one reading
        return [self.get_screen_text()]

    def wait_for_text(self, regex: str, timeout: int = 900) -> None:
        with self.nested(f"waiting for {regex} to appear on screen"):
            self._require("screen.txt", "wait_for_text")
            self._wait(f"screen {regex}", timeout)

    def send_key(self, key: str, delay: Optional[float] = 0.01, log: Optional[bool] = True) -> None:
        """A QEMU key name or combination; one printable character is typed."""
        context = self.nested(f"sending key {repr(key)}") if log else nullcontext()
        with context:
            if len(key) == 1:
                mount.write(self._require("type", "send_key"), key)
            else:
                mount.write(self._require("keys", "send_key"), key + "\n")
            if delay is not None:
                time.sleep(delay)

    def send_chars(self, chars: str, delay: Optional[float] = 0.01) -> None:
        """Typed in one write to `type` (20 ms a key); `delay` is not used."""
        with self.nested(f"sending keys {repr(chars)}"):
            mount.write(self._require("type", "send_chars"), chars)

    # --- ttys and X (guest commands, as the driver) ----------------------

    def get_tty_text(self, tty: str) -> str:
        status, output = self.execute(
            f"fold -w$(stty -F /dev/tty{tty} size | awk '{{print $2}}') /dev/vcs{tty}"
        )
        return output

    def wait_until_tty_matches(self, tty: str, regexp: str, timeout: int = 900) -> None:
        matcher = re.compile(regexp)

        def tty_matches(last_try: bool) -> bool:
            text = self.get_tty_text(tty)
            if last_try:
                self.log(f"Last chance to match /{regexp}/ on TTY{tty}, which currently contains: {text}")
            return len(matcher.findall(text)) > 0

        with self.nested(f"waiting for {regexp} to appear on tty {tty}"):
            retry(tty_matches, timeout)

    def dump_tty_contents(self, tty: str) -> None:
        self.execute(f"fold -w 80 /dev/vcs{tty} | systemd-cat")

    def _need_x(self) -> None:
        status, _ = self.execute("command -v xwininfo || command -v Xorg || command -v X")
        if status != 0:
            raise NotSupported(f"{self.name}: the guest has no X server (no Xorg, X or xwininfo)")

    def wait_for_x(self, timeout: int = 900) -> None:
        def check_x(_last_try: bool) -> bool:
            status, _ = self.execute(
                'journalctl -b SYSLOG_IDENTIFIER=systemd | grep "Reached target Current graphical"')
            if status != 0:
                return False
            status, _ = self.execute("[ -e /tmp/.X11-unix/X0 ]")
            return status == 0

        with self.nested("waiting for the X11 server"):
            self._need_x()
            retry(check_x, timeout)

    def get_window_names(self) -> List[str]:
        self._need_x()
        return self.succeed(
            r"xwininfo -root -tree | sed 's/.*0x[0-9a-f]* \"\([^\"]*\)\".*/\1/; t; d'"
        ).splitlines()

    def wait_for_window(self, regexp: str, timeout: int = 900) -> None:
        pattern = re.compile(regexp)

        def window_is_visible(last_try: bool) -> bool:
            names = self.get_window_names()
            if last_try:
                self.log(f"Last chance to match {regexp} on the window list, "
                         "which currently contains: " + ", ".join(names))
            return any(pattern.search(n) for n in names)

        with self.nested("waiting for a window to appear"):
            retry(window_is_visible, timeout)

    # --- files -----------------------------------------------------------

    def _files(self, path: str) -> str:
        return self._path("files") + "/" + path.lstrip("/")

    def _exec_raw(self, command: str, what: str) -> bytes:
        """One exec transaction as it is (no bash wrapper: the command may
        be larger than an execve argument), failing with MachineError."""
        self._set_timeout(None)
        try:
            return mount.tx(self._path("exec"), command)
        except mount.TxError as e:
            raise MachineError(f"{self.name}: {what}: {e.strerror}: {self._reason(None, e.errno)}") from None

    def copy_from_host(self, source: str, target: str) -> None:
        """A file of up to COPY_INLINE bytes in one command (base64); larger
        files and directories through files/. The mode bits follow the host
        file's, the owner is the guest's root, as in the driver."""
        with self.nested(f"copying {source} to {target}"):
            if os.path.isfile(source) and os.path.getsize(source) <= COPY_INLINE:
                with open(source, "rb") as f:
                    data = base64.b64encode(f.read()).decode()
                mode = format(os.stat(source).st_mode & 0o7777, "o")
                q = shlex.quote(target)
                self._exec_raw(f"mkdir -p -- {shlex.quote(os.path.dirname(target) or '/')} && "
                               f"printf %s {data} | base64 -d > {q} && chmod {mode} -- {q}",
                               f"copy_from_host {source}")
                return
            dst = self._files(target)
            os.makedirs(os.path.dirname(dst), exist_ok=True)
            _copy_into(source, dst)

    def copy_from_host_via_shell(self, source: str, target: str) -> None:
        with open(source, "rb") as fh:
            content_b64 = base64.b64encode(fh.read()).decode()
        self.succeed(
            f"mkdir -p $(dirname {target})",
            f"echo -n {content_b64} | base64 -d > {target}",
        )

    def copy_from_machine(self, source: str, target_dir: str = "") -> None:
        """To OUT_DIR/target_dir/<basename>: a file in one command (base64),
        a directory through files/."""
        abs_target = os.path.join(self.out_dir, target_dir, os.path.basename(source.rstrip("/")))
        os.makedirs(os.path.dirname(abs_target), exist_ok=True)
        q = shlex.quote(source)
        out = self._exec_raw(f"if [ -d {q} ]; then echo d; else echo f; base64 < {q}; fi",
                             f"copy_from_machine {source}")
        kind, _, data = out.partition(b"\n")
        if kind == b"f":
            with open(abs_target, "wb") as f:
                f.write(base64.b64decode(data))
            return
        shutil.copytree(self._files(source), abs_target, copy_function=shutil.copyfile)

    def copy_from_vm(self, source: str, target_dir: str = "") -> None:
        warnings.warn("Use copy_from_machine() instead", DeprecationWarning, stacklevel=2)
        self.copy_from_machine(source, target_dir)

    # --- network ---------------------------------------------------------

    def block(self) -> None:
        """Every VLAN link down (the driver: the first VLAN NIC only)."""
        self._ctl("block")

    def unblock(self) -> None:
        self._ctl("unblock")

    def forward_port(self, host_port: int = 8080, guest_port: int = 80) -> None:
        """127.0.0.1:host_port only (the driver binds every address)."""
        self._ctl(f"forward tcp:{host_port}:{guest_port}")

    # --- QEMU monitor and QMP --------------------------------------------

    def _qmp(self, request: Dict[str, Any]) -> Any:
        path = self._require("qmp", "QMP")
        try:
            reply = mount.tx(path, json.dumps(request))
        except mount.TxError as e:
            reason = self._reason("qmp")
            if e.errno == errno.EPERM:
                raise NotSupported(f"{self.name}: {reason}") from None
            raise MachineError(f"{self.name}: qmp: {e.strerror}: {reason}") from None
        answer = json.loads(reply.decode())
        if "error" in answer:
            raise MachineError(f"{self.name}: qmp: {answer['error']}")
        return answer.get("return")

    def send_monitor_command(self, command: str) -> str:
        """HMP through the qmp file (human-monitor-command); commands that
        write host files or run host programs need `-o host_access`."""
        self.run_callbacks()
        return str(self._qmp({"execute": "human-monitor-command",
                              "arguments": {"command-line": command}}))

    def wait_for_monitor_prompt(self) -> str:
        raise NotSupported("attestfs has no HMP socket; send_monitor_command answers whole")

    def wait_for_qmp_event(self, event_filter: Callable[[Dict[str, Any]], bool],
                           timeout: int = 60 * 10) -> Dict[str, Any]:
        """The mount's events (`events`: started, running, stopped, crashed,
        ...) of this machine from now on, as {"event": NAME.upper(), "data":
        {"detail": ...}, "timestamp": ...}: attestfs does not pass QEMU's
        own QMP events through."""
        path = os.path.join(self.driver.vms, "events")
        offset = os.path.getsize(path) if not self._events_offset else self._events_offset
        start = time.time()
        buf = b""
        while True:
            data, offset = mount.read_from(path, offset)
            self._events_offset = offset
            buf += data
            *lines, buf = buf.split(b"\n")
            for line in lines:
                parts = line.decode(errors="replace").split(" ", 3)
                if len(parts) < 3 or parts[1] != self.name:
                    continue
                ms = int(parts[0]) if parts[0].isdigit() else 0
                evt = {"event": parts[2].upper().replace("-", "_"),
                       "data": {"detail": parts[3] if len(parts) > 3 else ""},
                       "timestamp": {"seconds": ms // 1000, "microseconds": (ms % 1000) * 1000}}
                if event_filter(evt):
                    return evt
            if time.time() - start >= timeout:
                raise TimeoutError
            time.sleep(0.05)

    def switch_root(self) -> None:
        raise NotSupported("switch_root: attestfs has no initrd backdoor (testing.initrdBackdoor)")

    def ssh_backdoor_command(self, index: int) -> str:
        return f"attestfs-shell {self.dir}"

    # --- attestfs's own --------------------------------------------------

    def snapshot(self, name: str) -> None:
        """ctl snapshot NAME: RAM, devices and disks, the guest goes on."""
        with self.nested(f"taking snapshot {name}"):
            self._ctl(f"snapshot {name}")

    def restore(self, name: str) -> None:
        """ctl restore NAME: back to the snapshot, running."""
        with self.nested(f"restoring snapshot {name}"):
            self._ctl(f"restore {name}")

    def clone(self, new_name: str, snapshot: Optional[str] = None) -> "Machine":
        """ctl clone: a new machine continuing SNAPSHOT (default: one taken
        now), with its own name, node number and addresses."""
        with self.nested(f"cloning into {new_name}"):
            self._ctl(f"clone {new_name}" + (f" {snapshot}" if snapshot else ""))
        return self.driver.add_machine(new_name)
