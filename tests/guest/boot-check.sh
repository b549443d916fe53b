#!/bin/sh
# tests/guest/boot-check.sh CACHE_DIR [tiny|tiny-hvc0] — self-test of a guest built by build.sh.
#
# Boots the guest under QEMU (TCG) with attestfs's command line: this script LISTENS on the unix
# sockets and QEMU CONNECTS to them (chardevs without `server`). Checks for tiny: the banner on all 4
# shell ports within 60 s, `echo` on each port, the serial "ready" line, the hostname from
# attestfs.hostname=, the applets attestfs needs, a shell respawn after `exit`, concurrency between
# ports, a 1 MiB binary transfer, a host disconnect (EOF, then a new banner once QMP chardev-change
# reconnects the port), `reboot` (banners again) and finally `poweroff` (QEMU exits by itself).
# For tiny-hvc0: banner on /dev/hvc0, `echo` (raw: no CR), `reboot`, `poweroff`.
# Set BOOT_CHECK_REBOOT=0 to skip the reboot step. QEMU is always killed on exit.
# (python3 is used by this self-test only; attestfs itself is C.)
set -eu
if [ $# -lt 1 ] || [ $# -gt 2 ]; then
	echo "usage: $0 CACHE_DIR [tiny|tiny-hvc0]" >&2
	exit 2
fi
CACHE=$1
VARIANT=${2:-tiny}
case $VARIANT in tiny | tiny-hvc0) ;; *)
	echo "unknown variant $VARIANT" >&2
	exit 2
	;;
esac
for f in "$CACHE/$VARIANT/vmlinuz" "$CACHE/$VARIANT/initrd.gz"; do
	[ -r "$f" ] || {
		echo "missing $f (run tests/guest/build.sh $CACHE)" >&2
		exit 1
	}
done

DIR=$(mktemp -d "${TMPDIR:-/tmp}/attestfs-boot-check.XXXXXX")
PY=
cleanup() {
	rc=$?
	[ -z "$PY" ] || kill "$PY" 2>/dev/null || true
	if [ -s "$DIR/qemu.pid" ]; then
		q=$(cat "$DIR/qemu.pid")
		if kill -0 "$q" 2>/dev/null; then
			kill -9 "$q" 2>/dev/null || true
			echo "boot-check: killed QEMU $q" >&2
		fi
	fi
	rm -rf "$DIR"
	exit $rc
}
trap cleanup EXIT
trap 'exit 130' INT TERM HUP

PYTHONPATH=$(cd "$(dirname "$0")" && pwd) python3 - "$CACHE" "$VARIANT" "$DIR" <<'EOF' &
import base64, hashlib, json, os, select, signal, socket, subprocess, sys, threading, time

cache, variant, d = sys.argv[1:4]
hvc = variant == "tiny-hvc0"
nports = 1 if hvc else 4
hostname = "bootcheck"
BANNER = b"Spawning backdoor root shell..."
reboot_step = os.environ.get("BOOT_CHECK_REBOOT", "1") != "0"
signal.signal(signal.SIGTERM, lambda *a: sys.exit(143))

import bootcheck
from bootcheck import Conn, Fail, listen, log

bootcheck.PREFIX = "boot-check[%s]" % variant
bootcheck.STATE_DIR = d
bootcheck.ASK_TIMEOUT = 20

def qmp_session():
    q = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    q.settimeout(20)  # QEMU serves one QMP client at a time: a second one would wait forever
    q.connect(os.path.join(d, "qmp.sock"))
    f = q.makefile("rwb")
    f.readline()  # greeting
    def cmd(execute, **arguments):
        f.write(json.dumps({"execute": execute, "arguments": arguments}).encode() + b"\n")
        f.flush()
        while True:
            try:
                r = json.loads(f.readline())
            except (OSError, ValueError) as e:
                raise Fail("QMP %s: %s" % (execute, e))
            if "error" in r:
                raise Fail("QMP %s: %s" % (execute, r["error"]))
            if "return" in r:
                return r["return"]
    cmd("qmp_capabilities")
    return cmd

