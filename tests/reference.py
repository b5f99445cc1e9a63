"""Independent reference: what a correct topology reader reports for a description.

Derived only from a machine description (``tests/machines/*.json``), never from
numabind and never from a written sysfs tree, so the library's answers can be
checked against it.  Pure standard library; shares no code with sysfs_tree.py.

Functions
---------
``cpulist(s)``                      parse the kernel's cpulist syntax -> sorted ints
``nodes(desc)``                     [{id, cpus, has_cpus, mem_bytes}] by node id
``allowed(desc)``                   {"cpus": [...], "mems": [...]}
``gpus(desc)``                      [{bdf, numa, vendor, device}] in PCI-address order
``nics(desc)``                      RDMA NICs [{name, bdf, numa, netdev, link_layer,
                                    state, rate_gbps, ports}] in PCI-address order
``distance_class(desc, gpu, nic)``  the ``nvidia-smi topo -m`` class, PIX..SYS
``class_matrix(desc)``              {gpu_bdf: {nic_name: class}}
``format_matrix(desc)``             class_matrix as a text table (used below)

Distance classes (``nvidia-smi topo -m`` meanings, computed from the tree):

* PIX  both endpoints hang off one PCIe switch: their lowest common ancestor is a
       bridge and each reaches it through at most one other bridge (endpoint ->
       downstream port -> switch upstream port).  Two functions of one device
       (``1f:00.0`` and ``1f:00.1``) count as PIX.
* PXB  the lowest common ancestor is a bridge, but further away.
* PHB  same host bridge (``root``), no common bridge.
* NODE different host bridges, both numa known (>= 0) and equal.
* SYS  otherwise: different known nodes, or a numa of -1 on either side.

Expected answers for the descriptions in tests/machines (``test_sysfs_tree.py``
checks that this table matches ``class_matrix``; regenerate with
``python3 tests/reference.py``).  Rows: GPUs in PCI order; columns: RDMA NICs in
PCI order.

dgx-h100::

                  mlx5_0 mlx5_1 mlx5_2 mlx5_3 mlx5_4 mlx5_5 mlx5_6 mlx5_7 mlx5_8 mlx5_9 mlx5_10 mlx5_11
    0000:1b:00.0  PIX    PIX    PIX    NODE   NODE   NODE   SYS    SYS    SYS    SYS    SYS     SYS
    0000:43:00.0  NODE   NODE   NODE   PIX    NODE   NODE   SYS    SYS    SYS    SYS    SYS     SYS
    0000:52:00.0  NODE   NODE   NODE   NODE   PIX    NODE   SYS    SYS    SYS    SYS    SYS     SYS
    0000:61:00.0  NODE   NODE   NODE   NODE   NODE   PIX    SYS    SYS    SYS    SYS    SYS     SYS
    0000:9d:00.0  SYS    SYS    SYS    SYS    SYS    SYS    PIX    PIX    PIX    NODE   NODE    NODE
    0000:c3:00.0  SYS    SYS    SYS    SYS    SYS    SYS    NODE   NODE   NODE   PIX    NODE    NODE
    0000:d1:00.0  SYS    SYS    SYS    SYS    SYS    SYS    NODE   NODE   NODE   NODE   PIX     NODE
    0000:df:00.0  SYS    SYS    SYS    SYS    SYS    SYS    NODE   NODE   NODE   NODE   NODE    PIX

azure-nd96isr-h100-v5::

                  mlx5_ib0 mlx5_ib1 mlx5_ib2 mlx5_ib3 mlx5_ib4 mlx5_ib5 mlx5_ib6 mlx5_ib7 mlx5_an0
    0001:00:00.0  NODE     NODE     NODE     NODE     SYS      SYS      SYS      SYS      NODE
    0002:00:00.0  NODE     NODE     NODE     NODE     SYS      SYS      SYS      SYS      NODE
    0003:00:00.0  NODE     NODE     NODE     NODE     SYS      SYS      SYS      SYS      NODE
    0008:00:00.0  NODE     NODE     NODE     NODE     SYS      SYS      SYS      SYS      NODE
    0009:00:00.0  SYS      SYS      SYS      SYS      NODE     NODE     NODE     NODE     SYS
    000a:00:00.0  SYS      SYS      SYS      SYS      NODE     NODE     NODE     NODE     SYS
    000b:00:00.0  SYS      SYS      SYS      SYS      NODE     NODE     NODE     NODE     SYS
    000c:00:00.0  SYS      SYS      SYS      SYS      NODE     NODE     NODE     NODE     SYS

    (every Hyper-V vPCI device has a host bridge of its own, so nothing is closer
    than NODE: the GPU/NIC pairing must come from order within a node.)

h100x4-flat-vm::

    4 GPUs (0000:00:06.0 .. 0000:00:09.0, numa unknown), no RDMA NICs: empty table.

paired-switch-rocev2::

                  mlx5_0 mlx5_1 mlx5_2 mlx5_3 mlx5_4 mlx5_5 mlx5_6 mlx5_7
    0000:10:00.0  PIX    PIX    NODE   NODE   SYS    SYS    SYS    SYS
    0000:11:00.0  PIX    PIX    NODE   NODE   SYS    SYS    SYS    SYS
    0000:30:00.0  NODE   NODE   PIX    PIX    SYS    SYS    SYS    SYS
    0000:31:00.0  NODE   NODE   PIX    PIX    SYS    SYS    SYS    SYS
    0000:90:00.0  SYS    SYS    SYS    SYS    PIX    PIX    NODE   NODE
    0000:91:00.0  SYS    SYS    SYS    SYS    PIX    PIX    NODE   NODE
    0000:b0:00.0  SYS    SYS    SYS    SYS    NODE   NODE   PIX    PIX
    0000:b1:00.0  SYS    SYS    SYS    SYS    NODE   NODE   PIX    PIX

    (two GPUs tie on two PIX NICs per switch: a planner must split them.)

plain-2cpu-no-gpu::

    no GPUs, no RDMA NICs: empty table.
"""
from __future__ import annotations

