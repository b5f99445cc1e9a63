"""numabind.topology() against the independent reference (tests/reference.py).

Every expected value here is derived from a machine description (and, where
the reference has nothing to say, from the description by the kernel's rules
spelled out below), never from numabind's own output.
"""
from __future__ import annotations

import copy
import dataclasses
import errno
import json
import os
import re
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest

import numabind
import reference as ref
import sysfs_tree as st
from numabind import DistanceClass, EnvironmentValueError, TopologyError

# --------------------------------------------------------------------------
# expected values, from a description only
# --------------------------------------------------------------------------


def functions(desc: dict) -> dict[str, dict]:
    """bdf -> {dev, numa, root, parents (ancestor devices, outermost first)}."""
    out: dict[str, dict] = {}

    def walk(devs, r, parents):
        for d in devs or []:
            out[d["bdf"]] = {"dev": d, "numa": r.get("numa", -1), "root": r["root"],
                             "parents": parents}
            walk(d.get("children"), r, parents + [d])

    for r in desc.get("pci") or []:
        walk(r.get("devices"), r, [])
    return out


def bdf_key(bdf: str) -> tuple[int, ...]:
    dom, bus, rest = bdf.split(":")
    dev, fn = rest.split(".")
    return int(dom, 16), int(bus, 16), int(dev, 16), int(fn, 16)


def pci_class(dev: dict) -> int:
    """The class code a function of this kind reports (PCI Code and ID
    Assignment spec): 3D controller, PCI-PCI bridge, InfiniBand/Ethernet."""
    if "class" in dev:
        return int(dev["class"], 16)
    if dev["kind"] == "gpu":
        return 0x030200
    if dev["kind"] == "bridge":
        return 0x060400
    return 0x020700 if dev.get("link_layer") == "InfiniBand" else 0x020000


def present_cpus(desc: dict) -> list[int]:
    return sorted(c for n in ref.nodes(desc) for c in n["cpus"])


def node_of(desc: dict) -> dict[int, int]:
    return {c: n["id"] for n in ref.nodes(desc) for c in n["cpus"]}


def package_of(desc: dict) -> dict[int, int]:
    cpu = desc["cpu"]
    default = 0 if int(cpu.get("sockets", 1)) == 1 else None
    out = {}
    for n in cpu["nodes"]:
        for c in ref.cpulist(n.get("cpus", "")):
            out[c] = n.get("socket", default)
    return out


def siblings(desc: dict, online: set[int]) -> dict[int, tuple[int, ...]]:
    """SMT siblings per SCHEMA.md: with threads_per_core t > 1 the threads of
    cpu c's core are (c mod stride) + k*stride, k < t, within one package."""
    cpu = desc["cpu"]
    tpc, stride = int(cpu.get("threads_per_core", 1)), int(cpu.get("smt_stride", 0))
    pkg = package_of(desc)
    out = {}
    for c in sorted(online):
        if tpc == 1:
            out[c] = (c,)
            continue
        first = c % stride
        sib = [first + k * stride for k in range(tpc)]
        out[c] = tuple(s for s in sib if s in online and pkg.get(s) == pkg[c])
    return out


def l3_domains(desc: dict, online: set[int]) -> set[tuple[int, ...]]:
    """The description's L3 domains, else one per socket; online CPUs only."""
    if desc["cpu"].get("l3"):
        doms = [ref.cpulist(d) for d in desc["cpu"]["l3"]]
    else:
        by_pkg: dict[int, list[int]] = {}
        for c, p in package_of(desc).items():
            by_pkg.setdefault(p, []).append(c)
        doms = list(by_pkg.values())
    return {tuple(sorted(c for c in d if c in online)) for d in doms} - {()}


def distance_matrix(desc: dict) -> list[list[int]]:
    """SLIT in node-id order: the description's (indexed by position in
    cpu.nodes), else 10 local / 21 remote."""
    ns = desc["cpu"]["nodes"]
    pos = {n["id"]: i for i, n in enumerate(ns)}
    ids = sorted(pos)
    dist = desc["cpu"].get("distances")
    if dist is None:
        return [[10 if a == b else 21 for b in ids] for a in ids]
    return [[dist[pos[a]][pos[b]] for b in ids] for a in ids]


def local_cpus(desc: dict, numa: int | None, online: list[int]) -> tuple[int, ...]:
    if numa is None or numa < 0:
        return tuple(online)
    return tuple(c for c in next(n["cpus"] for n in ref.nodes(desc) if n["id"] == numa)
                 if c in set(online))


def phys_state(state: str) -> int:
    return 5 if state == "ACTIVE" else 3     # 5: LinkUp, 3: Disabled


def without(d: dict, *keys: str) -> dict:
    return {k: v for k, v in d.items() if k not in keys}


# --------------------------------------------------------------------------
# checks shared by the per-description tests and the option variants
# --------------------------------------------------------------------------


def check_nodes(desc, topo, online: set[int]):
    exp = ref.nodes(desc)
    assert [n.id for n in topo.nodes] == [n["id"] for n in exp]
    matrix = distance_matrix(desc)
    for got, want, row in zip(topo.nodes, exp, matrix):
        assert got.cpus == tuple(c for c in want["cpus"] if c in online), f"node {want['id']}"
        # N_CPU: a node with memory but no online CPU is CPU-less for now
        assert got.has_cpus is bool(set(want["cpus"]) & online), f"node {want['id']}"
        assert got.mem_total_bytes == want["mem_bytes"], f"node {want['id']}"
        assert got.distances == tuple(row), f"node {want['id']}"
        assert topo.node(want["id"]) is got
    with pytest.raises(KeyError):
        topo.node(max(n["id"] for n in exp) + 1)


def check_cpus(desc, topo, online: set[int]):
    cpus = sorted(online)
    assert [c.id for c in topo.cpus] == cpus
    assert topo.online_cpus == tuple(cpus)
    nodes, pkgs = node_of(desc), package_of(desc)
    sib = siblings(desc, online)
    for c in topo.cpus:
        assert c.node == nodes[c.id], f"cpu {c.id}"
        assert c.package == pkgs[c.id], f"cpu {c.id}"
        assert topo.cores[c.core] == sib[c.id], f"cpu {c.id}"
        assert c.id in topo.l3[c.l3], f"cpu {c.id}"
    # one core per sibling group, no core twice, no CPU in two cores
    assert sorted(topo.cores) == sorted(set(sib.values()))
    # core_id: shared by siblings, distinct between cores of one package
    by_core = {}
    for c in topo.cpus:
        by_core.setdefault((c.package, c.core_id), set()).add(c.id)
    assert sorted(tuple(sorted(v)) for v in by_core.values()) == sorted(set(sib.values()))
    # L3 domains: as described, each CPU's index pointing at its own
    assert set(topo.l3) == l3_domains(desc, online)
    assert len(topo.l3) == len(set(topo.l3))
    for dom_index, dom in enumerate(topo.l3):
        assert {c.id for c in topo.cpus if c.l3 == dom_index} == set(dom)


def check_allowed(desc, topo, allowed_cpus=None):
    a = ref.allowed(desc)
    assert topo.allowed_cpus == tuple(a["cpus"] if allowed_cpus is None else allowed_cpus)
    assert topo.allowed_mems == tuple(a["mems"])


def check_pci(desc, topo, online: list[int], numa_override: dict | None = None):
    funcs = functions(desc)
    assert [f.address for f in topo.pci] == sorted(funcs, key=bdf_key)
    for f in topo.pci:
        info = funcs[f.address]
        dev, parents = info["dev"], info["parents"]
        numa = (numa_override or {}).get(f.address, info["numa"])
        want_numa = None if numa < 0 else numa
        assert f.vendor == int(dev["vendor"], 16), f.address
        assert f.device == int(dev["device"], 16), f.address
        assert f.class_code == pci_class(dev), f.address
        assert f.numa_node == want_numa, f.address
        assert f.parent == (parents[-1]["bdf"] if parents else None), f.address
        assert f.host_bridge == info["root"].rsplit("/", 1)[-1], f.address
        assert f.depth == len(parents), f.address
        assert f.is_bridge is (dev["kind"] == "bridge"), f.address
        assert f.path == "/sys/devices/" + "/".join(
            [info["root"], *(p["bdf"] for p in parents), f.address]), f.address
        assert f.local_cpus == local_cpus(desc, want_numa, online), f.address


