"""Reliability: docs/reliability.md's bad-input table, concurrency, fork, leaks.

Every row of the table in docs/reliability.md is one case of ``CASES`` (the
row's first column is the case id; ``test_table_lists_every_case`` keeps the
two in step). A case runs in a fresh child interpreter on a real fixture
tree (tests/sysfs_tree.py) and this machine's real kernel: the child starts
idle threads with their own CPU masks and sets a memory policy, snapshots
every thread's affinity, its memory policy and the NIC variables, makes the
bad call, and snapshots again. A refusal must be the documented exception,
name the bad value, and leave the snapshot unchanged; a fallback must do
what docs/reliability.md says and log it (logger ``numabind``).

Kernel refusals are real: a seccomp filter installed in the child makes
``set_mempolicy`` / ``sched_setaffinity`` fail (as a container profile
does), and dropping CAP_DAC_OVERRIDE makes a mode-000 file unreadable even
to root. Nothing here touches the pytest process's affinity or memory policy.
"""
from __future__ import annotations

import copy
import os
import platform
import re
import resource
import subprocess
import sys
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import pytest

TESTS = Path(__file__).resolve().parent
if str(TESTS) not in sys.path:
    sys.path.insert(0, str(TESTS))

import numabind  # noqa: E402
import pinkit  # noqa: E402
import sysfs_tree as st  # noqa: E402
from pinkit import needs_cpus, needs_numa, two_gpu_desc  # noqa: E402
# the autouse guard: imported here, it guards every test of this file
from pinkit import _pytest_process_untouched  # noqa: E402,F401

DOC = TESTS.parent / "docs" / "reliability.md"
RANK_VARS = ("LOCAL_RANK", "SLURM_LOCALID", "OMPI_COMM_WORLD_LOCAL_RANK", "MPI_LOCALRANKID", "PMI_LOCAL_RANK")
SIZE_VARS = ("LOCAL_WORLD_SIZE", "OMPI_COMM_WORLD_LOCAL_SIZE", "MPI_LOCALNRANKS", "PMI_LOCAL_SIZE",
             "SLURM_STEP_TASKS_PER_NODE", "SLURM_TASKS_PER_NODE", "SLURM_NTASKS_PER_NODE", "SLURM_NODEID")

ARCH = platform.machine()
SECCOMP_OK = sys.platform.startswith("linux") and ARCH in ("x86_64", "aarch64")

needs_seccomp = pytest.mark.skipif(not SECCOMP_OK, reason="seccomp filters written for x86_64 and aarch64")


# --------------------------------------------------------------------------
# machines
# --------------------------------------------------------------------------

def rel_desc() -> dict:
    """pinkit's two-GPU machine (two ranks get CPU 0 and CPU 1 of any machine
    that has them) as this file's tree, with no expected GPUs."""
    return two_gpu_desc(name="rel-2cpu-2gpu", expected=False)


def variant(**changes) -> dict:
    d = rel_desc()
    d["name"] = "rel-" + "-".join(sorted(changes))
    for key, value in changes.items():
        if key == "numa":
            d["pci"][0]["numa"] = value
        elif key == "allowed_cpus":
            d["allowed"]["cpus"] = value
        elif key == "allowed_mems":
            d["allowed"]["mems"] = value
        elif key == "cpuless":
            # node 0 keeps the CPUs; the GPUs sit on node 1, CPU-less GPU memory (Grace)
            d["cpu"]["nodes"].append({"id": 1, "cpus": "", "mem_mib": 1024, "kind": "gpu-memory"})
            d["cpu"]["distances"] = [[10, 40], [40, 10]]
            d["allowed"]["mems"] = "0-1"
            d["pci"][0]["numa"] = 1
        elif key == "nic_down":
            d["pci"][0]["devices"][-1]["state"] = "DOWN"
        elif key == "sdr":
            d["pci"][0]["devices"][-1]["rate"] = "2.5 Gb/sec (1X SDR)"
        else:
            raise KeyError(key)
    return d


BIG_NODES, BIG_CPUS = 64, 4096
BIG_GPU_NODES = [0, 8, 16, 24, 32, 40, 48, 56]
BIG_EVEN = ",".join(str(c) for c in range(0, BIG_CPUS, 2))


