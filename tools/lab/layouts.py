"""The lab's guest layouts: NUMA nodes, CPUs, PCI tree, and what numabind
should make of them, written down by hand.

A layout is plain data. ``tools/lab/lab.py`` turns it into QEMU options and
writes ``to_json()`` into the guest, where the tests in tests/lab/guest/
compare what the kernel and numabind report with it. The expectations
(distance classes, each rank's plan) are stated here, not derived from
what the guest shows, so a guest that came up differently fails the tests.

CPU numbering follows QEMU's ``-smp sockets=S,cores=C,threads=T``: CPU
``(socket*C + core)*T + thread``, which the guest kernel keeps (ACPI MADT
order). Layouts name *global* cores ``socket*C + core``; core ``k`` has the
CPUs ``k*T .. k*T+T-1``, SMT siblings together.

PCI: each ``Pxb`` is a ``pxb-pcie`` expander bridge, a host bridge of its
own (``pci0000:<bus_nr>``) whose ACPI ``_PXM`` is its node. Its ports are
``pcie-root-port``\\ s in order; a port with ``switch=True`` holds a PCIe
switch (``x3130-upstream``, one ``xio3130-downstream`` per device). GPUs
are QEMU ``pci-testdev`` functions that the guest relabels as NVIDIA 3D
controllers (see docs/lab.md); NICs are ``virtio-net-pci`` or ``e1000e``
with a soft-RoCE (rdma_rxe) device named after the NIC.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

# The PCI function QEMU's pci-testdev shows (Red Hat, QEMU PCI test device).
STANDIN_ID = "0x1b36:0x0005"


@dataclass(frozen=True)
class Dev:
    kind: str                  # "gpu" or "nic"
    name: str                  # gpu0.. / the NIC's soft-RoCE name (rxe0..)
    model: str = ""            # NIC model: virtio-net-pci or e1000e


@dataclass(frozen=True)
class Port:
    devices: tuple[Dev, ...]
    switch: bool = False       # behind a PCIe switch (one downstream port per device)


@dataclass(frozen=True)
class Pxb:
    node: int
    bus_nr: int
    ports: tuple[Port, ...]

    @property
    def host_bridge(self) -> str:
        return f"pci0000:{self.bus_nr:02x}"


@dataclass(frozen=True)
class Node:
    id: int
    cores: tuple[int, ...]     # global core numbers; () for a CPU-less node
    mem_mib: int


@dataclass(frozen=True)
class Rank:
    """What numabind's default plan (exclusive, preferred) gives a rank."""
    gpu: str
    node: int                  # the rank's CPU node
    cores: tuple[int, ...]
    hca: str
    distance: str


