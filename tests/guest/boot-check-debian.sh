#!/bin/sh
# tests/guest/boot-check-debian.sh CACHE_DIR [config|script] — self-test of the debian guest built by
# `tests/guest/build.sh CACHE_DIR debian`.
#
# config (default): boots with attestfs's own QEMU command line for a machine configured with
#   "kernel", "initrd", "disks": ["base.img"], "append": <cmdline>, "cpus": 2, "memory_mib": 256
#   (backends/qemu.c: a fresh qcow2 overlay over base.img, virtio-blk, 4 virtserialports, the
#   restricted user-mode NIC, console and shells on sockets this script LISTENS on).
# script: starts CACHE_DIR/debian/run-debian-vm the way attestfs starts a start script (the sockets
#   in QEMU_OPTS, TMPDIR=<state dir>, USE_TMPDIR=1).
# Checks: the banner on all 4 ports, `systemctl is-system-running --wait` = running, the database
# unit (postgresql.service, alias postgres, companion postgresql@15-main) active and answering
# psql, stop/start through the alias, the unit that fails, the web page through curl, eth0's
# address, the tools tests use, attestfs's own shell prelude under the guest's /bin/sh, a shell
# respawn after `exit`, a host port forwarded to the web server (QMP hostfwd_add, as attestfs's
# `forward`), `systemctl reboot` (banners again; BOOT_CHECK_REBOOT=0 skips it) and `systemctl
# poweroff` (QEMU exits by itself). Prints the timings.
# BOOT_CHECK_VERBOSE=1 also prints systemd-analyze blame and the serial log with timestamps;
# BOOT_CHECK_APPEND="..." adds to the kernel command line (config mode), e.g. loglevel=6. QEMU is always killed on exit.
# (python3 is used by this self-test only; attestfs itself is C.)
set -eu
if [ $# -lt 1 ] || [ $# -gt 2 ]; then
	echo "usage: $0 CACHE_DIR [config|script]" >&2
	exit 2
fi
CACHE=$(cd "$1" && pwd)
MODE=${2:-config}
case $MODE in config | script) ;; *)
	echo "unknown mode $MODE (config, script)" >&2
	exit 2
	;;
esac
for f in vmlinuz initrd.gz base.img cmdline run-debian-vm; do
	[ -r "$CACHE/debian/$f" ] || {
		echo "missing $CACHE/debian/$f (run tests/guest/build.sh $CACHE debian)" >&2
		exit 1
	}
done
TOP=$(cd "$(dirname "$0")/../.." && pwd)

DIR=$(mktemp -d "${TMPDIR:-/tmp}/attestfs-boot-check-debian.XXXXXX")
PY=
cleanup() {
	rc=$?
	[ -z "$PY" ] || kill "$PY" 2>/dev/null || true
	if [ -s "$DIR/qemu.pid" ]; then
		q=$(cat "$DIR/qemu.pid")
		if kill -0 "$q" 2>/dev/null; then
			kill -9 "$q" 2>/dev/null || true
			echo "boot-check-debian: killed QEMU $q" >&2
		fi
	fi
	rm -rf "$DIR"
	exit $rc
}
trap cleanup EXIT
trap 'exit 130' INT TERM HUP

PYTHONPATH=$(cd "$(dirname "$0")" && pwd) python3 - "$CACHE/debian" "$MODE" "$DIR" "$TOP" <<'EOF' &
import base64, codecs, json, os, re, select, signal, socket, statistics, subprocess, sys, threading, time
import urllib.request

g, mode, d, top = sys.argv[1:5]
NPORTS = 4
BANNER = b"Spawning backdoor root shell..."
verbose = os.environ.get("BOOT_CHECK_VERBOSE", "0") != "0"
reboot_step = os.environ.get("BOOT_CHECK_REBOOT", "1") != "0"
signal.signal(signal.SIGTERM, lambda *a: sys.exit(143))

