"""numabind.plan() against the placement rules, from machine descriptions.

Every expectation is derived from a description (tests/machines/*.json, or a
variant of one made here) through tests/reference.py and the rules below,
never from numabind's own output:

* exclusive (default): a node's allowed CPUs split evenly and disjointly among
  the ranks whose GPUs sit on that node, SMT siblings together, sizes within
  one core's worth of CPUs; node/socket/core-complex/none as documented;
  ``reserve_cores`` held back per node; unknown locality (numa -1, or a node
  that does not exist) reports ``numa_node`` None and, under exclusive and
  core-complex, takes CPUs no other rank holds: the CPUs of nodes without
  located ranks when there are enough, else a share of the split of the node
  with the fewest ranks; a CPU-less node is never a rank's CPU node.
* NIC: node-wide; candidates are ACTIVE ports, InfiniBand preferred over
  Ethernet, slower NICs set aside; each GPU in PCI order takes the closest
  candidate (distance class), then the one with fewest GPUs, then PCI order.
* env: NVSHMEM_HCA_LIST=<nic>:<port>, NVSHMEM_ENABLE_NIC_PE_MAPPING=1,
  NCCL_IB_HCA= "=" + every candidate NIC in PCI order (one value on every
  rank), UCX_NET_DEVICES=<nic>:<port>, EP_NIC_NAME=<nic>; user values kept
  (``kept_env``) unless ``override_env``.
* No GPU visible: no ranks.

Besides the five descriptions' ``expected`` blocks, generated variants
(restricted allowed sets, NICs down / dropped / slower / other link layer,
a CPU-less GPU-memory node, CUDA_VISIBLE_DEVICES permutations,
local_world_size 1..8) are checked against the same invariants.
"""
from __future__ import annotations

import copy
import json
import os
import random
import re
import shutil
import sys
import tempfile
from collections import defaultdict
from pathlib import Path

import pytest

TESTS = Path(__file__).resolve().parent
if str(TESTS) not in sys.path:
    sys.path.insert(0, str(TESTS))

import numabind  # noqa: E402
import reference as ref  # noqa: E402
import sysfs_tree as st  # noqa: E402
from numabind import PlacementError  # noqa: E402

MACHINES = st.MACHINES
CLASSES = ref.CLASSES
CPU_POLICIES = ("exclusive", "node", "socket", "core-complex", "none")
MEM_POLICIES = ("preferred", "bind", "interleave", "local")
NIC_VARS = ("NVSHMEM_HCA_LIST", "NVSHMEM_ENABLE_NIC_PE_MAPPING", "NCCL_IB_HCA", "UCX_NET_DEVICES", "EP_NIC_NAME")
LAUNCHER_VARS = ("LOCAL_RANK", "SLURM_LOCALID", "OMPI_COMM_WORLD_LOCAL_RANK", "MPI_LOCALRANKID",
                 "LOCAL_WORLD_SIZE", "SLURM_NTASKS_PER_NODE", "OMPI_COMM_WORLD_LOCAL_SIZE",
                 "MPI_LOCALNRANKS")
RANK_KEYS = {"hcas": (list,), "local_rank": (int,), "gpu_pci": (str, type(None)), "numa_node": (int, type(None)),
             "cpus": (list,), "mem_nodes": (list,), "mem_policy": (str,), "hca": (str, type(None)),
             "hca_port": (int, type(None)), "distance": (str, type(None)), "env": (dict,)}


@pytest.fixture(autouse=True)
def _clean_env(monkeypatch):
    """Nothing from the shell that runs pytest may steer a plan."""
    for var in LAUNCHER_VARS + NIC_VARS + ("CUDA_VISIBLE_DEVICES", "CUDA_DEVICE_ORDER",
                                           "NUMABIND_FSROOT"):
        monkeypatch.delenv(var, raising=False)


# --------------------------------------------------------------------------
# trees
# --------------------------------------------------------------------------

class _Trees:
    """Writes each description once per session into `base`; returns its root."""

    def __init__(self, base: Path) -> None:
        self.base = base
        self.roots: dict[str, Path] = {}

    def __call__(self, name_or_desc, **options) -> Path:
        desc = st.load(name_or_desc) if isinstance(name_or_desc, str) else name_or_desc
        key = json.dumps([desc, options], sort_keys=True)
        if key not in self.roots:
            root = Path(tempfile.mkdtemp(prefix=(desc.get("name") or "tree") + "-", dir=self.base))
            st.write_tree(copy.deepcopy(desc), root, **options)
            self.roots[key] = root
        return self.roots[key]


@pytest.fixture(scope="session")
def _scratch(tmp_path_factory):
    """Where generated variants go: tmpfs when there is one (a 224-CPU tree is
    ~10k small files), else pytest's tmp dir."""
    shm = Path("/dev/shm")
    if shm.is_dir() and os.access(shm, os.W_OK):
        d = Path(tempfile.mkdtemp(prefix="numabind-test-plan-", dir=shm))
        yield d
        shutil.rmtree(d, ignore_errors=True)
    else:
        yield tmp_path_factory.mktemp("plan-variants")


@pytest.fixture(scope="session")
def base_tree(tree):
    """The machines' own trees: the session's shared factory (tests/conftest.py)."""
    return tree


@pytest.fixture(scope="session")
def variant_tree(_scratch):
    return _Trees(_scratch)


def read(root, monkeypatch=None, cvd=None):
    """The topology under `root`, with CUDA_VISIBLE_DEVICES=cvd (None: unset)."""
    if monkeypatch is not None:
        if cvd is None:
            monkeypatch.delenv("CUDA_VISIBLE_DEVICES", raising=False)
        else:
            monkeypatch.setenv("CUDA_VISIBLE_DEVICES", cvd)
    return numabind.topology(root)


# --------------------------------------------------------------------------
# the model: what a description says a plan must be
# --------------------------------------------------------------------------

def node_cpus(desc) -> dict[int, set[int]]:
    return {n["id"]: set(n["cpus"]) for n in ref.nodes(desc)}


def allowed_cpus(desc) -> set[int]:
    present = set().union(*node_cpus(desc).values())
    return set(ref.allowed(desc)["cpus"]) & present


def core_of(desc, cpu: int) -> int:
    c = desc["cpu"]
    tpc = int(c.get("threads_per_core", 1))
    return cpu % int(c["smt_stride"]) if tpc > 1 else cpu


def tpc_of(desc) -> int:
    return int(desc["cpu"].get("threads_per_core", 1))


def socket_of_node(desc) -> dict[int, int]:
    return {n["id"]: n.get("socket", 0) for n in desc["cpu"]["nodes"] if n.get("cpus")}


def gpu_numa(desc, bdf: str | None) -> int | None:
    if bdf is None:
        return None
    return next(g["numa"] for g in ref.gpus(desc) if g["bdf"] == bdf)


def cpu_node(desc, node: int | None) -> int | None:
    """The node a GPU on `node` runs its ranks on: itself, or for a CPU-less
    node the nearest node with CPUs (by the distance matrix)."""
    if node is None:
        return None
    cpus = node_cpus(desc)
    if cpus[node]:
        return node
    nodes = desc["cpu"]["nodes"]
    pos = {n["id"]: i for i, n in enumerate(nodes)}
    dist = desc["cpu"].get("distances")
    row = (lambda j: dist[pos[node]][pos[j]]) if dist else (lambda j: 10 if j == node else 21)
    return min((j for j in cpus if cpus[j]), key=lambda j: (row(j), j))