import json
import re
import sys
from pathlib import Path

CLASSES = ("PIX", "PXB", "PHB", "NODE", "SYS")   # nearest first


def cpulist(s: str) -> list[int]:
    """Parse a kernel cpulist (``0-55,112-167``; empty or ``\\n`` -> []).

    Also takes the ``a-b:used/group`` form the kernel's bitmap_parselist accepts.
    Raises ValueError on anything else.
    """
    s = (s or "").strip()
    out: set[int] = set()
    if not s:
        return []
    for part in s.split(","):
        m = re.fullmatch(r"(\d+)(?:-(\d+)(?::(\d+)/(\d+))?)?", part.strip())
        if not m:
            raise ValueError(f"bad cpulist {s!r}")
        lo = int(m.group(1))
        hi = int(m.group(2)) if m.group(2) else lo
        if hi < lo:
            raise ValueError(f"bad cpulist {s!r}")
        if m.group(3):
            used, group = int(m.group(3)), int(m.group(4))
            if not 0 < used <= group:
                raise ValueError(f"bad cpulist {s!r}")
            out.update(c for c in range(lo, hi + 1) if (c - lo) % group < used)
        else:
            out.update(range(lo, hi + 1))
    return sorted(out)


def nodes(desc: dict) -> list[dict]:
    """NUMA nodes by id: {id, cpus (sorted), has_cpus, mem_bytes}."""
    out = []
    for n in sorted(desc["cpu"]["nodes"], key=lambda n: n["id"]):
        cpus = cpulist(n.get("cpus", ""))
        out.append({"id": n["id"], "cpus": cpus, "has_cpus": bool(cpus),
                    "mem_bytes": int(n.get("mem_mib", 0)) * 1024 * 1024})
    return out


def allowed(desc: dict) -> dict:
    """The process's allowed sets: {"cpus": [...], "mems": [...]}.

    Without an ``allowed`` entry: every CPU and every node.
    """
    a = desc.get("allowed") or {}
    ns = nodes(desc)
    cpus = cpulist(a["cpus"]) if "cpus" in a else sorted(c for n in ns for c in n["cpus"])
    mems = cpulist(a["mems"]) if "mems" in a else [n["id"] for n in ns]
    return {"cpus": cpus, "mems": mems}


# ---------------------------------------------------------------- PCI tree

def _functions(desc: dict) -> list[dict]:
    """Every PCI function: {dev, numa, root, path}; path = chain of ancestor
    devices from the root's first level down to the function itself."""
    out = []

    def walk(devs, root, chain):
        for d in devs or []:
            here = chain + [d]
            out.append({"dev": d, "numa": root.get("numa", -1), "root": root["root"],
                        "path": here})
            walk(d.get("children"), root, here)

    for r in desc.get("pci", []) or []:
        walk(r.get("devices"), r, [])
    return out


def _bdf_key(bdf: str) -> tuple[int, int, int, int]:
    dom, bus, rest = bdf.split(":")
    dev, fn = rest.split(".")
    return int(dom, 16), int(bus, 16), int(dev, 16), int(fn, 16)


def _numa(n: int) -> int | None:
    return None if n is None or n < 0 else n


def gpus(desc: dict) -> list[dict]:
    """GPUs in PCI-address order (CUDA_DEVICE_ORDER=PCI_BUS_ID):
    {bdf, numa (None when -1), vendor, device}."""
    out = [{"bdf": f["dev"]["bdf"], "numa": _numa(f["numa"]),
            "vendor": f["dev"].get("vendor"), "device": f["dev"].get("device")}
           for f in _functions(desc) if f["dev"].get("kind") == "gpu"]
    return sorted(out, key=lambda g: _bdf_key(g["bdf"]))