def check_gpus(desc, topo, online: list[int], numa_override: dict | None = None,
               uuids: dict | None = None):
    exp = ref.gpus(desc)
    for g in exp:
        if g["bdf"] in (numa_override or {}):
            n = numa_override[g["bdf"]]
            g["numa"] = None if n < 0 else n
    for seq in (topo.all_gpus, topo.gpus):   # no CUDA_VISIBLE_DEVICES: the same
        assert [g.pci_address for g in seq] == [g["bdf"] for g in exp]
        for i, (got, want) in enumerate(zip(seq, exp)):
            assert got.index == i and got.physical_index == i
            assert got.numa_node == want["numa"], got.pci_address
            assert got.device == int(want["device"], 16), got.pci_address
            assert got.local_cpus == local_cpus(desc, want["numa"], online), got.pci_address
            assert got.uuid == (uuids or {}).get(got.pci_address), got.pci_address
    for i, want in enumerate(exp):
        assert topo.gpu(i).pci_address == want["bdf"]
        assert topo.gpu(want["bdf"]).index == i
    with pytest.raises(KeyError):
        topo.gpu(len(exp))


def check_nics(desc, topo, numa_override: dict | None = None):
    exp = ref.nics(desc)
    assert [n.name for n in topo.nics] == [n["name"] for n in exp]
    for i, (got, want) in enumerate(zip(topo.nics, exp)):
        numa = (numa_override or {}).get(want["bdf"])
        want_numa = want["numa"] if numa is None else (None if numa < 0 else numa)
        assert got.pci_address == want["bdf"], got.name
        assert got.numa_node == want_numa, got.name
        assert got.netdev == want["netdev"], got.name
        assert got.virtual is False, got.name
        assert [p.port for p in got.ports] == list(range(1, want["ports"] + 1)), got.name
        dev = functions(desc)[want["bdf"]]["dev"]
        for p in got.ports:
            assert p.state == want["state"], got.name
            assert p.phys_state == phys_state(want["state"]), got.name
            assert p.link_layer == want["link_layer"], got.name
            assert p.rate_gbps == want["rate_gbps"], got.name
            assert p.rate == dev["rate"], got.name
        assert topo.nic(i) is got and topo.nic(want["name"]) is got


def check_classes(desc, topo, classes: dict | None = None):
    """Every GPU x NIC pair: distance(), the numpy matrix and their agreement
    with reference.distance_class (or with ``classes`` where given)."""
    gs, ns = ref.gpus(desc), ref.nics(desc)
    want = np.zeros((len(gs), len(ns)), dtype=np.int64)
    for i, g in enumerate(gs):
        for j, n in enumerate(ns):
            name = (classes or {}).get((g["bdf"], n["name"])) or \
                ref.distance_class(desc, g["bdf"], n["name"])
            cls = DistanceClass[name]
            want[i, j] = int(cls)
            assert topo.distance(g["bdf"], n["name"]) is cls, (g["bdf"], n["name"])
            assert topo.distance(i, j) is cls
            assert str(topo.distance(topo.gpus[i], topo.nics[j])) == name
    m = topo.gpu_nic_distances
    assert isinstance(m, np.ndarray)
    assert m.shape == (len(gs), len(ns))
    assert m.dtype.kind == "i"
    np.testing.assert_array_equal(m, want)
    return want


# --------------------------------------------------------------------------
# every description (the five machines and the synthetic one)
# --------------------------------------------------------------------------


def test_nodes(described):
    topo = numabind.topology(described.root)
    check_nodes(described.desc, topo, set(present_cpus(described.desc)))


def test_cpus_cores_l3(described):
    topo = numabind.topology(described.root)
    check_cpus(described.desc, topo, set(present_cpus(described.desc)))


def test_allowed(described):
    check_allowed(described.desc, numabind.topology(described.root))


def test_pci_functions(described):
    topo = numabind.topology(described.root)
    check_pci(described.desc, topo, present_cpus(described.desc))


def test_gpus(described):
    topo = numabind.topology(described.root)
    check_gpus(described.desc, topo, present_cpus(described.desc))


def test_nics(described):
    check_nics(described.desc, numabind.topology(described.root))


def test_gpu_nic_classes(described):
    check_classes(described.desc, numabind.topology(described.root))


def test_expected_section(machine):
    """The description's own `expected` GPUs (bdf, numa) in CUDA order."""
    topo = numabind.topology(machine.root)
    want = machine.desc["expected"]["gpus"]
    assert [(g.pci_address, g.numa_node) for g in topo.gpus] == [(g["bdf"], g["numa"]) for g in want]


def test_fsroot_and_env(described, monkeypatch):
    topo = numabind.topology(described.root)
    assert topo.live is False
    assert os.path.realpath(topo.fsroot) == os.path.realpath(described.root)
    # NUMABIND_FSROOT stands in for the argument
    monkeypatch.setenv("NUMABIND_FSROOT", str(described.root))
    again = numabind.topology()
    assert again.live is False
    assert again.to_dict() == topo.to_dict()


def test_numa_distances_matrix(described):
    topo = numabind.topology(described.root)
    a = topo.numa_distances
    k = len(described.desc["cpu"]["nodes"])
    assert isinstance(a, np.ndarray)
    assert a.shape == (k, k)
    assert a.dtype.kind == "i"
    np.testing.assert_array_equal(a, np.array(distance_matrix(described.desc)))
    assert not a.flags.writeable
    with pytest.raises(ValueError):
        a[0, 0] = 99
    assert topo.numa_distances[0, 0] == distance_matrix(described.desc)[0][0]


def test_gpu_nic_matrix_read_only(described):
    topo = numabind.topology(described.root)
    m = topo.gpu_nic_distances
    assert not m.flags.writeable
    if m.size:
        with pytest.raises(ValueError):
            m[0, 0] = 1
    check_classes(described.desc, topo)   # unchanged by the attempts


@pytest.mark.parametrize("attr", ["numa_distances", "gpu_nic_distances"])
def test_matrices_cannot_be_made_writeable(tree, attr):
    topo = numabind.topology(tree("dgx-h100"))
    with pytest.raises(ValueError):
        getattr(topo, attr).flags.writeable = True


def test_topology_is_immutable(described):
    topo = numabind.topology(described.root)
    for name in ("nodes", "cpus", "gpus", "nics", "pci", "allowed_cpus", "fsroot"):
        with pytest.raises(dataclasses.FrozenInstanceError):
            setattr(topo, name, ())
    with pytest.raises(dataclasses.FrozenInstanceError):
        topo.new_attribute = 1
    with pytest.raises(dataclasses.FrozenInstanceError):
        del topo.cpus
    with pytest.raises(dataclasses.FrozenInstanceError):
        topo.nodes[0].id = 7
    with pytest.raises(dataclasses.FrozenInstanceError):
        topo.cpus[0].node = 7
    with pytest.raises(dataclasses.FrozenInstanceError):
        topo.pci[0].numa_node = 7
    for seq in (topo.nodes, topo.cpus, topo.cores, topo.l3, topo.pci, topo.gpus,
                topo.all_gpus, topo.nics, topo.online_cpus, topo.allowed_cpus,
                topo.allowed_mems, topo.nodes[0].cpus, topo.nodes[0].distances):
        assert isinstance(seq, tuple)
    if topo.gpus:
        with pytest.raises(dataclasses.FrozenInstanceError):
            topo.gpus[0].numa_node = 7
    if topo.nics:
        with pytest.raises(dataclasses.FrozenInstanceError):
            topo.nics[0].ports[0].state = "DOWN"
    # after all the attempts, still the described machine
    check_gpus(described.desc, topo, present_cpus(described.desc))


