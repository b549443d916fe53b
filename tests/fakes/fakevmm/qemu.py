"""The real guest behind a fake VMM: one qemu-system-x86_64 -accel tcg, driven over QMP.

A Guest is built from a machine description (dict, JSON-serialisable so that a snapshot
file can carry it and a new fake process can rebuild the identical QEMU command line):

    {"kernel": PATH, "initrd": PATH|None, "cmdline": STR, "mem_mib": N, "vcpus": N,
     "drives": [{"id": ID, "path": PATH, "read_only": BOOL}],     # vda, vdb, ... in order
     "nets": [{"id": ID, "tap": NAME, "mac": MAC|None}],
     "channels": N,                                                 # attestfs.shell.0..N-1
     "serial": "stdio" | "socket" | "file:PATH" | "pty" | "null" | "off",   # ttyS0
     "console": the same kinds, "off" by default,                   # virtconsole hvc0
     "on_reset": "exit" (-no-reboot: a guest reboot ends QEMU) | "reset", "rng": BOOL}

QEMU listens on private sockets in the fake's work directory: qmp.sock, shell.K.sock (one
virtserialport attestfs.shell.K each) and ser0.sock ("socket" mode: the fake relays it).
It is started with -S; the caller connects what it needs, then resumes. QEMU dies with the
fake: PR_SET_PDEATHSIG(SIGKILL) is set in the child, and the Popen happens on the fake's main
thread (the death signal follows the spawning thread, not the process).
"""
import ctypes
import json
import os
import signal
import socket
import subprocess
import threading
import time

PR_SET_PDEATHSIG = 1
QEMU = os.environ.get("FAKE_VMM_QEMU", "qemu-system-x86_64")


class QmpError(Exception):
    pass