import bootcheck
from bootcheck import Fail, listen, log

bootcheck.PREFIX = "boot-check[debian/%s]" % mode
bootcheck.STATE_DIR = d
bootcheck.ASK_TIMEOUT = 30


class Conn(bootcheck.Conn):
    def run(self, cmd, timeout=60):
        """stdout (bytes) and status of cmd, file framing from notes/guests.md"""
        q = "'" + cmd.replace("'", "'\\''") + "'"
        r = self.ask("sh -c %s </dev/null >/tmp/.bco; s=$?; base64 -w0 /tmp/.bco; echo \" $s\"" % q, timeout)
        b64, st = r.rsplit(b" ", 1)
        return base64.b64decode(b64), int(st)

    def out(self, cmd, timeout=60):
        o, st = self.run(cmd, timeout)
        if st != 0:
            raise Fail("%r exited %d: %r" % (cmd, st, o[-500:]))
        return o.decode(errors="replace").strip()

console_buf = bytearray()
console_lines = []  # (seconds after QEMU start, line)
def drain_console(sock):
    part = b""
    with open(os.path.join(d, "serial.log"), "wb") as f:
        while True:
            data = sock.recv(65536)
            if not data:
                return
            console_buf.extend(data)
            f.write(data)
            f.flush()
            part += data
            while b"\n" in part:
                line, part = part.split(b"\n", 1)
                console_lines.append((time.monotonic() - t0, line.rstrip(b"\r")))

lsocks = {"console": listen("console.sock")}
for i in range(NPORTS):
    lsocks["shell.%d" % i] = listen("shell.%d.sock" % i)

cmdline = open(os.path.join(g, "cmdline")).read().strip()
if os.environ.get("BOOT_CHECK_APPEND"):
    cmdline += " " + os.environ["BOOT_CHECK_APPEND"]
# The arguments backends/qemu.c gives every machine; with a start script only these go to QEMU_OPTS.
common = ["-nodefaults", "-no-user-config", "-display", "none", "-vga", "std",
          "-chardev", "socket,id=console,path=%s/console.sock" % d, "-serial", "chardev:console",
          "-qmp", "unix:%s/qmp.sock,server=on,wait=off" % d,
          "-device", "virtio-serial-pci,id=vser0"]
for n in range(NPORTS):
    common += ["-chardev", "socket,id=shell%d,path=%s/shell.%d.sock" % (n, d, n),
               "-device", "virtserialport,bus=vser0.0,chardev=shell%d,name=attestfs.shell.%d" % (n, n)]
common += ["-device", "virtio-rng-pci"]
pidfile = ["-pidfile", "%s/qemu.pid" % d]
env = dict(os.environ)
if mode == "config":
    overlay = os.path.join(d, "disk.0.qcow2")
    subprocess.run(["qemu-img", "create", "-q", "-f", "qcow2", "-b", os.path.realpath(os.path.join(g, "base.img")),
                    "-F", "raw", overlay], check=True)
    args = (["qemu-system-x86_64", "-name", "debian"] + common[:6] +
            ["-machine", "q35", "-accel", "tcg", "-cpu", "max", "-smp", "2", "-m", "256",
             "-kernel", os.path.join(g, "vmlinuz"), "-initrd", os.path.join(g, "initrd.gz"), "-append", cmdline] +
            common[6:] +
            ["-netdev", "user,id=user0,restrict=on", "-device", "virtio-net-pci,netdev=user0,id=nic0,mac=52:54:00:12:00:01",
             "-drive", "file=%s,format=qcow2,if=none,id=disk.0,cache=unsafe,discard=unmap" % overlay,
             "-device", "virtio-blk-pci,drive=disk.0"] + pidfile)
else:
    env.update(QEMU_OPTS=" ".join(common + pidfile), TMPDIR=d, SHARED_DIR=os.path.join(d, "shared"), USE_TMPDIR="1")
    args = ["/bin/sh", "-c", os.path.join(g, "run-debian-vm")]

