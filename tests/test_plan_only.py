"""A plan-only read (``topology(plan_only=True)``, NMB_TOPOLOGY_PLAN_ONLY: what
pin_rank and the numabind command's plan, env and exec read) and the PCI
``uevent`` read (vendor, device and class from one file).

The plan-only read leaves out what no plan looks at; every plan made from it
must be the one made from the full read, on every machine, fallback and
option. The uevent read must give the same topology as the three attribute
files, and captures without uevent must still read.
"""
from __future__ import annotations

import os

import pytest

import numabind
from conftest import DESCRIBED, describe

# Fallbacks of older kernels, capture tools and container runtimes (the
# fixture writer's options); each must plan the same both ways.
VARIANTS = {
    "plain": {},
    "no-uevent": {"no_uevent": True},
    "pre-5.3-masks": {"pre_5_3_topology": True, "mask_only": ("shared_cpu", "thread_siblings", "core_siblings")},
    "unknown-package": {"unknown_package_id": True},
    "offline-1": {"offline_cpus": "1"},
    "no-proc-status": {"no_proc_status": True},
    "driver-procfs": {"driver_procfs": True},
}

# Plan options that read different parts of the topology.
OPTIONS = [
    {},
    *({"policy": p} for p in ("node", "socket", "core-complex", "none")),
    *({"mem": m} for m in ("bind", "interleave", "local")),
    {"reserve_cores": 2},
    {"local_world_size": 2},
    {"local_world_size": 3, "gpus": [0, 0, 0]},
]


def _write(tree, name: str, *, private: bool = False, **options):
    """The tree of machine `name`; `private`: a fresh one the test may damage."""
    return (tree.private if private else tree)(describe(name), **options)


def _plan(root_or_topo, plan_only: bool = False, **opts):
    topo = root_or_topo if isinstance(root_or_topo, numabind.Topology) else \
        numabind.topology(root_or_topo, plan_only=plan_only)
    try:
        return numabind.plan(topology=topo, **opts)
    except numabind.NumabindError as e:
        return (type(e).__name__, str(e))


@pytest.mark.parametrize("variant", VARIANTS)
@pytest.mark.parametrize("name", DESCRIBED)
def test_plans_are_the_same(tree, name, variant):
    root = _write(tree, name, **VARIANTS[variant])
    full_topo, lean_topo = numabind.topology(root), numabind.topology(root, plan_only=True)
    for opts in OPTIONS:
        full, lean = _plan(full_topo, **opts), _plan(lean_topo, **opts)
        assert lean == full, (name, variant, opts)


def _has_gpus(name: str) -> bool:
    def walk(devices):
        for d in devices or []:
            yield d
            yield from walk(d.get("children"))
    return any(d["kind"] == "gpu" for r in describe(name).get("pci") or [] for d in walk(r["devices"]))


@pytest.mark.parametrize("name", [n for n in DESCRIBED if _has_gpus(n)])
def test_overrides_are_checked_the_same(tree, name):
    """The overrides check CPUs, nodes and NICs against the topology: against
    the plan-only one they accept and refuse what the full one does."""
    root = _write(tree, name)
    full = numabind.topology(root)
    assert full.gpus
    nic = full.nics[-1].name if full.nics else None
    cases = [{"cpus": "0-1"}, {"cpus": "4000"}, {"mem_nodes": [full.nodes[-1].id]}, {"mem_nodes": [77]},
             {"nic": "mlx5_99"}, {"gpu": len(full.gpus) - 1}]
    if nic:
        cases.append({"nic": nic})
    for case in cases:
        assert _plan(root, True, rank=0, mem="bind", **case) == _plan(root, False, rank=0, mem="bind", **case), case


