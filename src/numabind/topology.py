"""The machine's topology as immutable Python objects.

``numabind.topology()`` reads the machine once (through the C core) and
returns a :class:`Topology`: NUMA nodes, CPUs, PCI functions, GPUs, RDMA NICs,
and the GPU-NIC distance classes ``nvidia-smi topo -m`` prints.
"""

from __future__ import annotations

import os

from numabind import _core
from numabind._record import Record, frozen_set as _set

# Nothing here imports typing, enum, functools or dataclasses at run time:
# `import numabind; numabind.topology()` pays for none of them (issue 16).
TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any, Union

    import numpy as np

    from numabind._distance import DistanceClass

    GpuRef = Union[int, str, "Gpu"]
    NicRef = Union[int, str, "Nic"]

__all__ = [
    "DistanceClass", "NumaNode", "Cpu", "PciFunction", "Gpu", "NicPort", "Nic", "Topology",
    "topology",
]


# Hidden from type checkers, which read the names themselves (above): a
# misspelt name stays an error for mypy.
if not TYPE_CHECKING:
    def __getattr__(name: str) -> Any:
        # DistanceClass (an IntEnum) and the GpuRef/NicRef aliases are made on
        # first use: enum and typing cost more than the rest of the module.
        if name == "DistanceClass":
            from numabind._distance import DistanceClass
            globals()[name] = DistanceClass
            return DistanceClass
        if name in ("GpuRef", "NicRef"):
            from typing import Union
            value = globals()[name] = Union[int, str, Gpu if name == "GpuRef" else Nic]
            return value
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


_PORT_STATES = {0: "NOP", 1: "DOWN", 2: "INIT", 3: "ARMED", 4: "ACTIVE", 5: "ACTIVE_DEFER"}
_LINK_LAYERS = {0: None, 1: "InfiniBand", 2: "Ethernet"}


# The value classes are written out rather than made by @dataclass(frozen=True):
# dataclass generation cost ~9 ms of every import (issue 16). numabind._record
# gives them the dataclass behaviour (frozen, ==, hash, repr, replace).

class NumaNode(Record):
    __slots__ = ("id", "cpus", "mem_total_bytes", "has_cpus", "distances")
    id: int
    cpus: tuple[int, ...]
    mem_total_bytes: int
    has_cpus: bool                 #: False for CPU-less nodes (GPU memory on Grace machines)
    distances: tuple[int, ...]     #: to every node, in the order of Topology.nodes

    def __init__(self, id: int, cpus: tuple[int, ...], mem_total_bytes: int, has_cpus: bool,
                 distances: tuple[int, ...]) -> None:
        _set(self, "id", id)
        _set(self, "cpus", cpus)
        _set(self, "mem_total_bytes", mem_total_bytes)
        _set(self, "has_cpus", has_cpus)
        _set(self, "distances", distances)


class Cpu(Record):
    __slots__ = ("id", "node", "package", "die", "core_id", "core", "l3")
    id: int
    node: int | None
    package: int
    die: int
    core_id: int                   #: the kernel's core_id, unique within a package
    core: int                      #: index into Topology.cores; SMT siblings share it
    l3: int | None                 #: index into Topology.l3

    def __init__(self, id: int, node: int | None, package: int, die: int, core_id: int, core: int,
                 l3: int | None) -> None:
        _set(self, "id", id)
        _set(self, "node", node)
        _set(self, "package", package)
        _set(self, "die", die)
        _set(self, "core_id", core_id)
        _set(self, "core", core)
        _set(self, "l3", l3)


