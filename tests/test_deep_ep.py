"""numabind.integrations.deep_ep: the error without DeepEP, and init_dist's
behaviour across two real processes (gloo, CPU).

DeepEP cannot exist here: it builds only with CUDA and NVSHMEM. Where these
tests need ``import deep_ep`` to succeed they put a stand-in package on the
path — a mock, and the only one in this suite: ``deep_ep/utils/envs.py`` with
DeepEP 2.x's globals (``_DEFAULT_NIC_NAME`` read from ``EP_NIC_NAME`` at
import, default ``mlx5_0``) and its ``init_seed``, and a ``deep_ep/__init__.py``
that imports it, as 2.x's does (copied in behaviour, not code). The real
DeepEP runs with this integration in tests/gpu (docs/deepep.md).

The machine is two_node_desc() with Azure's NIC names (mlx5_ib0, mlx5_ib1),
so no rank's NIC is DeepEP's default mlx5_0.
"""
from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from pinkit import two_node_desc

if os.environ.get("CI") == "true":
    import torch  # CI installs it (tools/dev.sh): a skip there would hide these tests
else:
    torch = pytest.importorskip("torch", reason="needs torch (tools/dev.sh installs the CPU build)")

NICS = ["mlx5_ib0", "mlx5_ib1"]  # rank r's GPU sits next to NICS[r]


def test_import_without_deep_ep_names_what_to_do():
    code = "import numabind.integrations.deep_ep"
    p = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert p.returncode != 0
    assert "ImportError: numabind.integrations.deep_ep needs DeepEP" in p.stderr
    assert "github.com/deepseek-ai/DeepEP" in p.stderr and "numabind[deepep]" in p.stderr
    # ...and numabind itself never imports it.
    p = subprocess.run([sys.executable, "-c", "import numabind, sys; print('deep_ep' in sys.modules, "
                        "'numabind.integrations.deep_ep' in sys.modules)"], capture_output=True, text=True)
    assert p.stdout.strip() == "False False", p.stderr


STAND_IN_INIT = '''
STAND_IN = True
from .utils import envs as _envs  # DeepEP 2.x's __init__ imports deep_ep.utils.envs (through its buffers)
'''

STAND_IN_ENVS = '''
import os, random, torch, torch.distributed as dist
_local_rank = None
_local_seed = 0
_global_seed = 0
_DEFAULT_NIC_NAME = os.environ.get("EP_NIC_NAME", "mlx5_0")  # read once, at import, as DeepEP 2.x does
IMPORTED_ON_CPUS = sorted(os.sched_getaffinity(0))          # the stand-in's own: where the import ran
def init_seed(global_seed):
    global _local_seed, _global_seed
    _local_seed = global_seed + dist.get_rank()
    _global_seed = global_seed
    torch.manual_seed(_local_seed)
    random.seed(_local_seed)
'''


@pytest.fixture(scope="module")
def stand_in(tmp_path_factory) -> Path:
    base = tmp_path_factory.mktemp("deep_ep_stand_in")
    (base / "deep_ep/utils").mkdir(parents=True)
    (base / "deep_ep/__init__.py").write_text(STAND_IN_INIT)
    (base / "deep_ep/utils/__init__.py").write_text("")
    (base / "deep_ep/utils/envs.py").write_text(STAND_IN_ENVS)
    return base


def azure_named_desc() -> dict:
    d = two_node_desc()
    d["name"] = "two-node-two-gpu-mlx5-ib"
    nics = [dev for root in d["pci"] for dev in root["devices"] if dev["kind"] == "nic"]
    assert [n["ibdev"] for n in nics] == ["mlx5_0", "mlx5_1"]
    for nic, name in zip(nics, NICS):
        nic["ibdev"] = name
    for gpu, name in zip(d["expected"]["gpus"], NICS):
        gpu["hca"] = name
    return d


@pytest.fixture(scope="module")
def root(tree) -> Path:
    if not {0, 1} <= os.sched_getaffinity(0):
        pytest.skip("needs CPUs 0 and 1")
    return tree(azure_named_desc())


