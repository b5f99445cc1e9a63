"""The ``numabind`` command (also ``python -m numabind``).

Exit status (README's "Exit status"): 0 done; 1 the input or the plan was
refused (a topology, environment or placement error); 2 a usage error (a bad
option or option value); 3 ``exec`` could not pin the rank (nothing ran);
74 the output could not be written (sysexits' EX_IOERR: standard output,
``--svg FILE``, ``gather OUT``); 126 ``exec``'s command is not executable,
127 it is not found (as a shell says); 130 interrupted (Ctrl-C, as shells
report SIGINT). Every error is one line on stderr, never a traceback.
"""

from __future__ import annotations

import argparse
import errno
import json
import os
import sys
from typing import Callable, Sequence

import numabind
from numabind import _core
from numabind._printable import printable, shell_quote
from numabind.errors import BindingError, NumabindError
from numabind.placement import INT_MAX, LOCAL_WORLD_SIZE_LIMIT, MAX_LOCAL_WORLD_SIZE, rank_in
from numabind.topology import Topology

EXIT_INPUT = 1        # the topology, the environment or the plan refused
EXIT_USAGE = 2        # a bad option or option value (argparse's own)
EXIT_PIN = 3          # exec: pinning failed; the command did not run
EXIT_OUTPUT = 74      # sysexits.h EX_IOERR: the output could not be written
EXIT_NOEXEC = 126     # exec: the command is not executable (a shell's 126)
EXIT_NOTFOUND = 127   # exec: the command is not found (a shell's 127)
EXIT_INTERRUPT = 130  # Ctrl-C: 128 + SIGINT, as shells report it


class OutputError(Exception):
    """Writing the command's output failed (``what``: what was written)."""

    def __init__(self, what: str, error: OSError) -> None:
        super().__init__(f"cannot write {what}: {error.strerror or error}")
        self.error = error


def _emit(text: str, end: str = "\n") -> None:
    """Text to standard output; a write error is an OutputError."""
    try:
        sys.stdout.write(text + end)
    except BrokenPipeError:
        raise
    except OSError as e:
        raise OutputError("standard output", e) from e

LEGEND = """Legend:
  PIX  = at most one PCIe switch between them
  PXB  = several PCIe bridges, no host bridge
  PHB  = through a PCIe host bridge (the CPU)
  NODE = between PCIe host bridges of one NUMA node
  SYS  = across NUMA nodes (the SMP interconnect), or locality unknown"""


def _error(message: str) -> None:
    print(f"numabind: error: {printable(message)}", file=sys.stderr)


def _node(n: int | None) -> str:
    return "N/A" if n is None else str(n)


def _table(rows: list[list[str]]) -> str:
    rows = [[printable(c) for c in r] for r in rows]   # a tree's names, escaped before measuring
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    return "\n".join("  ".join(c.ljust(w) for c, w in zip(r, widths)).rstrip() for r in rows)


def _gib(n: int) -> str:
    return f"{n / (1 << 30):.1f} GiB" if n else "unknown"


def render(topo: Topology, source: str | None = None) -> str:
    """The text of ``numabind show``: a GPU x NIC matrix like
    ``nvidia-smi topo -m``, then the NICs and the NUMA nodes. ``source``
    names the machine instead of its root (``--example``)."""
    out = [f"numabind {numabind.__version__}: topology of "
           f"{source or ('this host' if topo.live else printable(topo.fsroot))}"]
    fmt = _core.format_cpulist
    # On the live host the GPU x GPU block too, as nvidia-smi topo -m has it:
    # NV# where NVLink joins two GPUs, else their PCI class. A tree cannot say
    # what NVLink joins, so under a root the block is left out.
    gpu_block = topo.live
    if topo.gpus:
        header = ([""] + ([f"GPU{g.index}" for g in topo.gpus] if gpu_block else []) + [n.name for n in topo.nics]
                  + ["CPU Affinity", "NUMA Affinity"])
        rows = [header]
        for g in topo.gpus:
            block = [] if not gpu_block else [
                "X" if h is g else (f"NV{links}" if (links := topo.gpu_link(g, h)) else topo.gpu_distance(g, h).name)
                for h in topo.gpus]
            rows.append([f"GPU{g.index}"] + block + [topo.distance(g, n).name for n in topo.nics]
                        + [fmt(g.local_cpus) or "N/A", _node(g.numa_node)])
        out += ["", _table(rows)]
        out += [""] + [printable(f"GPU{g.index}: {g.pci_address}" + (f"  {g.uuid}" if g.uuid else ""))
                       for g in topo.gpus]
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
        out += [f"  {printable(g.pci_address)}  NUMA {_node(g.numa_node)}" for g in closed]
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
    if topo.gpus and (topo.nics or gpu_block):
        out += ["", LEGEND + ("\n  NV#  = a bonded set of # NVLinks (through NVSwitches: each GPU's switch links)\n"
                              "  X    = itself" if gpu_block else "")]
    return "\n".join(out)


