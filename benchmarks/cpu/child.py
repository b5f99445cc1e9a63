"""One fresh process of benchmarks/run_cpu.py: times what a rank pays, from
the first line of the script on (the interpreter's own start is the parent's
whole-process figure), and prints one JSON object.

    child.py pin     --rank R [--apply] [--warm K] [--loaded]
                                                     import numabind + pin_rank(R), then K warm calls;
                                                     --loaded: the modules pin_rank uses imported first
                                                     (``load_ns``), so ``pin_cold_ns`` is the call alone
    child.py recipe  --cpus LIST --node N [--warm K] import psutil, ctypes; cpu_affinity + numa_set_preferred
    child.py threads --rank R --threads N --reps K   warm binding with N threads alive (apply only)

``NUMABIND_FSROOT`` picks the tree (the live host when unset). Between warm
repetitions every thread is put back on every allowed CPU, untimed, so that
each repetition really moves threads.
"""
from __future__ import annotations

import time

T_START = time.perf_counter_ns()

import argparse  # noqa: E402
import json  # noqa: E402
import os  # noqa: E402
import threading  # noqa: E402

ALLOWED = os.sched_getaffinity(0)


def spread() -> None:
    """Every thread of this process back on every CPU it started with."""
    for tid in os.listdir("/proc/self/task"):
        try:
            os.sched_setaffinity(int(tid), ALLOWED)
        except ProcessLookupError:
            pass


def threads_on(cpus: set[int]) -> int:
    n = 0
    for tid in os.listdir("/proc/self/task"):
        try:
            n += os.sched_getaffinity(int(tid)) == cpus
        except ProcessLookupError:
            pass
    return n


def cmd_pin(a: argparse.Namespace) -> dict:
    t0 = time.perf_counter_ns()
    import numabind
    t1 = time.perf_counter_ns()
    load = 0
    if a.loaded:     # the pin_rank path, for builds whose `import numabind` did not load it (69214b0 and before)
        import numabind.placement  # noqa: F401
        load = time.perf_counter_ns() - t1
        t1 = time.perf_counter_ns()
    r = numabind.pin_rank(a.rank, dry_run=not a.apply)
    t2 = time.perf_counter_ns()
    warm = []
    for _ in range(a.warm):
        if a.apply:
            spread()
        s = time.perf_counter_ns()
        numabind.pin_rank(a.rank, dry_run=not a.apply)
        warm.append(time.perf_counter_ns() - s)
    return {"script_start_to_import_ns": t0 - T_START, "import_ns": t1 - t0 - load, "load_ns": load,
            "pin_cold_ns": t2 - t1,
            "pin_warm_ns": warm, "cpus": numabind._core.format_cpulist(r.cpus), "numa_node": r.numa_node,
            "hca": r.hca, "applied": r.applied}


def cmd_recipe(a: argparse.Namespace) -> dict:
    cpus = [int(c) for c in a.cpus.split(",")]
    t0 = time.perf_counter_ns()
    import ctypes

    import psutil
    libnuma = ctypes.CDLL("libnuma.so.1")
    t1 = time.perf_counter_ns()
    psutil.Process().cpu_affinity(cpus)
    libnuma.numa_set_preferred(a.node)
    t2 = time.perf_counter_ns()
    warm = []
    for _ in range(a.warm):
        spread()
        s = time.perf_counter_ns()
        psutil.Process().cpu_affinity(cpus)
        libnuma.numa_set_preferred(a.node)
        warm.append(time.perf_counter_ns() - s)
    return {"script_start_to_import_ns": t0 - T_START, "import_ns": t1 - t0, "pin_cold_ns": t2 - t1,
            "pin_warm_ns": warm, "cpus": a.cpus, "numa_node": a.node}


def cmd_threads(a: argparse.Namespace) -> dict:
    import ctypes

    import numabind
    from numabind import _core
    try:
        import psutil
    except ImportError:
        psutil = None
    from numabind.placement import _process_topology

    libnuma = ctypes.CDLL("libnuma.so.1")
    topo = _process_topology()          # what pin_rank caches: read before any pin
    plan = numabind.plan(topology=topo)
    target = set(plan[a.rank].cpus)
    if target == ALLOWED:
        raise SystemExit(f"rank {a.rank}'s CPUs are every allowed CPU: nothing to bind")
    node = plan[a.rank].numa_node or 0

    stop = threading.Event()
    threading.stack_size(256 * 1024)
    # N threads in all, counting those already there (numpy's OpenBLAS starts its own).
    missing = max(0, a.threads - len(os.listdir("/proc/self/task")))
    started = [threading.Thread(target=stop.wait, daemon=True) for _ in range(missing)]
    for t in started:
        t.start()

    def pin_rank() -> None:
        numabind.pin_rank(a.rank)

    def recipe() -> None:
        psutil.Process().cpu_affinity(sorted(target))
        libnuma.numa_set_preferred(node)

    def loop_all() -> None:
        for tid in os.listdir("/proc/self/task"):
            try:
                os.sched_setaffinity(int(tid), target)
            except ProcessLookupError:
                pass

    handle = numabind.placement._make_plan(topo, None, "exclusive", "preferred", None, 0, False)

    def apply_only() -> None:
        handle.apply(a.rank, 0)

    ways = {"pin_rank_warm": pin_rank, "numabind_apply": apply_only, "recipe_main_thread": recipe,
            "python_loop_all_threads": loop_all}
    if psutil is None:
        del ways["recipe_main_thread"]
    times: dict[str, list[int]] = {k: [] for k in ways}
    bound: dict[str, int] = {}
    for _ in range(a.reps):
        for name, fn in ways.items():
            spread()
            s = time.perf_counter_ns()
            fn()
            times[name].append(time.perf_counter_ns() - s)
            bound[name] = threads_on(target)
    alive = len(os.listdir("/proc/self/task"))
    stop.set()
    return {"threads": alive, "cpus": _core.format_cpulist(target),
            "times_ns": times, "threads_on_rank_cpus": bound}


def main() -> None:
    p = argparse.ArgumentParser()
    sub = p.add_subparsers(dest="cmd", required=True)
    pin = sub.add_parser("pin")
    pin.add_argument("--rank", type=int, default=0)
    pin.add_argument("--apply", action="store_true")
    pin.add_argument("--warm", type=int, default=0)
    pin.add_argument("--loaded", action="store_true")
    rec = sub.add_parser("recipe")
    rec.add_argument("--cpus", required=True)
    rec.add_argument("--node", type=int, default=0)
    rec.add_argument("--warm", type=int, default=0)
    th = sub.add_parser("threads")
    th.add_argument("--rank", type=int, default=1)
    th.add_argument("--threads", type=int, default=1)
    th.add_argument("--reps", type=int, default=10)
    a = p.parse_args()
    out = {"pin": cmd_pin, "recipe": cmd_recipe, "threads": cmd_threads}[a.cmd](a)
    print(json.dumps(out))


if __name__ == "__main__":
    main()
