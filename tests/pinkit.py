"""Helpers shared by the tests that pin real processes: tests/test_pin.py and
tests/test_reliability.py (the child interpreter, the guard on the pytest
process, the two-GPU machine), tests/test_audit.py and tests/test_deep_ep.py
(the two-node machine).

Those tests pin a fresh child interpreter, never the pytest process: the
child runs ``child_prelude(...)`` followed by its test's own code, and prints
one ``RESULT {json}`` line that ``run_child`` returns. The prelude is
standard library and numabind only, so the child imports neither pytest nor
this module.
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

import sysfs_tree as st

NIC_VARS = ("NVSHMEM_HCA_LIST", "NVSHMEM_ENABLE_NIC_PE_MAPPING", "NCCL_IB_HCA", "UCX_NET_DEVICES", "EP_NIC_NAME")


# --------------------------------------------------------------------------
# this machine
# --------------------------------------------------------------------------

def _online_nodes() -> list[int] | None:
    try:
        return st.parse_cpulist(Path("/sys/devices/system/node/online").read_text())
    except OSError:
        return None


ONLINE_NODES = _online_nodes()
HAVE_NODE_0 = 0 in (ONLINE_NODES or [])
HAVE_CPUS_0_1 = {0, 1} <= os.sched_getaffinity(0)

needs_cpus = pytest.mark.skipif(not HAVE_CPUS_0_1, reason="needs CPUs 0 and 1 in this process's affinity")
needs_numa = pytest.mark.skipif(not HAVE_NODE_0, reason="needs a NUMA-enabled kernel with node 0")


@pytest.fixture(autouse=True)
def _pytest_process_untouched():
    """Autouse in the modules that import it: a test may pin its children,
    never the pytest process."""
    before = os.sched_getaffinity(0)
    yield
    assert os.sched_getaffinity(0) == before, "a test changed the pytest process's affinity"


# --------------------------------------------------------------------------
# machines
# --------------------------------------------------------------------------

def two_gpu_desc(name: str = "plain-2cpu-2gpu", expected: bool = True) -> dict:
    """tests/fixtures/plain-2cpu-2gpu.json: plain-2cpu-no-gpu with node 0
    known and two GPUs plus an IB NIC on it: local_world_size=2 gives rank r
    CPU r and NIC mlx5_0 port 1, on any machine with CPUs 0 and 1 (the C
    tests apply it to this machine too). ``name`` names the tree;
    ``expected=False`` leaves the description's expected GPUs empty."""
    d = st.load(Path(__file__).resolve().parent / "fixtures" / "plain-2cpu-2gpu.json")
    d["name"] = name
    if not expected:
        d["expected"] = {"gpus": []}
    return d


def two_node_desc() -> dict:
    """Two nodes of one CPU each (CPU 0 on node 0, CPU 1 on node 1), a GPU
    and an InfiniBand NIC on each."""
    d = st.load("plain-2cpu-no-gpu")
    d["name"] = "two-node-two-gpu"
    d["cpu"]["nodes"] = [{"id": 0, "cpus": "0", "socket": 0, "mem_mib": 12000},
                         {"id": 1, "cpus": "1", "socket": 0, "mem_mib": 12000}]
    d["cpu"].pop("distances", None)
    d["allowed"] = {"cpus": "0-1", "mems": "0-1"}
    nic = {"kind": "nic", "link_layer": "InfiniBand", "state": "ACTIVE", "rate": "400 Gb/sec (4X NDR)",
           "vendor": "0x15b3", "device": "0x1021"}
    d["pci"] = [
        {"root": "pci0000:00", "numa": 0, "devices": [
            {"bdf": "0000:00:04.0", "kind": "gpu", "vendor": "0x10de", "device": "0x2330"},
            {"bdf": "0000:00:06.0", "ibdev": "mlx5_0", "netdev": "ib0", **nic}]},
        {"root": "pci0000:80", "numa": 1, "devices": [
            {"bdf": "0000:80:04.0", "kind": "gpu", "vendor": "0x10de", "device": "0x2330"},
            {"bdf": "0000:80:06.0", "ibdev": "mlx5_1", "netdev": "ib1", **nic}]},
    ]
    d["expected"] = {"gpus": [{"bdf": "0000:00:04.0", "numa": 0, "hca": "mlx5_0"},
                              {"bdf": "0000:80:04.0", "numa": 1, "hca": "mlx5_1"}]}
    return d


# --------------------------------------------------------------------------
# the child
# --------------------------------------------------------------------------

_CHILD_IMPORTS = r'''
import ctypes, json, os, platform, sys, threading, time
import numabind
'''