def big_desc() -> dict:
    """4096 CPUs on 64 NUMA nodes numbered round-robin (CPU c on node c % 64),
    eight GPUs with a NIC each on nodes 0, 8, ..., 56, and a process allowed
    only the even CPUs: its Cpus_allowed_list and the cgroup's
    cpuset.cpus.effective are 9.7 KB lists."""
    nodes = [{"id": n, "cpus": ",".join(str(c) for c in range(n, BIG_CPUS, BIG_NODES)),
              "socket": n // 8, "mem_mib": 1024} for n in range(BIG_NODES)]
    dist = [[10 if i == j else 12 + (i // 8 != j // 8) * 20 + abs(i - j) % 7 for j in range(BIG_NODES)]
            for i in range(BIG_NODES)]
    pci = []
    for g, node in enumerate(BIG_GPU_NODES):
        bus = 0x10 + g * 0x10
        pci.append({"root": f"pci0000:{bus:02x}", "numa": node, "devices": [
            {"bdf": f"0000:{bus:02x}:01.0", "kind": "bridge", "children": [
                {"bdf": f"0000:{bus + 1:02x}:00.0", "kind": "gpu", "vendor": "0x10de", "device": "0x2330"},
                {"bdf": f"0000:{bus + 2:02x}:00.0", "kind": "nic", "ibdev": f"mlx5_{g}", "netdev": f"ib{g}",
                 "link_layer": "InfiniBand", "state": "ACTIVE", "rate": "400 Gb/sec (4X NDR)",
                 "vendor": "0x15b3", "device": "0x1021"}]}]})
    return {"name": "rel-4096cpu-64node", "sources": ["made up for tests/test_reliability.py"], "notes": [],
            "cpu": {"sockets": 8, "threads_per_core": 1, "nodes": nodes, "distances": dist},
            "allowed": {"cpus": BIG_EVEN, "mems": f"0-{BIG_NODES - 1}"}, "pci": pci,
            "expected": {"gpus": []}}


# --------------------------------------------------------------------------
# damaging a tree
# --------------------------------------------------------------------------

GPU0 = "sys/bus/pci/devices/0000:00:04.0"
PORT = "sys/class/infiniband/mlx5_0/ports/1"


def write(rel: str, text: str) -> Callable[[Path], None]:
    def f(root: Path) -> None:
        (root / rel).write_text(text)
    return f


def remove(rel: str) -> Callable[[Path], None]:
    def f(root: Path) -> None:
        (root / rel).unlink()
    return f


def unreadable(rel: str) -> Callable[[Path], None]:
    def f(root: Path) -> None:
        os.chmod(root / rel, 0)
    return f


def loop(rel: str) -> Callable[[Path], None]:
    def f(root: Path) -> None:
        p = root / rel
        p.unlink()
        os.symlink(p.name, p)          # a link to itself
    return f


def link_out(rel: str, target: str) -> Callable[[Path], None]:
    def f(root: Path) -> None:
        p = root / rel
        p.unlink()
        os.symlink(target, p)
    return f


# --------------------------------------------------------------------------
# the child
# --------------------------------------------------------------------------

# NR, libc, WORDS, get_mempolicy (["unreadable", errno] where the kernel
# refuses), set_mempolicy (returns the syscall's result), affinities, nic_env,
# HOLD, idle_threads, state, err, result: tests/pinkit.py
PRELUDE = pinkit.child_prelude(raise_on_mempolicy_error=False) + r'''
import logging, struct

ROOT = sys.argv[1] if sys.argv[1] != "-" else None
IDLE = []

def baseline():
    """Threads with masks of their own and a memory policy that is not the
    default, so that a change anywhere shows in the snapshot."""
    cpus = sorted(os.sched_getaffinity(0))
    IDLE.extend(idle_threads([{cpus[0]}, {cpus[-1]}, set(cpus[:2]), None]))
    if os.path.isdir("/sys/devices/system/node/node0"):
        set_mempolicy(3, [0])        # MPOL_INTERLEAVE over node 0

def seccomp(rules):
    """rules: (syscall, errno, arg0) — refuse the call with errno, only when
    its first argument is arg0 unless arg0 is None ("null": a NULL pointer)."""
    LD, JEQ, RET = 0x20, 0x15, 0x06
    ALLOW, ERRNO = 0x7FFF0000, 0x00050000
    prog = []
    def op(code, k, jt=0, jf=0):
        prog.append(struct.pack("HBBI", code, jt, jf, k & 0xFFFFFFFF))
    op(LD, 4); op(JEQ, NR["arch"], 1, 0); op(RET, ALLOW)
    op(LD, 0)
    for name, err, arg0 in rules:
        if arg0 is None:
            op(JEQ, NR[name], 0, 1); op(RET, ERRNO | err)
        elif arg0 == "null":
            op(JEQ, NR[name], 0, 5); op(LD, 16); op(JEQ, 0, 0, 3); op(LD, 20); op(JEQ, 0, 0, 1)
            op(RET, ERRNO | err); op(LD, 0)
        else:
            op(JEQ, NR[name], 0, 3); op(LD, 16); op(JEQ, arg0, 0, 1); op(RET, ERRNO | err); op(LD, 0)
    op(RET, ALLOW)
    class Fprog(ctypes.Structure):
        _fields_ = [("len", ctypes.c_ushort), ("filter", ctypes.c_void_p)]
    buf = ctypes.create_string_buffer(b"".join(prog))
    fprog = Fprog(len(prog), ctypes.cast(buf, ctypes.c_void_p))
    if libc.prctl(38, 1, 0, 0, 0) != 0 or libc.prctl(22, 2, ctypes.byref(fprog), 0, 0) != 0:
        raise OSError(ctypes.get_errno(), "seccomp filter refused")

def drop_dac_override():
    """This thread loses CAP_DAC_OVERRIDE and CAP_DAC_READ_SEARCH: a mode-000
    file is then unreadable even to root."""
    class Hdr(ctypes.Structure):
        _fields_ = [("version", ctypes.c_uint32), ("pid", ctypes.c_int)]
    class Data(ctypes.Structure):
        _fields_ = [("effective", ctypes.c_uint32), ("permitted", ctypes.c_uint32),
                    ("inheritable", ctypes.c_uint32)]
    hdr, data = Hdr(0x20080522, 0), (Data * 2)()
    if libc.syscall(ctypes.c_long(NR["capget"]), ctypes.byref(hdr), data) != 0:
        raise OSError(ctypes.get_errno(), "capget")
    data[0].effective &= ~((1 << 1) | (1 << 2))
    if libc.syscall(ctypes.c_long(NR["capset"]), ctypes.byref(hdr), data) != 0:
        raise OSError(ctypes.get_errno(), "capset")

LOGS = []
class _Logs(logging.Handler):
    def emit(self, record):
        LOGS.append([record.levelname, record.getMessage()])
logging.getLogger("numabind").addHandler(_Logs())
logging.getLogger("numabind").setLevel(logging.INFO)

def topo():
    return numabind.topology(ROOT) if ROOT else numabind.topology()
'''

BODY = r'''
baseline()
PROBE = None
{prepare}
def action():
{action}
before = state()
try:
    outcome = {{"ok": True, "value": action()}}
except Exception as e:
    outcome = err(e)
result(outcome=outcome, before=before, after=state(), logs=LOGS, probe=PROBE)
HOLD.set()
'''


def run_child(code: str, root: Path | None = None, env: dict | None = None, timeout: int = 180) -> dict:
    return pinkit.run_child(PRELUDE + code, root, env, launcher_vars=RANK_VARS + SIZE_VARS, timeout=timeout)


# --------------------------------------------------------------------------
# the table
# --------------------------------------------------------------------------

@dataclass
class Case:
    id: str
    action: str                               # body of action(); may use ROOT, topo()
    desc: Callable[[], dict] | None = rel_desc       # None: the live host
    damage: tuple = ()                        # functions of the tree's root
    options: dict = field(default_factory=dict)   # sysfs_tree.write_tree options
    env: dict = field(default_factory=dict)
    prepare: str = ""                         # child code run before the snapshot
    # a refusal: the exception class (by name, in the MRO), errno, substrings of the message
    error: str | None = None
    errno: int | None = None
    says: tuple = ()
    # a fallback: a check of the child's output
    check: Callable[[dict], None] | None = None
    marks: tuple = ()


def no_dac_probe(rel: str) -> str:
    """Drops the DAC capabilities, then proves the damaged file unreadable."""
    return (f"drop_dac_override()\ntry:\n    open(ROOT + '/{rel}').read()\n"
            "except PermissionError as e:\n    PROBE = type(e).__name__")


def pin(**kw) -> str:
    args = ", ".join(f"{k}={v!r}" for k, v in kw.items())
    return f"    r = numabind.pin_rank(topology=topo(), {args})\n    return r.to_dict()"


def affinities_all(out: dict) -> set[str]:
    return set(out["after"]["affinities"].values())


def fallback_unknown_locality(out: dict) -> None:
    r = out["outcome"]["value"]
    assert r["numa_node"] is None and r["mem_policy"] == "default"
    assert "no NUMA node" in r["note"]
    assert out["after"]["mempolicy"] == out["before"]["mempolicy"], "memory policy changed"
    assert affinities_all(out) == {st.format_cpulist(r["cpus"])}
    assert ["WARNING", f"local rank 1: {r['note']}"] in out["logs"]


def fallback_cpuless(out: dict) -> None:
    r = out["outcome"]["value"]
    assert r["numa_node"] == 0 and r["mem_nodes"] == [0] and r["cpus"] == [1]
    assert "CPU-less NUMA node 1" in r["note"] and "nearest node with CPUs, 0" in r["note"]
    assert affinities_all(out) == {"1"}
    assert out["after"]["mempolicy"] == [1, [0]]          # MPOL_PREFERRED on node 0
    assert any(level == "WARNING" and "CPU-less" in msg for level, msg in out["logs"])


def fallback_offline(out: dict) -> None:
    r = out["outcome"]["value"]
    assert r["cpus"] == [0] and affinities_all(out) == {"0"}


def fallback_kept(out: dict) -> None:
    r = out["outcome"]["value"]
    assert r["kept_env"] == {"NCCL_IB_HCA": "mlx5_9"} and "NCCL_IB_HCA" not in r["env"]
    assert out["after"]["env"]["NCCL_IB_HCA"] == "mlx5_9"
    assert out["after"]["env"]["NVSHMEM_HCA_LIST"] == "mlx5_0:1"
    # a kept value that contradicts the plan is a warning, naming what the plan says
    assert ["WARNING", "local rank 0: keeping NCCL_IB_HCA=mlx5_9 from the environment; the plan says "
            "NCCL_IB_HCA==mlx5_0:1 (override_env=True replaces it)"] in out["logs"]


def fallback_no_nic(out: dict) -> None:
    r = out["outcome"]["value"]
    assert r["hca"] is None and r["env"] == {} and out["after"]["env"] == out["before"]["env"]
    assert affinities_all(out) == {"0"}


def fallback_link_speed(out: dict) -> None:
    assert out["probe"] == "PermissionError", "the file was readable: the case proves nothing"
    assert out["outcome"]["value"] == [None, 16]
    assert out["after"] == out["before"]


def fallback_no_verbs(out: dict) -> None:
    probe = out["probe"]
    if not probe["namespace"]:
        pytest.skip(f"no mount namespace for a live host with an RDMA NIC here: {probe['why']}")
    assert probe["verbs"] == "OSError", "libibverbs.so.1 loaded: the case proves nothing"
    v = out["outcome"]["value"]
    assert v["live"] is True and v["nics"] == [["mlx5_0", "sysfs", "ACTIVE"]]
    assert v["hca"] == "mlx5_0"
    assert out["after"] == out["before"]


# The live host, seen through a mount namespace whose /sys is the fixture's:
# the RDMA NIC is on the "live" host, so numabind tries libibverbs, which
# LD_LIBRARY_PATH makes unloadable; the ports come from sysfs.
NO_VERBS_PREPARE = """
PROBE = {"namespace": False}
libc.mount.argtypes = [ctypes.c_char_p, ctypes.c_char_p, ctypes.c_char_p, ctypes.c_ulong, ctypes.c_void_p]
if libc.unshare(0x20000) != 0:                                         # CLONE_NEWNS
    PROBE["why"] = "unshare: " + os.strerror(ctypes.get_errno())
elif libc.mount(None, b"/", None, (1 << 14) | (1 << 18), None) != 0 or \\
        libc.mount((ROOT + "/sys").encode(), b"/sys", None, 4096 | (1 << 14), None) != 0:   # MS_BIND|MS_REC
    PROBE["why"] = "mount: " + os.strerror(ctypes.get_errno())
else:
    PROBE["namespace"] = True
try:
    ctypes.CDLL("libibverbs.so.1")
    PROBE["verbs"] = "loaded"
except OSError as e:
    PROBE["verbs"] = type(e).__name__
"""
NO_VERBS_ACTION = """    t = numabind.topology()
    return {"live": t.live, "nics": [[n.name, n.source, n.ports[0].state] for n in t.nics],
            "hca": numabind.plan(topology=t)[0].hca}"""


def read_in_decimal_comma_locale(out: dict) -> None:
    assert out["probe"] == ",", "LC_NUMERIC's decimal point is not a comma: the case proves nothing"
    assert out["outcome"]["value"] == [2.5, 32.0]
    assert out["after"] == out["before"]


DECIMAL_COMMA = """
import locale
locale.setlocale(locale.LC_NUMERIC, "de_DE.UTF-8")     # the C library's too: strtod reads "2,5"
PROBE = locale.localeconv()["decimal_point"]
"""


def big_topology(out: dict) -> None:
    v = out["outcome"]["value"]
    assert v["cpus"] == BIG_CPUS and v["nodes"] == BIG_NODES
    assert v["allowed"] == list(range(0, BIG_CPUS, 2)), "the 9.7 KB allowed lists were misread"
    assert v["node5"] == list(range(5, BIG_CPUS, BIG_NODES))
    assert v["distance_row_63"][63] == 10 and len(v["distance_row_63"]) == BIG_NODES
    assert [r["numa_node"] for r in v["plan"]] == BIG_GPU_NODES
    for g, (r, node) in enumerate(zip(v["plan"], BIG_GPU_NODES)):
        assert r["cpus"] == list(range(node, BIG_CPUS, BIG_NODES))    # even nodes: every CPU even
        assert r["hca"] == f"mlx5_{g}" and r["mem_nodes"] == [node]
    assert out["after"] == out["before"]


BIG_TOPOLOGY = '''    t = topo()
    p = numabind.plan(topology=t)
    return {"cpus": len(t.cpus), "nodes": len(t.nodes), "allowed": list(t.allowed_cpus),
            "node5": list(t.nodes[5].cpus), "distance_row_63": list(t.nodes[63].distances),
            "plan": [r.to_dict() for r in p.ranks]}'''

SECCOMP_NUMA_OFF = '''
seccomp([("set_mempolicy", 38, None), ("get_mempolicy", 38, "null")])     # ENOSYS
PROBE = ctypes.CDLL("libnuma.so.1").numa_available()
'''

CASES = [
    # ---- the local rank and size ----
    Case("rank-beyond-gpus", pin(rank=2), error="PlacementError", errno=22,
         says=("local rank 2", "outside the 2 local ranks")),
    Case("rank-beyond-gpus-env", pin(), env={"LOCAL_RANK": "3", "LOCAL_WORLD_SIZE": "4"},
         error="PlacementError", errno=22, says=("local rank 2 has no GPU", "4 local ranks but 2 visible GPUs")),
    Case("negative-rank", pin(rank=-1), error="ValueError", says=("rank -1 is below 0",)),
    Case("negative-rank-env", pin(), env={"LOCAL_RANK": "-1"}, error="EnvironmentValueError", errno=22,
         says=("LOCAL_RANK='-1'",)),
    Case("no-local-rank", pin(), error="PlacementError", errno=2,
         says=("no local rank in the environment", "LOCAL_RANK", "SLURM_LOCALID", "PMI_LOCAL_RANK")),
    Case("rank-not-a-number", pin(), env={"LOCAL_RANK": "1(x2)"}, error="EnvironmentValueError", errno=22,
         says=("LOCAL_RANK='1(x2)'",)),
    Case("rank-not-below-size", pin(), env={"LOCAL_RANK": "2", "LOCAL_WORLD_SIZE": "2"},
         error="EnvironmentValueError", errno=22, says=("LOCAL_RANK='2' is not below LOCAL_WORLD_SIZE='2'",)),
    Case("slurm-task-list-malformed", pin(), env={"SLURM_LOCALID": "0", "SLURM_STEP_TASKS_PER_NODE": "4(x2"},
         error="EnvironmentValueError", errno=22, says=("SLURM_STEP_TASKS_PER_NODE='4(x2'",)),
    Case("slurm-node-outside-list", pin(),
         env={"SLURM_LOCALID": "0", "SLURM_NODEID": "3", "SLURM_TASKS_PER_NODE": "2,1"},
         error="EnvironmentValueError", errno=22, says=("SLURM_NODEID='3'", "'2,1' names 2 nodes")),
    # ---- placement ----
    Case("more-ranks-than-cores", pin(rank=0, gpus=[0, 0, 1]), error="PlacementError", errno=22,
         says=("3 ranks share NUMA node 0 but only 2 CPUs",)),
    Case("gpu-not-visible", pin(rank=0, gpus=[0, 5]), error="PlacementError", errno=22,
         says=("GPU 5 is not a visible GPU (2 visible)",)),
    Case("empty-allowed-set", pin(rank=0), desc=lambda: variant(allowed_cpus=""), error="PlacementError",
         errno=22, says=("NUMA node 0 has no allowed CPUs left", "allowed (empty)")),
    Case("memory-node-not-allowed", pin(rank=0), desc=lambda: variant(allowed_mems=""),
         error="PlacementError", errno=22, says=("NUMA node 0 is not an allowed memory node",)),
    Case("reserve-every-core", pin(rank=0, reserve_cores=2), error="PlacementError", errno=22,
         says=("no allowed CPUs left", "after reserving cores")),
    # ---- numbers past C's range (issue 15): no OverflowError from the binding ----
    Case("local-world-size-past-limit", pin(rank=0, local_world_size=2 ** 31), error="ValueError",
         says=("local_world_size 2147483648 is above 1048576, the most local ranks numabind plans",)),
    Case("reserve-cores-past-c-int", pin(rank=0, reserve_cores=2 ** 40), error="ValueError",
         says=("reserve_cores 1099511627776 is above 2147483647, the largest C int",)),
    Case("gpu-past-c-int", pin(rank=0, gpus=[0, 2 ** 40]), error="ValueError",
         says=("gpus[1] 1099511627776 is above 2147483647",)),
    Case("rank-past-limit", pin(rank=2 ** 40), error="ValueError",
         says=("rank 1099511627776 is above 1048575",)),
    Case("offline-cpu-two-ranks", pin(rank=0), options={"offline_cpus": "1"}, error="PlacementError",
         errno=22, says=("2 ranks share NUMA node 0 but only 1 CPUs are allowed there (0)",)),
    Case("offline-cpu-one-rank", pin(rank=0, local_world_size=1), options={"offline_cpus": "1"},
         check=fallback_offline, marks=(needs_cpus,)),
    Case("cpu-less-node", pin(rank=1), desc=lambda: variant(cpuless=True), check=fallback_cpuless,
         marks=(needs_cpus, needs_numa)),
    Case("numa-node-minus-1", pin(rank=1), desc=lambda: variant(numa=-1), check=fallback_unknown_locality,
         marks=(needs_cpus,)),
    Case("numa-node-missing", pin(rank=1), damage=(remove(f"{GPU0}/numa_node"),
                                                   remove("sys/bus/pci/devices/0000:00:05.0/numa_node")),
         check=fallback_unknown_locality, marks=(needs_cpus,)),
    Case("nic-variable-already-set", pin(rank=0), env={"NCCL_IB_HCA": "mlx5_9"}, check=fallback_kept,
         marks=(needs_cpus, needs_numa)),
    Case("no-usable-nic", pin(rank=0), desc=lambda: variant(nic_down=True), check=fallback_no_nic,
         marks=(needs_cpus, needs_numa)),
    Case("decimal-comma-locale",
         "    t = topo()\n    f = [f for f in t.pci if f.address == '0000:00:04.0'][0]\n"
         "    return [t.nics[0].ports[0].rate_gbps, f.link_speed_gts]",
         desc=lambda: variant(sdr=True), env={"LOCPATH": "@LOCPATH@"}, prepare=DECIMAL_COMMA,
         check=read_in_decimal_comma_locale),
    # ---- CUDA_VISIBLE_DEVICES ----
    Case("cuda-visible-missing-gpu", pin(rank=0), env={"CUDA_VISIBLE_DEVICES": "7"},
         error="EnvironmentValueError", errno=22, says=("'7' names no GPU (this machine has 2)",)),
    Case("cuda-visible-mig", pin(rank=0), env={"CUDA_VISIBLE_DEVICES": "MIG-4f3c2a10-1b2c-5d6e-8f90-a1b2c3d4e5f6"},
         error="EnvironmentValueError", errno=22, says=("'MIG-4f3c2a10-1b2c-5d6e-8f90-a1b2c3d4e5f6' is a MIG",)),
    Case("cuda-visible-repeat", pin(rank=0), env={"CUDA_VISIBLE_DEVICES": "1,1"},
         error="EnvironmentValueError", errno=22, says=("'1' repeats a GPU",)),
    Case("cuda-visible-uuid-unknown", pin(rank=0), env={"CUDA_VISIBLE_DEVICES": "GPU-8a3b"},
         error="EnvironmentValueError", errno=22, says=("'GPU-8a3b' names no GPU", "no GPU UUIDs are known")),
    # ---- the files ----
    Case("unreadable-numa-node", pin(rank=0), damage=(unreadable(f"{GPU0}/numa_node"),),
         prepare=no_dac_probe(f"{GPU0}/numa_node"), error="TopologyError", errno=13,
         says=("0000:00:04.0/numa_node", "Permission denied")),
    Case("unreadable-cpu-online", pin(rank=0), damage=(unreadable("sys/devices/system/cpu/online"),),
         prepare=no_dac_probe("sys/devices/system/cpu/online"), error="TopologyError", errno=13,
         says=("sys/devices/system/cpu/online", "Permission denied")),
    Case("unreadable-status", pin(rank=0), damage=(unreadable("proc/self/status"),),
         prepare=no_dac_probe("proc/self/status"), error="TopologyError", errno=13,
         says=("proc/self/status: Permission denied",)),
    Case("unreadable-link-speed",
         "    f = [f for f in topo().pci if f.address == '0000:00:04.0'][0]\n"
         "    return [f.link_speed_gts, f.link_width]",
         damage=(unreadable(f"{GPU0}/max_link_speed"),), prepare=no_dac_probe(f"{GPU0}/max_link_speed"),
         check=fallback_link_speed),
    Case("truncated-distance", pin(rank=0), damage=(write("sys/devices/system/node/node0/distance", ""),),
         error="TopologyError", errno=22,
         says=("node0/distance: '' has 0 entries but /sys/devices/system/node/online lists 1 node (0)",)),
    Case("truncated-status", pin(rank=0),
         damage=(write("proc/self/status", "Name:\tpython3\nCpus_allowed:\t3\nCpus_allowed_list:\t0-"),),
         error="TopologyError", errno=22, says=("Cpus_allowed_list '0-' is not a CPU list",)),
    Case("empty-cpu-online", pin(rank=0), damage=(write("sys/devices/system/cpu/online", "\n"),),
         error="TopologyError", errno=22, says=("cpu/online lists no CPU",)),
    Case("malformed-numa-node", pin(rank=0), damage=(write(f"{GPU0}/numa_node", "abc\n"),),
         error="TopologyError", errno=22, says=("numa_node: 'abc' is not a number",)),
    Case("malformed-class", pin(rank=0), damage=(remove(f"{GPU0}/uevent"), write(f"{GPU0}/class", "0x03zz00\n")),
         error="TopologyError", errno=22, says=("class: '0x03zz00' is not a hex number",)),
    Case("malformed-uevent-class", pin(rank=0),
         damage=(write(f"{GPU0}/uevent", "DRIVER=nvidia\nPCI_CLASS=3ZZ00\nPCI_ID=10DE:2330\n"),),
         error="TopologyError", errno=22, says=("uevent: PCI_CLASS '3ZZ00' is not a hex number",)),
    Case("malformed-local-cpulist", pin(rank=0), damage=(write(f"{GPU0}/local_cpulist", "0-x\n"),),
         error="TopologyError", errno=22, says=("local_cpulist: '0-x' is not a CPU/node list",)),
    Case("malformed-port-rate", pin(rank=0), damage=(write(f"{PORT}/rate", "fast\n"),),
         error="TopologyError", errno=22, says=("ports/1/rate: 'fast' is not a rate",)),
    Case("malformed-port-state", pin(rank=0), damage=(write(f"{PORT}/state", "ACTIVE\n"),),
         error="TopologyError", errno=22, says=("ports/1/state: 'ACTIVE' is not a port state",)),
    Case("value-longer-than-kernel-writes", pin(rank=0),
         damage=(write(f"{GPU0}/numa_node", "1" + " " * 70 + "7\n"),), error="TopologyError", errno=75,
         says=("0000:00:04.0/numa_node", "longer than any value the kernel writes")),
    Case("cpu-beyond-8191", pin(rank=0), damage=(write("sys/devices/system/cpu/online", "0-9000\n"),),
         error="TopologyError", errno=34, says=("cpu/online: '0-9000' is not a CPU/node list",)),
    Case("symlink-loop-pci", pin(rank=0), damage=(loop(GPU0),), error="TopologyError", errno=40,
         says=("0000:00:04.0: symbolic link loop",)),
    Case("symlink-loop-nic", pin(rank=0), damage=(loop("sys/class/infiniband/mlx5_0/device"),),
         error="TopologyError", errno=40, says=("mlx5_0/device: symbolic link loop",)),
    Case("link-out-of-root", pin(rank=0), damage=(link_out(GPU0, "/sys/devices"),), error="TopologyError",
         errno=18, says=("0000:00:04.0 resolves to /sys/devices, outside NUMABIND_FSROOT",)),
    Case("fsroot-missing", "    return numabind.topology().to_dict()", desc=None,
         env={"NUMABIND_FSROOT": "/nonexistent/numabind-tree"}, error="TopologyError", errno=2,
         says=("NUMABIND_FSROOT /nonexistent/numabind-tree",)),
    Case("fsroot-not-a-directory", "    return numabind.topology().to_dict()", desc=None,
         env={"NUMABIND_FSROOT": "/proc/self/status"}, error="TopologyError", errno=20,
         says=("NUMABIND_FSROOT /proc/self/status is not a directory",)),
    # ---- size ----
    Case("4096-cpus", BIG_TOPOLOGY, desc=big_desc, options={"cgroup_cpus": BIG_EVEN}, check=big_topology),
    Case("4096-cpus-pin", pin(rank=0), desc=big_desc, error="BindingError", says=("0,64,128,192",),
         marks=(needs_numa,)),
    Case("64-numa-nodes", pin(rank=7, policy="none"), desc=big_desc, error="BindingError", errno=22,
         says=("set_mempolicy(preferred, nodes 56)",), marks=(needs_numa,)),
    # ---- the system ----
    Case("rank-cpus-not-on-this-machine", pin(rank=0), desc=lambda: st.load("dgx-h100"), error="BindingError",
         errno=5, says=("after binding it to 0-13,112-125",), marks=(needs_numa,)),
    Case("set-mempolicy-eperm", pin(rank=1), prepare='seccomp([("set_mempolicy", 1, None)])',
         error="BindingError", errno=1, says=("set_mempolicy(preferred, nodes 0)", "seccomp"),
         marks=(needs_cpus, needs_numa, needs_seccomp)),
    Case("numa-unavailable", pin(rank=1), prepare=SECCOMP_NUMA_OFF, error="BindingError", errno=38,
         says=("set_mempolicy(preferred, nodes 0)", "NUMA is unavailable"),
         marks=(needs_cpus, needs_numa, needs_seccomp)),
    Case("sched-setaffinity-refused", pin(rank=1), prepare='seccomp([("sched_setaffinity", 1, None)])',
         error="BindingError", errno=1, says=("sched_setaffinity(thread", "CPUs 1) failed"),
         marks=(needs_cpus, needs_seccomp)),
    Case("sched-setaffinity-refused-one-thread", pin(rank=1),
         prepare='seccomp([("sched_setaffinity", 1, IDLE[-1].native_id)])',
         error="BindingError", errno=1, says=("sched_setaffinity(thread", "CPUs 1) failed"),
         marks=(needs_cpus, needs_seccomp)),
    Case("libibverbs-absent", NO_VERBS_ACTION, env={"LD_LIBRARY_PATH": "@NOVERBS@"}, prepare=NO_VERBS_PREPARE,
         check=fallback_no_verbs),
]
CASE_IDS = [c.id for c in CASES]
assert len(set(CASE_IDS)) == len(CASE_IDS)


@pytest.fixture(scope="session")
def big_root(tree) -> Path:
    """The 4096-CPU tree: ~200k files, written once per session."""
    return tree(big_desc(), cgroup_cpus=BIG_EVEN)


@pytest.fixture(scope="session")
def decimal_comma_locale(tmp_path_factory) -> Path:
    """A directory for LOCPATH holding de_DE.UTF-8 (decimal comma), compiled
    here with localedef, so the case needs no installed locale."""
    d = tmp_path_factory.mktemp("locales")
    try:
        p = subprocess.run(["localedef", "-i", "de_DE", "-f", "UTF-8", str(d / "de_DE.UTF-8")],
                           capture_output=True, text=True, timeout=120)
    except OSError as e:
        pytest.skip(f"localedef is missing: {e}")
    if not (d / "de_DE.UTF-8").is_dir():
        pytest.skip(f"localedef could not build de_DE.UTF-8 (Debian: the locales package): {p.stderr.strip()}")
    return d


@pytest.fixture(scope="session")
def no_verbs_dir(tmp_path_factory) -> Path:
    """A directory whose libibverbs.so.1 the loader cannot load."""
    d = tmp_path_factory.mktemp("no-verbs")
    (d / "libibverbs.so.1").write_bytes(b"not an ELF file: libibverbs is absent here\n")
    return d


def case_root(case: Case, tree, request) -> Path | None:
    if case.desc is None:
        return None
    if case.desc is big_desc:
        return request.getfixturevalue("big_root")
    desc = case.desc()
    if not case.damage:
        return tree(desc, **case.options)
    root = tree.private(desc, **case.options)
    for damage in case.damage:
        damage(root)
    return root


@pytest.mark.parametrize("case", [pytest.param(c, id=c.id, marks=c.marks) for c in CASES])
def test_bad_input(case: Case, tree, request, no_verbs_dir):
    root = case_root(case, tree, request)
    env = {k: v.replace("@NOVERBS@", str(no_verbs_dir)) for k, v in case.env.items()}
    if "@LOCPATH@" in env.get("LOCPATH", ""):
        env["LOCPATH"] = str(request.getfixturevalue("decimal_comma_locale"))
    code = BODY.format(prepare=case.prepare, action=case.action)
    out = run_child(code, root, env)
    o = out["outcome"]
    if case.check:
        assert o.get("ok"), f"{case.id}: expected a fallback, got {o}"
        case.check(out)
        return
    assert not o.get("ok"), f"{case.id}: expected {case.error}, got a result {o}"
    assert case.error in o["mro"], f"{case.id}: expected {case.error}, got {o}"
    if case.error != "ValueError":
        assert "NumabindError" in o["mro"], o
    if case.errno is not None:
        assert o["errno"] == case.errno, f"{case.id}: errno {o['errno']}, expected {case.errno}: {o['msg']}"
    for needle in case.says:
        assert needle in o["msg"], f"{case.id}: {needle!r} not in {o['msg']!r}"
    if case.error == "EnvironmentValueError":   # the core named the variable, one the case set
        assert o["variable"] in case.env, f"{case.id}: variable {o['variable']!r}, case sets {list(case.env)}"
    if "drop_dac_override" in case.prepare:
        assert out["probe"] == "PermissionError", "the file was readable: the case proves nothing"
    if case.id == "numa-unavailable":
        assert out["probe"] == -1, "libnuma's numa_available() did not report NUMA unavailable"
    assert out["after"] == out["before"], f"{case.id}: the process changed although the call failed"


def test_table_lists_every_case():
    """docs/reliability.md's bad-input table and CASES name the same cases."""
    text = DOC.read_text()
    section = text.split("## Bad input", 1)[1].split("\n## ", 1)[0]
    rows = re.findall(r"^\| `([a-z0-9-]+)` \|", section, re.M)
    assert rows, "no table rows found in docs/reliability.md"
    assert sorted(rows) == sorted(CASE_IDS), (set(rows) ^ set(CASE_IDS))
    assert len(rows) >= 25


# --------------------------------------------------------------------------
# concurrency
# --------------------------------------------------------------------------

def test_topology_and_plan_from_8_threads_are_identical(tree):
    """The GIL is released inside the C calls: eight threads really read and
    plan at once, on a fixture tree and on this host, and agree."""
    roots = [tree("dgx-h100"), tree(copy.deepcopy(rel_desc())), None]
    expected = [(numabind.topology(r).to_dict(), numabind.plan(topology=numabind.topology(r)).to_json())
                for r in roots]
    barrier = threading.Barrier(8)
    results: list[list] = [[] for _ in range(8)]
    errors: list[BaseException] = []

    def work(i: int) -> None:
        try:
            barrier.wait()
            for k in range(12):
                r = roots[(i + k) % len(roots)]
                t = numabind.topology(r)
                results[i].append(((i + k) % len(roots), t.to_dict(), numabind.plan(topology=t).to_json()))
        except BaseException as e:   # noqa: BLE001 - reported below
            errors.append(e)

    threads = [threading.Thread(target=work, args=(i,)) for i in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors, errors
    for per_thread in results:
        assert len(per_thread) == 12
        for which, topo, plan in per_thread:
            assert topo == expected[which][0]
            assert plan == expected[which][1]


SPAWN_200 = r'''
rounds = []
for attempt in range(5):
    release = threading.Event()
    started = [0]
    def spawner():
        for _ in range(200):
            threading.Thread(target=release.wait, daemon=True).start()
            started[0] += 1
    s = threading.Thread(target=spawner)
    s.start()
    while started[0] < 5:
        time.sleep(0.0001)
    at_call = started[0]
    r = numabind.pin_rank(attempt % 2, local_world_size=2, topology=topo())
    at_return = started[0]
    s.join()
    want = ",".join(str(c) for c in r.cpus)
    aff = affinities()
    rounds.append({"want": want, "at_call": at_call, "at_return": at_return, "threads": len(aff),
                   "wrong": {t: a for t, a in aff.items() if a != want}})
    release.set()
    for t in threading.enumerate():
        if t is not threading.main_thread() and t not in IDLE:
            t.join()
result(rounds=rounds)
HOLD.set()
'''


@needs_cpus
def test_pin_while_200_threads_start_binds_them_all(tree):
    out = run_child("baseline()\n" + SPAWN_200, tree(copy.deepcopy(rel_desc())))
    during = 0
    for r in out["rounds"]:
        assert r["threads"] >= 201, r
        assert r["wrong"] == {}, f"threads left off CPUs {r['want']}: {r['wrong']}"
        during += r["at_return"] > r["at_call"]
    assert during > 0, f"no thread started while pin_rank ran in 5 rounds: {out['rounds']}"


FORK = r'''
import numabind._core
parent_topo = topo()
baseline()
parent_before = state()
r_fd, w_fd = os.pipe()
pid = os.fork()
if pid == 0:
    os.close(r_fd)
    try:
        # the child's own threads only: the parent's did not come along
        kids = affinities()
        fresh = numabind.plan(topology=topo()).to_json() == numabind.plan(topology=parent_topo).to_json()
        r = numabind.pin_rank(1, local_world_size=2, topology=parent_topo)
        out = {"ok": True, "kids_before": len(kids), "same_plan": fresh, "cpus": list(r.cpus),
               "after": affinities(), "mempolicy": get_mempolicy(), "nic": os.environ.get("NVSHMEM_HCA_LIST")}
    except BaseException as e:
        out = err(e)
    os.write(w_fd, json.dumps(out).encode())
    os._exit(0)
os.close(w_fd)
data = b""
while True:
    chunk = os.read(r_fd, 65536)
    if not chunk:
        break
    data += chunk
os.waitpid(pid, 0)
result(child=json.loads(data), parent_before=parent_before, parent_after=state())
HOLD.set()
'''


@needs_cpus
@needs_numa
def test_forked_child_plans_and_pins_alone(tree):
    out = run_child(FORK, tree(copy.deepcopy(rel_desc())))
    child = out["child"]
    assert child.get("ok"), child
    assert child["kids_before"] == 1, "a forked child has one thread"
    assert child["same_plan"] is True
    assert child["cpus"] == [1] and set(child["after"].values()) == {"1"}
    assert child["mempolicy"] == [1, [0]] and child["nic"] == "mlx5_0:1"
    before, after = out["parent_before"], out["parent_after"]
    assert after["mempolicy"] == before["mempolicy"] and after["env"] == before["env"]
    # Every parent thread as it was. (A library's pool may stop a worker at
    # fork -- OpenBLAS does -- so a thread may be gone; none may be new or moved.)
    moved = {t: a for t, a in after["affinities"].items() if before["affinities"].get(t) != a}
    assert not moved, f"pinning the child changed the parent's threads: {moved}"
    assert len(after["affinities"]) >= 5, after


# --------------------------------------------------------------------------
# leaks, through the binding
# --------------------------------------------------------------------------

def _rss_kb() -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss


def test_topology_and_plan_cycles_do_not_grow(tree):
    """The C-level check runs 100,000 cycles under LeakSanitizer and valgrind
    (tools/ci/stage-fuzz.sh); here the Python objects that own the handles:
    3,000 cycles after a warm-up, and the process's resident set may not
    grow by more than 4 MB (a leaked topology of this tree is ~60 KB)."""
    root = tree(copy.deepcopy(rel_desc()))

    def cycles(n: int) -> None:
        for _ in range(n):
            t = numabind.topology(root)
            p = numabind.plan(topology=t)
            del t               # the plan outlives its topology
            assert len(p) == 2
            try:
                numabind.plan(5, topology=numabind.topology(root))
            except numabind.PlacementError:
                pass

    cycles(500)
    start = _rss_kb()
    cycles(3000)
    grown = _rss_kb() - start
    assert grown < 4096, f"resident set grew by {grown} KB over 3,000 topology/plan cycles"