def test_to_dict(described):
    desc = described.desc
    topo = numabind.topology(described.root)
    d = json.loads(json.dumps(topo.to_dict()))
    gs, ns = ref.gpus(desc), ref.nics(desc)
    assert [g["pci_address"] for g in d["gpus"]] == [g["bdf"] for g in gs]
    assert [g["pci_address"] for g in d["all_gpus"]] == [g["bdf"] for g in gs]
    for got, want in zip(d["gpus"], gs):
        assert "numa_node" in got and got["numa_node"] == want["numa"]   # null when unknown
        assert got["distances"] == {n["name"]: ref.distance_class(desc, want["bdf"], n["name"])
                                    for n in ns}
    assert [n["name"] for n in d["nics"]] == [n["name"] for n in ns]
    assert [n["numa_node"] for n in d["nics"]] == [n["numa"] for n in ns]
    assert [n["id"] for n in d["nodes"]] == [n["id"] for n in ref.nodes(desc)]
    assert [n["distances"] for n in d["nodes"]] == distance_matrix(desc)
    assert d["allowed_cpus"] == ref.allowed(desc)["cpus"]
    assert d["allowed_mems"] == ref.allowed(desc)["mems"]
    assert d["online_cpus"] == present_cpus(desc)
    assert [p["address"] for p in d["pci"]] == sorted(functions(desc), key=bdf_key)
    assert d["live"] is False
    # JSON's null for unknown NUMA, never a number
    text = json.dumps(topo.to_dict())
    for g in gs:
        if g["numa"] is None:
            assert re.search(r'"pci_address": "%s", "numa_node": null' % re.escape(g["bdf"]),
                             text)


# --------------------------------------------------------------------------
# writer options: soft-RoCE, CPU-less nodes, numa_override, offline, cgroup
# --------------------------------------------------------------------------


def test_soft_roce_placed_through_its_netdev(tree, synthetic):
    # eno2 is a plain Ethernet function (no RDMA of its own) on NUMA node 1
    root = tree(synthetic, soft_roce={"rxe0": "eno2"})
    topo = numabind.topology(root)
    rxe = topo.nic("rxe0")
    assert rxe.virtual is True
    assert rxe.netdev == "eno2"
    assert rxe.pci_address == "0000:80:04.0"
    assert rxe.numa_node == 1
    assert [(p.port, p.state, p.phys_state, p.link_layer, p.rate_gbps) for p in rxe.ports] == \
        [(1, "ACTIVE", 5, "Ethernet", 10.0)]
    # in PCI order among the hardware NICs; these are unchanged
    want = ref.nics(synthetic)
    order = sorted([(n["bdf"], n["name"]) for n in want] + [("0000:80:04.0", "rxe0")],
                   key=lambda t: bdf_key(t[0]))
    assert [n.name for n in topo.nics] == [name for _, name in order]
    for w in want:
        n = topo.nic(w["name"])
        assert (n.pci_address, n.numa_node, n.virtual) == (w["bdf"], w["numa"], False)
    # classes as if the NIC sat on eno2's function
    placed = copy.deepcopy(synthetic)
    functions(placed)["0000:80:04.0"]["dev"]["ibdev"] = "rxe0"
    for g in ref.gpus(synthetic):
        assert topo.distance(g["bdf"], "rxe0").name == \
            ref.distance_class(placed, g["bdf"], "rxe0"), g["bdf"]
    assert topo.distance("0000:81:00.0", "rxe0") is DistanceClass.PHB


def test_soft_roce_over_a_rdma_nics_netdev(tree, synthetic):
    # rxe over mlx5_2's netdev: same function and node as mlx5_2
    root = tree(synthetic, soft_roce={"rxe1": "enp130s0f0np0"})
    topo = numabind.topology(root)
    rxe = topo.nic("rxe1")
    assert (rxe.virtual, rxe.pci_address, rxe.numa_node, rxe.netdev) == \
        (True, "0000:82:00.0", 1, "enp130s0f0np0")
    for g in topo.gpus:
        assert topo.distance(g, "rxe1") is topo.distance(g, "mlx5_2")


def test_soft_roce_over_numa_unknown_netdev(tree):
    desc = st.load("h100x4-flat-vm")
    topo = numabind.topology(tree(desc, soft_roce={"rxe0": "eth0"}))
    rxe = topo.nic("rxe0")
    assert (rxe.virtual, rxe.pci_address, rxe.numa_node) == (True, "0000:00:03.0", None)
    for g in topo.gpus:
        # one host bridge, no common bridge: PHB per reference, whatever the numa
        assert topo.distance(g, rxe) is DistanceClass.PHB


def test_soft_roce_over_a_netdev_without_device(tree, synthetic):
    """rxe over a netdev with no PCI function (lo here; a bond or veth in
    life): no address, locality unknown, SYS to every GPU, listed last."""
    topo = numabind.topology(tree(synthetic, soft_roce={"rxe9": "lo"}))
    rxe = topo.nics[-1]
    assert (rxe.name, rxe.virtual, rxe.pci_address, rxe.numa_node, rxe.netdev) == \
        ("rxe9", True, None, None, "lo")
    assert [n.name for n in topo.nics[:-1]] == [n["name"] for n in ref.nics(synthetic)]
    for g in topo.gpus:
        assert topo.distance(g, "rxe9") is DistanceClass.SYS
    check_classes(synthetic, numabind.topology(tree(synthetic)))


def test_cpu_less_node(tree, synthetic):
    topo = numabind.topology(tree(synthetic))
    n3 = topo.node(3)
    assert n3.has_cpus is False
    assert n3.cpus == ()
    assert n3.mem_total_bytes == 2048 << 20
    assert all(c.node != 3 for c in topo.cpus)
    assert 3 in topo.allowed_mems
    assert all(n.has_cpus for n in topo.nodes if n.id != 3)


def test_cpu_less_node_only_memory(tree):
    """A two-socket box with one extra CPU-less node and no SLIT in the
    description: 10/21 defaults over three nodes."""
    desc = st.load("plain-2cpu-no-gpu")
    desc["name"] = "plain-plus-memory-node"
    desc["cpu"]["nodes"].append({"id": 1, "cpus": "", "mem_mib": 1024, "kind": "gpu-memory"})
    desc["allowed"] = {"cpus": "0-1", "mems": "0-1"}
    topo = numabind.topology(tree(desc))
    check_nodes(desc, topo, {0, 1})
    check_cpus(desc, topo, {0, 1})
    check_allowed(desc, topo)
    assert [n.has_cpus for n in topo.nodes] == [True, False]
    np.testing.assert_array_equal(topo.numa_distances, [[10, 21], [21, 10]])


@pytest.mark.parametrize("target", ["0000:81:00.0", "0001:00:00.0"])
def test_numa_override_minus_one_is_none(tree, synthetic, target):
    override = {target: -1}
    topo = numabind.topology(tree(synthetic, numa_override=override))
    online = present_cpus(synthetic)
    f = next(p for p in topo.pci if p.address == target)
    assert f.numa_node is None
    assert topo.gpu(target).numa_node is None          # None, never 0
    assert topo.gpu(target).local_cpus == tuple(online)
    check_pci(synthetic, topo, online, numa_override=override)
    check_gpus(synthetic, topo, online, numa_override=override)
    # a pair that is NODE with a known node becomes SYS; same-root classes stay
    classes = {}
    for n in ref.nics(synthetic):
        c = ref.distance_class(synthetic, target, n["name"])
        if c == "NODE":
            classes[(target, n["name"])] = "SYS"
    check_classes(synthetic, topo, classes)
    assert topo.to_dict()["gpus"][[g.pci_address for g in topo.gpus].index(target)]["numa_node"] is None


def test_numa_override_nic(tree, synthetic):
    override = {"0000:00:05.0": -1}     # mlx5_1, on the GPUs' node 0 root
    topo = numabind.topology(tree(synthetic, numa_override=override))
    assert topo.nic("mlx5_1").numa_node is None
    check_nics(synthetic, topo, numa_override=override)
    # 0001:00:00.0 (other root, node 0) was NODE to mlx5_1; now unknown -> SYS
    assert topo.distance("0001:00:00.0", "mlx5_1") is DistanceClass.SYS
    # same root: still PHB
    assert topo.distance("0000:03:00.0", "mlx5_1") is DistanceClass.PHB


def test_numa_override_to_another_node(tree, synthetic):
    override = {"0001:00:00.0": 1}
    topo = numabind.topology(tree(synthetic, numa_override=override))
    g = topo.gpu("0001:00:00.0")
    assert g.numa_node == 1
    assert g.local_cpus == (2, 3, 6, 7)
    assert topo.distance(g, "mlx5_0") is DistanceClass.SYS      # node 0 NIC
    assert topo.distance(g, "mlx5_2") is DistanceClass.NODE     # node 1 NIC, other root