def pool(desc, node: int | None, located: set[int] = frozenset()) -> set[int]:
    """The CPUs the ranks of one node share; for unknown locality (None), the
    allowed CPUs of the nodes no located rank uses (`located`: those nodes),
    or every allowed CPU where that leaves none."""
    allowed = allowed_cpus(desc)
    if node is not None:
        return allowed & node_cpus(desc)[node]
    left = allowed - set().union(set(), *(node_cpus(desc)[n] for n in located))
    return left or allowed


def reserved_set(desc, reserve: int) -> set[int]:
    """The lowest `reserve` cores of each node's allowed CPUs, whole."""
    out: set[int] = set()
    for cs in node_cpus(desc).values():
        cores = sorted({core_of(desc, c) for c in cs & allowed_cpus(desc)})[:reserve]
        out |= {c for c in cs & allowed_cpus(desc) if core_of(desc, c) in cores}
    return out


def cpu_groups(desc, numas: list[int | None], policy: str = "exclusive",
               reserve: int = 0) -> dict[int | None, list[int]]:
    """Which node's CPUs each rank's share comes from (rank indices by node).
    Unknown-locality ranks (None) under exclusive/core-complex: the CPUs no
    located rank's node holds if there are at least as many as them, else
    each joins the node with the fewest ranks (then the lowest id)."""
    groups: dict[int | None, list[int]] = defaultdict(list)
    unknown = [i for i, n in enumerate(numas) if n is None]
    for i, n in enumerate(numas):
        if n is not None:
            groups[n].append(i)
    if not unknown:
        return groups
    left = pool(desc, None, set(groups)) - reserved_set(desc, reserve) if groups else allowed_cpus(desc)
    if policy not in ("exclusive", "core-complex") or len(left) >= len(unknown):
        groups[None] = unknown
        return groups
    usable = [n for n, cs in sorted(node_cpus(desc).items())
              if cs & allowed_cpus(desc) - reserved_set(desc, reserve)]
    for i in unknown:
        groups[min(usable, key=lambda n: (len(groups[n]), n))].append(i)
    return groups


def l3_domains(desc) -> list[set[int]]:
    cpu = desc["cpu"]
    if cpu.get("l3"):
        return [set(ref.cpulist(d)) for d in cpu["l3"]]
    by_socket: dict[int, set[int]] = {}
    for n in cpu["nodes"]:
        if n.get("cpus"):
            by_socket.setdefault(n.get("socket", 0), set()).update(ref.cpulist(n["cpus"]))
    return list(by_socket.values())


def nic_candidates(desc) -> list[dict]:
    """ACTIVE NICs, InfiniBand only where any is, the fastest rate only; PCI order."""
    usable = [n for n in ref.nics(desc)
              if n["state"] == "ACTIVE" and n["link_layer"] in ("InfiniBand", "Ethernet")]
    if any(n["link_layer"] == "InfiniBand" for n in usable):
        usable = [n for n in usable if n["link_layer"] == "InfiniBand"]
    if usable:
        top = max(n["rate_gbps"] for n in usable)
        usable = [n for n in usable if n["rate_gbps"] == top]
    return usable


def env_for(hca: str | None, port: int | None, desc=None) -> dict[str, str]:
    """The variables a rank with NIC `hca` exports; NCCL_IB_HCA names every
    candidate of `desc` (the fixtures' first port is the ACTIVE one)."""
    if hca is None:
        return {}
    dev = f"{hca}:{port}"
    every = ",".join(f"{n['name']}:1" for n in nic_candidates(desc)) if desc is not None else dev
    return {"NVSHMEM_HCA_LIST": dev, "NVSHMEM_ENABLE_NIC_PE_MAPPING": "1",
            "NCCL_IB_HCA": "=" + every, "UCX_NET_DEVICES": dev, "EP_NIC_NAME": hca}


def equally_close(desc, bdf: str, hca: str) -> list[str]:
    """The candidates as close to GPU `bdf` as `hca` under one PCIe switch
    (PIX/PXB), "name:1" in PCI order; just `hca` for farther classes."""
    cls = ref.distance_class(desc, bdf, hca)
    if cls not in ("PIX", "PXB"):
        return [f"{hca}:1"]
    return [f"{n['name']}:1" for n in nic_candidates(desc) if ref.distance_class(desc, bdf, n["name"]) == cls]


def fmt(cpus) -> str:
    return st.format_cpulist(cpus) or "(empty)"


# --------------------------------------------------------------------------
# invariant checks
# --------------------------------------------------------------------------

def check_nic_assignment(desc, assigned: dict[str, str | None]) -> None:
    """`assigned` (every GPU's NIC) follows the rule, GPU by GPU in PCI order."""
    cands = [n["name"] for n in nic_candidates(desc)]
    load = {n: 0 for n in cands}
    closest: dict[str, frozenset] = {}
    for g in ref.gpus(desc):
        got = assigned[g["bdf"]]
        if not cands:
            assert got is None, f"GPU {g['bdf']}: NIC {got} although no NIC is a usable candidate"
            continue
        assert got in cands, (f"GPU {g['bdf']}: {got} is not among the ACTIVE, fastest, "
                              f"InfiniBand-if-any candidates {cands}")
        cls = {n: CLASSES.index(ref.distance_class(desc, g["bdf"], n)) for n in cands}
        best = min(cls.values())
        assert cls[got] == best, (f"GPU {g['bdf']}: {got} is {CLASSES[cls[got]]} but "
                                  f"{[n for n in cands if cls[n] == best]} are {CLASSES[best]}")
        close = [n for n in cands if cls[n] == best]
        least = min(load[n] for n in close)
        assert load[got] == least, (f"GPU {g['bdf']}: {got} already served {load[got]} GPU(s) while the "
                                    f"equally close {[n for n in close if load[n] == least]} served {least}")
        first = next(n for n in close if load[n] == least)
        assert got == first, f"GPU {g['bdf']}: tie between {close} not broken by PCI order ({got})"
        load[got] += 1
        closest[g["bdf"]] = frozenset(close)
    # GPUs whose equally close candidates no other GPU competes for spread over
    # them evenly: loads differ by at most one
    for group in set(closest.values()):
        if any(c & group for c in set(closest.values()) - {group}):
            continue
        counts = [sum(1 for b, c in closest.items() if c == group and assigned[b] == n) for n in group]
        assert max(counts) - min(counts) <= 1, f"NICs {sorted(group)} carry {counts} GPUs"


def check_ranks(desc, ranks, bdfs, *, assigned=None, policy="exclusive", mem="preferred",
                reserve=0) -> None:
    """Every rank planned for GPUs `bdfs` (None: no GPU) obeys the rules."""
    assert len(ranks) == len(bdfs)
    allowed_mems = ref.allowed(desc)["mems"]
    cpu_nodes = {i for i, cs in node_cpus(desc).items() if cs}
    for r, (rank, bdf) in enumerate(zip(ranks, bdfs)):
        where = f"rank {r} (GPU {bdf})"
        assert rank.local_rank == r
        assert rank.gpu_pci == bdf, where
        numa = cpu_node(desc, gpu_numa(desc, bdf))
        assert rank.numa_node == numa, f"{where}: numa_node {rank.numa_node}, want {numa}"
        assert rank.numa_node is None or rank.numa_node in cpu_nodes
        assert rank.cpu_policy == policy
        assert rank.locality == ("unknown" if numa is None else "node")
        # memory
        if numa is None:
            assert rank.mem_policy == "default", where
            assert list(rank.mem_nodes) == allowed_mems, where
        elif mem == "interleave":
            assert rank.mem_policy == "interleave"
            assert set(allowed_mems) & cpu_nodes <= set(rank.mem_nodes) <= set(allowed_mems), where
        else:
            assert rank.mem_policy == mem, where
            assert list(rank.mem_nodes) == [numa], f"{where}: mem_nodes {rank.mem_nodes}, want [{numa}]"
        # NIC and environment
        if assigned is not None:
            want = assigned[bdf] if bdf else None
            assert rank.hca == want, f"{where}: NIC {rank.hca}, node-wide assignment gives {want}"
        if rank.hca is None:
            assert rank.hca_port is None and rank.distance is None, where
        else:
            assert rank.hca_port == 1, where        # the fixtures' first port is the ACTIVE one
            assert rank.distance == ref.distance_class(desc, bdf, rank.hca), where
        assert rank.env == env_for(rank.hca, rank.hca_port, desc), where
        assert list(rank.hcas) == (equally_close(desc, bdf, rank.hca) if rank.hca else []), where
        assert rank.kept_env == {}
    check_cpus(desc, ranks, policy=policy, reserve=reserve)


