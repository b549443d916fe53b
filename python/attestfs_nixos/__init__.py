"""attestfs_nixos: the NixOS test driver's test-script API over an attestfs
mount. Standard library only, Python >= 3.9.

Pinned to nixpkgs' driver (nixos/lib/test-driver/src/test_driver/), read at:
  machine/__init__.py  019697db058b6738eda0cb2cdcc9f5c014c914cb  (Machine API)
  driver.py            003d58163f469fbeb0d51e4ef8d46af622759627  (symbols)
  logger.py            0348869915cdf12bbc04a5ab180a9de587ef69e1  (log lines)
  polling_condition.py 761ab5f3f81994cae3cc8da32d1d9d42088d6301
  __init__.py          00f4f345a8c428a9fc2f0a25ac295a5f9c021c39  (command line)
The stored copies of the four files are not all of one commit; they agree
with each other (BaseMachine/QemuMachine, RequestedAssertionFailed,
retry(timeout_seconds)). pinned.py lists the names.

    import attestfs_nixos
    globals().update(attestfs_nixos.symbols())      # $VMS: the mount
    machine.succeed("uname -a")
"""
import os
from typing import Any, Dict, Optional

from .driver import AssertionTester, Driver, PollingCondition, PollingConditionError, pythonize_name
from .errors import MachineError, NotSupported, RequestedAssertionFailed
from .logger import CompositeLogger, JunitXMLLogger, TerminalLogger, XMLLogger
from .machine import Machine, retry

__all__ = [
    "AssertionTester", "CompositeLogger", "Driver", "JunitXMLLogger", "Machine",
    "MachineError", "NotSupported", "PollingCondition", "PollingConditionError",
    "RequestedAssertionFailed", "TerminalLogger", "XMLLogger", "pythonize_name",
    "retry", "symbols",
]


def symbols(vms: Optional[str] = None, out_dir: Optional[str] = None) -> Dict[str, Any]:
    """The test-script globals over the mount at VMS (default $VMS)."""
    vms = vms or os.environ.get("VMS")
    if not vms:
        raise MachineError("no mount: pass vms= or set VMS (attestfs-run sets it)")
    driver = Driver(vms, out_dir or os.getcwd(), CompositeLogger([TerminalLogger()]))
    return driver.test_symbols(announce=False)
