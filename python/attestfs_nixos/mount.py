"""The mount's files, one function a kind of access (README "The tree").

A transaction (exec, wait, qmp) is one write of the request, then reads to
EOF on the same descriptor; a failure of the read after the last byte is
the call's errno (EREMOTEIO: the command failed, ETIMEDOUT, EHOSTDOWN, ...)
with the reason in <m>/log. Nothing here knows the NixOS driver.
"""
import errno
import os
from typing import Optional, Tuple


class TxError(OSError):
    """A transaction whose read failed: errno, and the bytes read before."""

    def __init__(self, err: int, path: str, output: bytes) -> None:
        super().__init__(err, os.strerror(err), path)
        self.output = output


def tx(path: str, request: str) -> bytes:
    """Write REQUEST to PATH, read the answer to EOF. TxError on failure."""
    fd = os.open(path, os.O_RDWR)
    try:
        data = request.encode()
        if os.write(fd, data) != len(data):
            raise OSError(errno.EIO, "short write", path)
        chunks = []
        while True:
            try:
                chunk = os.read(fd, 1 << 16)
            except OSError as e:
                raise TxError(e.errno, path, b"".join(chunks)) from None
            if not chunk:
                return b"".join(chunks)
            chunks.append(chunk)
    finally:
        os.close(fd)


def write(path: str, text: str) -> None:
    """One write (a control message is one write), raising OSError."""
    fd = os.open(path, os.O_WRONLY)
    try:
        os.write(fd, text.encode() if isinstance(text, str) else text)
    finally:
        os.close(fd)


def read(path: str) -> bytes:
    with open(path, "rb") as f:
        return f.read()


def read_text(path: str) -> str:
    return read(path).decode(errors="replace")


def read_from(path: str, offset: int) -> Tuple[bytes, int]:
    """What was added to a growing file since OFFSET, and the new offset."""
    try:
        with open(path, "rb") as f:
            f.seek(offset)
            data = f.read()
    except OSError:
        return b"", offset
    return data, offset + len(data)


def last_reason(log_path: str, prefix: Optional[str] = None, err: int = 0) -> str:
    """The newest line of a machine's log (starting with PREFIX after its
    time stamp, if given), without the time stamp: why a call failed. The
    daemon may follow the reason with a line that only names the errno
    (`wait unit x: Remote I/O error`): with ERR, that line is passed over."""
    try:
        lines = read_text(log_path).splitlines()
    except OSError:
        return ""
    generic = ": " + os.strerror(err) if err else None
    for line in reversed(lines):
        text = line.split(" ", 1)[1] if " " in line else line
        if prefix is not None and not text.startswith(prefix):
            continue
        if generic and text.endswith(generic):
            continue
        return text
    return ""
