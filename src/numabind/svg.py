"""A drawing of the machine, and of a plan, as one self-contained SVG.

    import numabind, numabind.svg
    topo = numabind.topology()
    svg = numabind.svg.render(topo, numabind.plan(topology=topo))

Packages hold their NUMA nodes; a node holds its cores (SMT siblings in one
outlined cell, L3 domains as boxes where a node has several), its memory, and
the PCIe devices on it: host bridges, PCIe switches, GPUs and RDMA NICs. The
boxes follow the ``nvidia-smi topo -m`` classes: the innermost box that holds
both a GPU and a NIC, and the label on the link into it, give their class
(PIX in a switch, PXB in a bridge above switches, PHB in a host bridge, NODE
in a NUMA node, SYS across nodes or where locality is unknown). With a plan,
each rank's cores, memory node, GPU and NIC are drawn in the rank's colour.

Written by this module alone (no graphics library); the layout is estimated
from a monospace font's advance, so the drawing never depends on what fonts
a viewer has beyond one monospace family.
"""

from __future__ import annotations

import os
from collections import defaultdict
from dataclasses import dataclass
from typing import Sequence, Union

from numabind import _core
from numabind._printable import printable
from numabind.placement import Plan, RankPlan
from numabind.topology import DistanceClass, Gpu, Nic, PciFunction, Topology

__all__ = ["render", "write", "RANK_COLOURS", "CLASS_COLOURS"]

#: Colours of local ranks 0, 1, ... (Tableau 10 without its grey); rank r
#: takes ``RANK_COLOURS[r % len(RANK_COLOURS)]``.
RANK_COLOURS: tuple[str, ...] = ("#4e79a7", "#f28e2b", "#e15759", "#76b7b2", "#59a14f",
                                 "#edc948", "#b07aa1", "#ff9da7", "#9c755f")

#: Colour of each distance class's label and link, closest first.
CLASS_COLOURS: dict[str, str] = {"PIX": "#2e7d32", "PXB": "#689f38", "PHB": "#f9a825",
                                 "NODE": "#ef6c00", "SYS": "#c62828"}

CLASS_MEANING: dict[str, str] = {
    "PIX": "at most one PCIe switch between them",
    "PXB": "several PCIe bridges, no host bridge",
    "PHB": "through a PCIe host bridge",
    "NODE": "between host bridges of one NUMA node",
    "SYS": "across NUMA nodes, or locality unknown",
}

# -- text metrics --------------------------------------------------------------
# One monospace family; DejaVu Sans Mono's advance is 0.602 em (Menlo 0.602,
# Consolas 0.55). Estimates use 0.62 em so a fallback font does not overflow.
FONT = "'DejaVu Sans Mono', Menlo, Consolas, 'Liberation Mono', monospace"
ADVANCE = 0.62
SIZE = 10.5          # body text
TITLE = 12.0         # box titles
SMALL = 9.0          # CPU numbers, pills
LINE = 14.0          # baseline-to-baseline for body text
PAD = 7.0            # inside a box
GAP = 8.0            # between boxes
BUS = 18.0           # band above a row of linked children
MAX_WIDTH = 1500.0   # boxes wrap their children to stay within this


def _tw(text: str, size: float = SIZE) -> float:
    return len(text) * size * ADVANCE


def _fit(text: str, width: float, size: float = SIZE) -> str:
    """``text`` cut with "..." to fit ``width``."""
    room = int(width / (size * ADVANCE))
    if len(text) <= room:
        return text
    return text[:max(room - 3, 1)] + "..."


def _esc(text: str) -> str:
    # A tree's names may hold control characters, which XML 1.0 forbids even
    # as &#27;: they are drawn as text (\x1b), as the CLI prints them.
    text = printable(text)
    return (text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
            .replace('"', "&quot;"))


def _f(v: float) -> str:
    return f"{v:.1f}".rstrip("0").rstrip(".")


def _attrs(data: dict[str, str]) -> str:
    return "".join(f' data-{k}="{_esc(v)}"' for k, v in data.items())


def _text(out: list[str], x: float, y: float, text: str, cls: str = "", anchor: str = "",
          fill: str = "") -> None:
    a = f' class="{cls}"' if cls else ""
    a += f' text-anchor="{anchor}"' if anchor else ""
    a += f' fill="{fill}"' if fill else ""
    out.append(f'<text x="{_f(x)}" y="{_f(y)}"{a}>{_esc(text)}</text>')


def _ink(colour: str) -> str:
    """Black or white, whichever reads on ``colour``."""
    r, g, b = (int(colour[i:i + 2], 16) for i in (1, 3, 5))
    return "#000" if 0.299 * r + 0.587 * g + 0.114 * b > 140 else "#fff"


def _tint(colour: str, amount: float = 0.3) -> str:
    r, g, b = (int(colour[i:i + 2], 16) for i in (1, 3, 5))
    mix = (round(255 - (255 - c) * amount) for c in (r, g, b))
    return "#" + "".join(f"{c:02x}" for c in mix)


def _gib(n: int) -> str:
    return f"{n / (1 << 30):.1f} GiB" if n else "memory unknown"


def _rank_colour(rank: int) -> str:
    return RANK_COLOURS[rank % len(RANK_COLOURS)]


