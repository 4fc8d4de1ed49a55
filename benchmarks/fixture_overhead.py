"""What ``appsync_server`` (and ``appsync_client``) cost per test: per-test vs shared servers.

Generates a temporary project with N tests per case and runs pytest on it in a
subprocess, once per mode, in alternating rounds (bare, per-test, shared, bare, ...):

* ``bare``: the same tests without the plugin's fixtures (the practical limit: zero cost);
* ``function``: ``appsync_server_scope = function``, a new emulator per test (the default);
* ``session``: ``appsync_server_scope = session``, one emulator reset between tests.

A small timing plugin measures each test's whole protocol (setup + call + teardown, wall
clock).  The fixture cost of a test is its time less the bare tests' median in the same
round.  Printed per case and mode: the cold start (the first test, which starts the
emulator), the median and the mean cost per test, each as the median over rounds with its
range.  A last figure times the plugin's per-test server work in this process, without
pytest (less noisy on a busy machine): the lease, the test reading the port (as every
test that connects does, so the reset moves the server to a new port), and the release;
median and mean (the mean includes the resets that go to the server's loop).  Target:
the shared mode well under 1 ms per test for ``appsync_server``.

Usage::

    python benchmarks/fixture_overhead.py [--quick] [--tests N] [--rounds R] [--json PATH]
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
import time
from pathlib import Path
from typing import Any

TARGET_MS = 1.0
"""Shared mode, ``appsync_server`` alone: fixture cost per test (median) below this."""

TIMING_PLUGIN = """
import json, os, time
import pytest

_times = []

@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_protocol(item, nextitem):
    start = time.perf_counter()
    yield
    _times.append((item.nodeid, time.perf_counter() - start))

def pytest_sessionfinish(session):
    with open(os.environ["APPSYNC_BENCH_OUT"], "w") as f:
        json.dump(_times, f)