def _pdeathsig():
    libc = ctypes.CDLL(None, use_errno=True)
    libc.prctl(PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
    os.setpgid(0, 0)  # a terminal's ^C goes to the fake, which then stops QEMU itself


def argv(m, workdir, incoming=None):
    """The QEMU command line for machine description m (same m -> same devices, so a
    migration stream saved from one loads into the other)."""
    a = [QEMU, "-accel", "tcg", "-machine", "pc", "-cpu", "max", "-nodefaults",
         "-no-user-config", "-display", "none", "-S",
         "-m", str(m["mem_mib"]), "-smp", str(m["vcpus"]),
         "-kernel", m["kernel"], "-append", m["cmdline"],
         "-qmp", "unix:%s/qmp.sock,server=on,wait=off" % workdir,
         "-device", "virtio-serial-pci,id=vser0"]
    if m.get("initrd"):
        a += ["-initrd", m["initrd"]]
    if m.get("on_reset", "exit") == "exit":
        a += ["-no-reboot"]  # Firecracker exits on a guest reset; CH reboots in-process
    a += _console_args(m, workdir)
    if m.get("rng"):
        a += ["-object", "rng-random,id=rng0,filename=/dev/urandom",
              "-device", "virtio-rng-pci,rng=rng0,id=rngdev0"]
    for k in range(m["channels"]):
        a += ["-chardev", "socket,id=shell%d,path=%s/shell.%d.sock,server=on,wait=off"
              % (k, workdir, k),
              "-device", "virtserialport,bus=vser0.0,chardev=shell%d,id=port%d,"
              "name=attestfs.shell.%d" % (k, k, k)]
    for i, d in enumerate(m["drives"]):
        # no image locking: the VMMs take none, and a snapshot's clone may share a base
        a += ["-drive", "file=%s,format=%s,if=none,id=drive%d,cache=unsafe,file.locking=off,"
              "readonly=%s" % (d["path"].replace(",", ",,"), d.get("format", "raw"), i,
                               "on" if d.get("read_only") else "off"),
              "-device", "virtio-blk-pci,drive=drive%d,id=blk%d" % (i, i)]
    for i, n in enumerate(m.get("nets", [])):
        a += ["-netdev", "tap,id=net%d,ifname=%s,script=no,downscript=no" % (i, n["tap"])]
        dev = "virtio-net-pci,netdev=net%d,id=nic%d" % (i, i)
        if n.get("mac"):
            dev += ",mac=" + n["mac"]
        a += ["-device", dev]
    if incoming:
        a += ["-incoming", "exec:cat %s" % _shq(incoming)]
    return a


def _chardev(kind, cid, workdir):
    """-chardev for a console kind: stdio, socket (serial.sock, relayed by the fake),
    file:PATH, pty, null."""
    if kind == "stdio":
        return "stdio,id=%s,signal=off" % cid
    if kind == "socket":
        return "socket,id=%s,path=%s/%s.sock,server=on,wait=off" % (cid, workdir, cid)
    if kind.startswith("file:"):
        return "file,id=%s,path=%s" % (cid, kind[5:].replace(",", ",,"))
    if kind in ("pty", "null"):
        return "%s,id=%s" % (kind, cid)
    return None


def _console_args(m, workdir):
    """The legacy serial port (ttyS0) and the virtio console (hvc0), when configured."""
    serial, console = m.get("serial", "off"), m.get("console", "off")
    a = []
    if serial == "stdio" and console == "stdio":  # one stdio chardev, multiplexed
        a += ["-chardev", "stdio,id=ser0,mux=on,signal=off"]
        serial_dev, console_dev = "ser0", "ser0"
    else:
        serial_dev, console_dev = "ser0", "con0"
        for kind, cid in ((serial, "ser0"), (console, "con0")):
            cd = _chardev(kind, cid, workdir)
            if cd:
                a += ["-chardev", cd]
    if serial != "off":
        a += ["-serial", "chardev:" + serial_dev]
    if console != "off":
        a += ["-device", "virtconsole,bus=vser0.0,chardev=%s,id=hvc0" % console_dev]
    return a


def _shq(s):
    return "'" + s.replace("'", "'\\''") + "'"


class Guest:
    """One QEMU process. on_exit(rc) is called (from the QMP reader thread) when it is gone."""

    def __init__(self, machine, workdir, log, on_exit=None, on_reset=None):
        """on_exit(rc) and on_reset() are called on QMP reader threads."""
        self.m = machine
        self.workdir = workdir
        self.log = log
        self.on_exit = on_exit
        self.on_reset = on_reset
        self.proc = None
        self.qmp = None
        self.lock = threading.Lock()        # guards port_open, replies, next_id
        self.cond = threading.Condition(self.lock)
        self.port_open = [False] * machine["channels"]
        self.replies = {}
        self.next_id = 0
        self.shutdown_reason = None
        self.resets = 0                     # RESET events seen
        self.exited = threading.Event()

    def start(self, incoming=None):
        """Runs QEMU (paused: -S) and connects QMP. Must run on the fake's main thread."""
        a = argv(self.m, self.workdir, incoming)
        self.log("qemu: %s" % " ".join(a))
        errlog = open(os.path.join(self.workdir, "qemu.err"), "wb")
        tty = "stdio" in (self.m.get("serial"), self.m.get("console"))
        stdin = 0 if tty else subprocess.DEVNULL
        stdout = 1 if tty else subprocess.DEVNULL
        self.proc = subprocess.Popen(a, stdin=stdin, stdout=stdout, stderr=errlog,
                                     preexec_fn=_pdeathsig, close_fds=True)
        errlog.close()
        self.log("qemu: pid %d" % self.proc.pid)
        self.qmp = self._connect("qmp.sock", 30)
        self.rfile = self.qmp.makefile("rb")
        greeting = self.rfile.readline()
        if not greeting:
            raise QmpError("qemu exited: %s" % self.stderr_tail())
        threading.Thread(target=self._reader, daemon=True).start()
        self.cmd("qmp_capabilities")

    def stderr_tail(self):
        try:
            with open(os.path.join(self.workdir, "qemu.err"), "rb") as f:
                return f.read()[-2000:].decode(errors="replace").strip()
        except OSError:
            return ""

    def _connect(self, name, timeout):
        path = os.path.join(self.workdir, name)
        deadline = time.monotonic() + timeout
        while True:
            s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            try:
                s.connect(path)
                return s
            except OSError:
                s.close()
                if self.proc.poll() is not None:
                    raise QmpError("qemu exited (%d): %s" % (self.proc.returncode,
                                                            self.stderr_tail()))
                if time.monotonic() > deadline:
                    raise QmpError("no QMP socket after %d s" % timeout)
                time.sleep(0.01)

    def connect_channel(self, k):
        """A new host-side connection to virtserialport attestfs.shell.k."""
        return self._connect("shell.%d.sock" % k, 5)

    def connect_serial(self):
        return self._connect("ser0.sock", 5)

    def _reader(self):
        for line in self.rfile:
            try:
                msg = json.loads(line)
            except ValueError:
                continue
            with self.lock:
                if "event" in msg:
                    self._event(msg)
                elif "id" in msg:
                    self.replies[msg["id"]] = msg
                self.cond.notify_all()
        rc = self.proc.wait()
        self.log("qemu: exited %d (%s)" % (rc, self.shutdown_reason))
        with self.lock:
            self.exited.set()
            self.cond.notify_all()
        if self.on_exit:
            self.on_exit(rc)

    def _event(self, msg):
        ev, data = msg["event"], msg.get("data", {})
        if ev == "VSERPORT_CHANGE" and data.get("id", "").startswith("port"):
            self.port_open[int(data["id"][4:])] = data["open"]
        elif ev == "SHUTDOWN":
            self.shutdown_reason = data.get("reason")
        elif ev == "RESET":
            # a reboot: the guest reopens its ports when it is up again
            self.port_open = [False] * len(self.port_open)
            self.resets += 1
            if self.on_reset:
                threading.Thread(target=self.on_reset, daemon=True).start()
        if ev != "VSERPORT_CHANGE":
            self.log("qmp: event %s %s" % (ev, json.dumps(data)))

    def cmd(self, name, args=None, timeout=60):
        with self.lock:
            self.next_id += 1
            rid = self.next_id
        req = {"execute": name, "id": rid}
        if args:
            req["arguments"] = args
        self.qmp.sendall(json.dumps(req).encode() + b"\n")
        deadline = time.monotonic() + timeout
        with self.lock:
            while rid not in self.replies:
                left = deadline - time.monotonic()
                if self.exited.is_set() or left <= 0:
                    raise QmpError("%s: no reply (qemu %s)" % (
                        name, "exited" if self.exited.is_set() else "timed out"))
                self.cond.wait(left)
            r = self.replies.pop(rid)
        if "error" in r:
            raise QmpError("%s: %s" % (name, r["error"].get("desc")))
        return r.get("return")

    def reset(self, timeout=30):
        """system_reset, returning once QEMU has reset the machine (its RESET event: it
        comes after the command's reply)."""
        with self.lock:
            n = self.resets
        self.cmd("system_reset")
        deadline = time.monotonic() + timeout
        with self.lock:
            while self.resets == n:
                left = deadline - time.monotonic()
                if self.exited.is_set() or left <= 0:
                    raise QmpError("system_reset: no RESET event")
                self.cond.wait(left)

    def status(self):
        return self.cmd("query-status")["status"]

    def save(self, path):
        """The whole machine state (RAM included) into path; the VM must be stopped."""
        self.cmd("migrate-set-parameters", {"max-bandwidth": 10 << 30})
        self.cmd("migrate", {"uri": "exec:cat > %s" % _shq(path)})
        while True:
            st = self.cmd("query-migrate").get("status")
            if st == "completed":
                return
            if st in ("failed", "cancelled"):
                raise QmpError("migration %s" % st)
            time.sleep(0.01)

    def wait_loaded(self, timeout=120):
        deadline = time.monotonic() + timeout
        while self.status() == "inmigrate":
            if time.monotonic() > deadline:
                raise QmpError("incoming migration did not finish in %d s" % timeout)
            time.sleep(0.005)

    def free_port(self, busy):
        """The lowest attestfs.shell.K whose guest side is open and not in busy."""
        with self.lock:
            for k, is_open in enumerate(self.port_open):
                if is_open and k not in busy:
                    return k
        return None

    def kill(self):
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGKILL)
            self.proc.wait()
