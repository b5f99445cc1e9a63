#!/usr/bin/env python3
"""Write a fake sysfs/procfs tree from a machine description.

A description (``tests/machines/*.json``, format in ``tests/machines/SCHEMA.md``)
is turned into a directory tree that reads like the Linux kernel's ``/sys`` and
``/proc/self`` for that machine.  The root of the tree stands in for ``/``; point
the library at it with ``NUMABIND_FSROOT``.

Public API
----------
``write_tree(desc, root, **options)``  write the tree (options: see its docstring)
``load(name_or_path)``                 load a description by name or path
``validate(desc)``                     raise ValueError for a malformed description
``MACHINES``                           sorted names of the descriptions in tests/machines
``format_cpulist`` / ``format_mask``   the kernel's ``%*pbl`` / ``%*pb`` printers

CLI (used by ctest to make trees for the C tests)::

    python3 tests/sysfs_tree.py DESC.json|NAME OUTDIR [--offline-cpus LIST]
        [--possible-cpus LIST] [--keep-offline-in-node] [--cgroup-cpus LIST]
        [--cgroup-v1-cpus LIST] [--affinity-cpus LIST] [--soft-roce RXE=NETDEV]...
        [--numa-override BDF=N]... [--gpu-uuid BDF=UUID]... [--driver-procfs]
        [--container-gpus BDF,BDF,...] [--mask-only NAME,...] [--pre-5-3-topology]
        [--unknown-package-id] [--no-cpu-online] [--no-proc-status] [--clean]

``--container-gpus ''`` is a container given no GPU.  A bad option exits 2 with
``sysfs_tree: <message>`` on stderr.

Pure standard library; no numabind import.  Everything written is derived from the
description alone, with made-up but plausible values (GUIDs, MAC addresses, cache
sizes, meminfo counters, GPU UUIDs, IRQs) where the description has nothing to say.
Besides ``sys/`` and ``proc/self/``, options add ``proc/driver/nvidia/`` and
``dev/nvidia*`` (device nodes are EMPTY REGULAR FILES standing in for character
devices) and a ``numabind/`` directory of numabind-specific stand-ins.
"""
from __future__ import annotations

import argparse
import hashlib
import json
import os
import re
import shutil
import sys
from pathlib import Path
from typing import Any, Iterable

MACHINES_DIR = Path(__file__).resolve().parent / "machines"
MACHINES: list[str] = sorted(p.stem for p in MACHINES_DIR.glob("*.json"))

KINDS = ("gpu", "nic", "bridge", "other")

# PCI class codes the kernel prints as 0x%06x (base class, subclass, prog-if).
CLASS_GPU = 0x030200          # 3D controller (NVIDIA datacenter GPUs)
CLASS_BRIDGE = 0x060400       # PCI-to-PCI bridge (root ports, switch ports)
CLASS_IB = 0x020700           # Network controller: InfiniBand
CLASS_ETHERNET = 0x020000     # Network controller: Ethernet

# ib_port_state names -> numbers as drivers/infiniband/core/sysfs.c prints them
PORT_STATES = {"DOWN": 1, "INIT": 2, "ARMED": 3, "ACTIVE": 4}
LINK_LAYERS = ("InfiniBand", "Ethernet")

# /proc/self/status prints Mems_allowed over MAX_NUMNODES bits; distribution
# kernels build with CONFIG_NODES_SHIFT=10, i.e. 1024 bits = 32 groups.
MAX_NUMNODES = 1024

# The kernel prints PCI addresses as %04x:%02x:%02x.%d (lower-case hex).
BDF_RE = re.compile(r"^([0-9a-f]{4}):([0-9a-f]{2}):([01][0-9a-f])\.([0-7])$")
# A host bridge directory is named pci<domain>:<bus>.
HOST_BRIDGE_RE = re.compile(r"^pci([0-9a-f]{4}):([0-9a-f]{2})$")

MARKER = ".numabind-fixture"

# ---- NVIDIA driver (open-gpu-kernel-modules, kernel-open/nvidia/nv-procfs.c) ----
# The release the made-up host runs; "GPU Firmware:" in information names the GSP
# firmware, which is the driver's own version (open modules always run GSP).
NV_DRIVER_VERSION = "570.133.20"
# nv_procfs_read_version(): "NVRM version: %s\n" (pNVRM_ID) and "GCC version:  %s\n"
# (NV_COMPILER, the last line of `cc -v`, which ends in a space).
NV_VERSION_TEXT = (
    f"NVRM version: NVIDIA UNIX Open Kernel Module for x86_64  {NV_DRIVER_VERSION}  "
    "Release Build  (dvs-builder@U16-I3-B03-4-3)  Fri Mar 14 03:52:26 UTC 2025\n"
    "GCC version:  gcc version 12.3.0 (Ubuntu 12.3.0-1ubuntu1~22.04) ")
# nv_procfs_read_params(): "%s: %u\n" for each nv_parms[] entry (kernel-open/nvidia/
# nv-reg.h, R570 order and defaults), then the string parameters as "%s: \"%s\"\n".
NV_PARAMS = (
    ("ResmanDebugLevel", 4294967295), ("RmLogonRC", 1), ("ModifyDeviceFiles", 1),
    ("DeviceFileUID", 0), ("DeviceFileGID", 0), ("DeviceFileMode", 438),
    ("InitializeSystemMemoryAllocations", 1), ("UsePageAttributeTable", 4294967295),
    ("EnableMSI", 1), ("EnablePCIeGen3", 0), ("MemoryPoolSize", 0),
    ("KMallocHeapMaxSize", 0), ("VMallocHeapMaxSize", 0), ("IgnoreMMIOCheck", 0),
    ("EnableStreamMemOPs", 0), ("EnableUserNUMAManagement", 1), ("NvLinkDisable", 0),
    ("RmProfilingAdminOnly", 1), ("PreserveVideoMemoryAllocations", 0),
    ("EnableS0ixPowerManagement", 0), ("S0ixPowerManagementVideoMemoryThreshold", 256),
    ("DynamicPowerManagement", 3), ("DynamicPowerManagementVideoMemoryThreshold", 200),
    ("RegisterPCIDriver", 1), ("EnablePCIERelaxedOrderingMode", 0),
    ("EnableResizableBar", 0), ("EnableGpuFirmware", 18), ("EnableGpuFirmwareLogs", 2),
    ("RmNvlinkBandwidthLinkCount", 0), ("EnableDbgBreakpoint", 0),
    ("OpenRmEnableUnsupportedGpus", 1), ("DmaRemapPeerMmio", 1),
    ("ImexChannelCount", 2048), ("CreateImexChannel0", 0), ("GrdmaPciTopoCheckOverride", 0),
)
NV_STRING_PARAMS = ("RegistryDwords", "RegistryDwordsPerDevice", "RmMsg", "GpuBlacklist",
                    "TemporaryFilePath", "ExcludedGpus")
# PCI device id -> (Model as rm_get_device_name() names it, Video BIOS as
# rm_get_vbios_version() prints it ("%02x.%02x.%02x.%02x.%02x"), DMA address bits).
NV_GPU_MODELS = {
    0x2330: ("NVIDIA H100 80GB HBM3", "96.00.99.00.01", 52),
    0x2335: ("NVIDIA H200", "96.00.af.00.01", 52),
}
# rm_get_device_name() answers "Unknown" for an id it does not list.
NV_UNKNOWN_MODEL = ("Unknown", "??.??.??.??.??", 47)
NV_README_WARNINGS = (
    "The NVIDIA graphics driver tries to detect potential problems\n"
    "with the host system and warns about them using the system's\n"
    "logging mechanisms. Important warning message are also logged\n"
    "to dedicated text files in this directory.")
NV_README_PATCHES = (
    "The NVIDIA graphics driver's kernel interface files can be\n"
    "patched to improve compatibility with new Linux kernels or to\n"
    "fix bugs in these files. When applied, each official patch\n"
    "provides a short text file with a short description of itself\n"
    "in this directory.")
# Driver device nodes a host has and nvc bind-mounts into every container
# (nvc_info.c lookup_devices(); nvidia-modeset only with the display capability).
NV_CTL_NODES = ("nvidiactl", "nvidia-uvm", "nvidia-uvm-tools")

# cgroup v1 hierarchies of a systemd "hybrid" host (Ubuntu 18.04/20.04, RHEL 8), as
# /proc/self/cgroup lists them: hierarchy id, controllers; newest hierarchy first
# (kernel/cgroup/cgroup.c proc_cgroup_show() walks cgroup_roots), the v2 unified
# hierarchy last as "0::".  The mount point under /sys/fs/cgroup is the
# controller list as systemd names it; the superblock options are what
# cgroup1_show_options() prints.
CGROUP_V1_HIERARCHIES = (
    (12, "rdma", "rw,rdma"), (11, "freezer", "rw,freezer"),
    (10, "net_cls,net_prio", "rw,net_cls,net_prio"), (9, "cpu,cpuacct", "rw,cpu,cpuacct"),
    (8, "cpuset", "rw,cpuset"), (7, "blkio", "rw,blkio"), (6, "devices", "rw,devices"),
    (5, "pids", "rw,pids"), (4, "memory", "rw,memory"), (3, "perf_event", "rw,perf_event"),
    (2, "hugetlb", "rw,hugetlb"), (1, "name=systemd", "rw,xattr,name=systemd"),
)


# --------------------------------------------------------------------------
# cpulist / cpumask formatting (the kernel's %*pbl and %*pb)
# --------------------------------------------------------------------------

def parse_cpulist(text: str, what: str = "cpulist") -> list[int]:
    """Parse ``0-3,8,10-11`` (empty string: empty list).  ValueError on garbage."""
    out: set[int] = set()
    text = text.strip()
    if not text:
        return []
    for part in text.split(","):
        m = re.fullmatch(r"\s*(\d+)\s*(?:-\s*(\d+)\s*)?", part)
        if not m:
            raise ValueError(f"bad {what} {text!r}")
        lo = int(m.group(1))
        hi = int(m.group(2)) if m.group(2) is not None else lo
        if hi < lo:
            raise ValueError(f"bad {what} {text!r}: range {lo}-{hi}")
        out.update(range(lo, hi + 1))
    return sorted(out)


