"""A job of one rank per GPU pinned by numabind vs unpinned: the spread of a
CPU-bound kernel-launch loop.

Each rank (started by torchrun, one per GPU) launches tiny kernels in a loop
— `--launches` one-element adds, then a synchronize, timed on the host — so
the time is the CPU's: Python, PyTorch's dispatcher and the CUDA driver. The
same job runs unpinned (what torchrun does by default) and with
`numabind.pin_rank()` first, alternating round by round. Reported per mode:
p50, p99, p99.9 and standard deviation of the per-iteration time over every
rank and round, and numabind / unpinned.

    python3 benchmarks/gpu/launch_variance.py [--nproc N] [--rounds 3] [--iters 20000]
        [--modes none,numabind] [--background 0]

`--modes` may add `torch-node` (torchrun --numa-binding=node, PyTorch's own
binding). `--background N` starts N busy processes (unpinned, like other
tenants or data loaders) for the duration, to give the scheduler something to
move the ranks around for. `--nproc` defaults to the GPUs numabind sees
(4 with `--fake`). About 60-90 s with the defaults on 4 GPUs.
Prints Markdown, then the raw figures as one JSON line prefixed "JSON ".
`--fake` times a CPU-only loop instead (no GPU), to check the script.
"""
from __future__ import annotations

import argparse
import json
import multiprocessing
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent / "cpu"))

import harness as h  # noqa: E402

LABELS = {"none": "unpinned (torchrun's default)", "numabind": "numabind.pin_rank()",
          "torch-node": "torchrun --numa-binding=node"}


# ---- worker (one rank, under torchrun) ------------------------------------------

