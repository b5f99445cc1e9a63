"""Check every rank's binding across a job, over torch.distributed.

    import numabind
    numabind.pin_rank()
    dist.init_process_group(...)
    report = numabind.audit()          # every rank gets the same report
    print(report)                      # findings per host
    numabind.audit(raise_on="error")   # or raise AuditError on findings

Each rank reads what it actually runs with — the CPU affinity of each of its
threads, its memory policy, the NIC its NVSHMEM/NCCL variables name, the plan
:func:`numabind.pin_rank` applied (if any) — and the records are gathered
with ``all_gather_object`` over the group (gloo or NCCL, whatever the job
uses). The findings are computed identically on every rank.
"""

from __future__ import annotations

import os
import socket
from dataclasses import dataclass, field
from typing import Any, Iterable

from numabind import _core
from numabind.errors import NumabindError
from numabind.placement import applied
from numabind.topology import Topology

__all__ = ["audit", "AuditReport", "Finding", "AuditError", "KINDS"]

#: Finding kinds, in the order a report lists them.
KINDS = (
    "cpus-shared",        # two ranks of one host may run on the same CPU
    "off-node",           # a rank's CPUs lie outside its GPU's NUMA node
    "memory-off-node",    # a rank's memory policy names nodes other than its GPU's
    "memory-default",     # no memory policy on a multi-node host: pages land where first touched
    "threads-outside",    # threads of a pinned rank run outside the rank's CPUs
    "nic-shared",         # two ranks of one host use the same NIC
    "nic-list",           # a node-wide NVSHMEM_HCA_LIST: every PE-0 process takes its first NIC
    "nccl-hca-differs",   # NCCL_IB_HCA differs between ranks of a host: NCCL needs one value
    "numa-balancing",     # kernel.numa_balancing is on: page migrations stall the rank
)
_SEVERITIES = ("warning", "error")
# CPU policies that share CPUs between ranks, or span nodes, on purpose.
_SHARING_POLICIES = ("node", "socket", "none")
_SPANNING_POLICIES = ("socket", "none")


class AuditError(NumabindError):
    """``audit(raise_on=...)`` found problems; ``report`` holds them."""

    def __init__(self, report: AuditReport, level: str) -> None:
        bad = report.at_least(level)
        super().__init__(0, "binding audit failed",
                         f"{len(bad)} finding(s) at {level} or worse:\n" + "\n".join(map(str, bad)), "audit")
        self.report = report


@dataclass(frozen=True)
class Finding:
    kind: str                       #: one of KINDS
    severity: str                   #: "error" or "warning"
    host: str
    ranks: tuple[int, ...]          #: global ranks concerned
    detail: str

    def __str__(self) -> str:
        who = ", ".join(map(str, self.ranks)) if self.ranks else "-"
        return f"{self.severity}: {self.host}: {self.kind} (ranks {who}): {self.detail}"


@dataclass(frozen=True)
class AuditReport:
    records: tuple[dict[str, Any], ...]   #: one per rank, in rank order
    findings: tuple[Finding, ...]
    hosts: tuple[str, ...] = field(default=())

    @property
    def ok(self) -> bool:
        """No error-level finding."""
        return not self.at_least("error")

    def at_least(self, level: str) -> list[Finding]:
        if level not in _SEVERITIES:
            raise ValueError(f"unknown level {level!r} (choose from {', '.join(_SEVERITIES)})")
        floor = _SEVERITIES.index(level)
        return [f for f in self.findings if _SEVERITIES.index(f.severity) >= floor]

    def of_kind(self, kind: str) -> list[Finding]:
        if kind not in KINDS:
            raise ValueError(f"unknown finding kind {kind!r} (choose from {', '.join(KINDS)})")
        return [f for f in self.findings if f.kind == kind]

    def to_dict(self) -> dict[str, Any]:
        return {"records": list(self.records), "findings": [f.__dict__ for f in self.findings]}

    def __str__(self) -> str:
        lines = []
        for host in self.hosts:
            ranks = [r for r in self.records if r["host"] == host]
            found = [f for f in self.findings if f.host == host]
            lines.append(f"{host}: {len(ranks)} rank(s), "
                         f"{'no findings' if not found else f'{len(found)} finding(s)'}")
            for r in ranks:
                lines.append(f"  rank {r['rank']} (local {r['local_rank']}): CPUs "
                             f"{_core.format_cpulist(r['cpus']) or '-'}, memory {r['mem_policy']} "
                             f"{_core.format_cpulist(r['mem_nodes']) or ''}".rstrip()
                             + f", GPU {r['gpu']} (node {_node(r['gpu_node'])}), NIC {r['nic'] or '-'}"
                             + ("" if r["pinned"] else ", not pinned by numabind"))
            lines.extend(f"  {f.severity}: {f.kind} (ranks {', '.join(map(str, f.ranks))}): {f.detail}"
                         for f in found)
        return "\n".join(lines)