console_buf = bytearray()
def drain_console(sock):
    with open(os.path.join(d, "serial.log"), "wb") as f:
        while True:
            data = sock.recv(65536)
            if not data:
                return
            console_buf.extend(data)
            f.write(data)
            f.flush()

lsocks = {"console": listen("console.sock")}
for i in range(nports):
    lsocks["shell.%d" % i] = listen("shell.%d.sock" % i)

k = os.path.join(cache, variant, "vmlinuz")
i_ = os.path.join(cache, variant, "initrd.gz")
args = ["qemu-system-x86_64", "-accel", "tcg", "-nodefaults", "-no-user-config", "-display", "none",
        "-vga", "std", "-machine", "q35", "-cpu", "max", "-smp", "1", "-m", "256",
        "-kernel", k, "-initrd", i_,
        "-append", "console=ttyS0 quiet panic=-1 attestfs.hostname=" + hostname,
        "-chardev", "socket,id=console,path=%s/console.sock" % d, "-serial", "chardev:console",
        "-qmp", "unix:%s/qmp.sock,server=on,wait=off" % d,
        "-pidfile", "%s/qemu.pid" % d,
        "-device", "virtio-serial-pci,id=vser0"]
if hvc:
    args += ["-chardev", "socket,id=shell0,path=%s/shell.0.sock" % d, "-device", "virtconsole,chardev=shell0"]
else:
    for n in range(nports):
        args += ["-chardev", "socket,id=shell%d,path=%s/shell.%d.sock" % (n, d, n),
                 "-device", "virtserialport,bus=vser0.0,chardev=shell%d,name=attestfs.shell.%d" % (n, n)]
args += ["-device", "virtio-rng-pci", "-netdev", "user,id=user0,restrict=on",
         "-device", "virtio-net-pci,netdev=user0"]

