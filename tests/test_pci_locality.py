"""Where a PCI device sits when its files say less than they should: a
``numa_node`` of -1 with a narrower ``local_cpulist`` (firmware without
_PXM, the kernel taking the CPUs from elsewhere), and a function whose
upstream bridge ``sys/bus/pci/devices`` does not list (a capture that left it
out, a bridge firmware hides). The trees are written as the kernel writes
them, then changed the way such a kernel or capture shows them."""
from __future__ import annotations

import os
from pathlib import Path

import pytest

import numabind
import sysfs_tree as st

DGX = "dgx-h100"
GPU0 = "0000:1b:00.0"                      # under pci0000:15, NUMA node 0
NODE0 = set(range(0, 56)) | set(range(112, 168))
NODE1 = set(range(56, 112)) | set(range(168, 224))
NR_CPU_IDS = 224


def device_dir(root: Path, bdf: str) -> Path:
    return (root / "sys/bus/pci/devices" / bdf).resolve()


def write_local_cpus(root: Path, bdf: str, cpus: set[int], *, list_form: bool = True) -> None:
    """The device's CPUs in both of the kernel's forms (``local_cpus`` the
    mask, ``local_cpulist`` the list), or the mask alone (older kernels)."""
    d = device_dir(root, bdf)
    (d / "local_cpus").write_text(st.format_mask(sorted(cpus), NR_CPU_IDS) + "\n")
    if list_form:
        (d / "local_cpulist").write_text(st.format_cpulist(sorted(cpus)) + "\n")
    else:
        (d / "local_cpulist").unlink()


# --------------------------------------------------------------------------
# numa_node -1 with a narrower local_cpulist
# --------------------------------------------------------------------------

@pytest.mark.parametrize("cpus,listed", [
    (NODE0, "0-55,112-167"),               # the node's CPUs, as a BIOS's _PXM-less host bridge shows them
    (set(range(0, 28)), "0-27"),           # part of one node (an SNC-like split the node list does not show)
], ids=["whole-node", "part-of-node"])
@pytest.mark.parametrize("list_form", [True, False], ids=["list", "mask-only"])
def test_minus_1_with_local_cpus_in_one_node_is_that_node(tree, cpus, listed, list_form):
    root = tree.private(DGX, numa_override={GPU0: -1})
    write_local_cpus(root, GPU0, cpus, list_form=list_form)
    topo = numabind.topology(root)
    gpu = topo.to_dict()["gpus"][0]
    assert gpu["pci_address"] == GPU0 and gpu["numa_node"] is None   # the topology never guesses
    plan = numabind.plan(topology=topo)
    assert [r.numa_node for r in plan] == [0, 0, 0, 0, 1, 1, 1, 1]
    assert plan[0].mem_policy == "preferred" and plan[0].mem_nodes == (0,)
    assert set(plan[0].cpus) <= NODE0
    held = [c for r in plan for c in r.cpus]
    assert len(held) == len(set(held)), "two ranks share a CPU"
    assert f"GPU {GPU0}: numa_node -1 but local_cpulist {listed} lies in NUMA node 0" in plan[0].note


def test_minus_1_with_local_cpus_across_every_node_keeps_to_the_list(tree):
    root = tree.private(DGX, numa_override={GPU0: -1})
    write_local_cpus(root, GPU0, set(range(0, 112)))      # one thread of every core: both nodes, not all CPUs
    plan = numabind.plan(topology=numabind.topology(root))
    assert plan[0].numa_node is None and plan[0].mem_policy == "default" and plan[0].mem_nodes == (0, 1)
    assert (f"GPU {GPU0} has no NUMA node (numa_node -1) and its local_cpulist 0-111 spans NUMA nodes 0-1: "
            "no one node; CPUs from that list, memory from those nodes") in plan[0].note
    # The located ranks hold both nodes: nothing of the list is left over,
    # so rank 0 joins the split of node 0 (3 ranks there, 4 on node 1).
    assert "no CPU of its local_cpulist 0-111 is left over: CPUs from the split of NUMA node 0" in plan[0].note
    assert set(plan[0].cpus) <= NODE0
    held = [c for r in plan for c in r.cpus]
    assert len(held) == len(set(held)), "two ranks share a CPU"


