"""numabind.pin_rank() applied for real on this machine's kernel.

Every test pins a fresh child interpreter (``subprocess.run([sys.executable,
"-c", ...])``), so the pytest process's own CPU affinity and memory policy are
never touched (a guard fixture checks that). The child prints one ``RESULT
{json}`` line; the assertions are made here.

Plans come from fixture trees whose rank CPUs exist on any machine with CPUs
0 and 1 (a description derived from plain-2cpu-no-gpu.json with two GPUs and
an InfiniBand NIC on node 0), from dgx-h100 (whose CPUs do not exist here:
a failure midway), or from the live host with CUDA_VISIBLE_DEVICES="" (no
GPU: locality unknown, so the memory policy is left alone).
"""
from __future__ import annotations

import errno
import json
import os
import sys
import textwrap
from pathlib import Path

import pytest

TESTS = Path(__file__).resolve().parent
if str(TESTS) not in sys.path:
    sys.path.insert(0, str(TESTS))

import pinkit  # noqa: E402
import sysfs_tree as st  # noqa: E402
from pinkit import NIC_VARS, ONLINE_NODES, needs_cpus, needs_numa, two_gpu_desc  # noqa: E402
# the autouse guard: imported here, it guards every test of this file
from pinkit import _pytest_process_untouched  # noqa: E402,F401

RANK_VARS = ("LOCAL_RANK", "SLURM_LOCALID", "OMPI_COMM_WORLD_LOCAL_RANK", "MPI_LOCALRANKID")
SIZE_VARS = ("LOCAL_WORLD_SIZE", "SLURM_NTASKS_PER_NODE", "OMPI_COMM_WORLD_LOCAL_SIZE", "MPI_LOCALNRANKS")

# MPOL_* as the kernel numbers them (include/uapi/linux/mempolicy.h)
MPOL_DEFAULT, MPOL_PREFERRED, MPOL_BIND, MPOL_INTERLEAVE, MPOL_LOCAL = range(5)

pytestmark = [
    pytest.mark.skipif(not sys.platform.startswith("linux"), reason="Linux affinity and mempolicy"),
    needs_cpus,
]


# --------------------------------------------------------------------------
# descriptions and trees (two_gpu_desc: tests/pinkit.py)
# --------------------------------------------------------------------------

def missing_node() -> int:
    return max(ONLINE_NODES or [0]) + 1


def missing_node_desc() -> dict:
    """Two nodes: 0 (CPU 0) and one this kernel lacks (CPU 1) holding the GPU:
    the rank's CPU exists here, its memory node does not."""
    m = missing_node()
    d = two_gpu_desc()
    d["name"] = "gpu-on-missing-node"
    d["cpu"]["nodes"] = [{"id": 0, "cpus": "0", "socket": 0, "mem_mib": 12000},
                         {"id": m, "cpus": "1", "socket": 0, "mem_mib": 12000}]
    d["allowed"] = {"cpus": "0-1", "mems": f"0,{m}"}
    d["pci"][0]["numa"] = m
    d["pci"][0]["devices"] = [x for x in d["pci"][0]["devices"] if x["bdf"] != "0000:00:05.0"]
    d["expected"] = {"gpus": [{"bdf": "0000:00:04.0", "numa": m, "hca": "mlx5_0"}]}
    return d


@pytest.fixture(scope="session")
def pin_trees(tree):
    """The session's shared tree factory (tests/conftest.py)."""
    return tree


@pytest.fixture(scope="session")
def two_gpu_root(pin_trees) -> Path:
    return pin_trees(two_gpu_desc())


# --------------------------------------------------------------------------
# the child
# --------------------------------------------------------------------------