def format_cpulist(ids: Iterable[int]) -> str:
    """The kernel's ``%*pbl``: ascending runs, ``a-b`` for runs of two or more.

    An empty set prints as the empty string (the file then holds just ``\\n``).
    """
    ids = sorted(set(ids))
    parts: list[str] = []
    i = 0
    while i < len(ids):
        j = i
        while j + 1 < len(ids) and ids[j + 1] == ids[j] + 1:
            j += 1
        parts.append(str(ids[i]) if i == j else f"{ids[i]}-{ids[j]}")
        i = j + 1
    return ",".join(parts)


def format_mask(ids: Iterable[int], nbits: int) -> str:
    """The kernel's ``%*pb`` (lib/vsprintf.c bitmap_string) over ``nbits`` bits.

    Groups of 32 bits, most significant first, separated by commas; every group
    is 8 hex digits except the most significant one, which is only as wide as
    its share of ``nbits`` needs (``DIV_ROUND_UP(nbits % 32, 4)`` digits).  So a
    2-CPU box prints ``3``, 64 CPUs ``ffffffff,ffffffff``, 224 CPUs seven
    8-digit groups.  For cpumasks ``nbits`` is nr_cpu_ids (last possible CPU + 1).
    """
    if nbits <= 0:
        raise ValueError("mask width must be positive")
    value = 0
    for i in ids:
        if i >= nbits:
            raise ValueError(f"bit {i} outside a {nbits}-bit mask")
        value |= 1 << i
    groups: list[str] = []
    top = nbits % 32 or 32
    ngroups = (nbits + 31) // 32
    for g in range(ngroups - 1, -1, -1):
        chunk = (value >> (32 * g)) & 0xFFFFFFFF
        width = (top + 3) // 4 if g == ngroups - 1 else 8
        groups.append(f"{chunk:0{width}x}")
    return ",".join(groups)


# --------------------------------------------------------------------------
# loading and validation
# --------------------------------------------------------------------------

def load(name_or_path: str | os.PathLike) -> dict:
    """Load a description by name (``"dgx-h100"``) or by path to a JSON file."""
    p = Path(name_or_path)
    if not p.suffix and not p.exists():
        p = MACHINES_DIR / f"{name_or_path}.json"
    with open(p, encoding="utf-8") as f:
        return json.load(f)


def _walk(devices: list[dict], parents: tuple = ()) -> Iterable[tuple[dict, tuple]]:
    """Yield (device, ancestors-tuple) depth first, in description order."""
    for d in devices:
        yield d, parents
        yield from _walk(d.get("children", []) or [], parents + (d,))


def _hex_id(value: Any, what: str, bits: int) -> int:
    """Parse a ``0x...`` id (vendor, device, class) and range-check it."""
    try:
        n = int(value, 16) if isinstance(value, str) else int(value)
    except (TypeError, ValueError):
        raise ValueError(f"bad {what} {value!r}") from None
    if not 0 <= n < (1 << bits):
        raise ValueError(f"bad {what} {value!r}")
    return n


def validate(desc: dict) -> None:
    """Raise ValueError, naming the bad value, when ``desc`` is malformed."""
    if not isinstance(desc, dict):
        raise ValueError("description is not a JSON object")
    cpu = desc.get("cpu")
    if not isinstance(cpu, dict) or not cpu.get("nodes"):
        raise ValueError("description has no cpu.nodes")
    tpc = int(cpu.get("threads_per_core", 1))
    if tpc < 1:
        raise ValueError(f"bad threads_per_core {tpc!r}")
    if tpc > 1 and int(cpu.get("smt_stride", 0)) <= 0:
        raise ValueError(f"threads_per_core {tpc} needs a positive smt_stride")
    seen_ids: set[int] = set()
    seen_cpus: dict[int, int] = {}
    sockets = int(cpu.get("sockets", 1))
    for n in cpu["nodes"]:
        nid = n.get("id")
        if not isinstance(nid, int) or nid < 0 or nid >= MAX_NUMNODES:
            raise ValueError(f"bad node id {nid!r}")
        if nid in seen_ids:
            raise ValueError(f"duplicate node id {nid}")
        seen_ids.add(nid)
        cpus = parse_cpulist(n.get("cpus", ""), f"cpus of node {nid}")
        for c in cpus:
            if c in seen_cpus:
                raise ValueError(f"cpu {c} in node {seen_cpus[c]} and node {nid}")
            seen_cpus[c] = nid
        if cpus:
            s = n.get("socket", 0 if sockets == 1 else None)
            if not isinstance(s, int) or not 0 <= s < sockets:
                raise ValueError(f"bad socket {s!r} of node {nid}")
        if int(n.get("mem_mib", 0)) < 0:
            raise ValueError(f"bad mem_mib {n.get('mem_mib')!r} of node {nid}")
    if not seen_cpus:
        raise ValueError("description has no CPUs")
    dist = cpu.get("distances")
    if dist is not None:
        k = len(cpu["nodes"])
        if len(dist) != k or any(len(row) != k for row in dist):
            raise ValueError(f"distances is not a {k}x{k} matrix: {dist!r}")
    if cpu.get("l3") is not None:
        owner: dict[int, str] = {}
        for dom in cpu["l3"]:
            for c in parse_cpulist(dom, "l3 domain"):
                if c not in seen_cpus or c in owner:
                    raise ValueError(f"l3 domain {dom!r}: cpu {c} unknown or in two domains")
                owner[c] = dom
        if set(owner) != set(seen_cpus):
            missing = format_cpulist(set(seen_cpus) - set(owner))
            raise ValueError(f"l3 domains do not cover cpus {missing}")

    allowed = desc.get("allowed") or {}
    for c in parse_cpulist(allowed.get("cpus", ""), "allowed.cpus"):
        if c not in seen_cpus:
            raise ValueError(f"allowed.cpus {allowed['cpus']!r}: cpu {c} is not present")
    for m in parse_cpulist(allowed.get("mems", ""), "allowed.mems"):
        if m not in seen_ids:
            raise ValueError(f"allowed.mems {allowed['mems']!r}: node {m} does not exist")

    bdfs: set[str] = set()
    names: set[str] = set()
    roots: set[str] = set()
    for r in desc.get("pci", []) or []:
        root = r.get("root", "")
        parts = root.split("/")
        if not root or root.startswith("/") or any(p in ("", ".", "..") for p in parts):
            raise ValueError(f"bad pci root {root!r}")
        hb = HOST_BRIDGE_RE.match(parts[-1])
        if not hb:
            raise ValueError(f"bad pci root {root!r}: last part must be pciDDDD:BB")
        if root in roots:
            raise ValueError(f"duplicate pci root {root!r}")
        roots.add(root)
        numa = r.get("numa", -1)
        if not isinstance(numa, int) or (numa != -1 and numa not in seen_ids):
            raise ValueError(f"bad numa {numa!r} of pci root {root!r}")
        for d, parents in _walk(r.get("devices", []) or []):
            bdf = d.get("bdf")
            m = BDF_RE.match(bdf) if isinstance(bdf, str) else None
            if not m:
                raise ValueError(f"bad bdf {bdf!r} (want dddd:bb:dd.f, lower-case hex)")
            if bdf in bdfs:
                raise ValueError(f"duplicate bdf {bdf}")
            bdfs.add(bdf)
            if m.group(1) != hb.group(1):
                raise ValueError(f"bdf {bdf} is not in the domain of pci root {root!r}")
            kind = d.get("kind")
            if kind not in KINDS:
                raise ValueError(f"unknown kind {kind!r} of {bdf}")
            if d.get("children") and kind != "bridge":
                raise ValueError(f"{bdf} has children but is a {kind}, not a bridge")
            for key, bits in (("vendor", 16), ("device", 16), ("class", 24),
                              ("subsystem_vendor", 16), ("subsystem_device", 16),
                              ("revision", 8)):
                if key in d:
                    _hex_id(d[key], f"{key} of {bdf}", bits)
            if kind == "other" and "class" not in d:
                raise ValueError(f"{bdf} of kind 'other' needs a class")
            for key in ("ibdev", "netdev"):
                if key in d:
                    nm = d[key]
                    if not isinstance(nm, str) or not re.fullmatch(r"[A-Za-z0-9_.:-]{1,15}", nm):
                        raise ValueError(f"bad {key} {nm!r} of {bdf}")
                    if nm in names:
                        raise ValueError(f"duplicate device name {nm!r}")
                    names.add(nm)
            if "ibdev" in d:
                if kind != "nic":
                    raise ValueError(f"{bdf} has an ibdev but is a {kind}")
                if d.get("link_layer") not in LINK_LAYERS:
                    raise ValueError(f"bad link_layer {d.get('link_layer')!r} of {bdf}")
                if d.get("state", "ACTIVE") not in PORT_STATES:
                    raise ValueError(f"bad state {d.get('state')!r} of {bdf}")
                ports = d.get("ports", 1)
                if not isinstance(ports, int) or ports < 1:
                    raise ValueError(f"bad ports {ports!r} of {bdf}")
                if not re.match(r"^\s*\d+(\.\d+)?\s*Gb/sec", d.get("rate", "")):
                    raise ValueError(f"bad rate {d.get('rate')!r} of {bdf}")


# --------------------------------------------------------------------------
# the machine model the writer works from
# --------------------------------------------------------------------------

