"""Loggers with the pinned driver's output (test_driver/logger.py).

TerminalLogger writes to stderr: `machine: message`, nested headers in
bright green followed by `(finished: HEADER, in N.NN seconds)`, console lines
as `name # line` (dim) and test errors after a red `!!! `. Colours only when
stderr is a terminal: colorama is not in the standard library. XMLLogger
writes $LOGFILE's <logfile><nest><head>..</head><line>..</line></nest>
format and JunitXMLLogger one testcase per subtest (or "main") in the suite
"NixOS integration test", as junit_xml would.
"""
import os
import sys
import threading
import time
import unicodedata
import xml.etree.ElementTree as ET
from contextlib import ExitStack, contextmanager
from typing import Dict, Iterator, List, Optional
from xml.sax.saxutils import XMLGenerator
from xml.sax.xmlreader import AttributesImpl

BRIGHT_GREEN = "\033[1m\033[32m"
DIM = "\033[2m"
RED = "\033[31m"
RESET = "\033[0m"


def _prefix(message: str, attributes: Dict[str, str]) -> str:
    if "machine" in attributes:
        return f"{attributes['machine']}: {message}"
    return message


class AbstractLogger:
    def log(self, message: str, attributes: Dict[str, str] = {}) -> None:
        raise NotImplementedError

    @contextmanager
    def subtest(self, name: str, attributes: Dict[str, str] = {}) -> Iterator[None]:
        with self.nested("subtest: " + name, attributes):
            yield

    @contextmanager
    def nested(self, message: str, attributes: Dict[str, str] = {}) -> Iterator[None]:
        yield

    def info(self, *args, **kwargs) -> None:  # type: ignore
        self.log(*args, **kwargs)

    def warning(self, *args, **kwargs) -> None:  # type: ignore
        self.log(*args, **kwargs)

    def error(self, *args, **kwargs) -> None:  # type: ignore
        self.log(*args, **kwargs)

    def log_test_error(self, *args, **kwargs) -> None:  # type: ignore
        self.error(*args, **kwargs)

    def log_serial(self, message: str, machine: str) -> None:
        pass

    def print_serial_logs(self, enable: bool) -> None:
        pass

    def close(self) -> None:
        pass


class TerminalLogger(AbstractLogger):
    def __init__(self, stream=None, color: Optional[bool] = None) -> None:  # type: ignore
        self.stream = stream if stream is not None else sys.stderr
        if color is None:
            color = self.stream.isatty() and "NO_COLOR" not in os.environ
        self.color = color
        self._print_serial_logs = True
        self._lock = threading.Lock()

    def _c(self, code: str, text: str) -> str:
        return code + text + RESET if self.color else text

    def _eprint(self, text: str) -> None:
        with self._lock:
            print(text, file=self.stream, flush=True)

    def log(self, message: str, attributes: Dict[str, str] = {}) -> None:
        self._eprint(_prefix(message, attributes))

    @contextmanager
    def nested(self, message: str, attributes: Dict[str, str] = {}) -> Iterator[None]:
        self._eprint(_prefix(self._c(BRIGHT_GREEN, message), attributes))
        tic = time.time()
        yield
        toc = time.time()
        self.log(f"(finished: {message}, in {toc - tic:.2f} seconds)", attributes)

    def log_serial(self, message: str, machine: str) -> None:
        if self._print_serial_logs:
            self._eprint(self._c(DIM, f"{machine} # {message}"))

    def print_serial_logs(self, enable: bool) -> None:
        self._print_serial_logs = enable

    def log_test_error(self, *args, **kwargs) -> None:  # type: ignore
        self.log(self._c(RED, "!!! ") + args[0], *args[1:], **kwargs)


class XMLLogger(AbstractLogger):
    """The driver's $LOGFILE; serial lines queue up and are written at the
    next log line or nesting boundary, as the driver does."""

    def __init__(self, outfile: str) -> None:
        self.handle = open(outfile, "wb")
        self.xml = XMLGenerator(self.handle, encoding="utf-8")
        self.queue: List[Dict[str, str]] = []
        self._print_serial_logs = True
        self._lock = threading.Lock()
        self.xml.startDocument()
        self.xml.startElement("logfile", attrs=AttributesImpl({}))

    def close(self) -> None:
        if self.handle.closed:
            return
        self.drain()
        self.xml.endElement("logfile")
        self.xml.endDocument()
        self.handle.close()

    @staticmethod
    def sanitise(message: str) -> str:
        return "".join(ch for ch in message if unicodedata.category(ch)[0] != "C")

    def _line(self, message: str, attributes: Dict[str, str]) -> None:
        self.xml.startElement("line", attrs=AttributesImpl(attributes))
        self.xml.characters(self.sanitise(message))
        self.xml.endElement("line")

    def drain(self) -> None:
        with self._lock:
            items, self.queue = self.queue, []
        for item in items:
            msg = item.pop("msg")
            self._line(msg, item)

    def log(self, message: str, attributes: Dict[str, str] = {}) -> None:
        self.drain()
        self._line(message, attributes)

    def log_serial(self, message: str, machine: str) -> None:
        if self._print_serial_logs:
            with self._lock:
                self.queue.append({"msg": message, "machine": machine, "type": "serial"})

    def print_serial_logs(self, enable: bool) -> None:
        self._print_serial_logs = enable

    @contextmanager
    def nested(self, message: str, attributes: Dict[str, str] = {}) -> Iterator[None]:
        self.xml.startElement("nest", attrs=AttributesImpl({}))
        self.xml.startElement("head", attrs=AttributesImpl(attributes))
        self.xml.characters(message)
        self.xml.endElement("head")
        tic = time.time()
        self.drain()
        try:
            yield
        finally:
            self.drain()
            toc = time.time()
            self.log(f"(finished: {message}, in {toc - tic:.2f} seconds)")
            self.xml.endElement("nest")