def _write_svg(path: str, topo: Topology, ranks: Sequence[numabind.RankPlan] | None = None) -> int:
    """``--svg FILE``: the drawing of numabind.svg; ``-`` writes it to stdout."""
    from numabind import svg

    text = svg.render(topo, ranks)
    if path == "-":
        _emit(text, end="")
        return 0
    try:
        with open(path, "w", encoding="utf-8") as f:
            f.write(text)
    except OSError as e:
        raise OutputError(path, e) from e
    return 0


def _topology(args: argparse.Namespace, nvlink: bool = False) -> Topology:
    """The machine a verb reads: --example NAME's bundled tree, --fsroot
    DIR, else NUMABIND_FSROOT or this host."""
    if args.example is not None and args.fsroot is not None:
        raise _Usage("--fsroot and --example both name the machine to read: give one")
    if args.fsroot == "":
        raise _Usage("--fsroot: the directory's name is empty")
    if args.example is not None:
        from numabind import examples
        try:
            return numabind.topology(examples.root(args.example))
        except examples.ExampleError as e:
            raise _Usage(str(e)) from None
    return numabind.topology(args.fsroot, nvlink=nvlink)


def _example_list() -> int:
    from numabind import examples

    rows = [["NAME", "FROM"]] + [[e["name"], e["source"]] for e in examples.describe()]
    _emit(_table(rows) + "\n\nnumabind show --example NAME   (or plan, env, exec --dry-run ... --example NAME)")
    return 0


def _cmd_show(args: argparse.Namespace) -> int:
    topo = _topology(args, nvlink=not args.json)
    if args.svg:
        rc = _write_svg(args.svg, topo)
        if rc or args.svg == "-":
            return rc
    # JSON escapes control characters itself (\u001b)
    source = f"the bundled example {args.example}" if args.example else None
    _emit(json.dumps(topo.to_dict(), indent=2) if args.json else render(topo, source))
    return 0


def _cmd_gather(args: argparse.Namespace) -> int:
    from numabind.gather import gather

    out = args.out
    if out == "":
        raise _Usage("gather: the archive's name is empty: name a .tar.gz to write, or - for standard output")
    if out == "-" and sys.stdout.isatty():
        raise _Usage("gather -: standard output is a terminal; redirect it (numabind gather - > OUT.tar.gz)")
    try:
        if out == "-":
            sys.stdout.flush()
            paths = gather(sys.stdout.buffer)
            sys.stdout.buffer.flush()
        else:
            paths = gather(out)
    except OSError as e:
        if isinstance(e, NumabindError):
            raise
        # a reader gone away (BrokenPipeError) included: the archive is cut short
        raise OutputError("standard output" if out == "-" else out, e) from e
    hint = (f"replay with: mkdir T && tar xzf {'ARCHIVE' if out == '-' else shell_quote(out)} -C T && "
            "NUMABIND_FSROOT=T numabind show")
    what = "the archive to standard output" if out == "-" else printable(out)
    line = f"wrote {what}: {len(paths)} paths numabind reads on this machine; {hint}"
    # with -, standard output is the archive: the summary goes to stderr
    if out == "-":
        print(line, file=sys.stderr)
    else:
        _emit(line)
    return 0


class _Usage(Exception):
    """A usage error found after parsing (exit 2)."""


def _count(flag: str, minimum: int, maximum: int, limit: str) -> Callable[[str], int]:
    """An argparse type: an integer in [minimum, maximum]; the error names
    the flag (argparse adds it), the value and the bound."""
    def parse(text: str) -> int:
        try:
            value = int(text, 10)
        except ValueError:
            raise argparse.ArgumentTypeError(f"'{text}' is not an integer") from None
        if value < minimum:
            raise argparse.ArgumentTypeError(f"{value} is below {minimum}")
        if value > maximum:
            raise argparse.ArgumentTypeError(f"{value} is above {maximum}, {limit}")
        return value
    parse.__name__ = flag    # argparse names the type in some messages
    return parse