def _node(n: int | None) -> str:
    return "unknown" if n is None else str(n)


# ---- what one rank reads about itself ----

def _threads() -> dict[int, tuple[str, tuple[int, ...]]]:
    out = {}
    for name in os.listdir("/proc/self/task"):
        tid = int(name)
        try:
            cpus = tuple(sorted(os.sched_getaffinity(tid)))
            with open(f"/proc/self/task/{tid}/comm") as f:
                comm = f.read().strip()
        except (ProcessLookupError, FileNotFoundError):
            continue  # the thread ended meanwhile
        out[tid] = (comm, cpus)
    return out


def _numa_balancing(topo: Topology) -> int | None:
    # Under a fixture root the value is the fixture's, like every other fact.
    root = topo.fsroot if topo.fsroot not in ("", "/") else ""
    try:
        with open(f"{root}/proc/sys/kernel/numa_balancing") as f:
            return int(f.read().strip() or 0)
    except (OSError, ValueError):
        return None


def _hca_list() -> list[str]:
    value = os.environ.get("NVSHMEM_HCA_LIST", "").strip()
    if not value or value.startswith("^"):
        return []
    return [entry.split(":")[0] for entry in value.split(",") if entry.strip()]


def _cpu_node(topo: Topology, node: int | None) -> int | None:
    """The node a GPU's ranks should run on: its own, or for a CPU-less node
    (GPU memory on Grace machines) the nearest node with CPUs."""
    if node is None:
        return None
    ids = [n.id for n in topo.nodes]
    if node not in ids:
        return None
    me = topo.nodes[ids.index(node)]
    if me.has_cpus:
        return node
    with_cpus = [(me.distances[j], n.id) for j, n in enumerate(topo.nodes) if n.has_cpus]
    return min(with_cpus)[1] if with_cpus else None


def _gpu_of_rank(topo: Topology, local_rank: int | None) -> tuple[int | None, str]:
    pinned = applied()
    if pinned is not None:
        return pinned.gpu, "plan"
    try:
        import torch
        if torch.cuda.is_initialized():
            return torch.cuda.current_device(), "torch"
    except ImportError:
        pass
    if local_rank is not None and local_rank < len(topo.gpus):
        return local_rank, "local rank"
    return None, "none"


