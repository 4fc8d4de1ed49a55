"""Measure what ``appsync_server`` + ``appsync_client`` cost per test.

Generates a temporary project with N async tests that use both fixtures and N bare async
tests, runs pytest on each in a subprocess with a small timing plugin (setup + call +
teardown of every test, wall clock), and prints the medians, the per-test fixture cost
(fixture median - bare median) and the ratio.  Target: <= 15 ms per test.

Usage::

    python benchmarks/fixture_overhead.py [--tests 200] [--check]

``--check`` exits with status 1 when the fixture cost exceeds the target.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import textwrap
from pathlib import Path

TARGET_MS = 15.0

TIMING_PLUGIN = """
import json, os, time
import pytest

_times = {}

@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_protocol(item, nextitem):
    start = time.perf_counter()
    yield
    _times[item.nodeid] = time.perf_counter() - start

def pytest_sessionfinish(session):
    with open(os.environ["APPSYNC_BENCH_OUT"], "w") as f:
        json.dump(_times, f)
"""

INI = """
[pytest]
asyncio_mode = strict
asyncio_default_fixture_loop_scope = function
asyncio_default_test_loop_scope = function
"""

FIXTURE_TEST = """
@pytest.mark.asyncio
async def test_fixtures_{i}(appsync_server, appsync_client):
    assert appsync_server.port
"""

BARE_TEST = """
@pytest.mark.asyncio
async def test_bare_{i}():
    assert True
"""


def write_project(root: Path, count: int) -> None:
    (root / "pytest.ini").write_text(INI)
    (root / "_appsync_timing.py").write_text(TIMING_PLUGIN)
    for name, template in (("test_fixtures.py", FIXTURE_TEST), ("test_bare.py", BARE_TEST)):
        body = "".join(template.format(i=i) for i in range(count))
        (root / name).write_text("import pytest\n" + textwrap.dedent(body))


def run(root: Path, test_file: str) -> list[float]:
    """Run one test file; return per-test wall times in seconds."""
    out = root / f"{test_file}.json"
    env = {
        **os.environ,
        "APPSYNC_BENCH_OUT": str(out),
        "PYTHONPATH": os.pathsep.join([str(root), os.environ.get("PYTHONPATH", "")]),
    }
    cmd = [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider"]
    cmd += ["-p", "_appsync_timing", "-p", "appsync", test_file]
    done = subprocess.run(cmd, cwd=root, env=env, capture_output=True, text=True, timeout=600)
    if done.returncode != 0:
        sys.stderr.write(done.stdout[-4000:] + done.stderr[-4000:])
        raise SystemExit(f"pytest failed on {test_file} (exit {done.returncode})")
    times: dict[str, float] = json.loads(out.read_text())
    return list(times.values())


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--tests", type=int, default=200, help="tests per file (default 200)")
    parser.add_argument("--check", action="store_true", help=f"fail above {TARGET_MS} ms")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="appsync-bench-") as tmp:
        root = Path(tmp)
        write_project(root, args.tests)
        bare = run(root, "test_bare.py")
        fixtures = run(root, "test_fixtures.py")
    bare_ms = statistics.median(bare) * 1000
    fixture_ms = statistics.median(fixtures) * 1000
    cost = fixture_ms - bare_ms
    p90 = statistics.quantiles(fixtures, n=10)[-1] * 1000
    print(f"tests per file:                 {args.tests}")
    print(f"bare async test, median:        {bare_ms:7.2f} ms")
    print(f"server+client test, median:     {fixture_ms:7.2f} ms  (p90 {p90:.2f} ms)")
    print(f"fixture cost per test:          {cost:7.2f} ms  (target <= {TARGET_MS:g} ms)")
    print(f"ratio fixtures / bare:          {fixture_ms / bare_ms:7.1f}x")
    if args.check and cost > TARGET_MS:
        print("FAIL: fixture cost above target", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