def _rate_gbps(rate: str) -> float:
    m = re.match(r"\s*(\d+(?:\.\d+)?)\s*Gb/sec", rate or "")
    if not m:
        raise ValueError(f"bad rate {rate!r}")
    return float(m.group(1))


def nics(desc: dict) -> list[dict]:
    """RDMA NICs (kind nic with an ibdev) in PCI-address order:
    {name, bdf, numa (None when -1), netdev, link_layer, state, rate_gbps, ports}."""
    out = []
    for f in _functions(desc):
        d = f["dev"]
        if d.get("kind") != "nic" or not d.get("ibdev"):
            continue
        out.append({"name": d["ibdev"], "bdf": d["bdf"], "numa": _numa(f["numa"]),
                    "netdev": d.get("netdev"), "link_layer": d.get("link_layer"),
                    "state": d.get("state", "ACTIVE"), "rate_gbps": _rate_gbps(d.get("rate")),
                    "ports": int(d.get("ports", 1))})
    return sorted(out, key=lambda n: _bdf_key(n["bdf"]))


def _find(desc: dict, pred, what: str) -> dict:
    hits = [f for f in _functions(desc) if pred(f["dev"])]
    if len(hits) != 1:
        raise KeyError(f"{what}: {len(hits)} matches")
    return hits[0]


def distance_class(desc: dict, gpu_bdf: str, nic_name: str) -> str:
    """``nvidia-smi topo -m`` class between a GPU (by bdf) and an RDMA NIC (by name)."""
    g = _find(desc, lambda d: d.get("bdf") == gpu_bdf, f"GPU {gpu_bdf}")
    n = _find(desc, lambda d: d.get("ibdev") == nic_name, f"NIC {nic_name}")
    gb, nb = g["dev"]["bdf"], n["dev"]["bdf"]
    if g["root"] == n["root"]:
        # Functions of one device (same domain:bus:device) share its upstream link.
        if gb.rsplit(".", 1)[0] == nb.rsplit(".", 1)[0]:
            return "PIX"
        gp, np_ = g["path"], n["path"]
        common = 0
        while common < min(len(gp), len(np_)) - 1 and gp[common] is np_[common]:
            common += 1
        if common == 0:
            return "PHB"          # lowest common ancestor is the host bridge
        # gp[common-1] is the lowest common ancestor (a bridge).  Bridges strictly
        # between it and each endpoint:
        g_between = len(gp) - common - 1
        n_between = len(np_) - common - 1
        return "PIX" if max(g_between, n_between) <= 1 else "PXB"
    gn, nn = _numa(g["numa"]), _numa(n["numa"])
    if gn is not None and gn == nn:
        return "NODE"
    return "SYS"


def class_matrix(desc: dict) -> dict[str, dict[str, str]]:
    """{gpu_bdf: {nic_name: class}} for every GPU and RDMA NIC."""
    return {g["bdf"]: {n["name"]: distance_class(desc, g["bdf"], n["name"]) for n in nics(desc)}
            for g in gpus(desc)}


def format_matrix(desc: dict) -> str:
    """class_matrix as the text table in this module's docstring ("" when empty)."""
    gs, ns = gpus(desc), nics(desc)
    if not gs or not ns:
        return ""
    mat = class_matrix(desc)
    widths = [max(len(n["name"]), 4) for n in ns]
    lines = [" " * 14 + " ".join(n["name"].ljust(w) for n, w in zip(ns, widths))]
    for g in gs:
        lines.append(g["bdf"].ljust(14) + " ".join(
            mat[g["bdf"]][n["name"]].ljust(w) for n, w in zip(ns, widths)))
    return "\n".join(line.rstrip() for line in lines)


def docstring_tables() -> dict[str, str]:
    """The tables in this module's docstring, by machine name (for the tests)."""
    out: dict[str, str] = {}
    name, buf = None, []
    for line in (__doc__ or "").splitlines():
        m = re.fullmatch(r"([a-z0-9][a-z0-9.-]*)::", line)
        if m:
            if name:
                out[name] = _table_of(buf)
            name, buf = m.group(1), []
        elif name:
            buf.append(line)
    if name:
        out[name] = _table_of(buf)
    return out


def _table_of(lines: list[str]) -> str:
    # The table is the first block of 4-space-indented lines whose first row
    # starts with blanks (the header); prose blocks yield "".
    block = []
    for line in lines:
        if line.startswith("    "):
            block.append(line[4:].rstrip())
        elif block and line.strip() == "":
            break
    if not block or not block[0].startswith(" "):
        return ""
    return "\n".join(block)


if __name__ == "__main__":
    here = Path(__file__).resolve().parent / "machines"
    for p in sorted(here.glob("*.json")) if len(sys.argv) < 2 else map(Path, sys.argv[1:]):
        desc = json.loads(p.read_text())
        print(f"{desc.get('name', p.stem)}::\n")
        table = format_matrix(desc)
        print("\n".join("    " + line for line in table.splitlines()) or "    (empty)")
        print()
