"""The NIC variables a rank exports, as NVSHMEM, NCCL and DeepEP 2.x need them,
and plans whose exclusive CPU shares never collide.

* NCCL_IB_HCA: one node-wide value on every rank ("=" and every compute NIC,
  PCI order): NCCL's maintainers say it must be equal on all ranks
  (NVIDIA/nccl#1478; nccl#1591), and NCCL pairs GPUs and NICs itself.
* NVSHMEM_HCA_LIST: one entry per rank; a node-wide list already in the
  environment is taken as the candidate NICs, a one-entry one is kept.
* EP_NIC_NAME: the rank's NIC for DeepEP 2.x (default mlx5_0, wrong on Azure).
* RankPlan.hcas: every equally close compute NIC under one PCIe switch.

Expectations come from the descriptions (tests/machines) and the rules above.
"""
from __future__ import annotations

import copy
import logging
import os
import subprocess
import sys

import pytest

import numabind
import sysfs_tree as st
from numabind import EnvironmentValueError

DGX = st.load("dgx-h100")
DGX_NICS = [g["hca"] for g in DGX["expected"]["gpus"]]
AZURE = st.load("azure-nd96isr-h100-v5")


def _walk(devices):
    for d in devices:
        yield d
        yield from _walk(d.get("children", []))


def nics_of(desc) -> list[dict]:
    return [d for root in desc["pci"] for d in _walk(root["devices"]) if d["kind"] == "nic"]


@pytest.fixture
def fsroot(tree, monkeypatch):
    def use(desc, **options):
        root = tree(desc, **options)
        monkeypatch.setenv("NUMABIND_FSROOT", str(root))
        return root
    return use


# --------------------------------------------------------------------------
# NCCL_IB_HCA and EP_NIC_NAME
# --------------------------------------------------------------------------

@pytest.mark.parametrize("desc", [DGX, AZURE], ids=["dgx-h100", "azure"])
def test_nccl_ib_hca_is_one_node_wide_value_of_compute_nics(desc, fsroot):
    fsroot(desc)
    plan = numabind.plan()
    values = {r.env["NCCL_IB_HCA"] for r in plan}
    assert len(values) == 1, values
    compute = [g["hca"] for g in desc["expected"]["gpus"]]      # one per GPU on both machines
    want = "=" + ",".join(f"{n}:1" for n in sorted(compute, key=lambda n: next(
        x["bdf"] for x in nics_of(desc) if x.get("ibdev") == n)))
    assert values == {want}
    # storage (DGX mlx5_1/2/7/8) and Ethernet-beside-InfiniBand (Azure's mlx5_an0) left out
    others = {x["ibdev"] for x in nics_of(desc)} - set(compute)
    assert others and not any(f"{n}:" in want for n in others)


def test_ep_nic_name_is_the_ranks_nic_on_azure(fsroot):
    fsroot(AZURE)
    plan = numabind.plan()
    assert [r.env["EP_NIC_NAME"] for r in plan] == [f"mlx5_ib{i}" for i in range(8)]
    assert [r.env["NVSHMEM_HCA_LIST"] for r in plan] == [f"mlx5_ib{i}:1" for i in range(8)]


# --------------------------------------------------------------------------
# a node-wide NVSHMEM_HCA_LIST in the environment
# --------------------------------------------------------------------------

def test_node_wide_hca_list_becomes_the_candidates(fsroot, monkeypatch):
    # The recipe this library replaces: every NIC of the node in one list.
    fsroot(AZURE)
    monkeypatch.setenv("NVSHMEM_HCA_LIST", ",".join(f"mlx5_ib{i}:1" for i in range(8)))
    plan = numabind.plan()
    for i, r in enumerate(plan):
        assert r.env["NVSHMEM_HCA_LIST"] == f"mlx5_ib{i}:1"        # one entry, the GPU's own
        assert "NVSHMEM_HCA_LIST" not in r.kept_env
        assert "names NICs for the whole node: taken as the candidates" in r.note
        assert f"mlx5_ib{i}:1" in r.note


