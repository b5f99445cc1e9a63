"""DeepEP: ``init_dist`` that pins the rank before CUDA, NCCL, NVSHMEM and
DeepEP itself start.

In DeepEP's tests (and most code built on them) replace::

    from deep_ep.utils.envs import init_dist        # 2.x; tests/utils.py's copy in 1.x

with::

    from numabind.integrations.deep_ep import init_dist

Same signature, same return value ``(rank, num_ranks, group)``. Before the
process group, CUDA or NVSHMEM exist, the rank's threads are bound to the
cores of its GPU's NUMA node, its memory policy prefers that node, and its
NIC variables are exported:

* ``EP_NIC_NAME`` — the rank's NIC, no port. DeepEP 2.x reads it once, when
  ``deep_ep.utils.envs`` is imported (default ``mlx5_0``), for the RDMA rate
  and CA type it sizes SMs and QPs by.
* ``NCCL_IB_HCA`` — every compute NIC of the node, one value on every rank
  (NCCL requires it equal across ranks and pairs GPUs with NICs itself).
  2.x's ``ElasticBuffer`` runs on NCCL GIN over PyTorch's communicator, and
  NCCL reads this when the process's first communicator starts: it must be set
  before ``init_process_group``, which ``init_dist`` guarantees.
* a one-entry ``NVSHMEM_HCA_LIST`` with ``NVSHMEM_ENABLE_NIC_PE_MAPPING=1``
  (the 1.x ``Buffer``, 2.x's ``deep_ep.Buffer`` legacy path) and
  ``UCX_NET_DEVICES``.

This module does not import DeepEP: it only checks that it is installed.
``init_dist`` pins first and imports ``deep_ep`` only then, so DeepEP's import
runs on the rank's CPUs and sees the exported variables. A script that imports
``deep_ep`` itself before calling ``init_dist`` (DeepEP's own tests do, at
their top) has DeepEP read ``EP_NIC_NAME`` too early; ``init_dist`` warns when
that happened. See docs/deepep.md.
"""

from __future__ import annotations

import importlib
import importlib.util
import inspect
import os
import random
import sys
import warnings
from types import ModuleType
from typing import Any


def _deep_ep_missing() -> str | None:
    """Why ``deep_ep`` cannot be imported here, without importing it (None if it can)."""
    try:
        spec = importlib.util.find_spec("deep_ep")
    except (ImportError, ValueError) as exc:  # ValueError: sys.modules["deep_ep"].__spec__ is None
        return str(exc)
    return None if spec is not None else "No module named 'deep_ep'"


_missing = _deep_ep_missing()
if _missing is not None:  # pragma: no cover - the message is the test
    raise ImportError(
        "numabind.integrations.deep_ep needs DeepEP, which is not importable here "
        f"({_missing}). Build and install it from https://github.com/deepseek-ai/DeepEP "
        "(it needs CUDA and NVSHMEM), and install numabind with its 'deepep' extra "
        "(pip install 'numabind[deepep]') for PyTorch. numabind.pin_rank() works without it.",
        name="deep_ep")
del _missing

import torch  # noqa: E402  (importing torch starts neither CUDA nor NCCL)
import torch.distributed as dist  # noqa: E402

from numabind.placement import RankPlan, pin_rank  # noqa: E402

__all__ = ["init_dist", "pin_local_rank"]

#: The plan init_dist applied in this process (None before, or with pin=False).
last_plan: RankPlan | None = None

# DeepEP 2.x's module that reads EP_NIC_NAME at import, and the global it keeps it in.
_ENVS_MODULE = "deep_ep.utils.envs"
_NIC_NAME_GLOBAL = "_DEFAULT_NIC_NAME"


def pin_local_rank(local_rank: int, num_local_ranks: int, **pin_kwargs: Any) -> RankPlan:
    """Pins this process as ``local_rank`` of ``num_local_ranks`` and exports
    its NIC variables; call it first thing in a rank (before CUDA starts)."""
    if torch.cuda.is_initialized():
        warnings.warn("numabind: CUDA was initialized before pinning; its threads are bound now, "
                      "but host memory it already allocated stays where it is", RuntimeWarning, stacklevel=3)
    return pin_rank(local_rank, local_world_size=num_local_ranks, **pin_kwargs)


