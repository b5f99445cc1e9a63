"""The ``numabind`` command (also ``python -m numabind``)."""

from __future__ import annotations

import argparse
import json
import sys
from typing import Sequence

import numabind
from numabind import _core
from numabind.errors import NumabindError
from numabind.placement import rank_in
from numabind.topology import Topology

LEGEND = """Legend:
  PIX  = at most one PCIe switch between them
  PXB  = several PCIe bridges, no host bridge
  PHB  = through a PCIe host bridge (the CPU)
  NODE = between PCIe host bridges of one NUMA node
  SYS  = across NUMA nodes (the SMP interconnect), or locality unknown"""


def _node(n: int | None) -> str:
    return "N/A" if n is None else str(n)


def _table(rows: list[list[str]]) -> str:
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    return "\n".join("  ".join(c.ljust(w) for c, w in zip(r, widths)).rstrip() for r in rows)


def _gib(n: int) -> str:
    return f"{n / (1 << 30):.1f} GiB" if n else "unknown"


def render(topo: Topology) -> str:
    """The text of ``numabind show``: a GPU x NIC matrix like
    ``nvidia-smi topo -m``, then the NICs and the NUMA nodes."""
    out = [f"numabind {numabind.__version__}: topology of "
           f"{'this host' if topo.live else topo.fsroot}"]
    fmt = _core.format_cpulist
    if topo.gpus:
        header = [""] + [n.name for n in topo.nics] + ["CPU Affinity", "NUMA Affinity"]
        rows = [header]
        for g in topo.gpus:
            rows.append([f"GPU{g.index}"] + [topo.distance(g, n).name for n in topo.nics]
                        + [fmt(g.local_cpus) or "N/A", _node(g.numa_node)])
        out += ["", _table(rows)]
        out += [""] + [f"GPU{g.index}: {g.pci_address}" + (f"  {g.uuid}" if g.uuid else "") for g in topo.gpus]
        hidden = sum(g.accessible for g in topo.all_gpus) - len(topo.gpus)
        if hidden:
            out.append(f"({hidden} more GPU(s) hidden by CUDA_VISIBLE_DEVICES)")
    else:
        hidden = sum(g.accessible for g in topo.all_gpus)
        out += ["", "No NVIDIA GPU found" + (f" ({hidden} hidden by CUDA_VISIBLE_DEVICES)." if hidden else ".")]
    closed = [g for g in topo.all_gpus if not g.accessible]
    if closed:
        # libnvidia-container: sysfs shows the node's every GPU, the container opens its own.
        out += [f"This process cannot open {len(closed)} of the node's {len(topo.all_gpus)} GPUs (not in "
                "/proc/driver/nvidia/gpus or no /dev/nvidia node: another container's); NICs are still "
                "assigned over all of them:"]
        out += [f"  {g.pci_address}  NUMA {_node(g.numa_node)}" for g in closed]
    if topo.nics:
        rows = [["NIC", "PCI", "NUMA", "netdev", "port", "state", "link", "rate"]]
        for n in topo.nics:
            for p in n.ports or (None,):
                rows.append([n.name + (" (soft)" if n.virtual else ""), n.pci_address or "-",
                             _node(n.numa_node), n.netdev or "-",
                             str(p.port) if p else "-", p.state if p else "-",
                             (p.link_layer or "?") if p else "-", (p.rate or "?") if p else "-"])
        out += ["", _table(rows)]
    else:
        out += ["", "No RDMA NIC found (/sys/class/infiniband is empty or absent)."]
    rows = [["NUMA node", "CPUs", "count", "memory", "distances"]]
    for node in topo.nodes:
        rows.append([str(node.id), fmt(node.cpus) if node.has_cpus else "(no CPUs)", str(len(node.cpus)),
                     _gib(node.mem_total_bytes), " ".join(map(str, node.distances))])
    out += ["", _table(rows)]
    source = {"kernel": "cpuset, from the kernel", "cgroup": "cgroup cpuset",
              "affinity": "affinity: no cpuset readable" if topo.live else "proc/self/status: no cgroup cpuset",
              "online": "every online CPU: no proc/self/status in the tree"}.get(topo.allowed_source, "?")
    out += ["", f"Allowed CPUs: {fmt(topo.allowed_cpus)} ({source})   "
            f"allowed memory nodes: {fmt(topo.allowed_mems)}"]
    if topo.affinity_cpus != topo.allowed_cpus:
        out.append(f"Bound now to CPUs {fmt(topo.affinity_cpus)} (a launcher's binding?): plans use the allowed CPUs")
    if topo.gpus and topo.nics:
        out += ["", LEGEND]
    return "\n".join(out)