def test_a_subset_list_limits_the_candidates(fsroot, monkeypatch):
    fsroot(DGX)
    monkeypatch.setenv("NVSHMEM_HCA_LIST", "mlx5_0:1,mlx5_6:1")       # one NIC per socket
    plan = numabind.plan()
    assert [r.hca for r in plan] == ["mlx5_0"] * 4 + ["mlx5_6"] * 4
    assert {r.env["NCCL_IB_HCA"] for r in plan} == {"=mlx5_0:1,mlx5_6:1"}


def test_an_exclusion_list_leaves_the_other_compute_nics(fsroot, monkeypatch):
    fsroot(DGX)
    monkeypatch.setenv("NVSHMEM_HCA_LIST", "^mlx5_3")
    plan = numabind.plan()
    assert "mlx5_3" not in {r.hca for r in plan}
    assert plan[0].hca == "mlx5_0" and plan[4].hca == "mlx5_6"
    assert plan[1].env["NVSHMEM_HCA_LIST"] != "^mlx5_3"


@pytest.mark.parametrize("value,named", [
    ("mlx5_0:1,mlx5_99:1", "'mlx5_99' is not an RDMA NIC of this node"),
    ("mlx5_0:1,mlx5_3:x", "entry 'mlx5_3:x' has no valid port number"),
    ("mlx5_0:1,,mlx5_3:1", "entry '' is not a NIC name"),
    ("mlx5_1:1,mlx5_2:1", "leaves no NIC with an ACTIVE InfiniBand or Ethernet port"),   # DOWN storage NICs
])
def test_a_bad_hca_list_is_a_typed_error_naming_it(fsroot, monkeypatch, value, named):
    fsroot(DGX)
    monkeypatch.setenv("NVSHMEM_HCA_LIST", value)
    with pytest.raises(EnvironmentValueError) as e:
        numabind.plan()
    assert named in str(e.value) and value in str(e.value)
    assert e.value.variable == "NVSHMEM_HCA_LIST"
    numabind.plan(override_env=True)      # the plan's own NICs replace it: no error


def test_a_one_entry_list_is_kept_and_a_contradiction_warned(fsroot, monkeypatch, caplog):
    fsroot(DGX)
    monkeypatch.setenv("NVSHMEM_HCA_LIST", "mlx5_0:1")
    plan = numabind.plan()
    assert all(r.kept_env == {"NVSHMEM_HCA_LIST": "mlx5_0:1"} for r in plan)
    with caplog.at_level(logging.INFO, logger="numabind"):
        numabind.pin_rank(0, dry_run=True)
        numabind.pin_rank(3, dry_run=True)
    levels = {(r.levelname, r.getMessage().split(":")[0]) for r in caplog.records}
    assert ("INFO", "local rank 0") in levels                       # the same value the plan gives
    assert ("WARNING", "local rank 3") in levels                    # the plan says mlx5_5:1
    assert any("the plan says NVSHMEM_HCA_LIST=mlx5_5:1" in r.getMessage() for r in caplog.records)


# --------------------------------------------------------------------------
# equally close NICs
# --------------------------------------------------------------------------

