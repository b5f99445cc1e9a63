#!/usr/bin/env python3
"""The native ``numabind`` command (issue 16) side by side, as whole processes:

  1. ``numabind exec --local-rank 0 -- true`` (the C command) against
     ``numactl --physcpubind=0 --membind=0 true`` and ``python -m numabind
     exec --local-rank 0 -- true`` (the Python CLI it replaces), on this host
     (no GPU: the command runs unpinned, after reading and planning) and on
     a tree of this host's CPUs with two made-up GPUs (rank 0 really pinned);
  2. ``numabind show`` (C) against ``lstopo-no-graphics --whole-io`` on this
     host and on the DGX H100 fixture tree (NUMABIND_FSROOT / HWLOC_FSROOT).

Interleaved (each repetition runs every variant once, in order), medians of
``--reps`` (default 30) with the 10th-90th percentiles; output to /dev/null.
Targets: exec <= 1.5x numactl; show >= 5x faster than lstopo on the DGX tree.

    python3 benchmarks/native_cli.py [--reps N] [--json OUT]

Run it with the Python of the venv numabind is installed in (the C command is
the ``numabind`` beside it). Needs numactl and hwloc (lstopo-no-graphics).
"""
from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import tempfile
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
sys.path.insert(0, str(HERE / "cpu"))

import fixtures  # noqa: E402
import harness as h  # noqa: E402

NATIVE = str(Path(sys.executable).parent / "numabind")
CLEAN = {k: v for k, v in os.environ.items()
         if k not in ("NUMABIND_FSROOT", "HWLOC_FSROOT", "CUDA_VISIBLE_DEVICES", "LOCAL_RANK", "LOCAL_WORLD_SIZE",
                      "SLURM_LOCALID", "OMPI_COMM_WORLD_LOCAL_RANK", "MPI_LOCALRANKID", "PMI_LOCAL_RANK")}


def env(**kw: str) -> dict[str, str]:
    return {**CLEAN, **kw}


def run_group(variants: dict[str, tuple[list[str], dict]], reps: int) -> dict[str, list[float]]:
    for name, (argv, e) in variants.items():
        if shutil.which(argv[0]) is None and not os.path.isabs(argv[0]):
            raise SystemExit(f"{argv[0]} is not installed (apt-get install numactl hwloc)")
    return h.interleave({name: (lambda a=argv, e=e: h.spawn_time(a, e)) for name, (argv, e) in variants.items()},
                        reps)


def table(times: dict[str, list[float]], base: str, label: str) -> str:
    rows = [[f"`{name}`", h.fmt_stats(t), f"{h.ratio(t, times[base]):.2f}"] for name, t in times.items()]
    return h.md_table(["command", "wall (median, p10–p90)", f"/ {label}"], rows)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--reps", type=int, default=30)
    ap.add_argument("--json", help="also write every sample here")
    a = ap.parse_args()
    with open(NATIVE, "rb") as f:
        if f.read(4) != b"\x7fELF":
            raise SystemExit(f"{NATIVE} is not the native command")
    base = Path(tempfile.mkdtemp(prefix="nmb-native-bench-", dir=fixtures.base_dir()))
    try:
        dgx = fixtures.described("dgx-h100", base)
        host = fixtures.host_gpus(base)
        numactl = "numactl --physcpubind=0 --membind=0 true"
        exec_v = {
            "numabind exec --local-rank 0 -- true (C, this host)":
                ([NATIVE, "exec", "--local-rank", "0", "--", "true"], env()),
            "numabind exec --local-rank 0 -- true (C, host-gpus tree: pinned)":
                ([NATIVE, "exec", "--local-rank", "0", "--", "true"], env(NUMABIND_FSROOT=str(host))),
            numactl: (numactl.split(), env()),
            "python -m numabind exec --local-rank 0 -- true (this host)":
                ([sys.executable, "-m", "numabind", "exec", "--local-rank", "0", "--", "true"], env()),
            "true": (["/bin/true"], env()),
        }
        show_v = {
            "numabind show (C, this host)": ([NATIVE, "show"], env()),
            "lstopo-no-graphics --whole-io (this host)": (["lstopo-no-graphics", "--whole-io"], env()),
            "numabind show (C, dgx-h100 tree)": ([NATIVE, "show"], env(NUMABIND_FSROOT=str(dgx))),
            "lstopo-no-graphics --whole-io (dgx-h100 tree)":
                (["lstopo-no-graphics", "--whole-io"], env(HWLOC_FSROOT=str(dgx))),
            "python -m numabind show (dgx-h100 tree)":
                ([sys.executable, "-m", "numabind", "show"], env(NUMABIND_FSROOT=str(dgx))),
        }
        info = h.machine_info(REPO, sys.executable)
        ex = run_group(exec_v, a.reps)
        sh = run_group(show_v, a.reps)
    finally:
        shutil.rmtree(base, ignore_errors=True)
    print(f"{info['date']}  {info['cpu']}, {info['cpus_online']} CPUs, {info['os']}, kernel {info['kernel']}, "
          f"numactl {info['packages'].get('numactl', '?')}, hwloc {info['packages'].get('hwloc', '?')}, "
          f"load {h.loadavg()[0]:.2f}, {a.reps} interleaved repetitions\n")
    print(table(ex, numactl, "numactl"))
    print()
    print(table(sh, "numabind show (C, dgx-h100 tree)", "numabind show (C, dgx-h100 tree)"))
    c_exec = ex["numabind exec --local-rank 0 -- true (C, this host)"]
    c_pin = ex["numabind exec --local-rank 0 -- true (C, host-gpus tree: pinned)"]
    print()
    print(f"exec: C / numactl = {h.ratio(c_exec, ex[numactl]):.2f}x (this host), "
          f"{h.ratio(c_pin, ex[numactl]):.2f}x (pinned, host-gpus tree); target <= 1.5x")
    print(f"exec: python -m numabind / C = "
          f"{h.ratio(ex['python -m numabind exec --local-rank 0 -- true (this host)'], c_exec):.1f}x")
    for where in ("this host", "dgx-h100 tree"):
        r = h.ratio(sh[f"lstopo-no-graphics --whole-io ({where})"], sh[f"numabind show (C, {where})"])
        print(f"show: lstopo-no-graphics --whole-io / numabind show = {r:.2f}x ({where})"
              + ("; target >= 5x" if where == "dgx-h100 tree" else ""))
    if a.json:
        Path(a.json).write_text(json.dumps({"machine": info, "exec": ex, "show": sh}, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