class PciFunction(Record):
    __slots__ = ("address", "path", "vendor", "device", "class_code", "numa_node", "parent", "host_bridge",
                 "depth", "is_bridge", "link_width", "link_speed_gts", "local_cpus")
    address: str                   #: "dddd:bb:dd.f"
    path: str                      #: sysfs path below the root
    vendor: int
    device: int
    class_code: int
    numa_node: int | None          #: None where the kernel says -1 (unknown)
    parent: str | None             #: address of the upstream bridge
    host_bridge: str               #: "pci0000:15"
    depth: int
    is_bridge: bool
    link_width: int | None
    link_speed_gts: float | None
    local_cpus: tuple[int, ...]

    def __init__(self, address: str, path: str, vendor: int, device: int, class_code: int,
                 numa_node: int | None, parent: str | None, host_bridge: str, depth: int, is_bridge: bool,
                 link_width: int | None, link_speed_gts: float | None, local_cpus: tuple[int, ...]) -> None:
        _set(self, "address", address)
        _set(self, "path", path)
        _set(self, "vendor", vendor)
        _set(self, "device", device)
        _set(self, "class_code", class_code)
        _set(self, "numa_node", numa_node)
        _set(self, "parent", parent)
        _set(self, "host_bridge", host_bridge)
        _set(self, "depth", depth)
        _set(self, "is_bridge", is_bridge)
        _set(self, "link_width", link_width)
        _set(self, "link_speed_gts", link_speed_gts)
        _set(self, "local_cpus", local_cpus)


class Gpu(Record):
    __slots__ = ("index", "physical_index", "pci_address", "numa_node", "uuid", "local_cpus", "device",
                 "accessible", "minor")
    index: int                     #: CUDA ordinal in this process
    physical_index: int            #: position among all GPUs, PCI order
    pci_address: str
    numa_node: int | None
    uuid: str | None
    local_cpus: tuple[int, ...]
    device: int                    #: PCI device id
    accessible: bool               #: this process can open it (False: another container's GPU)
    minor: int | None              #: N of /dev/nvidiaN, from the driver's procfs

    def __init__(self, index: int, physical_index: int, pci_address: str, numa_node: int | None,
                 uuid: str | None, local_cpus: tuple[int, ...], device: int, accessible: bool = True,
                 minor: int | None = None) -> None:
        _set(self, "index", index)
        _set(self, "physical_index", physical_index)
        _set(self, "pci_address", pci_address)
        _set(self, "numa_node", numa_node)
        _set(self, "uuid", uuid)
        _set(self, "local_cpus", local_cpus)
        _set(self, "device", device)
        _set(self, "accessible", accessible)
        _set(self, "minor", minor)


class NicPort(Record):
    __slots__ = ("port", "state", "phys_state", "link_layer", "rate_gbps", "rate")
    port: int
    state: str                     #: "ACTIVE", "DOWN", ...
    phys_state: int                #: 5 = LinkUp
    link_layer: str | None         #: "InfiniBand", "Ethernet"
    rate_gbps: float
    rate: str | None               #: as sysfs prints it

    def __init__(self, port: int, state: str, phys_state: int, link_layer: str | None, rate_gbps: float,
                 rate: str | None) -> None:
        _set(self, "port", port)
        _set(self, "state", state)
        _set(self, "phys_state", phys_state)
        _set(self, "link_layer", link_layer)
        _set(self, "rate_gbps", rate_gbps)
        _set(self, "rate", rate)


class Nic(Record):
    __slots__ = ("name", "pci_address", "numa_node", "netdev", "virtual", "source", "ports")
    name: str
    pci_address: str | None
    numa_node: int | None
    netdev: str | None
    virtual: bool                  #: soft-RoCE / siw, placed through its netdev
    source: str                    #: "verbs" or "sysfs": where the port attributes came from
    ports: tuple[NicPort, ...]

    def __init__(self, name: str, pci_address: str | None, numa_node: int | None, netdev: str | None,
                 virtual: bool, source: str, ports: tuple[NicPort, ...]) -> None:
        _set(self, "name", name)
        _set(self, "pci_address", pci_address)
        _set(self, "numa_node", numa_node)
        _set(self, "netdev", netdev)
        _set(self, "virtual", virtual)
        _set(self, "source", source)
        _set(self, "ports", ports)


def _frozen(rows: Any, dtype: str, shape: tuple[int, int]) -> np.ndarray:
    # numpy is imported here, not with numabind: it is most of the import time
    # of a process that only pins itself (pin_rank never needs it).
    import numpy as np

    # Over immutable bytes, so `flags.writeable = True` cannot be set back.
    data = np.array(rows, dtype=dtype).reshape(shape).tobytes()
    return np.frombuffer(data, dtype=dtype).reshape(shape)