def check_cpus(desc, ranks, *, policy="exclusive", reserve=0) -> None:
    allowed = allowed_cpus(desc)
    tpc = tpc_of(desc)
    groups = {node: [ranks[i] for i in members] for node, members in
              cpu_groups(desc, [r.numa_node for r in ranks], policy, reserve).items()}
    located = {n for n in groups if n is not None}
    for r in ranks:
        assert set(r.cpus) <= allowed, f"rank {r.local_rank}: CPUs {fmt(set(r.cpus) - allowed)} not allowed"
    if policy == "none":
        for r in ranks:
            assert set(r.cpus) == allowed, f"rank {r.local_rank}: policy none must leave the allowed set"
        return
    for node, rs in groups.items():
        p = pool(desc, node, located)
        where = f"node {node}" if node is not None else "unknown locality"
        shares = [set(r.cpus) for r in rs]
        for r, s in zip(rs, shares):
            assert s, f"rank {r.local_rank}: no CPUs"
            if policy != "socket":
                assert s <= p, f"rank {r.local_rank} ({where}): CPUs {fmt(s - p)} outside {fmt(p)}"
        if policy == "node":
            # reserved cores are whole cores missing from the pool
            for s in shares:
                assert s == shares[0]
            check_reserved(desc, p, shares[0], reserve, where)
            continue
        if policy == "socket":
            sockets = socket_of_node(desc)
            pk = {sockets[n] for n, cs in node_cpus(desc).items() if cs & p}
            want = {c for n, cs in node_cpus(desc).items() if cs and sockets[n] in pk for c in cs} & allowed
            for r, s in zip(rs, shares):
                assert s <= want, f"rank {r.local_rank}: socket share {fmt(s - want)} outside the socket"
                check_reserved(desc, want, s, reserve, f"rank {r.local_rank}'s socket")
            continue
        union = set().union(*shares)
        assert sum(map(len, shares)) == len(union), f"{where}: shares overlap: {[fmt(s) for s in shares]}"
        check_reserved(desc, p, union, reserve, where)
        if policy == "core-complex":
            doms = [d & union for d in l3_domains(desc) if d & union]
            if len(doms) >= len(rs):
                assert all(s in doms for s in shares), f"{where}: shares are not L3 domains"
                continue
            assert all(r.note for r in rs), f"{where}: fallback to exclusive without a note"
        cores = {core_of(desc, c) for c in union}
        sizes = sorted(map(len, shares))
        if len(cores) >= len(rs):
            for c in cores:
                owners = [i for i, s in enumerate(shares) if any(core_of(desc, x) == c for x in s)]
                assert len(owners) == 1, f"{where}: core {c}'s SMT siblings split between ranks {owners}"
            assert sizes[-1] - sizes[0] <= tpc, \
                f"{where}: share sizes {sizes} differ by more than one core ({tpc} CPUs)"
            if policy == "exclusive":     # contiguous runs of the pool's cores
                order = sorted(cores)
                for r, sh in zip(rs, shares):
                    idx = sorted(order.index(core_of(desc, x)) for x in sh)
                    assert idx[-1] - idx[0] + 1 == len(set(idx)), \
                        f"rank {r.local_rank}: cores of {fmt(sh)} are not contiguous"
        else:
            assert sizes[-1] - sizes[0] <= 1, f"{where}: share sizes {sizes}"
    everything = [c for r in ranks for c in r.cpus]
    if policy in ("exclusive", "core-complex"):
        assert len(everything) == len(set(everything)), "CPUs shared between ranks of different nodes"


def check_reserved(desc, p: set[int], union: set[int], reserve: int, where: str) -> None:
    """The pool less `union` is exactly `reserve` whole cores of each node."""
    held = p - union
    if not reserve:
        assert not held, f"{where}: CPUs {fmt(held)} of the pool given to no rank"
        return
    per_node: dict[int, set[int]] = defaultdict(set)
    nc = node_cpus(desc)
    for c in held:
        per_node[next(n for n, cs in nc.items() if c in cs)].add(c)
    for n, cs in nc.items():
        if not cs & p:
            continue
        cores = {core_of(desc, c) for c in per_node[n]}
        assert len(cores) == reserve, f"{where}: node {n} holds back cores {sorted(cores)}, want {reserve}"
        lowest = sorted({core_of(desc, c) for c in cs & allowed_cpus(desc)})[:reserve]
        assert sorted(cores) == lowest, f"{where}: node {n} holds back cores {sorted(cores)}, not the lowest"
        whole = {c for c in p if core_of(desc, c) in cores}
        assert per_node[n] == whole, f"{where}: held-back CPUs {fmt(per_node[n])} are not whole cores"


def predicted_error(desc, bdfs, mem="preferred") -> set:
    """Nodes (None: unknown locality) where no placement fits; empty set: it fits."""
    numas = [cpu_node(desc, gpu_numa(desc, b)) for b in bdfs]
    groups = cpu_groups(desc, numas)
    located = {n for n in groups if n is not None}
    bad = set()
    for node, members in groups.items():
        if len(pool(desc, node, located)) < len(members):
            bad.add(node)
    for node in set(numas):
        if node is not None and mem != "interleave" and node not in ref.allowed(desc)["mems"]:
            bad.add(node)
    return bad


def expect_plan(desc, topo, bdfs, *, assigned, lws=None, gpus=None, **kw):
    """Plan; if the model says it cannot fit, a PlacementError naming a bad node."""
    bad = predicted_error(desc, bdfs)
    if bad:
        with pytest.raises(PlacementError) as e:
            numabind.plan(lws, gpus=gpus, topology=topo, **kw)
        named = [n for n in bad if n is not None]
        if named:
            assert any(re.search(rf"\bnode {n}\b", str(e.value)) for n in named), str(e.value)
        return None
    p = numabind.plan(lws, gpus=gpus, topology=topo, **kw)
    check_ranks(desc, p.ranks, bdfs, assigned=assigned, **kw)
    return p


def node_wide_assignment(desc, root) -> dict[str, str | None]:
    """Every GPU's NIC, from a plan of all GPUs (policy none: no CPU constraint)."""
    topo = numabind.topology(root)
    gpus = ref.gpus(desc)
    if not gpus:
        return {}
    p = numabind.plan(topology=topo, policy="none")
    assert [r.gpu_pci for r in p.ranks] == [g["bdf"] for g in gpus]
    return {r.gpu_pci: r.hca for r in p.ranks}


# --------------------------------------------------------------------------
# variants
# --------------------------------------------------------------------------