# -- layout items --------------------------------------------------------------

class _Item:
    """Something with a size that draws itself at a position."""

    w: float = 0.0
    h: float = 0.0
    stretch = False      # takes the width of its widest sibling when stacked

    def measure(self, limit: float, prefer: float = 0.0) -> None:
        raise NotImplementedError

    def leaves(self) -> int:
        return 0

    def emit(self, x: float, y: float, out: list[str]) -> None:
        raise NotImplementedError


@dataclass
class _Pill:
    label: str
    colour: str

    @property
    def w(self) -> float:
        return _tw(self.label, SMALL) + 8


def _pills(pills: Sequence[_Pill], width: float) -> list[list[_Pill]]:
    rows: list[list[_Pill]] = []
    used = width
    for p in pills:
        if not rows or used + 3 + p.w > width:
            rows.append([])
            used = -3.0
        rows[-1].append(p)
        used += 3 + p.w
    return rows


def _emit_pill(out: list[str], x: float, y: float, p: _Pill, data: dict[str, str] | None = None) -> None:
    out.append(f'<g class="pill"{_attrs(data or {})}><rect x="{_f(x)}" y="{_f(y)}" width="{_f(p.w)}" '
               f'height="13" rx="6.5" fill="{p.colour}"/>')
    _text(out, x + p.w / 2, y + 9.6, p.label, "small", "middle", _ink(p.colour))
    out.append("</g>")


class _Device(_Item):
    """A GPU or NIC: a title, lines of text, rank pills."""

    def __init__(self, title: str, lines: list[str], cls: str, data: dict[str, str],
                 tooltip: str, pills: Sequence[_Pill] = (), fill: str = "", stroke: str = "") -> None:
        self.title, self.lines, self.cls, self.data = title, lines, cls, data
        self.tooltip, self.pills, self.fill, self.stroke = tooltip, list(pills), fill, stroke

    def leaves(self) -> int:
        return 1

    def measure(self, limit: float, prefer: float = 0.0) -> None:
        width = max([_tw(self.title, TITLE)] + [_tw(t) for t in self.lines]
                    + [p.w for p in self.pills] + [106.0]) + 2 * PAD
        self.w = min(width, max(limit, 120.0))
        self._rows = _pills(self.pills, self.w - 2 * PAD)
        self.h = PAD + LINE + LINE * len(self.lines) + 16 * len(self._rows) + PAD - 2

    def emit(self, x: float, y: float, out: list[str]) -> None:
        # a style attribute, which outranks the stylesheet's per-kind colours
        css = (f"fill:{self.fill};" if self.fill else "") + \
              (f"stroke:{self.stroke};stroke-width:2.5" if self.stroke else "")
        style = f' style="{css}"' if css else ""
        out.append(f'<g class="box dev {self.cls}"{_attrs(self.data)}>')
        out.append(f'<rect x="{_f(x)}" y="{_f(y)}" width="{_f(self.w)}" height="{_f(self.h)}" rx="4"{style}/>')
        out.append(f"<title>{_esc(self.tooltip)}</title>")
        room = self.w - 2 * PAD
        ty = y + PAD + 10.5
        _text(out, x + PAD, ty, _fit(self.title, room, TITLE), "title")
        for line in self.lines:
            ty += LINE
            _text(out, x + PAD, ty, _fit(line, room))
        py = ty + 5
        for row in self._rows:
            px = x + PAD
            for p in row:
                _emit_pill(out, px, py, p)
                px += p.w + 3
            py += 16
        out.append("</g>")


@dataclass
class _Core:
    cpus: tuple[int, ...]
    core: int