class _Machine:
    """Everything derived from a (validated) description that files are written from."""

    def __init__(self, desc: dict, offline: set[int], possible: list[int] | None,
                 keep_offline_in_node: bool, numa_override: dict[str, int]):
        cpu = desc["cpu"]
        self.desc = desc
        self.nodes = sorted(cpu["nodes"], key=lambda n: n["id"])
        self.node_pos = {n["id"]: i for i, n in enumerate(cpu["nodes"])}  # desc order
        self.node_cpus = {n["id"]: parse_cpulist(n.get("cpus", "")) for n in self.nodes}
        self.node_of = {c: nid for nid, cs in self.node_cpus.items() for c in cs}
        self.present = sorted(self.node_of)
        if offline - set(self.present):
            raise ValueError(f"offline_cpus {format_cpulist(offline)!r}: not all present")
        self.online = [c for c in self.present if c not in offline]
        if not self.online:
            raise ValueError("offline_cpus leaves no CPU online")
        self.offline = offline
        if possible is None:
            possible = self.present
        elif not set(self.present) <= set(possible):
            raise ValueError(f"possible_cpus {format_cpulist(possible)!r} lacks present CPUs")
        self.possible = sorted(possible)
        # nr_cpu_ids: the width of every cpumask the kernel prints.
        self.nr_cpu_ids = self.possible[-1] + 1
        on = set(self.online)
        # cpumask_of_node(): x86, arm64 and riscv take an offlined CPU out of its
        # node's mask (remove_cpu_from_maps()/__cpu_disable() -> numa_remove_cpu),
        # so nodeN/cpulist and a device's local_cpulist show online CPUs only.
        self.node_mask = {nid: (cs if keep_offline_in_node else [c for c in cs if c in on])
                          for nid, cs in self.node_cpus.items()}

        sockets_of_node = {n["id"]: n.get("socket", 0) for n in self.nodes if self.node_cpus[n["id"]]}
        self.package_of = {c: sockets_of_node[self.node_of[c]] for c in self.present}
        tpc = int(cpu.get("threads_per_core", 1))
        stride = int(cpu.get("smt_stride", 0))
        pkg_first = {}
        for c in self.present:
            pkg_first.setdefault(self.package_of[c], c)
        self.threads: dict[int, list[int]] = {}   # cpu -> all present SMT siblings (self included)
        self.core_id: dict[int, int] = {}
        for c in self.present:
            first = c % stride if tpc > 1 else c
            sib = [first + k * stride for k in range(tpc)] if tpc > 1 else [c]
            sib = [s for s in sib if s in self.node_of and self.package_of[s] == self.package_of[c]]
            self.threads[c] = sib
            # core_id: the physical core's number inside its package.  The kernel
            # takes it from the APIC id (so real values may have gaps); here it is
            # the first sibling's cpu id minus the package's first cpu id, which is
            # shared by siblings and distinct for distinct cores of one package.
            self.core_id[c] = sib[0] - pkg_first[self.package_of[c]]
        self.package_cpus = {}
        for c in self.present:
            self.package_cpus.setdefault(self.package_of[c], []).append(c)
        if cpu.get("l3"):
            doms = [parse_cpulist(d) for d in cpu["l3"]]
        else:
            doms = [self.package_cpus[p] for p in sorted(self.package_cpus)]
        doms.sort(key=lambda d: d[0])
        self.l3_of = {c: i for i, d in enumerate(doms) for c in d}
        self.l3_cpus = doms

        # PCI functions: bdf -> dict(dev, path, numa, root)
        self.functions: dict[str, dict] = {}
        self.roots: list[str] = []
        for r in desc.get("pci", []) or []:
            root_path = f"sys/devices/{r['root']}"
            self.roots.append(root_path)
            self._add_functions(r["devices"] or [], root_path, r, (r.get("numa", -1)))
        for bdf, numa in (numa_override or {}).items():
            if bdf not in self.functions:
                raise ValueError(f"numa_override: no PCI function {bdf!r}")
            # A node that does not exist is allowed: firmware names such nodes
            # (a _PXM no SRAT entry maps), and the kernel prints what it got.
            if not isinstance(numa, int) or isinstance(numa, bool) or not -1 <= numa < MAX_NUMNODES:
                raise ValueError(f"numa_override: bad node {numa!r} for {bdf}")
            self.functions[bdf]["numa"] = numa

    def _add_functions(self, devices: list[dict], parent_path: str, root: dict, numa: int):
        for d in devices:
            path = f"{parent_path}/{d['bdf']}"
            self.functions[d["bdf"]] = {"dev": d, "path": path, "numa": numa, "root": root}
            self._add_functions(d.get("children", []) or [], path, root, numa)

    def local_cpus(self, numa: int) -> list[int]:
        """cpumask a PCI function's local_cpus shows: its node's, all online if
        -1, none for a node that does not exist (cpumask_of_node's empty map)."""
        return list(self.online) if numa == -1 else self.node_mask.get(numa, [])


# --------------------------------------------------------------------------
# small file helpers
# --------------------------------------------------------------------------

def _write(root: Path, rel: str, text: str) -> None:
    """Write ``text`` plus the newline every sysfs/procfs show function ends with."""
    p = root / rel
    p.parent.mkdir(parents=True, exist_ok=True)
    p.write_text(text + "\n", encoding="utf-8")


def _symlink(root: Path, link_rel: str, target_rel: str) -> None:
    """Make ``link_rel`` a RELATIVE symlink to ``target_rel`` (both relative to root),
    the way kernfs writes links (``../../../devices/pci0000:00/0000:00:03.0``)."""
    link = root / link_rel
    link.parent.mkdir(parents=True, exist_ok=True)
    rel = _kernfs_relpath(link_rel, target_rel)
    if link.is_symlink() or link.exists():
        link.unlink()
    os.symlink(rel, link)


def _kernfs_relpath(link_rel: str, target_rel: str) -> str:
    """The relative path kernfs_get_target_path() gives a link: climb from the
    link's directory to the nearest PROPER ancestor of the target, then descend.
    So a link to an ancestor reads ``../../../0000:18:00.0`` (as the kernel's
    ``infiniband/mlx5_0/device`` does), never ``../..``."""
    here = os.path.dirname(link_rel).split("/")
    there = target_rel.split("/")
    k = 0
    while k < min(len(here), len(there) - 1) and here[k] == there[k]:
        k += 1
    return "../" * (len(here) - k) + "/".join(there[k:])


def _digest(*parts: str, n: int = 8) -> bytes:
    """Deterministic made-up bytes (GUIDs, MACs) from names."""
    return hashlib.sha256("/".join(parts).encode()).digest()[:n]


def _guid(key: str) -> str:
    # Mellanox OUI b8:3f:d2 as in real node_guids, then 5 made-up bytes.
    b = bytes.fromhex("b83fd2") + _digest("guid", key, n=5)
    return ":".join(b[i:i + 2].hex() for i in range(0, 8, 2))


def _mac(key: str, vendor: str) -> str:
    oui = {"0x15b3": "b83fd2", "0x1af4": "02fc00"}.get(vendor, "0200aa")
    b = bytes.fromhex(oui) + _digest("mac", key, n=3)
    return ":".join(f"{x:02x}" for x in b)


# --------------------------------------------------------------------------
# writers
# --------------------------------------------------------------------------

def _write_nodes(root: Path, m: _Machine) -> None:
    base = "sys/devices/system/node"
    ids = [n["id"] for n in m.nodes]
    _write(root, f"{base}/online", format_cpulist(ids))
    _write(root, f"{base}/possible", format_cpulist(ids))
    # N_CPU: nodes with an online CPU; N_MEMORY: nodes with memory.
    on = set(m.online)
    _write(root, f"{base}/has_cpu", format_cpulist(i for i in ids if on & set(m.node_cpus[i])))
    with_mem = [n["id"] for n in m.nodes if int(n.get("mem_mib", 0)) > 0]
    _write(root, f"{base}/has_memory", format_cpulist(with_mem))
    _write(root, f"{base}/has_normal_memory", format_cpulist(with_mem))
    _write(root, f"{base}/has_generic_initiator", "")
    dist = m.desc["cpu"].get("distances")
    for n in m.nodes:
        nid = n["id"]
        d = f"{base}/node{nid}"
        _write(root, f"{d}/cpulist", format_cpulist(m.node_mask[nid]))
        _write(root, f"{d}/cpumap", format_mask(m.node_mask[nid], m.nr_cpu_ids))
        # One column per online node, in node-id order (node_read_distance()).
        row = []
        for other in ids:
            if dist is not None:
                row.append(dist[m.node_pos[nid]][m.node_pos[other]])
            else:
                row.append(10 if other == nid else 21)
        _write(root, f"{d}/distance", " ".join(str(x) for x in row))
        _write(root, f"{d}/meminfo", _meminfo(nid, int(n.get("mem_mib", 0))))
        for c in m.node_cpus[nid]:
            # register_cpu_under_node(): links stay while a CPU is merely offline.
            _symlink(root, f"{d}/cpu{c}", f"sys/devices/system/cpu/cpu{c}")
            _symlink(root, f"sys/devices/system/cpu/cpu{c}/node{nid}", d)


def _meminfo(nid: int, mem_mib: int) -> str:
    """drivers/base/node.c node_read_meminfo(): ``Node %d <Label>:<pad>%8lu kB``,
    label and colon left-justified in 16 columns; HugePages_* use ``%5u`` counts."""
    total = mem_mib * 1024
    free = total * 93 // 100
    used = total - free
    frac = lambda pct: used * pct // 100  # noqa: E731  (plausible split of used memory)
    fields = [
        ("MemTotal", total), ("MemFree", free), ("MemUsed", used),
        ("SwapCached", 0), ("Active", frac(30)), ("Inactive", frac(40)),
        ("Active(anon)", frac(10)), ("Inactive(anon)", frac(5)),
        ("Active(file)", frac(20)), ("Inactive(file)", frac(35)),
        ("Unevictable", 0), ("Mlocked", 0), ("Dirty", 0), ("Writeback", 0),
        ("FilePages", frac(55)), ("Mapped", frac(5)), ("AnonPages", frac(15)),
        ("Shmem", frac(1)), ("KernelStack", frac(1)), ("PageTables", frac(1)),
        ("SecPageTables", 0), ("NFS_Unstable", 0), ("Bounce", 0), ("WritebackTmp", 0),
        ("KReclaimable", frac(10)), ("Slab", frac(15)), ("SReclaimable", frac(10)),
        ("SUnreclaim", frac(5)), ("AnonHugePages", 0), ("ShmemHugePages", 0),
        ("ShmemPmdMapped", 0), ("FileHugePages", 0), ("FilePmdMapped", 0),
    ]
    lines = [f"Node {nid} {label + ':':<16}{value:>8} kB" for label, value in fields]
    lines += [f"Node {nid} {label + ':':<16} {0:>5}"
              for label in ("HugePages_Total", "HugePages_Free", "HugePages_Surp")]
    return "\n".join(lines)


