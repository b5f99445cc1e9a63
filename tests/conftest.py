"""Shared fixtures for numabind's Python tests.

* ``tree(name_or_desc, **options)``: session-scoped factory that writes a
  machine's sysfs tree (tests/sysfs_tree.py) once per session and returns its
  root.  The same name with the same writer options is written at most once,
  so the slow 224-CPU trees cost one write each.  Trees are shared: a test that
  wants to damage a tree must write its own (``tree.private(...)``).  Trees
  live on /dev/shm when it is writable (see ``tree``), else in
  tmp_path_factory.
* ``machine``: parametrized over every description in tests/machines; gives
  ``.name``, ``.desc`` (a private deep copy) and ``.root``.
* ``described``: the same, plus ``synthetic`` (SYNTHETIC below), a small
  machine made up to reach what the real descriptions do not: a CPU-less
  node, node ids out of order in the description, an explicit SLIT and L3
  domains, PXB/PHB/NODE/SYS pairs, a root with unknown NUMA, two-port and
  DOWN NICs, two functions of one NIC, non-GPU NVIDIA and VGA functions.
* An autouse fixture drops NUMABIND_FSROOT / CUDA_VISIBLE_DEVICES (and
  CUDA_DEVICE_ORDER) from the environment, so that nothing is inherited from
  the shell that runs pytest.
"""
from __future__ import annotations

import copy
import json
import os
import shutil
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

import pytest

TESTS = Path(__file__).resolve().parent
if str(TESTS) not in sys.path:
    sys.path.insert(0, str(TESTS))

import sysfs_tree as st  # noqa: E402

# Node 3 is CPU-less (GPU memory, as on Grace); it comes second in the
# description, so positions in "nodes"/"distances" differ from id order.
# Every distance is distinct, so a transposed or misindexed matrix shows.
SYNTHETIC: dict = {
    "name": "synthetic",
    "sources": ["made up for tests/test_topology.py"],
    "notes": [],
    "cpu": {
        "sockets": 2, "threads_per_core": 2, "smt_stride": 4,
        "nodes": [
            {"id": 0, "cpus": "0-1,4-5", "socket": 0, "mem_mib": 4096},
            {"id": 3, "cpus": "", "mem_mib": 2048, "kind": "gpu-memory"},
            {"id": 1, "cpus": "2-3,6-7", "socket": 1, "mem_mib": 8192},
        ],
        "l3": ["0,4", "1,5", "2-3,6-7"],
        "distances": [[10, 40, 21], [41, 10, 42], [22, 43, 11]],
    },
    "allowed": {"cpus": "1-6", "mems": "0,3"},
    "pci": [
        {"root": "pci0000:00", "numa": 0, "devices": [
            {"bdf": "0000:00:01.0", "kind": "bridge", "vendor": "0x8086", "device": "0x352a",
             "children": [
                 {"bdf": "0000:01:00.0", "kind": "bridge", "vendor": "0x1000", "device": "0xc030",
                  "children": [
                      {"bdf": "0000:02:00.0", "kind": "bridge", "vendor": "0x1000", "device": "0xc030",
                       "children": [{"bdf": "0000:03:00.0", "kind": "gpu", "vendor": "0x10de",
                                     "device": "0x2330"}]},
                      {"bdf": "0000:02:01.0", "kind": "bridge", "vendor": "0x1000", "device": "0xc030",
                       "children": [
                           {"bdf": "0000:04:00.0", "kind": "bridge", "vendor": "0x1000",
                            "device": "0xc010", "children": [
                                {"bdf": "0000:05:00.0", "kind": "bridge", "vendor": "0x1000",
                                 "device": "0xc010", "children": [
                                     {"bdf": "0000:06:00.0", "kind": "nic", "ibdev": "mlx5_0",
                                      "netdev": "ibp6s0", "link_layer": "InfiniBand",
                                      "state": "ACTIVE", "rate": "200 Gb/sec (4X HDR)",
                                      "vendor": "0x15b3", "device": "0x101b", "ports": 2}]}]}]}]}]},
            {"bdf": "0000:00:02.0", "kind": "bridge", "vendor": "0x8086", "device": "0x352b",
             "children": [{"bdf": "0000:07:00.0", "kind": "gpu", "vendor": "0x10de",
                           "device": "0x20b5", "class": "0x030000"}]},
            {"bdf": "0000:00:05.0", "kind": "nic", "ibdev": "mlx5_1", "netdev": "eno1",
             "link_layer": "Ethernet", "state": "DOWN", "rate": "25 Gb/sec (1X EDR)",
             "vendor": "0x15b3", "device": "0x1017"},
            {"bdf": "0000:00:1f.0", "kind": "other", "vendor": "0x1a03", "device": "0x2000",
             "class": "0x030000"},
        ]},
        {"root": "pci0000:80", "numa": 1, "devices": [
            {"bdf": "0000:80:01.0", "kind": "bridge", "vendor": "0x8086", "device": "0x352a",
             "children": [{"bdf": "0000:81:00.0", "kind": "gpu", "vendor": "0x10de",
                           "device": "0x2330"}]},
            {"bdf": "0000:80:02.0", "kind": "bridge", "vendor": "0x8086", "device": "0x352b",
             "children": [
                 {"bdf": "0000:82:00.0", "kind": "nic", "ibdev": "mlx5_2", "netdev": "enp130s0f0np0",
                  "link_layer": "Ethernet", "state": "ACTIVE", "rate": "200 Gb/sec (4X HDR)",
                  "vendor": "0x15b3", "device": "0x101d"},
                 {"bdf": "0000:82:00.1", "kind": "nic", "ibdev": "mlx5_3", "netdev": "enp130s0f1np1",
                  "link_layer": "Ethernet", "state": "INIT", "rate": "200 Gb/sec (4X HDR)",
                  "vendor": "0x15b3", "device": "0x101d"}]},
            {"bdf": "0000:80:03.0", "kind": "other", "vendor": "0x10de", "device": "0x22a3",
             "class": "0x068000"},
            {"bdf": "0000:80:04.0", "kind": "other", "vendor": "0x8086", "device": "0x1593",
             "class": "0x020000", "netdev": "eno2"},
        ]},
        {"root": "pci0000:c0", "numa": -1, "devices": [
            {"bdf": "0000:c0:00.0", "kind": "gpu", "vendor": "0x10de", "device": "0x2330"}]},
        {"root": "pci0001:00", "numa": 0, "devices": [
            {"bdf": "0001:00:00.0", "kind": "gpu", "vendor": "0x10de", "device": "0x2330"}]},
    ],
    "expected": {"gpus": []},
}

