"""Under torchrun on a GPU host: every rank pins itself with numabind before
CUDA starts, then runs CUDA and NCCL; every thread it ends with (CUDA's and
NCCL's included) must sit on the rank's own CPUs, the ranks' CPUs must be
disjoint, and numabind.audit() over NCCL must find nothing. Then one rank
moves its main thread onto a neighbour's CPUs, and audit() must find exactly
that. On a one-GPU host there is no neighbour: the one rank plans with one
core per node held back (reserve_cores=1) and moves its main thread onto
that core instead, which audit() must find as threads-outside alone.

    torchrun --nproc-per-node 4 tests/gpu/check_pin_audit.py   # or 1

Rank 0 prints a JSON summary line "SUMMARY {...}"; any failed check makes
every rank exit non-zero. Not collected by pytest (no GPU in CI).
"""

from __future__ import annotations

import json
import os
import sys

import numabind

ALONE = os.environ.get("LOCAL_WORLD_SIZE") == "1"
plan = numabind.pin_rank(reserve_cores=1 if ALONE else 0)  # before torch touches CUDA

import torch  # noqa: E402
import torch.distributed as dist  # noqa: E402

local = plan.local_rank
torch.cuda.set_device(local)
dist.init_process_group("nccl", device_id=torch.device("cuda", local))
rank, world = dist.get_rank(), dist.get_world_size()
x = torch.full((1 << 20,), float(rank), device="cuda")
dist.all_reduce(x)  # NCCL's proxy threads and CUDA's threads exist from here
torch.cuda.synchronize()
assert x[0].item() == sum(range(world))

failures: list[str] = []


def threads() -> dict[int, list[int]]:
    out = {}
    for tid in os.listdir("/proc/self/task"):
        try:
            out[int(tid)] = sorted(os.sched_getaffinity(int(tid)))
        except ProcessLookupError:
            pass
    return out


mine = set(plan.cpus)
outside = {tid: cpus for tid, cpus in threads().items() if not set(cpus) <= mine}
if outside:
    failures.append(f"rank {rank}: {len(outside)} thread(s) outside CPUs {plan.cpus[0]}-{plan.cpus[-1]}: {outside}")
every: list = [None] * world
dist.all_gather_object(every, {"rank": rank, "cpus": list(plan.cpus), "gpu": plan.gpu, "pci": plan.gpu_pci,
                               "threads": len(threads()),
                               "torch_pci": torch.cuda.get_device_properties(local).pci_bus_id})
for a in every:
    for b in every:
        if a["rank"] < b["rank"] and set(a["cpus"]) & set(b["cpus"]):
            failures.append(f"ranks {a['rank']} and {b['rank']} share CPUs")

clean = numabind.audit()
if clean.findings:
    failures.append(f"audit of a clean job found: {[str(f) for f in clean.findings]}")

# Plant: the last rank moves its main thread onto rank 0's CPUs (alone: onto
# the reserved core, allowed to the process but outside its plan).
victim = world - 1
if world == 1:
    spare = sorted(set(numabind.topology().allowed_cpus) - mine)
    if not spare:
        failures.append("one rank, reserve_cores=1, yet no allowed CPU is outside its plan")
    else:
        os.sched_setaffinity(0, {spare[0]})
    want = [("threads-outside", (0,))]
else:
    if rank == victim:
        os.sched_setaffinity(0, set(every[0]["cpus"]))
    want = sorted([("cpus-shared", (0, victim)), ("threads-outside", (victim,))])
planted = numabind.audit()
kinds = sorted((f.kind, f.ranks) for f in planted.findings)
if kinds != want:
    failures.append(f"planted mis-binding: audit found {kinds}, expected {want}")

flags: list = [None] * world
dist.all_gather_object(flags, failures)
dist.destroy_process_group()
all_failures = [f for fs in flags for f in fs]
if rank == 0:
    print("SUMMARY " + json.dumps({
        "ranks": every, "clean_findings": len(clean.findings),
        "planted_findings": [str(f) for f in planted.findings], "failures": all_failures}))
    print(str(clean))
sys.exit(1 if all_failures else 0)
