"""numabind under the real launchers: torchrun, Open MPI's mpirun, MPICH's
mpiexec (Hydra) and Slurm's srun, each starting real processes.

Every rank runs ``numabind exec -- python -c REPORT`` (or a script calling
``numabind.pin_rank()``) against a fixture tree (``NUMABIND_FSROOT``) whose
rank CPUs exist on any machine with CPUs 0 and 1, or against this machine
with every GPU hidden:

* ``gpus4_cpus2``: 4 GPUs and an InfiniBand NIC on node 0, CPUs 0-1. Two
  ranks get CPU 0 and CPU 1 — only when the launcher's local size (2) is
  read: one rank per GPU would be 4 ranks on 2 CPUs, which fails.
* ``gpus4_cpus4``: the same with CPUs 0-3, for four ranks planned with
  ``dry_run`` (this machine has 2 CPUs to pin to), rank r on CPU r.
* this machine, ``CUDA_VISIBLE_DEVICES=""``: no GPU, no rank to place;
  ``numabind exec`` runs each rank's command unpinned, with a warning. And
  a rank Open MPI bound to one core still reads the whole cpuset as what it
  may use (the plan's input), its binding beside it.

Each rank writes a JSON report into the test's directory; the checks are
made here: every rank got its own disjoint CPU set, the one its launcher's
local rank names, from the variables that launcher sets. Nested launchers
(torchrun and mpirun inside an srun step, an srun step inside a larger
allocation) check the precedence rules of docs/launchers.md.

A launcher that is not installed skips its tests locally and fails them in
CI (``CI=true``): tools/dev.sh installs them all. The Slurm tests bring up a
one-node cluster with tools/ci/slurm.sh (left running; ``bash
tools/ci/slurm.sh down`` stops it).
"""
from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
from pathlib import Path

import pytest

TESTS = Path(__file__).resolve().parent
REPO = TESTS.parent
if str(TESTS) not in sys.path:
    sys.path.insert(0, str(TESTS))

import sysfs_tree as st  # noqa: E402

import numabind  # noqa: E402
from numabind import EnvironmentValueError, _core  # noqa: E402

BIN = Path(sys.executable).parent
PYTHON = sys.executable
IN_CI = os.environ.get("CI", "").lower() in ("1", "true", "yes")
TIMEOUT = 180

# Every variable a launcher sets that numabind reads (and a few it must not
# inherit from the shell that runs pytest).
LAUNCHER_PREFIXES = ("SLURM_", "OMPI_", "PMIX_", "PMI_", "MPI_LOCAL", "HYDRA_", "TORCHELASTIC_")
LAUNCHER_VARS = ("LOCAL_RANK", "LOCAL_WORLD_SIZE", "RANK", "WORLD_SIZE", "GROUP_RANK", "MASTER_ADDR",
                 "MASTER_PORT", "NUMABIND_FSROOT", "CUDA_VISIBLE_DEVICES", "CUDA_DEVICE_ORDER",
                 "NVSHMEM_HCA_LIST", "NVSHMEM_ENABLE_NIC_PE_MAPPING", "NCCL_IB_HCA", "UCX_NET_DEVICES")
SHOWN = ("LOCAL_RANK", "LOCAL_WORLD_SIZE", "OMPI_COMM_WORLD_LOCAL_RANK", "OMPI_COMM_WORLD_LOCAL_SIZE",
         "MPI_LOCALRANKID", "MPI_LOCALNRANKS", "SLURM_LOCALID", "SLURM_NODEID",
         "SLURM_STEP_TASKS_PER_NODE", "SLURM_TASKS_PER_NODE", "SLURM_NTASKS_PER_NODE")

HAVE_CPUS_0_1 = {0, 1} <= os.sched_getaffinity(0)
pytestmark = [
    pytest.mark.skipif(not sys.platform.startswith("linux"), reason="Linux launchers and affinity"),
    pytest.mark.skipif(not HAVE_CPUS_0_1, reason="needs CPUs 0 and 1 in this process's affinity"),
]

