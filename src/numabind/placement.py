"""Plan each local rank's CPUs, memory and NIC, and apply one rank's plan.

    import numabind
    numabind.pin_rank()      # local rank from LOCAL_RANK / SLURM_LOCALID / ...

The plan is computed in the C core from the topology alone, identically by
every rank of a node; applying binds every thread of this process, sets the
memory policy, reads both back, and exports the rank's NIC to NVSHMEM, NCCL
and UCX. On failure the process is left as it was.
"""

from __future__ import annotations

import _thread
import errno
import os
import sys

from numabind import _core
from numabind._record import Record, frozen_set as _set
from numabind.errors import NumabindError, PlacementError
from numabind.topology import Topology, _read_lazily

# json, logging, threading, typing and dataclasses are not imported here at
# run time: `import numabind; numabind.pin_rank()` pays for none of them
# (issue 16); json and logging are imported where they are used.
TYPE_CHECKING = False
if TYPE_CHECKING:
    import logging
    from typing import Any, Sequence

__all__ = ["RankPlan", "Plan", "plan", "pin_rank", "CPU_POLICIES", "MEM_POLICIES"]

# pin_rank logs every fallback the plan took (a GPU without a NUMA node, on a
# CPU-less node, SMT siblings split, a node-wide NVSHMEM_HCA_LIST taken as the
# candidates) as a warning, a node without a visible GPU as a warning, and NIC
# variables kept from the environment as info, or as a warning where they
# contradict the plan (docs/reliability.md). The logger is looked up when
# there is something to log: logging is not imported before.
def _log() -> logging.Logger:
    import logging
    return logging.getLogger("numabind")


# `log`, the logger attribute this module had before issue 16; hidden from
# type checkers, so that a misspelt name stays an error for mypy.
if not TYPE_CHECKING:
    def __getattr__(name: str) -> Any:
        if name == "log":
            return _log()
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


CPU_POLICIES = ("exclusive", "node", "socket", "core-complex", "none")
MEM_POLICIES = ("preferred", "bind", "interleave", "local")


class RankPlan(Record, compare_exclude=("report",)):
    """Where one local rank runs."""

    __slots__ = ("local_rank", "gpu", "gpu_pci", "numa_node", "cpus", "mem_nodes", "cpu_policy", "mem_policy",
                 "hca", "hca_port", "distance", "env", "kept_env", "note", "hcas", "rank_source", "applied",
                 "report")
    local_rank: int
    gpu: int | None                 #: CUDA ordinal (visible GPU index)
    gpu_pci: str | None
    numa_node: int | None           #: None: locality unknown (the rank spans the allowed set)
    cpus: tuple[int, ...]
    mem_nodes: tuple[int, ...]
    cpu_policy: str
    mem_policy: str                 #: "default" when locality is unknown
    hca: str | None                 #: RDMA NIC, None when none serves it
    hca_port: int | None
    distance: str | None            #: GPU-NIC class ("PIX" ... "SYS")
    env: dict[str, str]             #: variables this rank exports
    kept_env: dict[str, str]        #: variables the user had set, kept instead
    note: str | None                #: why a fallback was taken
    #: every compute NIC as close to the GPU as ``hca`` under one PCIe switch,
    #: "name:port", PCI order (OCI's two ports per GPU); ``hca`` is the one exported
    hcas: tuple[str, ...]
    rank_source: str | None         #: where the local rank came from ("LOCAL_RANK", "argument")
    applied: bool
    report: dict[str, Any] | None   #: what applying did (not compared)

    def __init__(self, local_rank: int, gpu: int | None, gpu_pci: str | None, numa_node: int | None,
                 cpus: tuple[int, ...], mem_nodes: tuple[int, ...], cpu_policy: str, mem_policy: str,
                 hca: str | None, hca_port: int | None, distance: str | None, env: dict[str, str],
                 kept_env: dict[str, str], note: str | None = None, hcas: tuple[str, ...] = (),
                 rank_source: str | None = None, applied: bool = False,
                 report: dict[str, Any] | None = None) -> None:
        _set(self, "local_rank", local_rank)
        _set(self, "gpu", gpu)
        _set(self, "gpu_pci", gpu_pci)
        _set(self, "numa_node", numa_node)
        _set(self, "cpus", cpus)
        _set(self, "mem_nodes", mem_nodes)
        _set(self, "cpu_policy", cpu_policy)
        _set(self, "mem_policy", mem_policy)
        _set(self, "hca", hca)
        _set(self, "hca_port", hca_port)
        _set(self, "distance", distance)
        _set(self, "env", env)
        _set(self, "kept_env", kept_env)
        _set(self, "note", note)
        _set(self, "hcas", hcas)
        _set(self, "rank_source", rank_source)
        _set(self, "applied", applied)
        _set(self, "report", report)

    @property
    def locality(self) -> str:
        return "unknown" if self.numa_node is None else "node"

    def to_dict(self) -> dict[str, Any]:
        return {
            "local_rank": self.local_rank, "gpu_pci": self.gpu_pci, "numa_node": self.numa_node,
            "cpus": list(self.cpus), "mem_nodes": list(self.mem_nodes), "mem_policy": self.mem_policy,
            "hca": self.hca, "hca_port": self.hca_port, "distance": self.distance, "env": dict(self.env),
            "gpu": self.gpu, "cpu_policy": self.cpu_policy, "locality": self.locality,
            "kept_env": dict(self.kept_env), "note": self.note, "rank_source": self.rank_source,
            "applied": self.applied, "hcas": list(self.hcas),
        }

    def to_json(self) -> str:
        import json
        return json.dumps(self.to_dict())

    def __repr__(self) -> str:
        where = "locality unknown" if self.numa_node is None else f"node {self.numa_node}"
        nic = f"{self.hca}:{self.hca_port} ({self.distance})" if self.hca else "no RDMA NIC"
        return (f"<RankPlan rank {self.local_rank}: GPU {self.gpu} {self.gpu_pci or '-'}, {where}, "
                f"CPUs {_core.format_cpulist(self.cpus)}, memory {self.mem_policy} "
                f"{_core.format_cpulist(self.mem_nodes)}, {nic}{', applied' if self.applied else ''}>")


