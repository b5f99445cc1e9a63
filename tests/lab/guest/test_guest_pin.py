"""pin_rank on a real kernel: the plan the layout calls for, and every
thread of a live process on the rank's CPUs — threads started before the
pin, after it, and those a library started on its own."""
from __future__ import annotations

import json
import os
import select
import signal
import subprocess
import sys
import time
from pathlib import Path

from labkit import LiveChild, Spinner, last_cpu, nccl_ib_hca, task_cpus

import numabind


def test_plan_matches_layout(layout):
    plan = numabind.plan()
    assert len(plan) == len(layout["ranks"])
    for r, want in zip(plan.ranks, layout["ranks"]):
        got = (r.numa_node, list(r.cpus), list(r.mem_nodes), r.mem_policy, r.hca, r.hca_port, r.distance)
        assert got == (want["node"], want["cpus"], [want["node"]], "preferred", want["hca"], 1, want["distance"]), \
            f"rank {r.local_rank} ({want['gpu']})"


def test_plan_only_read_plans_as_the_full_read(layout):
    """pin_rank's read (plan-only: it passes over the bridges, the root and
    switch ports here, and reads no link attributes) on a real kernel's
    sysfs: every plan is the full read's, and the bridges were passed over
    (their ids not read), not read as before."""
    def plan(topo, **opts):
        try:
            return numabind.plan(topology=topo, **opts)
        except numabind.NumabindError as e:   # a refusal (too few CPUs to reserve one) must be the same too
            return type(e).__name__, str(e)

    full, lean = numabind.topology(), numabind.topology(plan_only=True)
    for opts in ({}, {"policy": "node"}, {"policy": "socket"}, {"mem": "bind"}, {"reserve_cores": 1},
                 {"local_world_size": 1}):
        assert plan(lean, **opts) == plan(full, **opts), opts
    below = {f.address for f in full.pci if any(h.path.startswith(f.path + "/") for h in full.pci)}
    assert below, "the layout puts its NICs and GPU stand-ins behind ports"
    for f, g in zip(full.pci, lean.pci):
        assert (g.address, g.path, g.parent, g.depth) == (f.address, f.path, f.parent, f.depth)
        if f.address in below:
            assert f.is_bridge and (g.vendor, g.class_code, g.is_bridge) == (0, 0, True), f.address
        else:
            assert (g.vendor, g.device, g.class_code) == (f.vendor, f.device, f.class_code), f.address


def _pin_probe(rank: int, size: int) -> dict:
    before = Spinner(3)                       # running before the pin
    plan = numabind.pin_rank(rank, local_world_size=size)
    after = Spinner(1)                        # started after: inherits the mask
    time.sleep(0.5)                           # let every spinner run where it may
    return {"cpus": list(plan.cpus), "report": plan.report, "spinners": before.tids + after.tids,
            "env": {k: os.environ.get(k) for k in ("NVSHMEM_HCA_LIST", "NVSHMEM_ENABLE_NIC_PE_MAPPING",
                                                   "NCCL_IB_HCA", "UCX_NET_DEVICES", "EP_NIC_NAME")}}


def test_pin_rank_binds_every_thread(layout, rank):
    want = layout["ranks"][rank]
    with LiveChild(_pin_probe, rank, len(layout["ranks"])) as child:
        res = child.result
        threads = task_cpus(child.pid)
        ran_on = {tid: last_cpu(child.pid, tid) for tid in res["spinners"]}
    assert res["cpus"] == want["cpus"]
    assert len(threads) == 5, threads          # the main thread, 3 before, 1 after
    assert {tid: want["cpus"] for tid in threads} == threads
    assert all(cpu in want["cpus"] for cpu in ran_on.values()), f"ran on {ran_on}, pinned to {want['cpus']}"
    assert res["report"]["threads"] == 4       # the main thread and the 3 already running
    hca = f"{want['hca']}:1"
    assert res["env"] == {"NVSHMEM_HCA_LIST": hca, "NVSHMEM_ENABLE_NIC_PE_MAPPING": "1",
                          "NCCL_IB_HCA": nccl_ib_hca(layout), "UCX_NET_DEVICES": hca, "EP_NIC_NAME": want["hca"]}


# A launched process that has not answered in LAUNCH_S gets SIGABRT, on
# which faulthandler prints its threads' Python stacks: a hang fails the test
# with where it hung instead of stalling the guest until the runner's
# timeout. (Signal handlers only: faulthandler's timer would add a thread.)
LAUNCH_S = 150
LAUNCHED = r"""
import faulthandler; faulthandler.enable()
import json, os, sys
import numpy               # its BLAS starts worker threads of its own
import numabind
before = len(os.listdir("/proc/self/task"))
plan = numabind.pin_rank()  # LOCAL_RANK / LOCAL_WORLD_SIZE, as torchrun sets them
print(json.dumps({"cpus": list(plan.cpus), "threads_before": before, "source": plan.rank_source}), flush=True)
sys.stdin.readline()
"""


def _answer_or_abort(p: subprocess.Popen) -> str:
    """The launched process's first line; if none comes in LAUNCH_S, its
    threads' kernel waits and (SIGABRT) Python stacks, as the failure."""
    ready, _, _ = select.select([p.stdout], [], [], LAUNCH_S)
    if ready:
        line = p.stdout.readline()
        if line:
            return line
        p.wait(timeout=30)
        raise AssertionError(f"the launched process exited {p.returncode} without answering:\n{p.stderr.read()}")
    waits = {t.name: (t / "wchan").read_text() for t in Path(f"/proc/{p.pid}/task").iterdir()}
    p.send_signal(signal.SIGABRT)
    p.wait(timeout=30)
    raise AssertionError(f"the launched process did not answer in {LAUNCH_S} s; its threads wait in {waits}; "
                         f"its stacks:\n{p.stderr.read()}")


def test_pin_rank_in_a_launched_process_with_library_threads(layout):
    rank = len(layout["ranks"]) - 1
    env = dict(os.environ, LOCAL_RANK=str(rank), LOCAL_WORLD_SIZE=str(len(layout["ranks"])))
    p = subprocess.Popen([sys.executable, "-c", LAUNCHED], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                         stderr=subprocess.PIPE, env=env, text=True)
    try:
        res = json.loads(_answer_or_abort(p))
        threads = task_cpus(p.pid)
    finally:
        p.stdin.close()
        p.wait(timeout=120)
    err = p.stderr.read()
    assert p.returncode == 0, err
    want = layout["ranks"][rank]["cpus"]
    assert res["source"] == "LOCAL_RANK" and res["cpus"] == want
    assert res["threads_before"] > 1, "numpy started no threads: this test would prove nothing"
    assert len(threads) == res["threads_before"]
    assert {tid: want for tid in threads} == threads
