"""A rank confined by a cgroup v2 cpuset, as Slurm and container runtimes
confine jobs: numabind reads the allowed CPUs and memory nodes the kernel
enforces, and pins within them. The cgroup is the guest kernel's own."""
from __future__ import annotations

import os
from pathlib import Path

import pytest
from labkit import format_list, in_child, parse_list, read

import numabind

CGROUP = Path("/sys/fs/cgroup")


@pytest.fixture(scope="module")
def job_cgroup(layout):
    """A cgroup holding the last rank's node: its CPUs, its memory."""
    if not (CGROUP / "cgroup.controllers").exists():
        assert os.system(f"mount -t cgroup2 none {CGROUP}") == 0
    (CGROUP / "cgroup.subtree_control").write_text("+cpuset\n")
    node = next(n for n in layout["nodes"] if n["id"] == layout["ranks"][-1]["node"])
    job = CGROUP / "lab-job"
    job.mkdir(exist_ok=True)
    (job / "cpuset.cpus").write_text(format_list(node["cpus"]) + "\n")
    (job / "cpuset.mems").write_text(f"{node['id']}\n")
    assert parse_list(read(job / "cpuset.cpus.effective")) == node["cpus"]
    yield job, node
    job.rmdir()


def _confined_probe(job: str, visible: str) -> dict:
    Path(job, "cgroup.procs").write_text(f"{os.getpid()}\n")
    os.environ["CUDA_VISIBLE_DEVICES"] = visible
    topo = numabind.topology()
    rank = numabind.pin_rank(0, local_world_size=1)
    return {"allowed_cpus": list(topo.allowed_cpus), "allowed_mems": list(topo.allowed_mems),
            "cpus": list(rank.cpus), "mems": list(rank.mem_nodes), "node": rank.numa_node}


def test_a_cpuset_confined_rank_pins_within_it(layout, job_cgroup):
    job, node = job_cgroup
    gpu = len(layout["ranks"]) - 1          # the job's GPU, as Slurm would make it visible
    res = in_child(_confined_probe, str(job), str(gpu))
    assert res["allowed_cpus"] == node["cpus"] and res["allowed_mems"] == [node["id"]]
    assert (res["node"], res["cpus"], res["mems"]) == (node["id"], node["cpus"], [node["id"]])


def _unconfined_gpu_probe(job: str) -> None:
    Path(job, "cgroup.procs").write_text(f"{os.getpid()}\n")
    numabind.pin_rank(0, local_world_size=1)   # GPU 0 of every GPU: outside the cpuset


def test_a_rank_whose_node_the_cpuset_excludes_is_refused(layout, job_cgroup):
    job, node = job_cgroup
    outside = next(r for r in layout["ranks"] if r["node"] != node["id"])
    assert layout["ranks"].index(outside) == 0
    with pytest.raises(AssertionError, match=rf"PlacementError.*NUMA node {outside['node']} has no allowed CPUs"):
        in_child(_unconfined_gpu_probe, str(job))


def _prebound_confined_probe(job: str, visible: str, cpu: int) -> dict:
    Path(job, "cgroup.procs").write_text(f"{os.getpid()}\n")
    os.sched_setaffinity(0, {cpu})             # a launcher's binding, inside the cpuset
    os.environ["CUDA_VISIBLE_DEVICES"] = visible
    topo = numabind.topology()
    rank = numabind.pin_rank(0, local_world_size=1)
    return {"allowed": list(topo.allowed_cpus), "affinity": list(topo.affinity_cpus), "cpus": list(rank.cpus),
            "now": sorted(os.sched_getaffinity(0))}


def test_a_prebound_rank_in_a_cpuset_widens_within_it(layout, job_cgroup):
    # The cgroup v2 cpuset is what the rank may widen to: bound to one of its
    # CPUs, the rank is planned on, and pinned to, the whole cpuset's node.
    job, node = job_cgroup
    gpu = len(layout["ranks"]) - 1
    cpu = node["cpus"][-1]
    res = in_child(_prebound_confined_probe, str(job), str(gpu), cpu)
    assert res["affinity"] == [cpu]
    assert res["allowed"] == node["cpus"]
    assert res["cpus"] == res["now"] == node["cpus"]