# Attributes whose ``_list`` twin ``mask_only`` can leave out: cache/index*/shared_cpu_*
# and the cpuN/topology masks.
MASK_ONLY_NAMES = ("shared_cpu", "thread_siblings", "core_siblings", "core_cpus", "package_cpus", "die_cpus")
# cpuN/topology files that arrived with Linux 5.3 (the multi-die series, commits
# b73ed8dc0597 and 2e4c54dac7b3); pre_5_3_topology leaves them out.
TOPOLOGY_5_3 = ("die_id", "core_cpus", "core_cpus_list", "package_cpus", "package_cpus_list",
                "die_cpus", "die_cpus_list")


def _write_cpus(root: Path, m: _Machine, *, mask_only: tuple[str, ...] = (), pre_5_3_topology: bool = False,
                unknown_package_id: bool = False, no_cpu_online: bool = False) -> None:
    base = "sys/devices/system/cpu"
    if not no_cpu_online:
        _write(root, f"{base}/online", format_cpulist(m.online))
    _write(root, f"{base}/offline", format_cpulist(set(m.possible) - set(m.online)))
    _write(root, f"{base}/possible", format_cpulist(m.possible))
    _write(root, f"{base}/present", format_cpulist(m.present))
    _write(root, f"{base}/kernel_max", str(max(8191, m.nr_cpu_ids - 1)))
    on = set(m.online)
    nb = m.nr_cpu_ids
    for c in m.present:
        d = f"{base}/cpu{c}"
        (root / d).mkdir(parents=True, exist_ok=True)
        if c != 0 or c in m.offline:
            # x86 has no cpu0/online unless cpu0 hotplug is enabled.
            _write(root, f"{d}/online", "1" if c in on else "0")
        if c not in on:
            # An offline CPU loses its topology/ and cache/ directories
            # (CPUHP_TOPOLOGY_PREPARE teardown, cacheinfo cpu_cache_sysfs_exit).
            continue
        # Online masks only: remove_siblinginfo() / cache_shared_cpu_map_remove()
        # drop an offlined CPU from its siblings' masks.
        threads = [t for t in m.threads[c] if t in on]
        package = [t for t in m.package_cpus[m.package_of[c]] if t in on]
        l3 = [t for t in m.l3_cpus[m.l3_of[c]] if t in on]
        t = f"{d}/topology"
        _write(root, f"{t}/physical_package_id", "-1" if unknown_package_id else str(m.package_of[c]))
        _write(root, f"{t}/die_id", "0")
        _write(root, f"{t}/core_id", str(m.core_id[c]))
        for name, cpus in (("thread_siblings", threads), ("core_cpus", threads),
                           ("core_siblings", package), ("package_cpus", package),
                           ("die_cpus", package)):
            _write(root, f"{t}/{name}", format_mask(cpus, nb))
            if name not in mask_only:
                _write(root, f"{t}/{name}_list", format_cpulist(cpus))
        if pre_5_3_topology:
            for name in TOPOLOGY_5_3:
                (root / t / name).unlink(missing_ok=True)
        # Cache leaves as an Intel CPU enumerates them.  index0 is L1d, not L3:
        # a reader must match on `level`, not on the index number.
        caches = [
            (1, "Data", "48K", threads, m.core_id[c]),
            (1, "Instruction", "32K", threads, m.core_id[c]),
            (2, "Unified", "2048K", threads, m.core_id[c]),
            (3, "Unified", "107520K", l3, m.l3_of[c]),
        ]
        for i, (level, typ, size, shared, cid) in enumerate(caches):
            x = f"{d}/cache/index{i}"
            _write(root, f"{x}/level", str(level))
            _write(root, f"{x}/type", typ)
            _write(root, f"{x}/size", size)
            _write(root, f"{x}/id", str(cid))
            _write(root, f"{x}/coherency_line_size", "64")
            if "shared_cpu" not in mask_only:
                _write(root, f"{x}/shared_cpu_list", format_cpulist(shared))
            _write(root, f"{x}/shared_cpu_map", format_mask(shared, nb))


def _default_class(dev: dict) -> int:
    kind = dev["kind"]
    if "class" in dev:
        return _hex_id(dev["class"], "class", 24)
    if kind == "gpu":
        return CLASS_GPU
    if kind == "bridge":
        return CLASS_BRIDGE
    if kind == "nic":
        return CLASS_IB if dev.get("link_layer") == "InfiniBand" else CLASS_ETHERNET
    raise ValueError(f"{dev['bdf']}: no class")  # validate() already refuses this


# Driver a function is bound to (the `driver` link); purely for realism.
def _driver(dev: dict) -> str | None:
    if "driver" in dev:
        return dev["driver"]
    vendor = dev.get("vendor", "").lower()
    if dev["kind"] == "bridge":
        return "pcieport"
    if dev["kind"] == "gpu" and vendor == "0x10de":
        return "nvidia"
    if vendor == "0x15b3":
        return "mlx5_core"
    if vendor == "0x1af4":
        return "virtio-pci"
    return None


def _bus_of(bdf: str) -> int:
    return int(bdf[5:7], 16)


def _write_pci(root: Path, m: _Machine) -> None:
    for rpath in m.roots:
        # The host bridge directory has no PCI attribute files, only the bus.
        hb = HOST_BRIDGE_RE.match(rpath.rsplit("/", 1)[1])
        (root / rpath / "pci_bus" / f"{hb.group(1)}:{hb.group(2)}").mkdir(parents=True, exist_ok=True)
    for bdf, f in m.functions.items():
        dev, path, numa = f["dev"], f["path"], f["numa"]
        vendor = _hex_id(dev.get("vendor", "0xffff"), "vendor", 16)
        device = _hex_id(dev.get("device", "0xffff"), "device", 16)
        local = m.local_cpus(numa)
        attrs = {
            "vendor": f"0x{vendor:04x}",
            "device": f"0x{device:04x}",
            "class": f"0x{_default_class(dev):06x}",
            "subsystem_vendor": f"0x{_hex_id(dev.get('subsystem_vendor', vendor), 'sv', 16):04x}",
            "subsystem_device": f"0x{_hex_id(dev.get('subsystem_device', device), 'sd', 16):04x}",
            "revision": f"0x{_hex_id(dev.get('revision', '0x00'), 'revision', 8):02x}",
            "numa_node": str(numa),
            "local_cpus": format_mask(local, m.nr_cpu_ids),
            "local_cpulist": format_cpulist(local),
            # Since v5.10 the speed reads "<n>.<d> GT/s PCIe".
            "max_link_speed": dev.get("max_link_speed", "32.0 GT/s PCIe"),
            "max_link_width": str(dev.get("max_link_width", 16)),
            "current_link_speed": dev.get("current_link_speed", dev.get("max_link_speed", "32.0 GT/s PCIe")),
            "current_link_width": str(dev.get("current_link_width", dev.get("max_link_width", 16))),
            "enable": "1",
        }
        if dev["kind"] == "bridge":
            kids = [c["bdf"] for c, _ in _walk(dev.get("children", []) or [])]
            sec = min((_bus_of(b) for b in kids), default=_bus_of(bdf) + 1)
            sub = max((_bus_of(b) for b in kids), default=sec)
            attrs["secondary_bus_number"] = str(sec)
            attrs["subordinate_bus_number"] = str(sub)
            (root / path / "pci_bus" / f"{bdf[:4]}:{sec:02x}").mkdir(parents=True, exist_ok=True)
        drv = _driver(dev)
        if m.uevent:
            # As the driver core and pci_uevent() print it (every kernel since 2.6.x).
            cls = _default_class(dev)
            sv, sd = int(attrs["subsystem_vendor"], 16), int(attrs["subsystem_device"], 16)
            attrs["uevent"] = "".join([
                f"DRIVER={drv}\n" if drv else "",
                f"PCI_CLASS={cls:04X}\n",
                f"PCI_ID={vendor:04X}:{device:04X}\n",
                f"PCI_SUBSYS_ID={sv:04X}:{sd:04X}\n",
                f"PCI_SLOT_NAME={bdf}\n",
                f"MODALIAS=pci:v{vendor:08X}d{device:08X}sv{sv:08X}sd{sd:08X}"
                f"bc{cls >> 16:02X}sc{(cls >> 8) & 0xff:02X}i{cls & 0xff:02X}"])
        for name, value in attrs.items():
            _write(root, f"{path}/{name}", value)
        if drv:
            (root / "sys/bus/pci/drivers" / drv).mkdir(parents=True, exist_ok=True)
            _symlink(root, f"{path}/driver", f"sys/bus/pci/drivers/{drv}")
        _symlink(root, f"sys/bus/pci/devices/{bdf}", path)