# get_mempolicy, set_mempolicy (both raise OSError where the kernel refuses),
# affinities, nic_env, HOLD, idle_threads, state, err, result: tests/pinkit.py
PRELUDE = pinkit.child_prelude(raise_on_mempolicy_error=True) + r'''
def plan_dict(r):
    return r.to_dict() | {"report": r.report}

TOPO = numabind.topology(sys.argv[1]) if len(sys.argv) > 1 and sys.argv[1] != "-" else None
'''


def run_child(body: str, root: Path | str | None = None, env: dict | None = None) -> dict:
    return pinkit.run_child(PRELUDE + textwrap.dedent(body), root, env, launcher_vars=RANK_VARS + SIZE_VARS,
                            timeout=120)


def all_threads_on(affinities: dict, cpus: str) -> None:
    wrong = {tid: a for tid, a in affinities.items() if a != cpus}
    assert not wrong, f"{len(wrong)} of {len(affinities)} threads not on CPUs {cpus}: {wrong}"


# --------------------------------------------------------------------------
# every thread
# --------------------------------------------------------------------------

SPAWNING = r'''
idle_threads([None] * 20)
stop = threading.Event()
spawned = [0]

def short_or_parked():
    if spawned[0] % 2 == 0:
        HOLD.wait()          # half stay alive to be checked, half exit at once

def spawner():
    while not stop.is_set() and spawned[0] < 1500:
        threading.Thread(target=short_or_parked, daemon=True).start()
        spawned[0] += 1

s = threading.Thread(target=spawner, daemon=True)
s.start()
while spawned[0] < 10:
    time.sleep(0.0005)
live_before = len(os.listdir("/proc/self/task"))
before = spawned[0]
r = numabind.pin_rank(1, local_world_size=2, topology=TOPO)
during = spawned[0] - before
time.sleep(0.005)             # the spawner goes on after the call: its threads inherit
stop.set()
s.join()
result(plan=plan_dict(r), during=during, live_before=live_before, affinities=affinities(),
       main=sorted(os.sched_getaffinity(0)))
HOLD.set()
'''


def test_binds_every_thread_including_ones_started_while_pinning(two_gpu_root):
    # the spawner must have started threads during the call; a quiet run is retried
    for _attempt in range(4):
        out = run_child(SPAWNING, two_gpu_root)
        plan = out["plan"]
        assert plan["cpus"] == [1] and plan["applied"] is True
        assert out["live_before"] >= 22
        all_threads_on(out["affinities"], "1")
        assert out["main"] == [1]
        assert len(out["affinities"]) >= 21
        assert plan["report"]["threads"] >= 21, plan["report"]
        assert plan["report"]["scans"] >= 2, "no pass confirmed that no unbound thread was left"
        if out["during"] > 0:
            break
    else:
        pytest.fail("no thread was started during pin_rank in 4 attempts")


# --------------------------------------------------------------------------
# the local rank from the launcher
# --------------------------------------------------------------------------

FROM_ENV = r'''
before = affinities()
r = numabind.pin_rank(local_world_size=2, topology=TOPO)
result(plan=plan_dict(r), before=before, affinities=affinities())
HOLD.set()
'''


@pytest.mark.parametrize("env,source,rank", [
    ({"LOCAL_RANK": "1"}, "LOCAL_RANK", 1),
    ({"SLURM_LOCALID": "1"}, "SLURM_LOCALID", 1),
    ({"OMPI_COMM_WORLD_LOCAL_RANK": "1"}, "OMPI_COMM_WORLD_LOCAL_RANK", 1),
    ({"MPI_LOCALRANKID": "1"}, "MPI_LOCALRANKID", 1),
    ({"LOCAL_RANK": "0", "SLURM_LOCALID": "1", "OMPI_COMM_WORLD_LOCAL_RANK": "1",
      "MPI_LOCALRANKID": "1"}, "LOCAL_RANK", 0),
    # mpirun in an sbatch script: the batch step's SLURM_LOCALID=0 is inherited
    ({"SLURM_LOCALID": "0", "OMPI_COMM_WORLD_LOCAL_RANK": "1", "MPI_LOCALRANKID": "0"},
     "OMPI_COMM_WORLD_LOCAL_RANK", 1),
    ({"OMPI_COMM_WORLD_LOCAL_RANK": "0", "MPI_LOCALRANKID": "1"}, "OMPI_COMM_WORLD_LOCAL_RANK", 0),
], ids=["LOCAL_RANK", "SLURM_LOCALID", "OMPI", "MPI", "LOCAL_RANK-first", "OMPI-before-SLURM",
        "OMPI-before-MPI"])
