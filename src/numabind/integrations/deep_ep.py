"""DeepEP: ``init_dist`` that pins the rank before CUDA and NVSHMEM start.

In DeepEP's tests (and most code built on them) replace::

    from deep_ep.utils.envs import init_dist        # or tests/utils.py's copy

with::

    from numabind.integrations.deep_ep import init_dist

Same signature, same return value ``(rank, num_ranks, group)``. Before the
process group, CUDA or NVSHMEM exist, the rank's threads are bound to the
cores of its GPU's NUMA node, its memory policy prefers that node, and its
NIC is exported as a one-entry ``NVSHMEM_HCA_LIST`` (with
``NVSHMEM_ENABLE_NIC_PE_MAPPING=1``), ``NCCL_IB_HCA`` and ``UCX_NET_DEVICES``,
so the first ``deep_ep.Buffer`` uses it. See docs/deepep.md.
"""

from __future__ import annotations

import inspect
import os
import random
import warnings
from typing import Any

try:
    import deep_ep  # type: ignore[import-not-found]  # noqa: F401  (built from source: docs/deepep.md)
except ImportError as exc:  # pragma: no cover - the message is the test
    raise ImportError(
        "numabind.integrations.deep_ep needs DeepEP, which is not importable here "
        f"({exc}). Build and install it from https://github.com/deepseek-ai/DeepEP "
        "(it needs CUDA and NVSHMEM), and install numabind with its 'deepep' extra "
        "(pip install 'numabind[deepep]') for PyTorch. numabind.pin_rank() works without it."
    ) from exc

import torch
import torch.distributed as dist

from numabind.placement import RankPlan, pin_rank

__all__ = ["init_dist", "pin_local_rank"]

#: The plan init_dist applied in this process (None before, or with pin=False).
last_plan: RankPlan | None = None


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

    Reads ``MASTER_ADDR`` (127.0.0.1), ``MASTER_PORT`` (8361), ``WORLD_SIZE``
    (number of nodes, 1) and ``RANK`` (node rank, 0) as DeepEP does, starts the
    process group, sets the default dtype to bfloat16 and the default device,
    seeds the RNGs with ``seed + rank``, and returns ``(rank, num_ranks,
    group)``. ``pin=False`` skips pinning (the unpinned baseline);
    ``backend``/``device`` other than nccl/cuda run it without GPUs (tests).
    Other keywords go to :func:`numabind.pin_rank`.
    """
    global last_plan
    if pin:
        last_plan = pin_local_rank(local_rank, num_local_ranks, **pin_kwargs)
    ip = os.getenv("MASTER_ADDR", "127.0.0.1")
    port = int(os.getenv("MASTER_PORT", "8361"))
    num_nodes = int(os.getenv("WORLD_SIZE", 1))
    node_rank = int(os.getenv("RANK", 0))
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
    _init_seed(seed, local_rank)
    return dist.get_rank(), dist.get_world_size(), dist.new_group(list(range(num_local_ranks * num_nodes)))


def _init_seed(seed: int, local_rank: int) -> None:
    # DeepEP's own helpers (dist_print, get_local_seed) read its module's globals.
    try:
        from deep_ep.utils import envs  # type: ignore[import-not-found]
    except ImportError:
        envs = None
    if envs is not None and hasattr(envs, "init_seed"):
        envs._local_rank = local_rank
        envs.init_seed(seed)
        return
    torch.manual_seed(seed + dist.get_rank())
    random.seed(seed + dist.get_rank())