def stand_in_env(stand_in: Path, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("NVSHMEM_", "NCCL_", "UCX_", "EP_"))}
    env.update(PYTHONPATH=os.pathsep.join([str(stand_in), env.get("PYTHONPATH", "")]), **extra)
    return env


def test_import_leaves_deep_ep_unimported(stand_in):
    # The integration only checks that DeepEP is there: importing it would run
    # DeepEP's import-time reads (EP_NIC_NAME) before init_dist pins and exports.
    code = ("import sys; import numabind.integrations.deep_ep as nde; "
            "print(sorted(m for m in sys.modules if m == 'deep_ep' or m.startswith('deep_ep.')))")
    p = subprocess.run([sys.executable, "-c", code], env=stand_in_env(stand_in), capture_output=True, text=True,
                       timeout=60)
    assert p.returncode == 0, p.stderr
    assert p.stdout.strip() == "[]"
    # ...and the stand-in is importable there (the check above is not vacuous).
    p = subprocess.run([sys.executable, "-c", "import deep_ep; print(deep_ep.STAND_IN)"],
                       env=stand_in_env(stand_in), capture_output=True, text=True, timeout=60)
    assert p.stdout.strip() == "True", p.stderr


VARS = ("NVSHMEM_HCA_LIST", "NVSHMEM_ENABLE_NIC_PE_MAPPING", "NCCL_IB_HCA", "UCX_NET_DEVICES", "EP_NIC_NAME")

RANK = r'''
import json, os, sys, warnings
import torch, torch.distributed as dist
VARS = %r
seen = {}
real_init = dist.init_process_group
def spy(*a, **kw):
    # What the process looks like when the process group (and, on GPUs, NCCL) starts.
    seen["affinity"] = sorted(os.sched_getaffinity(0))
    seen["env"] = {k: os.environ.get(k) for k in VARS}
    seen["kw"] = {k: str(v) for k, v in kw.items()}
    return real_init(*a, **kw)
dist.init_process_group = spy
local_rank, mode = int(sys.argv[1]), sys.argv[2]
if mode == "early":
    import deep_ep  # as DeepEP's own tests do, at their top: before init_dist
from numabind.integrations import deep_ep as nde
deep_ep_before = "deep_ep" in sys.modules
with warnings.catch_warnings(record=True) as caught:
    warnings.simplefilter("always")
    rank, num_ranks, group = nde.init_dist(local_rank, 2, seed=7, pin=mode != "nopin", backend="gloo",
                                           device="cpu", mem="local")
envs = sys.modules["deep_ep.utils.envs"]
x = torch.ones(2)
out = dict(rank=rank, num_ranks=num_ranks, group_size=group.size(), seen=seen, dtype=str(x.dtype),
           device=str(x.device), local_rank_global=envs._local_rank, seed=envs._local_seed,
           nic_name_global=envs._DEFAULT_NIC_NAME, imported_on=envs.IMPORTED_ON_CPUS,
           deep_ep_before=deep_ep_before,
           warnings=[str(w.message) for w in caught if issubclass(w.category, RuntimeWarning)],
           plan=None if nde.last_plan is None else [nde.last_plan.local_rank, list(nde.last_plan.cpus),
                                                    nde.last_plan.hca, nde.last_plan.hca_port],
           env={k: os.environ.get(k) for k in VARS}, affinity=sorted(os.sched_getaffinity(0)))
dist.destroy_process_group()
print("RESULT " + json.dumps(out))
''' % (VARS,)


def run_pair(root: Path, stand_in: Path, mode: str) -> list[dict]:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    env = stand_in_env(stand_in, NUMABIND_FSROOT=str(root), MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port),
                       WORLD_SIZE="1", RANK="0", GLOO_SOCKET_IFNAME="lo", OMP_NUM_THREADS="1")
    procs = [subprocess.Popen([sys.executable, "-c", textwrap.dedent(RANK), str(r), mode], env=env,
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) for r in range(2)]
    out = []
    for r, p in enumerate(procs):
        stdout, stderr = p.communicate(timeout=180)
        assert p.returncode == 0, f"rank {r}: {stderr}"
        out.append(json.loads([x for x in stdout.splitlines() if x.startswith("RESULT ")][-1][7:]))
    return out