def shrink(desc: dict, keep: int) -> dict:
    """The first `keep` cores of every node (SMT siblings with them), CPUs
    renumbered as the kernel would (primaries first, sibling = cpu + stride).
    The PCI tree is untouched; trees stay small so many variants are cheap."""
    d = copy.deepcopy(desc)
    cpu = d["cpu"]
    tpc = int(cpu.get("threads_per_core", 1))
    stride = int(cpu.get("smt_stride", 0))
    present = {c for n in cpu["nodes"] for c in ref.cpulist(n.get("cpus", ""))}
    prims = []
    for n in cpu["nodes"]:
        cs = ref.cpulist(n.get("cpus", ""))
        prims += [c for c in cs if tpc == 1 or c < stride][:keep]
    prims.sort()
    new = {}
    for i, p in enumerate(prims):
        for j in range(tpc):
            old = p + j * stride
            if old in present:
                new[old] = i + j * len(prims)
    remap = lambda text: st.format_cpulist(new[c] for c in ref.cpulist(text) if c in new)  # noqa: E731
    for n in cpu["nodes"]:
        n["cpus"] = remap(n.get("cpus", ""))
    if tpc > 1:
        cpu["smt_stride"] = len(prims)
    if cpu.get("l3"):
        cpu["l3"] = [x for x in (remap(dom) for dom in cpu["l3"]) if x]
    allowed = d.setdefault("allowed", {})
    if "cpus" in allowed:
        allowed["cpus"] = remap(allowed["cpus"])
    d["name"] = f"{desc.get('name', 'tree')}-x{keep}"
    return d


def devices(desc):
    """(list holding it, device) for every PCI function."""
    out = []

    def walk(lst):
        for dev in lst:
            out.append((lst, dev))
            walk(dev.get("children") or [])

    for r in desc.get("pci") or []:
        walk(r.get("devices") or [])
    return out


def find(desc, *, ibdev=None, bdf=None) -> dict:
    return next(dev for _, dev in devices(desc)
                if (ibdev and dev.get("ibdev") == ibdev) or (bdf and dev.get("bdf") == bdf))


def drop_nic(desc, ibdev: str) -> None:
    for lst, dev in devices(desc):
        if dev.get("ibdev") == ibdev:
            lst.remove(dev)
            return
    raise KeyError(ibdev)


def add_cpuless_node(desc, rng_or_row, root_index: int) -> int:
    """Add a CPU-less GPU-memory node and move PCI root `root_index` onto it.
    `rng_or_row`: distances from the new node to the existing ones (or an RNG
    to draw distinct ones). Returns the new node's id."""
    cpu = desc["cpu"]
    nodes = cpu["nodes"]
    k = len(nodes)
    new = max(n["id"] for n in nodes) + 1
    dist = cpu.get("distances") or [[10 if i == j else 21 for j in range(k)] for i in range(k)]
    row = (rng_or_row if isinstance(rng_or_row, list)
           else rng_or_row.sample(range(11, 60), k))
    for i in range(k):
        dist[i].append(row[i])
    dist.append(list(row) + [10])
    cpu["distances"] = dist
    nodes.append({"id": new, "cpus": "", "mem_mib": 96000, "kind": "gpu-memory"})
    desc["pci"][root_index]["numa"] = new
    allowed = desc.setdefault("allowed", {})
    if "mems" in allowed:
        allowed["mems"] = st.format_cpulist(ref.cpulist(allowed["mems"]) + [new])
    return new


RATES = ("100 Gb/sec (4X EDR)", "200 Gb/sec (4X HDR)", "800 Gb/sec (4X XDR)")


def make_variant(name: str, seed: int) -> dict:
    rng = random.Random(f"{name}/{seed}")
    d = shrink(st.load(name), rng.randint(2, 5))
    d["name"] = f"{name}-v{seed}"
    # allowed CPUs: a random set of whole cores, or of single CPUs (SMT pairs cut)
    x = rng.random()
    present = sorted(set().union(*node_cpus(d).values()))
    if x < 0.35:
        cores = sorted({core_of(d, c) for c in present})
        keep = {c for c in cores if rng.random() < 0.75} or {rng.choice(cores)}
        d["allowed"]["cpus"] = st.format_cpulist(c for c in present if core_of(d, c) in keep)
    elif x < 0.6:
        d["allowed"]["cpus"] = st.format_cpulist(
            [c for c in present if rng.random() < 0.8] or [rng.choice(present)])
    for _, dev in devices(d):
        if not dev.get("ibdev"):
            continue
        x = rng.random()
        if x < 0.2:
            dev["state"] = rng.choice(["DOWN", "INIT"])
        elif x < 0.3:
            drop_nic(d, dev["ibdev"])
        elif x < 0.45:
            dev["rate"] = rng.choice(RATES)
        elif x < 0.55:
            dev["link_layer"] = "Ethernet" if dev["link_layer"] == "InfiniBand" else "InfiniBand"
    gpu_roots = [i for i, r in enumerate(d.get("pci") or [])
                 if r.get("numa", -1) >= 0 and any(dev.get("kind") == "gpu" for _, dev in devices(
                     {"pci": [r]}))]
    if len(d["cpu"]["nodes"]) >= 2 and gpu_roots and rng.random() < 0.4:
        add_cpuless_node(d, rng, rng.choice(gpu_roots))
    st.validate(d)
    return d


# --------------------------------------------------------------------------
# the descriptions' expected answers
# --------------------------------------------------------------------------

def expected_bdfs(desc, cvd: list[int] | None = None) -> list[str]:
    g = [x["bdf"] for x in desc["expected"]["gpus"]]
    return g if cvd is None else [g[i] for i in cvd]


@pytest.mark.parametrize("name", MACHINES)
def test_expected_gpus_numa_and_nics(name, base_tree):
    desc = st.load(name)
    exp = desc["expected"]["gpus"]
    p = numabind.plan(topology=numabind.topology(base_tree(name)))
    if not exp:
        # No GPU, no rank: nothing says where one belongs.
        assert len(p) == 0 and p.note and "no NVIDIA GPU on this node" in p.note
        return
    # rank r drives the r-th GPU in PCI order
    assert [r.gpu for r in p.ranks] == list(range(len(exp)))
    assert [r.gpu_pci for r in p.ranks] == [g["bdf"] for g in exp]
    assert [r.gpu_pci for r in p.ranks] == [g["bdf"] for g in ref.gpus(desc)]
    assert [r.numa_node for r in p.ranks] == [g["numa"] for g in exp]
    assert [r.hca for r in p.ranks] == [g["hca"] for g in exp]
    for r, g in zip(p.ranks, exp):
        assert r.mem_policy == ("default" if g["numa"] is None else "preferred")
        if g["numa"] is not None:
            assert list(r.mem_nodes) == [g["numa"]]
        assert r.env == env_for(g["hca"], 1 if g["hca"] else None, desc)
    check_ranks(desc, p.ranks, [g["bdf"] for g in exp], assigned={g["bdf"]: g["hca"] for g in exp})
    check_nic_assignment(desc, {g["bdf"]: g["hca"] for g in exp})


# The example scenario in tests/machines/SCHEMA.md, plus scenarios every
# description implies: NICs are assigned node-wide, so hiding or reordering
# GPUs changes which GPU a rank drives, never a GPU's NIC or node.
SCHEMA_SCENARIOS = {
    "dgx-h100": [{"env": {"CUDA_VISIBLE_DEVICES": "4,5,6,7"}, "local_world_size": 4,
                  "ranks": [{"local_rank": 0, "bdf": "0000:9d:00.0", "numa": 1, "hca": "mlx5_6"}]}],
}