@pytest.mark.parametrize("keep", [False, True], ids=["kernel", "keep-offline-in-node"])
@pytest.mark.parametrize("offline", ["3-4", "0", "2-3,6-7"])
def test_offline_cpus(tree, synthetic, keep, offline):
    """3-4: a core loses one thread; 0: the first CPU of the box and of a
    core; 2-3,6-7: all of node 1, which is left with no CPU."""
    topo = numabind.topology(tree(synthetic, offline_cpus=offline, keep_offline_in_node=keep))
    offline = set(ref.cpulist(offline))
    online = set(present_cpus(synthetic)) - offline
    assert [c.id for c in topo.cpus] == sorted(online)
    assert topo.online_cpus == tuple(sorted(online))
    check_nodes(synthetic, topo, online)
    check_cpus(synthetic, topo, online)


@pytest.mark.parametrize("keep", [False, True], ids=["kernel", "keep-offline-in-node"])
def test_offline_cpus_not_local_to_devices(tree, synthetic, keep):
    offline = {3, 4}
    topo = numabind.topology(tree(synthetic, offline_cpus="3-4", keep_offline_in_node=keep))
    online = set(present_cpus(synthetic)) - offline
    for f in topo.pci:
        assert not offline & set(f.local_cpus), f.address
    for g in topo.all_gpus:
        assert not offline & set(g.local_cpus), g.pci_address
    check_pci(synthetic, topo, sorted(online))
    check_gpus(synthetic, topo, sorted(online))


def test_offline_cpus_not_allowed(tree, synthetic):
    """proc/self/status still lists an offline CPU (as the kernel does for a
    task with no cpuset); a process cannot run there, so it is not allowed."""
    topo = numabind.topology(tree(synthetic, offline_cpus="3-4"))
    assert topo.allowed_cpus == (1, 2, 5, 6)


def test_cgroup_cpus_narrow_allowed(tree, synthetic):
    topo = numabind.topology(tree(synthetic, cgroup_cpus="2-3"))
    assert topo.allowed_cpus == (2, 3)
    assert topo.allowed_mems == (0, 3)
    # the machine itself is unchanged
    check_cpus(synthetic, topo, set(present_cpus(synthetic)))


def test_cgroup_mems_narrow_allowed(tree, synthetic):
    root = tree.private(synthetic, cgroup_cpus="1-6")
    (root / "sys/fs/cgroup/job/cpuset.mems.effective").write_text("3\n")
    topo = numabind.topology(root)
    assert topo.allowed_mems == (3,)
    assert topo.allowed_cpus == (1, 2, 3, 4, 5, 6)


def test_cgroup_cpuset_is_what_the_process_may_widen_to(tree, synthetic):
    # The description asks for 1-6, the cgroup holds 0-2,7: the kernel leaves
    # the task on 1-2 (its affinity), but it may widen to the whole cpuset,
    # and plans are made from that.
    topo = numabind.topology(tree(synthetic, cgroup_cpus="0-2,7"))
    assert topo.affinity_cpus == (1, 2)
    assert topo.allowed_cpus == (0, 1, 2, 7)


@pytest.mark.parametrize("version", ["cgroup_cpus", "cgroup_v1_cpus"])
def test_a_launchers_binding_does_not_narrow_the_allowed_cpus(tree, synthetic, version):
    # srun --cpu-bind / mpirun's binding: the affinity is one CPU, the cpuset 1-6
    topo = numabind.topology(tree(synthetic, **{version: "1-6"}, affinity_cpus="3"))
    assert topo.affinity_cpus == (3,)
    assert topo.allowed_cpus == (1, 2, 3, 4, 5, 6)
    assert topo.allowed_mems == (0, 3)


def test_without_a_readable_cpuset_the_affinity_is_all_there_is(tree, synthetic):
    topo = numabind.topology(tree(synthetic, affinity_cpus="3"))
    assert topo.allowed_cpus == topo.affinity_cpus == (3,)


def test_a_cpuset_that_does_not_hold_the_affinity_is_not_believed(tree, synthetic):
    # The kernel never shows this; a capture that mixes two processes might.
    root = tree.private(synthetic, cgroup_cpus="1-6")
    (root / "sys/fs/cgroup/job/cpuset.cpus.effective").write_text("7\n")
    topo = numabind.topology(root)
    assert topo.allowed_cpus == topo.affinity_cpus == (1, 2, 3, 4, 5, 6)


def test_a_cgroup_without_the_cpuset_controller_inherits_its_parents(tree, synthetic):
    root = tree.private(synthetic, cgroup_cpus="1-6", affinity_cpus="2")
    for name in ("cpuset.cpus", "cpuset.cpus.effective", "cpuset.mems", "cpuset.mems.effective"):
        (root / "sys/fs/cgroup/job" / name).unlink()
    (root / "sys/fs/cgroup/cpuset.cpus.effective").write_text("1-5\n")
    topo = numabind.topology(root)
    assert topo.allowed_cpus == (1, 2, 3, 4, 5)


# --------------------------------------------------------------------------
# CUDA_VISIBLE_DEVICES
# --------------------------------------------------------------------------

SYN_UUIDS = {   # one shared prefix "GPU-5e1f" (03:00.0 and 07:00.0) to test ambiguity
    "0000:03:00.0": "GPU-5e1f0a2b-1111-2222-3333-444455556666",
    "0000:07:00.0": "GPU-5e1f9c8d-7777-8888-9999-aaaabbbbcccc",
    "0000:81:00.0": "GPU-a0b1c2d3-e4f5-0617-2839-4a5b6c7d8e9f",
    "0000:c0:00.0": "GPU-0badc0de-0000-1111-2222-333344445555",
    "0001:00:00.0": "GPU-feedface-cafe-beef-0000-123456789abc",
}


@pytest.fixture
def syn_root(tree, synthetic):
    return tree(synthetic, gpu_uuids=SYN_UUIDS)


def physical(synthetic):
    return [g["bdf"] for g in ref.gpus(synthetic)]


def check_visible(topo, synthetic, want_physical: list[int]):
    phys = physical(synthetic)
    assert [g.pci_address for g in topo.all_gpus] == phys
    assert [g.physical_index for g in topo.all_gpus] == list(range(len(phys)))
    assert [g.pci_address for g in topo.gpus] == [phys[i] for i in want_physical]
    assert [g.index for g in topo.gpus] == list(range(len(want_physical)))
    assert [g.physical_index for g in topo.gpus] == want_physical
    for g in topo.gpus:
        assert g.uuid == SYN_UUIDS[g.pci_address]
    # the class matrix follows the visible order
    m = topo.gpu_nic_distances
    assert m.shape == (len(want_physical), len(topo.nics))
    for i, p in enumerate(want_physical):
        for j, n in enumerate(topo.nics):
            assert m[i, j] == DistanceClass[ref.distance_class(synthetic, phys[p], n.name)]
            assert topo.distance(i, n.name) == m[i, j]
    d = topo.to_dict()
    assert [g["pci_address"] for g in d["gpus"]] == [phys[i] for i in want_physical]


def test_uuids_without_cvd(syn_root, synthetic):
    topo = numabind.topology(syn_root)
    check_visible(topo, synthetic, [0, 1, 2, 3, 4])
    check_gpus(synthetic, topo, present_cpus(synthetic), uuids=SYN_UUIDS)


@pytest.mark.parametrize("cvd, want", [
    ("3,1", [3, 1]),
    ("4,0,2", [4, 0, 2]),
    ("2", [2]),
    ("0,1,2,3,4", [0, 1, 2, 3, 4]),
    (" 1 , 0 ", [1, 0]),
])
def test_cvd_indices(syn_root, synthetic, monkeypatch, cvd, want):
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", cvd)
    check_visible(numabind.topology(syn_root), synthetic, want)


@pytest.mark.parametrize("cvd, want", [
    ("GPU-feedface-cafe-beef-0000-123456789abc,GPU-a0b1c2d3-e4f5-0617-2839-4a5b6c7d8e9f", [4, 2]),
    ("GPU-0bad,GPU-5e1f9", [3, 1]),          # unique prefixes
    ("GPU-a0b1c2d3", [2]),
    ("GPU-5e1f0,3", [0, 3]),                 # uuid and index mixed
])
def test_cvd_uuids(syn_root, synthetic, monkeypatch, cvd, want):
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", cvd)
    check_visible(numabind.topology(syn_root), synthetic, want)


