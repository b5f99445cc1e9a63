"""numabind.audit(): what it finds, from hand-made records and across four
real processes that gather over torch.distributed (gloo on loopback).

The processes really pin themselves on this kernel, so their CPUs must exist
here: the fixture machine has two nodes of one CPU each (CPU 0 on node 0,
CPU 1 on node 1), a GPU and an InfiniBand NIC on each. Four ranks make two
"hosts" of two local ranks (audit's ``host=``), because two ranks are all
this 2-CPU machine can give disjoint CPUs. Node 1 is the fixture's, not this
kernel's, so the ranks use ``mem="local"`` (no node to name).
"""
from __future__ import annotations

import importlib
import json
import os
import socket
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from pinkit import two_node_desc

if os.environ.get("CI") == "true":
    import torch  # CI installs it (tools/dev.sh): a skip there would hide these tests
else:
    torch = pytest.importorskip("torch", reason="needs torch (tools/dev.sh installs the CPU build)")

import numabind  # noqa: E402
audit_mod = importlib.import_module("numabind.audit")  # the module; numabind.audit is the function

TWO_HOST_RANKS = 4
HOSTS = ("nodeA", "nodeB")


@pytest.fixture(scope="module")
def root(tree) -> Path:
    if len(os.sched_getaffinity(0)) < 2 or not {0, 1} <= os.sched_getaffinity(0):
        pytest.skip("needs CPUs 0 and 1")
    return tree(two_node_desc())


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


RANK_BODY = r'''
import json, os, sys, threading
import torch.distributed as dist
import numabind

rank = int(os.environ["RANK"])
plant = json.loads(sys.argv[1])
plan = numabind.pin_rank(mem="local")
what = plant.get(str(rank), {})
if "cpus" in what:                  # the main thread moves off its rank's CPUs
    os.sched_setaffinity(0, set(what["cpus"]))
if "hca" in what:
    os.environ["NVSHMEM_HCA_LIST"] = what["hca"]
stop = threading.Event()
if "thread_cpus" in what:           # a helper thread the library did not start, on other CPUs
    def helper():
        os.sched_setaffinity(0, set(what["thread_cpus"]))
        stop.wait()
    t = threading.Thread(target=helper, name="stray-helper")
    t.start()
dist.init_process_group("gloo", init_method="env://")
host = os.environ["AUDIT_HOST"]
report = numabind.audit(host=host)
raised = None
try:
    numabind.audit(host=host, raise_on="error")
except numabind.AuditError as e:
    raised = str(e)
stop.set()
dist.destroy_process_group()
print("RESULT " + json.dumps({"rank": rank, "cpus": list(plan.cpus), "hca": plan.hca,
                              "mempolicy": numabind._core.mempolicy(),
                              "findings": [[f.kind, f.severity, f.host, list(f.ranks), f.detail]
                                           for f in report.findings],
                              "records": len(report.records), "text": str(report), "raised": raised}))
'''


