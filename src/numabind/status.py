"""Where a process runs now, checked against the plan for its rank:
``numabind status [--pid P]`` (numactl --show / hwloc-bind --get, plus the
plan).

Everything is read from ``/proc/PID`` so that any process of the same user
(root: any process) can be checked from outside:

- each thread's CPUs and allowed memory nodes: ``task/TID/status``
  (``Cpus_allowed_list``, ``Mems_allowed_list``);
- each thread's memory policy: ``task/TID/numa_maps``, whose lines show a
  mapping's own policy or, for mappings without one, the thread's (the
  stack's line: the kernel's ``show_numa_map``);
- the NIC and launcher variables: ``environ``, the environment the process
  was started with. ``numabind exec`` exports before it starts the command,
  so its variables show; ``pin_rank()`` exports into a running process,
  which ``environ`` never shows (for this process, ``os.environ`` is read).

The plan is the one every rank of the node computes: for the local rank in
the process's environment (or ``local_rank=``), under its
``CUDA_VISIBLE_DEVICES`` and launcher variables.
"""

from __future__ import annotations

import errno
import os
from contextlib import contextmanager
from typing import Any, Iterator

from numabind import _core
from numabind.errors import NumabindError

__all__ = ["NIC_VARIABLES", "read"]

#: The variables a plan exports (plan_env.c), in the order ``env`` prints them.
NIC_VARIABLES = ("NVSHMEM_HCA_LIST", "NVSHMEM_ENABLE_NIC_PE_MAPPING", "NCCL_IB_HCA", "UCX_NET_DEVICES",
                 "EP_NIC_NAME")
# What the plan is computed from: the launcher's rank and size, the visible GPUs.
_PLAN_INPUTS = ("LOCAL_RANK", "LOCAL_WORLD_SIZE", "OMPI_COMM_WORLD_LOCAL_RANK", "OMPI_COMM_WORLD_LOCAL_SIZE",
                "MPI_LOCALRANKID", "MPI_LOCALNRANKS", "PMI_LOCAL_RANK", "PMI_LOCAL_SIZE", "SLURM_LOCALID",
                "SLURM_STEP_TASKS_PER_NODE", "SLURM_TASKS_PER_NODE", "SLURM_NTASKS_PER_NODE", "SLURM_NODEID",
                "SLURM_STEP_NODE_LIST", "CUDA_VISIBLE_DEVICES", "CUDA_DEVICE_ORDER", *NIC_VARIABLES)

# numa_maps' policy names (mm/mempolicy.c policy_modes[]) to numabind's.
_POLICIES = {"default": "default", "prefer": "preferred", "bind": "bind", "interleave": "interleave",
             "local": "local", "prefer (many)": "preferred-many", "weighted interleave": "weighted-interleave"}


def _read(path: str) -> str:
    with open(path, encoding="utf-8", errors="surrogateescape") as f:
        return f.read()


def _status_fields(text: str) -> dict[str, str]:
    out = {}
    for line in text.splitlines():
        key, sep, value = line.partition(":")
        if sep:
            out[key] = value.strip()
    return out


def _policy(numa_maps: str) -> tuple[str, tuple[int, ...]] | None:
    """The thread's policy from its numa_maps: the stack's line, else the
    first. A line is "ADDRESS POLICY[=FLAGS][:NODES] ..." (mpol_to_str);
    two policy names hold a space ("prefer (many)", "weighted interleave")."""
    lines = numa_maps.splitlines()
    line = next((x for x in lines if " stack" in x), lines[0] if lines else "")
    rest = line.partition(" ")[2]
    for name in sorted(_POLICIES, key=len, reverse=True):
        if rest.startswith(name) and rest[len(name):len(name) + 1] in ("", " ", "=", ":"):
            word = rest[len(name):].split(" ", 1)[0]          # "=static:0-1", ":0", ""
            nodes = word.partition(":")[2]
            return _POLICIES[name], tuple(_core.parse_cpulist(nodes)) if nodes else ()
    return None


def _environ(pid: int) -> dict[str, str]:
    data = open(f"/proc/{pid}/environ", "rb").read()
    out = {}
    for entry in data.split(b"\0"):
        key, sep, value = entry.partition(b"=")
        if sep:
            out[os.fsdecode(key)] = os.fsdecode(value)
    return out


