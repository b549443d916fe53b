"""The pinned driver's two exception types (test_driver/errors.py), and ours."""


class MachineError(Exception):
    """Not the test author's fault: the machine, the mount or a tool failed.
    The driver prints the whole traceback and exits 1."""


class RequestedAssertionFailed(AssertionError):
    """A check the test asked for failed (succeed, fail, wait_* timeouts,
    t.assert*). The driver prints only the test script's frames, exits 1."""


class NotSupported(MachineError):
    """A call this machine's backend or guest cannot serve (no screen, no
    systemd, no X server, ...). The message says why."""