def _write_port(root: Path, pdir: str, *, state: str, link_layer: str, rate: str,
                guid: str, lid: int, netdev: str | None) -> None:
    st = PORT_STATES[state]
    _write(root, f"{pdir}/state", f"{st}: {state}")
    _write(root, f"{pdir}/phys_state", "5: LinkUp" if state == "ACTIVE" else "3: Disabled")
    _write(root, f"{pdir}/link_layer", link_layer)
    _write(root, f"{pdir}/rate", rate)
    _write(root, f"{pdir}/lid", f"0x{lid:x}")
    _write(root, f"{pdir}/sm_lid", "0x1" if link_layer == "InfiniBand" else "0x0")
    _write(root, f"{pdir}/lid_mask_count", "0")
    _write(root, f"{pdir}/gids/0", "fe80:0000:0000:0000:" + guid)
    if link_layer == "Ethernet":
        # RoCE GID table: index 0 RoCE v1, index 1 RoCE v2, both on the netdev.
        _write(root, f"{pdir}/gids/1", "fe80:0000:0000:0000:" + guid)
        _write(root, f"{pdir}/gid_attrs/types/0", "IB/RoCE v1")
        _write(root, f"{pdir}/gid_attrs/types/1", "RoCE v2")
        if netdev:
            _write(root, f"{pdir}/gid_attrs/ndevs/0", netdev)
            _write(root, f"{pdir}/gid_attrs/ndevs/1", netdev)
    else:
        # On an IB port the kernel's gid_attrs/ndevs/N read fails (EINVAL); leave it out.
        _write(root, f"{pdir}/gid_attrs/types/0", "IB/RoCE v1")


def _write_rdma(root: Path, m: _Machine) -> None:
    lid = 1
    for bdf, f in m.functions.items():
        dev = f["dev"]
        if not dev.get("ibdev"):
            continue
        ib = dev["ibdev"]
        d = f"{f['path']}/infiniband/{ib}"
        guid = _guid(bdf)
        _symlink(root, f"{d}/device", f["path"])          # -> ../../../<bdf>
        _write(root, f"{d}/node_type", "1: CA")
        _write(root, f"{d}/node_guid", guid)
        _write(root, f"{d}/sys_image_guid", guid)
        _write(root, f"{d}/fw_ver", "28.39.1002")
        # mlx5 prints hca_type as "MT%d" of the PCI device id.
        _write(root, f"{d}/hca_type", f"MT{_hex_id(dev.get('device', '0'), 'device', 16)}")
        _write(root, f"{d}/node_desc", f"fixture {ib}")
        for p in range(1, int(dev.get("ports", 1)) + 1):
            ll = dev["link_layer"]
            _write_port(root, f"{d}/ports/{p}", state=dev.get("state", "ACTIVE"),
                        link_layer=ll, rate=dev["rate"], guid=guid,
                        lid=lid if ll == "InfiniBand" else 0, netdev=dev.get("netdev"))
            lid += 1
        _symlink(root, f"sys/class/infiniband/{ib}", d)


def _write_net(root: Path, m: _Machine) -> dict[str, dict]:
    """Write netdevs; return name -> info (for soft_roce)."""
    nets: dict[str, dict] = {}
    # The loopback device is always there, with no `device` link.
    lo = "sys/devices/virtual/net/lo"
    for name, value in (("address", "00:00:00:00:00:00"), ("operstate", "unknown"),
                        ("type", "772"), ("ifindex", "1"), ("mtu", "65536"),
                        ("addr_len", "6"), ("carrier", "1")):
        _write(root, f"{lo}/{name}", value)
    _symlink(root, "sys/class/net/lo", lo)
    nets["lo"] = {"mac": "00:00:00:00:00:00"}
    ifindex = 2
    for bdf, f in m.functions.items():
        dev = f["dev"]
        name = dev.get("netdev")
        if not name:
            continue
        d = f"{f['path']}/net/{name}"
        ib = dev.get("link_layer") == "InfiniBand"
        if ib:
            # IPoIB hardware address: 4 bytes QPN/flags + 16-byte port GID.
            gid = "fe80000000000000" + _guid(bdf).replace(":", "")
            raw = bytes.fromhex("00001049" + gid)
            addr = ":".join(f"{x:02x}" for x in raw)
        else:
            addr = _mac(bdf, dev.get("vendor", ""))
        # A link whose RDMA port is DOWN has no carrier: operstate "down".
        up = dev.get("state", "ACTIVE") != "DOWN"
        _symlink(root, f"{d}/device", f["path"])            # -> ../../../<bdf>
        for key, value in (("address", addr), ("addr_len", "20" if ib else "6"),
                           ("operstate", "up" if up else "down"),
                           ("carrier", "1" if up else "0"),
                           ("type", "32" if ib else "1"),       # ARPHRD_INFINIBAND / ARPHRD_ETHER
                           ("ifindex", str(ifindex)), ("mtu", "4092" if ib else "1500"),
                           ("dev_id", "0x0"), ("dev_port", "0")):
            _write(root, f"{d}/{key}", value)
        _symlink(root, f"sys/class/net/{name}", d)
        nets[name] = {"mac": addr if not ib else None}
        ifindex += 1
    return nets


def _write_soft_roce(root: Path, m: _Machine, soft_roce: dict[str, str], nets: dict) -> None:
    taken = {f["dev"].get("ibdev") for f in m.functions.values()}
    for rxe, netdev in soft_roce.items():
        if not re.fullmatch(r"[A-Za-z0-9_.-]{1,63}", rxe) or rxe in taken:
            raise ValueError(f"soft_roce: bad or duplicate device name {rxe!r}")
        if netdev not in nets:
            raise ValueError(f"soft_roce: {rxe} names netdev {netdev!r}, which the tree lacks")
        taken.add(rxe)
        # Since v5.12 an rxe device is a virtual ib device: no `device` link,
        # and a `parent` attribute naming the netdev it runs over.
        d = f"sys/devices/virtual/infiniband/{rxe}"
        guid = _guid("rxe/" + rxe)
        _write(root, f"{d}/parent", netdev)
        _write(root, f"{d}/node_type", "1: CA")
        _write(root, f"{d}/node_guid", guid)
        _write(root, f"{d}/sys_image_guid", guid)
        _write(root, f"{d}/fw_ver", "0.0.0")
        _write(root, f"{d}/node_desc", f"rxe {rxe}")
        _write_port(root, f"{d}/ports/1", state="ACTIVE", link_layer="Ethernet",
                    rate="10 Gb/sec (1X QDR)", guid=guid, lid=0, netdev=netdev)
        _symlink(root, f"sys/class/infiniband/{rxe}", d)


def _write_proc(root: Path, m: _Machine, affinity: list[int] | None = None) -> None:
    allowed = m.desc.get("allowed") or {}
    cpus = parse_cpulist(allowed.get("cpus", format_cpulist(m.online)))
    if affinity is not None:
        cpus = affinity
    mems = parse_cpulist(allowed.get("mems", format_cpulist(n["id"] for n in m.nodes)))
    pid = 4242
    # fs/proc/array.c: "Key:\tvalue"; memory sizes as "%8lu kB".
    lines = [
        "Name:\tpython3", "Umask:\t0022", "State:\tR (running)", f"Tgid:\t{pid}",
        "Ngid:\t0", f"Pid:\t{pid}", f"PPid:\t{pid - 1}", "TracerPid:\t0",
        "Uid:\t1000\t1000\t1000\t1000", "Gid:\t1000\t1000\t1000\t1000",
        "FDSize:\t64", "Groups:\t1000 ", f"NStgid:\t{pid}", f"NSpid:\t{pid}",
        f"NSpgid:\t{pid}", f"NSsid:\t{pid - 1}", "Kthread:\t0",
        f"VmPeak:\t{25344:>8} kB", f"VmSize:\t{25344:>8} kB", f"VmRSS:\t{9984:>8} kB",
        "Threads:\t1", "SigQ:\t0/1029311",
        "CapEff:\t0000000000000000", "NoNewPrivs:\t0", "Seccomp:\t0",
        "Seccomp_filters:\t0", "Speculation_Store_Bypass:\tthread vulnerable",
        f"Cpus_allowed:\t{format_mask(cpus, m.nr_cpu_ids)}",
        f"Cpus_allowed_list:\t{format_cpulist(cpus)}",
        f"Mems_allowed:\t{format_mask(mems, MAX_NUMNODES)}",
        f"Mems_allowed_list:\t{format_cpulist(mems)}",
        "voluntary_ctxt_switches:\t12", "nonvoluntary_ctxt_switches:\t3",
    ]
    _write(root, "proc/self/status", "\n".join(lines))


def _write_cgroup(root: Path, m: _Machine, cgroup_cpus: str) -> None:
    cpus = parse_cpulist(cgroup_cpus, "cgroup_cpus")
    if not set(cpus) <= set(m.present):
        raise ValueError(f"cgroup_cpus {cgroup_cpus!r}: not all CPUs are present")
    allowed = m.desc.get("allowed") or {}
    mems = parse_cpulist(allowed.get("mems", format_cpulist(n["id"] for n in m.nodes)))
    # cgroup v2: the process sits in /job of the unified hierarchy.
    _write(root, "proc/self/cgroup", "0::/job")
    _write(root, "proc/self/mountinfo",
           "24 1 0:22 / /sys rw,nosuid,nodev,noexec,relatime shared:7 - sysfs sysfs rw\n"
           "25 1 0:23 / /proc rw,nosuid,nodev,noexec,relatime shared:13 - proc proc rw\n"
           "35 24 0:30 / /sys/fs/cgroup rw,nosuid,nodev,noexec,relatime shared:9 - "
           "cgroup2 cgroup2 rw,nsdelegate,memory_recursiveprot")
    cg = "sys/fs/cgroup"
    _write(root, f"{cg}/cgroup.controllers", "cpuset cpu io memory hugetlb pids rdma misc")
    _write(root, f"{cg}/cpuset.cpus.effective", format_cpulist(m.online))
    _write(root, f"{cg}/cpuset.mems.effective", format_cpulist(n["id"] for n in m.nodes))
    _write(root, f"{cg}/job/cgroup.controllers", "cpuset cpu io memory hugetlb pids rdma misc")
    _write(root, f"{cg}/job/cpuset.cpus", format_cpulist(cpus))
    _write(root, f"{cg}/job/cpuset.cpus.effective", format_cpulist(cpus))
    _write(root, f"{cg}/job/cpuset.mems", format_cpulist(mems))
    _write(root, f"{cg}/job/cpuset.mems.effective", format_cpulist(mems))