def run_ranks(root: Path, plant: dict | None = None, fsroot: Path | None = None) -> list[dict]:
    port = free_port()
    procs = []
    for rank in range(TWO_HOST_RANKS):
        env = {k: v for k, v in os.environ.items() if not k.startswith(("NVSHMEM_", "NCCL_", "UCX_"))}
        env.update(NUMABIND_FSROOT=str(fsroot or root), RANK=str(rank), WORLD_SIZE=str(TWO_HOST_RANKS),
                   LOCAL_RANK=str(rank % 2), LOCAL_WORLD_SIZE="2", MASTER_ADDR="127.0.0.1",
                   MASTER_PORT=str(port), GLOO_SOCKET_IFNAME="lo", AUDIT_HOST=HOSTS[rank // 2],
                   OMP_NUM_THREADS="1")
        procs.append(subprocess.Popen([sys.executable, "-c", textwrap.dedent(RANK_BODY), json.dumps(plant or {})],
                                      env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True))
    out = []
    for rank, p in enumerate(procs):
        stdout, stderr = p.communicate(timeout=180)
        assert p.returncode == 0, f"rank {rank} failed (rc {p.returncode}):\n{stderr}"
        line = [x for x in stdout.splitlines() if x.startswith("RESULT ")][-1]
        out.append(json.loads(line[len("RESULT "):]))
    return out


def kinds(result: dict) -> set[tuple[str, str, tuple[int, ...]]]:
    return {(k, host, tuple(ranks)) for k, sev, host, ranks, _ in result["findings"]}


def test_four_well_pinned_ranks_have_no_findings(root):
    results = run_ranks(root)
    assert [r["cpus"] for r in results] == [[0], [1], [0], [1]]
    assert [r["hca"] for r in results] == ["mlx5_0", "mlx5_1"] * 2
    assert all(r["mempolicy"] == ["local", []] for r in results)
    for r in results:
        assert r["records"] == TWO_HOST_RANKS
        assert r["findings"] == [], r["text"]
        assert r["raised"] is None
    assert "nodeA: 2 rank(s), no findings" in results[0]["text"]


def test_planted_mis_binding_is_found_by_every_rank(root):
    # Rank 3 (nodeB, local rank 1, GPU on node 1) moves its main thread to CPU 0.
    results = run_ranks(root, {"3": {"cpus": [0]}})
    want = {("cpus-shared", "nodeB", (2, 3)), ("off-node", "nodeB", (3,)), ("threads-outside", "nodeB", (3,))}
    for r in results:
        assert kinds(r) == want, r["text"]
        assert r["raised"] and "3 finding(s) at error" in r["raised"]
    detail = {k: d for k, _, _, _, d in results[0]["findings"]}
    assert "CPUs 0" in detail["cpus-shared"]
    assert "node 1" in detail["off-node"]
    assert detail["threads-outside"].endswith(" on 0")


def test_stray_thread_and_shared_nic(root):
    # Rank 0 starts a helper thread that moves itself to CPU 1; rank 1 names rank 0's NIC.
    results = run_ranks(root, {"0": {"thread_cpus": [1]}, "1": {"hca": "mlx5_0:1"}})
    want = {("cpus-shared", "nodeA", (0, 1)), ("threads-outside", "nodeA", (0,)),
            ("off-node", "nodeA", (0,)), ("nic-shared", "nodeA", (0, 1))}
    for r in results:
        assert kinds(r) == want, r["text"]
    detail = {k: d for k, _, _, _, d in results[0]["findings"]}
    # Python < 3.14 does not give the OS thread its name: the detail shows tid, comm and CPUs.
    assert "1 thread(s) run elsewhere" in detail["threads-outside"] and detail["threads-outside"].endswith(" on 1")
    assert "mlx5_0" in detail["nic-shared"]


def test_numa_balancing_read_from_the_machine(tree, root):
    private = tree.private(two_node_desc())
    (private / "proc/sys/kernel").mkdir(parents=True, exist_ok=True)
    (private / "proc/sys/kernel/numa_balancing").write_text("1\n")
    results = run_ranks(root, fsroot=private)
    for r in results:
        assert kinds(r) == {("numa-balancing", "nodeA", (0, 1)), ("numa-balancing", "nodeB", (2, 3))}
        assert all(sev == "warning" for _, sev, *_ in r["findings"])
        assert r["raised"] is None  # warnings do not raise at raise_on="error"


# ---- the rules, on hand-made records (no processes) ----

def record(rank, host="h", cpus=(0,), planned=(0,), policy="exclusive", gpu_node=0, cpu_nodes=(0,),
           nic=None, hcas=(), mapping=None, mem=("preferred", (0,)), threads=None, nodes=(0, 1), nics=2,
           balancing=0, pinned=True, nccl="=mlx5_0:1,mlx5_1:1"):
    return {
        "rank": rank, "host": host, "pid": 1, "local_rank": rank, "pinned": pinned,
        "cpu_policy": policy if pinned else None, "planned_cpus": list(planned) if pinned else None,
        "threads": threads or {"1": {"name": "python", "cpus": list(cpus)}},
        "cpus": list(cpus), "cpu_nodes": list(cpu_nodes), "mem_policy": mem[0], "mem_nodes": list(mem[1]),
        "gpu": rank, "gpu_source": "plan", "gpu_pci": f"0000:0{rank}:00.0", "gpu_node": gpu_node,
        "gpu_cpu_node": gpu_node, "nic": nic, "hca_list": list(hcas), "nic_pe_mapping": mapping,
        "host_nodes": list(nodes), "host_nics": nics, "numa_balancing": balancing, "nccl_ib_hca": nccl,
    }


def found(*records):
    return {(f.kind, f.severity, f.ranks) for f in audit_mod.findings(records)}


def test_nccl_ib_hca_must_be_one_value_per_host():
    # The per-rank recipe NCCL's maintainers warn against (nccl#1478), and one rank without it.
    assert found(record(0, nccl="=mlx5_0:1"), record(1, cpus=(1,), planned=(1,), nccl="=mlx5_1:1")) == \
        {("nccl-hca-differs", "error", (0, 1))}
    assert found(record(0), record(1, cpus=(1,), planned=(1,), nccl=None)) == {("nccl-hca-differs", "error", (0, 1))}
    # the same value on every rank of a host, whatever other hosts use
    assert found(record(0), record(1, cpus=(1,), planned=(1,)), record(2, host="g", nccl="=mlx5_9:1")) == set()


def test_rules_clean():
    assert found(record(0, cpus=(0,), planned=(0,)), record(1, cpus=(1,), planned=(1,), gpu_node=1,
                                                            cpu_nodes=(1,), mem=("preferred", (1,)))) == set()


def test_rules_sharing_policies_are_not_findings():
    a = record(0, cpus=(0, 1), planned=(0, 1), policy="node")
    b = record(1, cpus=(0, 1), planned=(0, 1), policy="node")
    assert found(a, b) == set()
    # ...but an exclusive rank sharing with a node-policy rank is.
    assert ("cpus-shared", "error", (0, 1)) in found(a, record(1, cpus=(1,), planned=(1,)))


def test_rules_unpinned_rank_across_nodes():
    r = record(0, cpus=(0, 1), cpu_nodes=(0, 1), pinned=False, mem=("default", ()))
    assert found(r) == {("off-node", "error", (0,)), ("memory-default", "warning", (0,))}


def test_rules_memory_on_the_wrong_node():
    assert found(record(0, mem=("bind", (1,)))) == {("memory-off-node", "error", (0,))}
    assert found(record(0, mem=("interleave", (0, 1)))) == set()


def test_rules_nics():
    enough = found(record(0, nic="mlx5_0"), record(1, cpus=(1,), planned=(1,), nic="mlx5_0"))
    assert ("nic-shared", "error", (0, 1)) in enough
    few = found(record(0, nic="mlx5_0", nics=1), record(1, cpus=(1,), planned=(1,), nic="mlx5_0", nics=1))
    assert ("nic-shared", "warning", (0, 1)) in few
    node_wide = found(record(0, hcas=("mlx5_0", "mlx5_1"), mapping="1"))
    assert node_wide == {("nic-list", "warning", (0,))}


def test_rules_single_node_host_has_no_numa_warnings():
    r = record(0, pinned=False, mem=("default", ()), nodes=(0,), balancing=1)
    assert found(r) == set()


def test_hosts_are_separate():
    a = record(0, host="a")
    b = record(1, host="b")  # same CPU 0, other host: no sharing
    assert found(a, b) == set()


def test_report_levels_and_errors():
    recs = (record(0, nic="x", nics=1), record(1, nic="x", cpus=(1,), planned=(1,), nics=1))
    rep = audit_mod.AuditReport(recs, tuple(audit_mod.findings(recs)), ("h",))
    assert rep.ok and len(rep.at_least("warning")) == 1 and rep.at_least("error") == []
    with pytest.raises(ValueError, match="'fatal'"):
        rep.at_least("fatal")
    with pytest.raises(ValueError, match="'nope'"):
        rep.of_kind("nope")
    with pytest.raises(ValueError, match="'sometimes'"):
        numabind.audit(raise_on="sometimes")


def test_audit_alone_without_a_process_group(root, monkeypatch):
    # No torch.distributed group: this process alone; on the fixture, nothing pinned.
    monkeypatch.setenv("NUMABIND_FSROOT", str(root))
    monkeypatch.setenv("LOCAL_RANK", "1")
    rep = numabind.audit(host="solo")
    assert len(rep.records) == 1
    r = rep.records[0]
    assert r["host"] == "solo" and r["local_rank"] == 1 and r["gpu"] == 1 and r["gpu_source"] == "local rank"
    assert r["gpu_cpu_node"] == 1 and not r["pinned"]
    assert set(r["cpus"]) == os.sched_getaffinity(0)
    assert r["mem_policy"] == "default"


MEMPOLICY_BODY = r'''
import ctypes, json, platform
import numabind
NR_SET = {"x86_64": 238, "aarch64": 237, "ppc64le": 261, "s390x": 270}[platform.machine()]
libc = ctypes.CDLL(None, use_errno=True)
out = [numabind._core.mempolicy()]
for mode in (1, 2, 3, 4, 0):    # preferred, bind, interleave, local, default: node 0
    mask = (ctypes.c_ulong * 16)(1)
    assert libc.syscall(NR_SET, mode, mask if mode not in (0, 4) else None, 1024 if mode not in (0, 4) else 0) == 0
    out.append(numabind._core.mempolicy())
print(json.dumps(out))
'''


def test_mempolicy_reads_back_what_the_kernel_holds():
    p = subprocess.run([sys.executable, "-c", MEMPOLICY_BODY], capture_output=True, text=True, timeout=60)
    assert p.returncode == 0, p.stderr
    assert json.loads(p.stdout) == [["default", []], ["preferred", [0]], ["bind", [0]], ["interleave", [0]],
                                    ["local", []], ["default", []]]


def test_findings_is_reachable_as_documented():
    # docs/audit.md: numabind.audit.findings(records), and the module import
    import numabind
    from numabind.audit import findings
    assert numabind.audit.findings is findings
    assert numabind.audit.findings([]) == []
