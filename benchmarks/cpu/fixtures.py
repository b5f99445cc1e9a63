"""Fixture sysfs trees for the CPU benchmarks.

* ``described(name, base)``: a machine of tests/machines (``dgx-h100``: 224
  CPUs, 8 GPUs, 12 NICs) written by tests/sysfs_tree.py. numabind can read and
  plan it here, but not apply it: its CPUs do not exist on this machine.
* ``host_gpus(base)``: a made-up machine whose CPUs and memory node are this
  host's own, with two GPUs and two RDMA NICs on node 0 — so that a plan from
  it can really be applied here (rank 1 gets the upper half of the CPUs and
  a preferred memory node), which the live host, with no GPU, cannot show.
"""
from __future__ import annotations

import os
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO / "tests"))

import sysfs_tree as st  # noqa: E402


def described(name: str, base: Path) -> Path:
    root = base / name
    if not (root / st.MARKER).exists():
        st.write_tree(st.load(name), root, clean=True)
    return root


def host_gpus_description() -> dict:
    cpus = sorted(os.sched_getaffinity(0))
    online = st.parse_cpulist(Path("/sys/devices/system/cpu/online").read_text())
    if len(cpus) < 2:
        raise RuntimeError("needs at least two usable CPUs to pin one rank away from the other")

    def gpu_with_nic(i: int) -> dict:
        # Root port -> switch -> {GPU, NIC}: the NIC is PIX to its GPU.
        return {"bdf": f"0000:{0x10 + 8 * i:02x}:00.0", "kind": "bridge", "vendor": "0x1000", "device": "0xc030",
                "children": [
                    {"bdf": f"0000:{0x11 + 8 * i:02x}:00.0", "kind": "bridge", "vendor": "0x1000",
                     "device": "0xc030", "children": [
                         {"bdf": f"0000:{0x12 + 8 * i:02x}:00.0", "kind": "gpu", "vendor": "0x10de",
                          "device": "0x2330"}]},
                    {"bdf": f"0000:{0x11 + 8 * i:02x}:01.0", "kind": "bridge", "vendor": "0x1000",
                     "device": "0xc030", "children": [
                         {"bdf": f"0000:{0x13 + 8 * i:02x}:00.0", "kind": "nic", "ibdev": f"mlx5_{i}",
                          "netdev": f"ibp{i}", "link_layer": "InfiniBand", "state": "ACTIVE",
                          "rate": "400 Gb/sec (4X NDR)", "vendor": "0x15b3", "device": "0x1021"}]}]}

    return {
        "name": "host-gpus",
        "sources": ["benchmarks/cpu/fixtures.py: this host's CPUs and node 0, two made-up GPUs with a NIC each"],
        "notes": [],
        "cpu": {"sockets": 1, "threads_per_core": 1,
                "nodes": [{"id": 0, "cpus": st.format_cpulist(online), "socket": 0, "mem_mib": 16384}]},
        "allowed": {"cpus": st.format_cpulist(cpus), "mems": "0"},
        "pci": [{"root": "pci0000:00", "numa": 0, "devices": [
            {"bdf": "0000:00:01.0", "kind": "bridge", "vendor": "0x8086", "device": "0x352a",
             "children": [gpu_with_nic(0)]},
            {"bdf": "0000:00:02.0", "kind": "bridge", "vendor": "0x8086", "device": "0x352a",
             "children": [gpu_with_nic(1)]},
        ]}],
        "expected": {"gpus": []},
    }


def host_gpus(base: Path) -> Path:
    root = base / "host-gpus"
    st.write_tree(host_gpus_description(), root, clean=True)
    return root


def base_dir() -> Path:
    """/dev/shm when writable (a 224-CPU tree is ~10k files), else /tmp."""
    shm = Path("/dev/shm")
    return shm if shm.is_dir() and os.access(shm, os.W_OK) else Path("/tmp")