def _gpu_uuid_map(m: _Machine, gpu_uuids: dict[str, str]) -> dict[str, str]:
    """Validate ``gpu_uuids``; return bdf -> ``GPU-<uuid>`` in bdf order."""
    out = {}
    for bdf in sorted(gpu_uuids):
        f = m.functions.get(bdf)
        if f is None or f["dev"]["kind"] != "gpu":
            raise ValueError(f"gpu_uuids: {bdf!r} is not a GPU of the description")
        u = gpu_uuids[bdf]
        if not re.fullmatch(r"(GPU-)?[0-9a-fA-F-]{8,}", u):
            raise ValueError(f"gpu_uuids: bad uuid {u!r} for {bdf}")
        out[bdf] = u if u.startswith("GPU-") else "GPU-" + u
    return out


def _write_gpu_uuids(root: Path, m: _Machine, gpu_uuids: dict[str, str]) -> None:
    lines = [f"{bdf} {u}" for bdf, u in _gpu_uuid_map(m, gpu_uuids).items()]
    _write(root, "numabind/gpu-uuids", "\n".join(lines))


def _gpus_in_pci_order(m: _Machine) -> list[str]:
    """The description's GPUs as nvidia.ko probes and numbers them: PCI address
    order (domain, bus, device, function), so index i gets /dev/nvidia<i>."""
    return sorted(bdf for bdf, f in m.functions.items() if f["dev"]["kind"] == "gpu")


def _derived_gpu_uuid(bdf: str) -> str:
    """A made-up but stable ``GPU-xxxxxxxx-xxxx-xxxx-xxxx-xxxxxxxxxxxx`` for a bdf."""
    h = _digest("gpu-uuid", bdf, n=16).hex()
    return f"GPU-{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:]}"


def _check_container_gpus(m: _Machine, container_gpus: Iterable[str]) -> list[str]:
    if isinstance(container_gpus, str):
        raise ValueError(f"container_gpus {container_gpus!r}: want a list of bdfs, not a string")
    out: list[str] = []
    for bdf in container_gpus:
        f = m.functions.get(bdf) if isinstance(bdf, str) else None
        if f is None or f["dev"]["kind"] != "gpu":
            raise ValueError(f"container_gpus: {bdf!r} is not a GPU of the description")
        if bdf in out:
            raise ValueError(f"container_gpus: {bdf!r} given twice")
        out.append(bdf)
    return sorted(out)


def _devnode(root: Path, rel: str) -> None:
    """Stand in for a character device: an EMPTY regular file (tests cannot mknod)."""
    p = root / rel
    p.parent.mkdir(parents=True, exist_ok=True)
    p.write_bytes(b"")


def _nv_params(modify_device_files: int) -> str:
    lines = [f"{name}: {modify_device_files if name == 'ModifyDeviceFiles' else value}"
             for name, value in NV_PARAMS]
    lines += [f'{name}: ""' for name in NV_STRING_PARAMS]
    return "\n".join(lines)


def _nv_gpu_information(m: _Machine, bdf: str, minor: int, uuid: str) -> str:
    """kernel-open/nvidia/nv-procfs.c nv_procfs_read_gpu_info(), line for line."""
    dev = m.functions[bdf]["dev"]
    model, vbios, dma_bits = NV_GPU_MODELS.get(
        _hex_id(dev.get("device", "0xffff"), "device", 16), NV_UNKNOWN_MODEL)
    bm = BDF_RE.match(bdf)
    domain, bus, slot, func = (int(x, 16) for x in bm.groups())
    irq = 16 + int.from_bytes(_digest("irq", bdf, n=2), "big") % 200   # made up
    return "\n".join([
        f"Model: \t\t {model}",
        f"IRQ:   \t\t {irq}",
        f"GPU UUID: \t {uuid}",
        f"Video BIOS: \t {vbios}",
        "Bus Type: \t PCIe",
        f"DMA Size: \t {dma_bits} bits",
        f"DMA Mask: \t 0x{(1 << dma_bits) - 1:x}",
        f"Bus Location: \t {domain:04x}:{bus:02x}:{slot:02x}.{func:x}",
        f"Device Minor: \t {minor}",
        f"GPU Firmware: \t {NV_DRIVER_VERSION}",
        "GPU Excluded:\t No",
    ])


def _write_nvidia(root: Path, m: _Machine, uuids: dict[str, str],
                  container: list[str] | None) -> None:
    """/proc/driver/nvidia and /dev/nvidia* of a host (container None) or of a
    libnvidia-container container given the GPUs ``container``."""
    base = "proc/driver/nvidia"
    gpus = _gpus_in_pci_order(m)
    minor = {bdf: i for i, bdf in enumerate(gpus)}
    # In a container these three are all of the tmpfs libnvidia-container's
    # mount_procfs() puts over /proc/driver/nvidia, params copied with
    # "ModifyDeviceFiles: 1" turned into 0.
    _write(root, f"{base}/params", _nv_params(1 if container is None else 0))
    _write(root, f"{base}/version", NV_VERSION_TEXT)
    _write(root, f"{base}/registry", 'Binary: ""')
    if container is None:
        # nv_procfs_init(): the rest of the driver's directory, gpus/ even when empty.
        _write(root, f"{base}/suspend_depth", "default modeset uvm")
        _write(root, f"{base}/suspend", "suspend hibernate resume")
        _write(root, f"{base}/warnings/README", NV_README_WARNINGS)
        _write(root, f"{base}/patches/README", NV_README_PATCHES)
        (root / base / "gpus").mkdir(parents=True, exist_ok=True)
    shown = gpus if container is None else container
    for bdf in shown:
        # nv_procfs_add_gpu(): gpus/%04x:%02x:%02x.%1x/{information,registry,...}
        d = f"{base}/gpus/{bdf}"
        _write(root, f"{d}/information",
               _nv_gpu_information(m, bdf, minor[bdf], uuids.get(bdf) or _derived_gpu_uuid(bdf)))
        _write(root, f"{d}/registry", 'Binary: ""')
    for name in NV_CTL_NODES:
        _devnode(root, f"dev/{name}")
    for bdf in shown:
        _devnode(root, f"dev/nvidia{minor[bdf]}")


def _check_affinity(m: _Machine, affinity_cpus: str, may_use: list[int]) -> list[int]:
    cpus = parse_cpulist(affinity_cpus, "affinity_cpus")
    if not cpus:
        raise ValueError(f"affinity_cpus {affinity_cpus!r} is empty")
    off = set(cpus) - set(m.online)
    if off:
        raise ValueError(f"affinity_cpus {affinity_cpus!r}: cpus {format_cpulist(off)} are not online")
    out = set(cpus) - set(may_use)
    if out:
        raise ValueError(f"affinity_cpus {affinity_cpus!r}: cpus {format_cpulist(out)} are outside "
                         f"the cpus the process may use ({format_cpulist(may_use)})")
    return cpus


def _container_id(m: _Machine) -> str:
    return _digest("docker", m.desc.get("name", ""), n=32).hex()


def _check_cgroup_v1(m: _Machine, cgroup_v1_cpus: str) -> list[int]:
    cpus = parse_cpulist(cgroup_v1_cpus, "cgroup_v1_cpus")
    if not set(cpus) <= set(m.present):
        raise ValueError(f"cgroup_v1_cpus {cgroup_v1_cpus!r}: not all CPUs are present")
    # cgroup v1 takes an offlined CPU out of every cpuset's cpus (and refuses
    # an empty one), so both cpuset.cpus and effective_cpus show online CPUs only.
    on = [c for c in cpus if c in set(m.online)]
    if not on:
        raise ValueError(f"cgroup_v1_cpus {cgroup_v1_cpus!r}: no CPU of it is online")
    return on


def _write_cgroup_v1(root: Path, m: _Machine, cpus: list[int]) -> None:
    allowed = m.desc.get("allowed") or {}
    mems = parse_cpulist(allowed.get("mems", format_cpulist(n["id"] for n in m.nodes)))
    cid = _container_id(m)
    group = f"/docker/{cid}"
    # A hybrid host: every v1 hierarchy, and the (controller-less) unified one as 0::.
    lines = [f"{hid}:{ctrl}:{group}" for hid, ctrl, _ in CGROUP_V1_HIERARCHIES]
    lines.append(f"0::{group}")
    _write(root, "proc/self/cgroup", "\n".join(lines))
    # fs/proc_namespace.c show_mountinfo(): id parent major:minor root mountpoint
    # options [optional fields] - fstype source superoptions.  The process sees the
    # whole hierarchies (root "/"), so its cgroup is <mountpoint><path>.
    mi = [
        "24 31 0:22 / /sys rw,nosuid,nodev,noexec,relatime shared:7 - sysfs sysfs rw",
        "25 31 0:23 / /proc rw,nosuid,nodev,noexec,relatime shared:13 - proc proc rw",
        "34 24 0:29 / /sys/fs/cgroup ro,nosuid,nodev,noexec shared:9 - tmpfs tmpfs ro,mode=755",
        "35 34 0:30 / /sys/fs/cgroup/unified rw,nosuid,nodev,noexec,relatime shared:10 - "
        "cgroup2 cgroup2 rw,nsdelegate",
    ]
    mount_id, dev_minor, shared = 36, 31, 14
    for _, ctrl, superopts in reversed(CGROUP_V1_HIERARCHIES):
        where = "systemd" if ctrl == "name=systemd" else ctrl
        mi.append(f"{mount_id} 34 0:{dev_minor} / /sys/fs/cgroup/{where} "
                  f"rw,nosuid,nodev,noexec,relatime shared:{shared} - cgroup cgroup {superopts}")
        mount_id, dev_minor, shared = mount_id + 1, dev_minor + 1, shared + 1
    _write(root, "proc/self/mountinfo", "\n".join(mi))
    # Hybrid: every controller is bound to v1, so the unified tree has none.
    _write(root, "sys/fs/cgroup/unified/cgroup.controllers", "")
    _write(root, f"sys/fs/cgroup/unified{group}/cgroup.controllers", "")
    cs = "sys/fs/cgroup/cpuset"
    # The root cpuset holds the whole machine: online CPUs, nodes with memory (N_MEMORY).
    with_mem = [n["id"] for n in m.nodes if int(n.get("mem_mib", 0)) > 0]
    for d, cl, ml in ((cs, m.online, with_mem), (f"{cs}{group}", cpus, mems)):
        _write(root, f"{d}/cpuset.cpus", format_cpulist(cl))
        _write(root, f"{d}/cpuset.effective_cpus", format_cpulist(cl))
        _write(root, f"{d}/cpuset.mems", format_cpulist(ml))
        _write(root, f"{d}/cpuset.effective_mems", format_cpulist(ml))


