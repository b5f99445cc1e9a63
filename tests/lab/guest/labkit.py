"""Helpers for the guest tests: the kernel's own view (sysfs, /proc,
move_pages), and running a probe in a forked child so that pinning it
leaves the pytest process alone. Standard library, libnuma and the
fixture writer's list helpers only: what is checked here is read without
numabind."""
from __future__ import annotations

import ctypes
import json
import mmap
import os
import re
import struct
import threading
import time
import traceback
from collections.abc import Callable
from pathlib import Path
from typing import Any

# The kernel's "0-3,8" lists, read and written as tests/sysfs_tree.py does for
# the fixture trees (tests/ is on sys.path: tests/conftest.py).
from sysfs_tree import format_cpulist as format_list
from sysfs_tree import parse_cpulist as parse_list

PAGE = mmap.PAGESIZE
SYS = Path("/sys")


def read(path: str | Path) -> str:
    return Path(path).read_text().strip()


def pci_function(sysdev: str | Path) -> Path:
    """The PCI function that owns a sysfs device (a virtio netdev's device
    is virtioN below the function; an e1000e's is the function)."""
    p = Path(os.path.realpath(sysdev))
    while p != p.parent:
        sub = p / "subsystem"
        if sub.exists() and os.path.basename(os.path.realpath(sub)) == "pci":
            return p
        p = p.parent
    raise AssertionError(f"{sysdev} has no PCI function above it")


def host_bridge(fn: Path) -> str:
    """pci0000:20 for /sys/devices/pci0000:20/0000:20:00.0/..."""
    return next(part for part in fn.parts if re.fullmatch(r"pci[0-9a-f]{4}:[0-9a-f]{2}", part))


def nccl_ib_hca(layout: dict) -> str:
    """NCCL_IB_HCA as every rank exports it: "=" and every NIC of the layout
    (all one soft-RoCE model, so all compute NICs), in the PCI order of the
    function under each one's netdev, read from the guest's sysfs."""
    def address(name: str) -> str:
        netdev = read(SYS / "class" / "infiniband" / name / "parent")
        return pci_function(SYS / "class" / "net" / netdev / "device").name
    return "=" + ",".join(f"{n}:1" for n in sorted((n["name"] for n in layout["nics"]), key=address))


def netdev_by_mac() -> dict[str, str]:
    out = {}
    for n in (SYS / "class" / "net").iterdir():
        if (n / "device").exists():
            out[read(n / "address")] = n.name
    return out


def task_cpus(pid: int) -> dict[int, list[int]]:
    """Every thread's allowed CPUs, from /proc/PID/task/*/status."""
    out = {}
    for t in Path(f"/proc/{pid}/task").iterdir():
        try:
            status = (t / "status").read_text()
        except FileNotFoundError:
            continue  # exited meanwhile
        m = re.search(r"^Cpus_allowed_list:\s*(\S+)", status, re.MULTILINE)
        out[int(t.name)] = parse_list(m.group(1))
    return out


def last_cpu(pid: int, tid: int) -> int:
    """The CPU a thread last ran on (field 39 of /proc/PID/task/TID/stat)."""
    stat = Path(f"/proc/{pid}/task/{tid}/stat").read_text()
    return int(stat.rsplit(")", 1)[1].split()[36])


# ---- pages ----

_libnuma = ctypes.CDLL("libnuma.so.1", use_errno=True)
_libnuma.move_pages.restype = ctypes.c_long
_libnuma.move_pages.argtypes = [ctypes.c_int, ctypes.c_ulong, ctypes.POINTER(ctypes.c_void_p),
                                ctypes.POINTER(ctypes.c_int), ctypes.POINTER(ctypes.c_int), ctypes.c_int]


class Pages:
    """`n` anonymous pages, each touched once (first touch allocates)."""

    def __init__(self, n: int = 128):
        self.n = n
        self.map = mmap.mmap(-1, n * PAGE)
        self.base = ctypes.addressof(ctypes.c_char.from_buffer(self.map))
        for i in range(n):
            self.map[i * PAGE] = 1

    def nodes(self) -> list[int]:
        """Where each page is, from move_pages(2) with no target (a query)."""
        pages = (ctypes.c_void_p * self.n)(*[self.base + i * PAGE for i in range(self.n)])
        status = (ctypes.c_int * self.n)()
        rc = _libnuma.move_pages(0, self.n, pages, None, status, 0)
        if rc != 0:
            raise OSError(ctypes.get_errno(), f"move_pages returned {rc}")
        return list(status)

    def numa_maps(self) -> dict[str, Any]:
        """This mapping's line of /proc/self/numa_maps: the policy the
        kernel applies to it and its pages per node."""
        for line in Path("/proc/self/numa_maps").read_text().splitlines():
            addr, policy, *rest = line.split()
            if int(addr, 16) == self.base:
                counts = {int(k[1:]): int(v) for k, v in (f.split("=") for f in rest if re.fullmatch(r"N\d+=\d+", f))}
                return {"policy": policy, "pages": counts}
        raise AssertionError(f"no numa_maps line for {self.base:#x}")