LOCAL_RANK = _count("--local-rank", 0, MAX_LOCAL_WORLD_SIZE - 1,
                    f"the last local rank of the largest plan ({MAX_LOCAL_WORLD_SIZE} ranks)")


def _plan_args(p: argparse.ArgumentParser) -> None:
    from numabind.placement import CPU_POLICIES, MEM_POLICIES

    p.add_argument("--local-world-size", default=None, metavar="N",
                   type=_count("--local-world-size", 1, MAX_LOCAL_WORLD_SIZE, LOCAL_WORLD_SIZE_LIMIT),
                   help="ranks on this node (default: LOCAL_WORLD_SIZE etc., else one per visible GPU)")
    p.add_argument("--policy", choices=CPU_POLICIES, default="exclusive", help="CPU policy")
    p.add_argument("--mem", choices=MEM_POLICIES, default="preferred", help="memory policy")
    p.add_argument("--reserve-cores", default=0, metavar="K",
                   type=_count("--reserve-cores", 0, INT_MAX, "the largest C int"),
                   help="cores per NUMA node held back for the OS and data loaders")
    p.add_argument("--override-env", action="store_true",
                   help="replace NIC variables already set in the environment")


def _plan_kwargs(args: argparse.Namespace) -> dict:
    return dict(local_world_size=args.local_world_size, policy=args.policy, mem=args.mem,
                reserve_cores=args.reserve_cores, override_env=args.override_env)


def _override_kwargs(args: argparse.Namespace) -> dict:
    return dict(gpu=args.gpu, cpus=args.cpus, mem_nodes=args.mem_nodes, nic=args.nic)


def _overrides_given(args: argparse.Namespace) -> list[str]:
    return [flag for flag, value in (("--gpu", args.gpu), ("--cpus", args.cpus), ("--mem-nodes", args.mem_nodes),
                                     ("--nic", args.nic)) if value is not None]


def _cmd_plan(args: argparse.Namespace) -> int:
    topo = _topology(args)
    given = _overrides_given(args)
    if given and args.local_rank is None:
        raise _Usage(f"{given[0]} is one rank's: name the rank with --local-rank R")
    extra = dict(rank=args.local_rank, **_override_kwargs(args)) if given else {}
    plan = numabind.plan(topology=topo, **_plan_kwargs(args), **extra)
    ranks = (plan.ranks if args.local_rank is None or not plan.ranks
             else (rank_in(plan.ranks, args.local_rank, "", "plan"),))
    if args.svg:
        rc = _write_svg(args.svg, topo, ranks)
        if rc or args.svg == "-":
            return rc
    if args.json:
        _emit(json.dumps({"ranks": [r.to_dict() for r in ranks], "note": plan.note}, indent=2))
        return 0
    if not ranks:
        _emit(printable(f"No ranks: {plan.note}"))
        return 0
    rows = [["rank", "GPU", "PCI", "NUMA", "CPUs", "memory", "NIC", "class"]]
    for r in ranks:
        rows.append([str(r.local_rank), "-" if r.gpu is None else str(r.gpu), r.gpu_pci or "-",
                     _node(r.numa_node), _core.format_cpulist(r.cpus),
                     f"{r.mem_policy} {_core.format_cpulist(r.mem_nodes)}",
                     f"{r.hca}:{r.hca_port}" if r.hca else "-", r.distance or "-"])
    lines = [_table(rows)]
    for r in ranks:
        if len(r.hcas) > 1:
            lines.append(printable(f"rank {r.local_rank}: equally close NICs {', '.join(r.hcas)} "
                                   f"(NVSHMEM gets {r.hca}:{r.hca_port})"))
        if r.note:
            lines.append(printable(f"rank {r.local_rank}: {r.note}"))
        for name, value in r.kept_env.items():
            lines.append(printable(f"rank {r.local_rank}: keeping {name}={value} from the environment"))
    _emit("\n".join(lines))
    return 0


def _cmd_status(args: argparse.Namespace) -> int:
    from numabind import status

    kwargs = _plan_kwargs(args)
    kwargs.pop("override_env")
    _topology(args)   # the same checks and errors as every verb's; the read below is under the process's variables
    fsroot = args.fsroot
    if args.example is not None:
        from numabind import examples
        fsroot = examples.root(args.example)
    try:
        result = status.read(args.pid, local_rank=args.local_rank, fsroot=fsroot, **kwargs)
    except ProcessLookupError:
        raise _Usage(f"--pid {args.pid}: no such process") from None
    except PermissionError as e:
        raise NumabindError(e.errno or 13, "Permission denied",
                            f"cannot read /proc/{args.pid}: {e.strerror} (another user's process?)") from None
    _emit(json.dumps(result, indent=2) if args.json else status.render(result))
    return 0