@pytest.mark.parametrize("cvd, entry", [
    ("0,5", "5"),                                      # out of range
    ("7", "7"),
    ("1,GPU-12345678", "GPU-12345678"),                # no such uuid
    ("MIG-5e1f0a2b-1111-2222-3333-444455556666", "MIG-5e1f0a2b-1111-2222-3333-444455556666"),
    ("0,MIG-GPU-5e1f0a2b-1111-2222-3333-444455556666/1/0",
     "MIG-GPU-5e1f0a2b-1111-2222-3333-444455556666/1/0"),
    ("abc", "abc"),
    ("-1", "-1"),
    ("1,1", "1"),                                      # CUDA: a repeated GPU is invalid
    ("2,GPU-feedface,4", "4"),                         # uuid of GPU 4, then 4 again
])
def test_cvd_bad_entry(syn_root, monkeypatch, cvd, entry):
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", cvd)
    with pytest.raises(EnvironmentValueError) as ei:
        numabind.topology(syn_root)
    assert f"'{entry}'" in str(ei.value)
    assert isinstance(ei.value, TopologyError) and isinstance(ei.value, ValueError)
    assert ei.value.errno == errno.EINVAL


def test_cvd_long_entry_not_truncated(syn_root, monkeypatch):
    entry = "0" * 200 + "7"
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", entry)
    with pytest.raises(EnvironmentValueError):
        numabind.topology(syn_root)


def test_cvd_ambiguous_uuid_prefix(syn_root, monkeypatch):
    """GPU-5e1f prefixes two GPUs' UUIDs: CUDA refuses such an entry."""
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "GPU-5e1f")
    with pytest.raises(EnvironmentValueError) as ei:
        numabind.topology(syn_root)
    assert "GPU-5e1f" in str(ei.value)


def test_cvd_uuid_without_uuid_file(tree, synthetic, monkeypatch):
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "GPU-a0b1c2d3")
    with pytest.raises(EnvironmentValueError) as ei:
        numabind.topology(tree(synthetic))
    assert "GPU-a0b1c2d3" in str(ei.value)


def test_cvd_empty_hides_every_gpu(syn_root, synthetic, monkeypatch):
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "")
    topo = numabind.topology(syn_root)
    check_visible(topo, synthetic, [])
    assert topo.gpu_nic_distances.shape == (0, len(ref.nics(synthetic)))
    assert topo.to_dict()["gpus"] == []
    with pytest.raises(KeyError):
        topo.gpu(0)


def test_cvd_on_real_machine(tree, monkeypatch):
    desc = st.load("dgx-h100")
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "4,5,6,7")
    topo = numabind.topology(tree("dgx-h100"))
    exp = ref.gpus(desc)[4:]
    assert [(g.pci_address, g.numa_node) for g in topo.gpus] == [(g["bdf"], g["numa"]) for g in exp]
    mat = ref.class_matrix(desc)
    for g in topo.gpus:
        assert {n.name: topo.distance(g, n).name for n in topo.nics} == mat[g.pci_address]


# --------------------------------------------------------------------------
# the same machine, other ways the kernel shows it
# --------------------------------------------------------------------------


@pytest.mark.parametrize("options", [
    {"possible_cpus": "0-99"},          # hotplug-capable VM: 100-bit masks, 4 groups
    {"possible_cpus": "0-8191"},
    {"keep_offline_in_node": True},     # (no CPU offline: no difference)
], ids=["possible-100", "possible-8192", "keep-no-offline"])
def test_same_machine_other_widths(tree, synthetic, options):
    topo = numabind.topology(tree(synthetic, **options))
    online = present_cpus(synthetic)
    check_nodes(synthetic, topo, set(online))
    check_cpus(synthetic, topo, set(online))
    check_allowed(synthetic, topo)
    check_pci(synthetic, topo, online)
    check_gpus(synthetic, topo, online)
    check_nics(synthetic, topo)
    check_classes(synthetic, topo)


@pytest.mark.parametrize("possible", [None, "0-99"])
def test_local_cpus_mask_fallback(tree, synthetic, possible):
    """Without local_cpulist (old kernels) a function's CPUs come from the
    local_cpus mask."""
    root = tree.private(synthetic, **({"possible_cpus": possible} if possible else {}))
    n = 0
    for link in (root / "sys/bus/pci/devices").iterdir():
        (link / "local_cpulist").unlink()
        n += 1
    assert n == len(functions(synthetic))
    topo = numabind.topology(root)
    check_pci(synthetic, topo, present_cpus(synthetic))
    check_gpus(synthetic, topo, present_cpus(synthetic))


def test_big_mask_fallback(tree):
    """The same on a 224-CPU box (seven 32-bit groups)."""
    desc = st.load("dgx-h100")
    root = tree.private(desc)
    for link in (root / "sys/bus/pci/devices").iterdir():
        (link / "local_cpulist").unlink()
    check_pci(desc, numabind.topology(root), present_cpus(desc))


def test_thread_siblings_fallback(tree, synthetic):
    """Kernels before 5.x have no core_cpus_list: thread_siblings_list."""
    root = tree.private(synthetic)
    for topo_dir in (root / "sys/devices/system/cpu").glob("cpu[0-9]*/topology"):
        (topo_dir / "core_cpus_list").unlink()
        (topo_dir / "core_cpus").unlink()
    check_cpus(synthetic, numabind.topology(root), set(present_cpus(synthetic)))


def test_kernel_without_numa(tree):
    """CONFIG_NUMA=n: no sys/devices/system/node; one node 0 with every CPU."""
    desc = st.load("h100x4-flat-vm")
    root = tree.private(desc)
    shutil.rmtree(root / "sys/devices/system/node")
    topo = numabind.topology(root)
    assert [n.id for n in topo.nodes] == [0]
    assert topo.nodes[0].cpus == tuple(range(64))
    assert topo.nodes[0].distances == (10,)
    assert all(c.node == 0 for c in topo.cpus)
    assert [g.numa_node for g in topo.gpus] == [None] * 4


def test_no_pci_bus(tree):
    """A container or VM without sys/bus/pci: no PCI, no GPUs, not an error."""
    desc = st.load("plain-2cpu-no-gpu")
    root = tree.private(desc)
    shutil.rmtree(root / "sys/bus/pci")
    topo = numabind.topology(root)
    assert (topo.pci, topo.gpus, topo.all_gpus) == ((), (), ())
    check_cpus(desc, topo, {0, 1})


def test_link_out_of_the_root(tree, synthetic):
    """An absolute link that leaves the root would describe this host, not
    the tree: an error naming the link, never a silent read of /sys."""
    root = tree.private(synthetic)
    link = root / "sys/bus/pci/devices/0000:81:00.0"
    link.unlink()
    os.symlink("/sys/devices/system", link)
    with pytest.raises(TopologyError) as ei:
        numabind.topology(root)
    assert ei.value.errno == errno.EXDEV
    assert "0000:81:00.0" in str(ei.value)


def test_dangling_pci_link(tree, synthetic):
    """Either skip the vanished function or say which link is broken."""
    root = tree.private(synthetic)
    os.symlink("../../../devices/pci0000:80/0000:80:09.0", root / "sys/bus/pci/devices/0000:80:09.0")
    try:
        topo = numabind.topology(root)
    except TopologyError as e:
        assert "0000:80:09.0" in str(e), str(e)
    else:
        check_pci(synthetic, topo, present_cpus(synthetic))


def test_absolute_link_inside_the_root(tree, synthetic):
    """An absolute link that stays inside the root is fine."""
    root = tree.private(synthetic)
    link = root / "sys/bus/pci/devices/0000:81:00.0"
    target = os.path.realpath(link)
    link.unlink()
    os.symlink(target, link)
    topo = numabind.topology(root)
    check_pci(synthetic, topo, present_cpus(synthetic))


# --------------------------------------------------------------------------
# errors
# --------------------------------------------------------------------------


