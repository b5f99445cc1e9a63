"""The memory policy pin_rank sets takes effect on a real kernel: pages
touched afterwards land on the rank's node even when the touching thread
runs on another node (first touch alone would put them there: the control
shows it does); migrate=True moves pages touched before the pin. Where a
page is comes from move_pages(2) and /proc/self/numa_maps, not numabind."""
from __future__ import annotations

import os

import pytest
from labkit import Pages, format_list, in_child, refuse_syscall, task_cpus

import numabind

N = 128  # pages per probe


def cpu_nodes(layout) -> list[dict]:
    return [n for n in layout["nodes"] if n["has_cpus"]]


def elsewhere(layout, node: int) -> dict:
    """A node with CPUs other than `node`."""
    return next(n for n in cpu_nodes(layout) if n["id"] != node)


def _policy_probe(rank: int, size: int, mem: str, run_on: list[int]) -> dict:
    plan = numabind.pin_rank(rank, local_world_size=size, mem=mem, export_env=False)
    os.sched_setaffinity(0, run_on)           # touch from another node's CPUs
    assert os.sched_getaffinity(0) == set(run_on)
    pages = Pages(N)
    return {"mems": list(plan.mem_nodes), "nodes": pages.nodes(), "maps": pages.numa_maps()}


def _unpinned_probe(run_on: list[int]) -> dict:
    os.sched_setaffinity(0, run_on)
    pages = Pages(N)
    return {"nodes": pages.nodes(), "maps": pages.numa_maps()}


def test_control_first_touch_follows_the_cpu(layout):
    """Without a policy, pages land on the node of the CPU that touches
    them: the placement checks below are not satisfied by accident."""
    for node in cpu_nodes(layout):
        res = in_child(_unpinned_probe, node["cpus"])
        assert res["nodes"] == [node["id"]] * N, f"touched from node {node['id']}"
        assert res["maps"] == {"policy": "default", "pages": {node["id"]: N}}


@pytest.mark.parametrize("mem,token", [("preferred", "prefer"), ("bind", "bind")])
def test_policy_places_new_pages_on_the_rank_node(layout, rank, mem, token):
    node = layout["ranks"][rank]["node"]
    other = elsewhere(layout, node)
    res = in_child(_policy_probe, rank, len(layout["ranks"]), mem, other["cpus"])
    assert res["mems"] == [node]
    assert res["nodes"] == [node] * N, f"touched from node {other['id']}'s CPUs"
    assert res["maps"] == {"policy": f"{token}:{node}", "pages": {node: N}}


def test_interleave_spreads_pages_over_the_nodes_with_cpus(layout):
    want = [n["id"] for n in cpu_nodes(layout)]
    res = in_child(_policy_probe, 0, len(layout["ranks"]), "interleave", cpu_nodes(layout)[0]["cpus"])
    assert res["mems"] == want
    assert res["maps"]["policy"] == f"interleave:{format_list(want)}"
    counts = {n: res["nodes"].count(n) for n in set(res["nodes"])}
    assert sorted(counts) == want, counts
    assert all(c >= N // len(want) // 2 for c in counts.values()), counts


def test_local_follows_the_touching_cpu(layout):
    node = layout["ranks"][0]["node"]
    other = elsewhere(layout, node)
    res = in_child(_policy_probe, 0, len(layout["ranks"]), "local", other["cpus"])
    assert res["maps"] == {"policy": "local", "pages": {other["id"]: N}}


def _migrate_probe(rank: int, size: int, migrate: bool, first_on: list[int]) -> dict:
    topo = numabind.topology()                # read while every CPU is allowed
    os.sched_setaffinity(0, first_on)
    pages = Pages(N)                          # first touch: on first_on's node
    before = pages.nodes()
    plan = numabind.pin_rank(rank, local_world_size=size, migrate=migrate, export_env=False, topology=topo)
    return {"before": before, "after": pages.nodes(), "maps": pages.numa_maps(), "report": plan.report}


@pytest.mark.parametrize("migrate", [True, False], ids=["migrate", "control-no-migrate"])
def test_migrate_moves_pages_touched_before(layout, rank, migrate):
    node = layout["ranks"][rank]["node"]
    other = elsewhere(layout, node)
    res = in_child(_migrate_probe, rank, len(layout["ranks"]), migrate, other["cpus"])
    assert res["before"] == [other["id"]] * N
    if migrate:
        assert res["after"] == [node] * N
        assert res["maps"]["pages"] == {node: N}
        assert res["report"]["pages_migrated"] == 0   # pages that could not be moved
    else:
        assert res["after"] == [other["id"]] * N
        assert res["report"]["pages_migrated"] is None


SYS_MIGRATE_PAGES = 256  # x86_64
NIC_VARS = ("NVSHMEM_HCA_LIST", "NVSHMEM_ENABLE_NIC_PE_MAPPING", "NCCL_IB_HCA", "UCX_NET_DEVICES", "EP_NIC_NAME")


def _refused_migrate_probe(rank: int, size: int, first_on: list[int]) -> dict:
    topo = numabind.topology()
    os.sched_setaffinity(0, first_on)
    pages = Pages(N)
    def state() -> dict:
        return {"cpus": task_cpus(os.getpid()), "policy": pages.numa_maps()["policy"],
                "env": {k: os.environ.get(k) for k in NIC_VARS}, "pages": pages.nodes()}
    before = state()
    refuse_syscall(SYS_MIGRATE_PAGES, 1)  # EPERM
    try:
        numabind.pin_rank(rank, local_world_size=size, migrate=True, topology=topo)
    except numabind.BindingError as e:
        return {"before": before, "after": state(), "error": str(e), "errno": e.errno}
    return {"before": before, "after": state(), "error": None}


def test_a_refused_migration_leaves_the_process_as_it_was(layout, rank):
    """Migration is the last step: when the kernel refuses it, the threads'
    CPUs, the memory policy and the NIC variables are put back and no page
    has moved."""
    node = layout["ranks"][rank]["node"]
    other = elsewhere(layout, node)
    res = in_child(_refused_migrate_probe, rank, len(layout["ranks"]), other["cpus"])
    assert res["error"] and "migrate_pages failed" in res["error"] and res["errno"] == 1, res["error"]
    assert res["before"]["pages"] == [other["id"]] * N
    assert res["after"] == res["before"]