class Plan(Record):
    """Every local rank's placement."""

    __slots__ = ("ranks", "note")
    ranks: tuple[RankPlan, ...]
    note: str | None                #: why there are no ranks (no GPU this process can see)

    def __init__(self, ranks: tuple[RankPlan, ...], note: str | None = None) -> None:
        _set(self, "ranks", ranks)
        _set(self, "note", note)

    def __getitem__(self, rank: int) -> RankPlan:
        return self.ranks[rank]

    def __len__(self) -> int:
        return len(self.ranks)

    def to_dict(self) -> dict[str, Any]:
        return {"ranks": [r.to_dict() for r in self.ranks], "note": self.note}

    def to_json(self, indent: int | None = None) -> str:
        import json
        return json.dumps(self.to_dict(), indent=indent)


# The most local ranks a plan has: the C core reads no launcher count above
# it (LOCAL_WORLD_SIZE, SLURM_TASKS_PER_NODE...: csrc/src/launcher_env.c), and
# an argument gets the same limit (docs/launchers.md).
MAX_LOCAL_WORLD_SIZE = 1 << 20
# A C int: reserve_cores, a GPU index.
INT_MAX = (1 << 31) - 1
LOCAL_WORLD_SIZE_LIMIT = "the most local ranks numabind plans on one node"


def _check_int(name: str, value: Any, minimum: int = 0, maximum: int = INT_MAX, limit: str = "") -> int:
    """``value`` when it is an int in [minimum, maximum]; else TypeError or
    ValueError naming ``name``, the value and the bound (``limit`` says
    what the maximum is)."""
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError(f"{name} must be an int, not {value!r}")
    if value < minimum:
        raise ValueError(f"{name} {value} is below {minimum}")
    if value > maximum:
        raise ValueError(f"{name} {value} is above {maximum}" + (f", {limit}" if limit else ", the largest C int"))
    return value


def _policy(kind: str, value: str, choices: Sequence[str]) -> int:
    if value not in choices:
        raise ValueError(f"unknown {kind} policy {value!r} (choose from {', '.join(choices)})")
    return choices.index(value)


def _rank_plans(rows: list[dict[str, Any]]) -> tuple[RankPlan, ...]:
    """RankPlans from PlanHandle.ranks()'s rows."""
    out = []
    for r in rows:
        env = {name: value for name, value, user, kept in r["env"] if not kept}
        kept = {name: user for name, value, user, kept in r["env"] if kept}
        fields = {k: v for k, v in r.items() if k != "env"}
        out.append(RankPlan(env=env, kept_env=kept, **fields))
    return tuple(out)


