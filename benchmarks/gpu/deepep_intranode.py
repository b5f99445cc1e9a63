"""DeepEP's intranode test (tests/legacy/test_intranode.py of a DeepEP 2.x
source tree, tests/test_intranode.py of 1.x; run unmodified) with the rank
set up one of three ways:

  none       DeepEP's own init_dist: no pinning (what the test does today)
  hardcoded  the recipe people copy: cores rank*12 .. rank*12+11 on the main
             thread, numa_set_preferred(rank // 4), a node-wide NVSHMEM_HCA_LIST
  numabind   numabind.integrations.deep_ep.init_dist: pin_rank first

    python benchmarks/gpu/deepep_intranode.py --deepep-src DIR --mode numabind [--num-processes 4]

Each rank prints "BINDING {...}" (what it runs on after init_dist); rank 0
prints DeepEP's own "[tuning] Best ..." lines, which summarize_deepep.py reads.
"""

from __future__ import annotations

import argparse
import ctypes
import json
import os
import sys


def deep_ep_init_dist():
    """DeepEP's own init_dist: deep_ep.utils.envs (2.x) or tests/utils.py (1.x)."""
    try:
        from deep_ep.utils.envs import init_dist
    except ImportError:
        from utils import init_dist
    return init_dist


def hardcoded_init_dist(local_rank: int, num_local_ranks: int, seed: int = 0):
    os.sched_setaffinity(0, range(local_rank * 12, local_rank * 12 + 12))
    libnuma = ctypes.CDLL("libnuma.so.1")
    libnuma.numa_set_preferred(local_rank // 4)
    os.environ["NVSHMEM_ENABLE_NIC_PE_MAPPING"] = "1"
    os.environ["NVSHMEM_HCA_LIST"] = ",".join(f"mlx5_{i}:1" for i in range(8))
    return deep_ep_init_dist()(local_rank, num_local_ranks)


def _binding(mode: str, local_rank: int) -> dict:
    tids = os.listdir("/proc/self/task")
    cpus = set()
    for tid in tids:
        try:
            cpus |= os.sched_getaffinity(int(tid))
        except ProcessLookupError:
            pass
    main = sorted(os.sched_getaffinity(0))
    return {"mode": mode, "local_rank": local_rank, "threads": len(tids),
            "main_thread_cpus": f"{main[0]}-{main[-1]} ({len(main)})",
            "all_threads_cpus": len(cpus), "hca_list": os.environ.get("NVSHMEM_HCA_LIST")}


def _loop(local_rank: int, num_local_ranks: int, test_args: argparse.Namespace, mode: str, tests_dir: str):
    sys.path.insert(0, tests_dir)
    import test_intranode  # DeepEP's test, unmodified
    if mode == "numabind":
        from numabind.integrations.deep_ep import init_dist
    elif mode == "hardcoded":
        init_dist = hardcoded_init_dist
    else:
        init_dist = deep_ep_init_dist()

    def traced(lr: int, n: int, *seed: int):
        out = init_dist(lr, n, *seed)
        print("BINDING " + json.dumps(_binding(mode, lr)), flush=True)
        return out

    test_intranode.init_dist = traced
    test_intranode.test_loop(local_rank, num_local_ranks, test_args)


class _TestArgs(argparse.Namespace):
    """The test's arguments; a flag this script does not know (DeepEP
    versions add store_true flags such as --use-fabric) reads as unset."""

    def __getattr__(self, name: str) -> bool:
        if name.startswith("__"):
            raise AttributeError(name)
        return False


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--deepep-src", required=True, help="DeepEP source tree (its tests/legacy is used)")
    p.add_argument("--mode", choices=("none", "hardcoded", "numabind"), required=True)
    p.add_argument("--num-processes", type=int, default=4)
    p.add_argument("--num-tokens", type=int, default=4096)
    p.add_argument("--hidden", type=int, default=7168)
    p.add_argument("--num-topk", type=int, default=8)
    p.add_argument("--num-experts", type=int, default=256)
    a = p.parse_args()
    test_args = _TestArgs(num_processes=a.num_processes, num_tokens=a.num_tokens, hidden=a.hidden,
                                   num_topk=a.num_topk, num_experts=a.num_experts, allow_mnnvl=False)
    import torch.multiprocessing
    tests_dir = os.path.join(os.path.abspath(a.deepep_src), "tests")
    if os.path.isdir(os.path.join(tests_dir, "legacy")):
        tests_dir = os.path.join(tests_dir, "legacy")
    torch.multiprocessing.spawn(_loop, args=(a.num_processes, test_args, a.mode, tests_dir),
                                nprocs=a.num_processes)


if __name__ == "__main__":
    main()
