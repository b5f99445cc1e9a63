"""``numabind.status.read``: where a real process runs, read from /proc, checked
against the plan for its rank. The processes are real children (a `sleep`
started by `numabind exec` or under `taskset`); the machine is the two-GPU
fixture whose CPUs 0 and 1 are this host's, so its plans apply here."""
from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

import numabind
import pinkit
from pinkit import needs_cpus, needs_numa, _pytest_process_untouched  # noqa: F401

import numabind.status as status

NUMABIND = str(Path(sys.executable).parent / "numabind")


@pytest.fixture
def machine(tree):
    return tree(pinkit.two_gpu_desc())


def started(argv: list[str], env: dict[str, str]) -> subprocess.Popen:
    """A child that has exec'd its final program (sleep), so /proc shows it."""
    p = subprocess.Popen(argv, env=env)
    for _ in range(500):
        try:
            if Path(f"/proc/{p.pid}/comm").read_text().strip() == "sleep":
                return p
        except FileNotFoundError:
            pass
        time.sleep(0.01)
    p.kill()
    raise AssertionError(f"{argv} did not become sleep")


def stop(p: subprocess.Popen) -> None:
    p.kill()
    p.wait()


@needs_cpus
@needs_numa
def test_a_process_numabind_exec_pinned_matches_its_plan(machine, monkeypatch):
    env = dict(os.environ, NUMABIND_FSROOT=str(machine), LOCAL_RANK="1", LOCAL_WORLD_SIZE="2")
    p = started([NUMABIND, "exec", "--", "sleep", "30"], env)
    try:
        monkeypatch.setenv("NUMABIND_FSROOT", str(machine))
        r = status.read(p.pid)
    finally:
        stop(p)
    assert r["pid"] == p.pid and r["name"] == "sleep"
    assert (r["local_rank"], r["rank_source"]) == (1, "LOCAL_RANK")     # from the child's environment
    assert [t["cpus"] for t in r["threads"]] == [[1]]
    assert (r["threads"][0]["mem_policy"], r["threads"][0]["mem_nodes"]) == ("preferred", [0])
    assert r["plan"]["cpus"] == [1] and r["plan"]["hca"] == "mlx5_0"
    assert r["env"]["NVSHMEM_HCA_LIST"] == "mlx5_0:1"
    assert r["differs"] == []
    assert "matches the plan" in status.render(r)


@needs_cpus
def test_a_process_bound_elsewhere_differs_and_says_how(machine, monkeypatch):
    env = {k: v for k, v in os.environ.items() if k not in pinkit.NIC_VARS}
    env["LOCAL_RANK"] = "1"
    p = started(["taskset", "-c", "0", "sleep", "30"], env)
    try:
        monkeypatch.setenv("NUMABIND_FSROOT", str(machine))
        r = status.read(p.pid)
    finally:
        stop(p)
    assert r["plan"]["cpus"] == [1]
    text = "\n".join(r["differs"])
    assert f"thread {p.pid} (sleep) may run on CPUs 0, outside the plan's 1" in text
    assert "has memory policy default; the plan says preferred 0" in text
    assert "NVSHMEM_HCA_LIST is not set in its start-up environment (/proc/PID/environ); the plan exports " \
           "NVSHMEM_HCA_LIST=mlx5_0:1" in text
    out = status.render(r)
    assert "differs from the plan:" in out and "may run on CPUs 0" in out


@needs_cpus
def test_local_rank_given_overrides_the_environment(machine, monkeypatch):
    env = dict(os.environ, LOCAL_RANK="1")
    p = started(["taskset", "-c", "0", "sleep", "30"], env)
    try:
        monkeypatch.setenv("NUMABIND_FSROOT", str(machine))
        r = status.read(p.pid, local_rank=0)
    finally:
        stop(p)
    assert (r["local_rank"], r["rank_source"]) == (0, "--local-rank")
    assert r["plan"]["cpus"] == [0]
    assert not any("CPUs" in d for d in r["differs"])