def test_equally_close_nics_are_all_reported(fsroot):
    # OCI BM.GPU.H100.8-like: the storage functions on GPU0's and GPU4's
    # switches made 400G InfiniBand, so those GPUs have three PIX NICs each.
    desc = copy.deepcopy(DGX)
    desc["name"] = "dgx-h100-three-nics-per-switch"
    for n in nics_of(desc):
        if n["ibdev"] in ("mlx5_1", "mlx5_2", "mlx5_7", "mlx5_8"):
            n.update(link_layer="InfiniBand", state="ACTIVE", rate="400 Gb/sec (4X NDR)")
    fsroot(desc)
    plan = numabind.plan()
    assert plan[0].hcas == ("mlx5_0:1", "mlx5_1:1", "mlx5_2:1") and plan[0].hca == "mlx5_0"
    assert plan[4].hcas == ("mlx5_6:1", "mlx5_7:1", "mlx5_8:1") and plan[4].hca == "mlx5_6"
    assert plan[1].hcas == ("mlx5_3:1",)
    assert plan[0].env["NVSHMEM_HCA_LIST"] == "mlx5_0:1"               # NVSHMEM still gets one
    assert plan[0].to_dict()["hcas"] == ["mlx5_0:1", "mlx5_1:1", "mlx5_2:1"]


def test_ties_across_the_host_bridge_are_not_reported(fsroot):
    # Azure: every GPU is NODE from the four NICs of its socket, which says nothing.
    fsroot(AZURE)
    assert [r.hcas for r in numabind.plan()] == [(f"mlx5_ib{i}:1",) for i in range(8)]


# --------------------------------------------------------------------------
# exclusive shares never collide
# --------------------------------------------------------------------------

def test_unknown_locality_without_spare_cpus_joins_the_emptiest_node(fsroot):
    fsroot(DGX, numa_override={"0000:43:00.0": -1})
    plan = numabind.plan()
    assert [r.numa_node for r in plan] == [0, None, 0, 0, 1, 1, 1, 1]
    held = [c for r in plan for c in r.cpus]
    assert len(held) == len(set(held)), "two ranks share a CPU"
    # node 0 has three located ranks, node 1 four: the unknown rank splits node 0 with them
    node0 = set(range(0, 56)) | set(range(112, 168))
    assert set(plan[1].cpus) <= node0
    assert set().union(*(set(plan[r].cpus) for r in (0, 1, 2, 3))) == node0
    assert "CPUs from the split of NUMA node 0, the node with the fewest ranks" in plan[1].note
    assert plan[1].mem_policy == "default"


def test_a_numa_node_that_does_not_exist_is_unknown_locality(fsroot):
    fsroot(DGX, numa_override={"0000:9d:00.0": 5})
    plan = numabind.plan()
    assert plan[4].numa_node is None and plan[4].mem_policy == "default"
    assert "names NUMA node 5, which does not exist" in plan[4].note
    held = [c for r in plan for c in r.cpus]
    assert len(held) == len(set(held))


def test_unknown_locality_takes_the_spare_node_when_there_is_one(fsroot):
    # Four ranks on node 0's GPUs, one unknown: node 1 is spare.
    fsroot(DGX, numa_override={"0000:9d:00.0": -1})
    plan = numabind.plan(gpus=[0, 1, 2, 3, 4])
    node1 = set(range(56, 112)) | set(range(168, 224))
    assert set(plan[4].cpus) == node1
    assert "CPUs no located rank holds" in plan[4].note


# --------------------------------------------------------------------------
# too late for NCCL
# --------------------------------------------------------------------------

def test_pin_rank_warns_when_a_process_group_exists(tree):
    pytest.importorskip("torch", reason="needs torch (tools/dev.sh installs the CPU build)")
    code = """
import logging, os, sys, tempfile
import torch.distributed as dist
logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(message)s", stream=sys.stdout)
import numabind
numabind.pin_rank(0, dry_run=True)
print("---")
dist.init_process_group("gloo", init_method="file://" + tempfile.mktemp(), rank=0, world_size=1)
numabind.pin_rank(0, dry_run=True)
dist.destroy_process_group()
"""
    env = {**os.environ, "NUMABIND_FSROOT": str(tree(DGX))}
    p = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=120)
    assert p.returncode == 0, p.stderr
    before, after = p.stdout.split("---")
    assert "process group already exists" not in before
    assert "a torch.distributed process group already exists" in after
    assert "call pin_rank before init_process_group" in after