def derived_scenarios(desc) -> list[dict]:
    exp = desc["expected"]["gpus"]
    n = len(exp)
    out = []
    for cvd in ([list(reversed(range(n)))] if n > 1 else []) + ([list(range(1, n, 2))] if n > 1 else []):
        out.append({"env": {"CUDA_VISIBLE_DEVICES": ",".join(map(str, cvd))}, "local_world_size": len(cvd),
                    "ranks": [{"local_rank": r, **exp[i]} for r, i in enumerate(cvd)]})
    if n:
        out.append({"env": {"LOCAL_WORLD_SIZE": "1"}, "local_world_size": None,
                    "ranks": [{"local_rank": 0, **exp[0]}]})
    return out


@pytest.mark.parametrize("name", [m for m in MACHINES if st.load(m)["expected"]["gpus"]
                                  or st.load(m)["expected"].get("scenarios")])
def test_scenarios(name, base_tree, monkeypatch):
    desc = st.load(name)
    root = base_tree(name)
    scenarios = ((desc["expected"].get("scenarios") or []) + SCHEMA_SCENARIOS.get(name, [])
                 + derived_scenarios(desc))
    all_bdfs = [g["bdf"] for g in ref.gpus(desc)]
    for sc in scenarios:
        with monkeypatch.context() as m:
            for k, v in (sc.get("env") or {}).items():
                m.setenv(k, str(v))
            topo = numabind.topology(root)
            p = numabind.plan(sc.get("local_world_size"), topology=topo)
            cvd = (sc.get("env") or {}).get("CUDA_VISIBLE_DEVICES")
            visible = all_bdfs if cvd is None else [all_bdfs[int(i)] for i in cvd.split(",") if i.strip()]
            if sc.get("local_world_size") is not None:
                assert len(p) == sc["local_world_size"]
            by_rank = {r.local_rank: r for r in p.ranks}
            for e in sc["ranks"]:
                r = by_rank[e["local_rank"]]
                if "bdf" in e:
                    assert r.gpu_pci == e["bdf"], (sc, r)
                if "numa" in e:
                    assert r.numa_node == e["numa"], (sc, r)
                if "hca" in e:
                    assert r.hca == e["hca"], (sc, r)
            if visible:
                check_ranks(desc, p.ranks, visible[:len(p)])


# --------------------------------------------------------------------------
# property-style: generated variants
# --------------------------------------------------------------------------

SEEDS = 8


@pytest.mark.parametrize("seed", range(SEEDS))
@pytest.mark.parametrize("name", MACHINES)
def test_generated_variants_keep_the_invariants(name, seed, variant_tree, monkeypatch):
    desc = make_variant(name, seed)
    root = variant_tree(desc)
    rng = random.Random(f"cvd/{name}/{seed}")
    all_gpus = [g["bdf"] for g in ref.gpus(desc)]
    assigned = node_wide_assignment(desc, root)
    check_nic_assignment(desc, assigned)

    cvds: list[list[int] | None] = [None]
    if all_gpus:
        for _ in range(2):
            k = rng.randint(1, len(all_gpus))
            cvds.append(rng.sample(range(len(all_gpus)), k))
    for cvd in cvds:
        topo = read(root, monkeypatch, None if cvd is None else ",".join(map(str, cvd)))
        visible = all_gpus if cvd is None else [all_gpus[i] for i in cvd]
        assert [g.pci_address for g in topo.gpus] == visible
        for lws in range(1, 9):
            if not visible:
                p = numabind.plan(lws, topology=topo)     # no GPU visible: no rank, whatever lws
                assert len(p) == 0 and p.note, p
                continue
            if lws <= len(visible):
                expect_plan(desc, topo, visible[:lws], assigned=assigned, lws=lws)
            else:
                with pytest.raises(PlacementError):
                    numabind.plan(lws, topology=topo)
                # several ranks per GPU, by explicit mapping
                mapping = [i % len(visible) for i in range(lws)]
                expect_plan(desc, topo, [visible[i] for i in mapping], assigned=assigned, gpus=mapping)


def test_variant_generator_covers_the_cases():
    """The generated variants do reach what they are meant to reach."""
    seen = defaultdict(int)
    for name in MACHINES:
        for seed in range(SEEDS):
            d = make_variant(name, seed)
            seen["cpuless"] += any(not n.get("cpus") for n in d["cpu"]["nodes"])
            seen["restricted"] += allowed_cpus(d) != set().union(*node_cpus(d).values())
            seen["partial"] += tpc_of(d) > 1 and any(
                len({x for x in allowed_cpus(d) if core_of(d, x) == core_of(d, c)}) == 1
                for c in allowed_cpus(d))
            nics = ref.nics(d)
            seen["down"] += any(n["state"] != "ACTIVE" for n in nics)
            seen["rates"] += len({n["rate_gbps"] for n in nics}) > 1
            seen["layers"] += len({n["link_layer"] for n in nics}) > 1
            seen["no-fit"] += bool(predicted_error(d, [g["bdf"] for g in ref.gpus(d)]))
    assert all(seen[k] >= 2 for k in ("cpuless", "restricted", "partial", "down", "rates", "layers", "no-fit")), seen


# --------------------------------------------------------------------------
# policies, memory, reserve_cores
# --------------------------------------------------------------------------

GPU_MACHINES = [m for m in MACHINES if st.load(m)["expected"]["gpus"]]


@pytest.mark.parametrize("policy", CPU_POLICIES)
@pytest.mark.parametrize("name", MACHINES)
def test_cpu_policies(name, policy, base_tree):
    desc = st.load(name)
    p = numabind.plan(policy=policy, topology=numabind.topology(base_tree(name)))
    bdfs = [g["bdf"] for g in ref.gpus(desc)] or [None] * len(p)
    check_ranks(desc, p.ranks, bdfs, assigned={g["bdf"]: g["hca"] for g in desc["expected"]["gpus"]},
                policy=policy)


def test_node_and_socket_policies_share_the_node(base_tree):
    p = numabind.plan(policy="node", topology=numabind.topology(base_tree("dgx-h100")))
    assert len({r.cpus for r in p.ranks[:4]}) == 1 and len(p.ranks[0].cpus) == 112
    assert set(p.ranks[0].cpus) == set(range(0, 56)) | set(range(112, 168))
    assert set(p.ranks[4].cpus) == set(range(56, 112)) | set(range(168, 224))
    s = numabind.plan(policy="socket", topology=numabind.topology(base_tree("dgx-h100")))
    assert [r.cpus for r in s.ranks] == [r.cpus for r in p.ranks]


def core_complex_desc() -> dict:
    """dgx-h100, 8 cores per node, one L3 domain per 2 cores (4 per node)."""
    d = shrink(st.load("dgx-h100"), 8)
    # primaries 0-15, siblings +16
    d["cpu"]["l3"] = [f"{a}-{a + 1},{a + 16}-{a + 17}" for a in range(0, 16, 2)]
    d["name"] = "dgx-l3"
    return d


def test_core_complex_one_l3_domain_per_rank(variant_tree):
    d = core_complex_desc()
    topo = numabind.topology(variant_tree(d))
    doms = [set(ref.cpulist(x)) for x in d["cpu"]["l3"]]
    p = numabind.plan(policy="core-complex", topology=topo)
    shares = [set(r.cpus) for r in p.ranks]
    assert all(s in doms for s in shares), [fmt(s) for s in shares]
    assert len({frozenset(s) for s in shares}) == 8
    for r in p.ranks:
        assert set(r.cpus) <= node_cpus(d)[r.numa_node]
        assert r.note is None
    # two ranks on node 0: one domain each, not half the node each
    p2 = numabind.plan(2, policy="core-complex", topology=topo)
    assert [len(r.cpus) for r in p2.ranks] == [4, 4]
    assert all(set(r.cpus) in doms for r in p2.ranks)
    check_ranks(d, p.ranks, [g["bdf"] for g in ref.gpus(d)], policy="core-complex")


