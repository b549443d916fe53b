"""The fake VMM process: the API server on its threads, QEMU spawned and reaped on the main one.

The main thread runs a task loop. QEMU is started there (qemu.py sets PR_SET_PDEATHSIG in the
child, and the death signal follows the spawning *thread*). The loop also notices a dead parent
(getppid() changes: the daemon that ran us is gone) and exits. SIGTERM, SIGINT and SIGHUP
exit too; every exit kills QEMU by its pid, closes the vsock socket, removes the API socket
and the private work directory. stdout is never written to: it may be the guest's serial
console. The log goes to --log-path (or PUT /logger), else to stderr.
"""
import os
import queue
import shutil
import signal
import sys
import tempfile
import threading
import time
import traceback

from . import qemu


BASE = os.path.join(tempfile.gettempdir(), "fake-vmm.%d" % os.getuid())


def _alive(pid):
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        pass
    return True


def workdir(name):
    """BASE/NAME.PID, private. A fake killed by SIGKILL cannot remove its own: each new one
    first removes those whose process is gone."""
    os.makedirs(BASE, mode=0o700, exist_ok=True)
    for d in os.listdir(BASE):
        pid = d.rsplit(".", 1)[-1]
        if pid.isdigit() and not _alive(int(pid)):
            shutil.rmtree(os.path.join(BASE, d), ignore_errors=True)
    path = os.path.join(BASE, "%s.%d" % (name, os.getpid()))
    shutil.rmtree(path, ignore_errors=True)  # a dead namesake's, pid reused
    os.mkdir(path, 0o700)
    return path


class Vmm:
    def __init__(self, name):
        self.name = name
        self.tasks = queue.Queue()
        self.guest = None
        self.vsock = None
        self.server = None
        self.api_path = None
        self.log_file = None
        self.log_lock = threading.Lock()
        self.exit_code = None
        self.ppid = os.getppid()
        self.workdir = workdir(name)
        self.t0 = time.monotonic()

    # ------------------------------------------------------------ logging
    def set_log(self, path):
        f = open(path, "a", buffering=1)
        with self.log_lock:
            self.log_file = f

    def log(self, msg):
        line = "[%s %8.3f] %s\n" % (self.name, time.monotonic() - self.t0, msg)
        with self.log_lock:
            try:
                (self.log_file or sys.stderr).write(line)
                (self.log_file or sys.stderr).flush()
            except (OSError, ValueError):
                pass

    # ------------------------------------------------------------ main thread
    def on_main(self, fn):
        """Runs fn() on the main thread and returns its result (or raises its exception)."""
        done = threading.Event()
        box = {}

        def task():
            try:
                box["r"] = fn()
            except BaseException as e:  # handed to the caller
                box["e"] = e
            done.set()
        self.tasks.put(task)
        done.wait()
        if "e" in box:
            raise box["e"]
        return box.get("r")

    def exit(self, code):
        if self.exit_code is None:
            self.exit_code = code
        self.tasks.put(None)

    def _signal(self, signum, frame):
        self.log("signal %d" % signum)
        self.exit(128 + signum)

    def serve(self, server, api_path):
        """Serves until exit(); then cleans up and exits the process."""
        self.server, self.api_path = server, api_path
        for s in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
            signal.signal(s, self._signal)
        signal.signal(signal.SIGPIPE, signal.SIG_IGN)
        threading.Thread(target=server.serve_forever, daemon=True).start()
        try:
            while self.exit_code is None:
                try:
                    task = self.tasks.get(timeout=0.5)
                except queue.Empty:
                    task = None
                if task:
                    task()
                if os.getppid() != self.ppid:
                    self.log("parent %d is gone" % self.ppid)
                    self.exit(0)
        except Exception:
            self.log(traceback.format_exc())
            self.exit(1)
        self.cleanup()
        os._exit(self.exit_code)

    def cleanup(self):
        if self.guest:
            self.guest.kill()
        for dev in (self.vsock, getattr(self, "relay", None)):
            if dev:
                dev.close()
        if self.api_path:
            try:
                os.unlink(self.api_path)
            except OSError:
                pass
        shutil.rmtree(self.workdir, ignore_errors=True)
        self.log("exit %d" % self.exit_code)

    # ------------------------------------------------------------ the guest
    def start_guest(self, machine, incoming=None):
        """QEMU for machine (paused, -S) in a fresh directory; becomes self.guest.
        Raises qemu.QmpError."""
        self.n_guests = getattr(self, "n_guests", 0) + 1
        gdir = os.path.join(self.workdir, "g%d" % self.n_guests)
        os.mkdir(gdir)

        def start():
            g = qemu.Guest(machine, gdir, self.log)
            g.on_exit = lambda rc: self.guest_exited(g, rc)
            g.on_reset = self.guest_reset
            try:
                g.start(incoming)
            except Exception:
                g.kill()
                raise
            return g
        self.guest = self.on_main(start)
        return self.guest

    def stop_guest(self):
        """Ends the current QEMU on purpose (the VMM process lives on)."""
        g, self.guest = self.guest, None
        if g:
            g.kill()

    def guest_exited(self, g, rc):
        """The guest powered off, or reset under -no-reboot: the VMM process exits, as FC
        and CH do. A QEMU ended by stop_guest() is no longer self.guest."""
        if g is self.guest:
            self.exit(0)

    def guest_reset(self):
        """A guest reboot inside the same QEMU (CH): the VMMs reset vsock with the devices."""
        if self.vsock:
            self.vsock.reset()

    def internal_error(self, msg):
        """(status, body) for an unexpected failure; each VMM words it its own way."""
        return 500, {"error": msg}

    def running(self):
        return self.guest is not None and not self.guest.exited.is_set()
