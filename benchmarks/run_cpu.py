#!/usr/bin/env python3
"""Every CPU-side benchmark of issue 8, side by side with what users would
use instead, in one run:

  1. pin cost, cold (fresh process, topology read included) and warm
     (topology cached): numabind's C core, numabind.pin_rank, and the
     hard-coded recipe (psutil cpu_affinity + ctypes numa_set_preferred,
     imports included); on this host, on a tree of this host's CPUs with two
     made-up GPUs (so the plan can really be applied), and on fixture trees
     of a DGX H100 and an Azure ND96isr H100 v5 (plan only: their CPUs are
     not here);
  2. binding with 1, 10, 100, 1000 threads alive: numabind's apply vs hwloc's
     hwloc_set_cpubind(PROCESS) vs a plain loop over /proc/self/task, and in
     Python pin_rank vs the recipe (which binds the main thread only);
  3. whole processes: numabind exec -- true vs numactl / hwloc-bind / taskset;
  4. topology load: nmb_topology_create vs hwloc_topology_load with I/O, in
     process, and numabind show vs lstopo-no-graphics as whole processes;
  5. placement quality on every machine of tests/machines (nothing timed).

    python3 benchmarks/run_cpu.py [--reps N] [--quick] [--out DIR] [--no-write]

Run it with the Python that has numabind and psutil installed. Writes
docs/results/bench-cpu-DATE.{md,json} (or --out DIR) and prints the tables.
Needs gcc for the C rows, hwloc's headers for hwloc's in-process rows
(/usr/include/hwloc.h, $HWLOC_INCLUDE, else `apt-get download libhwloc-dev`
unpacked into the build directory), numactl, hwloc-bind, lstopo-no-graphics
and taskset for the whole-process rows; a row whose tool is missing says so.
"""
from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
sys.path.insert(0, str(HERE / "cpu"))

import cbuild  # noqa: E402
import fixtures  # noqa: E402
import harness as h  # noqa: E402
import quality  # noqa: E402

PY = sys.executable
CHILD = str(HERE / "cpu" / "child.py")
THREAD_COUNTS = (1, 10, 100, 1000)
CLEAN_ENV = {k: v for k, v in os.environ.items()
             if k not in ("NUMABIND_FSROOT", "CUDA_VISIBLE_DEVICES", "LOCAL_RANK", "LOCAL_WORLD_SIZE",
                          "SLURM_LOCALID", "OMPI_COMM_WORLD_LOCAL_RANK", "MPI_LOCALRANKID", "PMI_LOCAL_RANK")}


def env(**kw: str) -> dict[str, str]:
    e = dict(CLEAN_ENV)
    e.update(kw)
    return e