# What each rank reports, as DIR/<pid>.json (a file: launchers forward
# several ranks' output through one pipe, not always a line at a time): its
# launcher variables, affinity and NIC variable.
REPORT = f'''
import json, os, sys
with open(os.path.join(sys.argv[1], f"{{os.getpid()}}.json"), "w") as f:
    json.dump({{"env": {{k: os.environ.get(k) for k in {SHOWN!r}}},
               "affinity": sorted(os.sched_getaffinity(0)), "nic": os.environ.get("NVSHMEM_HCA_LIST")}}, f)
'''

# A rank that pins itself (or, with "dry", only plans) and says where the
# local rank and size came from.
PIN_SCRIPT = f'''
import json, os, sys
import numabind
from numabind import _core
size = _core.local_world_size_from_env()
r = numabind.pin_rank(dry_run=sys.argv[2] == "dry")
with open(os.path.join(sys.argv[1], f"{{os.getpid()}}.json"), "w") as f:
    json.dump({{"env": {{k: os.environ.get(k) for k in {SHOWN!r}}},
               "rank": r.local_rank, "source": r.rank_source, "size": size, "cpus": list(r.cpus),
               "gpu": r.gpu, "applied": r.applied, "affinity": sorted(os.sched_getaffinity(0)),
               "nic": os.environ.get("NVSHMEM_HCA_LIST")}}, f)
'''


# --------------------------------------------------------------------------
# machines
# --------------------------------------------------------------------------

def gpu_desc(cpus: int, gpus: int = 4) -> dict:
    """plain-2cpu-no-gpu with CPUs 0..cpus-1 on node 0 and `gpus` GPUs plus
    an InfiniBand NIC on node 0's root."""
    d = st.load("plain-2cpu-no-gpu")
    d["name"] = f"launchers-{gpus}gpu-{cpus}cpu"
    d["cpu"]["nodes"][0]["cpus"] = f"0-{cpus - 1}"
    d["allowed"]["cpus"] = f"0-{cpus - 1}"
    root = d["pci"][0]
    root["numa"] = 0
    bdfs = [f"0000:00:{4 + i:02x}.0" for i in range(gpus)]
    root["devices"] += [{"bdf": b, "kind": "gpu", "vendor": "0x10de", "device": "0x2330"} for b in bdfs]
    root["devices"].append({"bdf": "0000:00:10.0", "kind": "nic", "ibdev": "mlx5_0", "netdev": "ib0",
                            "link_layer": "InfiniBand", "state": "ACTIVE", "rate": "400 Gb/sec (4X NDR)",
                            "vendor": "0x15b3", "device": "0x1021"})
    d["expected"] = {"gpus": [{"bdf": b, "numa": 0, "hca": "mlx5_0"} for b in bdfs]}
    return d


@pytest.fixture(scope="session")
def gpus4_cpus2(tree) -> Path:
    return tree(gpu_desc(2))


@pytest.fixture(scope="session")
def gpus4_cpus4(tree) -> Path:
    return tree(gpu_desc(4))


# --------------------------------------------------------------------------
# launchers
# --------------------------------------------------------------------------

def need(tool: str) -> str:
    """The tool's path; a missing one skips locally and fails in CI."""
    path = shutil.which(tool, path=f"{BIN}{os.pathsep}{os.environ.get('PATH', '')}")
    if path is None:
        message = f"{tool} is not installed (bash tools/dev.sh test installs it)"
        if IN_CI:
            pytest.fail(message + "; CI must run every launcher", pytrace=False)
        pytest.skip(message)
    return path


