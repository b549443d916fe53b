#!/usr/bin/env python3
"""Runs tests/python/test_*.py (unittest, standard library) and prints TAP,
which tests/run-check.sh counts: `make pytest`."""
import os
import sys
import unittest

HERE = os.path.dirname(os.path.abspath(__file__))


class TapResult(unittest.TestResult):
    def __init__(self, *args, **kwargs):  # type: ignore
        super().__init__(*args, **kwargs)
        self.n = 0

    def _line(self, ok: bool, test, note: str = "") -> None:  # type: ignore
        self.n += 1
        print(f"{'ok' if ok else 'not ok'} {self.n} - {test.id()}{note}", flush=True)

    def addSuccess(self, test):  # type: ignore
        super().addSuccess(test)
        self._line(True, test)

    def addSkip(self, test, reason):  # type: ignore
        super().addSkip(test, reason)
        self._line(True, test, f" # skip {reason}")

    def _bad(self, test, err, kind):  # type: ignore
        self._line(False, test)
        for line in self._exc_info_to_string(err, test).splitlines():
            print(f"# {line}")

    def addFailure(self, test, err):  # type: ignore
        super().addFailure(test, err)
        self._bad(test, err, "failure")

    def addError(self, test, err):  # type: ignore
        super().addError(test, err)
        # an error in setUpClass/tearDownClass has no test of its own
        self._bad(test if hasattr(test, "id") else unittest.case._SubTest, err, "error")

    def addSubTest(self, test, subtest, err):  # type: ignore
        super().addSubTest(test, subtest, err)
        if err is not None:
            self._bad(subtest, err, "failure")


def main() -> int:
    suite = unittest.defaultTestLoader.discover(HERE, pattern="test_*.py", top_level_dir=HERE)
    print(f"1..{suite.countTestCases()}")
    result = TapResult()
    suite.run(result)
    return 0 if result.wasSuccessful() else 1


if __name__ == "__main__":
    sys.exit(main())