DESCRIBED = [*st.MACHINES, "synthetic"]

ENV_VARS = ("NUMABIND_FSROOT", "CUDA_VISIBLE_DEVICES", "CUDA_DEVICE_ORDER")


@pytest.fixture(autouse=True)
def _no_inherited_environment(monkeypatch):
    for var in ENV_VARS:
        monkeypatch.delenv(var, raising=False)


@dataclass(frozen=True)
class Machine:
    name: str
    desc: dict
    root: Path


class TreeFactory:
    """Writes each (description, options) tree once; returns its root.

    ``private(desc, **options)`` writes a new tree on every call (for tests
    that damage it); ``scratch(prefix)`` gives a new empty directory on the
    same fast filesystem (to extract a gathered archive into, say).
    """

    def __init__(self, base: Path) -> None:
        self.base = base
        self._roots: dict[str, Path] = {}

    def _new_dir(self, prefix: str) -> Path:
        return Path(tempfile.mkdtemp(prefix=prefix + "-", dir=self.base))

    def __call__(self, name_or_desc: str | dict, **options) -> Path:
        desc = st.load(name_or_desc) if isinstance(name_or_desc, str) else name_or_desc
        key = json.dumps([desc, options], sort_keys=True)
        root = self._roots.get(key)
        if root is None:
            root = self.private(desc, **options)
            self._roots[key] = root
        return root

    def private(self, name_or_desc: str | dict, **options) -> Path:
        desc = st.load(name_or_desc) if isinstance(name_or_desc, str) else name_or_desc
        root = self._new_dir((desc.get("name") or "tree") + ("-opts" if options else ""))
        st.write_tree(copy.deepcopy(desc), root, **options)
        return root

    def scratch(self, prefix: str = "scratch") -> Path:
        return self._new_dir(prefix)


@pytest.fixture(scope="session")
def tree(tmp_path_factory) -> TreeFactory:
    """A 224-CPU tree is ~10k small files: ~3 s to write on a disk-backed /tmp,
    ~0.4 s on tmpfs.  So trees go to /dev/shm when it is a writable directory
    (removed at the end of the session), else to pytest's tmp_path_factory."""
    shm = Path("/dev/shm")
    if shm.is_dir() and os.access(shm, os.W_OK):
        base = Path(tempfile.mkdtemp(prefix="numabind-tests-", dir=shm))
        try:
            yield TreeFactory(base)
        finally:
            shutil.rmtree(base, ignore_errors=True)
    else:
        yield TreeFactory(tmp_path_factory.mktemp("trees"))


def describe(name: str) -> dict:
    """A fresh copy of a description by name (``synthetic`` included)."""
    return copy.deepcopy(SYNTHETIC) if name == "synthetic" else st.load(name)


@pytest.fixture(params=st.MACHINES)
def machine(request, tree) -> Machine:
    name = request.param
    return Machine(name=name, desc=st.load(name), root=tree(name))


@pytest.fixture(params=DESCRIBED)
def described(request, tree) -> Machine:
    desc = describe(request.param)
    return Machine(name=request.param, desc=desc, root=tree(copy.deepcopy(desc)))


@pytest.fixture
def synthetic() -> dict:
    return copy.deepcopy(SYNTHETIC)


# The topology lab (docs/lab.md): tests/lab/guest runs inside a lab guest,
# which sets NUMABIND_LAB_LAYOUT; tests/lab/host boots guests, with
# NUMABIND_LAB_BOOT=1 (tools/ci/stage-lab.sh). A plain run collects neither.
collect_ignore = [path for path, var in (("lab/guest", "NUMABIND_LAB_LAYOUT"), ("lab/host", "NUMABIND_LAB_BOOT"))
                  if os.environ.get(var, "") in ("", "0")]