def _make_plan(topo: Topology, local_world_size: int | None, policy: str, mem: str,
               gpus: Sequence[int] | None, reserve_cores: int, override_env: bool) -> Any:
    cpu = _policy("CPU", policy, CPU_POLICIES)
    memp = _policy("memory", mem, MEM_POLICIES)
    _check_int("reserve_cores", reserve_cores)
    if local_world_size is None:
        from_env = _core.local_world_size_from_env()
        local_world_size = from_env[0] if from_env else 0
    else:
        _check_int("local_world_size", local_world_size, 1, MAX_LOCAL_WORLD_SIZE, LOCAL_WORLD_SIZE_LIMIT)
    if gpus is not None:
        gpus = [_check_int(f"gpus[{i}]", g, -1) for i, g in enumerate(gpus)]
        if len(gpus) > MAX_LOCAL_WORLD_SIZE:
            raise ValueError(f"gpus names {len(gpus)} ranks, above {MAX_LOCAL_WORLD_SIZE}, "
                             f"{LOCAL_WORLD_SIZE_LIMIT}")
        if not gpus:
            raise ValueError("gpus is empty: name the visible GPU of every local rank")
        if local_world_size and len(gpus) != local_world_size:
            raise ValueError(f"gpus {list(gpus)} names {len(gpus)} ranks, local_world_size is {local_world_size}")
        local_world_size = len(gpus)
    return _core.PlanHandle(topo._handle, cpu, memp, local_world_size or 0, gpus, reserve_cores,
                            override_env)


def _ids(name: str, value: Any) -> list[int] | None:
    """A CPU or node list given as "0-3,8" or as ints, or None."""
    if value is None:
        return None
    if isinstance(value, str):
        try:
            return list(_core.parse_cpulist(value))
        except ValueError:
            raise ValueError(f"{name} {value!r} is not a list such as 0-3,8") from None
    return [_check_int(f"{name}[{i}]", v) for i, v in enumerate(value)]


def _override(handle: Any, topo: Topology, rank: int, mem: str, cpus: Any, mem_nodes: Any,
              nic: str | None) -> None:
    """What a person gives for one rank (nmb_plan_override_rank): checked
    against the topology, the plan unchanged when refused."""
    if cpus is None and mem_nodes is None and nic is None:
        return
    if nic is not None and not isinstance(nic, str):
        raise TypeError(f"nic must be a str such as 'mlx5_3' or 'mlx5_3:1', not {nic!r}")
    handle.override(topo._handle, rank, cpus=_ids("cpus", cpus), mems=_ids("mem_nodes", mem_nodes),
                    mem_policy=MEM_POLICIES.index(mem) if mem_nodes is not None else -1, nic=nic)


def _with_gpu(topo: Topology, rank: int, gpu: int | None, gpus: Sequence[int] | None,
              local_world_size: int | None) -> Sequence[int] | None:
    """``gpus`` with ``rank`` driving visible GPU ``gpu`` (the others: rank r
    drives GPU r, as without it)."""
    if gpu is None:
        return gpus
    _check_int("gpu", gpu)
    if gpus is not None:
        raise ValueError("give either gpu (this rank's) or gpus (every rank's), not both")
    if local_world_size is None:
        from_env = _core.local_world_size_from_env()
        local_world_size = from_env[0] if from_env else len(topo.gpus)
    n = max(local_world_size, rank + 1)
    return [gpu if r == rank else -1 for r in range(n)]     # -1: the others as without gpu


