"""Type-checked by mypy --strict in tests/test_consumers.py: the stubs and
annotations the wheel ships must describe this correct use."""
from __future__ import annotations

import numabind


def cpus_of(rank: int, root: str) -> tuple[int, ...]:
    topo: numabind.Topology = numabind.topology(root)
    plan: numabind.Plan = numabind.plan(topology=topo)
    r: numabind.RankPlan = plan[rank]
    hca: str | None = r.hca
    del hca
    return r.cpus


def paths() -> list[str]:
    return [numabind.get_include(), numabind.get_cmake_dir(), numabind.get_pkgconfig_dir()]


def report() -> bool:
    return numabind.audit(raise_on=None).ok