@pytest.mark.parametrize("name", DESCRIBED)
def test_what_a_plan_only_read_leaves_out(tree, name):
    root = _write(tree, name)
    full, lean = numabind.topology(root), numabind.topology(root, plan_only=True)
    # What a plan reads is all there.
    assert lean.nodes == full.nodes
    assert lean.cores == full.cores and lean.l3 == full.l3
    assert [c._replace(core_id=-1) for c in full.cpus] == list(lean.cpus)
    assert lean.gpus == full.gpus and lean.all_gpus == full.all_gpus
    assert (lean.allowed_cpus, lean.allowed_mems, lean.affinity_cpus) == \
        (full.allowed_cpus, full.allowed_mems, full.affinity_cpus)
    located = {g.pci_address for g in full.all_gpus}
    nic_functions = {n.pci_address for n in full.nics if n.pci_address}
    assert [f.address for f in lean.pci] == [f.address for f in full.pci]
    below = _functions_with_functions_below(full)
    for f, g in zip(full.pci, lean.pci):
        # The tree is read for every function, the ids for every function
        # with none below it (a bridge's never are: it is where it is);
        # links for none.
        assert (g.parent, g.host_bridge, g.depth, g.path) == (f.parent, f.host_bridge, f.depth, f.path)
        if f.address in below:
            assert (g.vendor, g.device, g.class_code, g.is_bridge) == (0, 0, 0, True), f.address
        else:
            assert (g.vendor, g.device, g.class_code, g.is_bridge) == \
                (f.vendor, f.device, f.class_code, f.is_bridge), f.address
        assert (g.link_width, g.link_speed_gts) == (None, None)
        if f.address in located:
            assert (g.numa_node, g.local_cpus) == (f.numa_node, f.local_cpus)
        elif f.address in nic_functions:
            assert (g.numa_node, g.local_cpus) == (f.numa_node, ())
        else:
            assert (g.numa_node, g.local_cpus) == (None, ())
    for a, b in zip(full.nics, lean.nics):
        assert (b.name, b.pci_address, b.numa_node, b.virtual, b.source) == \
            (a.name, a.pci_address, a.numa_node, a.virtual, a.source)
        assert b.netdev == (a.netdev if a.virtual else None)
        assert [p._replace(phys_state=0) for p in a.ports] == list(b.ports)
    # The classes a plan is made from (GPU x NIC) are the same.
    assert (lean.gpu_nic_distances == full.gpu_nic_distances).all()


def _functions_with_functions_below(topo) -> set[str]:
    return {f.address for f in topo.pci if any(h.path.startswith(f.path + "/") for h in topo.pci)}


def _uevent_of(root, address: str) -> str:
    return os.path.join(str(root), "sys/bus/pci/devices", address, "uevent")


# On the DGX H100 tree bridge 0000:17:00.0 has one function below it, the
# NIC 0000:18:00.0; 0000:1f:00.0 is a NIC further on.
BRIDGE, ONLY_BELOW, LATER = "0000:17:00.0", "0000:18:00.0", "0000:1f:00.0"


def test_a_bridge_is_not_read(tree):
    """A function other functions sit below is passed over by a plan-only
    read: its uevent, unreadable here, is never opened (the full read
    refuses it, naming it), and the plans are the full read's of the
    undamaged tree."""
    root = _write(tree, "dgx-h100", private=True)
    assert BRIDGE in _functions_with_functions_below(numabind.topology(root))
    plans = {repr(opts): _plan(root, **opts) for opts in OPTIONS}
    with open(_uevent_of(root, BRIDGE), "w") as f:
        f.write("PCI_CLASS=zz\nPCI_ID=8086:1234\n")
    with pytest.raises(numabind.TopologyError, match=f"{BRIDGE}/uevent: PCI_CLASS 'zz'"):
        numabind.topology(root)
    lean = numabind.topology(root, plan_only=True)
    assert {repr(opts): _plan(lean, **opts) for opts in OPTIONS} == plans


def _link_below_bridge(root, below: str = ONLY_BELOW) -> None:
    """Makes the one function below a bridge (BRIDGE's by default) a link
    to where its directory now is: the kernel's check on the way to its
    uevent fails, and its link is resolved the long way."""
    real = os.path.realpath(os.path.join(str(root), "sys/bus/pci/devices", below))
    moved = os.path.join(str(root), "sys/devices", "moved-" + below)
    os.rename(real, moved)
    os.symlink(moved, real)


