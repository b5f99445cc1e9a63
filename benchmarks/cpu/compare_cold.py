#!/usr/bin/env python3
"""Two builds side by side, cold: a fresh process per measurement, the builds
interleaved run by run, medians (issue 16's targets).

- C: ``bench pin --rank R`` (benchmarks/cpu/bench.c built against each
  library): topology + plan in a fresh process, the first and only read;
- Python: ``child.py pin --rank R`` with each build's interpreter: the first
  ``numabind.pin_rank(R, dry_run=True)`` after ``import numabind`` (which,
  lazy since issue 16, imports the modules pin_rank uses in that call), and
  with ``--loaded`` the call alone, those modules imported before it (what
  the first call cost when ``import numabind`` imported everything).

    python3 benchmarks/cpu/compare_cold.py --bench OLD NEW --python OLDPY NEWPY \\
        [--fsroot TREE] [--rank 5] [--runs 31]

Prints one Markdown table.
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
from pathlib import Path

CHILD = Path(__file__).resolve().parent / "child.py"


def fmt(ns: float) -> str:
    return f"{ns / 1e6:.2f} ms" if ns >= 1e6 else f"{ns / 1e3:.0f} µs"


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--bench", nargs=2, metavar=("OLD", "NEW"), required=True)
    ap.add_argument("--python", nargs=2, metavar=("OLD", "NEW"))
    ap.add_argument("--fsroot")
    ap.add_argument("--rank", type=int, default=5)
    ap.add_argument("--runs", type=int, default=31)
    a = ap.parse_args()
    env = dict(os.environ)
    if a.fsroot:
        env["NUMABIND_FSROOT"] = a.fsroot
    fsroot = ["--fsroot", a.fsroot] if a.fsroot else []
    rows: dict[str, list[list[float]]] = {"C topology + plan": [[], []], "C topology": [[], []],
                                          "C plan": [[], []]}
    if a.python:
        rows["Python pin_rank(dry_run=True), first call"] = [[], []]
        rows["Python pin_rank(dry_run=True), first call, modules loaded"] = [[], []]
        rows["Python: loading those modules"] = [[], []]
    for _ in range(a.runs):
        for side in (0, 1):                    # interleaved: the same load on both
            out = json.loads(subprocess.run([a.bench[side], "pin", "--rank", str(a.rank), *fsroot], check=True,
                                            capture_output=True, text=True).stdout)
            rows["C topology + plan"][side].append(out["topology_ns"] + out["plan_ns"])
            rows["C topology"][side].append(out["topology_ns"])
            rows["C plan"][side].append(out["plan_ns"])
            if a.python:
                out = json.loads(subprocess.run([a.python[side], str(CHILD), "pin", "--rank", str(a.rank)],
                                                check=True, capture_output=True, text=True, env=env).stdout)
                rows["Python pin_rank(dry_run=True), first call"][side].append(out["pin_cold_ns"])
                out = json.loads(subprocess.run([a.python[side], str(CHILD), "pin", "--rank", str(a.rank), "--loaded"],
                                                check=True, capture_output=True, text=True, env=env).stdout)
                rows["Python pin_rank(dry_run=True), first call, modules loaded"][side].append(out["pin_cold_ns"])
                rows["Python: loading those modules"][side].append(out["load_ns"])
    print(f"| measure ({a.runs} fresh processes each) | old | new | new / old |")
    print("|---|---|---|---|")
    for name, (old, new) in rows.items():
        mo, mn = statistics.median(old), statistics.median(new)
        print(f"| {name} | {fmt(mo)} | {fmt(mn)} | {mn / mo:.2f}× |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