class Topology(Record, fields=(
        "fsroot", "live", "nodes", "cpus", "cores", "l3", "pci", "gpus", "all_gpus", "nics", "online_cpus",
        "allowed_cpus", "allowed_mems", "affinity_cpus", "allowed_source", "_classes", "_handle"),
        repr_exclude=("_classes", "_handle"), compare_exclude=("_handle",), eq=False):
    """One machine's topology, read once; immutable."""

    __slots__ = ("fsroot", "live", "nodes", "cpus", "cores", "l3", "pci", "gpus", "all_gpus", "nics",
                 "online_cpus", "allowed_cpus", "allowed_mems", "affinity_cpus", "allowed_source", "_classes",
                 "_handle", "_numa_matrix", "_gpu_nic_matrix")
    fsroot: str
    live: bool
    nodes: tuple[NumaNode, ...]
    cpus: tuple[Cpu, ...]
    cores: tuple[tuple[int, ...], ...]
    l3: tuple[tuple[int, ...], ...]
    pci: tuple[PciFunction, ...]
    gpus: tuple[Gpu, ...]
    all_gpus: tuple[Gpu, ...]      #: every GPU, visible or not, PCI order (index = physical_index)
    #: ``accessible`` False: sysfs shows it, but this process cannot open it
    #: (a container's libnvidia-container left it out); CUDA never counts it
    nics: tuple[Nic, ...]
    online_cpus: tuple[int, ...]
    allowed_cpus: tuple[int, ...]  #: what the process may widen to: its cgroup cpuset's online CPUs
    allowed_mems: tuple[int, ...]
    affinity_cpus: tuple[int, ...]  #: the affinity when read (a launcher may have narrowed it)
    #: where allowed_cpus came from: "kernel" (the live host's cpuset, as the kernel grants it),
    #: "cgroup" (the cgroup's cpuset files), "affinity" (no cpuset readable: the affinity, under a
    #: root proc/self/status), "online" (a tree with neither: every online CPU)
    allowed_source: str
    _classes: tuple[tuple[int, ...], ...]
    _handle: Any
    _numa_matrix: np.ndarray | None       # numa_distances, made on first use
    _gpu_nic_matrix: np.ndarray | None    # gpu_nic_distances, made on first use

    def __init__(self, fsroot: str, live: bool, nodes: tuple[NumaNode, ...], cpus: tuple[Cpu, ...],
                 cores: tuple[tuple[int, ...], ...], l3: tuple[tuple[int, ...], ...], pci: tuple[PciFunction, ...],
                 gpus: tuple[Gpu, ...], all_gpus: tuple[Gpu, ...], nics: tuple[Nic, ...],
                 online_cpus: tuple[int, ...], allowed_cpus: tuple[int, ...], allowed_mems: tuple[int, ...],
                 affinity_cpus: tuple[int, ...], allowed_source: str, _classes: tuple[tuple[int, ...], ...],
                 _handle: Any) -> None:
        _set(self, "fsroot", fsroot)
        _set(self, "live", live)
        _set(self, "nodes", nodes)
        _set(self, "cpus", cpus)
        _set(self, "cores", cores)
        _set(self, "l3", l3)
        _set(self, "pci", pci)
        _set(self, "gpus", gpus)
        _set(self, "all_gpus", all_gpus)
        _set(self, "nics", nics)
        _set(self, "online_cpus", online_cpus)
        _set(self, "allowed_cpus", allowed_cpus)
        _set(self, "allowed_mems", allowed_mems)
        _set(self, "affinity_cpus", affinity_cpus)
        _set(self, "allowed_source", allowed_source)
        _set(self, "_classes", _classes)
        _set(self, "_handle", _handle)
        _set(self, "_numa_matrix", None)
        _set(self, "_gpu_nic_matrix", None)

    @classmethod
    def _lazy(cls, handle: Any) -> Topology:
        """A Topology over `handle` whose records are made on first use:
        pin_rank plans from the handle alone and never pays for 224 Cpu and
        54 PciFunction objects it does not look at."""
        self = object.__new__(cls)
        _set(self, "_handle", handle)
        _set(self, "_numa_matrix", None)
        _set(self, "_gpu_nic_matrix", None)
        return self

    def __getattr__(self, name: str) -> Any:
        # Reached only for a slot never set: a _lazy() Topology's fields.
        if name in Topology._fields and name != "_handle":
            full = Topology._from_handle(object.__getattribute__(self, "_handle"))
            for n in Topology._fields:
                _set(self, n, getattr(full, n))
            return getattr(self, name)
        raise AttributeError(f"{type(self).__name__!r} object has no attribute {name!r}")

    @classmethod
    def _from_handle(cls, handle: Any) -> Topology:
        s = handle.snapshot()
        return cls(
            fsroot=s["fsroot"], live=s["live"],
            nodes=tuple(NumaNode(**n) for n in s["nodes"]),
            cpus=tuple(Cpu(**c) for c in s["cpus"]),
            cores=tuple(c["cpus"] for c in s["cores"]),
            l3=tuple(s["l3"]),
            pci=tuple(PciFunction(**p) for p in s["pci"]),
            gpus=tuple(Gpu(**g) for g in s["gpus"]),
            all_gpus=tuple(Gpu(**g) for g in s["all_gpus"]),
            nics=tuple(Nic(**{**n, "ports": tuple(
                NicPort(port=p["port"], state=_PORT_STATES.get(p["state"], str(p["state"])),
                        phys_state=p["phys_state"], link_layer=_LINK_LAYERS.get(p["link_layer"]),
                        rate_gbps=p["rate_gbps"], rate=p["rate"])
                for p in n["ports"])}) for n in s["nics"]),
            online_cpus=s["online_cpus"], allowed_cpus=s["allowed_cpus"],
            allowed_mems=s["allowed_mems"], affinity_cpus=s["affinity_cpus"],
            allowed_source=s["allowed_source"],
            _classes=tuple(tuple(row) for row in s["gpu_nic_distances"]),
            _handle=handle,
        )

    # -- lookups ---------------------------------------------------------

    def gpu(self, ref: GpuRef) -> Gpu:
        """A visible GPU by CUDA ordinal, PCI address or object."""
        if isinstance(ref, Gpu):
            ref = ref.index
        for g in self.gpus:
            if g.index == ref or g.pci_address == ref:
                return g
        raise KeyError(f"no visible GPU {ref!r} (visible: {[g.pci_address for g in self.gpus]})")

    def nic(self, ref: NicRef) -> Nic:
        """An RDMA NIC by index, name or object."""
        if isinstance(ref, Nic):
            ref = ref.name
        if isinstance(ref, int) and not isinstance(ref, bool) and 0 <= ref < len(self.nics):
            return self.nics[ref]
        for n in self.nics:
            if n.name == ref:
                return n
        raise KeyError(f"no RDMA NIC {ref!r} (NICs: {[n.name for n in self.nics]})")

    def node(self, id: int) -> NumaNode:
        for n in self.nodes:
            if n.id == id:
                return n
        raise KeyError(f"no NUMA node {id} (nodes: {[n.id for n in self.nodes]})")

    def distance(self, gpu: GpuRef, nic: NicRef) -> DistanceClass:
        """The ``nvidia-smi topo -m`` class between a GPU and a NIC."""
        from numabind._distance import DistanceClass
        g = self.gpus.index(self.gpu(gpu))
        n = self.nics.index(self.nic(nic))
        return DistanceClass(self._classes[g][n])

    def gpu_link(self, a: GpuRef, b: GpuRef) -> int | None:
        """NVLinks between two visible GPUs as ``nvidia-smi topo -m`` counts
        them (``NV#``; through NVSwitches: the fewer switch links), 0 for none;
        None when unknown (read without ``nvlink=True``, under a root, or no NVML)."""
        return self._handle.gpu_link(self.gpus.index(self.gpu(a)), self.gpus.index(self.gpu(b)))

    def gpu_distance(self, a: GpuRef, b: GpuRef) -> DistanceClass:
        """The PCI class between two visible GPUs (PIX ... SYS)."""
        from numabind._distance import DistanceClass
        return DistanceClass(self._handle.gpu_distance(self.gpus.index(self.gpu(a)), self.gpus.index(self.gpu(b))))

    # -- matrices ----------------------------------------------------------

    @property
    def numa_distances(self) -> np.ndarray:
        """Node x node SLIT distances (10 = local), in the order of ``nodes``. Read-only."""
        m = self._numa_matrix
        if m is None:
            m = _frozen([n.distances for n in self.nodes], "int32", (len(self.nodes), len(self.nodes)))
            _set(self, "_numa_matrix", m)
        return m

    @property
    def gpu_nic_distances(self) -> np.ndarray:
        """GPU x NIC :class:`DistanceClass` values (1 = PIX ... 5 = SYS). Read-only."""
        m = self._gpu_nic_matrix
        if m is None:
            m = _frozen(self._classes, "int8", (len(self.gpus), len(self.nics)))
            _set(self, "_gpu_nic_matrix", m)
        return m

    # -- export ------------------------------------------------------------

    def to_dict(self) -> dict[str, Any]:
        """Everything as JSON-ready values (CPU sets as lists of ints)."""
        from numabind._distance import DistanceClass

        def plain(obj: Any) -> Any:
            if isinstance(obj, tuple):
                return [plain(x) for x in obj]
            if isinstance(obj, Record):
                return {k: plain(getattr(obj, k)) for k in obj._fields}
            return obj

        gpus = []
        for gi, g in enumerate(self.gpus):
            d = plain(g)
            d["distances"] = {n.name: DistanceClass(self._classes[gi][ni]).name for ni, n in enumerate(self.nics)}
            gpus.append(d)
        return {
            "fsroot": self.fsroot,
            "live": self.live,
            "nodes": plain(self.nodes),
            "cpus": plain(self.cpus),
            "cores": plain(self.cores),
            "l3": plain(self.l3),
            "pci": plain(self.pci),
            "gpus": gpus,
            "all_gpus": plain(self.all_gpus),
            "nics": plain(self.nics),
            "online_cpus": list(self.online_cpus),
            "allowed_cpus": list(self.allowed_cpus),
            "allowed_mems": list(self.allowed_mems),
            "affinity_cpus": list(self.affinity_cpus),
            "allowed_source": self.allowed_source,
        }

    def __repr__(self) -> str:
        return (f"<Topology {self.fsroot!r}: {len(self.nodes)} NUMA nodes, {len(self.cpus)} CPUs, "
                f"{len(self.gpus)} GPUs, {len(self.nics)} RDMA NICs>")