def test_a_bridge_is_read_where_nothing_below_it_was_checked(tree):
    """Where no function below a bridge was reached without a link on the
    way, the bridge is read as any function: its damaged uevent is the
    error, as in a full read."""
    root = _write(tree, "dgx-h100", private=True)
    _link_below_bridge(root)
    full, lean = numabind.topology(root), numabind.topology(root, plan_only=True)
    assert [f.address for f in lean.pci] == [f.address for f in full.pci]
    assert [(f.vendor, f.class_code) for f in lean.pci if f.address == BRIDGE] == \
        [(f.vendor, f.class_code) for f in full.pci if f.address == BRIDGE]
    with open(_uevent_of(root, BRIDGE), "w") as f:
        f.write("PCI_CLASS=zz\nPCI_ID=8086:1234\n")
    for plan_only in (False, True):
        with pytest.raises(numabind.TopologyError, match=f"{BRIDGE}/uevent: PCI_CLASS 'zz'"):
            numabind.topology(root, plan_only=plan_only)


@pytest.mark.parametrize("bridge, below, other, first", [
    (BRIDGE, ONLY_BELOW, LATER, BRIDGE),                        # the bridge lists first
    ("0000:3f:00.0", "0000:40:00.0", LATER, LATER),             # the other function does
])
def test_a_bridge_read_late_fails_in_order(tree, bridge, below, other, first):
    """A bridge read at the end (nothing below it checked) fails in listing
    order: with another function damaged too, the one listed first is the
    error given, as in a read in order."""
    root = _write(tree, "dgx-h100", private=True)
    _link_below_bridge(root, below)
    for address in (bridge, other):
        with open(_uevent_of(root, address), "w") as f:
            f.write("PCI_CLASS=zz\nPCI_ID=8086:1234\n")
    for plan_only in (False, True):
        with pytest.raises(numabind.TopologyError, match=f"{first}/uevent: PCI_CLASS 'zz'"):
            numabind.topology(root, plan_only=plan_only)


@pytest.mark.parametrize("name", DESCRIBED)
def test_uevent_and_attribute_files_read_the_same(tree, name):
    """uevent (one file) and vendor/device/class (three) give one topology:
    a capture that holds only the attribute files reads as the machine."""
    with_uevent = numabind.topology(_write(tree, name)).to_dict()
    without = numabind.topology(_write(tree, name, no_uevent=True)).to_dict()
    for d in (with_uevent, without):
        d.pop("fsroot")
    assert with_uevent == without


def _gpu_dir(root) -> str:
    topo = numabind.topology(root)
    return os.path.join(str(root), topo.pci[next(i for i, f in enumerate(topo.pci)
                                                 if f.address == topo.gpus[0].pci_address)].path.lstrip("/"))


def test_uevent_wins_over_the_attribute_files(tree):
    """Where both are there the uevent is what is read (the kernel prints
    both from one struct, so they never differ on a real machine)."""
    root = _write(tree, "dgx-h100", private=True)
    gpu = _gpu_dir(root)
    with open(os.path.join(gpu, "class"), "w") as f:
        f.write("0x020000\n")               # an Ethernet controller, says the file
    topo = numabind.topology(root)
    assert len(topo.gpus) == 8                # the uevent's 3D controller stands
    os.remove(os.path.join(gpu, "uevent"))
    assert len(numabind.topology(root).gpus) == 7     # without it, the file is read


@pytest.mark.parametrize("uevent", ["DRIVER=nvidia\n", "PCI_CLASS=30200\n", "PCI_ID=10DE:2330\n", "",
                                    "OF_NAME=gpu\n" * 600 + "PCI_CLASS=20000\nPCI_ID=10DE:2330\n"],
                         ids=["driver", "class-only", "id-only", "empty", "longer-than-a-page"])
def test_uevent_without_ids_falls_back(tree, uevent):
    """A uevent lacking PCI_CLASS or PCI_ID (a tool that wrote its own) is
    passed over for the attribute files."""
    root = _write(tree, "dgx-h100", private=True)
    gpu = _gpu_dir(root)
    with open(os.path.join(gpu, "uevent"), "w") as f:
        f.write(uevent)
    assert len(numabind.topology(root).gpus) == 8
    assert len(numabind.topology(root, plan_only=True).gpus) == 8