def write_tree(desc: dict, root: str | os.PathLike, *,
               soft_roce: dict[str, str] | None = None,
               offline_cpus: str = "",
               gpu_uuids: dict[str, str] | None = None,
               cgroup_cpus: str | None = None,
               numa_override: dict[str, int] | None = None,
               possible_cpus: str | None = None,
               keep_offline_in_node: bool = False,
               driver_procfs: bool = False,
               container_gpus: list[str] | None = None,
               affinity_cpus: str | None = None,
               cgroup_v1_cpus: str | None = None,
               mask_only: Iterable[str] = (),
               pre_5_3_topology: bool = False,
               unknown_package_id: bool = False,
               no_cpu_online: bool = False,
               no_proc_status: bool = False,
               no_uevent: bool = False,
               clean: bool = False) -> None:
    """Write the sysfs/procfs tree for ``desc`` under ``root`` (root stands in for ``/``).

    Raises ValueError (naming the bad value) for a malformed description or option.

    Options, for cases the descriptions do not hold:

    soft_roce
        ``{rxe_name: netdev}``: add a soft-RoCE device over an existing netdev of
        the tree as kernels >= 5.12 show it: ``sys/devices/virtual/infiniband/<rxe>/``
        with NO ``device`` link, a ``parent`` file holding the netdev name,
        ``node_type`` ``1: CA``, ``ports/1/{state,phys_state,link_layer,rate}``
        (``4: ACTIVE``, ``5: LinkUp``, ``Ethernet``, ``10 Gb/sec (1X QDR)``),
        ``ports/1/gid_attrs/ndevs/0`` = netdev; plus ``sys/class/infiniband/<rxe>``.
    offline_cpus
        cpulist of CPUs to take offline.  They stay in ``cpu/present``/``possible``
        and keep their ``cpuN`` directory (with ``online`` = 0) but leave
        ``cpu/online``; as the kernel does, they lose ``topology/`` and ``cache/``
        and drop out of every online CPU's sibling/shared masks, of
        ``nodeN/cpulist``/``cpumap`` and of PCI ``local_cpus``/``local_cpulist``
        (x86/arm64/riscv call numa_remove_cpu() on offline).  ``allowed`` in
        ``proc/self/status`` is written as the description gives it.
    keep_offline_in_node
        With offline_cpus: keep offline CPUs in ``nodeN/cpulist`` and in PCI
        ``local_cpulist`` (what some older/other kernels show), so a reader must
        intersect with ``cpu/online`` itself.
    possible_cpus
        cpulist for ``cpu/possible`` when it should be larger than ``present``
        (hotplug-capable VMs: e.g. ``0-255`` on a 64-CPU guest).  Every cpumask is
        then printed over nr_cpu_ids = last possible CPU + 1 bits.
    gpu_uuids
        ``{bdf: uuid}``: write ``numabind/gpu-uuids``, one ``<bdf> GPU-<uuid>``
        line per GPU in bdf order (a numabind-specific stand-in for NVML).
    cgroup_cpus
        cpulist: put the process in cgroup v2 ``/job`` (``proc/self/cgroup`` =
        ``0::/job``, a cgroup2 line in ``proc/self/mountinfo``) whose
        ``sys/fs/cgroup/job/cpuset.cpus.effective`` is this list and
        ``cpuset.mems.effective`` the description's allowed mems. As the
        kernel keeps it, ``proc/self/status``'s affinity then lies inside the
        cpuset: the description's allowed CPUs within it, else all of it
        (``affinity_cpus`` narrows it further). The same for cgroup_v1_cpus.
    numa_override
        ``{bdf: node}``: the ``numa_node`` one function reads (e.g. -1, or a
        node the machine does not have, as buggy firmware gives); its
        ``local_cpus``/``local_cpulist`` follow (-1: all online CPUs; a node
        that does not exist: none).
    driver_procfs
        What the NVIDIA driver (nvidia.ko, open kernel modules, R570) shows on a
        bare-metal host.  ``proc/driver/nvidia/``: ``version`` (``NVRM version:
        ...``/``GCC version:  ...``, nv_procfs_read_version()), ``params`` (one
        ``Name: <u32>`` line per nv_parms[] entry of kernel-open/nvidia/nv-reg.h,
        then ``Name: "<string>"`` lines; ``ModifyDeviceFiles: 1``), ``registry``
        (``Binary: ""``), ``suspend``, ``suspend_depth``, ``warnings/README``,
        ``patches/README`` and ``gpus/`` (present even when empty).  For EVERY
        GPU of the description ``gpus/<bdf>/information`` and ``gpus/<bdf>/registry``;
        ``information`` is nv_procfs_read_gpu_info() (kernel-open/nvidia/nv-procfs.c)
        line for line, e.g.::

            Model: \t\t NVIDIA H100 80GB HBM3
            IRQ:   \t\t 57
            GPU UUID: \t GPU-1b0e6f6a-....
            Video BIOS: \t 96.00.99.00.01
            Bus Type: \t PCIe
            DMA Size: \t 52 bits
            DMA Mask: \t 0xfffffffffffff
            Bus Location: \t 0000:1b:00.0
            Device Minor: \t 0
            GPU Firmware: \t 570.133.20
            GPU Excluded:\t No

        ``Device Minor`` is the GPU's index among the description's GPUs in PCI
        address order (nvidia.ko numbers them so at probe); ``GPU UUID`` is the
        ``gpu_uuids`` entry for the bdf, else ``GPU-`` + a UUID made from the bdf
        (stable across runs).  Model/Video BIOS/DMA bits come from
        NV_GPU_MODELS by PCI device id (``Unknown``, as the driver says, for
        others); IRQ is made up.  Device nodes: ``dev/nvidiactl``,
        ``dev/nvidia-uvm``, ``dev/nvidia-uvm-tools`` and ``dev/nvidia<minor>`` per
        GPU.  A device node is stood in for by an EMPTY REGULAR FILE: tests cannot
        mknod, numabind only checks that the node exists, and ``numabind gather``
        captures device nodes the same way.  (A GPU-less description still gets
        the files, with an empty ``gpus/``, although the real nvidia.ko refuses to
        load without a GPU.)
    container_gpus
        List of GPU bdfs: what a process in a container made by
        libnvidia-container (Docker ``--gpus '"device=4,5,6,7"'``, the Kubernetes
        NVIDIA device plugin, enroot/pyxis) sees; src/nvc_mount.c.  mount_procfs()
        puts a tmpfs over ``/proc/driver/nvidia`` holding copies of ``params``
        (with ``ModifyDeviceFiles: 1`` turned into ``0``), ``version`` and
        ``registry`` only; mount_procfs_gpu() bind-mounts ``gpus/<bdf>/`` of each
        selected GPU; mount_device() makes ``dev/nvidiactl``, ``dev/nvidia-uvm``,
        ``dev/nvidia-uvm-tools`` and each selected GPU's ``dev/nvidia<minor>``,
        minor being the HOST numbering (GPUs 4-7 of a DGX keep minors 4-7).  An
        empty list is a container given no GPU (``NVIDIA_VISIBLE_DEVICES=none``):
        the three files and three nodes, and no ``gpus/`` directory at all (nvc
        creates it only while bind-mounting a GPU).  sysfs is not namespaced: the
        rest of the tree (``sys/bus/pci/devices`` ...) still shows every GPU.
        Every bdf must be a GPU of the description, given once (ValueError).
        Implies the driver: with driver_procfs too, container_gpus wins.
    affinity_cpus
        cpulist: the process's CPU affinity, narrower than what it may use, as a
        launcher that pre-bound the rank leaves it (mpirun's default binding,
        ``srun --cpu-bind``, ``taskset``).  Only ``Cpus_allowed``/
        ``Cpus_allowed_list`` of ``proc/self/status`` change; cgroup cpuset files
        keep the wider set.  Must be online CPUs within what the process may use
        (cgroup_cpus/cgroup_v1_cpus if given, else the description's
        ``allowed.cpus``): sched_setaffinity() cannot leave the cpuset.
    cgroup_v1_cpus
        cpulist: like cgroup_cpus for a cgroup v1 ("hybrid") host, as older
        Docker/Kubernetes nodes have it; the process sits in ``/docker/<id>``
        (64 hex digits, made up).  ``proc/self/cgroup`` lists every v1 hierarchy
        (``12:rdma:/docker/<id>`` ... ``8:cpuset:/docker/<id>`` ...
        ``1:name=systemd:/docker/<id>``) and ``0::/docker/<id>`` for the unified
        hierarchy; ``proc/self/mountinfo`` has sysfs, proc, the tmpfs on
        ``/sys/fs/cgroup``, cgroup2 on ``/sys/fs/cgroup/unified`` and one ``cgroup``
        line per hierarchy (``... / /sys/fs/cgroup/cpuset ... - cgroup cgroup
        rw,cpuset``), all with root ``/``.  Files:
        ``sys/fs/cgroup/cpuset/{cpuset.cpus,cpuset.effective_cpus,cpuset.mems,
        cpuset.effective_mems}`` with the whole machine (online CPUs, nodes with
        memory), the same four under ``sys/fs/cgroup/cpuset/docker/<id>/`` with
        this list (less offline CPUs, as v1 drops them) and the description's
        allowed mems; ``sys/fs/cgroup/unified{,/docker/<id>}/cgroup.controllers``
        empty (on a hybrid host every controller is on v1).  ``proc/self/status``
        is unchanged.  cgroup_cpus and cgroup_v1_cpus together: ValueError.
    mask_only
        Names from MASK_ONLY_NAMES whose ``_list`` file is left out, the hex
        mask (``%*pb``) kept: ``"shared_cpu"`` writes ``cache/index*/shared_cpu_map``
        without ``shared_cpu_list`` (POWER9 on 4.14: powerpc's own cacheinfo had
        no list form then), ``"thread_siblings"``, ``"core_siblings"``, ... write
        ``cpuN/topology/<name>`` without ``<name>_list`` (as a capture that kept
        only the masks has them).  An unknown name: ValueError.
    pre_5_3_topology
        ``cpuN/topology`` as kernels before 5.3 write it: no ``die_id``,
        ``core_cpus``, ``package_cpus``, ``die_cpus`` (nor their ``_list``), which
        came with the multi-die series in 5.3.  With mask_only
        ``("shared_cpu", "thread_siblings", "core_siblings")`` this is what a
        reader finds in a POWER9 4.14 tree captured by a mask-reading tool.
    unknown_package_id
        Every CPU's ``physical_package_id`` reads ``-1``, as on s390 and on arm64
        firmware without package information; the sibling masks and lists
        (``core_siblings``, ``package_cpus``) still group the CPUs by the
        description's sockets.
    no_cpu_online
        No ``cpu/online`` file: the ``cpuN`` directories and their ``online``
        files (none for cpu0, 0 for an offline CPU) are all that says which
        CPUs are online.
    no_proc_status
        No ``proc/self/status``, as ``hwloc-gather-topology`` captures a machine:
        nothing says what one process was allowed.  With cgroup_cpus or
        cgroup_v1_cpus the cgroup files are still written.  With affinity_cpus
        (which lives in that file): ValueError.
    no_uevent
        No ``uevent`` in PCI function directories, as captures that copy
        only the attribute files hold them (``numabind gather`` and
        ``hwloc-gather-topology`` among them): a reader falls back to
        ``vendor``, ``device`` and ``class``.
    clean
        Remove ``sys/``, ``proc/``, ``dev/`` and ``numabind/`` under root first,
        but only if root holds the marker file an earlier write_tree left.
    """
    validate(desc)
    root = Path(root)
    if root.resolve() == Path("/").resolve():
        raise ValueError("refusing to write a fixture tree over /")
    if cgroup_cpus is not None and cgroup_v1_cpus is not None:
        raise ValueError(f"cgroup_cpus {cgroup_cpus!r} and cgroup_v1_cpus {cgroup_v1_cpus!r}: "
                         "a process sits in a v2 or a v1 cpuset, not both")
    mask_only = tuple(mask_only)
    for name in mask_only:
        if name not in MASK_ONLY_NAMES:
            raise ValueError(f"mask_only: {name!r} is not one of {', '.join(MASK_ONLY_NAMES)}")
    if no_proc_status and affinity_cpus is not None:
        raise ValueError(f"affinity_cpus {affinity_cpus!r} lives in proc/self/status, which no_proc_status leaves out")
    offline = set(parse_cpulist(offline_cpus or "", "offline_cpus"))
    possible = parse_cpulist(possible_cpus, "possible_cpus") if possible_cpus else None
    m = _Machine(desc, offline, possible, keep_offline_in_node, numa_override or {})
    m.uevent = not no_uevent
    # Check the new options before anything is written.
    v1_cpus = _check_cgroup_v1(m, cgroup_v1_cpus) if cgroup_v1_cpus is not None else None
    container = _check_container_gpus(m, container_gpus) if container_gpus is not None else None
    uuids = _gpu_uuid_map(m, gpu_uuids) if gpu_uuids else {}
    affinity = None
    if affinity_cpus is not None:
        if cgroup_cpus is not None:
            may_use = parse_cpulist(cgroup_cpus, "cgroup_cpus")
        elif v1_cpus is not None:
            may_use = v1_cpus
        else:
            may_use = parse_cpulist((desc.get("allowed") or {}).get("cpus", format_cpulist(m.online)))
        affinity = _check_affinity(m, affinity_cpus, may_use)
    elif cgroup_cpus is not None or v1_cpus is not None:
        # A task moved into a cpuset runs on the CPUs it asked for that the
        # cpuset holds, else on the whole cpuset (kernel/cgroup/cpuset.c,
        # cpuset_attach): its affinity never lies outside its cpuset.
        cpuset = set(parse_cpulist(cgroup_cpus, "cgroup_cpus") if cgroup_cpus is not None else v1_cpus)
        wanted = set(parse_cpulist((desc.get("allowed") or {}).get("cpus", format_cpulist(m.online))))
        affinity = sorted((wanted & cpuset or cpuset) & set(m.online))

    if clean and (root / MARKER).exists():
        for sub in ("sys", "proc", "dev", "numabind"):
            shutil.rmtree(root / sub, ignore_errors=True)
    root.mkdir(parents=True, exist_ok=True)
    _write_nodes(root, m)
    _write_cpus(root, m, mask_only=mask_only, pre_5_3_topology=pre_5_3_topology,
                unknown_package_id=unknown_package_id, no_cpu_online=no_cpu_online)
    _write_pci(root, m)
    _write_rdma(root, m)
    nets = _write_net(root, m)
    if soft_roce:
        _write_soft_roce(root, m, soft_roce, nets)
    if not no_proc_status:
        _write_proc(root, m, affinity)
    if cgroup_cpus is not None:
        _write_cgroup(root, m, cgroup_cpus)
    if v1_cpus is not None:
        _write_cgroup_v1(root, m, v1_cpus)
    if gpu_uuids:
        _write_gpu_uuids(root, m, gpu_uuids)
    if container is not None or driver_procfs:
        _write_nvidia(root, m, uuids, container)
    (root / MARKER).write_text(desc.get("name", "") + "\n", encoding="utf-8")


