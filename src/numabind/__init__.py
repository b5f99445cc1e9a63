"""numabind: put every rank of a multi-GPU job on the CPU cores, memory and
RDMA NIC closest to its GPU.

    >>> import numabind
    >>> topo = numabind.topology()
    >>> topo.distance(0, "mlx5_0")
"""

# `import numabind` loads what pin_rank runs on, the C core, the topology
# and the planner (at the end of this file), and nothing else: every other
# public name loads its module the first time it is used (PEP 562) —
# numabind.audit socket, numabind.DistanceClass enum; json and logging load
# where they are used, the CLI, svg and gather when run (issue 16).

import sys

TYPE_CHECKING = False
if TYPE_CHECKING:    # what type checkers and IDEs read; at run time, __getattr__ below
    from numabind._core import VERSION_STRING as __version__
    from numabind.audit import AuditError, AuditReport, Finding, audit
    from numabind.errors import (
        BindingError, EnvironmentValueError, NumabindError, PlacementError, TopologyError,
    )
    from numabind.paths import get_cmake_dir, get_include, get_library_dir, get_pkgconfig_dir
    from numabind.placement import Plan, RankPlan, pin_rank, plan
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

# Public name -> (module, name in it).
_LAZY = {"__version__": ("numabind._core", "VERSION_STRING")}
for _module, _names in (
    ("numabind.topology", ("topology", "Topology", "NumaNode", "Cpu", "PciFunction", "Gpu", "Nic", "NicPort")),
    ("numabind._distance", ("DistanceClass",)),
    ("numabind.placement", ("plan", "pin_rank", "Plan", "RankPlan")),
    ("numabind.audit", ("audit", "AuditReport", "Finding", "AuditError")),
    ("numabind.paths", ("get_include", "get_library_dir", "get_cmake_dir", "get_pkgconfig_dir")),
    ("numabind.errors", ("NumabindError", "TopologyError", "EnvironmentValueError", "PlacementError",
                         "BindingError")),
):
    for _name in _names:
        _LAZY[_name] = (_module, _name)
del _module, _names, _name

# Submodules `import numabind` used to import, reachable as attributes as before.
_SUBMODULES = ("_core", "errors", "placement", "paths")


# Hidden from type checkers, which read the names themselves (above): a
# misspelt name stays an error for mypy.
if not TYPE_CHECKING:
    def __getattr__(name: str) -> object:
        if name in _LAZY:
            module, attr = _LAZY[name]
            __import__(module)
            value = getattr(sys.modules[module], attr)
            globals()[name] = value
            return value
        if name in _SUBMODULES:
            __import__(f"numabind.{name}")    # the import binds it here
            return globals()[name]
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))


class _Package(type(sys)):  # type: ignore[misc]
    """numabind's module type. Importing a submodule binds it as an attribute
    of its package; numabind.topology and numabind.audit are the functions
    of those names, as they were when this module imported them eagerly, so
    the function is bound instead, whoever imports the submodule."""

    def __setattr__(self, name: str, value: object) -> None:
        if name in ("topology", "audit") and getattr(value, "__name__", None) == f"numabind.{name}":
            value = getattr(value, name)
        super().__setattr__(name, value)


sys.modules[__name__].__class__ = _Package

# The pin_rank path, loaded with the package (after the line above, so that
# numabind.topology is bound to the function): the first pin_rank in a
# process then pays for reading the machine and planning, not for loading
# (~2 ms on the development VM, inside the import's budget of 15 ms; see
# docs/benchmarks.md). Where the C core cannot load (no libnuma on a build
# host) numabind still imports, for get_cmake_dir() and friends, and the
# first name that needs the core raises the ImportError.
try:
    __import__("numabind.placement")    # binds numabind.placement, nothing else here
except ImportError:
    pass
