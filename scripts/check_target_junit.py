"""Check a pytest JUnit XML report of a run against a remote target (``--appsync-target``).

Usage::

    python scripts/check_target_junit.py REPORT.xml --min-passed N

Passes when at least N tests passed, none failed or errored, and every skipped test was
skipped as emulator-only (its reason starts with ``emulator-only``, the reason the appsync
plugin gives).  Prints a one-line summary, then each skipped test with its reason.  Exit
status 0 on success, 1 otherwise.
"""

from __future__ import annotations

import argparse
import sys
import xml.etree.ElementTree as ET
from pathlib import Path

__all__ = ["EMULATOR_ONLY", "check", "main"]

EMULATOR_ONLY = "emulator-only"
"""How the plugin's skip reasons for emulator-only tests start."""


def check(report: Path, min_passed: int) -> tuple[list[str], list[str]]:
    """Return ``(lines to print, problems)`` for ``report``."""
    passed, failed, skipped = 0, [], []
    for case in ET.parse(report).getroot().iter("testcase"):
        name = f"{case.get('classname', '')}::{case.get('name', '')}"
        outcome = next((c for c in case if c.tag in ("failure", "error", "skipped")), None)
        if outcome is None:
            passed += 1
        elif outcome.tag == "skipped":
            skipped.append((name, outcome.get("message", "")))
        else:
            failed.append(name)
    lines = [f"target: {passed} passed, {len(failed)} failed, {len(skipped)} skipped"]
    lines += [f"  skipped {name}: {reason}" for name, reason in skipped]
    problems = [f"failed: {name}" for name in failed]
    if passed < min_passed:
        problems.append(f"only {passed} test(s) passed, at least {min_passed} must")
    problems += [
        f"skipped but not emulator-only: {name}: {reason}"
        for name, reason in skipped
        if not reason.removeprefix("Skipped: ").startswith(EMULATOR_ONLY)
    ]
    return lines, problems


def main(argv: list[str] | None = None) -> int:
    """Run the check; return the exit status."""
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("report", type=Path)
    parser.add_argument("--min-passed", type=int, required=True, metavar="N")
    args = parser.parse_args(argv)
    lines, problems = check(args.report, args.min_passed)
    print("\n".join(lines))
    for problem in problems:
        print(f"target: {problem}", file=sys.stderr)
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