def test_this_process_without_a_gpu_has_no_plan_and_says_why(monkeypatch):
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "")
    r = status.read(local_rank=0)
    assert r["pid"] == os.getpid() and r["plan"] is None
    assert "hides every GPU" in r["note"] or "no NVIDIA GPU" in r["note"] or "can open none" in r["note"]
    assert os.getpid() in {t["tid"] for t in r["threads"]}
    assert all(t["cpus"] == sorted(os.sched_getaffinity(0)) for t in r["threads"] if t["tid"] == os.getpid())
    assert "plan: none: " in status.render(r)


@needs_cpus
def test_the_process_s_own_cuda_visible_devices_picks_its_gpu(machine):
    # The rank sees GPU 1 only: its rank 0 drives 0000:00:05.0, not 00:04.0.
    env = dict(os.environ, LOCAL_RANK="0", CUDA_VISIBLE_DEVICES="1")
    p = started(["taskset", "-c", "0", "sleep", "30"], env)
    try:
        r = status.read(p.pid, fsroot=str(machine))
    finally:
        stop(p)
    assert r["plan"]["gpu_pci"] == "0000:00:05.0"
    assert os.environ.get("CUDA_VISIBLE_DEVICES") != "1"      # this process's own is untouched


@needs_cpus
@needs_numa
def test_mpol_local_is_no_difference_from_a_local_plan(machine):
    # The kernel shows MPOL_LOCAL as "local" with no node; the plan names the rank's.
    env = dict(os.environ, NUMABIND_FSROOT=str(machine), LOCAL_RANK="1", LOCAL_WORLD_SIZE="2")
    p = started([NUMABIND, "exec", "--mem", "local", "--", "sleep", "30"], env)
    try:
        r = status.read(p.pid, fsroot=str(machine), mem="local")
    finally:
        stop(p)
    assert r["threads"][0]["mem_policy"] == "local" and r["plan"]["mem_policy"] == "local"
    assert r["differs"] == []


def test_a_process_that_does_not_exist_is_named():
    with pytest.raises(ProcessLookupError, match="no process 4194305"):
        status.read(4194305, local_rank=0)


def test_without_a_local_rank_anywhere_it_shows_the_binding_alone(machine, monkeypatch):
    for var in ("LOCAL_RANK", "OMPI_COMM_WORLD_LOCAL_RANK", "MPI_LOCALRANKID", "PMI_LOCAL_RANK", "SLURM_LOCALID"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("NUMABIND_FSROOT", str(machine))
    r = status.read()
    assert r["local_rank"] is None and r["plan"] is None and r["threads"]
    assert "no local rank in its environment" in r["note"]
    assert "plan: none: no local rank in its environment" in status.render(r)


@pytest.mark.parametrize("line,expected", [
    ("7ffd0 default stack anon=3 dirty=3 N0=3 kernelpagesize_kB=4", ("default", ())),
    ("7ffd0 prefer:0 stack anon=3 N0=3", ("preferred", (0,))),
    ("7ffd0 bind:0-1 stack anon=3", ("bind", (0, 1))),
    ("7ffd0 bind=static:2 stack anon=3", ("bind", (2,))),
    ("7ffd0 interleave=relative:0,2 stack", ("interleave", (0, 2))),
    ("7ffd0 local stack anon=1", ("local", ())),
    ("7ffd0 prefer (many):1-2 stack", ("preferred-many", (1, 2))),
    ("7ffd0 weighted interleave:0-3 stack", ("weighted-interleave", (0, 1, 2, 3))),
])
def test_numa_maps_policies_as_the_kernel_writes_them(line, expected):
    # mm/mempolicy.c mpol_to_str(): NAME[=static|=relative][:NODES]
    maps = "55d0 default file=/usr/bin/sleep mapped=2 N0=2\n" + line + "\n"
    assert status._policy(maps) == expected
