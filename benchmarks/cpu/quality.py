"""Placement quality: for every machine of tests/machines, the share of ranks
that numabind and the hard-coded recipe place right, against the machine's
``expected`` answers (tests/machines/SCHEMA.md). Nothing is timed.

The recipe is the one people copy into DeepEP jobs: local rank r gets CPUs
``12r .. 12r+11``, ``numa_set_preferred(r // 4)``, and one node-wide
``NVSHMEM_HCA_LIST`` with ``NVSHMEM_ENABLE_NIC_PE_MAPPING=1``. We give the
recipe its best case for the list: the machine's own right NICs, in the
order of the job's GPUs (what a careful user would write). DeepEP's normal
mode makes every process PE 0 of its node, so every rank uses the list's
first entry.

A rank is right on

* **node** when its memory goes to its GPU's NUMA node (``expected.numa``):
  the preferred/bound node is that node. Where ``expected.numa`` is null
  (the machine gives no NUMA information) any memory node that exists and
  is allowed is as good as another, and so is leaving the policy alone.
* **CPUs** when it has at least one CPU, every CPU exists and is allowed,
  and every CPU is on its GPU's NUMA node (where ``expected.numa`` is null:
  anywhere in the allowed set).
* **NIC** when the RDMA NIC its NVSHMEM/NCCL traffic uses is ``expected.hca``
  (null: no NIC at all, which both get right when the machine has none).

``exclusive`` (no CPU shared with another rank of the job) is shown beside,
not counted.
"""
from __future__ import annotations

import os
import sys
from contextlib import contextmanager
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO / "tests"))

import sysfs_tree as st  # noqa: E402

AXES = ("node", "cpus", "nic")


@contextmanager
def environ(env: dict[str, str]):
    saved = {k: os.environ.get(k) for k in env}
    os.environ.update(env)
    try:
        yield
    finally:
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v