def _cmd_env(args: argparse.Namespace) -> int:
    r = numabind.pin_rank(args.local_rank, dry_run=True, topology=_topology(args), **_plan_kwargs(args),
                          **_override_kwargs(args))
    if r.env:
        # shell_quote: the same bytes back when evaluated, no control character printed
        _emit("\n".join(f"export {name}={shell_quote(value)}" for name, value in r.env.items()))
    return 0


def _cmd_exec(args: argparse.Namespace) -> int:
    command = args.command_line
    if command and command[0] == "--":
        command = command[1:]
    if not command:
        print("numabind exec: no command given (numabind exec [options] -- CMD ARGS...)", file=sys.stderr)
        return EXIT_USAGE
    topo = _topology(args)
    if args.dry_run:
        return _dry_run(args, topo, command)
    try:
        r = numabind.pin_rank(args.local_rank, migrate=args.migrate, topology=topo, **_plan_kwargs(args),
                              **_override_kwargs(args))
    except BindingError as e:
        # the plan was fine; applying it was not (the process is as it was)
        print(f"numabind exec: error: pinning failed, {printable(command[0])!r} not run: "
              f"{printable(e.message)}", file=sys.stderr)
        return EXIT_PIN
    if args.verbose:
        print(f"numabind: {printable(repr(r))}", file=sys.stderr)
    try:
        sys.stdout.flush()
    except OSError as e:
        raise OutputError("standard output", e) from e
    try:
        os.execvp(command[0], command)
    except OSError as e:
        # as a shell: 127 when there is no such command, 126 when it cannot be run
        code = EXIT_NOTFOUND if isinstance(e, FileNotFoundError) else EXIT_NOEXEC
        print(f"numabind exec: cannot run {printable(command[0])!r}: {e.strerror or e}", file=sys.stderr)
        return code


def _describe(r: numabind.RankPlan) -> str:
    """One line: where a rank runs (exec -v, exec --dry-run)."""
    if r.gpu is None:
        return f"local rank {r.local_rank}: {r.note}"
    where = "locality unknown" if r.numa_node is None else f"node {r.numa_node}"
    nic = f"NIC {r.hca}:{r.hca_port} ({r.distance})" if r.hca else "no RDMA NIC"
    origin = f" (from {r.rank_source})" if r.rank_source else ""
    return (f"local rank {r.local_rank}{origin}: GPU {r.gpu} {r.gpu_pci}, {where}, CPUs "
            f"{_core.format_cpulist(r.cpus)}, memory {r.mem_policy} {_core.format_cpulist(r.mem_nodes)}, {nic}")


def _dry_run(args: argparse.Namespace, topo: Topology, command: list[str]) -> int:
    """exec --dry-run: what exec would apply, export and run; nothing changes."""
    r = numabind.pin_rank(args.local_rank, dry_run=True, topology=topo, **_plan_kwargs(args),
                          **_override_kwargs(args))
    lines = [printable(_describe(r))]
    if r.gpu is not None and r.note:
        lines.append(printable(f"note: {r.note}"))
    lines += [f"export {name}={shell_quote(value)}" for name, value in r.env.items()]
    lines += [printable(f"keeping {name}={value} from the environment") for name, value in r.kept_env.items()]
    lines.append("exec " + " ".join(shell_quote(a) for a in command))
    _emit("\n".join(lines))
    return 0


class _Parser(argparse.ArgumentParser):
    """argparse, with what it quotes from the command line escaped."""

    def error(self, message: str):  # type: ignore[override]
        super().error(printable(message))


def _machine_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--fsroot", metavar="DIR", default=None,
                   help="read the tree under DIR instead of this host (as NUMABIND_FSROOT=DIR; "
                        "default: NUMABIND_FSROOT, else this host)")
    p.add_argument("--example", metavar="NAME", default=None,
                   help="read a real machine bundled with numabind (dgx-h100, azure-nd96isr-h100-v5, ...; "
                        "'--example list' lists them)")