def clean_env(root: Path | None, extra: dict | None = None) -> dict:
    """This environment less every launcher's variables, reading `root`
    (None: this machine, every GPU hidden)."""
    env = {k: v for k, v in os.environ.items()
           if k not in LAUNCHER_VARS and not k.startswith(LAUNCHER_PREFIXES)}
    env["PATH"] = f"{BIN}{os.pathsep}{env.get('PATH', '')}"
    if root is None:
        env["CUDA_VISIBLE_DEVICES"] = ""
    else:
        env["NUMABIND_FSROOT"] = str(root)
    # Open MPI refuses root unless told twice; CI runs as root.
    env["OMPI_ALLOW_RUN_AS_ROOT"] = env["OMPI_ALLOW_RUN_AS_ROOT_CONFIRM"] = "1"
    env.update(extra or {})
    return env


@pytest.fixture(scope="session")
def slurm_conf() -> str:
    """SLURM_CONF of a running one-node cluster (tools/ci/slurm.sh up)."""
    for tool in ("srun", "salloc", "slurmctld", "slurmd", "munged"):
        need(tool)
    if os.geteuid() != 0:
        pytest.skip("starting slurmd needs root")
    p = subprocess.run(["bash", str(REPO / "tools" / "ci" / "slurm.sh"), "up"], capture_output=True,
                       text=True, timeout=120)
    lines = [x for x in p.stdout.splitlines() if x.startswith("SLURM_CONF=")]
    assert p.returncode == 0 and lines, f"tools/ci/slurm.sh up failed:\n{p.stdout}\n{p.stderr}"
    return lines[-1].split("=", 1)[1]


def launch(launcher: str, n: int, argv: list[str], slurm_conf: str | None = None) -> tuple[list[str], dict]:
    """The command line starting `argv` as `n` local ranks, and extra env."""
    if launcher == "torchrun":
        # a Python script runs as torchrun's own child interpreter; anything else needs --no-python
        prog = argv[1:] if argv[0] == PYTHON else ["--no-python", *argv]
        return [need("torchrun"), "--standalone", "--nproc-per-node", str(n), *prog], {}
    if launcher == "openmpi":
        return [need("mpirun.openmpi"), "--allow-run-as-root", "--oversubscribe", "--bind-to", "none",
                "-np", str(n), *argv], {}
    if launcher == "mpich":
        return [need("mpiexec.mpich"), "-n", str(n), *argv], {}
    if launcher == "slurm":
        assert slurm_conf
        over = ["--overcommit"] if n > len(os.sched_getaffinity(0)) else []
        return [need("srun"), "-N1", "-n", str(n), *over, *argv], {"SLURM_CONF": slurm_conf}
    raise ValueError(launcher)


def run(cmd: list[str], env: dict, out_dir: Path) -> list[dict]:
    """Runs a launcher whose ranks report into `out_dir`; returns the reports."""
    p = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env,
                         start_new_session=True)
    try:
        out, err = p.communicate(timeout=TIMEOUT)
    except subprocess.TimeoutExpired:
        os.killpg(p.pid, signal.SIGKILL)
        out, err = p.communicate()
        pytest.fail(f"{cmd[0]} ran past {TIMEOUT} s:\n{out}\n{err}")
    assert p.returncode == 0, f"{' '.join(cmd[:6])} ... failed (rc {p.returncode}):\n{out}\n{err}"
    records = [json.loads(f.read_text()) for f in sorted(out_dir.glob("*.json"))]
    assert records, f"no rank reported:\n{out}\n{err}"
    return records


def exec_report(out_dir: Path) -> list[str]:
    """numabind exec of the REPORT program, reporting into `out_dir`."""
    return [str(BIN / "numabind"), "exec", "--", PYTHON, "-c", REPORT, str(out_dir)]


def pin_script(out_dir: Path, mode: str) -> list[str]:
    """PIN_SCRIPT ("apply" or "dry") as a file in `out_dir`, reporting into it."""
    script = out_dir / "pin.py"
    script.write_text(PIN_SCRIPT)
    return [PYTHON, str(script), str(out_dir), mode]