# --------------------------------------------------------------------------
# CLI
# --------------------------------------------------------------------------

def _pairs(items: list[str], what: str) -> dict[str, str]:
    out = {}
    for it in items or []:
        k, sep, v = it.partition("=")
        if not sep or not k or not v:
            raise ValueError(f"{what}: want KEY=VALUE, got {it!r}")
        out[k] = v
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description="Write a fake sysfs tree for a machine description.")
    ap.add_argument("desc", help="description JSON path or machine name")
    ap.add_argument("outdir", help="directory that stands in for /")
    ap.add_argument("--offline-cpus", default="")
    ap.add_argument("--possible-cpus")
    ap.add_argument("--keep-offline-in-node", action="store_true")
    ap.add_argument("--cgroup-cpus")
    ap.add_argument("--soft-roce", action="append", metavar="RXE=NETDEV")
    ap.add_argument("--numa-override", action="append", metavar="BDF=NODE")
    ap.add_argument("--gpu-uuid", action="append", metavar="BDF=UUID")
    ap.add_argument("--driver-procfs", action="store_true",
                    help="NVIDIA driver's /proc/driver/nvidia and /dev/nvidia* of a host")
    ap.add_argument("--container-gpus", metavar="BDF,BDF,...",
                    help="as seen in a libnvidia-container container given these GPUs ('' for none)")
    ap.add_argument("--affinity-cpus", metavar="LIST",
                    help="Cpus_allowed_list of proc/self/status (a launcher's binding)")
    ap.add_argument("--cgroup-v1-cpus", metavar="LIST", help="cpuset of a cgroup v1 /docker/<id>")
    ap.add_argument("--mask-only", metavar="NAME,...", default="",
                    help=f"leave out these files' _list form ({', '.join(MASK_ONLY_NAMES)})")
    ap.add_argument("--pre-5-3-topology", action="store_true", help="cpuN/topology as kernels before 5.3")
    ap.add_argument("--unknown-package-id", action="store_true", help="physical_package_id -1 (s390)")
    ap.add_argument("--no-cpu-online", action="store_true", help="no cpu/online file")
    ap.add_argument("--no-proc-status", action="store_true",
                    help="no proc/self/status (as hwloc-gather-topology captures)")
    ap.add_argument("--no-uevent", action="store_true",
                    help="no uevent in PCI function directories (as captures of the attribute files hold them)")
    ap.add_argument("--clean", action="store_true", help="remove an earlier fixture tree first")
    a = ap.parse_args(argv)
    try:
        desc = load(a.desc)
        numa = {k: int(v) for k, v in _pairs(a.numa_override, "--numa-override").items()}
        container = None
        if a.container_gpus is not None:
            text = a.container_gpus.strip()
            container = [b.strip() for b in text.split(",")] if text else []
        write_tree(desc, a.outdir, offline_cpus=a.offline_cpus, possible_cpus=a.possible_cpus,
                   keep_offline_in_node=a.keep_offline_in_node, cgroup_cpus=a.cgroup_cpus,
                   soft_roce=_pairs(a.soft_roce, "--soft-roce") or None,
                   numa_override=numa or None,
                   gpu_uuids=_pairs(a.gpu_uuid, "--gpu-uuid") or None,
                   driver_procfs=a.driver_procfs, container_gpus=container,
                   affinity_cpus=a.affinity_cpus, cgroup_v1_cpus=a.cgroup_v1_cpus,
                   mask_only=[n for n in a.mask_only.split(",") if n],
                   pre_5_3_topology=a.pre_5_3_topology, unknown_package_id=a.unknown_package_id,
                   no_cpu_online=a.no_cpu_online, no_proc_status=a.no_proc_status,
                   no_uevent=a.no_uevent, clean=a.clean)
    except (OSError, ValueError) as e:
        print(f"sysfs_tree: {e}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
