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


def test_minus_1_with_local_cpus_across_nodes_is_unknown_and_says_which(tree):
    root = tree.private(DGX, numa_override={GPU0: -1})
    write_local_cpus(root, GPU0, set(range(0, 112)))      # one thread of every core: both nodes, not all CPUs
    plan = numabind.plan(topology=numabind.topology(root))
    assert plan[0].numa_node is None and plan[0].mem_policy == "default"
    assert (f"GPU {GPU0} has no NUMA node (numa_node -1) and its local_cpulist 0-111 spans NUMA nodes 0-1: "
            "locality unknown") in plan[0].note
    held = [c for r in plan for c in r.cpus]
    assert len(held) == len(set(held)), "two ranks share a CPU"


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
