"""Check a pytest JUnit XML report: tests ran, none failed, required suites were not skipped.

Usage::

    python scripts/check_junit.py REPORT.xml [--require-run PREFIX ...]

``--require-run tests.interop`` fails when every test whose classname starts with the
prefix was skipped (or none exists), so CI cannot pass while the Amplify interop tests
silently skip.  Exit status 0 on success, 1 otherwise; a one-line summary is printed.
"""

from __future__ import annotations

import argparse
import sys
import xml.etree.ElementTree as ET
from collections import Counter
from pathlib import Path

__all__ = ["main", "summarize"]


def summarize(report: Path) -> tuple[Counter[str], dict[str, Counter[str]]]:
    """Return outcome counts overall and per test classname."""
    total: Counter[str] = Counter()
    by_class: dict[str, Counter[str]] = {}
    for case in ET.parse(report).getroot().iter("testcase"):
        outcome = "passed"
        for child in case:
            if child.tag in ("failure", "error"):
                outcome = "failed"
                break
            if child.tag == "skipped":
                outcome = "skipped"
        total[outcome] += 1
        by_class.setdefault(case.get("classname", ""), Counter())[outcome] += 1
    return total, by_class


def main(argv: list[str] | None = None) -> int:
    """Run the checks; return the exit status."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("report", type=Path)
    parser.add_argument("--require-run", action="append", default=[], metavar="PREFIX")
    args = parser.parse_args(argv)
    total, by_class = summarize(args.report)
    print(
        f"junit: {total['passed']} passed, {total['failed']} failed, "
        f"{total['skipped']} skipped ({sum(total.values())} collected)"
    )
    status = 0
    if total["passed"] == 0:
        print("junit: no test passed (nothing collected?)", file=sys.stderr)
        status = 1
    if total["failed"]:
        print(f"junit: {total['failed']} test(s) failed", file=sys.stderr)
        status = 1
    for prefix in args.require_run:
        ran = sum(c["passed"] + c["failed"] for n, c in by_class.items() if n.startswith(prefix))
        if ran == 0:
            print(f"junit: no test under {prefix!r} ran (all skipped or none)", file=sys.stderr)
            status = 1
    return status


if __name__ == "__main__":
    sys.exit(main())