def test_core_complex_falls_back_to_exclusive(base_tree):
    # no l3 in the description: one domain per socket, four ranks per socket
    topo = numabind.topology(base_tree("dgx-h100"))
    cc = numabind.plan(policy="core-complex", topology=topo)
    ex = numabind.plan(topology=topo)
    assert [r.cpus for r in cc.ranks] == [r.cpus for r in ex.ranks]
    assert all(r.note for r in cc.ranks)


@pytest.mark.parametrize("mem", MEM_POLICIES)
@pytest.mark.parametrize("name", MACHINES)
def test_memory_policies(name, mem, base_tree):
    desc = st.load(name)
    p = numabind.plan(mem=mem, topology=numabind.topology(base_tree(name)))
    bdfs = [g["bdf"] for g in ref.gpus(desc)] or [None] * len(p)
    check_ranks(desc, p.ranks, bdfs, mem=mem)


def test_interleave_over_the_allowed_nodes(base_tree):
    p = numabind.plan(mem="interleave", topology=numabind.topology(base_tree("dgx-h100")))
    assert {r.mem_nodes for r in p.ranks} == {(0, 1)}


def test_memory_intersected_with_allowed_mems(variant_tree):
    d = shrink(st.load("dgx-h100"), 3)
    d["allowed"]["mems"] = "0"
    topo = numabind.topology(variant_tree(d))
    with pytest.raises(PlacementError, match=r"node 1\b.*allowed 0"):
        numabind.plan(topology=topo)
    with pytest.raises(PlacementError, match=r"node 1\b"):
        numabind.plan(mem="bind", topology=topo)
    p = numabind.plan(mem="interleave", topology=topo)
    assert {r.mem_nodes for r in p.ranks} == {(0,)}
    # ranks on node 0 only: fits
    p = numabind.plan(4, topology=topo)
    assert {r.mem_nodes for r in p.ranks} == {(0,)}


@pytest.mark.parametrize("reserve", [1, 2])
@pytest.mark.parametrize("policy", ["exclusive", "node"])
@pytest.mark.parametrize("name", GPU_MACHINES)
def test_reserve_cores(name, policy, reserve, base_tree):
    desc = st.load(name)
    p = numabind.plan(policy=policy, reserve_cores=reserve, topology=numabind.topology(base_tree(name)))
    check_ranks(desc, p.ranks, [g["bdf"] for g in ref.gpus(desc)], policy=policy, reserve=reserve)
    given = set().union(*(set(r.cpus) for r in p.ranks))
    held = allowed_cpus(desc) - given
    gpu_nodes = [n for n, cs in node_cpus(desc).items() if cs & given]
    assert len(held) == reserve * tpc_of(desc) * len(gpu_nodes)


def test_reserve_cores_socket_policy(base_tree):
    # was a bug at 5fe0310: socket_of() rebuilt the set from every core of the package
    desc = st.load("dgx-h100")
    topo = numabind.topology(base_tree("dgx-h100"))
    node = numabind.plan(policy="node", reserve_cores=2, topology=topo)
    sock = numabind.plan(policy="socket", reserve_cores=2, topology=topo)
    # one node per socket on this box: socket and node shares coincide
    assert [r.cpus for r in sock.ranks] == [r.cpus for r in node.ranks]
    check_ranks(desc, sock.ranks, [g["bdf"] for g in ref.gpus(desc)], policy="socket", reserve=2)


def test_reserve_cores_too_many(base_tree):
    topo = numabind.topology(base_tree("dgx-h100"))
    with pytest.raises(PlacementError, match=r"node 0\b.*reserv"):
        numabind.plan(reserve_cores=56, topology=topo)
    # 55 of 56 cores held back: one core (two CPUs) left for four ranks
    with pytest.raises(PlacementError, match=r"node 0\b"):
        numabind.plan(reserve_cores=55, topology=topo)
    p = numabind.plan(4, reserve_cores=52, topology=topo)
    assert sorted(len(r.cpus) for r in p.ranks) == [2, 2, 2, 2]


# --------------------------------------------------------------------------
# particular machines
# --------------------------------------------------------------------------

def test_paired_switch_gpus_get_different_nics(base_tree):
    desc = st.load("paired-switch-rocev2")
    p = numabind.plan(topology=numabind.topology(base_tree("paired-switch-rocev2")))
    by_switch = defaultdict(list)
    for r in p.ranks:
        pix = frozenset(n["name"] for n in ref.nics(desc)
                        if ref.distance_class(desc, r.gpu_pci, n["name"]) == "PIX")
        by_switch[pix].append(r)
    assert len(by_switch) == 4
    for pix, rs in by_switch.items():
        assert len(rs) == 2 and len({r.hca for r in rs}) == 2, [(r.gpu_pci, r.hca) for r in rs]
        assert all(r.hca in pix and r.distance == "PIX" for r in rs)


@pytest.mark.parametrize("cvd", ["1", "1,0", "3,1,2,0"])
def test_paired_switch_nic_does_not_depend_on_visibility(cvd, base_tree, monkeypatch):
    desc = st.load("paired-switch-rocev2")
    exp = desc["expected"]["gpus"]
    topo = read(base_tree("paired-switch-rocev2"), monkeypatch, cvd)
    p = numabind.plan(topology=topo)
    assert [r.hca for r in p.ranks] == [exp[int(i)]["hca"] for i in cvd.split(",")]


STORAGE = {"mlx5_1", "mlx5_2", "mlx5_7", "mlx5_8"}


@pytest.mark.parametrize("down", [[], ["mlx5_6"], ["mlx5_0", "mlx5_6"], ["mlx5_0", "mlx5_3", "mlx5_4",
                                                                           "mlx5_5"]])
def test_dgx_storage_nics_never_chosen(down, base_tree, variant_tree):
    desc = st.load("dgx-h100")
    if down:
        desc = shrink(desc, 2)
        for nic in down:
            find(desc, ibdev=nic)["state"] = "DOWN"
        root = variant_tree(desc)
    else:
        root = base_tree("dgx-h100")
    p = numabind.plan(topology=numabind.topology(root))
    assert not {r.hca for r in p.ranks} & STORAGE
    assert all(r.hca not in down for r in p.ranks)
    check_nic_assignment(desc, {r.gpu_pci: r.hca for r in p.ranks})
    if len(down) == 4:  # node 0's compute NICs all down: node 0's GPUs cross to node 1 (SYS), spread
        hcas = [r.hca for r in p.ranks[:4]]
        assert len(set(hcas)) == 4 and all(r.distance == "SYS" for r in p.ranks[:4])


@pytest.mark.parametrize("cvd", [None, "7,6,5,4,3,2,1,0", "2,5"])
def test_azure_gpu_i_gets_mlx5_ib_i(cvd, base_tree, monkeypatch):
    topo = read(base_tree("azure-nd96isr-h100-v5"), monkeypatch, cvd)
    p = numabind.plan(topology=topo)
    order = list(range(8)) if cvd is None else [int(i) for i in cvd.split(",")]
    assert [r.hca for r in p.ranks] == [f"mlx5_ib{i}" for i in order]
    assert all(r.distance == "NODE" for r in p.ranks)


