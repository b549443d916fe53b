"""attestfs-test-driver: nixos-test-driver's command line over attestfs.

    attestfs-test-driver [-K] [-I] [--start-scripts S...] [--vlans N...]
        [--global-timeout N] [-o OUTDIR] [--junit-xml PATH]
        [--config MACHINES.json] [--keep-machines-on-failure] TESTSCRIPT

Given start scripts (run-<name>-vm, as nixos-test-driver takes them) or an
attestfs config, it mounts attestfs through attestfs-run and runs itself
inside (ATTESTFS_TEST_DRIVER_INNER=1, $VMS set). With $VMS set and neither,
it runs on that mount. Exit status as nixos-test-driver's: 0, or 1 when the
script failed; attestfs-run's 124 (global timeout) and 125 (no mount).
"""
import argparse
import code
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import List, Optional

from .driver import Driver, pythonize_name
from .logger import CompositeLogger, JunitXMLLogger, TerminalLogger, XMLLogger

INNER = "ATTESTFS_TEST_DRIVER_INNER"
DEFAULT_GLOBAL_TIMEOUT = 3600  # the Nix option globalTimeout's default


class EnvDefault(argparse.Action):
    """An option whose default comes from an environment variable."""

    def __init__(self, envvar, required=False, default=None, nargs=None, **kwargs):  # type: ignore
        if not default and envvar and envvar in os.environ:
            if nargs is not None and (nargs.isdigit() or nargs in ["*", "+"]):
                default = os.environ[envvar].split()
            else:
                default = os.environ[envvar]
            kwargs["help"] = kwargs["help"] + f" (default from environment: {default})"
        if required and default:
            required = False
        super().__init__(default=default, required=required, nargs=nargs, **kwargs)

    def __call__(self, parser, namespace, values, option_string=None):  # type: ignore
        setattr(namespace, self.dest, values)


def writeable_dir(arg: str) -> Path:
    path = Path(arg)
    if not path.is_dir():
        raise argparse.ArgumentTypeError(f"{path} is not a directory")
    if not os.access(path, os.W_OK):
        raise argparse.ArgumentTypeError(f"{path} is not a writeable directory")
    return path


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="attestfs-test-driver")
    p.add_argument("-K", "--keep-vm-state", action="store_true",
                   help="keep attestfs's state directory (logs, consoles, disk overlays)")
    p.add_argument("-I", "--interactive", action="store_true",
                   help="drop into a python repl with the test symbols")
    p.add_argument("--start-scripts", metavar="START-SCRIPT", action=EnvDefault,
                   envvar="startScripts", nargs="*",
                   help="start scripts (run-<name>-vm) for participating virtual machines")
    p.add_argument("--vlans", metavar="VLAN", action=EnvDefault, envvar="vlans",
                   nargs="*", help="vlans to span by the driver")
    p.add_argument("--global-timeout", type=int, metavar="GLOBAL_TIMEOUT",
                   action=EnvDefault, envvar="globalTimeout",
                   help="Timeout in seconds for the whole test")
    p.add_argument("-o", "--output_directory", default=Path.cwd(), type=writeable_dir,
                   help="where screenshots and copy_from_machine put files")
    p.add_argument("--junit-xml", type=Path,
                   help="Enable JunitXML report generation to the given path")
    p.add_argument("--config", metavar="MACHINES.json",
                   help="an attestfs config instead of start scripts")
    p.add_argument("--keep-machines-on-failure", action="store_true",
                   default=bool(os.environ.get("ATTESTFS_KEEP_ON_FAILURE")),
                   help="on failure keep the machines running and say how to attach")
    p.add_argument("testscript", action=EnvDefault, envvar="testScript", nargs="?",
                   help="the test script to run", type=Path)
    return p


def machine_name(script: str) -> str:
    """The driver's (admittedly implicit) contract: run-<name>-vm."""
    match = re.search("run-(.+)-vm$", script)
    return match.group(1) if match else "machine"


def config_from_start_scripts(scripts: List[str], vlans: List[str]) -> dict:
    """A stock NixOS VM per script: the backdoor on hvc0; every VLAN's
    switch is handed to every script (QEMU_VDE_SOCKET_N), as the driver does."""
    machines = {}
    for script in scripts:
        machines[machine_name(script)] = {
            "start_command": os.path.abspath(script),
            "shell_channel": "virtconsole",
            "vlans": sorted({int(v) for v in vlans}),
        }
    return {"machines": machines}


def find_attestfs_run() -> str:
    here = Path(__file__).resolve().parent
    for cand in (here.parent.parent / "attestfs-run",          # the source tree
                 here.parents[3] / "bin" / "attestfs-run",  # PREFIX/lib/attestfs/python/..
                 Path(sys.argv[0]).resolve().parent / "attestfs-run"):
        if cand.is_file() and os.access(cand, os.X_OK):
            return str(cand)
    found = shutil.which("attestfs-run")
    if not found:
        sys.exit("attestfs-test-driver: attestfs-run not found (make install, or PATH)")
    return found


