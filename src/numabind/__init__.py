"""numabind: put every rank of a multi-GPU job on the CPU cores, memory and
RDMA NIC closest to its GPU.

    >>> import numabind
    >>> topo = numabind.topology()
    >>> topo.distance(0, "mlx5_0")
"""

from numabind._core import VERSION_STRING as __version__
from numabind.errors import (
    BindingError, EnvironmentValueError, NumabindError, PlacementError, TopologyError,
)
from numabind.placement import Plan, RankPlan, pin_rank, plan
from numabind.audit import AuditError, AuditReport, Finding, audit
from numabind.paths import get_cmake_dir, get_include, get_library_dir, get_pkgconfig_dir
from numabind.topology import (
    Cpu, DistanceClass, Gpu, Nic, NicPort, NumaNode, PciFunction, Topology, topology,
)

__all__ = [
    "__version__",
    "topology", "Topology", "NumaNode", "Cpu", "PciFunction", "Gpu", "Nic", "NicPort",
    "DistanceClass",
    "plan", "pin_rank", "Plan", "RankPlan",
    "audit", "AuditReport", "Finding", "AuditError",
    "get_include", "get_library_dir", "get_cmake_dir", "get_pkgconfig_dir",
    "NumabindError", "TopologyError", "EnvironmentValueError", "PlacementError", "BindingError",
]