def log(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


# ---- 1. pin cost -------------------------------------------------------------

def bench_pin(c: str | None, trees: dict, reps: int, warm: int) -> dict:
    """Fresh processes, interleaved. Each target: (tree, rank, apply?)."""
    # No "this host" target: a host without a GPU has no rank to pin (the
    # host-gpus tree is this host's CPUs with two made-up GPUs).
    targets = {
        "host-gpus": (trees["host-gpus"], 1, True),
        "dgx-h100": (trees["dgx-h100"], 5, False),
        "azure-nd96isr-h100-v5": (trees["azure-nd96isr-h100-v5"], 5, False),
    }
    results: dict = {"targets": {k: {"fsroot": str(v[0]) if v[0] else "/", "rank": v[1], "apply": v[2]}
                                 for k, v in targets.items()}, "raw": {}}
    raw: dict[str, list] = {}

    def c_variant(name: str, root, rank: int, apply: bool):
        argv = [c, "pin", "--rank", str(rank)] + (["--fsroot", str(root)] if root else []) + (["--apply"] if apply else [])

        def run() -> float:
            out, wall = h.run_json(argv, env())
            out["wall_ns"] = wall
            raw.setdefault(f"C {name}", []).append(out)
            return wall
        return run

    def py_variant(name: str, root, rank: int, apply: bool):
        argv = [PY, CHILD, "pin", "--rank", str(rank), "--warm", str(warm)] + (["--apply"] if apply else [])
        e = env(NUMABIND_FSROOT=str(root)) if root else env()

        def run() -> float:
            out, wall = h.run_json(argv, e)
            out["wall_ns"] = wall
            raw.setdefault(f"Python {name}", []).append(out)
            return wall
        return run

    def recipe() -> float:
        out, wall = h.run_json([PY, CHILD, "recipe", "--cpus", host_cpus, "--node", "0", "--warm", str(warm)], env())
        out["wall_ns"] = wall
        raw.setdefault("recipe this host", []).append(out)
        return wall

    def py_pass() -> float:
        return h.spawn_time([PY, "-c", "pass"], env())

    plan = subprocess.run([PY, "-m", "numabind", "plan", "--json", "--local-rank", "1"], capture_output=True,
                          text=True, env=env(NUMABIND_FSROOT=str(trees["host-gpus"])), check=True)
    host_cpus = ",".join(map(str, json.loads(plan.stdout)["ranks"][0]["cpus"]))
    results["recipe_cpus"] = host_cpus

    variants = {}
    for name, (root, rank, apply) in targets.items():
        if c:
            variants[f"C {name}"] = c_variant(name, root, rank, apply)
        variants[f"Python {name}"] = py_variant(name, root, rank, apply)
    try:
        import psutil  # noqa: F401
        variants["recipe this host"] = recipe
    except ImportError:
        results["recipe_missing"] = "psutil is not installed in this Python"
    variants["python -c pass"] = py_pass
    walls = h.interleave(variants, reps)
    results["wall_ns"] = walls
    results["raw"] = raw
    return results


# ---- 2. threads ----------------------------------------------------------------

def bench_threads(c: str | None, trees: dict, reps: int) -> dict:
    out: dict = {"C": {}, "Python": {}}
    root = str(trees["host-gpus"])
    for n in THREAD_COUNTS:
        if c:
            res, _ = h.run_json([c, "threads", "--fsroot", root, "--rank", "1", "--threads", str(n),
                                 "--reps", str(reps)], env())
            out["C"][n] = res
        res, _ = h.run_json([PY, CHILD, "threads", "--rank", "1", "--threads", str(n), "--reps", str(reps)],
                            env(NUMABIND_FSROOT=root, OPENBLAS_NUM_THREADS="1", OMP_NUM_THREADS="1"))
        out["Python"][n] = res
    return out


# ---- 3. whole processes ------------------------------------------------------------

def bench_exec(c: str | None, trees: dict, reps: int, cpu: str) -> dict:
    nb = Path(PY).parent / "numabind"
    numabind = [str(nb)] if nb.exists() else [PY, "-m", "numabind"]
    host = str(trees["host-gpus"])
    true = shutil.which("true") or "/bin/true"
    cmds: dict[str, tuple[list[str], dict]] = {
        "true": ([true], env()),
        f"taskset -c {cpu} true": (["taskset", "-c", cpu, true], env()),
        f"numactl --physcpubind={cpu} --membind=0 true": (["numactl", f"--physcpubind={cpu}", "--membind=0", true],
                                                           env()),
        f"numactl --physcpubind={cpu} --preferred=0 true": (["numactl", f"--physcpubind={cpu}", "--preferred=0",
                                                              true], env()),
        f"hwloc-bind -p pu:{cpu} --membind -p node:0 -- true": (["hwloc-bind", "-p", f"pu:{cpu}", "--membind", "-p",
                                                                  "node:0", "--", true], env()),
        "numabind exec --local-rank 1 -- true (host-gpus tree)": (
            [*numabind, "exec", "--local-rank", "1", "--", true], env(NUMABIND_FSROOT=host)),
        "numabind exec --local-rank 0 -- true (this host: no GPU, runs unpinned)": (
            [*numabind, "exec", "--local-rank", "0", "--", true], env()),
        "python -c pass": ([PY, "-c", "pass"], env()),
        "python -c 'import numpy'": ([PY, "-c", "import numpy"], env()),
        "python -c 'import numabind'": ([PY, "-c", "import numabind"], env()),
    }
    if c:
        cmds["bench exec --rank 1 -- true (C core, host-gpus tree)"] = (
            [c, "exec", "--fsroot", host, "--rank", "1", "--", true], env())
    missing = {k: f"{v[0][0]} not found" for k, v in cmds.items() if not shutil.which(v[0][0])}
    variants = {k: (lambda a=a, e=e: h.spawn_time(a, e)) for k, (a, e) in cmds.items() if k not in missing}
    return {"wall_ns": h.interleave(variants, reps), "missing": missing,
            "argv": {k: v[0] for k, v in cmds.items()}}


# ---- 4. topology load ----------------------------------------------------------------

def bench_topo(c: str | None, trees: dict, procs: int, reps: int, whole_reps: int) -> dict:
    out: dict = {"in_process": {}, "whole_process": {}}
    roots = {"this host": None, "dgx-h100": str(trees["dgx-h100"])}
    if c:
        for name, root in roots.items():
            runs = []
            for _ in range(procs):
                res, _ = h.run_json([c, "topo", "--reps", str(reps)] + (["--fsroot", root] if root else []), env())
                runs.append(res)
            out["in_process"][name] = runs
    nb = Path(PY).parent / "numabind"
    numabind = [str(nb)] if nb.exists() else [PY, "-m", "numabind"]
    for name, root in roots.items():
        e_nb = env(NUMABIND_FSROOT=root) if root else env()
        e_hw = env(HWLOC_FSROOT=root) if root else env()
        cmds = {
            "numabind show": ([*numabind, "show"], e_nb),
            "numabind show --json": ([*numabind, "show", "--json"], e_nb),
            "lstopo-no-graphics --whole-io": (["lstopo-no-graphics", "--whole-io"], e_hw),
            "lstopo-no-graphics": (["lstopo-no-graphics"], e_hw),
            "lstopo-no-graphics --whole-io --of xml": (["lstopo-no-graphics", "--whole-io", "--of", "xml"], e_hw),
            "hwloc-ls": (["hwloc-ls"], e_hw),
        }
        variants = {k: (lambda a=a, e=e: h.spawn_time(a, e)) for k, (a, e) in cmds.items() if shutil.which(a[0])}
        out["whole_process"][name] = h.interleave(variants, whole_reps)
    return out


# ---- report ------------------------------------------------------------------------------

def med(v):
    return h.stats(v)["median"]


def report(res: dict) -> str:
    m = res["machine"]
    L = [f"# numabind CPU benchmarks, {m['date']}", "",
         f"Machine: {m['os']} (Debian {m['debian_version']}), kernel {m['kernel']}, {m['cpu']}, "
         f"{m['cpus_online']} CPUs, {m['numa_nodes']} NUMA node(s), {m['mem_gib']} GiB, "
         f"virtualization: {m['virtualization']}. Python {m['python']}, numabind {m['numabind']} "
         f"(built from {m.get('numabind_built_from') or 'unknown'}; checkout at {m['git_commit'][:10]}), "
         f"{m.get('python_packages', '')}, Debian packages {m['packages']}.",
         f"Load average at start {m['loadavg_start']}, at end {res['loadavg_end']}.",
         f"Command: `{res['command']}`. Times: median (p10–p90) of {res['reps']} interleaved repetitions "
         f"unless said otherwise.", ""]

    if all(k in res for k in ("pin", "threads", "exec", "topo")):
        L += targets_section(res)
    if "pin" in res:
        L += pin_section(res["pin"])
    if "threads" in res:
        L += threads_section(res["threads"])
    if "exec" in res:
        L += exec_section(res["exec"])
    if "topo" in res:
        L += topo_section(res["topo"])
    if "quality_table" in res:
        L += ["## 5. Placement quality", "", res["quality_table"], ""]
    return "\n".join(L)


def verdict(value: float, target: float, below: bool) -> str:
    """'met' or how far off: value/target when it must be below, target/value when above."""
    ok = value < target if below else value >= target
    off = value / target if below else target / value
    return "**met**" if ok else f"**missed**, {off:.1f}× off"


def targets_section(res: dict) -> list[str]:
    pin, th, ex, tp = res["pin"], res["threads"], res["exec"], res["topo"]
    rows = []
    craw = pin["raw"].get("C dgx-h100")
    capply = pin["raw"].get("C host-gpus")
    if craw and capply:
        topo, plan = med([r["topology_ns"] for r in craw]), med([r["plan_ns"] for r in craw])
        apply = med([r["apply_ns"] for r in capply])
        total = topo + plan + apply
        rows.append(["plan + apply, cold, 8-GPU fixture (dgx-h100)", "< 1 ms",
                     f"C core: topology {h.fmt_time(topo)} + plan {h.fmt_time(plan)} (dgx-h100 tree) + apply "
                     f"{h.fmt_time(apply)} (host-gpus tree; the DGX's CPUs are not here) = {h.fmt_time(total)}",
                     verdict(total, 1e6, True)])
        rows.append(["", "", f"plan + apply alone (topology already read): {h.fmt_time(plan + apply)}",
                     verdict(plan + apply, 1e6, True)])
    praw = pin["raw"].get("Python dgx-h100")
    if praw:
        p = med([r["pin_cold_ns"] for r in praw])
        i = med([r["import_ns"] for r in praw])
        rows.append(["", "", f"numabind.pin_rank(5, dry_run=True), first call: {h.fmt_time(p)} "
                     f"(+ import numabind {h.fmt_time(i)})", verdict(p, 1e6, True)])
    c1000 = th["C"].get(1000) or th["C"].get("1000")
    p1000 = th["Python"].get(1000) or th["Python"].get("1000")
    if c1000:
        v = med(c1000["numabind_apply_ns"])
        rows.append(["binding 1000 threads", "< 10 ms", f"C nmb_plan_apply: {h.fmt_time(v)}", verdict(v, 10e6, True)])
    if p1000:
        v = med(p1000["times_ns"]["pin_rank_warm"])
        rows.append(["", "", f"numabind.pin_rank (warm): {h.fmt_time(v)}", verdict(v, 10e6, True)])
    for name, runs in tp["in_process"].items():
        if runs and "hwloc_io_all_ns" in runs[0]:
            nb = med([x for r in runs for x in r["numabind_ns"][1:]])
            hw = med([x for r in runs for x in r["hwloc_io_all_ns"][1:]])
            rows.append(["topology load >= 10× faster than hwloc's with I/O" if name == "this host" else "",
                         ">= 10×" if name == "this host" else "",
                         f"{name}, in process: hwloc_topology_load (I/O: all) {h.fmt_time(hw)} / "
                         f"nmb_topology_create {h.fmt_time(nb)} = {hw / nb:.1f}×", verdict(hw / nb, 10, False)])
    for name, wp in tp["whole_process"].items():
        if "numabind show" in wp and "lstopo-no-graphics --whole-io" in wp:
            r = h.ratio(wp["lstopo-no-graphics --whole-io"], wp["numabind show"])
            rows.append(["", "", f"{name}, whole process: lstopo-no-graphics --whole-io / numabind show = {r:.2f}×",
                         verdict(r, 10, False)])
    w = ex["wall_ns"]
    nb_key = next((k for k in w if k.startswith("numabind exec --local-rank 1")), None)
    ref = next((k for k in w if k.startswith("numactl") and "membind" in k), None)
    if nb_key and ref:
        r = h.ratio(w[nb_key], w[ref])
        rows.append(["`numabind exec -- true` within 1.2× of `numactl … true`", "<= 1.2×",
                     f"{h.fmt_time(med(w[nb_key]))} / {h.fmt_time(med(w[ref]))} = {r:.1f}×", verdict(r, 1.2, True)])
        ck = next((k for k in w if k.startswith("bench exec")), None)
        if ck:
            r = h.ratio(w[ck], w[ref])
            rows.append(["", "", f"the C core as a process (benchmarks/cpu/bench.c exec, not shipped): "
                         f"{h.fmt_time(med(w[ck]))} / {h.fmt_time(med(w[ref]))} = {r:.2f}×", verdict(r, 1.2, True)])
    rows.append(["`numabind show` >= 5× faster than `nvidia-smi topo -m`", ">= 5×",
                 "GPU host only: `python3 benchmarks/gpu/show_vs_nvidia_smi.py`", "-"])
    return ["## Targets", "", h.md_table(["target", "", "measured (medians)", "verdict"], rows), ""]


def pin_section(pin: dict) -> list[str]:
    L = ["## 1. Pin cost, cold and warm", ""]
    rows = []
    for name, t in pin["targets"].items():
        what = "topology + plan + apply" if t["apply"] else "topology + plan (dry_run)"
        craw = pin["raw"].get(f"C {name}")
        praw = pin["raw"].get(f"Python {name}")
        if craw:
            rows.append([f"C core, {name} (rank {t['rank']})", what,
                         h.fmt_stats([r["topology_ns"] for r in craw]), h.fmt_stats([r["plan_ns"] for r in craw]),
                         h.fmt_stats([r["apply_ns"] for r in craw]) if t["apply"] else "-",
                         h.fmt_stats([r["total_ns"] for r in craw]), "-",
                         h.fmt_stats(pin["wall_ns"][f"C {name}"])])
        if praw:
            warm = [x for r in praw for x in r["pin_warm_ns"]]
            rows.append([f"numabind.pin_rank, {name} (rank {t['rank']})", what, "", "", "",
                         h.fmt_stats([r["pin_cold_ns"] for r in praw]) + f"; import {h.fmt_stats([r['import_ns'] for r in praw])}",
                         h.fmt_stats(warm), h.fmt_stats(pin["wall_ns"][f"Python {name}"])])
    rraw = pin["raw"].get("recipe this host")
    if rraw:
        warm = [x for r in rraw for x in r["pin_warm_ns"]]
        rows.append([f"recipe, this host (CPUs {pin['recipe_cpus']}, node 0)",
                     "psutil cpu_affinity + numa_set_preferred", "", "", "",
                     h.fmt_stats([r["pin_cold_ns"] for r in rraw]) + f"; import {h.fmt_stats([r['import_ns'] for r in rraw])}",
                     h.fmt_stats(warm), h.fmt_stats(pin["wall_ns"]["recipe this host"])])
    if pin.get("recipe_missing"):
        rows.append(["recipe", pin["recipe_missing"], "", "", "", "", "", ""])
    rows.append(["python -c pass", "interpreter start and exit", "", "", "", "", "",
                 h.fmt_stats(pin["wall_ns"]["python -c pass"])])
    L += [h.md_table(["what", "does", "topology", "plan", "apply", "cold total (in process)",
                      "warm (topology cached)", "whole process"], rows), ""]
    return L


def threads_section(th: dict) -> list[str]:
    L = ["## 2. Binding with threads alive", ""]
    rows = []
    for n in THREAD_COUNTS:
        cr = th["C"].get(n) or th["C"].get(str(n))
        pr = th["Python"].get(n) or th["Python"].get(str(n))
        row = [str(n)]
        if cr:
            row += [h.fmt_stats(cr["numabind_apply_ns"]),
                    h.fmt_stats(cr["hwloc_set_cpubind_process_ns"]) if "hwloc_set_cpubind_process_ns" in cr else "-",
                    h.fmt_stats(cr["naive_all_threads_ns"])]
        else:
            row += ["-", "-", "-"]
        if pr:
            t = pr["times_ns"]
            b = pr["threads_on_rank_cpus"]
            row += [f"{pr['threads']}", h.fmt_stats(t["pin_rank_warm"]), h.fmt_stats(t["numabind_apply"]),
                    h.fmt_stats(t["python_loop_all_threads"]),
                    f"{h.fmt_stats(t['recipe_main_thread'])} ({b['recipe_main_thread']}/{pr['threads']} bound)"
                    if "recipe_main_thread" in t else "psutil missing"]
        rows.append(row)
    L += [h.md_table(["threads (C)", "C nmb_plan_apply", "C hwloc_set_cpubind(PROCESS)", "C loop over tasks",
                      "threads (Python)", "pin_rank warm", "PlanHandle.apply", "Python loop over tasks",
                      "recipe (main thread only)"], rows), ""]
    return L


def exec_section(ex: dict) -> list[str]:
    w = ex["wall_ns"]
    L = ["## 3. Whole processes: bind, then run `true`", ""]
    ref = next((k for k in w if k.startswith("numactl") and "membind" in k), None)
    rows = [[f"`{k}`", h.fmt_stats(v), f"{h.ratio(v, w[ref]):.2f}" if ref else "-"] for k, v in w.items()]
    rows += [[f"`{k}`", why, "-"] for k, why in ex["missing"].items()]
    L += [h.md_table(["command", "wall", f"/ {ref}"], rows), ""]
    return L


def topo_section(tp: dict) -> list[str]:
    L = ["## 4. Topology load", ""]
    rows = []
    for name, runs in tp["in_process"].items():
        first = {k: [r[k][0] for r in runs] for k in runs[0] if k.endswith("_ns")}
        rest = {k: [x for r in runs for x in r[k][1:]] for k in runs[0] if k.endswith("_ns")}
        for k in first:
            rows.append([name, k[:-3], h.fmt_stats(first[k]), h.fmt_stats(rest[k]),
                         f"{med(first[k]) / med(first['numabind_ns']):.1f}×",
                         f"{med(rest[k]) / med(rest['numabind_ns']):.1f}×"])
        r0 = runs[0]
        rows.append([name, "objects", f"numabind: {r0['numabind_pci']} PCI functions, {r0['numabind_gpus']} GPUs, "
                     f"{r0['numabind_nics']} NICs", f"hwloc whole-io: {r0.get('hwloc_pci_all', '-')} PCI, "
                     f"{r0.get('hwloc_osdev_all', '-')} OS devices", "", ""])
    L += [h.md_table(["tree", "library call", "first in process", "repeated", "first / numabind",
                      "repeated / numabind"], rows), ""]
    rows = []
    for name, wp in tp["whole_process"].items():
        base = wp.get("numabind show")
        for k, v in wp.items():
            rows.append([name, f"`{k}`", h.fmt_stats(v), f"{h.ratio(v, base):.2f}" if base else "-"])
    L += [h.md_table(["tree", "command", "wall", "/ numabind show"], rows), ""]
    return L


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--reps", type=int, default=30, help="repetitions per comparison (default 30)")
    p.add_argument("--quick", action="store_true", help="3 repetitions: checks the harness, measures nothing")
    p.add_argument("--out", type=Path, default=REPO / "docs" / "results", help="where the .md and .json go")
    p.add_argument("--no-write", action="store_true", help="print only")
    p.add_argument("--only", default="pin,threads,exec,topo,quality", help="comma-separated sections")
    a = p.parse_args()
    reps = 3 if a.quick else a.reps
    only = set(a.only.split(","))
    cmdline = "python3 benchmarks/run_cpu.py" + "".join(f" {x}" for x in sys.argv[1:])

    res: dict = {"command": cmdline, "reps": reps, "machine": h.machine_info(REPO, PY)}
    base = Path(tempfile.mkdtemp(prefix="numabind-bench-", dir=fixtures.base_dir()))
    build = base / "build"
    build.mkdir()
    try:
        c, res["c_build"] = cbuild.build_c(build, PY)
        if c is None:
            log(f"C rows skipped: {res['c_build'].get('why')}")
        log("writing fixture trees")
        trees = {"host-gpus": fixtures.host_gpus(base),
                 "dgx-h100": fixtures.described("dgx-h100", base),
                 "azure-nd96isr-h100-v5": fixtures.described("azure-nd96isr-h100-v5", base)}
        cpu = str(max(os.sched_getaffinity(0)))
        t0 = time.time()
        if "pin" in only:
            log("1. pin cost")
            res["pin"] = bench_pin(c, trees, reps, warm=10 if not a.quick else 2)
        if "threads" in only:
            log("2. threads")
            res["threads"] = bench_threads(c, trees, reps)
        if "exec" in only:
            log("3. whole processes")
            res["exec"] = bench_exec(c, trees, reps, cpu)
        if "topo" in only:
            log("4. topology load")
            res["topo"] = bench_topo(c, trees, procs=3 if a.quick else 10, reps=3 if a.quick else 5, whole_reps=reps)
        if "quality" in only:
            log("5. placement quality")
            q = quality.evaluate(base)
            res["quality"] = q
            res["quality_table"] = quality.table(q)
        res["seconds"] = round(time.time() - t0, 1)
        res["loadavg_end"] = h.loadavg()
    finally:
        shutil.rmtree(base, ignore_errors=True)
    text = report(res)
    print(text)
    if not a.no_write:
        a.out.mkdir(parents=True, exist_ok=True)
        stem = a.out / f"bench-cpu-{time.strftime('%Y-%m-%d')}"
        stem.with_suffix(".json").write_text(json.dumps(res, indent=1, default=str) + "\n")
        stem.with_suffix(".md").write_text(text + "\n")
        log(f"wrote {stem}.md and .json")
    return 0


if __name__ == "__main__":
    sys.exit(main())