def _threads(pid: int) -> list[dict[str, Any]]:
    threads = []
    for name in sorted(os.listdir(f"/proc/{pid}/task"), key=int):
        base = f"/proc/{pid}/task/{name}"
        try:
            fields = _status_fields(_read(f"{base}/status"))
        except (FileNotFoundError, ProcessLookupError):
            continue                                  # the thread ended meanwhile
        try:
            policy = _policy(_read(f"{base}/numa_maps"))
        except (FileNotFoundError, ProcessLookupError):
            continue
        except PermissionError:
            policy = None                             # another user's process: ptrace access needed
        threads.append({
            "tid": int(name), "name": fields.get("Name", "?"),
            "cpus": list(_core.parse_cpulist(fields.get("Cpus_allowed_list", ""))),
            "mems_allowed": list(_core.parse_cpulist(fields.get("Mems_allowed_list", ""))),
            "mem_policy": policy[0] if policy else None,
            "mem_nodes": list(policy[1]) if policy else None,
        })
    return threads


@contextmanager
def _environment(env: dict[str, str]) -> Iterator[None]:
    """os.environ's plan inputs replaced by ``env``'s for the block: the C
    core reads the launcher variables and CUDA_VISIBLE_DEVICES by getenv."""
    saved = {k: os.environ.get(k) for k in _PLAN_INPUTS}
    try:
        for k in _PLAN_INPUTS:
            if k in env:
                os.environ[k] = env[k]
            else:
                os.environ.pop(k, None)
        yield
    finally:
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v


def _differences(threads: list[dict[str, Any]], env: dict[str, str], rank: Any, own: bool) -> list[str]:
    out = []
    planned = set(rank.cpus)
    for t in threads:
        cpus = set(t["cpus"])
        if not cpus <= planned:
            out.append(f"thread {t['tid']} ({t['name']}) may run on CPUs {_core.format_cpulist(sorted(cpus))}, "
                       f"outside the plan's {_core.format_cpulist(rank.cpus)}")
        if t["mem_policy"] is None:
            continue
        nodes = tuple(t["mem_nodes"])
        if rank.mem_policy == "default":
            if t["mem_policy"] != "default":
                out.append(f"thread {t['tid']} ({t['name']}) has memory policy {t['mem_policy']} "
                           f"{_core.format_cpulist(nodes)}; the plan leaves it to the kernel (default)")
        elif rank.mem_policy == "local":
            # MPOL_LOCAL names no node: the kernel shows it as "local" alone
            if t["mem_policy"] != "local":
                have = t["mem_policy"] + (f" {_core.format_cpulist(nodes)}" if nodes else "")
                out.append(f"thread {t['tid']} ({t['name']}) has memory policy {have}; the plan says local")
        elif (t["mem_policy"], nodes) != (rank.mem_policy, tuple(rank.mem_nodes)):
            have = t["mem_policy"] + (f" {_core.format_cpulist(nodes)}" if nodes else "")
            out.append(f"thread {t['tid']} ({t['name']}) has memory policy {have}; the plan says "
                       f"{rank.mem_policy} {_core.format_cpulist(rank.mem_nodes)}")
    where = "environment" if own else "start-up environment (/proc/PID/environ)"
    for name, value in rank.env.items():
        have = env.get(name)
        if have is None:
            out.append(f"{name} is not set in its {where}; the plan exports {name}={value}")
        elif have != value:
            out.append(f"{name}={have} in its {where}; the plan says {name}={value}")
    return out


def _cgroup(pid: int | str) -> str | None:
    """The process's cgroup v2 path ("0::/path" in /proc/PID/cgroup), or None."""
    try:
        for line in _read(f"/proc/{pid}/cgroup").splitlines():
            if line.startswith("0::"):
                return line[3:]
    except OSError:
        pass
    return None


def _other_cpuset(pid: int) -> str | None:
    """Why the plan may not be the process's own: it lives in another cgroup
    whose cpuset differs from numabind's (a Slurm step, a container), and the
    plan comes from numabind's. None when they agree or it cannot be told."""
    mine, theirs = _cgroup("self"), _cgroup(pid)
    if mine is None or theirs is None or mine == theirs:
        return None

    def cpus(group: str) -> str | None:
        try:
            return _read(f"/sys/fs/cgroup{group.rstrip('/')}/cpuset.cpus.effective").strip()
        except OSError:
            return None

    a, b = cpus(mine), cpus(theirs)
    if a is None or b is None or a == b:
        return None
    return (f"pid {pid} is in cgroup {theirs} (CPUs {b}), numabind in {mine} (CPUs {a}): the plan is made from "
            f"numabind's cpuset; run numabind status inside the job's cgroup for the job's own plan")