qemu = None
rc = 1
try:
    t0 = time.monotonic()
    qemu = subprocess.Popen(args, stdin=subprocess.DEVNULL, stdout=open(os.path.join(d, "qemu.log"), "wb"),
                            stderr=subprocess.STDOUT, env=env)
    conns = {}
    for name, ls in lsocks.items():
        ls.settimeout(20)
        try:
            s, _ = ls.accept()
        except socket.timeout:
            raise Fail("QEMU did not connect to %s (qemu.log: %r)" % (name, open(os.path.join(d, "qemu.log"), "rb").read()[-500:]))
        if name == "console":
            threading.Thread(target=drain_console, args=(s,), daemon=True).start()
        else:
            conns[name] = Conn(s, name)
    shells = [conns["shell.%d" % n] for n in range(NPORTS)]
    first = last = None
    for c in shells:
        c.wait_for(BANNER, max(0.0, t0 + 90 - time.monotonic()))
        t = time.monotonic() - t0
        first = t if first is None else min(first, t)
        last = t
    log("banner on %d ports: first %.2f s, all %.2f s after QEMU start" % (NPORTS, first, last))
    for n, c in enumerate(shells):
        if c.ask("echo hi%d" % n) != b"hi%d" % n:
            raise Fail("%s: echo" % c.name)
    s0, s1, s2, s3 = shells

    # Boot milestones, each on its own port: the database answering, then the whole system.
    s1.send("while ! systemctl -q is-active postgresql; do sleep 0.1; done; echo pgactive")
    s2.send("until pg_isready -q; do sleep 0.1; done; echo pgready")
    s0.send("systemctl is-system-running --wait")
    marks = {}
    for c, key in ((s1, "pgactive"), (s2, "pgready"), (s0, "system")):
        v = c.line(120)
        marks[key] = (v, time.monotonic() - t0)
    state = marks["system"][0]
    log("postgresql.service active %.2f s, pg_isready %.2f s, is-system-running=%s %.2f s after QEMU start"
        % (marks["pgactive"][1], marks["pgready"][1], state.decode(), marks["system"][1]))
    if state != b"running":
        raise Fail("system state %r; failed units: %s" % (state, s0.out("systemctl --failed --no-legend --plain")))
    up = s0.out("cat /proc/uptime").split()[0]
    log("guest uptime at that point: %s s; %s" % (up, s0.out("systemd-analyze time | head -n 1")))
    if verbose:
        log("systemd-analyze blame:\n" + s0.out("systemd-analyze blame --no-pager | head -n 15"))

    # The database unit: one real unit, reachable by its alias.
    show = s0.out("systemctl show -p Id,Names,ActiveState,SubState,MainPID postgres")
    log("systemctl show postgres: " + show.replace("\n", " "))
    props = dict(l.split("=", 1) for l in show.splitlines())
    if props["Id"] != "postgresql.service" or "postgres.service" not in props["Names"].split() or \
            props["ActiveState"] != "active" or props["SubState"] != "running":
        raise Fail("postgres is not the running server unit: %r" % props)
    comm = s0.out("cat /proc/%s/comm" % props["MainPID"])
    if comm != "postgres":
        raise Fail("MainPID %s is %r" % (props["MainPID"], comm))
    comp = s0.out("systemctl is-active postgresql@15-main; systemctl is-active postgresql")
    if comp.split() != ["active", "active"]:
        raise Fail("is-active postgresql@15-main, postgresql: %r" % comp)
    if "postgresql@15-main.service" not in s0.out("systemctl list-units --all --plain --no-legend --full").split():
        raise Fail("postgresql@15-main.service not listed")
    for cmd in ("su postgres -c \"psql -tAc 'select 1'\"", "psql -U postgres -tAc 'select 1'"):
        if s0.out(cmd) != "1":
            raise Fail(cmd)
    if s0.out("journalctl --no-pager -u postgresql.service | grep -c 'ready to accept connections'") == "0":
        raise Fail("journal lacks 'ready to accept connections'")
    log("postgres = postgresql.service (running postmaster), postgresql@15-main active, psql select 1 as postgres and root")

    # Stop and start through the alias; the companion follows, the port closes and opens.
    port = "grep -qE '^ *[0-9]+: [0-9A-F]+:1538 [0-9A-F]+:[0-9A-F]+ 0A ' /proc/net/tcp /proc/net/tcp6"
    t = time.monotonic()
    s0.out("systemctl stop postgres")
    st = s0.out("systemctl is-active postgres postgresql@15-main || true")
    if st.split() != ["inactive", "inactive"] or s0.run(port)[1] == 0:
        raise Fail("after stop: %r" % st)
    s0.out("systemctl start postgres")
    st = s0.out("systemctl is-active postgres postgresql@15-main")
    if st.split() != ["active", "active"] or s0.run(port)[1] != 0:
        raise Fail("after start: %r" % st)
    s0.out("systemctl stop postgresql@15-main")
    if s0.out("systemctl is-active postgres || true") != "inactive":
        raise Fail("stopping the companion did not stop the server")
    s0.out("systemctl start postgresql@15-main")
    if s0.out("systemctl is-active postgres postgresql@15-main").split() != ["active", "active"] or \
            s0.out("su postgres -c \"psql -tAc 'select 40 + 2'\"") != "42":
        raise Fail("start through the companion")
    log("stop/start through postgres and postgresql@15-main: both names follow the server (%.1f s)" % (time.monotonic() - t))

    o, st = s0.run("systemctl start attestfs-fail")
    if st == 0 or s0.out("systemctl show -p ActiveState --value attestfs-fail") != "failed":
        raise Fail("attestfs-fail: start status %d" % st)
    log("attestfs-fail: start fails (status %d), state failed" % st)

    page = s0.out("curl -sS --max-time 10 http://127.0.0.1/ && curl -sS --max-time 10 http://10.0.2.15/")
    if page != "attestfs debian guest\nattestfs debian guest":
        raise Fail("web page %r" % page)
    addr = s0.out("ip -4 -o addr show dev eth0")
    if "10.0.2.15/24" not in addr or "default via 10.0.2.2" not in s0.out("ip route"):
        raise Fail("eth0: %r" % addr)
    log("nginx serves the page on port 80; eth0 10.0.2.15/24, default via 10.0.2.2")

    missing = s0.out("m=; for c in base64 stat wc sh bash ps pgrep ip ss curl psql pg_isready systemctl journalctl "
                     "timeout setsid kill md5sum sha256sum modprobe su; do command -v $c >/dev/null || m=\"$m $c\"; done; "
                     "echo \"missing:$m\"")
    if missing != "missing:":
        raise Fail("guest lacks: %r" % missing)
    log("tools present; " + s0.out("df -m / | awk 'NR==2 { print $4 \" MiB free on /\" }'") + ", " +
        s0.out("awk '/MemAvailable/ { print int($2/1024) \" MiB available\" }' /proc/meminfo"))

    want = b"attestfs debian guest: backdoor on 4 ports"
    if want not in console_buf:
        raise Fail("serial log lacks %r: %r" % (want, bytes(console_buf[-1500:])))

    # attestfs's own prelude and command framing (machine/shell.c) under the guest's /bin/sh.
    src = open(os.path.join(top, "machine/shell.c")).read()
    def cstr(name):
        m = re.search(r"%s\[\] =(.*?);\n" % name, src, re.S)
        return codecs.decode("".join(re.findall(r'"((?:[^"\\]|\\.)*)"', m.group(1))), "unicode_escape")
    s3.send(cstr("prelude_common") + cstr("prelude_fast") + "echo SYNC1")
    s3.wait_for(b"SYNC1", 10)
    s3.send("_atx 7 'echo out; echo err >&2; exit 3'")
    p, st, o, e = (s3.line(20) for _ in range(4))
    if not re.match(rb"^\x01P 7 [0-9]+$", p) or st != b"\x01S 7 3" or base64.b64decode(o) != b"out\n" or \
            base64.b64decode(e) != b"err\n":
        raise Fail("prelude framing: %r %r %r %r" % (p, st, o, e))
    times = []
    for i in range(60):
        t = time.monotonic()
        s3.send("_atx %d true" % (100 + i))
        for _ in range(4):
            s3.line(10)
        times.append(time.monotonic() - t)
    log("attestfs prelude works under the guest's /bin/sh; `true` round trip median %.1f ms (p90 %.1f)"
        % (statistics.median(times) * 1000, sorted(times)[int(len(times) * 0.9)] * 1000))

    # attestfs's `forward`: a slirp hostfwd to the guest's port 80, reached from the host.
    qs = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    qs.settimeout(20)
    qs.connect(os.path.join(d, "qmp.sock"))
    qf = qs.makefile("rwb")
    qf.readline()
    def qmp(execute, **arguments):
        qf.write(json.dumps({"execute": execute, "arguments": arguments}).encode() + b"\n")
        qf.flush()
        while True:
            r = json.loads(qf.readline())
            if "error" in r:
                raise Fail("QMP %s: %s" % (execute, r["error"]))
            if "return" in r:
                return r["return"]
    qmp("qmp_capabilities")
    ps = socket.socket()
    ps.bind(("127.0.0.1", 0))
    hport = ps.getsockname()[1]
    ps.close()
    qmp("human-monitor-command", **{"command-line": "hostfwd_add user0 tcp:127.0.0.1:%d-:80" % hport})
    page = urllib.request.urlopen("http://127.0.0.1:%d/" % hport, timeout=20).read()
    if page != b"attestfs debian guest\n":
        raise Fail("forwarded page %r" % page)
    qs.close()
    log("host 127.0.0.1:%d -> guest port 80 (hostfwd on user0) serves the page" % hport)

    t = time.monotonic()
    s2.send("exit")
    s2.wait_for(BANNER, 10)
    if s2.ask("echo again") != b"again":
        raise Fail("after exit")
    log("respawn after exit: banner again in %.0f ms" % ((time.monotonic() - t) * 1000))

    if reboot_step:
        t = time.monotonic()
        log("`systemctl reboot` at %.2f s after QEMU start" % (t - t0))
        s0.send("systemctl reboot")
        for c in shells:
            c.wait_for(BANNER, 90)
        tb = time.monotonic() - t
        if s0.ask("systemctl is-system-running --wait", 120) != b"running" or qemu.poll() is not None:
            raise Fail("after reboot")
        log("reboot: banners again on all ports %.2f s, running %.2f s after `systemctl reboot`"
            % (tb, time.monotonic() - t))

    t = time.monotonic()
    s0.send("systemctl poweroff")
    try:
        qrc = qemu.wait(60)
    except subprocess.TimeoutExpired:
        raise Fail("QEMU still running 60 s after poweroff")
    if qrc != 0:
        raise Fail("QEMU exited with %d after poweroff" % qrc)
    log("poweroff: QEMU exited (rc 0) %.2f s after `systemctl poweroff`" % (time.monotonic() - t))
    if verbose:
        log("serial log (seconds after QEMU start):\n" + "\n".join(
            "%7.2f %s" % (t, l.decode(errors="replace")) for t, l in console_lines))
    log("OK")
    rc = 0
except Fail as e:
    log("FAIL: %s" % e)
    log("serial log tail:\n%s" % bytes(console_buf[-3000:]).decode(errors="replace"))
finally:
    if qemu is not None and qemu.poll() is None:
        qemu.kill()
        qemu.wait()
sys.exit(rc)
EOF
PY=$!
wait "$PY"