def refuse_syscall(nr: int, err: int) -> None:
    """From now on the kernel refuses syscall `nr` with `err` for this
    thread and the threads it starts (a seccomp filter, x86_64: the lab's
    guests are). A real refusal, as a container's profile gives."""
    def op(code: int, k: int, jt: int = 0, jf: int = 0) -> bytes:
        return struct.pack("HBBI", code, jt, jf, k & 0xFFFFFFFF)
    audit_arch_x86_64, ld, jeq, ret, allow, errno_ret = 0xC000003E, 0x20, 0x15, 0x06, 0x7FFF0000, 0x00050000
    prog = b"".join([op(ld, 4), op(jeq, audit_arch_x86_64, 1, 0), op(ret, allow),
                     op(ld, 0), op(jeq, nr, 0, 1), op(ret, errno_ret | err), op(ret, allow)])

    class Fprog(ctypes.Structure):
        _fields_ = [("len", ctypes.c_ushort), ("filter", ctypes.c_void_p)]
    buf = ctypes.create_string_buffer(prog)
    fprog = Fprog(len(prog) // 8, ctypes.cast(buf, ctypes.c_void_p))
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.prctl(38, 1, 0, 0, 0) != 0 or libc.prctl(22, 2, ctypes.byref(fprog), 0, 0) != 0:  # NO_NEW_PRIVS, SECCOMP
        raise OSError(ctypes.get_errno(), "seccomp filter refused")


# ---- forked probes ----

def _loads(data: bytes) -> Any:
    """JSON with digit keys back to ints (numa_maps' pages per node)."""
    return json.loads(data, object_pairs_hook=lambda kv: {int(k) if k.isdigit() else k: v for k, v in kv})


def in_child(fn: Callable[..., Any], *args: Any, timeout: float = 120) -> Any:
    """Runs fn(*args) in a forked child and returns its JSON-able result; an
    exception in the child is raised here as an AssertionError with its
    traceback."""
    r, w = os.pipe()
    pid = os.fork()
    if pid == 0:  # child
        os.close(r)
        try:
            payload = json.dumps({"ok": fn(*args)})
        except BaseException:
            payload = json.dumps({"error": traceback.format_exc()})
        os.write(w, payload.encode())
        os._exit(0)
    os.close(w)
    data = b""
    deadline = time.monotonic() + timeout
    with os.fdopen(r, "rb") as f:
        data = f.read()
    _, status = os.waitpid(pid, 0)
    assert time.monotonic() < deadline, f"probe took more than {timeout} s"
    assert data, f"probe child died without answering (wait status {status})"
    res = _loads(data)
    if "error" in res:
        raise AssertionError("in the probe child:\n" + res["error"])
    return res["ok"]


class Spinner:
    """Threads that keep running, so the CPU each last ran on means something."""

    def __init__(self, n: int):
        self.stop = threading.Event()
        self.tids: list[int] = []
        ready = threading.Barrier(n + 1)

        def body():
            self.tids.append(threading.get_native_id())
            ready.wait()
            x = 0
            while not self.stop.is_set():
                x += 1
                if x % 20000 == 0:
                    time.sleep(0.001)

        self.threads = [threading.Thread(target=body, daemon=True) for _ in range(n)]
        for t in self.threads:
            t.start()
        ready.wait()


class LiveChild:
    """A forked child that runs fn(*args), reports its JSON-able result and
    stays alive until the `with` block ends, so that its threads can be
    looked at from outside (/proc/PID/task)."""

    def __init__(self, fn: Callable[..., Any], *args: Any):
        self.fn, self.args = fn, args

    def __enter__(self) -> LiveChild:
        r, w = os.pipe()
        self._go_r, self._go_w = os.pipe()
        self.pid = os.fork()
        if self.pid == 0:  # child
            os.close(r)
            os.close(self._go_w)
            try:
                payload = json.dumps({"ok": self.fn(*self.args)})
            except BaseException:
                payload = json.dumps({"error": traceback.format_exc()})
            os.write(w, payload.encode() + b"\n")
            os.read(self._go_r, 1)  # until the parent has looked
            os._exit(0)
        os.close(w)
        os.close(self._go_r)
        with os.fdopen(r, "rb") as f:
            line = f.readline()
        assert line, "probe child died without answering"
        res = _loads(line)
        if "error" in res:
            self.__exit__(None, None, None)
            raise AssertionError("in the probe child:\n" + res["error"])
        self.result = res["ok"]
        return self

    def __exit__(self, *exc: object) -> None:
        os.write(self._go_w, b"x")
        os.close(self._go_w)
        os.waitpid(self.pid, 0)
