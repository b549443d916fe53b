#!/usr/bin/env python3
"""Drives attestfs-shell through a pty on the host, as a user at a terminal.

    shell-drive.py SHELL_BIN MACHINE_DIR

Runs `SHELL_BIN -c 'exec sh' MACHINE_DIR; echo status=$?; stty -a` on a new
pty sized 33x111 and prints what it saw, one fact a line, for the bats file
(tests/contract/t0080-shell.bats) to assert. Every wait is on a pattern,
with a deadline (ATTESTFS_TEST_TIMEOUT) that only a broken shell reaches.
"""
import os
import pty
import re
import select
import struct
import sys
import termios
import time
import fcntl

DEADLINE = float(os.environ.get("ATTESTFS_TEST_TIMEOUT", "120"))


class Term:
    def __init__(self, argv, rows, cols):
        self.pid, self.fd = pty.fork()
        if self.pid == 0:
            os.execvp(argv[0], argv)
        self.resize(rows, cols)
        self.buf = b""

    def resize(self, rows, cols):
        # the kernel sends SIGWINCH to the terminal's foreground group
        fcntl.ioctl(self.fd, termios.TIOCSWINSZ,
                    struct.pack("HHHH", rows, cols, 0, 0))

    def send(self, text):
        os.write(self.fd, text.encode())

    def expect(self, pattern):
        end = time.monotonic() + DEADLINE
        while True:
            m = re.search(pattern, self.buf)
            if m:
                self.buf = self.buf[m.end():]
                return m
            left = end - time.monotonic()
            if left <= 0:
                sys.exit("no %r in %r" % (pattern, self.buf[-400:]))
            r, _, _ = select.select([self.fd], [], [], left)
            if r:
                try:
                    data = os.read(self.fd, 65536)
                except OSError:
                    data = b""
                if not data:
                    sys.exit("EOF before %r in %r" % (pattern, self.buf[-400:]))
                self.buf += data


def main():
    shell_bin, machine = sys.argv[1], sys.argv[2]
    if len(sys.argv) > 3:
        return latency(shell_bin, machine, int(sys.argv[3]))
    script = '"$0" -c "exec sh" "$1"; echo "status=$?"; stty -a'
    t = Term(["sh", "-c", script, shell_bin, machine], 33, 111)
    t.send("PS1='P''S> '; export PS1\r")
    t.expect(rb"PS> ")
    # Both answers print a line: an optional one matched before it
    # arrived (a loaded host) read as "off".
    t.send("tty; stty size; case $- in *m*) echo jobctl on;; *) echo jobctl off;; esac\r")
    m = t.expect(rb"(/dev/pts/\d+)\r\n(\d+ \d+)\r\njobctl (on|off)\r\n")
    print("tty", m.group(1).decode())
    print("size", m.group(2).decode())
    print("jobctl", m.group(3).decode())
    t.expect(rb"PS> ")
    t.resize(40, 120)
    # the guest sees it once ctl winsize was answered: poll as a user would
    for _ in range(100):
        t.send("stty size\r")
        m = t.expect(rb"(\d+ \d+)\r\nPS> ")
        if m.group(1) == b"40 120":
            break
    print("resized", m.group(1).decode())
    # Ctrl-C ends the foreground command, not the shell; the next line runs
    # only after sleep ended, so a lost Ctrl-C shows as the deadline
    t.send("sleep 1000\r")
    t.expect(rb"sleep 1000\r\n")
    t.send("\x03")
    t.send("echo rc=$?\r")
    m = t.expect(rb"rc=(\d+)\r\n")
    print("after-ctrl-c", m.group(1).decode())
    t.send("echo still here\r")
    t.expect(rb"\nstill here\r\n")
    print("shell alive")
    t.send("exit 7\r")
    m = t.expect(rb"status=(\d+)\r\n")
    print("status", m.group(1).decode())
    m = t.expect(rb"(-?)icanon.*?\s(-?)echo\s")
    print("restored", "yes" if not m.group(1) and not m.group(2) else "no")
    os.waitpid(t.pid, 0)


def latency(shell_bin, machine, rounds):
    """shell-drive.py SHELL_BIN MACHINE_DIR N: a key's echo and a command's
    answer, N rounds each, as a user sees them (medians and maxima, ms)."""
    t = Term([shell_bin, "-c", "exec sh", machine], 24, 80)
    t.send("PS1='P''S> '; export PS1\r")
    t.expect(rb"PS> ")
    echo, answer = [], []
    for i in range(rounds):
        start = time.monotonic()
        t.send("x")
        t.expect(rb"x")
        echo.append(time.monotonic() - start)
        start = time.monotonic()
        t.send("\x7f: %d\r" % i)
        t.expect(rb"PS> ")
        answer.append(time.monotonic() - start)
    t.send("exit\r")
    os.waitpid(t.pid, 0)
    for name, v in (("key echo", echo), ("command answer", answer)):
        v.sort()
        print("%s: median %.1f ms, max %.1f ms (%d rounds)"
              % (name, v[len(v) // 2] * 1000, v[-1] * 1000, len(v)))


main()