def local_record(*, rank: int = 0, host: str | None = None, topology: Topology | None = None) -> dict[str, Any]:
    """This process's binding as a plain dict (what :func:`audit` gathers)."""
    from numabind.placement import _process_topology
    topo = topology if topology is not None else _process_topology()
    pinned = applied()
    local_rank: int | None
    if pinned is not None:
        local_rank = pinned.local_rank
    else:
        try:
            local_rank = _core.local_rank_from_env()[0]
        except NumabindError:
            local_rank = None
    threads = _threads()
    cpus = sorted({c for _, cs in threads.values() for c in cs})
    mem_policy, mem_nodes = _core.mempolicy()
    gpu, gpu_source = _gpu_of_rank(topo, local_rank)
    gpu_node = None
    gpu_pci = None
    if gpu is not None and gpu < len(topo.gpus):
        gpu_node = topo.gpus[gpu].numa_node
        gpu_pci = topo.gpus[gpu].pci_address
    hcas = _hca_list()
    nic = hcas[0] if len(hcas) == 1 else (pinned.hca if pinned is not None else None)
    node_of_cpu = {c.id: c.node for c in topo.cpus}
    return {
        "rank": rank, "host": host if host is not None else socket.gethostname(), "pid": os.getpid(),
        "local_rank": local_rank, "pinned": pinned is not None,
        "cpu_policy": pinned.cpu_policy if pinned is not None else None,
        "planned_cpus": list(pinned.cpus) if pinned is not None else None,
        "threads": {str(tid): {"name": n, "cpus": list(cs)} for tid, (n, cs) in sorted(threads.items())},
        "cpus": cpus, "cpu_nodes": sorted({node_of_cpu[c] for c in cpus if node_of_cpu.get(c) is not None}),
        "mem_policy": mem_policy, "mem_nodes": list(mem_nodes),
        "gpu": gpu, "gpu_source": gpu_source, "gpu_pci": gpu_pci, "gpu_node": gpu_node,
        "gpu_cpu_node": _cpu_node(topo, gpu_node),
        "nic": nic, "hca_list": hcas, "nic_pe_mapping": os.environ.get("NVSHMEM_ENABLE_NIC_PE_MAPPING"),
        "nccl_ib_hca": os.environ.get("NCCL_IB_HCA"),
        "host_nodes": [n.id for n in topo.nodes if n.has_cpus],
        "host_nics": sum(1 for n in topo.nics if any(p.state == "ACTIVE" for p in n.ports)),
        "numa_balancing": _numa_balancing(topo),
    }


# ---- what the records say, host by host ----

def findings(records: Iterable[dict[str, Any]]) -> list[Finding]:
    """The findings over every rank's record (pure: no I/O)."""
    records = list(records)
    out: list[Finding] = []
    for host in dict.fromkeys(r["host"] for r in records):
        ranks = [r for r in records if r["host"] == host]
        out.extend(_host_findings(host, ranks))
    order = {k: i for i, k in enumerate(KINDS)}
    out.sort(key=lambda f: (f.host, order[f.kind], f.ranks))
    return out