def test_missing_root(tmp_path, monkeypatch):
    missing = tmp_path / "no-such-root"
    with pytest.raises(TopologyError) as ei:
        numabind.topology(missing)
    assert str(missing) in str(ei.value)
    assert ei.value.errno == errno.ENOENT
    monkeypatch.setenv("NUMABIND_FSROOT", str(missing))
    with pytest.raises(TopologyError) as ei:
        numabind.topology()
    assert str(missing) in str(ei.value)


def test_root_without_sysfs(tmp_path):
    (tmp_path / "proc").mkdir()
    with pytest.raises(TopologyError) as ei:
        numabind.topology(tmp_path)
    assert str(tmp_path) in str(ei.value)
    assert ei.value.errno == errno.ENOENT


def test_root_is_a_file(tmp_path):
    f = tmp_path / "file"
    f.write_text("x\n")
    with pytest.raises(TopologyError) as ei:
        numabind.topology(f)
    assert str(f) in str(ei.value)


@pytest.fixture
def fresh(tree, synthetic):
    """A private synthetic tree this test may damage."""
    return tree.private(synthetic, gpu_uuids=SYN_UUIDS)


@pytest.mark.parametrize("rel, value", [
    ("sys/bus/pci/devices/0000:81:00.0/numa_node", "garbage"),
    ("sys/bus/pci/devices/0000:81:00.0/numa_node", "1x"),
    ("sys/bus/pci/devices/0000:81:00.0/numa_node", ""),
    ("sys/bus/pci/devices/0000:03:00.0/vendor", "0xzz"),
    ("sys/bus/pci/devices/0000:03:00.0/class", "nonsense"),
    ("sys/devices/system/node/node1/cpulist", "2-x"),
    ("sys/devices/system/node/node0/cpulist", "5-1"),
    ("sys/devices/system/node/node0/distance", "10 abc 21"),
    ("sys/devices/system/node/node0/distance", "10 21"),          # short row (3 nodes)
    ("sys/devices/system/node/node0/distance", "10 21 40 7"),     # long row
    ("sys/devices/system/node/online", "0,q"),
    ("sys/devices/system/cpu/online", "0-7garbage"),
    ("sys/devices/system/cpu/cpu2/topology/physical_package_id", "one"),
    ("sys/devices/system/cpu/cpu2/topology/core_cpus_list", "2,zz"),
    ("sys/devices/system/cpu/cpu2/cache/index3/shared_cpu_list", "2-"),
    ("sys/devices/system/cpu/cpu2/cache/index3/level", "three"),
    ("sys/bus/pci/devices/0000:82:00.0/local_cpulist", "2-3,q"),
    ("sys/class/infiniband/mlx5_2/ports/1/rate", "fast"),
    ("numabind/gpu-uuids", "0000:03:00.0 5e1f0a2b"),
    ("sys/class/infiniband/mlx5_2/ports/1/state", "four: ACTIVE"),
])
def test_malformed_value(fresh, rel, value):
    path = fresh / rel
    assert path.is_file()
    if path.name in ("vendor", "device", "class"):
        (path.parent / "uevent").unlink()    # else its PCI_ID and PCI_CLASS are read (test_plan_only.py)
    path.write_text(value + "\n")
    with pytest.raises(TopologyError) as ei:
        numabind.topology(fresh)
    msg = str(ei.value)
    # names the file (by its own name and the directory holding it) and the value
    parent, name = os.path.split(rel)
    assert name in msg, msg
    assert os.path.basename(parent) in msg or \
        os.path.basename(os.path.realpath(fresh / parent)) in msg, msg
    if value:
        assert value in msg, msg
    assert ei.value.errno == errno.EINVAL
    assert not isinstance(ei.value, EnvironmentValueError)


def test_malformed_status(fresh):
    status = fresh / "proc/self/status"
    text = status.read_text()
    status.write_text(re.sub(r"Cpus_allowed_list:\t[^\n]*", "Cpus_allowed_list:\t1-z", text))
    with pytest.raises(TopologyError) as ei:
        numabind.topology(fresh)
    assert "1-z" in str(ei.value)
    assert "status" in str(ei.value)


LOOP_SCRIPT = textwrap.dedent("""
    import json, sys, numabind
    try:
        numabind.topology(sys.argv[1])
    except numabind.TopologyError as e:
        print(json.dumps({"errno": e.errno, "msg": str(e)}))
    else:
        print(json.dumps({"errno": None}))
""")


def run_isolated(root: Path) -> dict:
    """numabind.topology(root) in a child, so that a hang fails the test
    instead of the session."""
    p = subprocess.run([sys.executable, "-c", LOOP_SCRIPT, str(root)], capture_output=True,
                       text=True, timeout=30, env={k: v for k, v in os.environ.items()
                                                   if k not in ("NUMABIND_FSROOT",
                                                                "CUDA_VISIBLE_DEVICES")})
    assert p.returncode == 0, p.stderr
    return json.loads(p.stdout)


def test_symlink_loop_in_pci_devices(fresh):
    devs = fresh / "sys/bus/pci/devices"
    os.symlink("0000:ff:00.1", devs / "0000:ff:00.0")
    os.symlink("0000:ff:00.0", devs / "0000:ff:00.1")
    out = run_isolated(fresh)
    assert out["errno"] == errno.ELOOP, out
    assert "0000:ff:00." in out["msg"], out


def test_self_symlink_in_pci_devices(fresh):
    devs = fresh / "sys/bus/pci/devices"
    os.symlink("0000:fe:00.0", devs / "0000:fe:00.0")
    out = run_isolated(fresh)
    assert out["errno"] == errno.ELOOP, out


def test_directory_loop_in_pci_tree(fresh, synthetic):
    """A link inside a device dir pointing back up (as kernfs has plenty of:
    driver/, subsystem/, ...) must not be walked into forever."""
    gpu = Path(os.path.realpath(fresh / "sys/bus/pci/devices/0000:81:00.0"))
    os.symlink("..", gpu / "up")
    assert run_isolated(fresh) == {"errno": None}
    topo = numabind.topology(fresh)
    check_pci(synthetic, topo, present_cpus(synthetic))


# --------------------------------------------------------------------------
# the live host
# --------------------------------------------------------------------------


def _read(path: str) -> str:
    with open(path) as f:
        return f.read().strip()


@pytest.mark.parametrize("env", [None, "", "/"])
def test_live_host(monkeypatch, env):
    if env is not None:
        monkeypatch.setenv("NUMABIND_FSROOT", env)
    topo = numabind.topology()
    assert topo.live is True
    assert topo.fsroot == "/"
    online = ref.cpulist(_read("/sys/devices/system/cpu/online"))
    assert list(topo.online_cpus) == online
    assert [c.id for c in topo.cpus] == online
    assert len(topo.cpus) == os.cpu_count()
    assert topo.allowed_cpus == tuple(sorted(os.sched_getaffinity(0)))
    status = _read("/proc/self/status")
    mems = re.search(r"^Mems_allowed_list:\s*(\S*)", status, re.M).group(1)
    assert list(topo.allowed_mems) == ref.cpulist(mems)

    base = "/sys/devices/system/node"
    if os.path.isdir(base):
        ids = sorted(int(m.group(1)) for e in os.listdir(base)
                     if (m := re.fullmatch(r"node(\d+)", e)))
        assert [n.id for n in topo.nodes] == ids
        assert ids == ref.cpulist(_read(f"{base}/online"))
        for n in topo.nodes:
            d = f"{base}/node{n.id}"
            assert list(n.cpus) == ref.cpulist(_read(f"{d}/cpulist"))
            assert n.has_cpus is bool(n.cpus)
            assert list(n.distances) == [int(x) for x in _read(f"{d}/distance").split()]
            kb = int(re.search(r"MemTotal:\s+(\d+) kB", _read(f"{d}/meminfo")).group(1))
            assert n.mem_total_bytes == kb * 1024
    else:   # a kernel without NUMA: one node 0 holding every CPU
        assert [n.id for n in topo.nodes] == [0]
        assert list(topo.nodes[0].cpus) == online

    for c in topo.cpus:
        t = f"/sys/devices/system/cpu/cpu{c.id}/topology"
        assert c.package == int(_read(f"{t}/physical_package_id"))
        assert c.core_id == int(_read(f"{t}/core_id"))
        assert list(topo.cores[c.core]) == ref.cpulist(_read(f"{t}/thread_siblings_list"))

    pci = "/sys/bus/pci/devices"
    addrs = sorted(os.listdir(pci), key=bdf_key) if os.path.isdir(pci) else []
    assert [f.address for f in topo.pci] == addrs
    nvidia = [a for a in addrs if _read(f"{pci}/{a}/vendor") == "0x10de"
              and int(_read(f"{pci}/{a}/class"), 16) >> 16 == 0x03]
    assert [g.pci_address for g in topo.all_gpus] == nvidia
    for f in topo.pci:
        n = int(_read(f"{pci}/{f.address}/numa_node"))
        assert f.numa_node == (None if n < 0 else n)
        assert f.vendor == int(_read(f"{pci}/{f.address}/vendor"), 16)
        assert f.class_code == int(_read(f"{pci}/{f.address}/class"), 16)
    ib = "/sys/class/infiniband"
    assert sorted(n.name for n in topo.nics) == (sorted(os.listdir(ib)) if os.path.isdir(ib) else [])
    json.dumps(topo.to_dict())