LAUNCHERS = {
    # name: (rank variable, size variable)
    "torchrun": ("LOCAL_RANK", "LOCAL_WORLD_SIZE"),
    "openmpi": ("OMPI_COMM_WORLD_LOCAL_RANK", "OMPI_COMM_WORLD_LOCAL_SIZE"),
    "mpich": ("MPI_LOCALRANKID", "MPI_LOCALNRANKS"),
    "slurm": ("SLURM_LOCALID", "SLURM_STEP_TASKS_PER_NODE"),
}


@pytest.fixture(params=list(LAUNCHERS))
def launcher(request) -> str:
    if request.param == "slurm":
        request.getfixturevalue("slurm_conf")
    return request.param


def conf_for(request, launcher: str) -> str | None:
    return request.getfixturevalue("slurm_conf") if launcher == "slurm" else None


def by_rank(records: list[dict], rank_var: str, n: int) -> list[dict]:
    """The records ordered by the launcher's local rank: one per rank 0..n-1."""
    ranks = sorted(int(r["env"][rank_var]) for r in records)
    assert ranks == list(range(n)), f"{rank_var} over the ranks: {ranks}"
    return sorted(records, key=lambda r: int(r["env"][rank_var]))


def assert_disjoint(sets: list[list[int]]) -> None:
    seen: set[int] = set()
    for s in sets:
        assert s and not seen & set(s), f"CPU sets overlap or are empty: {sets}"
        seen |= set(s)


# --------------------------------------------------------------------------
# each launcher alone
# --------------------------------------------------------------------------

def test_exec_pins_each_rank(launcher, request, gpus4_cpus2, tmp_path):
    """`LAUNCHER -n 2 numabind exec -- python -c REPORT`: rank r on CPU r."""
    rank_var, size_var = LAUNCHERS[launcher]
    cmd, extra = launch(launcher, 2, exec_report(tmp_path), conf_for(request, launcher))
    records = by_rank(run(cmd, clean_env(gpus4_cpus2, extra), tmp_path), rank_var, 2)
    for r, rec in enumerate(records):
        assert rec["env"][size_var] == "2", rec["env"]
        assert rec["affinity"] == [r], f"{rank_var}={r} ran on CPUs {rec['affinity']}"
        assert rec["nic"] == "mlx5_0:1"
    assert_disjoint([rec["affinity"] for rec in records])


def test_exec_on_this_machine(launcher, request, tmp_path):
    """This machine's own topology, GPUs hidden: no GPU means no rank to
    place, so each rank's command runs as the launcher started it, with a
    warning on stderr instead of a failed job."""
    rank_var, _ = LAUNCHERS[launcher]
    cmd, extra = launch(launcher, 2, exec_report(tmp_path), conf_for(request, launcher))
    env = clean_env(None, extra)
    before = sorted(os.sched_getaffinity(0))
    records = by_rank(run(cmd, env, tmp_path), rank_var, 2)
    for rec in records:
        assert rec["nic"] is None, rec
        assert set(rec["affinity"]) <= set(before)
    if launcher in ("torchrun", "mpich"):      # neither binds its ranks: numabind left them as they were
        assert all(rec["affinity"] == before for rec in records), records
    p = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=TIMEOUT)
    assert p.returncode == 0, p.stderr
    assert "not pinned: CUDA_VISIBLE_DEVICES='' hides every GPU" in p.stderr or \
        "not pinned: no NVIDIA GPU on this node" in p.stderr, p.stderr


def test_pin_rank_script(launcher, request, gpus4_cpus2, tmp_path):
    """A Python script calling numabind.pin_rank(): the rank and size come
    from the launcher's own variables, and the process is pinned."""
    rank_var, size_var = LAUNCHERS[launcher]
    cmd, extra = launch(launcher, 2, pin_script(tmp_path, "apply"), conf_for(request, launcher))
    records = by_rank(run(cmd, clean_env(gpus4_cpus2, extra), tmp_path), rank_var, 2)
    for r, rec in enumerate(records):
        assert (rec["rank"], rec["source"]) == (r, rank_var)
        assert rec["size"] == [2, size_var]
        assert rec["applied"] and rec["cpus"] == [r] and rec["affinity"] == [r]
        assert rec["gpu"] == r and rec["nic"] == "mlx5_0:1"
    assert_disjoint([rec["affinity"] for rec in records])