def test_rank_from_launcher_environment(env, source, rank, two_gpu_root):
    out = run_child(FROM_ENV, two_gpu_root, env)
    assert out["plan"]["rank_source"] == source
    assert out["plan"]["local_rank"] == rank
    assert out["plan"]["cpus"] == [rank]
    all_threads_on(out["affinities"], str(rank))


def test_rank_argument_source(two_gpu_root):
    out = run_child(r'''
r = numabind.pin_rank(0, local_world_size=2, topology=TOPO)
result(plan=plan_dict(r), affinities=affinities())
''', two_gpu_root, {"LOCAL_RANK": "1"})
    assert out["plan"]["rank_source"] == "argument" and out["plan"]["local_rank"] == 0
    all_threads_on(out["affinities"], "0")


RANK_ERRORS = r'''
cases = {}
for name, env in [("none", {}), ("bad", {"LOCAL_RANK": "abc"}), ("negative", {"SLURM_LOCALID": "-1"}),
                  ("outside", {"LOCAL_RANK": "5"})]:
    for v in ("LOCAL_RANK", "SLURM_LOCALID", "OMPI_COMM_WORLD_LOCAL_RANK", "MPI_LOCALRANKID"):
        os.environ.pop(v, None)
    os.environ.update(env)
    before = state()
    try:
        r = numabind.pin_rank(local_world_size=2, topology=TOPO)
        cases[name] = {"plan": plan_dict(r)}
    except Exception as e:
        cases[name] = err(e)
    cases[name]["unchanged"] = state() == before
result(cases=cases)
'''


def test_rank_errors(two_gpu_root):
    cases = run_child(RANK_ERRORS, two_gpu_root)["cases"]
    for name, c in cases.items():
        assert c["unchanged"], f"{name}: the process changed although pinning failed"
        assert "PlacementError" in c.get("mro", []), (name, c)
    for var in ("LOCAL_RANK", "SLURM_LOCALID", "OMPI_COMM_WORLD_LOCAL_RANK", "MPI_LOCALRANKID"):
        assert var in cases["none"]["msg"], cases["none"]
    assert "'abc'" in cases["bad"]["msg"] and "LOCAL_RANK" in cases["bad"]["msg"]
    assert "ValueError" in cases["bad"]["mro"]
    assert "-1" in cases["negative"]["msg"] and "SLURM_LOCALID" in cases["negative"]["msg"]
    assert "5" in cases["outside"]["msg"] and "LOCAL_RANK" in cases["outside"]["msg"]


def test_rank_with_trailing_garbage_rejected(two_gpu_root):
    out = run_child(r'''
try:
    r = numabind.pin_rank(local_world_size=2, topology=TOPO, dry_run=True)
    out = {"plan": plan_dict(r)}
except Exception as e:
    out = err(e)
result(out=out)
''', two_gpu_root, {"LOCAL_RANK": "1(x2)"})["out"]
    assert "ValueError" in out.get("mro", []), out
    assert "1(x2)" in out["msg"]


# --------------------------------------------------------------------------
# memory policy
# --------------------------------------------------------------------------

MEMPOLICY = r'''
mem = sys.argv[2]
r = numabind.pin_rank(0, mem=mem, local_world_size=2, topology=TOPO)
seen = []
t = threading.Thread(target=lambda: seen.append(get_mempolicy()))
t.start(); t.join()
result(plan=plan_dict(r), mempolicy=get_mempolicy(), later_thread=seen[0], affinities=affinities())
'''