def test_adjacent_smt_siblings(tree):
    """SMT siblings numbered next to each other (0,1 / 2,3: AMD, most VMs):
    each CPU's core and core_id come from its own core, not a neighbour's."""
    desc = st.load("plain-2cpu-no-gpu")
    desc["cpu"]["nodes"][0]["cpus"] = "0-7"
    desc["allowed"]["cpus"] = "0-7"
    root = tree.private(desc)
    for c in range(8):
        topo_dir = root / f"sys/devices/system/cpu/cpu{c}/topology"
        pair = f"{c - c % 2}-{c - c % 2 + 1}\n"
        (topo_dir / "core_cpus_list").write_text(pair)
        (topo_dir / "thread_siblings_list").write_text(pair)
        (topo_dir / "core_id").write_text(f"{c // 2}\n")
    topo = numabind.topology(root)
    assert topo.cores == ((0, 1), (2, 3), (4, 5), (6, 7))
    assert [(c.core, c.core_id) for c in topo.cpus] == [(c // 2, c // 2) for c in range(8)]


def test_unreadable_file_is_named(tree):
    """A read that fails for a reason other than absence names the file."""
    root = tree.private(st.load("plain-2cpu-no-gpu"))
    online = root / "sys/devices/system/cpu/online"
    online.unlink()
    online.mkdir()
    with pytest.raises(TopologyError) as ei:
        numabind.topology(root)
    assert "sys/devices/system/cpu/online" in str(ei.value)
    assert "unknown error" not in str(ei.value)


DRIVER_INFORMATION = """Model: \t\t NVIDIA H100 80GB HBM3
IRQ:   \t\t 91
GPU UUID: \t {uuid}
Video BIOS: \t 96.00.99.00.01
Bus Type: \t PCIe
DMA Size: \t 52 bits
DMA Mask: \t 0xfffffffffffff
Bus Location: \t {bdf}
Device Minor: \t 0
GPU Excluded:\t No
"""


def test_uuids_from_the_nvidia_driver_procfs(tree, synthetic, monkeypatch):
    """/proc/driver/nvidia/gpus/<bdf>/information (the driver's own file, as
    the live host shows it) gives the UUIDs without NVML; a GPU without the
    file keeps none; CUDA_VISIBLE_DEVICES by UUID works from it."""
    root = tree.private(synthetic)
    phys = sorted(SYN_UUIDS)
    with_file = phys[:-1]
    for bdf in with_file:
        d = root / "proc/driver/nvidia/gpus" / bdf
        d.mkdir(parents=True)
        (d / "information").write_text(DRIVER_INFORMATION.format(uuid=SYN_UUIDS[bdf], bdf=bdf))
    topo = numabind.topology(root)
    got = {g.pci_address: g.uuid for g in topo.all_gpus}
    assert got == {bdf: (SYN_UUIDS[bdf] if bdf in with_file else None) for bdf in phys}
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", SYN_UUIDS[with_file[1]][:12])
    assert [g.pci_address for g in numabind.topology(root).gpus] == [with_file[1]]


# --------------------------------------------------------------------------
# real machines' files: older kernels and capture tools (issue 15)
# --------------------------------------------------------------------------


def machine_facts(topo) -> dict:
    """What the CPU and node readers give, without the root's name."""
    d = topo.to_dict()
    return {k: d[k] for k in ("nodes", "cpus", "cores", "l3", "online_cpus", "allowed_cpus", "allowed_mems")}


POWER9_4_14 = {"mask_only": ("shared_cpu", "thread_siblings", "core_siblings"), "pre_5_3_topology": True}


@pytest.mark.parametrize("options", [
    {"mask_only": ("shared_cpu",)},                       # POWER9 on 4.14: L3 from shared_cpu_map
    {"mask_only": ("core_cpus",)},                        # 5.3+ siblings, mask only
    POWER9_4_14,                                          # thread_siblings, core_siblings masks only
    {**POWER9_4_14, "possible_cpus": "0-99"},             # 100-bit masks: four groups
    {**POWER9_4_14, "offline_cpus": "3-4"},
], ids=["shared-cpu-map", "core-cpus-mask", "power9-4.14", "power9-4.14-wide", "power9-4.14-offline"])
def test_a_tree_with_only_masks_reads_as_the_full_tree(tree, synthetic, options):
    full_options = {k: v for k, v in options.items() if k in ("possible_cpus", "offline_cpus")}
    topo = numabind.topology(tree(synthetic, **options))
    assert machine_facts(topo) == machine_facts(numabind.topology(tree(synthetic, **full_options)))
    online = set(present_cpus(synthetic)) - set(st.parse_cpulist(options.get("offline_cpus", "")))
    check_cpus(synthetic, topo, online)
    assert len(topo.l3) == 3                              # the L3 domains, not lost


def test_a_224_cpu_tree_with_only_masks(tree):
    desc = st.load("dgx-h100")                            # seven 32-bit groups per mask
    topo = numabind.topology(tree(desc, **POWER9_4_14))
    check_cpus(desc, topo, set(present_cpus(desc)))
    assert machine_facts(topo) == machine_facts(numabind.topology(tree(desc)))


@pytest.mark.parametrize("rel, value, file", [
    ("sys/devices/system/cpu/cpu0/cache/index3/shared_cpu_map", "zz", "index3/shared_cpu_map"),
    ("sys/devices/system/cpu/cpu0/topology/thread_siblings", "1,", "topology/thread_siblings"),
])
def test_a_malformed_mask_names_the_mask(tree, synthetic, rel, value, file):
    root = tree.private(synthetic, **POWER9_4_14)
    (root / rel).write_text(value + "\n")
    with pytest.raises(TopologyError) as ei:
        numabind.topology(root)
    assert ei.value.errno == errno.EINVAL
    assert file in str(ei.value) and f"'{value}' is not a CPU mask" in str(ei.value)


@pytest.mark.parametrize("offline", ["", "3-4", "0"])
def test_without_cpu_online_the_cpu_directories_say(tree, synthetic, offline):
    topo = numabind.topology(tree(synthetic, no_cpu_online=True, offline_cpus=offline))
    full = numabind.topology(tree(synthetic, offline_cpus=offline))
    assert topo.online_cpus == full.online_cpus
    assert machine_facts(topo) == machine_facts(full)


def test_a_cpu_online_file_that_is_not_0_or_1(tree, synthetic):
    root = tree.private(synthetic, no_cpu_online=True)
    (root / "sys/devices/system/cpu/cpu5/online").write_text("2\n")
    with pytest.raises(TopologyError) as ei:
        numabind.topology(root)
    assert ei.value.errno == errno.EINVAL
    assert "cpu5/online: '2' is neither 0 nor 1" in str(ei.value)


@pytest.mark.parametrize("options", [{}, {"pre_5_3_topology": True},
                                     {"pre_5_3_topology": True, "mask_only": ("core_siblings",)}],
                         ids=["package-cpus-list", "core-siblings-list", "core-siblings-mask"])
def test_package_id_minus_1_is_derived_from_the_package_masks(tree, synthetic, options):
    topo = numabind.topology(tree(synthetic, unknown_package_id=True, **options))
    pkgs = package_of(synthetic)
    assert {c.package for c in topo.cpus} == {0, 1}       # never -1
    for c in topo.cpus:
        assert c.package == pkgs[c.id], f"cpu {c.id}"
    assert machine_facts(topo) == machine_facts(numabind.topology(tree(synthetic)))


def test_package_id_minus_1_without_package_masks_is_one_package(tree, synthetic):
    # arm64 without package information makes every CPU a sibling of every other
    root = tree.private(synthetic, unknown_package_id=True)
    for d in (root / "sys/devices/system/cpu").glob("cpu[0-9]*/topology"):
        for name in ("core_siblings", "core_siblings_list", "package_cpus", "package_cpus_list"):
            (d / name).unlink()
    topo = numabind.topology(root)
    assert {c.package for c in topo.cpus} == {0}
    plan = numabind.plan(topology=topo, policy="socket", local_world_size=1, gpus=[0])
    assert plan.ranks[0].cpus == topo.allowed_cpus


def test_package_id_minus_1_beside_real_ids_takes_a_new_number(tree, synthetic):
    root = tree.private(synthetic, unknown_package_id=True)
    for c in (0, 1, 4, 5):   # socket 0 says its id; socket 1 says -1
        (root / f"sys/devices/system/cpu/cpu{c}/topology/physical_package_id").write_text("0\n")
    topo = numabind.topology(root)
    assert {c.id: c.package for c in topo.cpus} == {0: 0, 1: 0, 4: 0, 5: 0, 2: 1, 3: 1, 6: 1, 7: 1}


def test_without_proc_self_status_every_online_cpu_is_allowed(tree, synthetic):
    topo = numabind.topology(tree(synthetic, no_proc_status=True, offline_cpus="7"))
    assert topo.allowed_source == "online"
    assert topo.allowed_cpus == topo.affinity_cpus == topo.online_cpus == tuple(range(7))
    assert topo.allowed_mems == (0, 1, 3)
    plan = numabind.plan(topology=topo, local_world_size=2, gpus=[0, 2])
    for r in plan.ranks:
        assert "no proc/self/status in the tree: planned from every online CPU" in r.note


@pytest.mark.parametrize("version", ["cgroup_cpus", "cgroup_v1_cpus"])
def test_without_proc_self_status_the_cgroup_cpuset_is_allowed(tree, synthetic, version):
    topo = numabind.topology(tree(synthetic, no_proc_status=True, **{version: "0-1,4"}))
    assert topo.allowed_source == "cgroup"
    assert topo.allowed_cpus == topo.affinity_cpus == (0, 1, 4)
    assert topo.allowed_mems == (0, 3)                    # the cgroup's mems
    plan = numabind.plan(topology=topo, local_world_size=1, gpus=[0])
    assert plan.ranks[0].note is None or "proc/self/status" not in plan.ranks[0].note


@pytest.mark.parametrize("options, source", [
    ({}, "affinity"), ({"cgroup_cpus": "1-6"}, "cgroup"), ({"cgroup_v1_cpus": "1-6"}, "cgroup"),
])
def test_allowed_source(tree, synthetic, options, source):
    topo = numabind.topology(tree(synthetic, **options))
    assert topo.allowed_source == source
    assert topo.to_dict()["allowed_source"] == source
    plan = numabind.plan(topology=topo, local_world_size=1, gpus=[0])
    assert "proc/self/status" not in (plan.ranks[0].note or "")


def test_allowed_source_on_the_live_host():
    # the kernel answers unless a seccomp profile forbids sched_setaffinity
    assert numabind.topology().allowed_source in ("kernel", "cgroup", "affinity")
    assert numabind._core.ALLOWED_SOURCES == ("kernel", "cgroup", "affinity", "online")


def test_overlapping_node_cpulists_are_refused(tree, synthetic):
    """A BIOS listing every CPU in every node: ranks of two nodes would share CPUs."""
    root = tree.private(synthetic)
    node = root / "sys/devices/system/node"
    for n in (0, 1):
        (node / f"node{n}/cpulist").write_text("0-7\n")
        (node / f"node{n}/cpumap").write_text("ff\n")
    with pytest.raises(TopologyError) as ei:
        numabind.topology(root)
    assert ei.value.errno == errno.EINVAL
    assert ("NUMA nodes 0 and 1 both list CPUs 0-7 (/sys/devices/system/node/node0/cpulist, "
            "/sys/devices/system/node/node1/cpulist)") in str(ei.value)


def test_overlap_names_only_the_shared_cpus(tree, synthetic):
    root = tree.private(synthetic)
    (root / "sys/devices/system/node/node1/cpulist").write_text("2-4,6-7\n")
    with pytest.raises(TopologyError, match=r"NUMA nodes 0 and 1 both list CPUs 4 \("):
        numabind.topology(root)


def test_a_node_without_cpulist_reads_its_cpumap(tree, synthetic):
    root = tree.private(synthetic)
    for n in (0, 1, 3):
        (root / f"sys/devices/system/node/node{n}/cpulist").unlink()
    check_nodes(synthetic, numabind.topology(root), set(present_cpus(synthetic)))


def test_a_node_without_cpulist_or_cpumap_is_refused(tree, synthetic):
    root = tree.private(synthetic)
    for name in ("cpulist", "cpumap"):
        (root / f"sys/devices/system/node/node1/{name}").unlink()
    with pytest.raises(TopologyError) as ei:
        numabind.topology(root)
    assert ei.value.errno == errno.EINVAL
    assert ("/sys/devices/system/node/node1/cpulist is missing (and cpumap too), but "
            "/sys/devices/system/node/online lists node 1") in str(ei.value)


def test_an_l3_list_without_its_own_cpu_is_refused(tree, synthetic):
    root = tree.private(synthetic)
    (root / "sys/devices/system/cpu/cpu0/cache/index3/shared_cpu_list").write_text("4\n")
    with pytest.raises(TopologyError) as ei:
        numabind.topology(root)
    assert ei.value.errno == errno.EINVAL
    assert ("cpu0/cache/index3/shared_cpu_list lists CPUs 4, not CPU 0, whose cache it describes "
            "(/sys/devices/system/cpu/cpu0/cache/index3/level is 3)") in str(ei.value)


@pytest.mark.parametrize("row, entries", [("10 21", 2), ("10 21 40 7", 4), ("", 0)])
def test_a_distance_row_of_another_length_names_node_online(tree, synthetic, row, entries):
    root = tree.private(synthetic)
    (root / "sys/devices/system/node/node1/distance").write_text(row + "\n")
    with pytest.raises(TopologyError) as ei:
        numabind.topology(root)
    assert ei.value.errno == errno.EINVAL
    assert (f"/sys/devices/system/node/node1/distance: '{row}' has {entries} entries but "
            "/sys/devices/system/node/online lists 3 nodes (0-1,3)") in str(ei.value)


def test_numa_node_past_int_is_refused_naming_the_file(tree):
    # Found by the fuzzer: cut to an int, 8888888888888 named a negative node.
    root = tree.private("dgx-h100")
    (root / "sys/bus/pci/devices/0000:1b:00.0/numa_node").write_text("8888888888888\n")
    with pytest.raises(numabind.TopologyError) as e:
        numabind.topology(root)
    assert "0000:1b:00.0/numa_node" in str(e.value) and "8888888888888" in str(e.value)


def test_gpu_pairs_have_pci_classes_and_no_nvlink_under_a_root(tree):
    # GPU x GPU, as nvidia-smi topo -m's block: the PCI class from the tree;
    # NVLink only NVML can say, which is never asked under a root.
    topo = numabind.topology(tree("dgx-h100"), nvlink=True)
    assert topo.gpu_distance(0, 1).name == "NODE"      # two switches under host bridges of node 0
    assert topo.gpu_distance(0, 4).name == "SYS"
    assert topo.gpu_distance(3, 3).name == "PIX"        # itself
    assert topo.gpu_link(0, 1) is None
    with pytest.raises(KeyError):
        topo.gpu_distance(0, 8)
    text = subprocess.run([str(Path(sys.executable).parent / "numabind"), "show", "--fsroot", str(tree("dgx-h100"))],
                          capture_output=True, text=True).stdout
    assert "GPU0  PIX" in text and "NV#" not in text   # no GPU block under a root
