"""`numabind show` on a real kernel: every node, CPU, GPU and NIC, with the
NUMA node the layout put it on."""
from __future__ import annotations

import json
import subprocess

import pytest
from labkit import SYS, format_list, netdev_by_mac, pci_function, read


@pytest.fixture(scope="module")
def shown() -> dict:
    """`numabind show --json`, the installed command, in a process of its own."""
    out = subprocess.run(["numabind", "show", "--json"], check=True, capture_output=True, text=True, timeout=300)
    return json.loads(out.stdout)


def test_live_host_read(shown):
    assert shown["live"] is True and shown["fsroot"] in ("/", "")


def test_every_node_with_its_cpus_memory_and_distances(shown, layout):
    got = {n["id"]: n for n in shown["nodes"]}
    assert sorted(got) == [n["id"] for n in layout["nodes"]]
    for n in layout["nodes"]:
        g = got[n["id"]]
        assert list(g["cpus"]) == n["cpus"]
        assert g["has_cpus"] == n["has_cpus"]
        assert n["mem_mib"] * 0.7 < g["mem_total_bytes"] / 2**20 <= n["mem_mib"]
        order = [x["id"] for x in shown["nodes"]]
        assert [g["distances"][order.index(m)] for m in range(len(order))] == layout["distances"][n["id"]]


def test_every_cpu_with_its_node_package_and_core(shown, layout):
    got = {c["id"]: c for c in shown["cpus"]}
    assert sorted(got) == [c["cpu"] for c in layout["cpus"]]
    for c in layout["cpus"]:
        g = got[c["cpu"]]
        assert g["node"] == c["node"] and g["package"] == c["package"], c
        assert list(shown["cores"][g["core"]]) == c["siblings"], c
    assert shown["allowed_cpus"] == [c["cpu"] for c in layout["cpus"]]
    assert shown["allowed_mems"] == [n["id"] for n in layout["nodes"]]


def test_every_gpu_with_its_node(shown, layout):
    assert len(shown["gpus"]) == len(layout["gpus"])
    pci = {p["address"]: p for p in shown["pci"]}
    for g, want in zip(shown["gpus"], layout["gpus"]):
        assert g["numa_node"] == want["node"], want["name"]
        assert pci[g["pci_address"]]["host_bridge"] == want["host_bridge"], want["name"]


def test_every_nic_with_its_node_netdev_and_pci_function(shown, layout):
    netdevs = netdev_by_mac()
    got = {n["name"]: n for n in shown["nics"]}
    assert sorted(got) == sorted(n["name"] for n in layout["nics"])
    for want in layout["nics"]:
        g = got[want["name"]]
        assert g["virtual"] is True  # soft-RoCE: placed through its netdev
        assert g["netdev"] == netdevs[want["mac"]]
        fn = pci_function(SYS / "class" / "net" / g["netdev"] / "device")
        assert g["pci_address"] == fn.name
        assert g["numa_node"] == want["node"] == int(read(fn / "numa_node"))
        assert [(p["port"], p["state"], p["link_layer"]) for p in g["ports"]] == [(1, "ACTIVE", "Ethernet")]


def test_gpu_nic_distance_classes(shown, layout):
    for g, want in zip(shown["gpus"], layout["gpus"]):
        assert g["distances"] == layout["classes"][want["name"]], want["name"]


def test_show_text_lists_every_nic_and_node(layout):
    out = subprocess.run(["numabind", "show"], check=True, capture_output=True, text=True, timeout=300).stdout
    rows = {line.split()[0]: line.split() for line in out.splitlines() if line.split()}
    for nic in layout["nics"]:
        row = rows[nic["name"]]   # rxe0 (soft)  0000:21:00.0  0  eth1  1  ACTIVE ...
        assert row[1] == "(soft)" and int(row[3]) == nic["node"], row
    for n in layout["nodes"]:
        row = rows[str(n["id"])]   # 1  (no CPUs)  0  0.5 GiB  20 10 ...
        assert row[1] == (format_list(n["cpus"]) if n["has_cpus"] else "(no"), row
    for i, g in enumerate(layout["gpus"]):
        row = rows[f"GPU{i}"]
        assert row[-1] == str(g["node"]), row