@needs_numa
@pytest.mark.parametrize("mem,want", [
    ("preferred", [[MPOL_PREFERRED, [0]]]),
    ("bind", [[MPOL_BIND, [0]]]),
    ("interleave", [[MPOL_INTERLEAVE, [0]]]),
    # kernels before 5.14 report MPOL_LOCAL as MPOL_PREFERRED with no node
    ("local", [[MPOL_LOCAL, []], [MPOL_PREFERRED, []]]),
])
def test_memory_policy_read_back(mem, want, two_gpu_root):
    code = MEMPOLICY.replace("sys.argv[2]", repr(mem))
    out = run_child(code, two_gpu_root)
    plan = out["plan"]
    assert plan["mem_policy"] == mem and plan["mem_nodes"] == [0] and plan["numa_node"] == 0
    assert plan["report"]["mem_policy_set"] is True
    assert out["mempolicy"] in want, out["mempolicy"]
    assert out["later_thread"] == out["mempolicy"], "a thread started after pinning did not inherit it"
    all_threads_on(out["affinities"], "0")


@needs_numa
def test_unknown_locality_leaves_memory_policy_alone(pin_trees):
    # two GPUs whose numa_node reads -1: no locality, so no memory policy
    desc = two_gpu_desc("plain-2cpu-2gpu-unknown")
    desc["pci"][0]["numa"] = -1
    out = run_child(r'''
set_mempolicy(3, [0])                       # MPOL_INTERLEAVE over node 0
plan = numabind.plan(2, topology=TOPO)
r = numabind.pin_rank(1, mem="bind", local_world_size=2, topology=TOPO)
result(expected=list(plan[1].cpus), plan=plan_dict(r), mempolicy=get_mempolicy(),
       affinities=affinities())
''', pin_trees(desc))
    plan = out["plan"]
    assert plan["numa_node"] is None and plan["mem_policy"] == "default"
    assert plan["report"]["mem_policy_set"] is False
    assert out["mempolicy"] == [MPOL_INTERLEAVE, [0]]
    assert plan["cpus"] == out["expected"] == [1]
    all_threads_on(out["affinities"], st.format_cpulist(plan["cpus"]))


def test_no_visible_gpu_leaves_the_process_alone():
    # the live host with every GPU hidden: no rank to pin; a warning, nothing changed
    out = run_child(r'''
set_mempolicy(3, [0])                       # MPOL_INTERLEAVE over node 0
before = state()
r = numabind.pin_rank(1, mem="bind", local_world_size=2)
result(plan=plan_dict(r), before=before, after=state(), note=numabind.plan(2).note)
''', None, {"CUDA_VISIBLE_DEVICES": ""})
    assert out["after"] == out["before"]
    plan = out["plan"]
    assert plan["applied"] is False and plan["gpu"] is None and plan["env"] == {}
    assert plan["note"].startswith("not pinned: ") and out["note"] in plan["note"]
    assert "CUDA_VISIBLE_DEVICES='' hides every GPU" in plan["note"] or "no NVIDIA GPU" in plan["note"]


# --------------------------------------------------------------------------
# dry run, environment
# --------------------------------------------------------------------------

@needs_numa
def test_dry_run_changes_nothing(two_gpu_root):
    out = run_child(r'''
os.sched_setaffinity(0, {1})
idle_threads([{0}, None, {0, 1}])
set_mempolicy(2, [0])                       # MPOL_BIND to node 0
before = state()
r = numabind.pin_rank(0, local_world_size=2, mem="interleave", topology=TOPO, dry_run=True)
result(plan=plan_dict(r), before=before, after=state())
''', two_gpu_root)
    assert out["before"] == out["after"]
    assert out["plan"]["applied"] is False and out["plan"]["report"] is None
    assert out["plan"]["cpus"] == [0] and out["plan"]["env"]["NVSHMEM_HCA_LIST"] == "mlx5_0:1"
    assert out["before"]["env"] == dict.fromkeys(NIC_VARS)