def outer(args: argparse.Namespace, argv: List[str]) -> int:
    """Mount through attestfs-run and run this command again inside."""
    work = tempfile.mkdtemp(prefix="attestfs-test-driver.")
    try:
        if args.config:
            config = os.path.abspath(args.config)
        else:
            config = os.path.join(work, "machines.json")
            with open(config, "w") as f:
                json.dump(config_from_start_scripts(args.start_scripts, args.vlans or []), f)
        daemon_log = os.path.join(work, "attestfs.log")
        gt = args.global_timeout or DEFAULT_GLOBAL_TIMEOUT
        # ours decides (the script's own timer, as in the driver); attestfs-run's is the backstop
        run = [find_attestfs_run(), "-l", daemon_log, "-o", f"global_timeout={gt + 60}"]
        if args.keep_vm_state:
            state = os.path.join(os.path.abspath(str(args.output_directory)), "vm-state")
            os.makedirs(state, mode=0o700, exist_ok=True)
            run += ["-o", f"state_dir={state}"]
        env = dict(os.environ, **{INNER: "1", "ATTESTFS_DAEMON_LOG": daemon_log})
        env["PYTHONPATH"] = str(Path(__file__).resolve().parent.parent) + (
            os.pathsep + env["PYTHONPATH"] if env.get("PYTHONPATH") else "")
        inner = [sys.executable, "-m", "attestfs_nixos"] + argv
        # $$ of the sh is attestfs-run's pid once it execs: the inner
        # driver names it for nsenter when it keeps machines for you
        cmd = ["sh", "-c", 'ATTESTFS_RUN_PID=$$ exec "$@"', "sh"] + run + [config] + inner
        proc = subprocess.Popen(cmd, env=env)
        # a SIGTERM to us goes on to attestfs-run (and so to the script)
        signal.signal(signal.SIGTERM, lambda *_: proc.send_signal(signal.SIGTERM))
        while True:
            try:
                rc = proc.wait()
                break
            except KeyboardInterrupt:
                proc.send_signal(signal.SIGINT)
        if rc != 0 and os.path.exists(daemon_log):
            print(f"attestfs-test-driver: the daemon's output: {daemon_log}"
                  + ("" if args.keep_vm_state else " (removed; -K keeps it)"), file=sys.stderr)
            sys.stderr.write("".join(open(daemon_log, errors="replace").readlines()[-20:]))
        return rc if rc >= 0 else 128 - rc
    finally:
        if not args.keep_vm_state:
            shutil.rmtree(work, ignore_errors=True)


def keep_for_attach(driver: Driver) -> None:
    pid = os.environ.get("ATTESTFS_RUN_PID")
    print("!!! the test failed; the machines keep running (--keep-machines-on-failure)",
          file=sys.stderr)
    if pid:
        print(f"    attach: nsenter --target {pid} --user --mount --preserve-credentials "
              f"env VMS={driver.vms} PYTHONPATH={Path(__file__).resolve().parent.parent} $SHELL",
              file=sys.stderr)
    print(f"    then: ls $VMS; cat $VMS/<m>/log; attestfs-shell $VMS/<m>; "
          "python3 -m attestfs_nixos --repl", file=sys.stderr)
    print("    press Enter here to stop them (exit 1), or send SIGTERM"
          + (f" to {pid} (exit 143)" if pid else ""), file=sys.stderr)
    try:
        if sys.stdin.isatty():
            sys.stdin.readline()
        else:
            # handlers, not a mask: a mask would cover this thread only
            done = threading.Event()
            for sig in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
                signal.signal(sig, lambda *_: done.set())
            while not done.wait(1):
                pass
    except KeyboardInterrupt:
        pass


def repl(driver: Driver) -> None:
    symbols = driver.test_symbols()
    try:
        import readline  # noqa: F401  (line editing when there is one)
    except ImportError:
        pass
    code.interact(banner="attestfs-test-driver: the test symbols are defined; "
                  "test_script() runs the script, Ctrl-D ends", local=symbols, exitmsg="")


def inner(args: argparse.Namespace, vms: str) -> int:
    out_dir = str(Path(args.output_directory).resolve())
    logger = CompositeLogger([TerminalLogger()])
    if "LOGFILE" in os.environ:
        logger.add_logger(XMLLogger(os.environ["LOGFILE"]))
    if args.junit_xml:
        logger.add_logger(JunitXMLLogger(os.path.join(out_dir, str(args.junit_xml))))
    if not args.keep_vm_state:
        logger.info("Machine state will be reset. To keep it, pass --keep-vm-state")
    tests = args.testscript.read_text() if args.testscript else ""
    driver = Driver(vms, out_dir, logger, tests=tests,
                    global_timeout=args.global_timeout or DEFAULT_GLOBAL_TIMEOUT,
                    serial_log=os.environ.get("ATTESTFS_DAEMON_LOG"),
                    own_mount=bool(os.environ.get(INNER)))
    status = 0
    try:
        with driver:
            if args.interactive:
                repl(driver)
            else:
                tic = time.time()
                try:
                    driver.run_tests()
                except SystemExit as e:
                    status = e.code if isinstance(e.code, int) else 1
                except BaseException:
                    import traceback
                    for line in traceback.format_exc().splitlines():
                        logger.log_test_error(line)
                    status = 1
                if status == 0:
                    logger.info(f"test script finished in {(time.time() - tic):.2f}s")
                elif args.keep_machines_on_failure:
                    keep_for_attach(driver)
    finally:
        logger.close()
    return status


def main(argv: Optional[List[str]] = None) -> None:
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv[:1] == ["--repl"]:
        driver = Driver(os.environ.get("VMS") or sys.exit("--repl: VMS is not set"),
                        os.getcwd(), CompositeLogger([TerminalLogger()]))
        repl(driver)
        return
    args = parser().parse_args(argv)
    if not args.testscript and not args.interactive:
        parser().error("the test script is required (or --interactive)")
    vms = os.environ.get("VMS")
    if os.environ.get(INNER) or (vms and not args.config and not args.start_scripts):
        if not vms:
            sys.exit("attestfs-test-driver: VMS is not set")
        sys.exit(inner(args, vms))
    if not args.config and not args.start_scripts:
        parser().error("no machines: give --start-scripts, --config, or run inside a mount ($VMS)")
    sys.exit(outer(args, argv))


__all__ = ["main", "machine_name", "config_from_start_scripts", "pythonize_name"]