def test_four_ranks_planned(launcher, request, gpus4_cpus4, tmp_path):
    """Four ranks (this machine has two CPUs to pin): each plans, dry, its own
    CPU of a 4-CPU machine from the launcher's rank and size 4."""
    rank_var, size_var = LAUNCHERS[launcher]
    cmd, extra = launch(launcher, 4, pin_script(tmp_path, "dry"), conf_for(request, launcher))
    records = by_rank(run(cmd, clean_env(gpus4_cpus4, extra), tmp_path), rank_var, 4)
    before = sorted(os.sched_getaffinity(0))
    for r, rec in enumerate(records):
        assert (rec["rank"], rec["source"], rec["gpu"]) == (r, rank_var, r)
        assert rec["size"] == [4, size_var]
        assert rec["cpus"] == [r] and not rec["applied"]
        assert rec["affinity"] == before, "a dry run changed the affinity"
    assert_disjoint([rec["cpus"] for rec in records])


# --------------------------------------------------------------------------
# nested launchers: the innermost one's variables win
# --------------------------------------------------------------------------

def test_torchrun_inside_srun_step(slurm_conf, gpus4_cpus2, tmp_path):
    """srun -n1 torchrun --nproc-per-node 2: every rank inherits the step's
    SLURM_LOCALID=0 and SLURM_STEP_TASKS_PER_NODE=1; torchrun's pair wins."""
    cmd = [need("srun"), "-N1", "-n1", need("torchrun"), "--standalone", "--nproc-per-node", "2",
           "--no-python", *exec_report(tmp_path)]
    records = by_rank(run(cmd, clean_env(gpus4_cpus2, {"SLURM_CONF": slurm_conf}), tmp_path), "LOCAL_RANK", 2)
    for r, rec in enumerate(records):
        assert rec["env"]["SLURM_LOCALID"] == "0" and rec["env"]["SLURM_STEP_TASKS_PER_NODE"] == "1"
        assert rec["affinity"] == [r]


def test_mpirun_inside_srun_step(slurm_conf, gpus4_cpus2, tmp_path):
    """mpirun inside a Slurm step (as in an sbatch script, whose batch step
    sets SLURM_LOCALID=0 too): Open MPI's local rank wins over Slurm's."""
    cmd = [need("srun"), "-N1", "-n1", need("mpirun.openmpi"), "--allow-run-as-root", "--oversubscribe",
           "--bind-to", "none", "-np", "2", *exec_report(tmp_path)]
    records = by_rank(run(cmd, clean_env(gpus4_cpus2, {"SLURM_CONF": slurm_conf}), tmp_path),
                      "OMPI_COMM_WORLD_LOCAL_RANK", 2)
    for r, rec in enumerate(records):
        assert rec["env"]["SLURM_LOCALID"] == "0"
        assert rec["affinity"] == [r]


def test_srun_step_inside_allocation_uses_step_size(slurm_conf, gpus4_cpus2, tmp_path):
    """salloc --ntasks-per-node=2, then a one-task step: SLURM_NTASKS_PER_NODE
    still says 2 (the job's request); the step's SLURM_STEP_TASKS_PER_NODE=1
    is this node's local size."""
    cmd = [need("salloc"), "-N1", "-n2", "--ntasks-per-node=2", need("srun"), "-n1", *pin_script(tmp_path, "dry")]
    records = run(cmd, clean_env(gpus4_cpus2, {"SLURM_CONF": slurm_conf}), tmp_path)
    assert len(records) == 1, records
    rec = records[0]
    assert rec["env"]["SLURM_NTASKS_PER_NODE"] == "2" and rec["env"]["SLURM_STEP_TASKS_PER_NODE"] == "1"
    assert rec["size"] == [1, "SLURM_STEP_TASKS_PER_NODE"]
    assert (rec["rank"], rec["source"]) == (0, "SLURM_LOCALID")
    assert rec["cpus"] == [0, 1]   # the only rank of this node: all of node 0's CPUs


