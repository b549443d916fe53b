"""The VM harness the guests' boot checks share (developer self-tests; attestfs itself is C).

The check LISTENS on the unix sockets and QEMU CONNECTS, as attestfs does. Set PREFIX, STATE_DIR
and ASK_TIMEOUT before use.
"""
import os
import select
import socket
import time

PREFIX = "boot-check"
STATE_DIR = "."
ASK_TIMEOUT = 20


def log(msg):
    print("%s: %s" % (PREFIX, msg), flush=True)


class Fail(Exception):
    pass


def listen(name):
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.bind(os.path.join(STATE_DIR, name))
    s.listen(1)
    return s


class Conn:
    def __init__(self, sock, name):
        self.s, self.name, self.buf = sock, name, b""

    def line(self, timeout):
        end = time.monotonic() + timeout
        while b"\n" not in self.buf:
            left = end - time.monotonic()
            if left <= 0 or not select.select([self.s], [], [], left)[0]:
                raise Fail("%s: timeout after %.0f s waiting for a line (have %r)" % (self.name, timeout, self.buf[-200:]))
            data = self.s.recv(65536)
            if not data:
                raise Fail("%s: EOF (have %r)" % (self.name, self.buf[-200:]))
            self.buf += data
        line, self.buf = self.buf.split(b"\n", 1)
        return line

    def wait_for(self, want, timeout):
        end = time.monotonic() + timeout
        while True:
            line = self.line(max(0.0, end - time.monotonic()))
            if line == want:
                return
            log("%s: skipped %r" % (self.name, line))

    def send(self, cmd):
        self.s.sendall(cmd.encode() + b"\n")

    def ask(self, cmd, timeout=None):
        self.send(cmd)
        return self.line(ASK_TIMEOUT if timeout is None else timeout)