@pytest.mark.parametrize("line, quoted", [
    ("PCI_CLASS=3ZZ00", "PCI_CLASS '3ZZ00' is not a hex number"),
    ("PCI_CLASS=1030200", "PCI_CLASS '1030200' is not a hex number"),
    ("PCI_CLASS=", "PCI_CLASS '' is not a hex number"),
    ("PCI_ID=10DE2330", "PCI_ID '10DE2330' is not VENDOR:DEVICE"),
    ("PCI_ID=10DE:", "PCI_ID device '' is not a hex number"),
    ("PCI_ID=-1:2330", "PCI_ID vendor '-1' is not a hex number"),
    ("PCI_ID=10DE0:2330", "PCI_ID vendor '10DE0' is not a hex number"),
])
def test_malformed_uevent_is_an_error_naming_it(tree, line, quoted):
    root = _write(tree, "dgx-h100", private=True)
    gpu = _gpu_dir(root)
    key = line.split("=")[0]
    lines = open(os.path.join(gpu, "uevent")).read().splitlines()
    with open(os.path.join(gpu, "uevent"), "w") as f:
        f.write("\n".join(line if ln.startswith(key + "=") else ln for ln in lines) + "\n")
    for plan_only in (False, True):
        with pytest.raises(numabind.TopologyError) as e:
            numabind.topology(root, plan_only=plan_only)
        assert quoted in str(e.value) and "uevent" in str(e.value)


def test_a_capture_keeps_the_attribute_files(tree, tmp_path):
    """numabind gather records vendor, device and class (what every numabind
    reads), not the uevent: a capture reads the same with older versions."""
    from numabind import _core

    root = _write(tree, "dgx-h100")
    files = _core.TopologyHandle(str(root), _core.RECORD_FILES).files()
    gpu = numabind.topology(root).gpus[0].pci_address
    mine = [f for f in files if gpu in f]
    assert any(f.endswith("/vendor") for f in mine) and any(f.endswith("/class") for f in mine)
    assert not any(f.endswith("/uevent") for f in files)


def test_pin_rank_plans_from_a_plan_only_read(tree, monkeypatch):
    """pin_rank's own read is plan-only, and its plan is the full read's."""
    from numabind import placement

    root = _write(tree, "dgx-h100")
    monkeypatch.setenv("NUMABIND_FSROOT", str(root))
    monkeypatch.setattr(placement, "_pinned_topology", {})
    got = numabind.pin_rank(5, dry_run=True)
    (topo,) = placement._pinned_topology.values()
    # Its records were never made: pin_rank planned from the handle alone.
    with pytest.raises(AttributeError):
        object.__getattribute__(topo, "cpus")
    # Made on first use, they are the plan-only read's.
    assert all(c.core_id == -1 for c in topo.cpus)
    eager = numabind.topology(root, plan_only=True)
    assert all(getattr(topo, n) == getattr(eager, n) for n in type(topo)._fields if n not in ("_handle", "fsroot"))
    assert repr(topo) == repr(eager).replace(eager.fsroot, topo.fsroot)
    assert got == numabind.pin_rank(5, dry_run=True, topology=numabind.topology(root))


def test_gpu_for_a_rank_past_the_gpus_says_which_ranks_lack_one(tree):
    """plan(rank=6, gpu=1) on a 4-GPU node makes 7 ranks; ranks 4 and 5 have
    no GPU of their own: the error says so (as for 7 ranks without gpu=),
    rather than calling "GPU 4" a GPU the caller named."""
    root = _write(tree, "h100x4-flat-vm")
    topo = numabind.topology(root, plan_only=True)
    with pytest.raises(numabind.PlacementError) as e:
        numabind.plan(topology=topo, rank=6, gpu=1)
    assert "local rank 4 has no GPU: 7 local ranks but 4 visible GPUs" in str(e.value)
    # -1 in gpus= is "as without": rank r drives GPU r
    plan = numabind.plan(topology=topo, gpus=[-1, 3, -1, -1])
    assert [r.gpu for r in plan.ranks] == [0, 3, 2, 3]
    with pytest.raises(ValueError, match=r"gpus\[1\] -2 is below -1"):
        numabind.plan(topology=topo, gpus=[0, -2])
