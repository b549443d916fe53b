"""Hybrid vsock (Firecracker's and Cloud Hypervisor's host side) over QEMU virtserialports.

The VMM binds uds_path. A host connection sends "CONNECT <port>\\n"; the VMM connects it to
the guest's listener on that port and answers "OK <host_port>\\n" (host ports from 1 << 30),
or closes the connection without a word when nothing listens. Here the guest's listener on
port $FAKE_VMM_VSOCK_PORT (1024) is the set of virtserialports attestfs.shell.K: a connection
gets the lowest K whose guest side is open (QMP VSERPORT_CHANGE) and that no other connection
holds, and bytes are spliced both ways. Firecracker takes the request from the first read
only (partial=False); Cloud Hypervisor accumulates up to 32 bytes.
"""
import os
import socket
import threading

GUEST_PORT = int(os.environ.get("FAKE_VMM_VSOCK_PORT", "1024"))
CONNECT_TIMEOUT = 2.0   # CH's; FC waits for the first read the same way


class Mux:
    def __init__(self, uds_path, vmm, partial):
        """Binds uds_path (OSError when it exists: the VMMs do not unlink a stale one)."""
        self.path = uds_path
        self.vmm = vmm
        self.partial = partial
        self.lock = threading.Lock()      # guards conns, busy, next_host_port
        self.conns = {}                   # host socket -> (guest port K, qemu socket)
        self.next_host_port = 1 << 30
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            self.sock.bind(uds_path)
        except OSError:
            self.sock.close()
            raise
        self.sock.listen(64)
        self.closed = False
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self):
        while True:
            try:
                c, _ = self.sock.accept()
            except OSError:
                return
            threading.Thread(target=self._conn, args=(c,), daemon=True).start()

    def _request(self, c):
        """The port asked for, and any bytes after the request line; None: drop."""
        c.settimeout(CONNECT_TIMEOUT)
        buf = b""
        try:
            while b"\n" not in buf and len(buf) < 32:
                d = c.recv(32 - len(buf))
                if not d:
                    return None
                buf += d
                if not self.partial:
                    break
        except OSError:
            return None
        c.settimeout(None)
        line, nl, rest = buf.partition(b"\n")
        if not nl or not line.lower().startswith(b"connect "):
            return None
        try:
            return int(line[8:].strip()), rest
        except ValueError:
            return None

    def _conn(self, c):
        req = self._request(c)
        guest = self.vmm.guest
        if req is None or req[0] != GUEST_PORT or guest is None or not self.vmm.running():
            self.vmm.log("vsock: refused %r" % (req,))
            c.close()
            return
        with self.lock:
            busy = set(k for k, _ in self.conns.values())
            k = guest.free_port(busy)
            if k is not None:
                self.conns[c] = (k, None)
        if k is None:
            self.vmm.log("vsock: CONNECT %d: no guest port open" % req[0])
            c.close()
            return
        try:
            q = guest.connect_channel(k)
        except Exception as e:  # qemu gone
            self.vmm.log("vsock: port %d: %s" % (k, e))
            self._drop(c)
            return
        with self.lock:
            self.conns[c] = (k, q)
            hp = self.next_host_port
            self.next_host_port += 1
        self.vmm.log("vsock: CONNECT %d -> attestfs.shell.%d, OK %d" % (req[0], k, hp))
        try:
            c.sendall(b"OK %d\n" % hp)
            if req[1]:
                q.sendall(req[1])
        except OSError:
            self._drop(c)
            return
        threading.Thread(target=self._pump, args=(q, c), daemon=True).start()
        self._pump(c, q)

    def _pump(self, src, dst):
        try:
            while True:
                d = src.recv(65536)
                if not d:
                    break
                dst.sendall(d)
        except OSError:
            pass
        self._drop(src if src in self.conns else dst)

    def _drop(self, c):
        with self.lock:
            k, q = self.conns.pop(c, (None, None))
        for s in (c, q):
            if s is None:
                continue
            try:
                s.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            s.close()

    def reset(self):
        """Every connection closed (the VMMs' vsock transport reset)."""
        with self.lock:
            cs = list(self.conns)
        for c in cs:
            self._drop(c)
        self.vmm.log("vsock: reset, %d connections closed" % len(cs))

    def close(self):
        self.reset()
        self.sock.close()
