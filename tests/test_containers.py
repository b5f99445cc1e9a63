"""GPUs inside containers: what libnvidia-container shows a process, and the
plan numabind makes from it.

Docker ``--gpus``, the Kubernetes NVIDIA device plugin and enroot/pyxis all go
through libnvidia-container (src/nvc_mount.c): a tmpfs over
``/proc/driver/nvidia`` holding only the container's ``gpus/<busid>``
directories, and only their ``/dev/nvidia<minor>`` nodes; sysfs still shows
every GPU of the node. The trees here are written that way
(tests/sysfs_tree.py, ``container_gpus=`` and ``driver_procfs=``), and CUDA's
device 0 is the first GPU the container can open.
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
import tarfile

import pytest

import numabind
import sysfs_tree as st

DGX = "dgx-h100"
# DGX H100 GPUs in PCI order; GPU i pairs with NIC NICS[i] (tests/machines/dgx-h100.json).
BDFS = ["0000:1b:00.0", "0000:43:00.0", "0000:52:00.0", "0000:61:00.0",
        "0000:9d:00.0", "0000:c3:00.0", "0000:d1:00.0", "0000:df:00.0"]
NICS = ["mlx5_0", "mlx5_3", "mlx5_4", "mlx5_5", "mlx5_6", "mlx5_9", "mlx5_10", "mlx5_11"]
NODE1_CPUS = set(range(56, 112)) | set(range(168, 224))


def _expected_dgx() -> list[dict]:
    return st.load(DGX)["expected"]["gpus"]


def test_the_fixture_facts_match_the_description():
    # The constants above are the description's, not a second opinion.
    assert [g["bdf"] for g in _expected_dgx()] == BDFS
    assert [g["hca"] for g in _expected_dgx()] == NICS


def test_a_container_sees_its_gpus_from_cuda_device_0(tree, monkeypatch):
    root = tree(DGX, container_gpus=BDFS[4:])
    monkeypatch.setenv("NUMABIND_FSROOT", str(root))
    topo = numabind.topology()
    assert [g.pci_address for g in topo.gpus] == BDFS[4:]
    assert [g.index for g in topo.gpus] == [0, 1, 2, 3]
    # sysfs still shows all eight; the other four are someone else's.
    assert [g.pci_address for g in topo.all_gpus] == BDFS
    assert [g.accessible for g in topo.all_gpus] == [False] * 4 + [True] * 4
    # Minors are the host's numbering, kept inside the container.
    assert [g.minor for g in topo.gpus] == [4, 5, 6, 7]

    plan = numabind.plan()
    assert len(plan) == 4
    assert [r.gpu_pci for r in plan] == BDFS[4:]
    assert [r.numa_node for r in plan] == [1, 1, 1, 1]
    # The node-wide NIC assignment: the container's GPUs keep their own NICs.
    assert [r.hca for r in plan] == NICS[4:]
    held = set()
    for r in plan:
        assert set(r.cpus) <= NODE1_CPUS and not held & set(r.cpus)
        held |= set(r.cpus)
    assert held == NODE1_CPUS


def test_cuda_visible_devices_counts_within_the_container(tree, monkeypatch):
    monkeypatch.setenv("NUMABIND_FSROOT", str(tree(DGX, container_gpus=BDFS[4:])))
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "1")
    topo = numabind.topology()
    assert [g.pci_address for g in topo.gpus] == [BDFS[5]]
    assert numabind.plan()[0].hca == NICS[5]
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "4")   # the container has four GPUs: 0-3
    with pytest.raises(numabind.EnvironmentValueError, match="CUDA_VISIBLE_DEVICES"):
        numabind.topology()


def test_two_containers_on_one_node_get_disjoint_nics(tree, monkeypatch):
    seen = {}
    for gpus in (BDFS[:4], BDFS[4:], [BDFS[1], BDFS[6]]):
        monkeypatch.setenv("NUMABIND_FSROOT", str(tree(DGX, container_gpus=gpus)))
        for r in numabind.plan():
            seen.setdefault(r.gpu_pci, set()).add(r.hca)
    # Every GPU gets the same NIC whichever container holds it, and no two GPUs share one.
    assert {bdf: nics.pop() for bdf, nics in seen.items() if len(nics) == 1} == dict(zip(BDFS, NICS))


def test_the_host_with_the_driver_sees_every_gpu(tree, monkeypatch):
    root = tree(DGX, driver_procfs=True)
    monkeypatch.setenv("NUMABIND_FSROOT", str(root))
    topo = numabind.topology()
    assert [g.pci_address for g in topo.gpus] == BDFS
    assert all(g.accessible for g in topo.all_gpus)
    assert [g.minor for g in topo.gpus] == list(range(8))
    # The UUIDs come from the driver's information files.
    info = (root / "proc/driver/nvidia/gpus" / BDFS[3] / "information").read_text()
    assert topo.gpus[3].uuid and f"GPU UUID: \t {topo.gpus[3].uuid}" in info


def test_a_listed_gpu_without_its_device_node_cannot_be_opened(tree, monkeypatch):
    root = tree.private(DGX, driver_procfs=True)
    (root / "dev/nvidia5").unlink()
    monkeypatch.setenv("NUMABIND_FSROOT", str(root))
    topo = numabind.topology()
    assert [g.pci_address for g in topo.all_gpus if not g.accessible] == [BDFS[5]]
    assert BDFS[5] not in [g.pci_address for g in topo.gpus] and len(topo.gpus) == 7


def test_no_device_node_at_all_decides_nothing(tree, monkeypatch):
    # A bare host before nvidia-modprobe made the nodes, or a capture without /dev.
    root = tree.private(DGX, driver_procfs=True)
    for i in range(8):
        (root / f"dev/nvidia{i}").unlink()
    monkeypatch.setenv("NUMABIND_FSROOT", str(root))
    assert len(numabind.topology().gpus) == 8


def test_a_container_given_no_gpu_has_no_rank(tree, monkeypatch):
    monkeypatch.setenv("NUMABIND_FSROOT", str(tree(DGX, container_gpus=[])))
    topo = numabind.topology()
    assert topo.gpus == () and len(topo.all_gpus) == 8
    plan = numabind.plan()
    assert len(plan) == 0
    assert "can open none of the node's 8 NVIDIA GPUs" in plan.note


def _cli(*args: str, env: dict) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "numabind", *args], capture_output=True, text=True,
                          env={**os.environ, **env}, timeout=60)


def test_show_names_the_gpus_this_process_cannot_open(tree):
    p = _cli("show", env={"NUMABIND_FSROOT": str(tree(DGX, container_gpus=BDFS[4:]))})
    assert p.returncode == 0, p.stderr
    assert "This process cannot open 4 of the node's 8 GPUs" in p.stdout
    for bdf in BDFS[:4]:
        assert f"  {bdf}  NUMA 0" in p.stdout
    assert "GPU0: 0000:9d:00.0" in p.stdout
    p = _cli("show", env={"NUMABIND_FSROOT": str(tree(DGX, driver_procfs=True))})
    assert "cannot open" not in p.stdout
    p = _cli("show", "--json", env={"NUMABIND_FSROOT": str(tree(DGX, container_gpus=BDFS[4:]))})
    gpus = json.loads(p.stdout)["all_gpus"]
    assert [g["accessible"] for g in gpus] == [False] * 4 + [True] * 4


def test_gather_captures_what_the_container_can_open(tree):
    root = tree(DGX, container_gpus=BDFS[4:])
    out = tree.scratch("gather") / "node.tar.gz"
    from numabind.gather import extract, gather

    gather(out, fsroot=str(root))
    with tarfile.open(out) as tar:
        names = set(tar.getnames())
    assert {f"proc/driver/nvidia/gpus/{b}/information" for b in BDFS[4:]} <= names
    assert not any(f"proc/driver/nvidia/gpus/{b}" in n for b in BDFS[:4] for n in names)
    assert {f"dev/nvidia{m}" for m in range(4, 8)} <= names and "dev/nvidia0" not in names
    replay = tree.scratch("replay")
    extract(out, replay)
    topo = numabind.topology(replay)
    assert [g.pci_address for g in topo.gpus] == BDFS[4:]
    assert [g.accessible for g in topo.all_gpus] == [False] * 4 + [True] * 4


def test_gather_stores_a_device_node_as_an_empty_file(tree):
    root = tree.private(DGX, container_gpus=BDFS[4:])
    node = root / "dev/nvidia4"
    node.unlink()
    try:
        os.mknod(node, 0o20666, os.makedev(195, 4))   # S_IFCHR: what the runtime creates
    except PermissionError:
        pytest.skip("mknod is not permitted here (CI runs as root and has it)")
    from numabind.gather import gather

    out = tree.scratch("gather-chr") / "node.tar.gz"
    gather(out, fsroot=str(root))
    with tarfile.open(out) as tar:
        member = tar.getmember("dev/nvidia4")
    assert member.isfile() and member.size == 0
