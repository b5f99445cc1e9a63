"""Pinned host<->device copy bandwidth from numabind's plan vs the best core.

For every visible GPU g: the process is put where numabind puts local rank g
(`pin_rank(g)`: every thread on the rank's CPUs, memory policy on its node),
a pinned host buffer is allocated there and copied to and from the GPU; then
the same copies run from each core of a sweep (every thread on that one core,
the buffer allocated on that core's NUMA node); then numabind's placement
once more, so drift hits both. Reported per GPU: numabind's median GB/s, the
best and worst core's, and numabind / best.

    python3 benchmarks/gpu/copy_bandwidth.py [--mib 256] [--copies 8] [--max-cores 32] [--gpus 0,1,2,3]

One process, about 30-60 s on a 4-GPU, 64-CPU host with the defaults.
Prints Markdown, then the raw figures as one JSON line prefixed "JSON ".
`--fake` replaces CUDA with a made-up copy (no GPU, no PyTorch needed), to
check everything else on any machine; its numbers mean nothing.
"""
from __future__ import annotations

import argparse
import ctypes
import ctypes.util
import json
import os
import statistics
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent / "cpu"))

import harness as h  # noqa: E402

import numabind  # noqa: E402  (before torch: its topology is read while the process may use every CPU)

MATCH = 0.98   # "equals the best core": within 2 %, about the spread of repeated copies


def every_thread_on(cpus: set[int]) -> None:
    for tid in os.listdir("/proc/self/task"):
        try:
            os.sched_setaffinity(int(tid), cpus)
        except ProcessLookupError:
            pass


class MemPolicy:
    """numa_set_preferred through libnuma when present (the calling thread
    allocates, so its policy places the buffer); without libnuma the default
    local policy puts pages on the node of the core that touches them."""

    def __init__(self) -> None:
        name = ctypes.util.find_library("numa") or "libnuma.so.1"
        try:
            self.lib = ctypes.CDLL(name)
            if self.lib.numa_available() < 0:
                self.lib = None
        except OSError:
            self.lib = None

    def prefer(self, node: int | None) -> None:
        if self.lib is not None and node is not None:
            self.lib.numa_set_preferred(node)

    def reset(self) -> None:
        """Back to the default (local) policy, so numabind's own choice,
        default included, is what places its buffer."""
        if self.lib is not None:
            self.lib.numa_set_localalloc()


class CudaCopier:
    def __init__(self, mib: int, copies: int) -> None:
        import torch

        self.torch = torch
        torch.set_num_threads(1)   # buffers are touched by the calling thread only
        self.nbytes = mib << 20
        self.copies = copies
        self.dev = {}
        self.pinning = "cudaHostRegister"

    def name(self, gpu: int) -> str:
        return self.torch.cuda.get_device_name(gpu)

    def host_buffer(self):
        """Pageable memory touched by the calling thread alone (so its CPU and
        memory policy place every page), then pinned in place with
        cudaHostRegister. Not pin_memory=True: PyTorch's caching host
        allocator would hand the first placement back every time."""
        torch = self.torch
        buf = torch.empty(self.nbytes, dtype=torch.uint8)
        buf.fill_(1)
        register = getattr(torch.cuda.cudart(), "cudaHostRegister", None)
        if register is None:   # an older binding: fall back, and say so in the output
            self.pinning = "pin_memory() (caching host allocator: placement may be reused)"
            return buf.pin_memory()
        rc = register(buf.data_ptr(), self.nbytes, 0)
        if int(rc) != 0:
            raise RuntimeError(f"cudaHostRegister failed: {rc}")
        return buf

    def release(self, buf) -> None:
        if self.pinning == "cudaHostRegister":
            self.torch.cuda.cudart().cudaHostUnregister(buf.data_ptr())

    def measure(self, gpu: int, host) -> dict[str, list[float]]:
        torch = self.torch
        if gpu not in self.dev:
            self.dev[gpu] = torch.empty(self.nbytes, dtype=torch.uint8, device=f"cuda:{gpu}")
        dev = self.dev[gpu]
        out: dict[str, list[float]] = {"h2d": [], "d2h": []}
        with torch.cuda.device(gpu):
            stream = torch.cuda.Stream()
            with torch.cuda.stream(stream):
                for direction in ("h2d", "d2h"):
                    src, dst = (host, dev) if direction == "h2d" else (dev, host)
                    for i in range(self.copies + 2):
                        start = torch.cuda.Event(enable_timing=True)
                        end = torch.cuda.Event(enable_timing=True)
                        start.record(stream)
                        dst.copy_(src, non_blocking=True)
                        end.record(stream)
                        end.synchronize()
                        if i >= 2:  # two warm-up copies
                            out[direction].append(self.nbytes / (start.elapsed_time(end) * 1e-3) / 1e9)
        return out