"""

INI = """
[pytest]
asyncio_mode = strict
asyncio_default_fixture_loop_scope = function
asyncio_default_test_loop_scope = function
appsync_server_scope = {scope}
"""

CASES: dict[str, tuple[str, str]] = {
    "appsync_server": (
        """
        def test_{i}(appsync_server):
            assert appsync_server.port
        """,
        """
        def test_{i}():
            assert True
        """,
    ),
    "appsync_server + appsync_client": (
        """
        @pytest.mark.asyncio
        async def test_{i}(appsync_server, appsync_client):
            assert appsync_server.port
        """,
        """
        @pytest.mark.asyncio
        async def test_{i}():
            assert True
        """,
    ),
}
"""Per case: the test with the fixtures, and the bare test it is compared with."""

MODES = ("bare", "function", "session")


def write_project(root: Path, mode: str, count: int) -> None:
    """One test module per case, ``count`` tests each (bare tests in the ``bare`` mode)."""
    root.mkdir(parents=True, exist_ok=True)
    scope = "function" if mode == "bare" else mode
    (root / "pytest.ini").write_text(INI.format(scope=scope))
    (root / "_appsync_timing.py").write_text(TIMING_PLUGIN)
    for number, (fixtures, bare) in enumerate(CASES.values()):
        template = bare if mode == "bare" else fixtures
        body = "".join(textwrap.dedent(template).format(i=i) for i in range(count))
        (root / f"test_case{number}.py").write_text("import pytest\n" + body)


def run(root: Path) -> dict[str, list[float]]:
    """Run the project at ``root``; return per case its tests' wall times (s), in order."""
    out = root / "times.json"
    # Absolute: pytest runs in ``root``, where a relative entry (``PYTHONPATH=src:emulator``
    # from a checkout) would name nothing, and the installed package would be measured.
    given = os.environ.get("PYTHONPATH", "").split(os.pathsep)
    paths = [str(Path(p).resolve()) for p in given if p]
    env = {
        **os.environ,
        "APPSYNC_BENCH_OUT": str(out),
        "PYTHONPATH": os.pathsep.join([str(root), *paths]),
    }
    cmd = [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-p", "no:randomly"]
    cmd += ["-p", "_appsync_timing", "-p", "appsync"]
    done = subprocess.run(cmd, cwd=root, env=env, capture_output=True, text=True, timeout=900)
    if done.returncode != 0:
        sys.stderr.write(done.stdout[-4000:] + done.stderr[-4000:])
        raise SystemExit(f"pytest failed in {root} (exit {done.returncode})")
    times: list[tuple[str, float]] = json.loads(out.read_text())
    return {
        case: [t for nodeid, t in times if nodeid.startswith(f"test_case{number}.py")]
        for number, case in enumerate(CASES)
    }


def summarize(values: list[float]) -> tuple[float, float, float]:
    return statistics.median(values), min(values), max(values)


def measure(tests: int, rounds: int) -> dict[tuple[str, str], dict[str, list[float]]]:
    """Per (case, mode): per-round cold start, median and mean fixture cost (ms)."""
    results: dict[tuple[str, str], dict[str, list[float]]] = {}
    with tempfile.TemporaryDirectory(prefix="appsync-bench-") as tmp:
        projects = {mode: Path(tmp) / mode for mode in MODES}
        for mode, root in projects.items():
            write_project(root, mode, tests)
        for _ in range(rounds):
            times = {mode: run(projects[mode]) for mode in MODES}  # alternating
            for case in CASES:
                bare = times["bare"][case]
                bare_median, bare_mean = statistics.median(bare[1:]), statistics.fmean(bare[1:])
                for mode in MODES[1:]:
                    t = times[mode][case]
                    row = results.setdefault((case, mode), {"cold": [], "median": [], "mean": []})
                    row["cold"].append((t[0] - bare[0]) * 1000)
                    row["median"].append((statistics.median(t[1:]) - bare_median) * 1000)
                    row["mean"].append((statistics.fmean(t[1:]) - bare_mean) * 1000)
    return results


def measure_in_process(cycles: int, rounds: int) -> dict[str, dict[str, list[float]]]:
    """The plugin's per-test server work without pytest: ``ServerPool`` set up, server
    taken, its port read, pool closed, as ``appsync_server`` and a test do.  Per mode,
    per round: the median and the mean (ms)."""
    from appsync_emulator import EmulatorConfig
    from appsync_emulator.testing import ServerPool, SharedServers

    base = EmulatorConfig()
    shared = SharedServers()
    out: dict[str, dict[str, list[float]]] = {
        mode: {"median": [], "mean": []} for mode in ("function", "session")
    }
    try:
        for _ in range(rounds):
            for mode, figures in out.items():  # alternating
                times = []
                for _ in range(cycles):
                    start = time.perf_counter()
                    pool = ServerPool(base, shared=shared if mode == "session" else None)
                    assert pool.server().port  # shown: the release moves the port
                    pool.close()
                    times.append(time.perf_counter() - start)
                figures["median"].append(statistics.median(times) * 1000)
                figures["mean"].append(statistics.fmean(times) * 1000)
    finally:
        shared.close()
    return out


def rows(results: dict[tuple[str, str], dict[str, list[float]]]) -> list[dict[str, Any]]:
    """The JSON rows: the shared mode (ours) against a new emulator per test (baseline)."""
    out = []
    for case in CASES:
        shared, per_test = results[(case, "session")], results[(case, "function")]
        for metric in ("cold", "median", "mean"):
            ratios = [s / p for s, p in zip(shared[metric], per_test[metric], strict=True) if p]
            target = met = None
            if case == "appsync_server" and metric in ("median", "mean"):
                target = f"< {TARGET_MS:g} ms"
                met = statistics.median(shared[metric]) < TARGET_MS
            name = {"cold": "first test", "median": "per test, median", "mean": "per test, mean"}
            out.append(
                {
                    "benchmark": "fixture_overhead",
                    "case": f"{case}, shared server (session)",
                    "metric": f"fixture cost, {name[metric]}",
                    "unit": "ms",
                    "ours": round(statistics.median(shared[metric]), 3),
                    "baseline": round(statistics.median(per_test[metric]), 3),
                    "baseline_name": "a new emulator per test (appsync_server_scope = function)",
                    "ratio": round(statistics.median(ratios), 4) if ratios else None,
                    "ratio_min": round(min(ratios), 4) if ratios else None,
                    "ratio_max": round(max(ratios), 4) if ratios else None,
                    "higher_is_better": False,
                    "target": target,
                    "met": met,
                }
            )
    return out


def in_process_row(figures: dict[str, dict[str, list[float]]], metric: str) -> dict[str, Any]:
    session, function = figures["session"][metric], figures["function"][metric]
    ratios = [s / p for s, p in zip(session, function, strict=True)]
    ours = statistics.median(session)
    return {
        "benchmark": "fixture_overhead",
        "case": "server per test, in process (no pytest), shared server (session)",
        "metric": f"server set-up + teardown, {metric}",
        "unit": "ms",
        "ours": round(ours, 3),
        "baseline": round(statistics.median(function), 3),
        "baseline_name": "a new emulator per test (appsync_server_scope = function)",
        "ratio": round(statistics.median(ratios), 4),
        "ratio_min": round(min(ratios), 4),
        "ratio_max": round(max(ratios), 4),
        "higher_is_better": False,
        "target": f"< {TARGET_MS:g} ms",
        "met": ours < TARGET_MS,
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="fewer tests and rounds (< 60 s)")
    parser.add_argument("--tests", type=int, help="tests per project (default 300, quick 40)")
    parser.add_argument("--rounds", type=int, help="alternating rounds (default 5, quick 2)")
    parser.add_argument("--json", metavar="PATH", help="write the result rows as JSON")
    args = parser.parse_args()
    tests = args.tests or (40 if args.quick else 300)
    rounds = args.rounds or (2 if args.quick else 5)
    results = measure(tests, rounds)
    print(f"{tests} tests per run, {rounds} alternating rounds; fixture cost per test in ms")
    print("(median over rounds [min-max]; cost = test time - bare test time, same round)")
    for case in CASES:
        print(f"\n{case}")
        print(f"  {'mode':<28}{'first test':>24}{'median':>24}{'mean':>24}")
        for mode, label in (("function", "new server per test"), ("session", "shared (session)")):
            cells = []
            for metric in ("cold", "median", "mean"):
                median, low, high = summarize(results[(case, mode)][metric])
                cells.append(f"{median:8.3f} [{low:.3f}-{high:.3f}]")
            print(f"  {label:<28}" + "".join(f"{c:>24}" for c in cells))
    cycles = 45 if args.quick else 270
    in_process = measure_in_process(cycles, rounds + 1)
    print(f"\nin process, {cycles} cycles per round (server set-up + teardown, ms)")
    print(f"  {'mode':<28}{'median':>24}{'mean':>24}")
    for mode, label in (("function", "new server per test"), ("session", "shared (session)")):
        cells = [summarize(in_process[mode][metric]) for metric in ("median", "mean")]
        text = [f"{m:8.3f} [{lo:.3f}-{hi:.3f}]" for m, lo, hi in cells]
        print(f"  {label:<28}" + "".join(f"{cell:>24}" for cell in text))
    table = [*rows(results), *(in_process_row(in_process, m) for m in ("median", "mean"))]
    for row in table:
        if row["target"] is not None:
            verdict = "met" if row["met"] else "NOT met"
            print(f"\ntarget {row['metric']} {row['target']}: {row['ours']} ms, {verdict}")
    if args.json:
        Path(args.json).write_text(json.dumps(table, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
