"""Timing and reporting helpers for benchmarks/run_cpu.py (and the GPU scripts).

Side by side means interleaved: every repetition runs each variant once, in
the same order, so drift (other tenants, clocks) hits them alike. Figures are
medians with the 10th and 90th percentiles; ratios are of medians.
"""
from __future__ import annotations

import json
import os
import platform
import shutil
import statistics
import subprocess
import time
from pathlib import Path
from typing import Callable, Sequence


def percentile(values: Sequence[float], q: float) -> float:
    """Linear interpolation between closest ranks (numpy's default)."""
    v = sorted(values)
    if not v:
        return float("nan")
    k = (len(v) - 1) * q
    lo = int(k)
    hi = min(lo + 1, len(v) - 1)
    return v[lo] + (v[hi] - v[lo]) * (k - lo)


def stats(values: Sequence[float]) -> dict:
    return {"n": len(values), "median": statistics.median(values) if values else float("nan"),
            "p10": percentile(values, 0.10), "p90": percentile(values, 0.90),
            "min": min(values) if values else float("nan"), "max": max(values) if values else float("nan")}


def fmt_time(ns: float) -> str:
    """ns as µs below 1 ms, else ms, three significant figures or so."""
    if ns != ns:
        return "-"
    if ns < 1e6:
        return f"{ns / 1e3:.1f} µs" if ns < 1e5 else f"{ns / 1e3:.0f} µs"
    return f"{ns / 1e6:.2f} ms" if ns < 1e8 else f"{ns / 1e6:.0f} ms"


def fmt_stats(values: Sequence[float]) -> str:
    s = stats(values)
    return f"{fmt_time(s['median'])} ({fmt_time(s['p10'])}–{fmt_time(s['p90'])})"


def ratio(a: Sequence[float], b: Sequence[float]) -> float:
    return statistics.median(a) / statistics.median(b)


def interleave(variants: dict[str, Callable[[], float]], reps: int, warmup: int = 1) -> dict[str, list[float]]:
    """Runs each variant once per repetition, in order; each returns its time
    in ns. ``warmup`` repetitions first, discarded (page cache, dentries)."""
    out: dict[str, list[float]] = {k: [] for k in variants}
    for i in range(warmup + reps):
        for name, fn in variants.items():
            t = fn()
            if i >= warmup:
                out[name].append(t)
    return out


def spawn_time(argv: Sequence[str], env: dict[str, str] | None = None) -> float:
    """Wall time of a whole process, fork to reap, output to /dev/null.
    posix_spawn keeps the parent's own share small and constant."""
    path = argv[0] if os.path.isabs(argv[0]) else shutil.which(argv[0])
    if path is None:
        raise FileNotFoundError(argv[0])
    actions = [(os.POSIX_SPAWN_OPEN, 1, os.devnull, os.O_WRONLY, 0),
               (os.POSIX_SPAWN_OPEN, 2, os.devnull, os.O_WRONLY, 0)]
    t0 = time.perf_counter_ns()
    pid = os.posix_spawn(path, list(argv), os.environ if env is None else env, file_actions=actions)
    _, status = os.waitpid(pid, 0)
    t1 = time.perf_counter_ns()
    if os.waitstatus_to_exitcode(status) != 0:
        raise RuntimeError(f"{' '.join(argv)} exited with {os.waitstatus_to_exitcode(status)}")
    return float(t1 - t0)


def run_json(argv: Sequence[str], env: dict[str, str] | None = None, timeout: float = 300) -> tuple[dict, float]:
    """Runs a child that prints one JSON object last; returns it and the wall time."""
    t0 = time.perf_counter_ns()
    p = subprocess.run(list(argv), env=env, capture_output=True, text=True, timeout=timeout)
    t1 = time.perf_counter_ns()
    if p.returncode != 0:
        raise RuntimeError(f"{' '.join(argv)} exited with {p.returncode}: {p.stderr.strip()[-2000:]}")
    return json.loads(p.stdout.strip().splitlines()[-1]), float(t1 - t0)


def loadavg() -> tuple[float, float, float]:
    return os.getloadavg()


def _cmd(argv: Sequence[str]) -> str:
    try:
        p = subprocess.run(list(argv), capture_output=True, text=True, timeout=20)
        return (p.stdout or p.stderr).strip()
    except (OSError, subprocess.TimeoutExpired):
        return ""


def machine_info(repo: Path, python: str) -> dict:
    cpu_model = ""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu_model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    os_release = {}
    try:
        for line in Path("/etc/os-release").read_text().splitlines():
            k, _, v = line.partition("=")
            os_release[k] = v.strip('"')
    except OSError:
        pass
    mem_gib = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30
    nodes = sorted(p.name for p in Path("/sys/devices/system/node").glob("node[0-9]*"))
    dpkg = {}
    for pkg in ("hwloc", "numactl", "libnuma1"):
        v = _cmd(["dpkg-query", "-W", "-f=${Version}", pkg])
        if v and "no packages" not in v:
            dpkg[pkg] = v
    return {
        "date": time.strftime("%Y-%m-%d %H:%M:%S %Z"),
        "host": platform.node(),
        "os": os_release.get("PRETTY_NAME", platform.platform()),
        "debian_version": Path("/etc/debian_version").read_text().strip() if Path("/etc/debian_version").exists()
        else None,
        "kernel": platform.release(),
        "cpu": cpu_model, "cpus_online": os.cpu_count(), "cpus_allowed": len(os.sched_getaffinity(0)),
        "numa_nodes": len(nodes), "mem_gib": round(mem_gib, 1),
        "virtualization": _cmd(["systemd-detect-virt"]) or None,
        "python": _cmd([python, "-c", "import sys; print(sys.version.split()[0])"]),
        "numabind": _cmd([python, "-c", "import numabind; print(numabind.__version__, 'at', numabind.__file__)"]),
        "python_packages": _cmd([python, "-c", "import importlib.metadata as m\nfor p in ('numpy', 'psutil', 'torch'):\n"
                                 "    try: print(p, m.version(p))\n    except Exception: pass"]).replace("\n", ", "),
        "packages": dpkg,
        "git_commit": _cmd(["git", "-C", str(repo), "rev-parse", "HEAD"]),
        # The commit the measured numabind was built from, when the caller says (the checkout may move on).
        "numabind_built_from": os.environ.get("NUMABIND_BENCH_BUILT_FROM"),
        "loadavg_start": loadavg(),
        "nvidia_smi": shutil.which("nvidia-smi") is not None,
    }


def md_table(header: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    out = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    out += ["| " + " | ".join(str(c) for c in r) + " |" for r in rows]
    return "\n".join(out)
