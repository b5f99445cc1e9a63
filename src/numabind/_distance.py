"""``numabind.DistanceClass``, in a module of its own: ``enum`` (with
functools and collections, ~4 ms) is imported when a caller first uses the
class — ``Topology.distance``, ``to_dict``, the CLI, the SVG — not by
``import numabind``, ``topology()`` or ``pin_rank`` (issue 16).
"""

from __future__ import annotations

import enum

__all__ = ["DistanceClass"]


class DistanceClass(enum.IntEnum):
    """GPU-NIC path classes of ``nvidia-smi topo -m``, closest first."""

    # Public as numabind.topology.DistanceClass (its home before issue 16):
    # reprs, pickles and docs name it there.
    __module__ = "numabind.topology"

    PIX = 1   #: at most one PCIe switch between them
    PXB = 2   #: several PCIe bridges, no host bridge
    PHB = 3   #: through a PCIe host bridge
    NODE = 4  #: between host bridges of one NUMA node
    SYS = 5   #: across NUMA nodes, or locality unknown

    def __str__(self) -> str:
        return self.name