def nccl_ib_hca_names(value: str) -> list[str]:
    """``=a:1,b:1`` -> ["a", "b"] (the port is not what these tests check)."""
    assert value.startswith("="), value  # exact match: NCCL matches prefixes otherwise
    return [entry.split(":")[0] for entry in value[1:].split(",")]


def test_init_dist_pins_before_the_process_group(root, stand_in):
    results = run_pair(root, stand_in, "pin")
    for r, res in enumerate(results):
        nic = NICS[r]
        assert res["rank"] == r and res["num_ranks"] == 2 and res["group_size"] == 2
        assert not res["deep_ep_before"] and res["warnings"] == []
        # pinned, and the NIC exported, before init_process_group ran
        assert res["seen"]["affinity"] == [r] and res["seen"]["env"]["NVSHMEM_HCA_LIST"] == f"{nic}:1"
        assert res["seen"]["env"]["NCCL_IB_HCA"] is not None
        assert res["seen"]["kw"]["init_method"].startswith("tcp://127.0.0.1:")
        assert res["seen"]["kw"]["world_size"] == "2" and res["seen"]["kw"]["rank"] == str(r)
        assert res["plan"] == [r, [r], nic, 1]
        env = res["env"]
        assert {k: env[k] for k in ("NVSHMEM_HCA_LIST", "NVSHMEM_ENABLE_NIC_PE_MAPPING", "UCX_NET_DEVICES")} == \
            {"NVSHMEM_HCA_LIST": f"{nic}:1", "NVSHMEM_ENABLE_NIC_PE_MAPPING": "1", "UCX_NET_DEVICES": f"{nic}:1"}
        # NCCL_IB_HCA: the node's compute NICs in PCI order, the same on every rank (nccl#1478)
        assert nccl_ib_hca_names(env["NCCL_IB_HCA"]) == NICS
        # DeepEP's own behaviour: bf16 default dtype, default device, seeds, its globals
        assert res["dtype"] == "torch.bfloat16" and res["device"] == "cpu"
        assert res["local_rank_global"] == r and res["seed"] == 7 + r
        # DeepEP was imported after pinning: on the rank's CPUs
        assert res["imported_on"] == [r]
    assert results[0]["env"]["NCCL_IB_HCA"] == results[1]["env"]["NCCL_IB_HCA"]


def test_deep_ep_reads_the_ranks_nic_name(root, stand_in):
    # DeepEP 2.x reads EP_NIC_NAME once, when deep_ep.utils.envs is imported; it
    # falls back to mlx5_0, which this machine (like Azure's) does not have.
    for r, res in enumerate(run_pair(root, stand_in, "pin")):
        assert res["plan"][2] == NICS[r] != "mlx5_0"
        assert res["env"]["EP_NIC_NAME"] == res["seen"]["env"]["EP_NIC_NAME"] == NICS[r]
        assert res["nic_name_global"] == res["plan"][2]


def test_deep_ep_imported_before_init_dist_warns(root, stand_in):
    # A script that imports deep_ep first (DeepEP's tests do) has it read
    # EP_NIC_NAME before numabind exports it: the pinning still happens, with a warning.
    for r, res in enumerate(run_pair(root, stand_in, "early")):
        assert res["deep_ep_before"] and res["nic_name_global"] == "mlx5_0"
        assert res["plan"][:3] == [r, [r], NICS[r]] and res["env"]["EP_NIC_NAME"] == NICS[r]
        assert len(res["warnings"]) == 1, res["warnings"]
        assert "EP_NIC_NAME='mlx5_0'" in res["warnings"][0] and repr(NICS[r]) in res["warnings"][0]


def test_init_dist_without_pinning_is_the_baseline(root, stand_in):
    before = sorted(os.sched_getaffinity(0))
    for r, res in enumerate(run_pair(root, stand_in, "nopin")):
        assert res["rank"] == r and res["plan"] is None and res["warnings"] == []
        assert res["affinity"] == before and res["seen"]["env"]["NVSHMEM_HCA_LIST"] is None
        assert all(v is None for v in res["env"].values()), res["env"]
        assert res["nic_name_global"] == "mlx5_0" and res["imported_on"] == before
        assert res["local_rank_global"] == r and res["seed"] == 7 + r