# --------------------------------------------------------------------------
# malformed and inconsistent values: a typed error naming variable and value
# --------------------------------------------------------------------------

ALL_VARS = ("LOCAL_RANK", "LOCAL_WORLD_SIZE", "OMPI_COMM_WORLD_LOCAL_RANK", "OMPI_COMM_WORLD_LOCAL_SIZE",
            "MPI_LOCALRANKID", "MPI_LOCALNRANKS", "PMI_LOCAL_RANK", "PMI_LOCAL_SIZE", "SLURM_LOCALID",
            "SLURM_NODEID", "SLURM_STEP_TASKS_PER_NODE", "SLURM_TASKS_PER_NODE", "SLURM_NTASKS_PER_NODE")


@pytest.fixture
def launcher_env(monkeypatch):
    for k in list(os.environ):
        if k in ALL_VARS or k.startswith(LAUNCHER_PREFIXES):
            monkeypatch.delenv(k)

    def set_env(**values):
        for k, v in values.items():
            monkeypatch.setenv(k, v)
    return set_env


@pytest.mark.parametrize("env,named", [
    ({"LOCAL_RANK": "one"}, "LOCAL_RANK='one'"),
    ({"LOCAL_RANK": "1", "LOCAL_WORLD_SIZE": "0"}, "LOCAL_WORLD_SIZE='0'"),
    ({"LOCAL_RANK": "2", "LOCAL_WORLD_SIZE": "2"}, "LOCAL_RANK='2' is not below LOCAL_WORLD_SIZE='2'"),
    ({"OMPI_COMM_WORLD_LOCAL_RANK": "+1"}, "OMPI_COMM_WORLD_LOCAL_RANK='+1'"),
    ({"OMPI_COMM_WORLD_LOCAL_RANK": "3", "OMPI_COMM_WORLD_LOCAL_SIZE": "3"},
     "OMPI_COMM_WORLD_LOCAL_RANK='3' is not below OMPI_COMM_WORLD_LOCAL_SIZE='3'"),
    ({"MPI_LOCALRANKID": "0", "MPI_LOCALNRANKS": "2x"}, "MPI_LOCALNRANKS='2x'"),
    ({"SLURM_LOCALID": " 0"}, "SLURM_LOCALID=' 0'"),
    ({"SLURM_LOCALID": "0", "SLURM_STEP_TASKS_PER_NODE": "4(x2"}, "SLURM_STEP_TASKS_PER_NODE='4(x2'"),
    ({"SLURM_LOCALID": "0", "SLURM_STEP_TASKS_PER_NODE": "4,3"},
     "SLURM_STEP_TASKS_PER_NODE='4,3' differs between nodes and SLURM_NODEID is not set"),
    ({"SLURM_LOCALID": "0", "SLURM_NODEID": "n1", "SLURM_TASKS_PER_NODE": "4"}, "SLURM_NODEID='n1'"),
    ({"SLURM_LOCALID": "3", "SLURM_NODEID": "1", "SLURM_STEP_TASKS_PER_NODE": "4,3(x2)"},
     "SLURM_LOCALID='3' is not below SLURM_STEP_TASKS_PER_NODE='4,3(x2)'"),
    ({"PMI_LOCAL_RANK": "x"}, "PMI_LOCAL_RANK='x'"),
])
def test_bad_launcher_values_name_variable_and_value(env, named, launcher_env, gpus4_cpus2):
    launcher_env(**env)
    topo = numabind.topology(str(gpus4_cpus2))
    with pytest.raises(EnvironmentValueError) as ei:
        numabind.pin_rank(dry_run=True, topology=topo)
    assert named in str(ei.value)
    assert isinstance(ei.value, ValueError)
    assert ei.value.variable == named.split("=")[0]   # nmb_last_error_variable(), not the words