def _host_findings(host: str, ranks: list[dict[str, Any]]) -> list[Finding]:
    out = []

    def add(kind: str, severity: str, who: Iterable[int], detail: str) -> None:
        out.append(Finding(kind, severity, host, tuple(who), detail))

    fmt = _core.format_cpulist
    for i, a in enumerate(ranks):
        for b in ranks[i + 1:]:
            shared = sorted(set(a["cpus"]) & set(b["cpus"]))
            by_design = all(r["pinned"] and r["cpu_policy"] in _SHARING_POLICIES for r in (a, b))
            if shared and not by_design:
                add("cpus-shared", "error", (a["rank"], b["rank"]),
                    f"ranks {a['rank']} and {b['rank']} may both run on CPUs {fmt(shared)}")
    multi_node = len(ranks[0]["host_nodes"]) > 1
    for r in ranks:
        want = r["gpu_cpu_node"]
        spanning = r["pinned"] and r["cpu_policy"] in _SPANNING_POLICIES
        if want is not None and not spanning:
            off = [n for n in r["cpu_nodes"] if n != want]
            if off:
                add("off-node", "error", (r["rank"],),
                    f"rank {r['rank']} runs on CPUs {fmt(r['cpus'])} (nodes {fmt(r['cpu_nodes'])}); "
                    f"its GPU {r['gpu']} ({r['gpu_pci']}) is on node {want}")
            if r["mem_nodes"] and r["mem_policy"] != "interleave" and want not in r["mem_nodes"]:
                add("memory-off-node", "error", (r["rank"],),
                    f"rank {r['rank']}'s memory policy is {r['mem_policy']} on nodes {fmt(r['mem_nodes'])}; "
                    f"its GPU is on node {want}")
            if multi_node and r["mem_policy"] == "default":
                add("memory-default", "warning", (r["rank"],),
                    f"rank {r['rank']} has no memory policy: its pages land on whichever node "
                    f"first touches them, not necessarily node {want}")
        if r["pinned"] and r["planned_cpus"] is not None:
            planned = set(r["planned_cpus"])
            stray = [(int(tid), t["name"], t["cpus"]) for tid, t in r["threads"].items()
                     if not set(t["cpus"]) <= planned]
            if stray:
                shown = "; ".join(f"{tid} '{name}' on {fmt(cpus)}" for tid, name, cpus in stray[:8])
                more = f" and {len(stray) - 8} more" if len(stray) > 8 else ""
                add("threads-outside", "error", (r["rank"],),
                    f"rank {r['rank']} planned CPUs {fmt(sorted(planned))}, but {len(stray)} thread(s) "
                    f"run elsewhere: {shown}{more}")
    by_nic: dict[str, list[int]] = {}
    for r in ranks:
        if r["nic"]:
            by_nic.setdefault(r["nic"], []).append(r["rank"])
    nics = ranks[0]["host_nics"]
    for nic, who in by_nic.items():
        if len(who) > 1:
            enough = nics >= len(ranks)
            add("nic-shared", "error" if enough else "warning", who,
                f"ranks {', '.join(map(str, who))} all use {nic}"
                + (f" although the host has {nics} active RDMA NICs for {len(ranks)} ranks" if enough
                   else f" (the host has {nics} active RDMA NICs for {len(ranks)} ranks)"))
    listed = [r["rank"] for r in ranks if len(r["hca_list"]) > 1 and r["nic_pe_mapping"] == "1"]
    if listed:
        add("nic-list", "warning", listed,
            "NVSHMEM_HCA_LIST names several NICs with NVSHMEM_ENABLE_NIC_PE_MAPPING=1: a process that is "
            "PE 0 of its node (every process in DeepEP's normal mode) takes the first NIC")
    # NCCL builds rings from every rank's NIC list: values that differ break
    # them (NVIDIA/nccl#1478). Records from before this field count as unset.
    values = {r.get("nccl_ib_hca") for r in ranks}
    if len(values) > 1:
        shown = "; ".join(f"rank {r['rank']}: {r.get('nccl_ib_hca') or '(unset)'}" for r in ranks[:8])
        add("nccl-hca-differs", "error", [r["rank"] for r in ranks],
            f"NCCL_IB_HCA differs between the ranks of this host ({shown}{'; ...' if len(ranks) > 8 else ''}): "
            "NCCL needs one value on every rank (NVIDIA/nccl#1478); numabind exports the node's compute NICs")
    balancing = ranks[0]["numa_balancing"]
    if balancing and multi_node:
        add("numa-balancing", "warning", [r["rank"] for r in ranks],
            f"kernel.numa_balancing={balancing}: the kernel migrates pages under running ranks "
            f"(stalls of tens of ms); set it to 0")
    return out


# ---- the entry point ----

def audit(group: Any = None, *, raise_on: str | None = None, host: str | None = None) -> AuditReport:
    """Gathers every rank's binding over ``group`` (default: the world) and
    reports per host: ranks sharing CPUs or NICs, ranks bound off their GPU's
    node, threads outside their rank's CPUs, ``kernel.numa_balancing`` on.

    Every rank of the group must call it (it is a collective). Without an
    initialized process group it audits this process alone. ``host`` names
    this rank's node (default: the host name). With ``raise_on="error"`` (or
    ``"warning"``) it raises :class:`AuditError` on findings at that level or
    worse, on every rank alike.
    """
    if raise_on is not None and raise_on not in _SEVERITIES:
        raise ValueError(f"unknown raise_on {raise_on!r} (choose from {', '.join(_SEVERITIES)}, or None)")
    dist = _distributed()
    rank = dist.get_rank(group) if dist is not None else 0
    record = local_record(rank=rank, host=host)
    if dist is not None:
        gathered: list[Any] = [None] * dist.get_world_size(group)
        dist.all_gather_object(gathered, record, group=group)
        records = tuple(sorted(gathered, key=lambda r: r["rank"]))
    else:
        records = (record,)
    report = AuditReport(records, tuple(findings(records)), tuple(dict.fromkeys(r["host"] for r in records)))
    if raise_on is not None and report.at_least(raise_on):
        raise AuditError(report, raise_on)
    return report


def _distributed() -> Any:
    try:
        import torch.distributed as dist
    except ImportError:
        return None
    return dist if dist.is_available() and dist.is_initialized() else None


# `numabind.audit` is the function (the package exports it under the module's
# name), so the documented `numabind.audit.findings(records)` is reached
# through it as well as through `from numabind.audit import findings`.
setattr(audit, "findings", findings)