EXPORT = r'''
args = json.loads(sys.argv[2])
r = numabind.pin_rank(1, local_world_size=2, topology=TOPO, export_env=args["export"],
                      override_env=args["override"])
import subprocess
child = subprocess.run([sys.executable, "-c",
                        "import json, os; print(json.dumps({k: os.environ.get(k) for k in %r}))" % (NIC_VARS,)],
                       capture_output=True, text=True, check=True)
result(plan=plan_dict(r), environ=nic_env(), child=json.loads(child.stdout))
'''


@pytest.mark.parametrize("export,override,preset", [
    (True, False, {}),
    (True, False, {"NCCL_IB_HCA": "mlx5_9", "UCX_NET_DEVICES": "all"}),
    (True, True, {"NCCL_IB_HCA": "mlx5_9"}),
    (False, False, {}),
    (False, False, {"NCCL_IB_HCA": "mlx5_9"}),
])
def test_export_env(export, override, preset, two_gpu_root):
    code = EXPORT.replace("sys.argv[2]", repr(json.dumps({"export": export, "override": override})))
    out = run_child(code, two_gpu_root, preset)
    ours = {"NVSHMEM_HCA_LIST": "mlx5_0:1", "NVSHMEM_ENABLE_NIC_PE_MAPPING": "1",
            "NCCL_IB_HCA": "=mlx5_0:1", "UCX_NET_DEVICES": "mlx5_0:1", "EP_NIC_NAME": "mlx5_0"}
    kept = {} if override else preset
    assert out["plan"]["kept_env"] == kept
    assert out["plan"]["env"] == {k: v for k, v in ours.items() if k not in kept}
    if export:
        want = {k: kept.get(k, v) for k, v in ours.items()}
    else:
        want = {k: preset.get(k) for k in NIC_VARS}
    assert out["environ"] == want
    assert out["child"] == want, "a child process does not see what was exported"


# --------------------------------------------------------------------------
# failures leave the process as it was
# --------------------------------------------------------------------------

ROLLBACK = r'''
args = json.loads(sys.argv[2])
os.sched_setaffinity(0, set(args["start"]))
idle_threads([{0}, {1}, {0, 1}, None, {0}, {1}])
set_mempolicy(*args["mempolicy"])
planned = numabind.plan(topology=TOPO, mem=args["mem"], local_world_size=args["lws"])
before = state()
try:
    r = numabind.pin_rank(0, topology=TOPO, mem=args["mem"], local_world_size=args["lws"])
    outcome = {"plan": plan_dict(r)}
except Exception as e:
    outcome = err(e)
result(outcome=outcome, planned=list(planned[0].cpus), before=before, after=state(),
       main=sorted(os.sched_getaffinity(0)))
HOLD.set()
'''


def _rollback(root, start, mempolicy, mem, lws):
    code = ROLLBACK.replace("sys.argv[2]", repr(json.dumps(
        {"start": start, "mempolicy": mempolicy, "mem": mem, "lws": lws})))
    return run_child(code, root)


@needs_numa
@pytest.mark.parametrize("mempolicy", [[MPOL_INTERLEAVE, [0]], [MPOL_DEFAULT, []]])
def test_failure_binding_cpus_that_do_not_exist_restores_everything(mempolicy, pin_trees):
    # dgx-h100 rank 0 is CPUs 0-13,112-125: the kernel keeps 0-1 of it, the read-back disagrees
    out = _rollback(pin_trees("dgx-h100"), [1], mempolicy, "preferred", None)
    o = out["outcome"]
    assert o.get("type") == "BindingError", o
    assert o["errno"] == errno.EIO, o
    assert "0-13,112-125" in o["msg"], o
    assert out["planned"][:2] == [0, 1] and len(out["planned"]) == 28
    assert len(out["before"]["affinities"]) >= 7     # main, 6 parked, any native pool threads
    assert out["after"] == out["before"], "affinities, memory policy or NIC variables not restored"
    assert out["main"] == [1]