# Two sockets of two NUMA nodes each (AMD NPS2, Intel SNC2), one GPU and one
# NIC per node. A host bridge without _PXM gives its GPU numa_node -1 and the
# socket's CPUs as local_cpulist: the list, not the machine, is where the
# rank belongs.
NPS2: dict = {
    "name": "nps2-4gpu",
    "sources": ["made up for tests/test_pci_locality.py: a two-socket NPS2/SNC2 layout"],
    "notes": [],
    "cpu": {
        "sockets": 2, "threads_per_core": 1,
        "nodes": [{"id": n, "cpus": f"{8 * n}-{8 * n + 7}", "socket": n // 2, "mem_mib": 8192} for n in range(4)],
        "distances": [[10, 12, 32, 32], [12, 10, 32, 32], [32, 32, 10, 12], [32, 32, 12, 10]],
    },
    "allowed": {"cpus": "0-31", "mems": "0-3"},
    "pci": [
        {"root": f"pci0000:{bus:02x}", "numa": n, "devices": [
            {"bdf": f"0000:{bus:02x}:01.0", "kind": "bridge", "vendor": "0x1022", "device": "0x1483", "children": [
                {"bdf": f"0000:{bus + 1:02x}:00.0", "kind": "gpu", "vendor": "0x10de", "device": "0x2330"}]},
            {"bdf": f"0000:{bus:02x}:02.0", "kind": "bridge", "vendor": "0x1022", "device": "0x1483", "children": [
                {"bdf": f"0000:{bus + 2:02x}:00.0", "kind": "nic", "ibdev": f"mlx5_{n}", "netdev": f"ib{n}",
                 "link_layer": "InfiniBand", "state": "ACTIVE", "rate": "400 Gb/sec (4X NDR)",
                 "vendor": "0x15b3", "device": "0x1021"}]}]}
        for n, bus in enumerate((0x00, 0x40, 0x80, 0xc0))
    ],
    "expected": {"gpus": []},
}
SOCKET0, SOCKET1 = set(range(0, 16)), set(range(16, 32))


def nps2_gpu(n: int) -> str:
    return f"0000:{(0x00, 0x40, 0x80, 0xc0)[n] + 1:02x}:00.0"


def nps2_tree(tree, unknown: dict[int, set[int]]) -> Path:
    """The NPS2 machine with GPU n at numa_node -1 and local_cpulist unknown[n]."""
    root = tree.private(NPS2, numa_override={nps2_gpu(n): -1 for n in unknown})
    for n, cpus in unknown.items():
        d = device_dir(root, nps2_gpu(n))
        (d / "local_cpus").write_text(st.format_mask(sorted(cpus), 32) + "\n")
        (d / "local_cpulist").write_text(st.format_cpulist(sorted(cpus)) + "\n")
    return root


@pytest.mark.parametrize("mem,policy,nodes", [
    ("preferred", "default", (0, 1)), ("bind", "bind", (0, 1)), ("interleave", "interleave", (0, 1)),
    ("local", "default", (0, 1)),
])
def test_minus_1_with_a_socket_wide_list_keeps_to_that_socket(tree, mem, policy, nodes):
    root = nps2_tree(tree, {1: SOCKET0})                  # GPU1 (node 1) lost its _PXM
    plan = numabind.plan(topology=numabind.topology(root), mem=mem)
    assert [r.numa_node for r in plan] == [0, None, 2, 3]
    # Node 1 is held by no located rank: rank 1 takes its CPUs, not the other socket's.
    assert plan[1].cpus == tuple(range(8, 16))
    assert (plan[1].mem_policy, plan[1].mem_nodes) == (policy, nodes)
    assert "its local_cpulist 0-15 spans NUMA nodes 0-1" in plan[1].note
    assert "CPUs of its local_cpulist no located rank holds (8-15)" in plan[1].note
    assert plan[1].hca == "mlx5_1"                        # the NIC under its own switch still
    held = [c for r in plan for c in r.cpus]
    assert len(held) == len(set(held)), "two ranks share a CPU"


def test_two_gpus_sharing_a_socket_wide_list_split_it(tree):
    root = nps2_tree(tree, {0: SOCKET0, 1: SOCKET0})
    plan = numabind.plan(topology=numabind.topology(root))
    assert [r.numa_node for r in plan] == [None, None, 2, 3]
    assert (plan[0].cpus, plan[1].cpus) == (tuple(range(0, 8)), tuple(range(8, 16)))
    assert plan[2].cpus == tuple(range(16, 24)) and plan[3].cpus == tuple(range(24, 32))


def test_a_list_with_nothing_left_joins_its_least_loaded_node(tree):
    # GPU 1's list names nodes 0 and 2, both held by located ranks (two on
    # node 0, one on node 2): nothing of it is left over, so rank 3 joins the
    # split of node 2, the one of its nodes with the fewest ranks.
    root = nps2_tree(tree, {1: set(range(0, 8)) | set(range(16, 24))})
    plan = numabind.plan(topology=numabind.topology(root), gpus=[0, 0, 2, 1])
    assert plan[3].numa_node is None and set(plan[3].cpus) <= set(range(16, 24))
    assert ("no CPU of its local_cpulist 0-7,16-23 is left over: CPUs from the split of NUMA node 2"
            in plan[3].note)
    assert plan[3].mem_nodes == (0, 2)
    held = [c for r in plan for c in r.cpus]
    assert len(held) == len(set(held)), "two ranks share a CPU"


def test_a_socket_wide_list_and_a_listless_gpu_keep_clear_of_each_other(tree):
    # GPU 1: the socket-0 list; GPU 3: -1 with every online CPU (x86's -1).
    root = nps2_tree(tree, {1: SOCKET0, 3: SOCKET0 | SOCKET1})
    plan = numabind.plan(topology=numabind.topology(root))
    assert [r.numa_node for r in plan] == [0, None, 2, None]
    assert plan[1].cpus == tuple(range(8, 16))            # its socket's free node
    assert plan[3].cpus == tuple(range(24, 32))           # the CPUs no one else holds
    assert plan[3].mem_policy == "default" and plan[3].mem_nodes == (0, 1, 2, 3)
    assert "locality unknown: CPUs no located rank holds (24-31)" in plan[3].note


def test_minus_1_with_every_online_cpu_stays_unknown(tree):
    # What x86 kernels write for -1: cpumask_of_node(NUMA_NO_NODE) is every online CPU.
    root = tree(DGX, numa_override={GPU0: -1})
    pci = {f["address"]: f for f in numabind.topology(root).to_dict()["pci"]}
    assert set(pci[GPU0]["local_cpus"]) == NODE0 | NODE1
    plan = numabind.plan(topology=numabind.topology(root))
    assert plan[0].numa_node is None
    assert f"GPU {GPU0} has no NUMA node (numa_node -1): memory policy left to the kernel" in plan[0].note


# --------------------------------------------------------------------------
# a parent bridge missing from sys/bus/pci/devices
# --------------------------------------------------------------------------

# GPU0's switch on the DGX H100 tree: root port 15:01.0, upstream port
# 16:00.0, downstream ports 17:00.0 (NIC mlx5_0), 17:01.0 (GPU0), 17:02.0
# (storage NICs mlx5_1, mlx5_2).
@pytest.mark.parametrize("removed,expected_parents", [
    (["0000:16:00.0"], {"0000:17:00.0": "0000:15:01.0", "0000:17:01.0": "0000:15:01.0", GPU0: "0000:17:01.0"}),
    (["0000:17:01.0"], {GPU0: "0000:16:00.0"}),
    (["0000:16:00.0", "0000:17:01.0"], {GPU0: "0000:15:01.0", "0000:18:00.0": "0000:17:00.0"}),
], ids=["switch-upstream", "gpu-downstream-port", "both"])
def test_a_function_hangs_from_its_nearest_listed_ancestor(tree, removed, expected_parents):
    full = numabind.topology(tree(DGX)).to_dict()
    root = tree.private(DGX)
    for bdf in removed:
        os.unlink(root / "sys/bus/pci/devices" / bdf)   # the capture left the bridge's link out
    got = numabind.topology(root).to_dict()
    pci = {f["address"]: f for f in got["pci"]}
    assert not set(removed) & set(pci)
    for bdf, parent in expected_parents.items():
        assert pci[bdf]["parent"] == parent, bdf
        assert pci[bdf]["host_bridge"] == "pci0000:15"
    # The classes over the listed ancestors are the full tree's: GPU0 is PIX
    # from the NICs on its switch (not PHB, as from a GPU hanging from nothing).
    classes = {g["pci_address"]: g["distances"] for g in got["gpus"]}
    assert classes == {g["pci_address"]: g["distances"] for g in full["gpus"]}
    assert classes[GPU0]["mlx5_0"] == classes[GPU0]["mlx5_1"] == "PIX"
    plan = numabind.plan(topology=numabind.topology(root))
    assert plan[0].hca == "mlx5_0" and plan[0].distance == "PIX"
