"""numabind.integrations.deep_ep: the error without DeepEP, and init_dist's
behaviour across two real processes (gloo, CPU).

DeepEP cannot exist here: it builds only with CUDA and NVSHMEM. Where these
tests need ``import deep_ep`` to succeed they put a stand-in package on the
path — a mock, and the only one in this suite: ``deep_ep/utils/envs.py`` with
DeepEP's two globals and its ``init_seed`` (copied in behaviour, not code).
The real DeepEP runs with this integration in tests/gpu (docs/deepep.md).
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


STAND_IN_ENVS = '''
import random, torch, torch.distributed as dist
_local_rank = None
_local_seed = 0
_global_seed = 0
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
    (base / "deep_ep/__init__.py").write_text("STAND_IN = True\n")
    (base / "deep_ep/utils/__init__.py").write_text("")
    (base / "deep_ep/utils/envs.py").write_text(STAND_IN_ENVS)
    return base


@pytest.fixture(scope="module")
def root(tree) -> Path:
    if not {0, 1} <= os.sched_getaffinity(0):
        pytest.skip("needs CPUs 0 and 1")
    return tree(two_node_desc())


RANK = r'''
import json, os, sys
import torch, torch.distributed as dist
seen = {}
real_init = dist.init_process_group
def spy(*a, **kw):
    # What the process looks like when the process group (and, on GPUs, NCCL) starts.
    seen["affinity"] = sorted(os.sched_getaffinity(0))
    seen["hca"] = os.environ.get("NVSHMEM_HCA_LIST")
    seen["kw"] = {k: str(v) for k, v in kw.items()}
    return real_init(*a, **kw)
dist.init_process_group = spy
from numabind.integrations import deep_ep as nde
from deep_ep.utils import envs
local_rank = int(sys.argv[1])
rank, num_ranks, group = nde.init_dist(local_rank, 2, seed=7, pin=sys.argv[2] == "pin", backend="gloo",
                                       device="cpu", mem="local")
x = torch.ones(2)
out = dict(rank=rank, num_ranks=num_ranks, group_size=group.size(), seen=seen, dtype=str(x.dtype),
           device=str(x.device), local_rank_global=envs._local_rank, seed=envs._local_seed,
           plan=None if nde.last_plan is None else [nde.last_plan.local_rank, list(nde.last_plan.cpus),
                                                    nde.last_plan.hca],
           env={k: os.environ.get(k) for k in ("NVSHMEM_HCA_LIST", "NVSHMEM_ENABLE_NIC_PE_MAPPING",
                                               "NCCL_IB_HCA", "UCX_NET_DEVICES")},
           affinity=sorted(os.sched_getaffinity(0)))
dist.destroy_process_group()
print("RESULT " + json.dumps(out))
'''


def run_pair(root: Path, stand_in: Path, mode: str) -> list[dict]:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    env = {k: v for k, v in os.environ.items() if not k.startswith(("NVSHMEM_", "NCCL_", "UCX_"))}
    env.update(NUMABIND_FSROOT=str(root), MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port), WORLD_SIZE="1",
               RANK="0", GLOO_SOCKET_IFNAME="lo", OMP_NUM_THREADS="1",
               PYTHONPATH=os.pathsep.join([str(stand_in), env.get("PYTHONPATH", "")]))
    procs = [subprocess.Popen([sys.executable, "-c", textwrap.dedent(RANK), str(r), mode], env=env,
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) for r in range(2)]
    out = []
    for r, p in enumerate(procs):
        stdout, stderr = p.communicate(timeout=180)
        assert p.returncode == 0, f"rank {r}: {stderr}"
        out.append(json.loads([x for x in stdout.splitlines() if x.startswith("RESULT ")][-1][7:]))
    return out


def test_init_dist_pins_before_the_process_group(root, stand_in):
    a, b = run_pair(root, stand_in, "pin")
    for r, res in ((0, a), (1, b)):
        assert res["rank"] == r and res["num_ranks"] == 2 and res["group_size"] == 2
        # pinned, and the NIC exported, before init_process_group ran
        assert res["seen"]["affinity"] == [r] and res["seen"]["hca"] == f"mlx5_{r}:1"
        assert res["seen"]["kw"]["init_method"].startswith("tcp://127.0.0.1:")
        assert res["seen"]["kw"]["world_size"] == "2" and res["seen"]["kw"]["rank"] == str(r)
        assert res["plan"] == [r, [r], f"mlx5_{r}"]
        assert res["env"] == {"NVSHMEM_HCA_LIST": f"mlx5_{r}:1", "NVSHMEM_ENABLE_NIC_PE_MAPPING": "1",
                              "NCCL_IB_HCA": f"=mlx5_{r}:1", "UCX_NET_DEVICES": f"mlx5_{r}:1"}
        # DeepEP's own behaviour: bf16 default dtype, default device, seeds, its globals
        assert res["dtype"] == "torch.bfloat16" and res["device"] == "cpu"
        assert res["local_rank_global"] == r and res["seed"] == 7 + r


def test_init_dist_without_pinning_is_the_baseline(root, stand_in):
    before = sorted(os.sched_getaffinity(0))
    for r, res in enumerate(run_pair(root, stand_in, "nopin")):
        assert res["rank"] == r and res["plan"] is None
        assert res["affinity"] == before and res["seen"]["hca"] is None
        assert res["env"]["NVSHMEM_HCA_LIST"] is None
