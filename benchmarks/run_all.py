"""Run every benchmark and write the results table.

Each script in :data:`SCRIPTS` that exists runs in its own subprocess with ``--json``
(``--quick`` passed through), one after the other, with this checkout's packages first on
``PYTHONPATH``.  Their rows (see any script's ``--json``) go into two copies of one table,
headed by the machine they were measured on (CPU model, cores, Python, date):

* ``benchmarks/RESULTS.md`` (Markdown), and
* ``docs/topics/performance-results.inc`` (reStructuredText), which the documentation's
  performance page includes.

A script that is missing, fails or writes no rows gets a line saying so under the table;
its output is in ``benchmarks/results/NAME.log``.

    python benchmarks/run_all.py              # full runs (tens of minutes)
    python benchmarks/run_all.py --quick      # each script in its quick mode (< 1 min each)
    python benchmarks/run_all.py --only fanout,emulator_memory
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _loadgen import repo_env

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
SCRIPTS = (
    "fanout.py",
    "emulator_memory.py",
    "emulator_10k.py",
    "client_receive.py",
    "client_publish.py",
    "client_memory.py",
    "amplify_consumer.py",
    "handlers.py",
    "fixture_overhead.py",
)
RESULTS_MD = HERE / "RESULTS.md"
RESULTS_RST = ROOT / "docs" / "topics" / "performance-results.inc"
LOGS = HERE / "results"


def machine() -> dict[str, str]:
    """What the figures were measured on."""
    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return {
        "cpu": cpu,
        "cores": str(os.cpu_count()),
        "python": platform.python_version(),
        "system": f"{platform.system()} {platform.release()}",
        "date": datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%d %H:%M UTC"),
    }


def run_script(name: str, quick: bool, timeout: float) -> tuple[list[dict[str, Any]], str | None]:
    """Run one benchmark; its rows, and why there are none (``None`` when it worked)."""
    script = HERE / name
    if not script.exists():
        return [], "not present"
    LOGS.mkdir(exist_ok=True)
    log = LOGS / f"{script.stem}.log"
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "rows.json"
        cmd = [sys.executable, str(script), "--json", str(out), *(["--quick"] if quick else [])]
        started = time.monotonic()
        print(f"== {name}{' --quick' if quick else ''}", flush=True)
        with log.open("w") as sink:
            try:
                proc = subprocess.run(
                    cmd, stdout=sink, stderr=subprocess.STDOUT, env=repo_env(), timeout=timeout
                )
            except subprocess.TimeoutExpired:
                return [], f"timed out after {timeout:.0f} s"
        print(f"   {time.monotonic() - started:.0f} s, exit {proc.returncode}", flush=True)
        if proc.returncode != 0:
            return [], f"failed (exit {proc.returncode}; see benchmarks/results/{log.name})"
        if not out.exists():
            return [], "wrote no --json rows"
        rows: list[dict[str, Any]] = json.loads(out.read_text())
        return rows, None if rows else "wrote no rows"


def _number(value: Any) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        if value >= 1000:
            return f"{value:,.0f}"
        return f"{value:.2f}" if value < 10 else f"{value:.1f}"
    return f"{value:,}" if isinstance(value, int) else str(value)


def cells(row: dict[str, Any]) -> list[str]:
    """The table cells of one row."""
    ratio = "-"
    if row.get("ratio") is not None:
        ratio = f"{row['ratio']:.2f}x"
        if row.get("ratio_min") is not None and row.get("ratio_max") is not None:
            ratio += f" [{row['ratio_min']:.2f}-{row['ratio_max']:.2f}]"
    met = {True: "yes", False: "**no**", None: "-"}[row.get("met")]
    unit = row.get("unit") or ""
    return [
        str(row.get("benchmark", "")),
        str(row.get("case", "")),
        f"{row.get('metric', '')} ({unit})" if unit else str(row.get("metric", "")),
        _number(row.get("ours")),
        _number(row.get("baseline")),
        ratio,
        str(row.get("target") or "-"),
        met,
    ]


HEADER = ["benchmark", "case", "metric", "ours", "baseline", "ratio [range]", "target", "met"]


def markdown(rows: list[dict[str, Any]], info: dict[str, str], notes: list[str], cmd: str) -> str:
    lines = [
        "# Benchmark results",
        "",
        f"Measured {info['date']} on {info['cpu']}, {info['cores']} cores, "
        f"Python {info['python']}, {info['system']}, with `{cmd}`.",
        "Ratios are ours/baseline: the median over alternating rounds, [its range].",
        "",
        "| " + " | ".join(HEADER) + " |",
        "|" + "|".join("---" for _ in HEADER) + "|",
    ]
    lines += ["| " + " | ".join(c.replace("|", "/") for c in cells(r)) + " |" for r in rows]
    baselines = sorted({r["baseline_name"] for r in rows if r.get("baseline_name")})
    if baselines:
        lines += ["", "Baselines: " + "; ".join(baselines) + "."]
    if notes:
        lines += ["", *(f"- {note}" for note in notes)]
    return "\n".join(lines) + "\n"


def _rst_cell(text: str) -> str:
    # The cells hold figures, names and "**no**" (bold in both formats): nothing to escape
    # but a backslash.
    return text.replace("\\", "\\\\")


def restructuredtext(
    rows: list[dict[str, Any]], info: dict[str, str], notes: list[str], cmd: str
) -> str:
    lines = [
        f"Measured {info['date']} on {info['cpu']}, {info['cores']} cores, "
        f"Python {info['python']}, {info['system']}, with ``{cmd}``.",
        "",
        ".. list-table::",
        "   :header-rows: 1",
        "",
    ]
    for row_cells in [HEADER, *(cells(r) for r in rows)]:
        first = True
        for cell in row_cells:
            lines.append(f"   {'* -' if first else '  -'} {_rst_cell(cell) or '..'}")
            first = False
    baselines = sorted({r["baseline_name"] for r in rows if r.get("baseline_name")})
    if baselines:
        lines += ["", "Baselines: " + "; ".join(baselines) + "."]
    if notes:
        lines += ["", *(f"* {_rst_cell(note)}" for note in notes)]
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="run each script's quick mode")
    parser.add_argument("--only", help="comma-separated script names (without .py)")
    parser.add_argument("--timeout", type=float, help="seconds per script")
    args = parser.parse_args()
    scripts = SCRIPTS
    if args.only:
        wanted = {name.strip().removesuffix(".py") for name in args.only.split(",")}
        scripts = tuple(s for s in SCRIPTS if s.removesuffix(".py") in wanted)
    timeout = args.timeout or (600.0 if args.quick else 7200.0)
    cmd = "python benchmarks/run_all.py" + (" --quick" if args.quick else "")
    if args.only:
        cmd += f" --only {args.only}"
    info = machine()
    rows: list[dict[str, Any]] = []
    notes: list[str] = []
    for name in scripts:
        found, problem = run_script(name, args.quick, timeout)
        rows += found
        if problem is not None:
            notes.append(f"{name}: {problem}")
            print(f"   {problem}", flush=True)
    RESULTS_MD.write_text(markdown(rows, info, notes, cmd))
    RESULTS_RST.write_text(restructuredtext(rows, info, notes, cmd))
    print(RESULTS_MD.read_text())
    print(f"wrote {RESULTS_MD.relative_to(ROOT)} and {RESULTS_RST.relative_to(ROOT)}")


if __name__ == "__main__":
    main()