def plan(local_world_size: int | None = None, *, policy: str = "exclusive", mem: str = "preferred",
         gpus: Sequence[int] | None = None, reserve_cores: int = 0, override_env: bool = False,
         topology: Topology | None = None, rank: int | None = None, gpu: int | None = None,
         cpus: Any = None, mem_nodes: Any = None, nic: str | None = None) -> Plan:
    """Plans every local rank of this node.

    ``local_world_size`` defaults to the launcher's (``LOCAL_WORLD_SIZE``,
    ``SLURM_NTASKS_PER_NODE``, ...), else one rank per visible GPU. ``gpus``
    gives the visible GPU each rank drives (default: rank *r* drives GPU *r*;
    -1 for a rank keeps that default).
    ``gpu``, ``cpus`` ("0-7" or ints), ``mem_nodes`` (with ``mem``'s policy)
    and ``nic`` ("mlx5_3", "mlx5_3:1") replace rank ``rank``'s, each checked
    against the topology. Raises :class:`numabind.PlacementError` when no
    placement fits or an override names what this node does not have.
    """
    topo = topology if topology is not None else _read_lazily(plan_only=True)
    if rank is None and (gpu, cpus, mem_nodes, nic) != (None, None, None, None):
        raise ValueError("gpu, cpus, mem_nodes and nic are one rank's: name it with rank=")
    if rank is not None:
        _check_int("rank", rank, 0, MAX_LOCAL_WORLD_SIZE - 1)
    gpus = _with_gpu(topo, rank or 0, gpu, gpus, local_world_size)
    handle = _make_plan(topo, local_world_size, policy, mem, gpus, reserve_cores, override_env)
    if rank is not None and handle.note() is None:
        _override(handle, topo, rank, mem, cpus, mem_nodes, nic)
    return Plan(_rank_plans(handle.ranks()), handle.note())


# The topology pin_rank plans from is read once per process (the plan comes
# from the cgroup's cpuset, not the affinity, so a second read would give the
# same plan; this only saves the read).
_pinned_lock = _thread.allocate_lock()   # threading.Lock, without importing threading
_pinned_topology: dict[tuple[int, str | None, str | None], Topology] = {}


def _process_topology() -> Topology:
    key = (os.getpid(), os.environ.get("CUDA_VISIBLE_DEVICES"), os.environ.get("NUMABIND_FSROOT"))
    with _pinned_lock:
        topo = _pinned_topology.get(key)
        if topo is None:
            topo = _pinned_topology[key] = _read_lazily(plan_only=True)
        return topo


# The last plan pin_rank applied in this process, for audit().
_applied: RankPlan | None = None


def applied() -> RankPlan | None:
    """The plan :func:`pin_rank` last applied in this process, or None."""
    return _applied if _applied is not None and _applied_pid == os.getpid() else None


_applied_pid = 0


def rank_in(ranks: Sequence[RankPlan], local_rank: int, origin: str, where: str) -> RankPlan:
    """ranks[local_rank], or PlacementError naming the rank (and `origin`,
    where it came from) and how many ranks there are."""
    if not 0 <= local_rank < len(ranks):
        raise PlacementError(22, "invalid argument",
                             f"local rank {local_rank}{origin} is outside the {len(ranks)} local ranks planned",
                             where)
    return ranks[local_rank]


def resolve_rank(rank: int | None) -> tuple[int, str]:
    """The local rank and where it came from."""
    if rank is not None:
        return _check_int("rank", rank, 0, MAX_LOCAL_WORLD_SIZE - 1,
                          f"the last local rank of the largest plan ({MAX_LOCAL_WORLD_SIZE} ranks)"), "argument"
    return _core.local_rank_from_env()