def scenarios(desc: dict) -> list[dict]:
    """Every GPU, one rank each; the described scenarios; and a second job on
    the upper half of the GPUs (CUDA_VISIBLE_DEVICES), as on a shared node."""
    n = len(desc["expected"]["gpus"])
    out = [{"label": f"{n} ranks", "env": {}, "gpus": list(range(n))}]
    for sc in desc["expected"].get("scenarios") or []:
        cvd = sc.get("env", {}).get("CUDA_VISIBLE_DEVICES")
        gpus = [int(i) for i in cvd.split(",")] if cvd else list(range(n))
        out.append({"label": f"scenario {sc.get('env')}", "env": dict(sc.get("env", {})),
                    "gpus": gpus[:sc.get("local_world_size") or len(gpus)]})
    if n >= 2:
        upper = list(range(n // 2, n))
        out.append({"label": f"CUDA_VISIBLE_DEVICES={','.join(map(str, upper))}, {len(upper)} ranks",
                    "env": {"CUDA_VISIBLE_DEVICES": ",".join(map(str, upper))}, "gpus": upper})
    return out


def _machine_sets(desc: dict) -> tuple[dict[int, set[int]], set[int], set[int]]:
    nodes = {n["id"]: set(st.parse_cpulist(n.get("cpus", ""))) for n in desc["cpu"]["nodes"]}
    existing = set().union(*nodes.values())
    allowed = set(st.parse_cpulist(desc["allowed"]["cpus"])) & existing
    mems = set(st.parse_cpulist(desc["allowed"]["mems"])) & set(nodes)
    return nodes, allowed, mems


def judge(desc: dict, gpus: list[int], placed: list[dict]) -> list[dict]:
    """``placed[r]``: {"cpus": set, "mem_nodes": tuple or () for default, "hca": str|None}."""
    nodes, allowed, mems = _machine_sets(desc)
    exp = desc["expected"]["gpus"]
    rows = []
    for r, p in enumerate(placed):
        e = exp[gpus[r]]
        numa = e["numa"]
        hood = allowed if numa is None else nodes.get(numa, set()) & allowed
        others = set().union(*(q["cpus"] for i, q in enumerate(placed) if i != r)) if len(placed) > 1 else set()
        if numa is None:
            node_ok = all(m in mems for m in p["mem_nodes"])
        else:
            node_ok = tuple(p["mem_nodes"]) == (numa,)
        rows.append({
            "rank": r, "gpu": e["bdf"],
            "node": node_ok,
            "cpus": bool(p["cpus"]) and p["cpus"] <= hood,
            "nic": p["hca"] == e["hca"],
            "exclusive": not (p["cpus"] & others),
        })
    return rows


def recipe(desc: dict, gpus: list[int]) -> list[dict]:
    exp = desc["expected"]["gpus"]
    hca_list = [exp[g]["hca"] for g in gpus if exp[g]["hca"]]
    first = hca_list[0] if hca_list else None
    return [{"cpus": set(range(12 * r, 12 * r + 12)), "mem_nodes": (r // 4,), "hca": first}
            for r in range(len(gpus))]


def numabind_plan(root: Path, env: dict[str, str], nranks: int) -> list[dict]:
    import numabind

    with environ(env):
        topo = numabind.topology(root)
        plan = numabind.plan(nranks, topology=topo)
    return [{"cpus": set(r.cpus), "mem_nodes": tuple(r.mem_nodes) if r.mem_policy != "default" else (),
             "hca": r.hca} for r in plan.ranks]


def evaluate(base: Path) -> list[dict]:
    """One entry per machine and scenario, with per-rank verdicts of both."""
    out = []
    for name in st.MACHINES:
        desc = st.load(name)
        if not desc["expected"]["gpus"]:
            out.append({"machine": name, "scenario": "no GPU: nothing to place", "ranks": 0})
            continue
        root = base / f"quality-{name}"
        if not (root / st.MARKER).exists():
            st.write_tree(st.load(name), root, clean=True)
        for sc in scenarios(desc):
            ours = judge(desc, sc["gpus"], numabind_plan(root, sc["env"], len(sc["gpus"])))
            theirs = judge(desc, sc["gpus"], recipe(desc, sc["gpus"]))
            out.append({"machine": name, "scenario": sc["label"], "ranks": len(sc["gpus"]),
                        "numabind": ours, "recipe": theirs})
    return out


def share(rows: list[dict], key: str) -> tuple[int, int]:
    if key == "all":
        return sum(all(r[a] for a in AXES) for r in rows), len(rows)
    return sum(r[key] for r in rows), len(rows)


def table(results: list[dict]) -> str:
    head = ("| machine | job | ranks | numabind node / CPUs / NIC / all right | recipe node / CPUs / NIC / all right "
            "| exclusive CPUs (numabind, recipe) |")
    lines = [head, "|---|---|---|---|---|---|"]
    tot = {w: {k: [0, 0] for k in (*AXES, "all")} for w in ("numabind", "recipe")}
    for e in results:
        if not e["ranks"]:
            lines.append(f"| {e['machine']} | {e['scenario']} | 0 | - | - | - |")
            continue
        cells = []
        for who in ("numabind", "recipe"):
            parts = []
            for k in (*AXES, "all"):
                ok, n = share(e[who], k)
                tot[who][k][0] += ok
                tot[who][k][1] += n
                parts.append(f"{ok}/{n}")
            cells.append(" / ".join(parts))
        excl = ", ".join(f"{share(e[w], 'exclusive')[0]}/{e['ranks']}" for w in ("numabind", "recipe"))
        lines.append(f"| {e['machine']} | {e['scenario']} | {e['ranks']} | {cells[0]} | {cells[1]} | {excl} |")
    cells = []
    for who in ("numabind", "recipe"):
        cells.append(" / ".join(f"**{100 * ok / n:.0f}%**" if n else "-" for ok, n in tot[who].values()))
    lines.append(f"| **all** | | {tot['numabind']['all'][1]} | {cells[0]} | {cells[1]} | |")
    return "\n".join(lines)


if __name__ == "__main__":
    import tempfile
    with tempfile.TemporaryDirectory() as d:
        print(table(evaluate(Path(d))))