def test_azure_fewer_nics_spread_evenly(variant_tree):
    desc = shrink(st.load("azure-nd96isr-h100-v5"), 4)
    for nic in ("mlx5_ib1", "mlx5_ib3", "mlx5_ib6"):
        drop_nic(desc, nic)
    p = numabind.plan(topology=numabind.topology(variant_tree(desc)))
    assert [r.hca for r in p.ranks] == ["mlx5_ib0", "mlx5_ib2", "mlx5_ib0", "mlx5_ib2",
                                        "mlx5_ib4", "mlx5_ib5", "mlx5_ib7", "mlx5_ib4"]
    check_nic_assignment(desc, {r.gpu_pci: r.hca for r in p.ranks})


def test_slower_nic_set_aside_even_if_closer(variant_tree):
    desc = shrink(st.load("paired-switch-rocev2"), 2)
    find(desc, ibdev="mlx5_1")["rate"] = "200 Gb/sec (4X HDR)"
    find(desc, ibdev="mlx5_2")["link_layer"] = "InfiniBand"
    p = numabind.plan(topology=numabind.topology(variant_tree(desc)))
    # one InfiniBand NIC up: every GPU takes it, Ethernet is set aside
    assert {r.hca for r in p.ranks} == {"mlx5_2"}
    find(desc, ibdev="mlx5_2")["link_layer"] = "Ethernet"
    p = numabind.plan(topology=numabind.topology(variant_tree(desc)))
    assert "mlx5_1" not in {r.hca for r in p.ranks}
    assert [r.hca for r in p.ranks[:2]] == ["mlx5_0", "mlx5_0"]
    check_nic_assignment(desc, {r.gpu_pci: r.hca for r in p.ranks})


def test_no_nic_no_variables(base_tree, monkeypatch):
    monkeypatch.setenv("NCCL_IB_HCA", "mlx5_0")
    p = numabind.plan(topology=numabind.topology(base_tree("h100x4-flat-vm")))
    for r in p.ranks:
        assert r.hca is None and r.hca_port is None and r.distance is None
        assert r.env == {}


@pytest.mark.parametrize("row,nearest", [([21, 12], 1), ([12, 30], 0)])
def test_cpu_less_gpu_memory_node(row, nearest, variant_tree):
    desc = shrink(st.load("dgx-h100"), 4)
    root_of = {r["root"]: i for i, r in enumerate(desc["pci"])}
    new = add_cpuless_node(desc, row, root_of["pci0000:bd"])     # GPU 0000:c3:00.0, rank 5
    topo = numabind.topology(variant_tree(desc))
    assert not topo.node(new).has_cpus
    p = numabind.plan(topology=topo)
    r = p.ranks[5]
    assert r.gpu_pci == "0000:c3:00.0"
    assert r.numa_node == nearest and r.numa_node != new
    assert set(r.cpus) <= node_cpus(desc)[nearest]
    assert list(r.mem_nodes) == [nearest]
    check_ranks(desc, p.ranks, [g["bdf"] for g in ref.gpus(desc)],
                assigned=node_wide_assignment(desc, variant_tree(desc)))
    for mem in MEM_POLICIES:
        q = numabind.plan(mem=mem, topology=topo)
        assert all(x.numa_node in (0, 1) for x in q.ranks)
        check_ranks(desc, q.ranks, [g["bdf"] for g in ref.gpus(desc)], mem=mem)


def test_exclusive_balanced_when_allowed_set_splits_smt_pairs(variant_tree):
    # was a bug at 5fe0310: shares balanced in cores, not CPUs (here 6 and 3 CPUs;
    # the full dgx-h100 with allowed 0-55,112-139 gave 28,28,14,14)
    desc = shrink(st.load("dgx-h100"), 6)      # node 0: cores 0-5, siblings 12-17
    desc["allowed"]["cpus"] = "0-11,12-14,18-23"  # siblings of cores 3-5 not allowed
    p = numabind.plan(2, topology=numabind.topology(variant_tree(desc)))
    # a fair split exists (e.g. 0,1,3,12,13 / 2,4,5,14): 5 and 4 CPUs
    check_ranks(desc, p.ranks, [g["bdf"] for g in ref.gpus(desc)[:2]])


def test_unknown_locality_rank_keeps_clear_of_located_ranks(variant_tree):
    """One GPU of unknown locality among located ones: where CPUs are left
    over, its rank takes them rather than the located ranks' exclusive shares."""
    desc = shrink(st.load("dgx-h100"), 4)
    root = variant_tree(desc, numa_override={"0000:43:00.0": -1})
    topo = numabind.topology(root)
    p = numabind.plan(gpus=[0, 1, 2, 3], topology=topo)        # GPU 1 is 0000:43:00.0
    assert [r.numa_node for r in p.ranks] == [0, None, 0, 0]
    cpus = [c for r in p.ranks for c in r.cpus]
    assert len(cpus) == len(set(cpus)), [fmt(r.cpus) for r in p.ranks]
    assert set(p.ranks[1].cpus) == node_cpus(desc)[1]            # all node 1 is spare
    assert set().union(*(set(r.cpus) for r in p.ranks if r.numa_node == 0)) == node_cpus(desc)[0]


# --------------------------------------------------------------------------
# environment
# --------------------------------------------------------------------------

def test_user_nic_variables_kept(base_tree, monkeypatch):
    monkeypatch.setenv("NCCL_IB_HCA", "mlx5_0")
    monkeypatch.setenv("UCX_NET_DEVICES", "all")
    desc = st.load("dgx-h100")
    topo = numabind.topology(base_tree("dgx-h100"))
    p = numabind.plan(topology=topo)
    for r, g in zip(p.ranks, desc["expected"]["gpus"]):
        full = env_for(g["hca"], 1, desc)
        assert r.env == {k: v for k, v in full.items() if k not in ("NCCL_IB_HCA", "UCX_NET_DEVICES")}
        assert r.kept_env == {"NCCL_IB_HCA": "mlx5_0", "UCX_NET_DEVICES": "all"}
    o = numabind.plan(override_env=True, topology=topo)
    for r, g in zip(o.ranks, desc["expected"]["gpus"]):
        assert r.env == env_for(g["hca"], 1, desc)
        assert r.kept_env == {}


def test_every_nic_variable_can_be_kept(base_tree, monkeypatch):
    for var in NIC_VARS:
        monkeypatch.setenv(var, "user-" + var)
    p = numabind.plan(topology=numabind.topology(base_tree("paired-switch-rocev2")))
    for r in p.ranks:
        assert r.env == {}
        assert r.kept_env == {v: "user-" + v for v in NIC_VARS}


def test_nccl_ib_hca_is_exact_match(base_tree):
    # "=mlx5_1:1" must not prefix-match mlx5_10/mlx5_11
    p = numabind.plan(topology=numabind.topology(base_tree("dgx-h100")))
    for r in p.ranks:
        assert r.env["NCCL_IB_HCA"].startswith("=")
        assert r.env["NVSHMEM_HCA_LIST"].count(",") == 0


# --------------------------------------------------------------------------
# errors
# --------------------------------------------------------------------------

@pytest.mark.parametrize("name", GPU_MACHINES)
def test_more_ranks_than_cpus(name, base_tree):
    desc = st.load(name)
    g0 = ref.gpus(desc)[0]
    node = cpu_node(desc, g0["numa"])
    n = len(pool(desc, node)) + 1
    topo = numabind.topology(base_tree(name))
    with pytest.raises(PlacementError) as e:
        numabind.plan(gpus=[0] * n, topology=topo)
    msg = str(e.value)
    if node is not None:
        assert re.search(rf"\bnode {node}\b", msg), msg
    assert str(n) in msg
    # as many ranks as CPUs fits: one CPU each
    p = numabind.plan(gpus=[0] * (n - 1), topology=topo)
    assert all(len(r.cpus) == 1 for r in p.ranks)