qemu = None
rc = 1
try:
    t0 = time.monotonic()
    qemu = subprocess.Popen(args, stdin=subprocess.DEVNULL, stdout=open(os.path.join(d, "qemu.log"), "wb"),
                            stderr=subprocess.STDOUT)
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
    shells = [conns["shell.%d" % n] for n in range(nports)]

    def banners(timeout, t_start):
        end = t_start + timeout
        first = last = None
        for c in shells:
            c.wait_for(BANNER, max(0.0, end - time.monotonic()))
            t = time.monotonic() - t_start
            first = t if first is None else min(first, t)
            last = t
        return first, last

    first, last = banners(60, t0)
    log("banner on %d port(s): first %.2f s, all %.2f s after QEMU start" % (nports, first, last))

    for n, c in enumerate(shells):
        r = c.ask("echo hi%d" % n)
        if r != b"hi%d" % n:
            raise Fail("%s: echo answered %r" % (c.name, r))
    log("echo answered on %d port(s)" % nports)
    s0 = shells[0]

    r = s0.ask("hostname")
    if r != hostname.encode():
        raise Fail("hostname is %r, want %r" % (r, hostname))
    missing = s0.ask("m=; for c in base64 stat wc sh poweroff reboot timeout setsid sleep kill md5sum; do "
                     "command -v $c >/dev/null || m=\"$m $c\"; done; echo \"missing:$m\"")
    if missing != b"missing:":
        raise Fail("guest lacks applets: %r" % missing)
    log("hostname %s; base64 stat wc sh poweroff ... present" % hostname)

    want = "attestfs %s guest: backdoor on %s" % (variant, "hvc0" if hvc else "%d ports" % nports)
    if want.encode() not in console_buf:
        raise Fail("serial log lacks %r: %r" % (want, bytes(console_buf[-1000:])))
    log("serial: %s" % want)

    # `exit` ends the shell; it is respawned and greets again on the same connection.
    c = shells[-2] if len(shells) > 1 else shells[0]
    t = time.monotonic()
    c.send("exit")
    c.wait_for(BANNER, 10)
    r = c.ask("echo again")
    if r != b"again":
        raise Fail("after exit: %r" % r)
    log("respawn after exit: banner again in %.0f ms" % ((time.monotonic() - t) * 1000))

    if hvc:
        r = s0.ask("printf 'a\\tb\\n'; printf 'c\\n'")
        r2 = s0.line(5)
        if r != b"a\tb" or r2 != b"c":
            raise Fail("hvc0 not raw: %r %r" % (r, r2))
        # Like NixOS's service, the shell is a session leader with /dev/hvc0 as controlling tty.
        r = s0.ask("read -r _ _ _ _ _ sid tty _ </proc/$$/stat; echo $(($$ - sid)) $tty")
        if r != b"0 %d" % (229 << 8):
            raise Fail("hvc0 shell: pid-sid, tty_nr = %r, want 0 %d" % (r, 229 << 8))
        log("hvc0 is raw (no CR, tabs intact) and the shell's controlling tty")
    else:

        # A long command on one port does not hold up another.
        shells[1].send("sleep 2; echo slept")
        t = time.monotonic()
        r = s0.ask("echo quick", 1.5)
        if r != b"quick":
            raise Fail("concurrency: %r" % r)
        log("port 0 answered in %.0f ms while port 1 sleeps" % ((time.monotonic() - t) * 1000))
        if shells[1].line(10) != b"slept":
            raise Fail("port 1 sleep")

        # Binary data through base64, file framing.
        t = time.monotonic()
        r = s0.ask("head -c 1048576 /dev/urandom >/tmp/r; s=$?; md5sum </tmp/r | cut -d' ' -f1; base64 -w0 /tmp/r; echo \" $s\"")
        b64, st = s0.line(30).rsplit(b" ", 1)
        data = base64.b64decode(b64)
        if len(data) != 1048576 or hashlib.md5(data).hexdigest().encode() != r or st != b"0":
            raise Fail("1 MiB transfer: len %d md5 %r vs %r st %r" % (len(data), hashlib.md5(data).hexdigest(), r, st))
        log("1 MiB binary round trip intact in %.2f s" % (time.monotonic() - t))

        # The host goes away: the guest shell reads EOF and the loop waits to greet the next
        # client. QEMU (a socket client without reconnect=) stays disconnected until QMP
        # chardev-change points the chardev at a new listening socket.
        shells[3].s.close()
        time.sleep(0.5)
        ls = listen("shell.3b.sock")
        ls.settimeout(10)
        qmp = qmp_session()
        t = time.monotonic()
        qmp("chardev-change", id="shell3", backend={"type": "socket", "data": {
            "addr": {"type": "unix", "data": {"path": os.path.join(d, "shell.3b.sock")}}, "server": False}})
        s3, _ = ls.accept()
        shells[3] = Conn(s3, "shell.3b")
        shells[3].wait_for(BANNER, 10)
        if shells[3].ask("echo new3") != b"new3":
            raise Fail("shell.3 after reconnect")
        log("host disconnect + QMP chardev-change: new banner %.0f ms after the change" % ((time.monotonic() - t) * 1000))

    if reboot_step:
        t = time.monotonic()
        s0.send("reboot")
        first, last = banners(60, t)
        for n, c in enumerate(shells):
            if c.ask("echo back%d" % n) != b"back%d" % n:
                raise Fail("%s after reboot" % c.name)
        if qemu.poll() is not None:
            raise Fail("QEMU exited on reboot")
        log("reboot: banner again on all ports %.2f s after `reboot`" % last)

    t = time.monotonic()
    s0.send("poweroff")
    try:
        qrc = qemu.wait(30)
    except subprocess.TimeoutExpired:
        raise Fail("QEMU still running 30 s after poweroff")
    if qrc != 0:
        raise Fail("QEMU exited with %d after poweroff" % qrc)
    log("poweroff: QEMU exited (rc 0) %.2f s after `poweroff`" % (time.monotonic() - t))
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