def _write_svg(path: str, topo: Topology, ranks: Sequence[numabind.RankPlan] | None = None) -> int:
    """``--svg FILE``: the drawing of numabind.svg; ``-`` writes it to stdout."""
    from numabind import svg

    text = svg.render(topo, ranks)
    if path == "-":
        sys.stdout.write(text)
        return 0
    try:
        with open(path, "w", encoding="utf-8") as f:
            f.write(text)
    except OSError as e:
        print(f"numabind: error: cannot write {path}: {e.strerror}", file=sys.stderr)
        return 1
    return 0


def _cmd_show(args: argparse.Namespace) -> int:
    topo = numabind.topology()
    if args.svg:
        rc = _write_svg(args.svg, topo)
        if rc or args.svg == "-":
            return rc
    if args.json:
        print(json.dumps(topo.to_dict(), indent=2))
    else:
        print(render(topo))
    return 0


def _cmd_gather(args: argparse.Namespace) -> int:
    from numabind.gather import gather

    try:
        paths = gather(args.out)
    except OSError as e:
        if isinstance(e, numabind.NumabindError):
            raise
        print(f"numabind: error: cannot write {args.out}: {e.strerror or e}", file=sys.stderr)
        return 1
    print(f"wrote {args.out}: {len(paths)} paths numabind reads on this machine; "
          f"replay with: mkdir T && tar xzf {args.out} -C T && NUMABIND_FSROOT=T numabind show")
    return 0


def _plan_args(p: argparse.ArgumentParser) -> None:
    from numabind.placement import CPU_POLICIES, MEM_POLICIES

    p.add_argument("--local-world-size", type=int, default=None, metavar="N",
                   help="ranks on this node (default: LOCAL_WORLD_SIZE etc., else one per visible GPU)")
    p.add_argument("--policy", choices=CPU_POLICIES, default="exclusive", help="CPU policy")
    p.add_argument("--mem", choices=MEM_POLICIES, default="preferred", help="memory policy")
    p.add_argument("--reserve-cores", type=int, default=0, metavar="K",
                   help="cores per NUMA node held back for the OS and data loaders")
    p.add_argument("--override-env", action="store_true",
                   help="replace NIC variables already set in the environment")


def _plan_kwargs(args: argparse.Namespace) -> dict:
    return dict(local_world_size=args.local_world_size, policy=args.policy, mem=args.mem,
                reserve_cores=args.reserve_cores, override_env=args.override_env)


def _cmd_plan(args: argparse.Namespace) -> int:
    topo = numabind.topology()
    plan = numabind.plan(topology=topo, **_plan_kwargs(args))
    ranks = (plan.ranks if args.local_rank is None or not plan.ranks
             else (rank_in(plan.ranks, args.local_rank, "", "plan"),))
    if args.svg:
        rc = _write_svg(args.svg, topo, ranks)
        if rc or args.svg == "-":
            return rc
    if args.json:
        print(json.dumps({"ranks": [r.to_dict() for r in ranks], "note": plan.note}, indent=2))
        return 0
    if not ranks:
        print(f"No ranks: {plan.note}")
        return 0
    rows = [["rank", "GPU", "PCI", "NUMA", "CPUs", "memory", "NIC", "class"]]
    for r in ranks:
        rows.append([str(r.local_rank), "-" if r.gpu is None else str(r.gpu), r.gpu_pci or "-",
                     _node(r.numa_node), _core.format_cpulist(r.cpus),
                     f"{r.mem_policy} {_core.format_cpulist(r.mem_nodes)}",
                     f"{r.hca}:{r.hca_port}" if r.hca else "-", r.distance or "-"])
    print(_table(rows))
    for r in ranks:
        if len(r.hcas) > 1:
            print(f"rank {r.local_rank}: equally close NICs {', '.join(r.hcas)} (NVSHMEM gets {r.hca}:{r.hca_port})")
        if r.note:
            print(f"rank {r.local_rank}: {r.note}")
        for name, value in r.kept_env.items():
            print(f"rank {r.local_rank}: keeping {name}={value} from the environment")
    return 0