def test_more_ranks_than_cpus_small(variant_tree):
    desc = shrink(st.load("dgx-h100"), 2)     # 2 cores x 2 threads per node
    topo = numabind.topology(variant_tree(desc))
    with pytest.raises(PlacementError, match=r"\bnode 0\b"):
        numabind.plan(gpus=[0, 1, 2, 3, 0], topology=topo)
    p = numabind.plan(gpus=[0, 1, 2, 3], topology=topo)   # 4 ranks, 2 cores: siblings split, noted
    assert sorted(len(r.cpus) for r in p.ranks) == [1, 1, 1, 1]
    assert all(r.note for r in p.ranks)
    check_ranks(desc, p.ranks, [g["bdf"] for g in ref.gpus(desc)[:4]])


def test_more_ranks_than_cpus_unknown_locality_message(variant_tree):
    # was a bug at 5fe0310: "3 ranks share the machine0 but only 2 CPUs ..."
    desc = st.load("h100x4-flat-vm")
    desc["allowed"]["cpus"] = "0-1"
    with pytest.raises(PlacementError) as e:
        numabind.plan(3, topology=numabind.topology(variant_tree(desc)))
    assert "0-1" in str(e.value)
    assert not re.search(r"machine\d", str(e.value)), str(e.value)


@pytest.mark.parametrize("name", [m for m in GPU_MACHINES
                                  if len({g["numa"] for g in st.load(m)["expected"]["gpus"]}) > 1])
def test_allowed_set_excludes_the_gpu_node(name, variant_tree):
    desc = shrink(st.load(name), 4)
    node = ref.gpus(desc)[0]["numa"]
    others = sorted(c for n, cs in node_cpus(desc).items() if n != node for c in cs)
    desc["allowed"]["cpus"] = st.format_cpulist(others)
    topo = numabind.topology(variant_tree(desc))
    with pytest.raises(PlacementError) as e:
        numabind.plan(topology=topo)
    msg = str(e.value)
    assert re.search(rf"\bnode {node}\b", msg), msg
    assert st.format_cpulist(others) in msg, msg
    # the GPUs of the other node still plan
    rest = [i for i, g in enumerate(ref.gpus(desc)) if g["numa"] != node]
    p = numabind.plan(gpus=rest, topology=topo)
    assert all(set(r.cpus) <= set(others) for r in p.ranks)


@pytest.mark.parametrize("kw,choices", [({"policy": "packed"}, CPU_POLICIES),
                                        ({"mem": "firsttouch"}, MEM_POLICIES)])
def test_unknown_policy(kw, choices, base_tree):
    topo = numabind.topology(base_tree("plain-2cpu-no-gpu"))
    with pytest.raises(ValueError) as e:
        numabind.plan(topology=topo, **kw)
    assert not isinstance(e.value, PlacementError)
    msg = str(e.value)
    assert repr(next(iter(kw.values()))) in msg or next(iter(kw.values())) in msg
    for c in choices:
        assert c in msg, msg
    with pytest.raises(ValueError):
        numabind.pin_rank(0, dry_run=True, topology=topo, **kw)


@pytest.mark.parametrize("name", GPU_MACHINES)
def test_more_ranks_than_visible_gpus(name, base_tree, monkeypatch):
    n = len(st.load(name)["expected"]["gpus"])
    topo = numabind.topology(base_tree(name))
    with pytest.raises(PlacementError, match=str(n)):
        numabind.plan(n + 1, topology=topo)
    with pytest.raises(PlacementError):
        numabind.plan(gpus=[n], topology=topo)
    topo = read(base_tree(name), monkeypatch, "0")
    with pytest.raises(PlacementError):
        numabind.plan(2, topology=topo)
    monkeypatch.setenv("LOCAL_WORLD_SIZE", "2")
    with pytest.raises(PlacementError):
        numabind.plan(topology=topo)


@pytest.mark.parametrize("kw,exc", [
    ({"local_world_size": -1}, ValueError), ({"local_world_size": 0}, ValueError),
    ({"local_world_size": 1.0}, TypeError), ({"local_world_size": "2"}, TypeError),
    ({"local_world_size": True}, TypeError),
    ({"reserve_cores": -1}, ValueError), ({"reserve_cores": 0.5}, TypeError),
    ({"reserve_cores": None}, TypeError),
    ({"gpus": [-2]}, ValueError), ({"gpus": [0.0]}, TypeError), ({"gpus": ["0"]}, TypeError),
    ({"gpus": [0, 1], "local_world_size": 3}, ValueError),
])
def test_bad_arguments(kw, exc, base_tree):
    topo = numabind.topology(base_tree("h100x4-flat-vm"))
    with pytest.raises(exc):
        numabind.plan(topology=topo, **kw)
    with pytest.raises(exc):
        numabind.pin_rank(0, dry_run=True, topology=topo, **kw)


def test_empty_gpus_list_is_a_value_error(base_tree):
    topo = numabind.topology(base_tree("h100x4-flat-vm"))
    with pytest.raises(ValueError):
        numabind.plan(gpus=[], topology=topo)


@pytest.mark.parametrize("rank,exc", [(-1, ValueError), (1.0, TypeError), ("0", TypeError),
                                      (False, TypeError)])
def test_bad_rank_argument(rank, exc, base_tree):
    topo = numabind.topology(base_tree("h100x4-flat-vm"))
    with pytest.raises(exc):
        numabind.pin_rank(rank, dry_run=True, topology=topo)
    with pytest.raises(PlacementError):
        numabind.pin_rank(4, dry_run=True, topology=topo)


def test_dry_run_rank_plan_matches_plan(base_tree):
    topo = numabind.topology(base_tree("dgx-h100"))
    p = numabind.plan(topology=topo)
    for r in (0, 5):
        got = numabind.pin_rank(r, dry_run=True, topology=topo)
        assert got.applied is False and got.rank_source == "argument"
        assert got.to_dict() | {"rank_source": None} == p[r].to_dict()


# --------------------------------------------------------------------------
# to_dict / to_json
# --------------------------------------------------------------------------

@pytest.mark.parametrize("name", MACHINES)
def test_to_dict_and_to_json_shape(name, base_tree):
    p = numabind.plan(topology=numabind.topology(base_tree(name)))
    d = p.to_dict()
    assert set(d) == {"ranks", "note"} and len(d["ranks"]) == len(p)
    assert (d["note"] is None) == (len(p) > 0)
    assert json.loads(p.to_json()) == d
    assert json.loads(p.to_json(indent=2)) == d
    for r, rd in zip(p.ranks, d["ranks"]):
        assert rd == r.to_dict()
        assert json.loads(r.to_json()) == rd
        missing = set(RANK_KEYS) - set(rd)
        assert not missing, f"to_dict lacks {missing}"
        for key, types in RANK_KEYS.items():
            assert type(rd[key]) in types, f"{key}: {rd[key]!r}"
        assert all(type(c) is int for c in rd["cpus"]) and rd["cpus"] == sorted(rd["cpus"])
        assert all(type(n) is int for n in rd["mem_nodes"]) and rd["mem_nodes"]
        assert all(type(k) is str and type(v) is str for k, v in rd["env"].items())
        assert rd["mem_policy"] in MEM_POLICIES + ("default",)
        assert rd["distance"] is None or rd["distance"] in CLASSES
        assert (rd["hca"] is None) == (rd["hca_port"] is None) == (rd["distance"] is None)
        assert rd["cpus"] == list(r.cpus) and rd["local_rank"] == r.local_rank