_CHILD_HELPERS = r'''
# syscall numbers, and the audit arch a seccomp filter checks
NR = {"x86_64": dict(set_mempolicy=238, get_mempolicy=239, sched_setaffinity=203, capget=125, capset=126,
                     arch=0xC000003E),
      "aarch64": dict(set_mempolicy=237, get_mempolicy=236, sched_setaffinity=122, capget=90, capset=91,
                      arch=0xC00000B7),
      "ppc64le": dict(set_mempolicy=261, get_mempolicy=260),
      "s390x": dict(set_mempolicy=270, get_mempolicy=269)}.get(platform.machine(), {})
libc = ctypes.CDLL(None, use_errno=True)
libc.syscall.restype = ctypes.c_long
WORDS = 16

def get_mempolicy():
    """[mode, nodes]; where the kernel refuses: OSError, or ["unreadable",
    errno] unless RAISE_ON_MEMPOLICY_ERROR."""
    mode = ctypes.c_int(-1)
    mask = (ctypes.c_ulong * WORDS)()
    if libc.syscall(ctypes.c_long(NR["get_mempolicy"]), ctypes.byref(mode), mask, ctypes.c_ulong(WORDS * 64),
                    ctypes.c_void_p(0), ctypes.c_ulong(0)) != 0:
        e = ctypes.get_errno()
        if RAISE_ON_MEMPOLICY_ERROR:
            raise OSError(e, "get_mempolicy: " + os.strerror(e))
        return ["unreadable", e]
    return [mode.value, [i for i in range(WORDS * 64) if mask[i // 64] >> (i % 64) & 1]]

def set_mempolicy(mode, nodes=()):
    """The syscall's result; where the kernel refuses, OSError if
    RAISE_ON_MEMPOLICY_ERROR."""
    mask = (ctypes.c_ulong * WORDS)()
    for n in nodes:
        mask[n // 64] |= 1 << (n % 64)
    rc = libc.syscall(ctypes.c_long(NR["set_mempolicy"]), ctypes.c_long(mode),
                      mask if nodes else ctypes.c_void_p(0), ctypes.c_ulong(WORDS * 64 + 1 if nodes else 0))
    if rc != 0 and RAISE_ON_MEMPOLICY_ERROR:
        e = ctypes.get_errno()
        raise OSError(e, "set_mempolicy: " + os.strerror(e))
    return rc

def affinities():
    """tid -> Cpus_allowed_list of every live thread of this process."""
    out = {}
    for tid in os.listdir("/proc/self/task"):
        try:
            with open(f"/proc/self/task/{tid}/status") as f:
                text = f.read()
        except OSError:
            continue     # exited meanwhile
        for line in text.splitlines():
            if line.startswith("Cpus_allowed_list:"):
                out[tid] = line.split(":", 1)[1].strip()
    return out

def nic_env():
    return {k: os.environ.get(k) for k in NIC_VARS}

HOLD = threading.Event()

def idle_threads(masks):
    """One thread per mask (None: inherit), parked until HOLD."""
    ts = []
    for m in masks:
        t = threading.Thread(target=HOLD.wait, daemon=True)
        t.start()
        if m is not None:
            os.sched_setaffinity(t.native_id, m)
        ts.append(t)
    return ts

def state():
    return {"affinities": affinities(), "mempolicy": get_mempolicy(), "env": nic_env()}

def err(e):
    return {"type": type(e).__name__, "mro": [c.__name__ for c in type(e).__mro__], "msg": str(e),
            "errno": getattr(e, "errno", None), "variable": getattr(e, "variable", None)}

def result(**kw):
    print("RESULT " + json.dumps(kw), flush=True)
'''


def child_prelude(raise_on_mempolicy_error: bool) -> str:
    """The code a child starts with: NIC_VARS, NR/libc/WORDS, get_mempolicy,
    set_mempolicy, affinities, nic_env, HOLD, idle_threads, state, err and
    result. With ``raise_on_mempolicy_error`` a refused get/set_mempolicy
    raises OSError (the child fails); without it, get_mempolicy reports
    ["unreadable", errno] and set_mempolicy returns the syscall's -1, so a
    snapshot can still be taken where the kernel refuses."""
    return (_CHILD_IMPORTS + f"NIC_VARS = {NIC_VARS!r}\n"
            + f"RAISE_ON_MEMPOLICY_ERROR = {raise_on_mempolicy_error!r}\n" + _CHILD_HELPERS)


def child_env(launcher_vars: tuple[str, ...], extra: dict | None = None) -> dict:
    """This environment less launcher_vars, NIC_VARS and what selects a tree
    or GPUs (NUMABIND_FSROOT, CUDA_*), plus extra."""
    strip = launcher_vars + NIC_VARS + ("NUMABIND_FSROOT", "CUDA_VISIBLE_DEVICES", "CUDA_DEVICE_ORDER")
    env = {k: v for k, v in os.environ.items() if k not in strip}
    env.update(extra or {})
    return env


def run_child(code: str, root: Path | str | None, env: dict | None, *, launcher_vars: tuple[str, ...],
              timeout: int) -> dict:
    """Runs code in a fresh interpreter (sys.argv[1]: root, or "-" for none)
    in child_env(launcher_vars, env); returns its last RESULT line."""
    p = subprocess.run([sys.executable, "-c", code, str(root) if root else "-"], capture_output=True,
                       text=True, env=child_env(launcher_vars, env), timeout=timeout)
    assert p.returncode == 0, f"child failed (rc {p.returncode}):\n{p.stdout}\n{p.stderr}"
    lines = [line for line in p.stdout.splitlines() if line.startswith("RESULT ")]
    assert lines, f"child printed no result:\n{p.stdout}\n{p.stderr}"
    return json.loads(lines[-1][len("RESULT "):])
