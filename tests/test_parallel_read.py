"""The per-CPU files, then the RDMA ports, read in a thread of their own
(topology.c, machines of 32 CPUs or more) while the calling thread reads the
rest: the same topology, and the same error, as the sequential read
(``NUMABIND_ONE_THREAD=1``)."""
from __future__ import annotations

import os
import shutil
import subprocess
import sys
import threading

import pytest

import numabind
from conftest import DESCRIBED, describe

BIG = [n for n in DESCRIBED if sum(len(numabind._core.parse_cpulist(node.get("cpus", "")))
                                   for node in describe(n)["cpu"]["nodes"]) >= 32]


def test_there_are_machines_big_enough():
    assert {"dgx-h100", "azure-nd96isr-h100-v5"} <= set(BIG)


def _threads_started(root, one_cpu: bool = False, **env) -> int:
    """Threads a process reading `root`'s topology starts (strace's clone calls)."""
    strace = shutil.which("strace")
    assert strace, "strace is needed (tools/dev.sh installs it)"
    cpu = min(os.sched_getaffinity(0))
    out = subprocess.run([strace, "-f", "-qq", "-e", "trace=clone,clone3", sys.executable, "-c",
                          "import sys, numabind; numabind.topology(sys.argv[1])", str(root)],
                         capture_output=True, text=True, env={**os.environ, **env}, check=True,
                         preexec_fn=(lambda: os.sched_setaffinity(0, {cpu})) if one_cpu else None)
    return sum(1 for line in out.stderr.splitlines() if line.lstrip("[pid 0123456789]").startswith("clone"))


def test_a_big_machine_reads_its_cpus_in_a_thread(tree):
    big, small = tree(describe("dgx-h100")), tree(describe("plain-2cpu-no-gpu"))
    base = _threads_started(small)
    assert _threads_started(big) == base + 1
    assert _threads_started(big, NUMABIND_ONE_THREAD="1") == base
    # bound to one CPU, a second thread could only take turns with the first
    assert _threads_started(big, one_cpu=True) == _threads_started(small, one_cpu=True)


def _read(root, monkeypatch, one_thread: bool, **kw):
    if one_thread:
        monkeypatch.setenv("NUMABIND_ONE_THREAD", "1")
    else:
        monkeypatch.delenv("NUMABIND_ONE_THREAD", raising=False)
    try:
        d = numabind.topology(root, **kw).to_dict()
        d.pop("fsroot")
        return d
    except numabind.NumabindError as e:
        return (type(e).__name__, e.errno, str(e))


@pytest.mark.parametrize("plan_only", [False, True])
@pytest.mark.parametrize("name", BIG)
def test_same_topology(tree, monkeypatch, name, plan_only):
    root = tree(describe(name))
    threaded = _read(root, monkeypatch, False, plan_only=plan_only)
    assert isinstance(threaded, dict)
    assert threaded == _read(root, monkeypatch, True, plan_only=plan_only)


CPU_FILE = "sys/devices/system/cpu/cpu7/topology/core_cpus_list"
GPU = "sys/bus/pci/devices/0000:1b:00.0"


@pytest.mark.parametrize("damage, says", [
    ({CPU_FILE: "7,zz\n"}, "core_cpus_list"),
    ({f"{GPU}/numa_node": "x\n"}, "numa_node: 'x'"),
    # both broken: the CPUs are read first, so theirs is the error, as sequentially
    ({CPU_FILE: "7,zz\n", f"{GPU}/numa_node": "x\n"}, "core_cpus_list"),
])
def test_same_error(tree, monkeypatch, damage, says):
    root = tree.private(describe("dgx-h100"))
    for rel, text in damage.items():
        (root / rel).write_text(text)
    threaded = _read(root, monkeypatch, False)
    assert isinstance(threaded, tuple) and says in threaded[2], threaded
    assert threaded == _read(root, monkeypatch, True)


IB = "sys/class/infiniband"
PORT0 = f"{IB}/mlx5_0/ports/1"     # the first NIC listed (names sort as text)
PORT2 = f"{IB}/mlx5_2/ports/1"
NIC0_FN = "sys/bus/pci/devices/0000:18:00.0"    # mlx5_0's PCI function
NIC2_FN = "sys/bus/pci/devices/0000:1f:00.1"    # mlx5_2's