def pin_rank(rank: int | None = None, *, policy: str = "exclusive", mem: str = "preferred",
             export_env: bool = True, migrate: bool = False, dry_run: bool = False,
             local_world_size: int | None = None, gpus: Sequence[int] | None = None,
             reserve_cores: int = 0, override_env: bool = False,
             topology: Topology | None = None, gpu: int | None = None, cpus: Any = None,
             mem_nodes: Any = None, nic: str | None = None) -> RankPlan:
    """Pins this process as local rank ``rank`` (default: from ``LOCAL_RANK``,
    ``SLURM_LOCALID``, ``OMPI_COMM_WORLD_LOCAL_RANK`` or ``MPI_LOCALRANKID``).

    Binds every thread to the rank's CPUs, sets the memory policy (threads
    started later inherit it), optionally migrates pages already touched,
    and exports the rank's NIC as ``NVSHMEM_HCA_LIST`` (one entry, with
    ``NVSHMEM_ENABLE_NIC_PE_MAPPING=1``), ``UCX_NET_DEVICES`` and
    ``EP_NIC_NAME``, and the node's compute NICs as ``NCCL_IB_HCA`` (one
    value for every rank) — keeping values the user set unless
    ``override_env`` (a node-wide ``NVSHMEM_HCA_LIST`` is taken as the
    candidate NICs instead). Call it before CUDA, NVSHMEM or the first NCCL
    communicator (``init_process_group``) start.

    Where this process can see no GPU (none on the node,
    ``CUDA_VISIBLE_DEVICES=''``, a container given none) there is no rank to
    pin: the process is left as it is, a warning is logged, and the returned
    plan's ``note`` says why.

    ``gpu`` (the rank's CUDA device), ``cpus``, ``mem_nodes`` (with ``mem``'s
    policy) and ``nic`` replace what the plan chose, each checked against
    the topology (:class:`numabind.PlacementError` naming the value).

    Returns the rank's :class:`RankPlan`. With ``dry_run`` nothing is
    changed. Raises :class:`numabind.PlacementError` when no plan fits and
    :class:`numabind.BindingError` when applying fails — after restoring the
    previous affinity and memory policy.
    """
    try:
        local_rank, source = resolve_rank(rank)
        unnamed = None
    except NumabindError as e:                  # a bad value is an error; none at all may not be
        if e.errno != errno.ENOENT:
            raise
        local_rank, source, unnamed = 0, None, e
    topo = topology if topology is not None else _process_topology()
    gpus = _with_gpu(topo, local_rank, gpu, gpus, local_world_size)
    handle = _make_plan(topo, local_world_size, policy, mem, gpus, reserve_cores, override_env)
    if unnamed is None and handle.note() is None:       # ranks to override (no GPU: none)
        _override(handle, topo, local_rank, mem, cpus, mem_nodes, nic)
    rows = handle.ranks()
    ranks = _rank_plans(rows)
    if not ranks:
        why = handle.note() or "no rank planned"
        if unnamed is not None:
            why += "; no local rank in the environment either"
        return _unpinned(local_rank, source, why, topo, policy)
    if unnamed is not None:
        raise unnamed
    result = rank_in(ranks, local_rank, f" (from {source})", "pin_rank")._replace(rank_source=source)
    if result.note:
        # What the caller gave (cpus=, nic=: "... given") is no fallback to warn about.
        given = all(part.endswith(" given") for part in result.note.split("; "))
        if given:
            _log().info("local rank %d: %s", local_rank, result.note)
        else:
            _log().warning("local rank %d: %s", local_rank, result.note)
    planned = {name: value for name, value, _user, _kept in rows[local_rank]["env"]}
    for name, value in result.kept_env.items():
        if value == planned[name]:
            _log().info("local rank %d: keeping %s=%s from the environment", local_rank, name, value)
        else:
            _log().warning("local rank %d: keeping %s=%s from the environment; the plan says %s=%s "
                        "(override_env=True replaces it)", local_rank, name, value, name, planned[name])
    _warn_if_too_late(result)
    if dry_run:
        return result
    report = handle.apply(local_rank, _core.APPLY_MIGRATE if migrate else 0)
    if export_env:
        # os.environ, not C setenv: Python and the processes it starts see it too.
        os.environ.update(result.env)
    global _applied, _applied_pid
    _applied, _applied_pid = result._replace(applied=True, report=report), os.getpid()
    return _applied


def _unpinned(local_rank: int, source: str | None, why: str, topo: Topology, policy: str) -> RankPlan:
    """pin_rank where the plan has no ranks: the process is left as it is."""
    _log().warning("local rank %d: not pinned: %s", local_rank, why)
    return RankPlan(local_rank=local_rank, gpu=None, gpu_pci=None, numa_node=None, cpus=topo.affinity_cpus,
                    mem_nodes=topo.allowed_mems, cpu_policy=policy, mem_policy="default", hca=None,
                    hca_port=None, distance=None, env={}, kept_env={}, note=f"not pinned: {why}",
                    rank_source=source)


def _warn_if_too_late(rank: RankPlan) -> None:
    """NCCL reads its variables when the first communicator starts
    (init_process_group with the nccl backend, and DeepEP 2.x reuses that
    communicator): exported later, they reach only later communicators."""
    dist = sys.modules.get("torch.distributed")
    try:
        started = dist is not None and dist.is_available() and dist.is_initialized()
    except Exception:  # a torch too old or too broken to say: nothing to warn about
        started = False
    if started and rank.env:
        _log().warning("local rank %d: a torch.distributed process group already exists: NCCL may have read "
                    "NCCL_IB_HCA before numabind exported it; call pin_rank before init_process_group",
                    rank.local_rank)