def worker(a: argparse.Namespace) -> None:
    local = int(os.environ["LOCAL_RANK"])
    pinned = None
    if a.mode == "numabind":
        import numabind
        pinned = numabind.pin_rank()              # before torch starts CUDA
    import torch
    import torch.distributed as dist

    dist.init_process_group("gloo")                # only for the barrier: every rank loops at once
    if a.fake:
        x = torch.zeros(1)
    else:
        torch.cuda.set_device(local)
        x = torch.zeros(1, device=f"cuda:{local}")

    def sync() -> None:
        if not a.fake:
            torch.cuda.synchronize()

    for _ in range(max(1, a.iters // 10)):         # warm-up: dispatcher caches, driver queues
        for _ in range(a.launches):
            x.add_(1)
        sync()
    dist.barrier()
    times = []
    clock = time.perf_counter_ns
    for _ in range(a.iters):
        t0 = clock()
        for _ in range(a.launches):
            x.add_(1)
        sync()
        times.append(clock() - t0)
    dist.barrier()
    cpus = set()
    tids = os.listdir("/proc/self/task")
    for tid in tids:
        try:
            cpus |= os.sched_getaffinity(int(tid))
        except ProcessLookupError:
            pass
    main_cpus = sorted(os.sched_getaffinity(0))
    out = {"rank": local, "mode": a.mode, "threads": len(tids), "cpus_of_all_threads": len(cpus),
           "main_thread_cpus": f"{cpulist(main_cpus)} ({len(main_cpus)})",
           "pinned": pinned.to_dict() if pinned else None,
           "stats": summarize(times), "times_ns": times}
    with open(a.out_file + f".{local}", "w") as f:
        json.dump(out, f)
    dist.destroy_process_group()


def cpulist(cpus: list[int]) -> str:
    runs: list[str] = []
    for c in sorted(cpus):
        if runs and c == last + 1:
            runs[-1] = runs[-1].split("-")[0] + f"-{c}"
        else:
            runs.append(str(c))
        last = c
    return ",".join(runs)


# ---- statistics -----------------------------------------------------------------------

def summarize(times: list[float]) -> dict:
    return {"n": len(times), "p50": h.percentile(times, 0.50), "p99": h.percentile(times, 0.99),
            "p999": h.percentile(times, 0.999), "max": max(times), "mean": statistics.fmean(times),
            "stddev": statistics.pstdev(times)}


# ---- parent ---------------------------------------------------------------------------------

def burn(stop_at: float) -> None:
    x = 0
    while time.time() < stop_at:
        x += 1


def run_job(a: argparse.Namespace, mode: str, rnd: int, tmp: Path) -> list[dict]:
    out_file = str(tmp / f"{mode}-{rnd}.json")
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", f"--nproc-per-node={a.nproc}"]
    if mode == "torch-node":
        cmd.append("--numa-binding=node")
    cmd += [__file__, "--worker", "--mode", mode, "--iters", str(a.iters), "--launches", str(a.launches),
            "--out-file", out_file] + (["--fake"] if a.fake else [])
    env = {k: v for k, v in os.environ.items() if k not in ("NUMABIND_FSROOT",)}
    if a.fsroot:
        env["NUMABIND_FSROOT"] = a.fsroot
    env.setdefault("OMP_NUM_THREADS", "1")   # torchrun's default too; said here so both modes match
    t0 = time.time()
    p = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=a.timeout)
    wall = time.time() - t0
    ranks = []
    for r in range(a.nproc):
        try:
            ranks.append(json.loads(Path(f"{out_file}.{r}").read_text()))
        except (OSError, ValueError):
            pass
    if p.returncode != 0 or len(ranks) != a.nproc:
        tail = (p.stdout + p.stderr).strip().splitlines()[-15:]
        raise RuntimeError(f"{mode} round {rnd}: rc={p.returncode}, {len(ranks)} of {a.nproc} ranks reported:\n"
                           + "\n".join(tail))
    for r in ranks:
        r["wall_s"] = wall
    return ranks


def pooled(results: list[dict]) -> dict:
    """Percentiles over every iteration of every rank and round."""
    return summarize([t for r in results for t in r["times_ns"]])


def default_nproc(fake: bool, fsroot: str | None) -> int:
    """One rank per GPU numabind sees (CUDA_VISIBLE_DEVICES honoured); 4 for
    --fake, which needs none."""
    if fake:
        return 4
    import numabind
    n = len(numabind.topology(fsroot, nvml=False, plan_only=True).gpus)    # the GPUs, not show's details
    if n == 0:
        raise SystemExit("launch_variance.py: numabind sees no GPU here; give --nproc, or --fake for a CPU loop")
    return n


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--nproc", type=int, default=None, help="ranks (default: one per visible GPU)")
    p.add_argument("--rounds", type=int, default=3)
    p.add_argument("--iters", type=int, default=20000, help="timed iterations per rank")
    p.add_argument("--launches", type=int, default=20, help="kernel launches per iteration")
    p.add_argument("--modes", default="none,numabind", help="none, numabind, torch-node")
    p.add_argument("--background", type=int, default=0, help="busy processes running beside the job")
    p.add_argument("--timeout", type=int, default=180, help="seconds per torchrun job")
    p.add_argument("--fake", action="store_true", help="no GPU: a CPU loop, to check the script")
    p.add_argument("--fsroot", default=None, help=argparse.SUPPRESS)   # tests: plan from a fixture tree
    p.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    p.add_argument("--mode", default="none", help=argparse.SUPPRESS)
    p.add_argument("--out-file", default="", help=argparse.SUPPRESS)
    a = p.parse_args()
    if a.worker:
        worker(a)
        return 0
    if a.nproc is None:
        a.nproc = default_nproc(a.fake, a.fsroot)

    import tempfile
    modes = [m for m in a.modes.split(",") if m]
    res: dict = {"command": "python3 benchmarks/gpu/launch_variance.py" + "".join(f" {x}" for x in sys.argv[1:]),
                 "machine": h.machine_info(HERE.parent.parent, sys.executable), "modes": modes,
                 "rounds": a.rounds, "iters": a.iters, "launches": a.launches, "nproc": a.nproc,
                 "background": a.background, "fake": a.fake, "jobs": {m: [] for m in modes}, "errors": []}
    t0 = time.time()
    burners = []
    if a.background:
        stop_at = time.time() + 3600
        burners = [multiprocessing.Process(target=burn, args=(stop_at,), daemon=True) for _ in range(a.background)]
        for b in burners:
            b.start()
    try:
        with tempfile.TemporaryDirectory() as d:
            for rnd in range(1, a.rounds + 1):
                for mode in modes:
                    try:
                        ranks = run_job(a, mode, rnd, Path(d))
                    except (RuntimeError, subprocess.TimeoutExpired) as e:
                        res["errors"].append(str(e))
                        print(f"round {rnd} {mode}: FAILED {str(e).splitlines()[0]}", file=sys.stderr)
                        continue
                    res["jobs"][mode].append(ranks)
                    s = pooled(ranks)
                    print(f"round {rnd} {mode}: p50 {s['p50'] / 1e3:.1f} µs, p99 {s['p99'] / 1e3:.1f} µs, "
                          f"stddev {s['stddev'] / 1e3:.1f} µs ({ranks[0]['wall_s']:.0f} s)", file=sys.stderr)
    finally:
        for b in burners:
            b.terminate()
    res["seconds"] = round(time.time() - t0, 1)
    res["loadavg_end"] = h.loadavg()

    summary = {}
    for mode in modes:
        flat = [r for job in res["jobs"][mode] for r in job]
        if flat:
            summary[mode] = pooled(flat)
            summary[mode]["per_round_p99"] = [pooled(job)["p99"] for job in res["jobs"][mode]]
            summary[mode]["per_round_stddev"] = [pooled(job)["stddev"] for job in res["jobs"][mode]]
    res["summary"] = summary
    base = summary.get("none")
    what = "CPU loop (FAKE: no GPU)" if a.fake else f"{a.launches} kernel launches + synchronize"
    print(f"## Launch-loop variance: {a.nproc} ranks, unpinned vs pinned\n")
    print(f"Command: `{res['command']}`; per iteration: {what}; {a.iters} iterations per rank, "
          f"{a.rounds} rounds per mode, modes alternating; {a.background} background busy processes; "
          f"{res['seconds']} s. Load average at start {res['machine']['loadavg_start']}.\n")
    rows = []
    for mode, s in summary.items():
        def rel(k: str) -> str:
            return f"{s[k] / base[k]:.3f}" if base and base[k] else "-"
        rows.append([LABELS.get(mode, mode), f"{s['p50'] / 1e3:.1f}", f"{s['p99'] / 1e3:.1f}", f"{s['p999'] / 1e3:.1f}",
                     f"{s['stddev'] / 1e3:.2f}", ", ".join(f"{x / 1e3:.1f}" for x in s["per_round_p99"]),
                     rel("p50"), rel("p99"), rel("stddev")])
    print(h.md_table(["mode", "p50 µs", "p99 µs", "p99.9 µs", "stddev µs", "p99 per round µs",
                      "p50 / unpinned", "p99 / unpinned", "stddev / unpinned"], rows))
    for mode in modes:
        if res["jobs"][mode]:
            r = res["jobs"][mode][0]
            print(f"\n{LABELS.get(mode, mode)}: " + "; ".join(f"rank {x['rank']}: {x['threads']} threads, main thread on CPUs "
                                               f"{x['main_thread_cpus']}, all threads on {x['cpus_of_all_threads']} CPUs"
                                               for x in sorted(r, key=lambda x: x["rank"])))
    for e in res["errors"]:
        print(f"\nERROR: {e}")
    for mode in modes:           # keep the JSON line small: per-rank summaries, no samples
        for job in res["jobs"][mode]:
            for r in job:
                r.pop("times_ns", None)
    print("\nJSON " + json.dumps(res, default=str))
    return 1 if res["errors"] and not summary else 0


if __name__ == "__main__":
    sys.exit(main())
