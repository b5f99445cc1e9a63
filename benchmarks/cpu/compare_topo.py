#!/usr/bin/env python3
"""Two builds of the C core side by side: the topology read's system calls
(strace -f -c, exact whatever the machine's load) and its time (bench.c's
`topo`, the two builds interleaved run by run, medians).

    # bench.c built against each library (see docs/benchmarks.md for the commands)
    python3 benchmarks/cpu/compare_topo.py /tmp/bench-old /tmp/bench-new [--fsroot TREE] [--runs 15] [--reps 50]

Prints one Markdown table row per build.
"""
from __future__ import annotations

import argparse
import json
import shutil
import statistics
import subprocess
import sys
import tempfile


def syscalls(bench: str, fsroot: list[str]) -> int | None:
    if not shutil.which("strace"):
        return None
    with tempfile.NamedTemporaryFile("r", suffix=".strace") as out:
        subprocess.run(["strace", "-f", "-c", "-o", out.name, bench, "topo", "--reps", "1", *fsroot],
                       check=True, capture_output=True)
        total = [line for line in out.read().splitlines() if line.rstrip().endswith("total")]
    return int(total[-1].split()[3]) if total else None


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("old")
    ap.add_argument("new")
    ap.add_argument("--fsroot")
    ap.add_argument("--runs", type=int, default=15)
    ap.add_argument("--reps", type=int, default=50)
    a = ap.parse_args()
    fsroot = ["--fsroot", a.fsroot] if a.fsroot else []
    times: dict[str, list[float]] = {a.old: [], a.new: []}
    for _ in range(a.runs):
        for bench in (a.old, a.new):          # interleaved: the same load on both
            out = subprocess.run([bench, "topo", "--reps", str(a.reps), *fsroot], check=True,
                                 capture_output=True, text=True).stdout
            ns = json.loads(out)["numabind_ns"][1:]      # the first read warms the page cache
            times[bench].append(statistics.median(ns))
    base = statistics.median(times[a.old])
    print(f"| build | system calls, one read | median of {a.runs} runs' medians | vs the first |")
    print("|---|---|---|---|")
    for bench in (a.old, a.new):
        med = statistics.median(times[bench])
        print(f"| {bench} | {syscalls(bench, fsroot)} | {med / 1e3:.0f} µs | {med / base:.2f}× |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