def read(pid: int | None = None, *, local_rank: int | None = None, fsroot: str | None = None,
         **plan_options: Any) -> dict[str, Any]:
    """Where process ``pid`` (default: this one) and each of its threads are
    bound, its NIC variables, the plan for its local rank, and what differs.

    The machine is read under the process's own ``CUDA_VISIBLE_DEVICES`` and
    launcher variables (``fsroot``: a tree instead of this host, as
    :func:`numabind.topology`). ``plan_options`` are :func:`numabind.plan`'s (``policy``, ``mem``,
    ``local_world_size``, ``reserve_cores``). Raises ``ProcessLookupError``
    for a process that does not exist, ``PermissionError`` where /proc does
    not let this user read it, and numabind's errors where no plan can be
    made (no local rank in its environment and none given, say).
    """
    from numabind.placement import plan as make_plan, rank_in

    own = pid is None or pid == os.getpid()
    pid = os.getpid() if pid is None else pid
    if not os.path.isdir(f"/proc/{pid}"):
        raise ProcessLookupError(3, f"no process {pid}")
    threads = _threads(pid)
    env = dict(os.environ) if own else _environ(pid)
    comm = threads[0]["name"] if threads else "?"
    with _environment(env):
        if local_rank is None:
            try:
                local_rank, source = _core.local_rank_from_env()
            except NumabindError as e:
                if e.errno != errno.ENOENT:
                    raise
                local_rank, source = None, None      # its binding still shows; no plan to check against
        else:
            source = "--local-rank"
        from numabind.topology import topology as read_topology

        planned = make_plan(override_env=True, topology=read_topology(fsroot), **plan_options)
    result: dict[str, Any] = {
        "pid": pid, "name": comm, "local_rank": local_rank, "rank_source": source,
        "threads": threads,
        "env": {name: env[name] for name in NIC_VARIABLES if name in env},
        "plan": None, "note": planned.note, "differs": [],
    }
    other = _other_cpuset(pid) if not own and fsroot is None else None
    if other:
        result["cpuset_note"] = other
    if local_rank is None:
        result["note"] = ("no local rank in its environment (LOCAL_RANK, SLURM_LOCALID, ...): give it with "
                          "--local-rank R to check against its plan")
        return result
    if not planned.ranks:
        return result
    rank = rank_in(planned.ranks, local_rank, f" (from {source})", "status")
    result["plan"] = rank.to_dict()
    result["differs"] = _differences(threads, env, rank, own)
    return result


def render(result: dict[str, Any]) -> str:
    """The text of ``numabind status``."""
    from numabind._printable import printable

    fmt = _core.format_cpulist
    rank = ("no local rank" if result["local_rank"] is None
            else f"local rank {result['local_rank']} (from {result['rank_source']})")
    out = [printable(f"pid {result['pid']} ({result['name']}), {rank}")]
    rows = [["tid", "name", "CPUs", "memory"]]
    for t in result["threads"]:
        memory = "unreadable" if t["mem_policy"] is None else \
            t["mem_policy"] + (f" {fmt(t['mem_nodes'])}" if t["mem_nodes"] else "")
        rows.append([str(t["tid"]), printable(t["name"]), fmt(t["cpus"]), memory])
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    out += ["  " + "  ".join(c.ljust(w) for c, w in zip(r, widths)).rstrip() for r in rows]
    env = result["env"]
    out.append("NIC variables: " + (printable(" ".join(f"{k}={v}" for k, v in env.items())) if env else "none set"))
    if result.get("cpuset_note"):
        out.append(printable(f"note: {result['cpuset_note']}"))
    p = result["plan"]
    if p is None:
        out.append(printable(f"plan: none: {result['note']}"))
        return "\n".join(out)
    nic = f"{p['hca']}:{p['hca_port']} ({p['distance']})" if p["hca"] else "no RDMA NIC"
    out.append(printable(f"plan: GPU {p['gpu']} {p['gpu_pci']}, CPUs {fmt(p['cpus'])}, memory {p['mem_policy']} "
                         f"{fmt(p['mem_nodes'])}, NIC {nic}"))
    if result["differs"]:
        out.append("differs from the plan:")
        out += [printable(f"  {d}") for d in result["differs"]]
    else:
        out.append("matches the plan")
    return "\n".join(out)