def init_dist(local_rank: int, num_local_ranks: int, seed: int = 0, *, pin: bool = True,
              backend: str = "nccl", device: str = "cuda",
              **pin_kwargs: Any) -> tuple[int, int, dist.ProcessGroup]:
    """DeepEP's ``init_dist``, with the rank pinned first.

    Pins the rank and exports its NIC variables, then imports DeepEP (so
    DeepEP 2.x reads ``EP_NIC_NAME`` as exported), then reads ``MASTER_ADDR``
    (127.0.0.1), ``MASTER_PORT`` (8361), ``WORLD_SIZE`` (number of nodes, 1)
    and ``RANK`` (node rank, 0) as DeepEP does, starts the process group (NCCL
    reads ``NCCL_IB_HCA`` then), sets the default dtype to bfloat16 and the
    default device, seeds the RNGs with ``seed + rank``, and returns ``(rank,
    num_ranks, group)``. ``pin=False`` skips pinning (the unpinned baseline);
    ``backend``/``device`` other than nccl/cuda run it without GPUs (tests).
    Other keywords go to :func:`numabind.pin_rank`.
    """
    global last_plan
    if pin:
        imported_early = sys.modules.get(_ENVS_MODULE)
        last_plan = pin_local_rank(local_rank, num_local_ranks, **pin_kwargs)
        if imported_early is not None:
            _warn_if_nic_name_read_early(imported_early)
    envs = _import_deep_ep_envs()  # only now: after pinning, before NCCL starts
    ip = os.getenv("MASTER_ADDR", "127.0.0.1")
    port = int(os.getenv("MASTER_PORT", "8361"))
    num_nodes = int(os.getenv("WORLD_SIZE", 1))
    node_rank = int(os.getenv("RANK", 0))
    if envs is not None and hasattr(envs, "_local_rank"):
        setattr(envs, "_local_rank", local_rank)  # what DeepEP's dist_print reads, set where its init_dist does
    params: dict[str, Any] = {
        "backend": backend,
        "init_method": f"tcp://{ip}:{port}",
        "world_size": num_nodes * num_local_ranks,
        "rank": node_rank * num_local_ranks + local_rank,
    }
    if device == "cuda" and "device_id" in inspect.signature(dist.init_process_group).parameters:
        params["device_id"] = torch.device(f"cuda:{local_rank}")
    dist.init_process_group(**params)
    torch.set_default_dtype(torch.bfloat16)
    torch.set_default_device(device)
    if device == "cuda":
        torch.cuda.set_device(local_rank)
    _init_seed(envs, seed)
    return dist.get_rank(), dist.get_world_size(), dist.new_group(list(range(num_local_ranks * num_nodes)))


def _import_deep_ep_envs() -> ModuleType | None:
    """DeepEP 2.x's ``deep_ep.utils.envs`` (which imports the ``deep_ep``
    package first); None for DeepEP 1.x, which has no such module. Any other
    failure to import DeepEP is raised: a broken build should not pass for 1.x."""
    try:
        return importlib.import_module(_ENVS_MODULE)
    except ModuleNotFoundError as exc:
        if exc.name not in ("deep_ep.utils", _ENVS_MODULE):
            raise
        return None


def _warn_if_nic_name_read_early(envs: ModuleType) -> None:
    seen = getattr(envs, _NIC_NAME_GLOBAL, None)
    wanted = os.environ.get("EP_NIC_NAME")
    if seen is None or wanted is None or seen == wanted:
        return
    warnings.warn(
        f"numabind: {_ENVS_MODULE} was imported before init_dist pinned the rank, so DeepEP read "
        f"EP_NIC_NAME={seen!r}, not this rank's NIC {wanted!r}; the RDMA rate and QP count it derives "
        "from it may be wrong. Import deep_ep after init_dist, or export EP_NIC_NAME before the "
        "process starts (docs/deepep.md)", RuntimeWarning, stacklevel=3)


def _init_seed(envs: ModuleType | None, seed: int) -> None:
    # DeepEP's own helpers (get_local_seed, get_global_seed) read its module's globals.
    if envs is not None and hasattr(envs, "init_seed"):
        envs.init_seed(seed)
        return
    torch.manual_seed(seed + dist.get_rank())
    random.seed(seed + dist.get_rank())
