"""The ``numabind`` command (also ``python -m numabind``)."""

from __future__ import annotations

import argparse
import json
import sys
from typing import Sequence

import numabind
from numabind import _core
from numabind.errors import NumabindError
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
        hidden = len(topo.all_gpus) - len(topo.gpus)
        if hidden:
            out.append(f"({hidden} more GPU(s) hidden by CUDA_VISIBLE_DEVICES)")
    else:
        out += ["", "No NVIDIA GPU found" + (f" ({len(topo.all_gpus)} hidden by CUDA_VISIBLE_DEVICES)."
                                              if topo.all_gpus else ".")]
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
    for n in topo.nodes:
        rows.append([str(n.id), fmt(n.cpus) if n.has_cpus else "(no CPUs)", str(len(n.cpus)),
                     _gib(n.mem_total_bytes), " ".join(map(str, n.distances))])
    out += ["", _table(rows)]
    out += ["", f"Allowed CPUs: {fmt(topo.allowed_cpus)}   allowed memory nodes: {fmt(topo.allowed_mems)}"]
    if topo.gpus and topo.nics:
        out += ["", LEGEND]
    return "\n".join(out)


def _cmd_show(args: argparse.Namespace) -> int:
    topo = numabind.topology()
    if args.json:
        print(json.dumps(topo.to_dict(), indent=2))
    else:
        print(render(topo))
    return 0


def _cmd_gather(args: argparse.Namespace) -> int:
    from numabind.gather import gather

    paths = gather(args.out)
    print(f"wrote {args.out}: {len(paths)} paths numabind reads on this machine; "
          f"replay with: mkdir T && tar xzf {args.out} -C T && NUMABIND_FSROOT=T numabind show")
    return 0


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="numabind", description=(
        "Reads a GPU node's topology and places each rank on the CPUs, memory and NIC closest "
        "to its GPU. NUMABIND_FSROOT=DIR reads a captured or fixture tree instead of this host."))
    p.add_argument("--version", action="version", version=f"numabind {numabind.__version__}")
    sub = p.add_subparsers(dest="command", required=True, metavar="COMMAND")
    show = sub.add_parser("show", help="print GPUs, NICs and NUMA nodes as nvidia-smi topo -m does")
    show.add_argument("--json", action="store_true", help="print one JSON object")
    show.set_defaults(func=_cmd_show)
    gather = sub.add_parser("gather", help="capture every file numabind reads, for NUMABIND_FSROOT")
    gather.add_argument("out", metavar="OUT.tar.gz")
    gather.set_defaults(func=_cmd_gather)
    return p


def main(argv: Sequence[str] | None = None) -> int:
    args = parser().parse_args(argv)
    try:
        return args.func(args)
    except NumabindError as e:
        print(f"numabind: error: {e}", file=sys.stderr)
        return 1
    except BrokenPipeError:
        return 0


if __name__ == "__main__":
    sys.exit(main())