def test_precedence_innermost_launcher_first(launcher_env):
    # every launcher's variables at once: torchrun, then Open MPI, Hydra, PALS, Slurm
    launcher_env(LOCAL_RANK="1", LOCAL_WORLD_SIZE="2", OMPI_COMM_WORLD_LOCAL_RANK="2",
                 OMPI_COMM_WORLD_LOCAL_SIZE="3", MPI_LOCALRANKID="3", MPI_LOCALNRANKS="4",
                 PMI_LOCAL_RANK="4", PMI_LOCAL_SIZE="5", SLURM_LOCALID="5", SLURM_NODEID="0",
                 SLURM_STEP_TASKS_PER_NODE="6", SLURM_TASKS_PER_NODE="7", SLURM_NTASKS_PER_NODE="8")
    order = [("LOCAL_RANK", "LOCAL_WORLD_SIZE", 1, 2),
             ("OMPI_COMM_WORLD_LOCAL_RANK", "OMPI_COMM_WORLD_LOCAL_SIZE", 2, 3),
             ("MPI_LOCALRANKID", "MPI_LOCALNRANKS", 3, 4), ("PMI_LOCAL_RANK", "PMI_LOCAL_SIZE", 4, 5),
             ("SLURM_LOCALID", "SLURM_STEP_TASKS_PER_NODE", 5, 6)]
    for rank_var, size_var, rank, size in order:
        assert _core.local_rank_from_env() == (rank, rank_var)
        assert _core.local_world_size_from_env() == (size, size_var)
        os.environ.pop(rank_var)
        os.environ.pop(size_var)
    assert _core.local_world_size_from_env() == (7, "SLURM_TASKS_PER_NODE")


def test_size_never_taken_from_another_launcher(launcher_env):
    # torchrun's rank without its size inside a Slurm step: no size (one rank
    # per GPU), not the step's 1, which would make rank 3 impossible
    launcher_env(LOCAL_RANK="3", SLURM_LOCALID="0", SLURM_STEP_TASKS_PER_NODE="1")
    assert _core.local_rank_from_env() == (3, "LOCAL_RANK")
    assert _core.local_world_size_from_env() is None


def test_openmpi_default_binding_does_not_narrow_the_plan(tmp_path):
    """mpirun binds each of two ranks to one core by default. numabind plans
    from the cgroup's cpuset, what a rank may widen to, so each bound rank
    reads the same allowed CPUs as an unbound process, and its own core as
    its affinity (docs/launchers.md)."""
    if len(os.sched_getaffinity(0)) < 2:
        pytest.skip("needs two CPUs, so that mpirun binds the two ranks to different cores")
    script = tmp_path / "show.py"
    script.write_text("import json, os, sys, numabind\n"
                      "t = numabind.topology()\n"
                      "open(os.path.join(sys.argv[1], f'{os.getpid()}.json'), 'w').write(json.dumps(\n"
                      "    {'env': dict(os.environ), 'allowed': list(t.allowed_cpus), 'affinity': list(t.affinity_cpus)}))\n")
    cmd = [need("mpirun.openmpi"), "--allow-run-as-root", "--oversubscribe", "--bind-to", "core",
           "-np", "2", PYTHON, str(script), str(tmp_path)]
    records = by_rank(run(cmd, clean_env(None), tmp_path), "OMPI_COMM_WORLD_LOCAL_RANK", 2)
    unbound = sorted(numabind.topology().allowed_cpus)
    assert [rec["allowed"] for rec in records] == [unbound, unbound]
    assert all(len(rec["affinity"]) < len(unbound) for rec in records), records
    assert_disjoint([rec["affinity"] for rec in records])