def _override_args(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group("overrides for the rank (each checked against the topology)")
    g.add_argument("--gpu", type=_count("--gpu", 0, INT_MAX, "the largest C int"), default=None, metavar="N",
                   help="the rank's CUDA device (default: local rank r drives visible GPU r)")
    g.add_argument("--cpus", metavar="LIST", default=None, help="the rank's CPUs, e.g. 0-13,112-125")
    g.add_argument("--mem-nodes", metavar="LIST", default=None,
                   help="the rank's memory nodes, under --mem's policy (preferred: one node)")
    g.add_argument("--nic", metavar="NAME[:PORT]", default=None, help="the rank's RDMA NIC, e.g. mlx5_3 or mlx5_3:1")


class _Help(argparse.RawDescriptionHelpFormatter):
    """Examples in the epilog kept as written; every default shown."""

    def _get_help_string(self, action: argparse.Action) -> str:
        text = action.help or ""
        default = action.default
        if ("default" not in text and action.option_strings and default is not None and default is not False
                and default is not argparse.SUPPRESS):
            text += " (default: %(default)s)"
        return text


def _sub(sub: argparse._SubParsersAction, name: str, help: str, examples: str) -> argparse.ArgumentParser:
    return sub.add_parser(name, help=help, description=help[0].upper() + help[1:] + ".",
                          epilog="examples:\n" + examples, formatter_class=_Help)


def parser() -> argparse.ArgumentParser:
    p = _Parser(prog="numabind", formatter_class=_Help, description=(
        "Reads a GPU node's topology and places each rank on the CPUs, memory and NIC closest "
        "to its GPU. NUMABIND_FSROOT=DIR (or --fsroot DIR) reads a captured or fixture tree instead "
        "of this host; --example NAME a real machine bundled with numabind."),
        epilog="examples:\n"
               "  numabind show                         # this host, as nvidia-smi topo -m\n"
               "  numabind show --example dgx-h100      # a DGX H100, without one\n"
               "  numabind plan --example dgx-h100      # where each of its 8 ranks goes\n"
               "  torchrun --nproc-per-node 8 --no-python numabind exec -- python train.py\n"
               "  numabind status --pid 4242            # where a running rank is bound vs its plan\n"
               "\nEvery verb takes --help. For C, C++ and Cython builds against numabind:\n"
               "  python -m numabind --includes        # -I<dir> of the C headers\n"
               "  python -m numabind --cmakedir        # for -Dnumabind_DIR=... (find_package)\n"
               "  python -m numabind --pkgconfigdir    # for PKG_CONFIG_PATH")
    p.add_argument("--version", action="version", version=f"numabind {numabind.__version__}")
    sub = p.add_subparsers(dest="command", required=True, metavar="COMMAND")
    show = _sub(sub, "show", "print GPUs, NICs and NUMA nodes as nvidia-smi topo -m does",
                "  numabind show\n  numabind show --json | jq '.gpus[].numa_node'\n"
                "  numabind show --example azure-nd96isr-h100-v5 --svg nd.svg\n  numabind show --example list")
    show.add_argument("--json", action="store_true", help="print one JSON object")
    show.add_argument("--svg", metavar="FILE", help="also write a drawing of the machine to FILE (- : stdout only)")
    _machine_args(show)
    show.set_defaults(func=_cmd_show)
    gather = _sub(sub, "gather", "capture every file numabind reads, for NUMABIND_FSROOT",
                  "  numabind gather node.tar.gz\n  numabind gather - | ssh laptop 'cat > node.tar.gz'\n"
                  "  mkdir t && tar xzf node.tar.gz -C t && numabind show --fsroot t")
    gather.add_argument("out", metavar="OUT.tar.gz", help="the archive to write (- : standard output)")
    gather.set_defaults(func=_cmd_gather)

    plan = _sub(sub, "plan", "print each local rank's CPUs, memory and NIC",
                "  numabind plan\n  numabind plan --example dgx-h100 --policy node --mem bind\n"
                "  numabind plan --local-rank 3 --json\n  numabind plan --local-rank 1 --nic mlx5_3 --cpus 0-7")
    plan.add_argument("--local-rank", type=LOCAL_RANK, default=None, metavar="R", help="only this rank")
    plan.add_argument("--json", action="store_true", help='print {"ranks": [...]}')
    plan.add_argument("--svg", metavar="FILE", help="also write a drawing of the machine and the ranks to FILE "
                                                    "(- : stdout only)")
    _plan_args(plan)
    _machine_args(plan)
    _override_args(plan)
    plan.set_defaults(func=_cmd_plan)

    env = _sub(sub, "env", "print a rank's NIC variables as shell export lines",
               "  eval \"$(numabind env)\"                  # under torchrun/srun/mpirun: the rank's own\n"
               "  numabind env --local-rank 3 --example dgx-h100")
    env.add_argument("--local-rank", type=LOCAL_RANK, default=None, metavar="R",
                     help="default: from LOCAL_RANK, SLURM_LOCALID, ...")
    _plan_args(env)
    _machine_args(env)
    _override_args(env)
    env.set_defaults(func=_cmd_env)

    ex = _sub(sub, "exec", "pin this rank, export its NIC variables, then exec CMD",
              "  torchrun --nproc-per-node 8 --no-python numabind exec -- python train.py\n"
              "  srun --cpu-bind=none numabind exec -- ./all_to_all_perf -b 8 -e 1G\n"
              "  numabind exec --dry-run --local-rank 3 --example dgx-h100 -- python train.py\n"
              "  numabind exec --local-rank 0 --cpus 0-7 --nic mlx5_1 -- ./server")
    ex.add_argument("--local-rank", type=LOCAL_RANK, default=None, metavar="R",
                    help="default: from LOCAL_RANK, SLURM_LOCALID, ...")
    ex.add_argument("--migrate", action="store_true", help="move pages already touched")
    ex.add_argument("--dry-run", action="store_true",
                    help="print what would be applied, exported and run; run nothing")
    ex.add_argument("-v", "--verbose", action="store_true", help="print the plan to stderr")
    _plan_args(ex)
    _machine_args(ex)
    _override_args(ex)
    ex.add_argument("command_line", nargs=argparse.REMAINDER, metavar="-- CMD ARGS")
    ex.set_defaults(func=_cmd_exec)

    st = _sub(sub, "status", "show where a process and its threads are bound, against its rank's plan",
              "  numabind status                      # this shell's binding (numactl --show)\n"
              "  numabind status --pid 4242           # a running rank: its environment gives its rank\n"
              "  numabind status --pid 4242 --local-rank 3 --json")
    st.add_argument("--pid", type=_count("--pid", 1, INT_MAX, "the largest C int"), default=None, metavar="P",
                    help="the process to read (default: numabind's own, i.e. what it inherited)")
    st.add_argument("--local-rank", type=LOCAL_RANK, default=None, metavar="R",
                    help="default: from the process's LOCAL_RANK, SLURM_LOCALID, ...")
    st.add_argument("--json", action="store_true", help="print one JSON object")
    _plan_args(st)
    _machine_args(st)
    st.set_defaults(func=_cmd_status)
    return p


def _no_local_rank(e: NumabindError) -> bool:
    return e.call == "nmb_local_rank_from_env" and e.errno == errno.ENOENT


def _quiet_stdout() -> None:
    """After a failed write, what is left in stdout's buffer would fail
    again at exit ("Exception ignored ..."): point stdout at /dev/null."""
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        os.close(devnull)
    except (OSError, ValueError):
        pass


def _restore_sigint() -> None:
    """The native ``numabind`` hands a command over to Python with SIGINT
    ignored (so a Ctrl-C while the interpreter starts prints no traceback)
    and NUMABIND_RESTORE_SIGINT=1: Python's own handler comes back here."""
    if os.environ.pop("NUMABIND_RESTORE_SIGINT", None) is not None:
        import signal

        signal.signal(signal.SIGINT, signal.default_int_handler)


def main(argv: Sequence[str] | None = None) -> int:
    _restore_sigint()
    try:
        return _main(argv)
    except KeyboardInterrupt:
        _quiet_stdout()   # what is still buffered is dropped, not written at exit
        print("numabind: interrupted", file=sys.stderr)
        return EXIT_INTERRUPT


def _main(argv: Sequence[str] | None) -> int:
    args = parser().parse_args(argv)
    try:
        rc = _example_list() if getattr(args, "example", None) == "list" else args.func(args)
        try:
            sys.stdout.flush()
        except BrokenPipeError:
            raise
        except OSError as e:
            raise OutputError("standard output", e) from e
        return rc
    except BrokenPipeError:  # `numabind show | head`: a reader that goes away is no error
        _quiet_stdout()
        return 0
    except OutputError as e:
        _quiet_stdout()
        _error(str(e))
        return EXIT_OUTPUT
    except NumabindError as e:
        message = e.message
        if _no_local_rank(e):
            message += "; give it with --local-rank R"
        _error(message)
        return EXIT_INPUT
    except _Usage as e:
        _error(str(e))
        return EXIT_USAGE
    except (ValueError, TypeError) as e:  # a bad option value, named in the message
        _error(str(e))
        return EXIT_USAGE


if __name__ == "__main__":
    sys.exit(main())
