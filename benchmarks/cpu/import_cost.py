"""What `import numabind` costs a process (issue 16), old build against new.

Four commands, each a fresh interpreter, run side by side (interleaved:
every repetition runs each command once under each Python, in the same
order), medians of ``--reps`` with the 10th–90th percentiles:

    python -c pass
    python -c 'import numabind'
    python -c 'import numabind; numabind.topology()'
    python -c 'import numabind; numabind.pin_rank(0, dry_run=True)'

under ``NUMABIND_FSROOT`` = the DGX H100 fixture tree (tests/machines,
written by tests/sysfs_tree.py). Each ``--python LABEL=PATH`` is a venv's
interpreter with its own numabind (e.g. an unmodified checkout's and this
one's). The target: ``import numabind`` at most 15 ms above ``python -c pass``.

    python3 benchmarks/cpu/import_cost.py --python old=/tmp/old/.venv/bin/python \\
        --python new=.venv/bin/python [--reps 30] [--out DIR]
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

import fixtures  # noqa: E402
import harness as h  # noqa: E402

def signed(ns: float) -> str:
    return ("+" if ns >= 0 else "−") + h.fmt_time(abs(ns))


COMMANDS = {
    "pass": "pass",
    "import": "import numabind",
    "topology": "import numabind; numabind.topology()",
    "pin_rank": "import numabind; numabind.pin_rank(0, dry_run=True)",
}
TARGET_NS = 15e6   # import numabind <= python -c pass + 15 ms


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--python", action="append", required=True, metavar="LABEL=PATH",
                   help="an interpreter with numabind installed (repeatable)")
    p.add_argument("--reps", type=int, default=30)
    p.add_argument("--fsroot", type=Path, help="the tree (default: the dgx-h100 fixture, written to a temp dir)")
    p.add_argument("--out", type=Path, help="write import-cost.{md,json} here")
    a = p.parse_args()
    pythons = dict(spec.split("=", 1) for spec in a.python)
    base = Path(tempfile.mkdtemp(prefix="numabind-import-cost-"))
    root = a.fsroot or fixtures.described("dgx-h100", base)
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "CUDA_VISIBLE_DEVICES", "LOCAL_RANK")}
    env["NUMABIND_FSROOT"] = str(root)
    os.chdir(base)   # no numabind/ in the working directory to shadow the installed one
    info = h.machine_info(HERE.parents[1], next(iter(pythons.values())))
    variants = {}
    for label, py in pythons.items():
        for key, code in COMMANDS.items():
            variants[(label, key)] = (lambda py=py, code=code: h.spawn_time([py, "-c", code], env))
    times = h.interleave({f"{label}\t{key}": fn for (label, key), fn in variants.items()}, a.reps)
    info["loadavg_end"] = h.loadavg()

    rows = []
    verdicts = []
    for label in pythons:
        t = {key: times[f"{label}\t{key}"] for key in COMMANDS}
        passed = statistics.median(t["pass"])
        for key, code in COMMANDS.items():
            over = statistics.median(t[key]) - passed
            rows.append([label, f"`python -c '{code}'`" if key != "pass" else "`python -c pass`",
                         h.fmt_stats(t[key]), "" if key == "pass" else signed(over),
                         f"{statistics.median(t[key]) / passed:.2f}×"])
        over = statistics.median(t["import"]) - passed
        verdicts.append(f"{label}: import numabind = python -c pass {signed(over)} "
                        f"(target: + {h.fmt_time(TARGET_NS)}): {'met' if over <= TARGET_NS else 'missed'}")
    labels = list(pythons)
    if len(labels) == 2:
        old, new = labels
        for key in ("import", "topology", "pin_rank"):
            r = h.ratio(times[f"{new}\t{key}"], times[f"{old}\t{key}"])
            verdicts.append(f"`{COMMANDS[key]}`: {new} / {old} = {r:.2f}×")
    table = h.md_table(["numabind", "command", "wall (median, p10–p90)", "above `pass`", "/ pass"], rows)
    text = (f"{a.reps} repetitions, interleaved; NUMABIND_FSROOT={root}; load {info['loadavg_start']} → "
            f"{info['loadavg_end']}\n\n{table}\n\n" + "\n".join(f"- {v}" for v in verdicts) + "\n")
    print(text)
    if a.out:
        a.out.mkdir(parents=True, exist_ok=True)
        (a.out / "import-cost.md").write_text(text)
        (a.out / "import-cost.json").write_text(json.dumps(
            {"machine": info, "pythons": pythons, "commands": COMMANDS,
             "times_ns": {k: v for k, v in times.items()}}, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
