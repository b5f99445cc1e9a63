"""The lab itself: the guest kernel shows the layout that was asked for,
read from sysfs without numabind. If QEMU or the runner got the layout
wrong, this fails first, and no numabind test below can pass on a guest
that only looks right."""
from __future__ import annotations

import os
from pathlib import Path

from labkit import SYS, host_bridge, netdev_by_mac, parse_list, pci_function, read

NODE = SYS / "devices" / "system" / "node"


def test_nodes_cpus_and_distances(layout):
    assert parse_list(read(NODE / "online")) == [n["id"] for n in layout["nodes"]]
    for n in layout["nodes"]:
        d = NODE / f"node{n['id']}"
        assert parse_list(read(d / "cpulist")) == n["cpus"], f"node {n['id']}"
        assert [int(x) for x in read(d / "distance").split()] == layout["distances"][n["id"]]
        total_kib = int(next(line for line in (d / "meminfo").read_text().splitlines()
                             if "MemTotal" in line).split()[3])
        # The kernel keeps some of each node's memory for itself.
        assert n["mem_mib"] * 1024 * 0.7 < total_kib <= n["mem_mib"] * 1024, f"node {n['id']}"


def test_smt_siblings_and_packages(layout):
    cpu = SYS / "devices" / "system" / "cpu"
    assert parse_list(read(cpu / "online")) == [c["cpu"] for c in layout["cpus"]]
    for c in layout["cpus"]:
        t = cpu / f"cpu{c['cpu']}" / "topology"
        assert parse_list(read(t / "thread_siblings_list")) == c["siblings"], f"cpu {c['cpu']}"
        assert int(read(t / "physical_package_id")) == c["package"], f"cpu {c['cpu']}"


def test_nics_sit_on_their_expander_bridge_and_node(layout):
    netdevs = netdev_by_mac()
    for nic in layout["nics"]:
        fn = pci_function(SYS / "class" / "net" / netdevs[nic["mac"]] / "device")
        assert host_bridge(fn) == nic["host_bridge"], nic["name"]
        assert int(read(fn / "numa_node")) == nic["node"], nic["name"]
        node = next(n for n in layout["nodes"] if n["id"] == nic["node"])
        assert parse_list(read(fn / "local_cpulist")) == node["cpus"], nic["name"]
        # Behind a switch: root port, upstream port, downstream port, NIC.
        depth = len([p for p in fn.parts if p.startswith("0000:")])
        assert depth == (4 if nic["switch"] else 2), f"{nic['name']}: {fn}"


def test_gpu_standins_sit_on_their_expander_bridge_and_node(layout):
    """The runner relabels pci-testdev functions as NVIDIA 3D controllers;
    their place in the tree and their node are the kernel's."""
    relabelled = (Path(os.environ["NUMABIND_LAB_RUN"]) / "gpus").read_text().split()
    assert len(relabelled) == len(layout["gpus"])
    for addr, gpu in zip(sorted(relabelled), layout["gpus"]):
        fn = Path(f"/sys/bus/pci/devices/{addr}").resolve()
        assert (read(fn / "vendor"), read(fn / "class")) == ("0x10de", "0x030200")
        uevent = read(fn / "uevent").splitlines()
        assert "PCI_CLASS=30200" in uevent and "PCI_ID=10DE:2330" in uevent, uevent
        assert host_bridge(fn) == gpu["host_bridge"], gpu["name"]
        assert int(read(fn / "numa_node")) == gpu["node"], gpu["name"]
        depth = len([p for p in fn.parts if p.startswith("0000:")])
        assert depth == (4 if gpu["switch"] else 2), f"{gpu['name']}: {fn}"
