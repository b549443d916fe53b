"""Cloud Hypervisor's serial socket (`serial: {mode: Socket, socket: PATH}`, serial_manager.rs).

The VMM listens on PATH. One client at a time: a new connection shuts the previous one down.
Guest output produced while no client is connected goes into a ring buffer that is replayed
to the next client. Here the guest's ttyS0 is QEMU's chardev ser0.sock, which this relay holds
open for the VM's lifetime (so QEMU never drops output).
"""
import socket
import threading

RING = 64 * 1024


class Relay:
    def __init__(self, path, log):
        """Binds path (OSError when it exists); attach() connects a guest's ser0."""
        self.path = path
        self.log = log
        self.lock = threading.Lock()      # guards client, ring
        self.client = None
        self.ring = bytearray()
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            self.sock.bind(path)
        except OSError:
            self.sock.close()
            raise
        self.sock.listen(4)
        self.q = None
        threading.Thread(target=self._accept, daemon=True).start()

    def attach(self, guest):
        """The serial of a (new) QEMU: connected now, before the guest runs."""
        self.q = guest.connect_serial()
        threading.Thread(target=self._from_guest, args=(self.q,), daemon=True).start()

    def _from_guest(self, q):
        while True:
            try:
                d = q.recv(65536)
            except OSError:
                d = b""
            if not d:
                return
            with self.lock:
                c = self.client
                if c is None:
                    self.ring += d
                    del self.ring[:-RING]
                    continue
            try:
                c.sendall(d)
            except OSError:
                self._drop(c)

    def _accept(self):
        while True:
            try:
                c, _ = self.sock.accept()
            except OSError:
                return
            with self.lock:
                old, self.client = self.client, c
                replay, self.ring = bytes(self.ring), bytearray()
            if old:
                self._shut(old)
            self.log("serial: client connected (%d bytes replayed)" % len(replay))
            try:
                c.sendall(replay)
            except OSError:
                self._drop(c)
                continue
            threading.Thread(target=self._to_guest, args=(c,), daemon=True).start()

    def _to_guest(self, c):
        while True:
            try:
                d = c.recv(65536)
                if not d:
                    break
                self.q.sendall(d)
            except OSError:
                break
        self._drop(c)

    def _drop(self, c):
        with self.lock:
            if self.client is c:
                self.client = None
        self._shut(c)

    @staticmethod
    def _shut(c):
        try:
            c.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass
        c.close()

    def close(self):
        self.sock.close()
        with self.lock:
            c, self.client = self.client, None
        if c:
            self._shut(c)
        if self.q:
            self.q.close()