@dataclass(frozen=True)
class Layout:
    name: str
    description: str
    sockets: int
    cores: int                 # per socket
    threads: int               # per core
    nodes: tuple[Node, ...]
    distances: tuple[tuple[int, ...], ...]
    pxbs: tuple[Pxb, ...]
    classes: dict[str, dict[str, str]]   # GPU -> NIC -> nvidia-smi class
    ranks: tuple[Rank, ...]

    # ---- derived ----
    @property
    def num_cpus(self) -> int:
        return self.sockets * self.cores * self.threads

    def core_cpus(self, core: int) -> list[int]:
        return [core * self.threads + t for t in range(self.threads)]

    def node_cpus(self, node: Node) -> list[int]:
        return [c for k in node.cores for c in self.core_cpus(k)]

    def devices(self, kind: str) -> list[tuple[Pxb, Port, Dev]]:
        """Devices of a kind in PCI address order (pxb bus, port, slot)."""
        out = []
        for pxb in sorted(self.pxbs, key=lambda p: p.bus_nr):
            for port in pxb.ports:
                out += [(pxb, port, d) for d in port.devices if d.kind == kind]
        return out

    def nic_mac(self, index: int) -> str:
        return f"52:54:00:4e:42:{index:02x}"

    def validate(self) -> None:
        ids = [n.id for n in self.nodes]
        if ids != list(range(len(ids))):
            raise ValueError(f"{self.name}: node ids must be 0..{len(ids) - 1}, not {ids}")
        cores = sorted(k for n in self.nodes for k in n.cores)
        if cores != list(range(self.sockets * self.cores)):
            raise ValueError(f"{self.name}: every core must be on exactly one node: {cores}")
        if len(self.distances) != len(ids) or any(len(r) != len(ids) for r in self.distances):
            raise ValueError(f"{self.name}: distances must be {len(ids)}x{len(ids)}")
        for a in ids:
            for b in ids:
                if self.distances[a][b] != self.distances[b][a] or (a == b) != (self.distances[a][b] == 10):
                    raise ValueError(f"{self.name}: distances must be symmetric with 10 on the diagonal")
        buses = [p.bus_nr for p in self.pxbs]
        if len(set(buses)) != len(buses) or any(b % 32 or not 0 < b < 256 for b in buses):
            raise ValueError(f"{self.name}: pxb bus numbers must be distinct multiples of 32: {buses}")
        for pxb in self.pxbs:
            if pxb.node not in ids:
                raise ValueError(f"{self.name}: pxb {pxb.host_bridge} on unknown node {pxb.node}")
            for port in pxb.ports:
                if not port.devices or (len(port.devices) > 1 and not port.switch):
                    raise ValueError(f"{self.name}: a port without a switch holds exactly one device")
        gpus = [d.name for _, _, d in self.devices("gpu")]
        nics = [d.name for _, _, d in self.devices("nic")]
        if gpus != [f"gpu{i}" for i in range(len(gpus))]:
            raise ValueError(f"{self.name}: GPUs must be gpu0.. in PCI order, not {gpus}")
        if sorted(self.classes) != sorted(gpus) or any(sorted(v) != sorted(nics) for v in self.classes.values()):
            raise ValueError(f"{self.name}: classes must name every GPU-NIC pair")
        if [r.gpu for r in self.ranks] != gpus:
            raise ValueError(f"{self.name}: one rank per GPU, in order")
        for _, _, d in self.devices("nic"):
            if d.model not in ("virtio-net-pci", "e1000e"):
                raise ValueError(f"{self.name}: NIC model {d.model!r}")

    def to_json(self) -> dict[str, Any]:
        """What the guest tests read (NUMABIND_LAB_LAYOUT)."""
        node_of_cpu = {c: n.id for n in self.nodes for c in self.node_cpus(n)}
        nics = []
        for i, (pxb, port, d) in enumerate(self.devices("nic")):
            nics.append({"name": d.name, "model": d.model, "mac": self.nic_mac(i), "node": pxb.node,
                         "host_bridge": pxb.host_bridge, "switch": port.switch})
        gpus = [{"name": d.name, "node": pxb.node, "host_bridge": pxb.host_bridge, "switch": port.switch}
                for pxb, port, d in self.devices("gpu")]
        return {
            "name": self.name,
            "description": self.description,
            "smp": {"sockets": self.sockets, "cores": self.cores, "threads": self.threads},
            "cpus": [{"cpu": c, "node": node_of_cpu[c], "package": c // (self.cores * self.threads),
                      "core": c // self.threads, "siblings": self.core_cpus(c // self.threads)}
                     for c in range(self.num_cpus)],
            "nodes": [{"id": n.id, "cpus": self.node_cpus(n), "mem_mib": n.mem_mib,
                       "has_cpus": bool(n.cores)} for n in self.nodes],
            "distances": [list(r) for r in self.distances],
            "gpus": gpus,
            "nics": nics,
            "classes": self.classes,
            "ranks": [{"gpu": r.gpu, "node": r.node, "cpus": [c for k in r.cores for c in self.core_cpus(k)],
                       "hca": r.hca, "distance": r.distance} for r in self.ranks],
        }


def _two_node(smt: bool) -> Layout:
    """2 sockets = 2 nodes of 2 cores. Node 0: gpu0 and rxe0 on two root ports
    of one expander bridge (PHB), rxe2 (e1000e) on a second expander bridge of
    the same node (NODE). Node 1: gpu1, gpu2 and rxe1 behind one PCIe switch
    (PIX), so its two ranks split its cores."""
    gpu = lambda n: Dev("gpu", n)
    return Layout(
        name="2node-smt" if smt else "2node",
        description=f"2 NUMA nodes x 2 cores{' x 2 threads' if smt else ''}; 3 GPUs, 3 NICs on 3 expander "
                    "bridges, one PCIe switch",
        sockets=2, cores=2, threads=2 if smt else 1,
        nodes=(Node(0, (0, 1), 512), Node(1, (2, 3), 512)),
        distances=((10, 20), (20, 10)),
        pxbs=(
            Pxb(0, 0x20, (Port((Dev("nic", "rxe0", "virtio-net-pci"),)), Port((gpu("gpu0"),)))),
            Pxb(1, 0x40, (Port((gpu("gpu1"), gpu("gpu2"), Dev("nic", "rxe1", "virtio-net-pci")), switch=True),)),
            Pxb(0, 0x60, (Port((Dev("nic", "rxe2", "e1000e"),)),)),
        ),
        classes={
            "gpu0": {"rxe0": "PHB", "rxe1": "SYS", "rxe2": "NODE"},
            "gpu1": {"rxe0": "SYS", "rxe1": "PIX", "rxe2": "SYS"},
            "gpu2": {"rxe0": "SYS", "rxe1": "PIX", "rxe2": "SYS"},
        },
        ranks=(
            Rank("gpu0", 0, (0, 1), "rxe0", "PHB"),
            Rank("gpu1", 1, (2,), "rxe1", "PIX"),
            Rank("gpu2", 1, (3,), "rxe1", "PIX"),
        ),
    )


def _four_node(smt: bool) -> Layout:
    """4 nodes: socket 0 is node 0 (2 cores); socket 1 is split into nodes 1
    and 2 (one core each, as sub-NUMA clustering does); node 3 has memory and
    no CPUs (GPU memory on Grace machines). gpu0, gpu1 and rxe0 share a PCIe
    switch on node 0; gpu2 and rxe1 (e1000e) sit on two root ports of node 1;
    rxe2 is alone on node 2; gpu3 hangs off the CPU-less node 3, whose
    nearest node with CPUs is node 2."""
    gpu = lambda n: Dev("gpu", n)
    return Layout(
        name="4node-smt" if smt else "4node",
        description=f"4 NUMA nodes (node 3 CPU-less), 4 cores{' x 2 threads' if smt else ''}; "
                    "4 GPUs, 3 NICs on 4 expander bridges, one PCIe switch",
        sockets=2, cores=2, threads=2 if smt else 1,
        nodes=(Node(0, (0, 1), 512), Node(1, (2,), 512), Node(2, (3,), 512), Node(3, (), 512)),
        distances=((10, 20, 20, 30), (20, 10, 15, 25), (20, 15, 10, 17), (30, 25, 17, 10)),
        pxbs=(
            Pxb(0, 0x20, (Port((gpu("gpu0"), gpu("gpu1"), Dev("nic", "rxe0", "virtio-net-pci")), switch=True),)),
            Pxb(1, 0x40, (Port((gpu("gpu2"),)), Port((Dev("nic", "rxe1", "e1000e"),)))),
            Pxb(2, 0x60, (Port((Dev("nic", "rxe2", "virtio-net-pci"),)),)),
            Pxb(3, 0x80, (Port((gpu("gpu3"),)),)),
        ),
        classes={
            "gpu0": {"rxe0": "PIX", "rxe1": "SYS", "rxe2": "SYS"},
            "gpu1": {"rxe0": "PIX", "rxe1": "SYS", "rxe2": "SYS"},
            "gpu2": {"rxe0": "SYS", "rxe1": "PHB", "rxe2": "SYS"},
            "gpu3": {"rxe0": "SYS", "rxe1": "SYS", "rxe2": "SYS"},
        },
        ranks=(
            Rank("gpu0", 0, (0,), "rxe0", "PIX"),
            Rank("gpu1", 0, (1,), "rxe0", "PIX"),
            Rank("gpu2", 1, (2,), "rxe1", "PHB"),
            # Every NIC is SYS from node 3: the least loaded one, rxe2, wins.
            Rank("gpu3", 2, (3,), "rxe2", "SYS"),
        ),
    )


LAYOUTS: dict[str, Layout] = {
    lay.name: lay for lay in (_two_node(False), _two_node(True), _four_node(False), _four_node(True))
}
for _lay in LAYOUTS.values():
    _lay.validate()