class FakeCopier:
    """No GPU: a memcpy between two host buffers stands in for the copy."""

    def __init__(self, mib: int, copies: int) -> None:
        self.nbytes = mib << 20
        self.copies = copies
        self.pinning = "none (fake)"

    def name(self, gpu: int) -> str:
        return "fake"

    def host_buffer(self):
        b = bytearray(self.nbytes)
        b[::4096] = b"\x01" * len(b[::4096])
        return b

    def release(self, buf) -> None:
        pass

    def measure(self, gpu: int, host) -> dict[str, list[float]]:
        out: dict[str, list[float]] = {"h2d": [], "d2h": []}
        other = bytearray(self.nbytes)
        for direction in out:
            for _ in range(self.copies):
                t0 = time.perf_counter()
                other[:] = host
                out[direction].append(self.nbytes / (time.perf_counter() - t0) / 1e9)
        return out


def sweep_cores(topo, allowed: set[int], max_cores: int) -> list[tuple[int, int | None]]:
    """One CPU per physical core (the first allowed sibling), evenly thinned
    to at most max_cores, with its NUMA node."""
    first: dict[int, int] = {}
    for c in topo.cpus:
        if c.id in allowed and c.core not in first:
            first[c.core] = c.id
    cpus = sorted(first.values())
    if len(cpus) > max_cores:
        step = len(cpus) / max_cores
        cpus = [cpus[int(i * step)] for i in range(max_cores)]
    node_of = {c.id: c.node for c in topo.cpus}
    return [(c, node_of.get(c)) for c in cpus]


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--mib", type=int, default=256, help="copy size (default 256 MiB)")
    p.add_argument("--copies", type=int, default=8, help="timed copies per direction and placement")
    p.add_argument("--max-cores", type=int, default=32, help="cores swept per GPU (evenly spread)")
    p.add_argument("--gpus", default=None, help="visible GPU indices (default: every GPU numabind plans)")
    p.add_argument("--fake", action="store_true", help="no CUDA: check the script, measure nothing real")
    a = p.parse_args()

    allowed = os.sched_getaffinity(0)
    plan = numabind.plan()                                  # one rank per visible GPU
    numabind.pin_rank(0, dry_run=True, local_world_size=len(plan))  # pin_rank's topology, read now
    topo = numabind.topology()
    gpus = [int(g) for g in a.gpus.split(",")] if a.gpus else [r.local_rank for r in plan.ranks if r.gpu is not None]
    if a.fake and not gpus:
        gpus = [r.local_rank for r in plan.ranks][:2]
    if not gpus:
        print("no GPU in numabind's plan: run this on the GPU host (or --fake with NUMABIND_FSROOT at a tree "
              "with GPUs, as tests/test_benchmarks.py does)", file=sys.stderr)
        return 2
    copier = FakeCopier(a.mib, a.copies) if a.fake else CudaCopier(a.mib, a.copies)
    mem = MemPolicy()
    cores = sweep_cores(topo, allowed, a.max_cores)
    res: dict = {"command": "python3 benchmarks/gpu/copy_bandwidth.py" + "".join(f" {x}" for x in sys.argv[1:]),
                 "machine": h.machine_info(HERE.parent.parent, sys.executable), "mib": a.mib, "copies": a.copies,
                 "libnuma": mem.lib is not None, "fake": a.fake, "gpus": {}}
    t0 = time.time()
    for g in gpus:
        per_core: dict[int, dict] = {}
        nb: dict[str, list[float]] = {"h2d": [], "d2h": []}

        def numabind_once() -> dict:
            mem.reset()
            r = numabind.pin_rank(g, local_world_size=len(plan))
            buf = copier.host_buffer()
            got = copier.measure(g, buf)
            copier.release(buf)
            for k in nb:
                nb[k] += got[k]
            return r.to_dict()

        placed = numabind_once()
        buffers: dict[int | None, object] = {}
        for cpu, node in cores:
            every_thread_on({cpu})
            if node not in buffers:     # one buffer per NUMA node, allocated from a core of it
                mem.prefer(node)
                buffers[node] = copier.host_buffer()
            got = copier.measure(g, buffers[node])
            per_core[cpu] = {"node": node, "h2d": statistics.median(got["h2d"]), "d2h": statistics.median(got["d2h"])}
        for buf in buffers.values():
            copier.release(buf)
        buffers.clear()
        numabind_once()
        every_thread_on(allowed)
        entry: dict = {"name": copier.name(g), "numabind_cpus": placed["cpus"], "numabind_node": placed["numa_node"],
                       "numabind_mem_policy": placed["mem_policy"], "numabind_gbps": nb, "per_core": per_core}
        for d in ("h2d", "d2h"):
            best = max(per_core, key=lambda c: per_core[c][d])
            worst = min(per_core, key=lambda c: per_core[c][d])
            med = statistics.median(nb[d])
            entry[d] = {"numabind": med, "best_core": best, "best": per_core[best][d], "worst_core": worst,
                        "worst": per_core[worst][d], "median_core": statistics.median(c[d] for c in per_core.values()),
                        "ratio_to_best": med / per_core[best][d]}
        res["gpus"][g] = entry
    res["seconds"] = round(time.time() - t0, 1)
    res["loadavg_end"] = h.loadavg()
    res["pinning"] = copier.pinning

    print(f"## Pinned host<->device copies: numabind's plan vs the best core{' (FAKE: no CUDA)' if a.fake else ''}\n")
    print(f"Command: `{res['command']}`; {a.mib} MiB pinned buffer, median of {a.copies} copies per direction "
          f"(numabind: twice as many, before and after the sweep); {len(cores)} cores swept per GPU; "
          f"libnuma {'used' if mem.lib else 'absent (first-touch placement)'}; pinned with {copier.pinning}; "
          f"{res['seconds']} s. "
          f"Load average at start {res['machine']['loadavg_start']}.\n")
    rows = []
    for g, e in res["gpus"].items():
        for d in ("h2d", "d2h"):
            x = e[d]
            rows.append([str(g), e["name"], d.upper(), numabind._core.format_cpulist(e["numabind_cpus"]),
                         f"{x['numabind']:.1f}", f"{x['best']:.1f} (CPU {x['best_core']})",
                         f"{x['median_core']:.1f}", f"{x['worst']:.1f} (CPU {x['worst_core']})",
                         f"{x['ratio_to_best']:.3f}",
                         "yes" if x["ratio_to_best"] >= MATCH else "no"])
    print(h.md_table(["GPU", "name", "direction", "numabind CPUs", "numabind GB/s", "best core GB/s",
                      "median core GB/s", "worst core GB/s", "numabind / best", f"equal (>= {MATCH})"], rows))
    print("\nJSON " + json.dumps(res, default=str))
    return 0


if __name__ == "__main__":
    sys.exit(main())