class _Cores(_Item):
    """A grid of cores; each core an outlined cell of its SMT siblings."""

    stretch = True

    def __init__(self, cores: list[_Core], view: _View, label: str = "") -> None:
        self.cores, self.view, self.label = cores, view, label
        self.threads = max((len(c.cpus) for c in cores), default=1)

    def leaves(self) -> int:
        return 0

    def measure(self, limit: float, prefer: float = 0.0) -> None:
        tw = self.view.thread_w
        self.cw = self.threads * tw + (self.threads - 1) + 4
        n = max(len(self.cores), 1)
        natural = min(n, 16) * (self.cw + 3) - 3
        target = min(max(prefer, natural), limit)
        most = max(int((target + 3) // (self.cw + 3)), 1)
        rows = -(-n // most)
        self.cols = -(-n // rows)
        self.rows = rows
        self.top = LINE if self.label else 0.0
        self.w = max(self.cols * (self.cw + 3) - 3, _tw(self.label) if self.label else 0.0)
        self.h = self.top + rows * 23 - 3

    def emit(self, x: float, y: float, out: list[str]) -> None:
        v = self.view
        if self.label:
            _text(out, x, y + 10.5, self.label, "muted")
        for i, core in enumerate(self.cores):
            cx = x + (i % self.cols) * (self.cw + 3)
            cy = y + self.top + (i // self.cols) * 23
            out.append(f'<g class="core" data-core="{core.core}">'
                       f'<rect x="{_f(cx)}" y="{_f(cy)}" width="{_f(self.cw)}" height="20" rx="2" class="core-box"/>')
            for j, cpu in enumerate(core.cpus):
                tx = cx + 2 + j * (v.thread_w + 1)
                fill, ink, note = v.cpu_style(cpu)
                out.append(f'<g class="cpu" data-cpu="{cpu}"{v.cpu_data(cpu)}>'
                           f'<rect x="{_f(tx)}" y="{_f(cy + 2)}" width="{_f(v.thread_w)}" height="16" '
                           f'fill="{fill}"/><title>CPU {cpu} (core {core.core}){note}</title>')
                _text(out, tx + v.thread_w / 2, cy + 13.5, str(cpu), "small", "middle", ink)
                out.append("</g>")
            out.append("</g>")


class _Box(_Item):
    """A titled box of children: in rows that wrap (linked to a bus labelled
    with a distance class where ``tag`` is set) or stacked."""

    def __init__(self, title: str, lines: list[str], cls: str, children: list[_Item], *,
                 tag: str | None = None, data: dict[str, str] | None = None, stack: bool = False,
                 tooltip: str = "", pills: Sequence[_Pill] = (), pill_data: Sequence[dict[str, str]] = (),
                 title_size: float = TITLE, link: bool = False) -> None:
        self.title, self.lines, self.cls, self.children = title, lines, cls, children
        self.tag, self.data, self.stack, self.tooltip = tag, dict(data or {}), stack, tooltip
        self.pills, self.pill_data, self.title_size = list(pills), list(pill_data), title_size
        self.link = link or tag is not None
        if tag is not None:
            self.data["class"] = tag

    def leaves(self) -> int:
        return sum(c.leaves() for c in self.children)

    def _header_w(self) -> float:
        widths = [_tw(t) for t in self.lines]
        if self.pills and self.lines:
            widths[0] += 6 + sum(p.w + 3 for p in self.pills)
        if self.title:
            widths.append(_tw(self.title, self.title_size))
        return max(widths, default=0.0)

    def measure(self, limit: float, prefer: float = 0.0) -> None:
        inner = max(limit - 2 * PAD, 120.0)
        for c in self.children:
            if not c.stretch:
                c.measure(inner)
        widest = max([c.w for c in self.children if not c.stretch] + [self._header_w(), prefer - 2 * PAD])
        for c in self.children:
            if c.stretch:
                c.measure(inner, min(widest, inner))
        rows: list[list[_Item]] = []
        used = 0.0
        for c in self.children:
            if not rows or self.stack or used + GAP + c.w > inner:
                rows.append([])
                used = -GAP
            rows[-1].append(c)
            used += GAP + c.w
        self.rows = rows
        self.head = PAD + (LINE if self.title else 0.0) + LINE * len(self.lines)
        if not self.title and not self.lines and not self.link:
            self.head = 0.0    # a bare group: the gap above its first row is enough
        body_w = max((sum(c.w for c in r) + GAP * (len(r) - 1) for r in rows), default=0.0)
        self.w = max(body_w, self._header_w()) + 2 * PAD
        h = self.head
        for r in rows:
            h += (BUS if self.link else GAP) + max(c.h for c in r)
        self.h = h + PAD

    def emit(self, x: float, y: float, out: list[str]) -> None:
        out.append(f'<g class="box {self.cls}"{_attrs(self.data)}>')
        out.append(f'<rect x="{_f(x)}" y="{_f(y)}" width="{_f(self.w)}" height="{_f(self.h)}" rx="5"/>')
        if self.tooltip:
            out.append(f"<title>{_esc(self.tooltip)}</title>")
        ty = y + PAD + 10.5 - LINE
        if self.title:
            ty += LINE
            _text(out, x + PAD, ty, self.title, "title")
        for i, line in enumerate(self.lines):
            ty += LINE
            _text(out, x + PAD, ty, line, "muted" if i else "")
            if i == 0 and self.pills:
                # ranks whose memory is on this node, after the memory line
                px = x + PAD + _tw(line) + 6
                for p, d in zip(self.pills, self.pill_data):
                    _emit_pill(out, px, ty - 9.8, p, d)
                    px += p.w + 3
        cy = y + self.head
        # labelled where two devices meet here and nowhere lower
        many = sum(1 for c in self.children if c.leaves()) >= 2
        for row in self.rows:
            top = cy + (BUS if self.link else GAP)
            cx = x + PAD
            centres = []
            for c in row:
                centres.append(cx + c.w / 2)
                cx += c.w + GAP
            if self.link:
                bus = cy + BUS / 2 - 1
                colour = CLASS_COLOURS.get(self.tag or "", "#999") if many else "#999"
                if many and self.tag:
                    pw = _tw(self.tag, SMALL) + 10
                    out.append(f'<path class="link" d="M{_f(x + PAD + pw)} {_f(bus)}H{_f(centres[-1])}" '
                               f'stroke="{colour}"/>')
                for cxx in centres:
                    out.append(f'<path class="link" d="M{_f(cxx)} {_f(bus)}V{_f(top)}" stroke="{colour}"/>')
                if many and self.tag:
                    out.append(f'<g class="tag" data-tag="{self.tag}"><rect x="{_f(x + PAD)}" y="{_f(bus - 6.5)}" '
                               f'width="{_f(pw)}" height="13" rx="3" fill="{colour}"/>')
                    _text(out, x + PAD + pw / 2, bus + 3.2, self.tag, "small tag-text", "middle", "#fff")
                    out.append("</g>")
            cx = x + PAD
            for c in row:
                c.emit(cx, top, out)
                cx += c.w + GAP
            cy = top + max(c.h for c in row)
        out.append("</g>")


# -- the PCIe tree as distance-class clusters ------------------------------------

@dataclass
class _End:
    """A GPU or NIC endpoint of the PCIe tree."""

    kind: str                       # "gpu" or "nic"
    address: str
    numa: int | None
    host_bridge: str
    chain: tuple[str, ...]          # the function, then each bridge above it
    gpu: Gpu | None = None
    nic: Nic | None = None


def _chain(address: str, pci: dict[str, PciFunction]) -> tuple[str, ...]:
    out = [address]
    seen = {address}
    f = pci.get(address)
    while f is not None and f.parent and f.parent not in seen:
        out.append(f.parent)
        seen.add(f.parent)
        f = pci.get(f.parent)
    return tuple(out)


def _pair_class(a: _End, b: _End) -> DistanceClass:
    """The class of two endpoints under one host bridge (the C core's rule)."""
    for i, x in enumerate(a.chain[1:], 1):
        if x in b.chain[1:]:
            j = b.chain.index(x)
            return DistanceClass.PIX if i <= 2 and j <= 2 else DistanceClass.PXB
    return DistanceClass.PHB


def _clusters(items: list[list[_End]], joined: DistanceClass) -> list[list[list[_End]]]:
    """Groups of ``items`` (lists of endpoints) joined where any two endpoints
    of two items are at most ``joined`` apart; order kept."""
    parent = list(range(len(items)))

    def find(i: int) -> int:
        while parent[i] != i:
            parent[i] = parent[parent[i]]
            i = parent[i]
        return i

    for i in range(len(items)):
        for j in range(i + 1, len(items)):
            if any(_pair_class(a, b) <= joined for a in items[i] for b in items[j]):
                parent[find(j)] = find(i)
    groups: dict[int, list[list[_End]]] = {}
    for i, it in enumerate(items):
        groups.setdefault(find(i), []).append(it)
    return list(groups.values())


def _worst(ends: list[_End]) -> DistanceClass:
    worst = DistanceClass.PIX
    for i, a in enumerate(ends):
        for b in ends[i + 1:]:
            worst = max(worst, _pair_class(a, b))
    return worst


def _common(ends: list[_End]) -> str | None:
    """The lowest bridge above every endpoint."""
    shared = set(ends[0].chain[1:])
    for e in ends[1:]:
        shared &= set(e.chain[1:])
    for x in ends[0].chain[1:]:
        if x in shared:
            return x
    return None


def _bdf_key(address: str) -> tuple[int, ...]:
    try:
        dom, bus, rest = address.split(":")
        dev, fn = rest.split(".")
        return (int(dom, 16), int(bus, 16), int(dev, 16), int(fn))
    except ValueError:
        return (1 << 30,)


# -- the drawing -----------------------------------------------------------------

class _View:
    """What the drawing needs to know about the topology and the plan."""

    def __init__(self, topo: Topology, plan: Plan | None) -> None:
        self.topo, self.plan = topo, plan
        self.allowed = set(topo.allowed_cpus)
        digits = len(str(max((c.id for c in topo.cpus), default=0)))
        self.thread_w = max(16.0, digits * SMALL * ADVANCE + 5)
        self.cpu_ranks: dict[int, list[int]] = defaultdict(list)
        self.mem_ranks: dict[int, list[int]] = defaultdict(list)
        self.gpu_ranks: dict[str, list[RankPlan]] = defaultdict(list)
        self.nic_ranks: dict[str, list[RankPlan]] = defaultdict(list)
        self.gradients: dict[tuple[int, ...], str] = {}
        for r in plan.ranks if plan else ():
            for c in r.cpus:
                self.cpu_ranks[c].append(r.local_rank)
            if r.mem_policy not in ("default", "local"):
                for n in r.mem_nodes:
                    self.mem_ranks[n].append(r.local_rank)
            if r.gpu_pci:
                self.gpu_ranks[r.gpu_pci].append(r)
            if r.hca:
                self.nic_ranks[r.hca].append(r)

    def cpu_style(self, cpu: int) -> tuple[str, str, str]:
        """Fill, text colour and tooltip suffix of a CPU cell."""
        ranks = self.cpu_ranks.get(cpu, [])
        if len(ranks) == 1:
            colour = _rank_colour(ranks[0])
            return colour, _ink(colour), f": rank {ranks[0]}"
        if ranks:
            key = tuple(ranks)
            gid = self.gradients.setdefault(key, f"shared{len(self.gradients)}")
            return f"url(#{gid})", "#000", ": shared by ranks " + ",".join(map(str, ranks))
        if cpu not in self.allowed:
            return "#d5d5d5", "#8a8a8a", ": not in this process's allowed CPUs"
        return "#f4f6f8", "#333", ""

    def cpu_data(self, cpu: int) -> str:
        ranks = self.cpu_ranks.get(cpu, [])
        return f' data-ranks="{",".join(map(str, ranks))}"' if ranks else ""

    def defs(self) -> list[str]:
        out = []
        for ranks, gid in self.gradients.items():
            stops = []
            for i, r in enumerate(ranks):
                c = _rank_colour(r)
                stops.append(f'<stop offset="{i / len(ranks):.4f}" stop-color="{c}"/>'
                             f'<stop offset="{(i + 1) / len(ranks):.4f}" stop-color="{c}"/>')
            out.append(f'<linearGradient id="{gid}" x1="0" x2="1" y1="0" y2="0">{"".join(stops)}</linearGradient>')
        return out

    # -- devices -------------------------------------------------------------

    def gpu_item(self, e: _End) -> _Device:
        g = e.gpu
        assert g is not None
        visible = any(v.pci_address == g.pci_address for v in self.topo.gpus)
        node = "NUMA unknown" if g.numa_node is None else f"NUMA {g.numa_node}"
        data = {"gpu": g.pci_address}
        ranks = self.gpu_ranks.get(g.pci_address, [])
        if not visible:
            title = f"GPU (physical {g.physical_index})"
            lines = [g.pci_address, node, "hidden: CUDA_VISIBLE_DEVICES"]
            tip = f"GPU {g.pci_address}, hidden by CUDA_VISIBLE_DEVICES"
            return _Device(title, lines, "gpu hidden" + (" unknown" if g.numa_node is None else ""),
                           data, tip)
        v = next(v for v in self.topo.gpus if v.pci_address == g.pci_address)
        data["index"] = str(v.index)
        title = f"GPU {v.index}" + (f" (phys {v.physical_index})" if v.physical_index != v.index else "")
        lines = [g.pci_address, node]
        if ranks:
            for r in ranks:
                lines.append(f"NIC {r.hca}:{r.hca_port} {r.distance}" if r.hca else "no RDMA NIC")
        elif self.topo.nics:
            classes = [(self.topo.distance(v, n), n.name) for n in self.topo.nics]
            best = min(c for c, _ in classes)
            names = [n for c, n in classes if c == best]
            lines.append(f"{best.name}: {names[0]}" + (f" +{len(names) - 1}" if len(names) > 1 else ""))
        tip = (f"GPU {v.index} {g.pci_address}, {node}"
               + (f", uuid {g.uuid}" if g.uuid else "")
               + "".join(f"; rank {r.local_rank}" for r in ranks))
        pills = [_Pill(f"rank {r.local_rank}", _rank_colour(r.local_rank)) for r in ranks]
        fill = _tint(_rank_colour(ranks[0].local_rank)) if len(ranks) == 1 else ""
        stroke = _rank_colour(ranks[0].local_rank) if len(ranks) == 1 else ""
        if ranks:
            data["ranks"] = ",".join(str(r.local_rank) for r in ranks)
        return _Device(title, lines, "gpu" + (" unknown" if g.numa_node is None else ""), data, tip,
                       pills, fill, stroke)

    def nic_item(self, n: Nic) -> _Device:
        lines = [n.pci_address or "no PCI function"]
        for p in n.ports:
            layer = {"InfiniBand": "IB", "Ethernet": "Eth"}.get(p.link_layer or "", "?")
            rate = f"{p.rate_gbps:g}G" if p.rate_gbps else "?"
            lines.append(f"p{p.port} {layer} {rate} {p.state}")
        if n.netdev:
            lines.append(n.netdev + (" (soft)" if n.virtual else ""))
        if n.numa_node is None:
            lines.append("NUMA unknown")
        ranks = self.nic_ranks.get(n.name, [])
        data = {"nic": n.name}
        if ranks:
            data["ranks"] = ",".join(str(r.local_rank) for r in ranks)
        tip = f"RDMA NIC {n.name} {n.pci_address or ''}" + "".join(f"; rank {r.local_rank}" for r in ranks)
        pills = [_Pill(f"rank {r.local_rank}", _rank_colour(r.local_rank)) for r in ranks]
        fill = _tint(_rank_colour(ranks[0].local_rank)) if len(ranks) == 1 else ""
        stroke = _rank_colour(ranks[0].local_rank) if len(ranks) == 1 else ""
        return _Device(n.name, lines, "nic" + (" unknown" if n.numa_node is None else ""), data, tip,
                       pills, fill, stroke)

    def end_item(self, e: _End) -> _Device:
        if e.gpu is not None:
            return self.gpu_item(e)
        assert e.nic is not None
        return self.nic_item(e.nic)

    # -- the PCIe tree -------------------------------------------------------------

    def host_bridge_box(self, name: str, ends: list[_End]) -> _Box:
        pix = _clusters([[e] for e in ends], DistanceClass.PIX)
        pix_groups = [[e for item in g for e in item] for g in pix]
        pxb = _clusters(pix_groups, DistanceClass.PXB)
        children: list[_Item] = []
        for group in pxb:
            inner: list[_Item] = []
            for sw in group:
                if len(sw) == 1:
                    inner.append(self.end_item(sw[0]))
                    continue
                worst = _worst(sw)
                common = _common(sw)
                inner.append(_Box("PCIe switch" if worst == DistanceClass.PIX else "PCIe bridge",
                                  [common or ""], "switch", [self.end_item(e) for e in sw],
                                  tag=worst.name, title_size=SIZE,
                                  tooltip=f"devices below {common}: {worst.name} to each other"))
            if len(group) == 1:
                children += inner
            else:
                flat = [e for sw in group for e in sw]
                worst = _worst(flat)
                common = _common(flat)
                children.append(_Box("PCIe bridges", [f"below {common}"], "switch", inner, tag=worst.name,
                                     title_size=SIZE,
                                     tooltip=f"devices below {common}: {worst.name} or closer"))
        return _Box("host bridge", [name], "hostbridge", children, tag="PHB", title_size=SIZE,
                    tooltip=f"PCIe host bridge {name}: PHB between its switches")

    def io(self) -> tuple[dict[int | None, list[_Box]], list[Nic]]:
        """Host bridge boxes by NUMA node (None: unknown), and NICs with no PCI function."""
        pci = {p.address: p for p in self.topo.pci}
        ends: list[_End] = []
        loose: list[Nic] = []
        for g in self.topo.all_gpus:
            f = pci.get(g.pci_address)
            ends.append(_End("gpu", g.pci_address, f.numa_node if f else g.numa_node,
                             f.host_bridge if f else "?", _chain(g.pci_address, pci), gpu=g))
        for n in self.topo.nics:
            if not n.pci_address:
                loose.append(n)
                continue
            f = pci.get(n.pci_address)
            ends.append(_End("nic", n.pci_address, f.numa_node if f else n.numa_node,
                             f.host_bridge if f else "?", _chain(n.pci_address, pci), nic=n))
        ends.sort(key=lambda e: (_bdf_key(e.address), e.kind, e.nic.name if e.nic else ""))
        by_hb: dict[str, list[_End]] = {}
        for e in ends:
            by_hb.setdefault(e.host_bridge, []).append(e)
        out: dict[int | None, list[_Box]] = defaultdict(list)
        for name, group in by_hb.items():
            out[group[0].numa].append(self.host_bridge_box(name, group))
        return out, loose


def _node_box(view: _View, node_id: int, io: list[_Box]) -> _Box:
    topo = view.topo
    node = topo.node(node_id)
    by_core: dict[int, list[int]] = defaultdict(list)
    l3_of: dict[int, int | None] = {}
    for c in topo.cpus:
        if c.node == node_id:
            by_core[c.core].append(c.id)
            l3_of.setdefault(c.core, c.l3)
    cores = sorted((_Core(tuple(sorted(cpus)), core) for core, cpus in by_core.items()),
                   key=lambda c: c.cpus[0])
    children: list[_Item] = []
    domains = sorted({l3_of[c.core] for c in cores}, key=lambda d: -1 if d is None else d)
    if len(domains) > 1:
        groups = [_Cores([c for c in cores if l3_of[c.core] == d], view,
                         "L3 ?" if d is None else f"L3 #{d}") for d in domains]
        for g in groups:
            g.stretch = False
        children.append(_Box("", [], "l3set", list(groups)))
    elif cores:
        children.append(_Cores(cores, view))
    if io:
        children.append(_Box("", [], "io", list(io), tag="NODE",
                             tooltip=f"PCIe of NUMA node {node_id}: NODE between its host bridges"))
    threads = max((len(c.cpus) for c in cores), default=0)
    lines = [f"memory {_gib(node.mem_total_bytes)}"]
    if node.has_cpus:
        lines.append(f"CPUs {_core.format_cpulist(node.cpus)}: {len(cores)} cores"
                     + (f" x {threads} threads" if threads > 1 else ""))
    else:
        lines.append("no CPUs (memory only)")
    ranks = view.mem_ranks.get(node_id, [])
    pills = [_Pill(f"r{r}", _rank_colour(r)) for r in ranks]
    pill_data = [{"mem-rank": str(r)} for r in ranks]
    return _Box(f"NUMA node {node_id}", lines, "node" + ("" if node.has_cpus else " cpuless"),
                children, data={"node": str(node_id)}, stack=True, pills=pills, pill_data=pill_data,
                tooltip=f"NUMA node {node_id}: {_gib(node.mem_total_bytes)}, distances "
                        + " ".join(map(str, node.distances)))


def _legend(view: _View, limit: float) -> _Box:
    rows: list[_Item] = []
    if view.topo.all_gpus or view.topo.nics:
        rows.append(_Note([("Distance classes", "title")]
                          + [(f"{k:<4} {v}", "class:" + k) for k, v in CLASS_MEANING.items()]
                          + [("The innermost box holding a GPU and a NIC, and its label, give their class.", "")]))
    keys: list[tuple[str, str]] = [
        ("cpu", "a CPU (an outlined cell holds a core's SMT siblings)"),
        ("cpu-off", "a CPU outside this process's allowed set"),
        ("gpu", "a GPU (its line: closest NIC and class, or the rank's NIC)"),
        ("nic", "an RDMA NIC (ports: link layer, rate, state)"),
        ("unknown", "dashed: NUMA locality unknown (numa_node -1)"),
    ]
    if view.plan is not None:
        keys.append(("shared", "a CPU shared by several ranks (stripes of their colours)"))
    rows.append(_Swatches(keys, view))
    if view.plan is not None:
        lines: list[tuple[str, str]] = [("Ranks (cores, memory node, GPU and NIC in the rank's colour)", "title")]
        fmt = _core.format_cpulist
        for r in view.plan.ranks:
            where = "locality unknown" if r.numa_node is None else f"node {r.numa_node}"
            nic = f"NIC {r.hca}:{r.hca_port} {r.distance}" if r.hca else "no RDMA NIC"
            gpu = f"GPU {r.gpu} {r.gpu_pci}" if r.gpu is not None else "no GPU"
            text = (f"rank {r.local_rank}: {gpu}, {where}, CPUs {fmt(r.cpus) or '-'} ({r.cpu_policy}), "
                    f"memory {r.mem_policy} {fmt(r.mem_nodes) or '-'}, {nic}")
            lines.append((text, f"rank:{r.local_rank}"))
            if r.note:
                lines.append(("    " + r.note, ""))
        rows.append(_Note(lines))
    return _Box("Legend", [], "legend", rows, stack=True)


class _Note(_Item):
    """Lines of text; a line styled "class:PIX" or "rank:3" starts with a swatch."""

    def __init__(self, lines: list[tuple[str, str]]) -> None:
        self.lines = lines

    def measure(self, limit: float, prefer: float = 0.0) -> None:
        self.limit = limit
        self.w = min(max(_tw(t, TITLE if s == "title" else SIZE) + (22 if ":" in s else 0)
                         for t, s in self.lines), limit)
        self.h = LINE * len(self.lines)

    def emit(self, x: float, y: float, out: list[str]) -> None:
        out.append('<g class="note">')
        for i, (text, style) in enumerate(self.lines):
            ty = y + 10.5 + i * LINE
            if style == "title":
                _text(out, x, ty, _fit(text, self.limit, TITLE), "title")
            elif style.startswith("class:"):
                c = CLASS_COLOURS[style[6:]]
                out.append(f'<rect x="{_f(x)}" y="{_f(ty - 9)}" width="16" height="11" rx="2" fill="{c}"/>')
                _text(out, x + 22, ty, _fit(text, self.limit - 22))
            elif style.startswith("rank:"):
                r = int(style[5:])
                out.append(f'<rect class="rank-key" data-rank="{r}" x="{_f(x)}" y="{_f(ty - 9)}" width="16" '
                           f'height="11" rx="2" fill="{_rank_colour(r)}"/>')
                _text(out, x + 22, ty, _fit(text, self.limit - 22))
            else:
                _text(out, x, ty, _fit(text, self.limit), "muted")
        out.append("</g>")


class _Swatches(_Item):
    def __init__(self, keys: list[tuple[str, str]], view: _View) -> None:
        self.keys, self.view = keys, view

    def measure(self, limit: float, prefer: float = 0.0) -> None:
        self.limit = limit
        self.w = min(max(_tw(t) for _, t in self.keys) + 34, limit)
        self.h = len(self.keys) * (LINE + 2)

    def emit(self, x: float, y: float, out: list[str]) -> None:
        out.append('<g class="swatches">')
        for i, (key, text) in enumerate(self.keys):
            ty = y + i * (LINE + 2)
            sx, sy, sw, sh = _f(x), _f(ty), "26", "13"
            if key == "cpu":
                out.append(f'<rect x="{sx}" y="{sy}" width="{sw}" height="{sh}" fill="#f4f6f8" class="core-box"/>')
            elif key == "cpu-off":
                out.append(f'<rect x="{sx}" y="{sy}" width="{sw}" height="{sh}" fill="#d5d5d5"/>')
            elif key == "gpu":
                out.append(f'<g class="gpu"><rect x="{sx}" y="{sy}" width="{sw}" height="{sh}" rx="3"/></g>')
            elif key == "nic":
                out.append(f'<g class="nic"><rect x="{sx}" y="{sy}" width="{sw}" height="{sh}" rx="3"/></g>')
            elif key == "unknown":
                out.append(f'<g class="gpu unknown"><rect x="{sx}" y="{sy}" width="{sw}" height="{sh}" rx="3"/></g>')
            elif key == "shared":
                colours = RANK_COLOURS[:3]
                for j, c in enumerate(colours):
                    out.append(f'<rect x="{_f(x + j * 26 / 3)}" y="{sy}" width="{_f(26 / 3)}" height="{sh}" '
                               f'fill="{c}"/>')
            _text(out, x + 34, ty + 10.5, _fit(text, self.limit - 34))
        out.append("</g>")


_STYLE = f"""
text{{font-family:{FONT};font-size:{SIZE}px;fill:#222}}
.title{{font-size:{TITLE}px;font-weight:bold}}
.small{{font-size:{SMALL}px}}
.muted{{fill:#555}}
.tag-text{{font-weight:bold}}
.link{{fill:none;stroke-width:2}}
.box>rect{{stroke-width:1.2}}
.machine>rect{{fill:#fcfcfc;stroke:#444}}
.package>rect{{fill:#f1f1f1;stroke:#777}}
.node>rect{{fill:#fff;stroke:#333;stroke-width:1.6}}
.cpuless>rect,.unknownloc>rect{{stroke-dasharray:6 3}}
.unknownloc>rect{{fill:#f6f6f6;stroke:#888}}
.l3set>rect{{fill:none;stroke:none}}
.io>rect{{fill:#f6f8fb;stroke:#c3ccd8}}
.hostbridge>rect{{fill:#edf1f7;stroke:#8595ad}}
.switch>rect{{fill:#e9f3e9;stroke:#7ea47e}}
.gpu>rect{{fill:#e3f2c8;stroke:#5b8c14}}
.nic>rect{{fill:#d8e8f8;stroke:#2f6aa8}}
.hidden>rect{{fill:#eee;stroke:#aaa}}
.unknown>rect{{stroke-dasharray:5 3}}
.legend>rect{{fill:#fff;stroke:#bbb}}
.core-box{{fill:#fff;stroke:#9aa3ad;stroke-width:1}}
""".strip()


def render(topology: Topology, plan: Plan | Sequence[RankPlan] | None = None, *,
           title: str | None = None) -> str:
    """The topology (and ``plan``'s ranks, if given) as an SVG document.

    ``plan`` is a :class:`numabind.Plan` (or a sequence of its
    :class:`numabind.RankPlan`) computed on ``topology``; ``title`` replaces
    the default first line (which names the host or ``NUMABIND_FSROOT``).
    """
    if plan is not None and not isinstance(plan, Plan):
        plan = Plan(tuple(plan))
    topo = topology
    view = _View(topo, plan)
    io, loose = view.io()

    packages: dict[int, list[int]] = defaultdict(list)
    memory_only: list[int] = []
    for n in topo.nodes:
        pkgs = sorted({c.package for c in topo.cpus if c.node == n.id})
        if pkgs:
            packages[pkgs[0]].append(n.id)
        else:
            memory_only.append(n.id)
    top: list[_Item] = []
    for p in sorted(packages):
        nodes = [_node_box(view, nid, io.pop(nid, [])) for nid in packages[p]]
        top.append(_Box(f"Package {p}", [], "package", list(nodes), data={"package": str(p)}))
    for nid in memory_only:
        top.append(_node_box(view, nid, io.pop(nid, [])))
    unknown = io.pop(None, [])
    for rest in io.values():   # host bridges on a node the node list lacks
        unknown += rest
    if unknown:
        top.append(_Box("NUMA node unknown", ["numa_node -1: SYS to everything",
                                              "outside its own host bridge"],
                        "unknownloc", list(unknown), tag="SYS", data={"node": "unknown"}))
    if loose:
        top.append(_Box("No PCI function", ["SYS to every GPU"], "unknownloc",
                        [view.nic_item(n) for n in loose], tag="SYS"))

    where = "this host" if topo.live else topo.fsroot
    heading = title or f"numabind {_core.VERSION_STRING}: {'plan on' if plan else 'topology of'} {where}"
    summary = (f"{len(topo.nodes)} NUMA node{'s' if len(topo.nodes) != 1 else ''}, {len(topo.cpus)} CPUs, "
               f"{len(topo.gpus)} GPU{'s' if len(topo.gpus) != 1 else ''}"
               + (f" ({len(topo.all_gpus) - len(topo.gpus)} hidden)" if len(topo.all_gpus) > len(topo.gpus) else "")
               + f", {len(topo.nics)} RDMA NIC{'s' if len(topo.nics) != 1 else ''}"
               + f"; allowed CPUs {_core.format_cpulist(topo.allowed_cpus) or '-'}, "
               + f"memory nodes {_core.format_cpulist(topo.allowed_mems) or '-'}")
    if not topo.gpus and not topo.all_gpus:
        summary += "; no NVIDIA GPU"
    machine = _Box(_fit(heading, MAX_WIDTH - 2 * PAD, TITLE), [_fit(summary, MAX_WIDTH - 2 * PAD)],
                   "machine", top, tag="SYS", tooltip="SYS between NUMA nodes")
    machine.measure(MAX_WIDTH)
    legend = _legend(view, MAX_WIDTH)
    legend.measure(max(machine.w, 640.0))
    margin = 10.0
    width = max(machine.w, legend.w) + 2 * margin
    height = machine.h + GAP + legend.h + 2 * margin
    body: list[str] = []
    machine.emit(margin, margin, body)
    legend.emit(margin, margin + machine.h + GAP, body)
    head = [
        '<?xml version="1.0" encoding="UTF-8"?>',
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{_f(width)}" height="{_f(height)}" '
        f'viewBox="0 0 {_f(width)} {_f(height)}" class="numabind" data-generator="numabind '
        f'{_core.VERSION_STRING}">',
        f"<title>{_esc(heading)}</title>",
        f"<style>{_STYLE}</style>",
        "<defs>" + "".join(view.defs()) + "</defs>",
        f'<rect class="page" x="0" y="0" width="{_f(width)}" height="{_f(height)}" fill="#fff"/>',
    ]
    return "\n".join(head + body + ["</svg>", ""])


def write(path: Union[str, os.PathLike[str]], topology: Topology,
          plan: Plan | Sequence[RankPlan] | None = None, *, title: str | None = None) -> None:
    """Writes :func:`render`'s SVG to ``path`` (UTF-8)."""
    text = render(topology, plan, title=title)
    with open(path, "w", encoding="utf-8") as f:
        f.write(text)
