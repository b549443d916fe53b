#!/usr/bin/env python3
"""fsop: system calls on the tree, each outcome printed with the errno's name.

    fsop tx FILE TEXT       a transaction: open O_RDWR, write TEXT, read to
                            the end, then read once more (also after a
                            failed write)
    fsop txt FILE TEXT      the same, opened O_RDWR|O_TRUNC
    fsop write FILE TEXT    open O_WRONLY|O_TRUNC (as `>` does), write TEXT
    fsop read FILE          open O_RDONLY, read to the end, then once more

TEXT "-" is stdin. TEXT is written whole, in as many write(2)s as the
kernel needs (a shell's printf does the same). The bytes read go to stdout
unchanged, in reads of 1 MiB. Each step's outcome goes to stderr, one line
each, flushed at once (tests poll for "write ok" to know that the read
that follows is the one that blocks):
    open ENOENT | write ok | write EFBIG | read EOF | read EREMOTEIO |
    again EOF | ...
SIGUSR1 interrupts a blocked read(2) (its handler raises, so Python does
not restart the call): the read reports EINTR. Exit status 0 when no step
failed, else 1.
"""
import errno
import os
import signal
import sys


class Interrupted(Exception):
    pass


def on_usr1(signum, frame):
    raise Interrupted()


def report(line):
    print(line, file=sys.stderr, flush=True)


def ename(e):
    # one number, two names on Linux: DESIGN.md's is EOPNOTSUPP
    if e.errno == errno.EOPNOTSUPP:
        return "EOPNOTSUPP"
    return errno.errorcode.get(e.errno, str(e.errno))


def write_all(fd, data):
    """Write like a shell: resume after a short write. ok or ENAME."""
    view = memoryview(data)
    try:
        while view:
            view = view[os.write(fd, view):]
    except OSError as e:
        return ename(e)
    return "ok"


def read_all(fd):
    """Read to EOF or the first error; EOF or ENAME."""
    out = sys.stdout.buffer
    while True:
        try:
            b = os.read(fd, 1 << 20)
        except Interrupted:
            return "EINTR"
        except OSError as e:
            return ename(e)
        if not b:
            return "EOF"
        out.write(b)
        out.flush()


def main(argv):
    op, path = argv[1], argv[2]
    flags = {"tx": os.O_RDWR, "txt": os.O_RDWR | os.O_TRUNC,
             "write": os.O_WRONLY | os.O_TRUNC, "read": os.O_RDONLY}[op]
    signal.signal(signal.SIGUSR1, on_usr1)
    try:
        fd = os.open(path, flags)
    except OSError as e:
        report(f"open {ename(e)}")
        return 1
    if op != "read":
        data = sys.stdin.buffer.read() if argv[3] == "-" else argv[3].encode()
        what = write_all(fd, data)
        report(f"write {what}")
        if op == "write":
            return 0 if what == "ok" else 1
        # after a failed write a transaction's reads must fail too
        failed = what != "ok"
    else:
        failed = False
    what = read_all(fd)
    report(f"read {what}")
    report(f"again {read_all(fd)}")
    return 1 if failed or what != "EOF" else 0


sys.exit(main(sys.argv))