@pytest.mark.parametrize("plan_only", [False, True])
@pytest.mark.parametrize("damage, says", [
    # the ports are read in the CPU thread, the NICs' devices by the caller
    ({f"{PORT2}/state": "BOGUS\n"}, "mlx5_2/ports/1/state: 'BOGUS' is not a port state"),
    ({f"{PORT0}/rate": "fast\n"}, "mlx5_0/ports/1/rate: 'fast' is not a rate"),
    # NIC by NIC: mlx5_0's ports come before mlx5_2's device (plan-only: a
    # NIC's numa_node is read with the NIC; the full read reads every PCI
    # function's first), and the other way
    ({f"{PORT0}/rate": "fast\n", f"{NIC2_FN}/numa_node": "x\n"}, ("numa_node: 'x'", "'fast' is not a rate")),
    ({f"{NIC0_FN}/numa_node": "x\n", f"{PORT2}/state": "BOGUS\n"}, "numa_node: 'x'"),
    ({CPU_FILE: "7,zz\n", f"{PORT0}/state": "BOGUS\n"}, "core_cpus_list"),
])
def test_same_error_with_ports(tree, monkeypatch, damage, says, plan_only):
    """The RDMA ports, read in the CPU thread after the CPUs, fail as a read
    NIC by NIC fails: the first NIC's error, device or port, wins."""
    root = tree.private(describe("dgx-h100"))
    for rel, text in damage.items():
        (root / rel).write_text(text)
    if isinstance(says, tuple):
        says = says[plan_only]
    threaded = _read(root, monkeypatch, False, plan_only=plan_only)
    assert isinstance(threaded, tuple) and says in threaded[2], threaded
    assert threaded == _read(root, monkeypatch, True, plan_only=plan_only)


def test_the_cpuset_probe_runs_only_where_the_affinity_is_narrower():
    """On the live host, the cpuset probe (a thread widening its affinity)
    is skipped where the affinity already holds every online CPU: the
    cpuset holds the affinity, so the probe could only answer "online"."""
    online = set(numabind._core.parse_cpulist(open("/sys/devices/system/cpu/online").read()))
    assert os.sched_getaffinity(0) == online, "run the tests unbound"
    assert len(online) >= 2
    assert _threads_started_live() == 0
    assert _threads_started_live(one_cpu=True) == 1
    topo = numabind.topology()
    assert topo.allowed_source == "kernel" and set(topo.allowed_cpus) == online


def _threads_started_live(one_cpu: bool = False) -> int:
    strace = shutil.which("strace")
    assert strace, "strace is needed (tools/dev.sh installs it)"
    cpu = min(os.sched_getaffinity(0))
    env = {k: v for k, v in os.environ.items() if k != "NUMABIND_FSROOT"}
    out = subprocess.run([strace, "-f", "-qq", "-e", "trace=clone,clone3", sys.executable, "-c",
                          "import numabind; t = numabind.topology(); "
                          "assert t.allowed_source == 'kernel', t.allowed_source"],
                         capture_output=True, text=True, env=env, check=True,
                         preexec_fn=(lambda: os.sched_setaffinity(0, {cpu})) if one_cpu else None)
    return sum(1 for line in out.stderr.splitlines() if line.lstrip("[pid 0123456789]").startswith("clone"))


def test_many_threads_at_once(tree, monkeypatch):
    """Readers in many threads at once (the GIL released), each starting its
    own CPU thread: every one gets the same topology."""
    monkeypatch.delenv("NUMABIND_ONE_THREAD", raising=False)
    root = tree(describe("dgx-h100"))
    want = numabind.topology(root).to_dict()
    got, errors = [], []

    def work():
        try:
            for _ in range(5):
                got.append(numabind.topology(root).to_dict())
        except Exception as e:  # noqa: BLE001 - collected and asserted below
            errors.append(e)

    threads = [threading.Thread(target=work) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    assert len(got) == 40 and all(d == want for d in got)