def _cmd_env(args: argparse.Namespace) -> int:
    import shlex

    r = numabind.pin_rank(args.local_rank, dry_run=True, **_plan_kwargs(args))
    for name, value in r.env.items():
        print(f"export {name}={shlex.quote(value)}")
    return 0


def _cmd_exec(args: argparse.Namespace) -> int:
    import os

    command = args.command_line
    if command and command[0] == "--":
        command = command[1:]
    if not command:
        print("numabind exec: no command given (numabind exec [options] -- CMD ARGS...)", file=sys.stderr)
        return 2
    r = numabind.pin_rank(args.local_rank, migrate=args.migrate, **_plan_kwargs(args))
    if args.verbose:
        print(f"numabind: {r!r}", file=sys.stderr)
    sys.stdout.flush()
    try:
        os.execvp(command[0], command)
    except OSError as e:
        print(f"numabind exec: cannot run {command[0]!r}: {e.strerror}", file=sys.stderr)
        return 127


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="numabind", description=(
        "Reads a GPU node's topology and places each rank on the CPUs, memory and NIC closest "
        "to its GPU. NUMABIND_FSROOT=DIR reads a captured or fixture tree instead of this host."))
    p.add_argument("--version", action="version", version=f"numabind {numabind.__version__}")
    sub = p.add_subparsers(dest="command", required=True, metavar="COMMAND")
    show = sub.add_parser("show", help="print GPUs, NICs and NUMA nodes as nvidia-smi topo -m does")
    show.add_argument("--json", action="store_true", help="print one JSON object")
    show.add_argument("--svg", metavar="FILE", help="also write a drawing of the machine to FILE (- : stdout only)")
    show.set_defaults(func=_cmd_show)
    gather = sub.add_parser("gather", help="capture every file numabind reads, for NUMABIND_FSROOT")
    gather.add_argument("out", metavar="OUT.tar.gz")
    gather.set_defaults(func=_cmd_gather)

    plan = sub.add_parser("plan", help="print each local rank's CPUs, memory and NIC")
    plan.add_argument("--local-rank", type=int, default=None, metavar="R", help="only this rank")
    plan.add_argument("--json", action="store_true", help='print {"ranks": [...]}')
    plan.add_argument("--svg", metavar="FILE", help="also write a drawing of the machine and the ranks to FILE "
                                                    "(- : stdout only)")
    _plan_args(plan)
    plan.set_defaults(func=_cmd_plan)

    env = sub.add_parser("env", help="print a rank's NIC variables as shell export lines")
    env.add_argument("--local-rank", type=int, default=None, metavar="R",
                     help="default: from LOCAL_RANK, SLURM_LOCALID, ...")
    _plan_args(env)
    env.set_defaults(func=_cmd_env)

    ex = sub.add_parser("exec", help="pin this rank, export its NIC variables, then exec CMD")
    ex.add_argument("--local-rank", type=int, default=None, metavar="R",
                    help="default: from LOCAL_RANK, SLURM_LOCALID, ...")
    ex.add_argument("--migrate", action="store_true", help="move pages already touched")
    ex.add_argument("-v", "--verbose", action="store_true", help="print the plan to stderr")
    _plan_args(ex)
    ex.add_argument("command_line", nargs=argparse.REMAINDER, metavar="-- CMD ARGS")
    ex.set_defaults(func=_cmd_exec)
    return p


def main(argv: Sequence[str] | None = None) -> int:
    args = parser().parse_args(argv)
    try:
        return args.func(args)
    except NumabindError as e:
        print(f"numabind: error: {e}", file=sys.stderr)
        return 1
    except (ValueError, TypeError) as e:  # a bad option value, named in the message
        print(f"numabind: error: {e}", file=sys.stderr)
        return 2
    except BrokenPipeError:
        return 0


if __name__ == "__main__":
    sys.exit(main())
