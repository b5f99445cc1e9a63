"""The ``numabind plan`` / ``env`` / ``exec`` commands, run as separate processes.

``plan`` and ``env`` read fixture trees through NUMABIND_FSROOT and are
checked against each description's ``expected`` block; ``exec`` pins itself
on this machine (GPUs hidden with CUDA_VISIBLE_DEVICES="", so locality is
unknown and two ranks split the allowed CPUs) and must hand its command a
process already bound.
"""
from __future__ import annotations

import ast
import json
import os
import shlex
import subprocess
import sys
from pathlib import Path

import pytest

TESTS = Path(__file__).resolve().parent
if str(TESTS) not in sys.path:
    sys.path.insert(0, str(TESTS))

import sysfs_tree as st  # noqa: E402
from pinkit import two_gpu_desc  # noqa: E402

MACHINES = st.MACHINES
# NCCL_IB_HCA on every rank of a DGX H100: its eight compute NICs, PCI order
DGX_NCCL_IB_HCA = "=" + ",".join(f"{g['hca']}:1" for g in st.load("dgx-h100")["expected"]["gpus"])
NUMABIND = [sys.executable, "-m", "numabind"]
RANK_KEYS = {"local_rank": (int,), "gpu_pci": (str, type(None)), "numa_node": (int, type(None)),
             "cpus": (list,), "mem_nodes": (list,), "mem_policy": (str,), "hca": (str, type(None)),
             "hca_port": (int, type(None)), "distance": (str, type(None)), "env": (dict,)}
STRIP = ("LOCAL_RANK", "SLURM_LOCALID", "OMPI_COMM_WORLD_LOCAL_RANK", "MPI_LOCALRANKID",
         "LOCAL_WORLD_SIZE", "SLURM_NTASKS_PER_NODE", "OMPI_COMM_WORLD_LOCAL_SIZE", "MPI_LOCALNRANKS",
         "NVSHMEM_HCA_LIST", "NVSHMEM_ENABLE_NIC_PE_MAPPING", "NCCL_IB_HCA", "UCX_NET_DEVICES",
         "EP_NIC_NAME", "NUMABIND_FSROOT", "CUDA_VISIBLE_DEVICES", "CUDA_DEVICE_ORDER")


@pytest.fixture(scope="session")
def cli_tree(tree):
    """The session's shared tree factory (tests/conftest.py)."""
    return tree


def env_with(extra: dict | None = None) -> dict:
    env = {k: v for k, v in os.environ.items() if k not in STRIP}
    env.update(extra or {})
    return env


def run(args, root=None, extra=None, **kw) -> subprocess.CompletedProcess:
    extra = dict(extra or {})
    if root is not None:
        extra["NUMABIND_FSROOT"] = str(root)
    return subprocess.run(args, capture_output=True, text=True, env=env_with(extra), timeout=120, **kw)


def plan_json(root, *args, extra=None) -> list[dict]:
    p = run([*NUMABIND, "plan", "--json", *args], root, extra)
    assert p.returncode == 0, p.stderr
    out = json.loads(p.stdout)
    assert set(out) == {"ranks", "note"}
    assert (out["note"] is None) == bool(out["ranks"]), out   # a note exactly when no rank
    return out["ranks"]


def check_shape(rank: dict) -> None:
    missing = set(RANK_KEYS) - set(rank)
    assert not missing, f"plan --json lacks {missing}"
    for key, types in RANK_KEYS.items():
        assert type(rank[key]) in types, f"{key}: {rank[key]!r}"
    assert all(type(c) is int for c in rank["cpus"]) and rank["cpus"]
    assert all(type(n) is int for n in rank["mem_nodes"])
    assert all(type(k) is str and type(v) is str for k, v in rank["env"].items())
    if rank["hca"] is None:
        assert rank["env"] == {} and rank["hca_port"] is None and rank["distance"] is None
    else:
        dev = f"{rank['hca']}:{rank['hca_port']}"
        node_wide = rank["env"].pop("NCCL_IB_HCA")
        assert node_wide.startswith("=") and dev in node_wide[1:].split(","), node_wide
        assert rank["env"] == {"NVSHMEM_HCA_LIST": dev, "NVSHMEM_ENABLE_NIC_PE_MAPPING": "1",
                               "UCX_NET_DEVICES": dev, "EP_NIC_NAME": rank["hca"]}


