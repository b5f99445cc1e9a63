"""A rank that a launcher bound before numabind ran (mpirun's default
binding, srun --cpu-bind, taskset, an outer numabind exec) on a real kernel:
numabind plans from what the process may widen to (its cgroup's cpuset), not
from the narrower affinity it was started with, so the plan is the layout's
and pin_rank widens the rank to its share. The binding is the guest kernel's
own; the expected shares come from the layout, never from numabind."""
from __future__ import annotations

import json
import os
import subprocess

from labkit import format_list, in_child, task_cpus

import numabind


def _foreign_cpu(layout: dict, rank: int) -> int:
    """A CPU of another rank's share: where a launcher's binding would put a
    rank that is not its own."""
    n = len(layout["ranks"])
    return layout["ranks"][(rank + 1) % n]["cpus"][0]


def _prebound_probe(rank: int, size: int, cpu: int) -> dict:
    os.sched_setaffinity(0, {cpu})
    topo = numabind.topology()
    plan = numabind.pin_rank(rank, local_world_size=size)
    return {"allowed": list(topo.allowed_cpus), "affinity": list(topo.affinity_cpus), "cpus": list(plan.cpus),
            "threads": {str(t): c for t, c in task_cpus(os.getpid()).items()}, "online": list(topo.online_cpus)}


def test_a_prebound_rank_is_widened_to_its_share(layout, rank):
    want = layout["ranks"][rank]
    cpu = _foreign_cpu(layout, rank)
    res = in_child(_prebound_probe, rank, len(layout["ranks"]), cpu)
    assert res["affinity"] == [cpu]                          # what the "launcher" left
    assert res["allowed"] == res["online"]                   # what it may widen to: no cpuset here
    assert res["cpus"] == want["cpus"], f"rank {rank} planned {res['cpus']}, layout says {want['cpus']}"
    assert all(c == want["cpus"] for c in res["threads"].values()), res["threads"]


def test_numabind_exec_inside_numabind_exec_under_taskset(layout):
    # taskset binds to rank 0's first CPU; the outer exec pins rank 1, the
    # inner exec plans again from inside that binding and must agree.
    n = len(layout["ranks"])
    want = layout["ranks"][1 % n]
    cpu = layout["ranks"][0]["cpus"][0]
    env = dict(os.environ, LOCAL_WORLD_SIZE=str(n))
    env.pop("LOCAL_RANK", None)
    inner = ["numabind", "exec", "--local-rank", str(1 % n), "--", "/bin/sh", "-c",
             "grep -E '^Cpus_allowed_list' /proc/self/status | cut -f2"]
    p = subprocess.run(["taskset", "-c", str(cpu), "numabind", "exec", "--local-rank", str(1 % n), "--", *inner],
                       env=env, capture_output=True, text=True, timeout=300)
    assert p.returncode == 0, p.stderr
    assert p.stdout.strip() == format_list(want["cpus"]), (p.stdout, p.stderr)


def test_pin_rank_under_numabind_exec_gives_the_same_plan(layout):
    # pin_rank(0) in a process numabind exec already pinned as the last rank:
    # the plan is still rank 0's, not a split of the last rank's share.
    n = len(layout["ranks"])
    code = ("import json, numabind, os; b = sorted(os.sched_getaffinity(0)); "
            f"r = numabind.pin_rank(0, local_world_size={n}); "
            "print(json.dumps([b, list(r.cpus), sorted(os.sched_getaffinity(0))]))")
    env = dict(os.environ)
    env.pop("LOCAL_RANK", None)
    p = subprocess.run(["numabind", "exec", "--local-world-size", str(n), "--local-rank", str(n - 1), "--",
                        "python3", "-c", code], env=env, capture_output=True, text=True, timeout=300)
    assert p.returncode == 0, p.stderr
    before, planned, after = json.loads(p.stdout.strip().splitlines()[-1])
    assert before == layout["ranks"][n - 1]["cpus"]
    assert planned == after == layout["ranks"][0]["cpus"]