class _Case:
    def __init__(self) -> None:
        self.stdout = ""
        self.stderr = ""
        self.failure = False
        self.total_secs = 0.0
        self.nested_secs = 0.0


class JunitXMLLogger(AbstractLogger):
    """One testcase per subtest (time without its nested subtests), or one
    named "main" when there are none, in the suite "NixOS integration test"."""

    def __init__(self, outfile: str) -> None:
        self.outfile = outfile
        self.suite = _Case()
        self.tests: Dict[str, _Case] = {}
        self.current: Optional[str] = None
        self._print_serial_logs = True
        self.closed = False

    def _add(self, attr: str, message: str) -> None:
        setattr(self.suite, attr, getattr(self.suite, attr) + message + os.linesep)
        if self.current is not None:
            case = self.tests[self.current]
            setattr(case, attr, getattr(case, attr) + message + os.linesep)

    def log(self, message: str, attributes: Dict[str, str] = {}) -> None:
        self._add("stdout", message)

    def error(self, *args, **kwargs) -> None:  # type: ignore
        self._add("stderr", args[0])
        self.suite.failure = True
        if self.current is not None:
            self.tests[self.current].failure = True

    @contextmanager
    def nested(self, message: str, attributes: Dict[str, str] = {}) -> Iterator[None]:
        self.log(message)
        yield

    @contextmanager
    def subtest(self, name: str, attributes: Dict[str, str] = {}) -> Iterator[None]:
        old = self.current
        self.tests.setdefault(name, _Case())
        self.current = name
        tic = time.monotonic()
        try:
            yield
        finally:
            spent = time.monotonic() - tic
            self.tests[name].total_secs = spent
            self.current = old
            if old is not None:
                self.tests[old].nested_secs += spent

    def log_serial(self, message: str, machine: str) -> None:
        if self._print_serial_logs:
            self.log(f"{machine} # {message}")

    def print_serial_logs(self, enable: bool) -> None:
        self._print_serial_logs = enable

    def close(self) -> None:
        if self.closed:
            return
        self.closed = True
        if not self.tests:
            main = self.tests.setdefault("main", _Case())
            main.failure = self.suite.failure
            main.total_secs = time.monotonic() - _START
        failures = sum(1 for c in self.tests.values() if c.failure)
        total = sum(c.total_secs - c.nested_secs for c in self.tests.values())
        root = ET.Element("testsuites", disabled="0", errors="0",
                          failures=str(failures), tests=str(len(self.tests)),
                          time=f"{total:.6f}")
        suite = ET.SubElement(root, "testsuite", disabled="0", errors="0",
                              failures=str(failures), name="NixOS integration test",
                              skipped="0", tests=str(len(self.tests)),
                              time=f"{total:.6f}")
        for name, case in self.tests.items():
            tc = ET.SubElement(suite, "testcase", name=name,
                               time=f"{case.total_secs - case.nested_secs:.6f}")
            if case.failure:
                ET.SubElement(tc, "failure", type="failure", message="test case failed")
            ET.SubElement(tc, "system-out").text = case.stdout
            ET.SubElement(tc, "system-err").text = case.stderr
        ET.SubElement(suite, "system-out").text = self.suite.stdout
        ET.SubElement(suite, "system-err").text = self.suite.stderr
        with open(self.outfile, "wb") as f:
            f.write(b'<?xml version="1.0" ?>\n')
            f.write(ET.tostring(root, encoding="utf-8"))
            f.write(b"\n")


_START = time.monotonic()


class CompositeLogger(AbstractLogger):
    def __init__(self, loggers: List[AbstractLogger]) -> None:
        self.loggers = loggers

    def add_logger(self, logger: AbstractLogger) -> None:
        self.loggers.append(logger)

    def log(self, message: str, attributes: Dict[str, str] = {}) -> None:
        for lg in self.loggers:
            lg.log(message, attributes)

    @contextmanager
    def subtest(self, name: str, attributes: Dict[str, str] = {}) -> Iterator[None]:
        with ExitStack() as stack:
            for lg in self.loggers:
                stack.enter_context(lg.subtest(name, attributes))
            yield

    @contextmanager
    def nested(self, message: str, attributes: Dict[str, str] = {}) -> Iterator[None]:
        with ExitStack() as stack:
            for lg in self.loggers:
                stack.enter_context(lg.nested(message, attributes))
            yield

    def info(self, *args, **kwargs) -> None:  # type: ignore
        for lg in self.loggers:
            lg.info(*args, **kwargs)

    def warning(self, *args, **kwargs) -> None:  # type: ignore
        for lg in self.loggers:
            lg.warning(*args, **kwargs)

    def error(self, *args, **kwargs) -> None:  # type: ignore
        # The driver's CompositeLogger.error exits; ours only logs, and the
        # caller decides (an error in cleanup must not skip the rest).
        for lg in self.loggers:
            lg.error(*args, **kwargs)

    def log_test_error(self, *args, **kwargs) -> None:  # type: ignore
        for lg in self.loggers:
            lg.log_test_error(*args, **kwargs)

    def log_serial(self, message: str, machine: str) -> None:
        for lg in self.loggers:
            lg.log_serial(message, machine)

    def print_serial_logs(self, enable: bool) -> None:
        for lg in self.loggers:
            lg.print_serial_logs(enable)

    def close(self) -> None:
        for lg in self.loggers:
            lg.close()