@pytest.mark.parametrize("name", MACHINES)
def test_plan_json_matches_expected(name, cli_tree):
    desc = st.load(name)
    exp = desc["expected"]["gpus"]
    ranks = plan_json(cli_tree(name))
    for r in ranks:
        check_shape(r)
    assert [r["local_rank"] for r in ranks] == list(range(len(ranks)))
    if not exp:
        assert ranks == []          # no GPU, no rank (plan_json checked the note)
        return
    assert [(r["gpu_pci"], r["numa_node"], r["hca"]) for r in ranks] == \
        [(g["bdf"], g["numa"], g["hca"]) for g in exp]
    # ranks of one node never share a CPU under the default policy
    cpus = [c for r in ranks for c in r["cpus"]]
    assert len(cpus) == len(set(cpus))


@pytest.mark.parametrize("name", [m for m in MACHINES if len(st.load(m)["expected"]["gpus"]) > 1
                                  or st.load(m)["expected"].get("scenarios")])
def test_plan_json_scenarios(name, cli_tree):
    desc = st.load(name)
    exp = desc["expected"]["gpus"]
    scenarios = list(desc["expected"].get("scenarios") or [])
    if len(exp) > 1:   # implied by the node-wide NIC rule: hiding GPUs moves no NIC
        cvd = list(reversed(range(len(exp))))[: max(2, len(exp) // 2)]
        scenarios.append({"env": {"CUDA_VISIBLE_DEVICES": ",".join(map(str, cvd))},
                          "local_world_size": len(cvd),
                          "ranks": [{"local_rank": r, **exp[i]} for r, i in enumerate(cvd)]})
    for sc in scenarios:
        args = [] if sc.get("local_world_size") is None else ["--local-world-size",
                                                              str(sc["local_world_size"])]
        ranks = plan_json(cli_tree(name), *args, extra={k: str(v) for k, v in (sc.get("env") or {}).items()})
        by_rank = {r["local_rank"]: r for r in ranks}
        for e in sc["ranks"]:
            r = by_rank[e["local_rank"]]
            check_shape(r)
            for key, field in (("bdf", "gpu_pci"), ("numa", "numa_node"), ("hca", "hca")):
                if key in e:
                    assert r[field] == e[key], (sc, r)


@pytest.mark.parametrize("name", [m for m in MACHINES if st.load(m)["expected"]["gpus"]])
def test_plan_local_rank(name, cli_tree):
    exp = st.load(name)["expected"]["gpus"]
    root = cli_tree(name)
    everything = plan_json(root)
    for r in sorted({0, len(exp) - 1}):
        only = plan_json(root, "--local-rank", str(r))
        assert len(only) == 1
        assert only[0] == everything[r]
        assert (only[0]["gpu_pci"], only[0]["numa_node"], only[0]["hca"]) == \
            (exp[r]["bdf"], exp[r]["numa"], exp[r]["hca"])
    p = run([*NUMABIND, "plan", "--json", "--local-rank", str(len(exp))], root)
    assert p.returncode == 1 and "Traceback" not in p.stderr
    assert f"local rank {len(exp)} is outside the {len(exp)} local ranks planned" in p.stderr, p.stderr


def test_plan_text_table(cli_tree):
    p = run([*NUMABIND, "plan"], cli_tree("dgx-h100"))
    assert p.returncode == 0, p.stderr
    lines = p.stdout.splitlines()
    assert len(lines) == 9 and "mlx5_11:1" in lines[8] and "0000:df:00.0" in lines[8]


@pytest.mark.parametrize("rank", [1, 5])
def test_env_export_lines_eval_in_bash(rank, cli_tree):
    exp = st.load("dgx-h100")["expected"]["gpus"][rank]
    root = cli_tree("dgx-h100")
    p = run([*NUMABIND, "env", "--local-rank", str(rank)], root)
    assert p.returncode == 0, p.stderr
    lines = p.stdout.splitlines()
    assert lines and all(line.startswith("export ") for line in lines), p.stdout
    cmd = " ".join(map(shlex.quote, [*NUMABIND, "env", "--local-rank", str(rank)]))
    script = (f'eval "$({cmd})"; '
              'echo "$NVSHMEM_HCA_LIST|$NVSHMEM_ENABLE_NIC_PE_MAPPING|$NCCL_IB_HCA|$UCX_NET_DEVICES"')
    b = run(["bash", "-c", script], root)
    assert b.returncode == 0, b.stderr
    dev = f"{exp['hca']}:1"
    assert b.stdout.strip() == f"{dev}|1|{DGX_NCCL_IB_HCA}|{dev}"


def test_env_rank_from_environment_and_kept_values(cli_tree):
    root = cli_tree("dgx-h100")
    p = run([*NUMABIND, "env"], root, {"LOCAL_RANK": "6", "NCCL_IB_HCA": "mlx5_0"})
    assert p.returncode == 0, p.stderr
    assert p.stdout.splitlines() == ["export NVSHMEM_HCA_LIST=mlx5_10:1",
                                     "export NVSHMEM_ENABLE_NIC_PE_MAPPING=1",
                                     "export UCX_NET_DEVICES=mlx5_10:1",
                                     "export EP_NIC_NAME=mlx5_10"]
    p = run([*NUMABIND, "env", "--override-env"], root, {"LOCAL_RANK": "6", "NCCL_IB_HCA": "mlx5_0"})
    assert f"export NCCL_IB_HCA={DGX_NCCL_IB_HCA}" in p.stdout.splitlines()


def test_env_without_nic_prints_nothing(cli_tree):
    p = run([*NUMABIND, "env", "--local-rank", "2"], cli_tree("h100x4-flat-vm"))
    assert p.returncode == 0, p.stderr
    assert p.stdout == ""


AFFINITY = ("import os; "
            "print([l.split(':')[1].strip() for l in open('/proc/self/status') "
            "if l.startswith('Cpus_allowed_list')][0]); "
            "print(os.sched_getaffinity(0))")


@pytest.mark.skipif(not {0, 1} <= os.sched_getaffinity(0), reason="needs CPUs 0 and 1")
def test_exec_binds_the_child_from_birth(cli_tree):
    # two GPUs on CPUs 0-1 (tests/fixtures): rank 1's plan is CPU 1 of this machine
    root = cli_tree(two_gpu_desc())
    before = os.sched_getaffinity(0)
    code = ("import numabind; p = numabind.plan(2); "
            "print(numabind._core.format_cpulist(p[1].cpus))")
    expected = run([sys.executable, "-c", code], root)
    assert expected.returncode == 0, expected.stderr
    want = expected.stdout.strip()
    if before == {0, 1}:
        assert want == "1"
    assert want == "1"
    p = run([*NUMABIND, "exec", "--local-world-size", "2", "--local-rank", "1", "--",
             sys.executable, "-c", AFFINITY], root)
    assert p.returncode == 0, p.stderr
    status_line, affinity = p.stdout.splitlines()
    assert status_line == want
    assert affinity == "{1}"
    assert os.sched_getaffinity(0) == before


@pytest.mark.skipif(not Path("/sys/devices/system/node/node0").is_dir(), reason="needs NUMA node 0")
def test_exec_exports_nic_variables_to_the_command(cli_tree):
    # dgx-h100's CPUs do not exist here: policy none binds nothing; rank 1's
    # memory node 0 exists on any NUMA kernel
    root = cli_tree("dgx-h100")
    p = run([*NUMABIND, "exec", "--policy", "none", "--local-rank", "1", "--", "bash", "-c",
             'echo "$NVSHMEM_HCA_LIST $NVSHMEM_ENABLE_NIC_PE_MAPPING $NCCL_IB_HCA $UCX_NET_DEVICES"'], root)
    assert p.returncode == 0, p.stderr
    assert p.stdout.strip() == f"mlx5_3:1 1 {DGX_NCCL_IB_HCA} mlx5_3:1"


@pytest.mark.parametrize("args", [["exec"], ["exec", "--"], ["exec", "--local-rank", "0", "--"]])
def test_exec_without_command_exits_2(args):
    p = run([*NUMABIND, *args], extra={"CUDA_VISIBLE_DEVICES": ""})
    assert p.returncode == 2, (p.returncode, p.stdout, p.stderr)
    assert "Traceback" not in p.stderr
    assert "command" in p.stderr


@pytest.mark.parametrize("sub", [["env"], ["exec", "--", "touch", "{marker}"]])
@pytest.mark.parametrize("value", ["abc", "-3", "1.5"])
def test_bad_local_rank_exits_1(sub, value, tmp_path):
    marker = tmp_path / "ran"
    args = [a.replace("{marker}", str(marker)) for a in sub]
    p = run([*NUMABIND, *args], extra={"LOCAL_RANK": value, "CUDA_VISIBLE_DEVICES": ""})
    assert p.returncode == 1, (p.returncode, p.stdout, p.stderr)
    assert "Traceback" not in p.stderr
    assert f"'{value}'" in p.stderr or f'"{value}"' in p.stderr, p.stderr
    assert "LOCAL_RANK" in p.stderr
    assert p.stdout == ""
    assert not marker.exists(), "the command ran although the rank was bad"


@pytest.mark.parametrize("args", [["plan", "--local-world-size", "0"], ["plan", "--reserve-cores", "-1"],
                                  ["env", "--local-rank", "-1"],
                                  ["exec", "--local-rank", "-2", "--", "true"]])
def test_bad_option_values_exit_without_traceback(args):
    p = run([*NUMABIND, *args], extra={"CUDA_VISIBLE_DEVICES": ""})
    assert p.returncode == 2, (p.returncode, p.stderr)    # a usage error, named by its flag
    assert "Traceback" not in p.stderr, p.stderr
    value = args[args.index("--") - 1 if "--" in args else -1]
    flag = args[args.index(value) - 1]
    assert f"argument {flag}: {value} is below" in p.stderr, p.stderr


def test_plan_without_a_visible_gpu_says_why(cli_tree):
    root = cli_tree("dgx-h100")
    p = run([*NUMABIND, "plan"], root, {"CUDA_VISIBLE_DEVICES": ""})
    assert p.returncode == 0, p.stderr
    assert p.stdout.strip() == "No ranks: CUDA_VISIBLE_DEVICES='' hides every GPU"
    p = run([*NUMABIND, "plan", "--json", "--local-rank", "0"], root, {"CUDA_VISIBLE_DEVICES": ""})
    assert json.loads(p.stdout) == {"ranks": [], "note": "CUDA_VISIBLE_DEVICES='' hides every GPU"}
    p = run([*NUMABIND, "exec", "--local-rank", "0", "--", "sh", "-c", "echo ran; echo ${NCCL_IB_HCA:-unset}"],
            root, {"CUDA_VISIBLE_DEVICES": ""})
    assert p.returncode == 0 and p.stdout.split() == ["ran", "unset"], (p.stdout, p.stderr)
    assert "local rank 0: not pinned: CUDA_VISIBLE_DEVICES='' hides every GPU" in p.stderr


def test_plan_lists_equally_close_nics(cli_tree):
    desc = st.load("dgx-h100")
    desc["name"] = "dgx-h100-ib-storage"
    for root in desc["pci"]:
        stack = list(root["devices"])
        while stack:
            d = stack.pop()
            stack += d.get("children", [])
            if d.get("ibdev") in ("mlx5_1", "mlx5_2"):
                d.update(link_layer="InfiniBand", state="ACTIVE", rate="400 Gb/sec (4X NDR)")
    p = run([*NUMABIND, "plan"], cli_tree(desc))
    assert p.returncode == 0, p.stderr
    assert "rank 0: equally close NICs mlx5_0:1, mlx5_1:1, mlx5_2:1 (NVSHMEM gets mlx5_0:1)" in p.stdout
    assert "rank 1: equally close" not in p.stdout
