"""Reads deepep_intranode.py logs (one per run, named <mode>-<round>.log) and
prints a Markdown table: each mode's best dispatch FP8 / BF16 and combine
bandwidth (DeepEP's own "[tuning] Best ..." lines, GB/s over NVLink) per
round, the median over rounds, and the ratio to the unpinned runs.

    python benchmarks/gpu/summarize_deepep.py LOGDIR
"""

from __future__ import annotations

import re
import statistics
import sys
from pathlib import Path

PATTERNS = {
    "dispatch FP8": re.compile(r"Best dispatch \(FP8\):.*?([\d.]+) GB/s"),
    "dispatch BF16": re.compile(r"Best dispatch \(BF16\):.*?([\d.]+) GB/s"),
    "combine": re.compile(r"Best combine:.*?([\d.]+) GB/s"),
}
MODES = ("none", "hardcoded", "numabind")


def read(logdir: Path) -> dict[str, dict[str, list[float]]]:
    out: dict[str, dict[str, list[float]]] = {m: {k: [] for k in PATTERNS} for m in MODES}
    for log in sorted(logdir.glob("*.log")):
        mode = log.name.split("-")[0]
        if mode not in out:
            continue
        text = log.read_text(errors="replace")
        for key, pat in PATTERNS.items():
            m = pat.search(text)
            if m:
                out[mode][key].append(float(m.group(1)))
    return out


def main() -> None:
    data = read(Path(sys.argv[1]))
    base = {k: statistics.median(v) for k, v in data["none"].items() if v}
    print("| mode | " + " | ".join(f"{k} GB/s (runs) | median / none" for k in PATTERNS) + " |")
    print("|---|" + "---|---|" * len(PATTERNS))
    for mode in MODES:
        cells = []
        for key in PATTERNS:
            vals = data[mode][key]
            if not vals:
                cells += ["no result", "-"]
                continue
            med = statistics.median(vals)
            cells += [", ".join(f"{v:.1f}" for v in vals), f"{med / base[key]:.3f}" if key in base else "-"]
        print(f"| {mode} | " + " | ".join(cells) + " |")


if __name__ == "__main__":
    main()