@needs_numa
@pytest.mark.parametrize("mem", ["preferred", "bind"])
@pytest.mark.parametrize("mempolicy", [[MPOL_BIND, [0]], [MPOL_DEFAULT, []]])
def test_failure_setting_memory_policy_restores_everything(mem, mempolicy, pin_trees):
    # the GPU's node does not exist on this kernel, its CPU (1) does: threads are
    # bound to CPU 1, then set_mempolicy fails
    out = _rollback(pin_trees(missing_node_desc()), [0], mempolicy, mem, 1)
    o = out["outcome"]
    assert out["planned"] == [1]
    assert o.get("type") == "BindingError", o
    assert "mempolicy" in o["msg"], o
    assert out["after"] == out["before"], "affinities, memory policy or NIC variables not restored"
    assert out["main"] == [0]


RACE = r'''
# Threads started while a pin that then fails is under way: a thread born
# from an already re-bound parent gets the rank's CPUs, and must not keep them.
os.sched_setaffinity(0, {0})
rank_cpus = list(numabind.plan(topology=TOPO, local_world_size=1)[0].cpus)
idle_threads([None] * 20)
outcome = None
for attempt in range(60):
    release = threading.Event()
    stop = threading.Event()
    spawned = [0]

    def spawner():
        while not stop.is_set() and spawned[0] < 200:
            threading.Thread(target=release.wait, daemon=True).start()
            spawned[0] += 1

    s = threading.Thread(target=spawner, daemon=True)
    s.start()
    while spawned[0] < 5:
        time.sleep(0.0002)
    before = affinities()
    try:
        numabind.pin_rank(0, topology=TOPO, local_world_size=1)
        outcome = {"plan": "applied"}
    except Exception as e:
        outcome = err(e)
    stop.set()
    s.join()
    # threads there before: as they were; threads born meanwhile: as their parent was ({0})
    stray = {t: a for t, a in affinities().items() if a != before.get(t, "0")}
    release.set()
    if stray or outcome.get("type") != "BindingError":
        break
result(outcome=outcome, rank_cpus=rank_cpus, stray=stray, attempts=attempt + 1)
HOLD.set()
'''


@needs_numa
def test_failed_pin_leaves_no_thread_on_the_rank_cpus(pin_trees):
    out = run_child(RACE, pin_trees(missing_node_desc()))
    assert out["rank_cpus"] == [1]
    assert out["outcome"].get("type") == "BindingError", out["outcome"]
    assert out["stray"] == {}, f"after {out['attempts']} failed pin(s): threads {out['stray']}"


# --------------------------------------------------------------------------
# twice in one process
# --------------------------------------------------------------------------

def test_plans_come_from_what_the_process_may_widen_to():
    # This machine's kernel: a process narrowed to one CPU (as srun --cpu-bind,
    # mpirun's default binding or an outer numabind exec leave a rank) still
    # reads the CPUs its cgroup's cpuset allows, so every rank plans from the
    # same set; the narrowed affinity is reported beside it. (pin_rank itself
    # widens a pre-bound rank in the lab: tests/lab/guest/test_guest_cgroup.py.)
    start = sorted(os.sched_getaffinity(0))
    out = run_child(r'''
os.sched_setaffinity(0, {min(os.sched_getaffinity(0))})
t = numabind.topology()
result(allowed=list(t.allowed_cpus), affinity=list(t.affinity_cpus))
''', None, {"CUDA_VISIBLE_DEVICES": ""})
    assert out["affinity"] == [start[0]]
    assert set(start) <= set(out["allowed"]), f"allowed {out['allowed']} lost CPUs of the pytest process's {start}"