def _read_lazily(*, plan_only: bool = False) -> Topology:
    """This process's machine, as a Topology whose records are made on first
    use (what pin_rank and plan() read for themselves)."""
    return Topology._lazy(_core.TopologyHandle(None, _core.PLAN_ONLY if plan_only else 0))


def topology(fsroot: str | os.PathLike[str] | None = None, *, nvml: bool = True,
             verbs: bool = True, nvlink: bool = False, plan_only: bool = False) -> Topology:
    """Reads the machine's topology.

    ``fsroot`` stands in for ``/`` (default: ``$NUMABIND_FSROOT``, else the live
    host); under a root other than ``/`` NVML and libibverbs are not consulted.
    ``nvlink`` asks NVML which GPUs NVLink joins (:meth:`Topology.gpu_link`;
    NVML's start-up costs tens of milliseconds, so it is off by default).
    ``plan_only`` reads only what a plan reads (about half the files on an
    8-GPU node): ``Cpu.core_id`` is -1, PCI links are None, only GPUs
    and RDMA NICs have a ``numa_node`` and ``local_cpus``, and a function
    other functions sit below (a bridge) has vendor, device and class 0 and
    ``is_bridge`` True. Plans made from it
    are the same; :func:`numabind.pin_rank` and :func:`numabind.plan` read
    this way when not given a topology.
    Raises :class:`numabind.TopologyError` (``EnvironmentValueError`` when
    ``CUDA_VISIBLE_DEVICES`` names no GPU).
    """
    flags = ((0 if nvml else _core.NO_NVML) | (0 if verbs else _core.NO_VERBS) | (_core.NVLINK if nvlink else 0)
             | (_core.PLAN_ONLY if plan_only else 0))
    return Topology._from_handle(_core.TopologyHandle(None if fsroot is None else os.fspath(fsroot), flags))
