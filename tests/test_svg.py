"""numabind.svg and ``numabind show/plan --svg``: the drawing of a machine and
of a plan.

Every machine description (and conftest's synthetic machine) is drawn from its
fixture tree. The SVG must be well-formed, name every GPU, NIC and NUMA node,
put every CPU in its node once, and nest GPUs and NICs so that the innermost
box holding a pair carries the pair's class -- checked against
tests/reference.py, which computes classes from the description, not through
numabind. Headless Chromium (Debian's ``chromium``) then lays every drawing
out for real: no element may leave the page, no box its parent, no text its
box, and no two sibling boxes may overlap; two drawings are screenshotted and
the PNGs must hold the drawing (colours of the ranks and classes, content up
to the margin, nothing cut at the edge). Without chromium these browser tests
skip locally and fail in CI (``CI=true``), where tools/dev.sh installs it.
"""
from __future__ import annotations

import copy
import os
import re
import subprocess
import sys
import xml.etree.ElementTree as ET
from collections import Counter
from pathlib import Path

import pytest

import reference as ref
import svg_browser as browser
from conftest import DESCRIBED, Machine, describe

import numabind
import numabind.svg as nsvg

IN_CI = os.environ.get("CI", "").lower() in ("1", "true", "yes")
NS = "{http://www.w3.org/2000/svg}"
ITEM_CLASSES = ("box", "core", "cpu", "pill", "tag")


# -- helpers -------------------------------------------------------------------

WITH_GPUS = [n for n in DESCRIBED if ref.gpus(describe(n))]
WITH_PAIRS = [n for n in WITH_GPUS if ref.nics(describe(n))]


def machine_named(tree, name: str) -> Machine:
    desc = describe(name)
    return Machine(name, desc, tree(copy.deepcopy(desc)))

def plan_kwargs(name: str) -> dict:
    # The synthetic machine's allowed memory nodes (0,3) exclude node 1, where
    # GPU 2 sits: plan the other four GPUs (one of them of unknown locality).
    return {"gpus": [0, 1, 3, 4]} if name == "synthetic" else {}


def draw(machine, with_plan: bool = False) -> tuple[str, numabind.Topology, numabind.Plan | None]:
    topo = numabind.topology(machine.root)
    plan = numabind.plan(topology=topo, **plan_kwargs(machine.name)) if with_plan else None
    return nsvg.render(topo, plan, title=f"{machine.name} fixture"), topo, plan


class Drawing:
    """The parsed SVG with parent links and data-* lookups."""

    def __init__(self, text: str) -> None:
        self.text = text
        self.root = ET.fromstring(text.encode("utf-8"))
        self.parent = {c: p for p in self.root.iter() for c in p}

    def all(self, attr: str, value: str | None = None) -> list[ET.Element]:
        key = f"data-{attr}"
        return [e for e in self.root.iter() if key in e.attrib and (value is None or e.get(key) == value)]

    def one(self, attr: str, value: str) -> ET.Element:
        hits = self.all(attr, value)
        assert len(hits) == 1, f"{len(hits)} elements with data-{attr}={value!r}"
        return hits[0]

    def ancestors(self, e: ET.Element) -> list[ET.Element]:
        out = []
        while e in self.parent:
            e = self.parent[e]
            out.append(e)
        return out

    def texts(self, e: ET.Element | None = None) -> list[str]:
        return ["".join(t.itertext()) for t in (e if e is not None else self.root).iter(NS + "text")]

    def classes(self, e: ET.Element) -> set[str]:
        return set((e.get("class") or "").split())

    def outline(self, e: ET.Element) -> tuple[float, float, float, float]:
        r = e.find(NS + "rect")
        assert r is not None, e.attrib
        return tuple(float(r.get(k)) for k in ("x", "y", "width", "height"))  # type: ignore[return-value]


def gib(n: int) -> str:
    return f"{n / (1 << 30):.1f} GiB"


# -- structure: every description ------------------------------------------------

def test_well_formed_and_names_everything(described):
    text, topo, _ = draw(described)
    d = Drawing(text)
    desc = described.desc
    assert d.root.tag == NS + "svg"
    w, h = float(d.root.get("width")), float(d.root.get("height"))
    assert d.root.get("viewBox") == f"0 0 {d.root.get('width')} {d.root.get('height')}"
    assert 200 < w <= 1800 and 200 < h, (w, h)
    texts = d.texts()
    joined = "\n".join(texts)

    for i, g in enumerate(ref.gpus(desc)):
        e = d.one("gpu", g["bdf"])
        mine = d.texts(e)
        assert f"GPU {i}" in mine and g["bdf"] in mine, mine
        assert ("NUMA unknown" if g["numa"] is None else f"NUMA {g['numa']}") in mine
        assert ("unknown" in d.classes(e)) == (g["numa"] is None)
    assert len(d.all("gpu")) == len(ref.gpus(desc))

    for n in ref.nics(desc):
        e = d.one("nic", n["name"])
        mine = d.texts(e)
        assert mine[0] == n["name"] and n["bdf"] in mine, mine
        layer = {"InfiniBand": "IB", "Ethernet": "Eth"}[n["link_layer"]]
        assert sum(1 for t in mine if re.fullmatch(rf"p\d {layer} {n['rate_gbps']:g}G {n['state']}", t)) == n["ports"]
    assert len(d.all("nic")) == len(ref.nics(desc))

    nodes = ref.nodes(desc)
    where: dict[int, int] = {}
    for n in nodes:
        e = d.one("node", str(n["id"]))
        mine = d.texts(e)
        assert mine[0] == f"NUMA node {n['id']}"
        assert f"memory {gib(n['mem_bytes'])}" in mine, mine
        assert ("no CPUs (memory only)" in mine) == (not n["has_cpus"])
        assert ("cpuless" in d.classes(e)) == (not n["has_cpus"])
        for cell in e.iter():
            if "data-cpu" in cell.attrib:
                where[int(cell.get("data-cpu"))] = n["id"]
    cpus = [int(c.get("data-cpu")) for c in d.all("cpu")]
    assert sorted(cpus) == sorted(c for n in nodes for c in n["cpus"]), "every CPU drawn once"
    assert where == {c: n["id"] for n in nodes for c in n["cpus"]}, "every CPU in its own node's box"

    # SMT siblings share one core cell, as the topology groups them
    cells = {tuple(sorted(int(c.get("data-cpu")) for c in core if "data-cpu" in c.attrib))
             for core in d.all("core")}
    assert cells == {tuple(sorted(c)) for c in topo.cores}

    # CPUs outside the allowed set are drawn so (their tooltip says it)
    allowed = set(ref.allowed(desc)["cpus"])
    for cell in d.all("cpu"):
        tip = "".join(cell.find(NS + "title").itertext())
        assert ("not in this process's allowed CPUs" in tip) == (int(cell.get("data-cpu")) not in allowed), tip
    assert "Legend" in texts
    assert ("Distance classes" in texts) == bool(ref.gpus(desc) or ref.nics(desc))
    assert joined.count("NUMA node unknown") == (1 if any(
        x["numa"] is None for x in ref.gpus(desc) + ref.nics(desc)) else 0)


@pytest.mark.parametrize("name", WITH_PAIRS)
def test_pairs_meet_in_a_box_of_their_class(tree, name):
    """The innermost box holding a GPU and a NIC carries, and shows, their class."""
    described = machine_named(tree, name)
    d = Drawing(draw(described)[0])
    mat = ref.class_matrix(described.desc)
    seen = Counter()
    for gpu, row in mat.items():
        g_up = d.ancestors(d.one("gpu", gpu))
        for nic, want in row.items():
            n_up = set(d.ancestors(d.one("nic", nic)))
            meet = next(e for e in g_up if e in n_up and "data-class" in e.attrib)
            assert meet.get("data-class") == want, (gpu, nic, meet.attrib)
            tags = [t.get("data-tag") for t in meet if "data-tag" in t.attrib]
            assert tags and set(tags) == {want}, (gpu, nic, tags)
            seen[want] += 1
    assert seen, "no pair checked"


def test_soft_roce_drawn_where_it_runs(tree, synthetic):
    """Soft-RoCE over a PCI netdev sits on that function's place; over a
    netdev with no device (lo), in the "No PCI function" box, SYS to all."""
    topo = numabind.topology(tree(synthetic, soft_roce={"rxe0": "eno2", "rxe1": "enp130s0f0np0",
                                                        "rxe9": "lo"}))
    d = Drawing(nsvg.render(topo))
    assert "eno2 (soft)" in d.texts(d.one("nic", "rxe0"))
    assert "no PCI function" in d.texts(d.one("nic", "rxe9"))
    assert any("No PCI function" in d.texts(a)[:1] for a in d.ancestors(d.one("nic", "rxe9")))
    for g in topo.gpus:
        g_up = d.ancestors(d.one("gpu", g.pci_address))
        for n in topo.nics:
            n_up = set(d.ancestors(d.one("nic", n.name)))
            meet = next(e for e in g_up if e in n_up and "data-class" in e.attrib)
            assert meet.get("data-class") == topo.distance(g, n).name, (g.pci_address, n.name)


def test_layout_nests_without_overlap(described):
    """From the SVG's own coordinates: every box inside its parent, siblings
    apart, everything on the page (the browser test measures text too)."""
    for with_plan in (False, True):
        d = Drawing(draw(described, with_plan)[0])
        W, H = float(d.root.get("width")), float(d.root.get("height"))
        items = [e for e in d.root.iter() if d.classes(e) & set(ITEM_CLASSES) and e.tag == NS + "g"]
        assert items
        kids: dict[ET.Element | None, list[ET.Element]] = {}
        for e in items:
            p = next((a for a in d.ancestors(e) if a in set(items)), None)
            kids.setdefault(p, []).append(e)
            x, y, w, h = d.outline(e)
            assert 0 <= x and 0 <= y and x + w <= W and y + h <= H, e.attrib
            if p is not None:
                px, py, pw, ph = d.outline(p)
                assert px <= x and py <= y and x + w <= px + pw + 1e-6 and y + h <= py + ph + 1e-6, \
                    (e.attrib, p.attrib)
        for group in kids.values():
            boxes = [d.outline(e) for e in group]
            for i, a in enumerate(boxes):
                for b in boxes[i + 1:]:
                    apart = (a[0] + a[2] <= b[0] + 1e-6 or b[0] + b[2] <= a[0] + 1e-6
                             or a[1] + a[3] <= b[1] + 1e-6 or b[1] + b[3] <= a[1] + 1e-6)
                    assert apart, (a, b)


@pytest.fixture
def dgx(tree):
    return machine_named(tree, "dgx-h100")


def test_dgx_h100_drawing(dgx):
    """The 224-CPU, 8-GPU node: every CPU numbered, within the wrap width."""
    text, topo, plan = draw(dgx, with_plan=True)
    d = Drawing(text)
    assert float(d.root.get("width")) <= nsvg.MAX_WIDTH + 40
    assert len(d.all("cpu")) == 224 and len(d.all("core")) == 112
    assert {c.get("data-cpu") for c in d.all("cpu")} == {str(i) for i in range(224)}


# -- the plan ----------------------------------------------------------------------

@pytest.mark.parametrize("name", WITH_GPUS)
def test_plan_in_rank_colours(tree, name):
    described = machine_named(tree, name)
    text, topo, plan = draw(described, with_plan=True)
    d = Drawing(text)
    expected = {g["bdf"]: g for g in described.desc.get("expected", {}).get("gpus", [])}
    drawn_cpu_ranks = {int(c.get("data-cpu")): c.get("data-ranks") for c in d.all("cpu")}
    owners: dict[int, list[int]] = {}
    for r in plan.ranks:
        colour = nsvg.RANK_COLOURS[r.local_rank % len(nsvg.RANK_COLOURS)]
        for c in r.cpus:
            owners.setdefault(c, []).append(r.local_rank)
        gpu = d.one("gpu", r.gpu_pci)
        assert str(r.local_rank) in gpu.get("data-ranks", "").split(","), gpu.attrib
        assert f"rank {r.local_rank}" in d.texts(gpu)
        hca = expected[r.gpu_pci]["hca"] if r.gpu_pci in expected else r.hca
        assert hca == r.hca
        if hca is None:
            assert "no RDMA NIC" in d.texts(gpu)
        else:
            nic = d.one("nic", hca)
            assert str(r.local_rank) in nic.get("data-ranks", "").split(","), nic.attrib
            assert f"rank {r.local_rank}" in d.texts(nic)
            assert f"NIC {hca}:{r.hca_port} {r.distance}" in d.texts(gpu)
        if len([x for x in plan.ranks if x.gpu_pci == r.gpu_pci]) == 1:
            assert f"stroke:{colour};" in gpu.find(NS + "rect").get("style", ""), gpu.attrib
            if hca is not None and len([x for x in plan.ranks if x.hca == hca]) == 1:
                assert f"stroke:{colour};" in d.one("nic", hca).find(NS + "rect").get("style", "")
        key = next(e for e in d.root.iter() if e.get("class") == "rank-key" and e.get("data-rank") == str(r.local_rank))
        assert key.get("fill") == colour
        row = next(t for t in d.texts() if t.startswith(f"rank {r.local_rank}: "))
        assert ("locality unknown" in row) == (r.numa_node is None), row
        if r.mem_policy not in ("default", "local"):
            for m in r.mem_nodes:
                node = d.one("node", str(m))
                assert any(p.get("data-mem-rank") == str(r.local_rank) for p in node.iter()), m
    for cpu, ranks in drawn_cpu_ranks.items():
        want = owners.get(cpu)
        assert ranks == (",".join(map(str, want)) if want else None), cpu
        cell = next(c for c in d.one("cpu", str(cpu)) if c.tag == NS + "rect")
        if want and len(want) == 1:
            assert cell.get("fill") == nsvg.RANK_COLOURS[want[0] % len(nsvg.RANK_COLOURS)]
        elif want:
            assert cell.get("fill", "").startswith("url(#shared")


def test_shared_cpus_are_striped(tree, synthetic):
    topo = numabind.topology(tree(synthetic))
    plan = numabind.plan(topology=topo, gpus=[0, 1, 3, 4], policy="node")
    d = Drawing(nsvg.render(topo, plan))
    shared = [c for c in d.all("cpu") if "," in (c.get("data-ranks") or "")]
    assert shared, "policy node gives ranks 0, 1 and 3 the same CPUs"
    for c in shared:
        fill = next(x for x in c if x.tag == NS + "rect").get("fill")
        gid = re.fullmatch(r"url\(#(shared\d+)\)", fill).group(1)
        grad = next(g for g in d.root.iter(NS + "linearGradient") if g.get("id") == gid)
        colours = [s.get("stop-color") for s in grad][::2]
        ranks = [int(r) for r in c.get("data-ranks").split(",")]
        assert colours == [nsvg.RANK_COLOURS[r] for r in ranks]


def test_hidden_gpus_are_drawn_as_hidden(tree, monkeypatch):
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "6,2")
    topo = numabind.topology(tree("dgx-h100"))
    d = Drawing(nsvg.render(topo))
    gs = ref.gpus(describe("dgx-h100"))
    assert "GPU 0 (phys 6)" in d.texts(d.one("gpu", gs[6]["bdf"]))
    assert "GPU 1 (phys 2)" in d.texts(d.one("gpu", gs[2]["bdf"]))
    for i in (0, 1, 3, 4, 5, 7):
        e = d.one("gpu", gs[i]["bdf"])
        assert "hidden" in d.classes(e) and "hidden: CUDA_VISIBLE_DEVICES" in d.texts(e)


def test_render_takes_rank_sequences_and_titles(tree):
    topo = numabind.topology(tree("dgx-h100"))
    plan = numabind.plan(topology=topo)
    only = nsvg.render(topo, plan.ranks[3:4], title="rank 3 & <friends>")
    d = Drawing(only)
    assert {c.get("data-ranks") for c in d.all("cpu")} == {None, "3"}
    assert d.root.find(NS + "title").text == "rank 3 & <friends>"
    default = Drawing(nsvg.render(topo))
    assert os.path.realpath(tree("dgx-h100")) in default.root.find(NS + "title").text


def test_write(tmp_path, tree):
    topo = numabind.topology(tree("plain-2cpu-no-gpu"))
    out = tmp_path / "t.svg"
    nsvg.write(out, topo)
    assert out.read_text(encoding="utf-8") == nsvg.render(topo)


# -- the command line ----------------------------------------------------------------

def cli(*args: str, root: Path, env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    base = {k: v for k, v in os.environ.items() if k not in ("CUDA_VISIBLE_DEVICES", "CUDA_DEVICE_ORDER")}
    base.update(env or {}, NUMABIND_FSROOT=str(root))
    return subprocess.run([sys.executable, "-m", "numabind", *args], capture_output=True, text=True,
                          env=base, timeout=120)


def test_cli_show_svg(tree, tmp_path):
    root = tree("dgx-h100")
    out = tmp_path / "show.svg"
    p = cli("show", "--svg", str(out), root=root)
    assert p.returncode == 0 and p.stderr == "", p.stderr
    assert p.stdout.startswith("numabind ") and "GPU0" in p.stdout, "the text is still printed"
    d = Drawing(out.read_text(encoding="utf-8"))
    assert {g.get("data-gpu") for g in d.all("gpu")} == {g["bdf"] for g in ref.gpus(describe("dgx-h100"))}
    assert not d.all("ranks")
    assert out.read_text(encoding="utf-8") == nsvg.render(numabind.topology(root))

    p = cli("show", "--svg", "-", root=root)
    assert p.returncode == 0 and p.stdout == out.read_text(encoding="utf-8")


def test_cli_plan_svg(tree, tmp_path):
    root = tree("dgx-h100")
    out = tmp_path / "plan.svg"
    p = cli("plan", "--svg", str(out), "--local-rank", "5", root=root)
    assert p.returncode == 0, p.stderr
    assert p.stdout.splitlines()[1].split()[0] == "5"
    d = Drawing(out.read_text(encoding="utf-8"))
    assert {e.get("data-ranks") for e in d.all("ranks")} == {"5"}
    assert d.one("nic", "mlx5_9").get("data-ranks") == "5"

    p = cli("plan", "--svg", "-", "--policy", "socket", root=root)
    assert p.returncode == 0, p.stderr
    d = Drawing(p.stdout)
    assert {e.get("data-ranks") for e in d.all("cpu")} == {"0,1,2,3", "4,5,6,7"}


def test_cli_svg_unwritable(tree, tmp_path):
    out = tmp_path / "missing" / "x.svg"
    p = cli("show", "--svg", str(out), root=tree("plain-2cpu-no-gpu"))
    assert p.returncode == 74, p.stderr          # EX_IOERR: the output could not be written
    assert "Traceback" not in p.stderr
    assert p.stderr == f"numabind: error: cannot write {out}: No such file or directory\n", p.stderr


# -- in a browser -----------------------------------------------------------------------

@pytest.fixture(scope="session")
def chromium() -> str:
    exe = browser.find_chromium()
    if exe is None:
        msg = "no chromium on PATH (Debian: apt-get install chromium; tools/dev.sh installs it)"
        if IN_CI:
            pytest.fail(msg + " -- CI must run the browser tests")
        pytest.skip(msg)
    return exe


@pytest.fixture(scope="module")
def every_drawing(tree) -> dict[str, str]:
    out = {}
    for name in DESCRIBED:
        m = machine_named(tree, name)
        out[name] = draw(m)[0]
        if name in WITH_GPUS:
            out[name + "-plan"] = draw(m, with_plan=True)[0]
    return out


def test_browser_layout_of_every_drawing(chromium, every_drawing, tmp_path):
    res = browser.layout_problems(every_drawing, tmp_path)
    assert set(res) == set(every_drawing)
    for name, r in res.items():
        w, h = browser.svg_size(every_drawing[name])
        assert abs(r["width"] - w) <= 1 and abs(r["height"] - h) <= 1, (name, r["width"], r["height"])
        assert r["elements"] > 20 and r["items"] >= 4 and r["texts"] > 10, (name, r)
        problems = {k: v for k, v in r.items() if isinstance(v, list) and v}
        assert not problems, (name, problems)


def test_browser_check_finds_planted_faults(chromium, every_drawing, tmp_path):
    """The layout check is not vacuous: a text too long for its box, a box on
    top of its sibling, and a box past the page's edge are each reported."""
    base = every_drawing["dgx-h100"]
    long = base.replace(">mlx5_3</text>", ">mlx5_3 with a name far too long for its box</text>", 1)
    d = Drawing(base)
    gpu = d.one("gpu", "0000:43:00.0")
    # move NIC mlx5_3's outline (GPU 1's neighbour in one switch) onto GPU 1
    x = d.outline(gpu)[0]
    nx = d.outline(d.one("nic", "mlx5_3"))[0]
    overlap = base.replace(f'data-nic="mlx5_3">\n<rect x="{nsvg._f(nx)}"',
                           f'data-nic="mlx5_3">\n<rect x="{nsvg._f(x + 10)}"', 1)
    assert overlap != base
    W = float(d.root.get("width"))
    past = base.replace("</svg>", f'<g class="box"><rect x="{W - 5:g}" y="5" width="40" height="10"/></g></svg>')
    res = browser.layout_problems({"long": long, "overlap": overlap, "past": past, "clean": base}, tmp_path)
    assert any("mlx5_3 with a name" in t for t in res["long"]["text_outside"]), res["long"]
    assert any("mlx5_3" in t and "0000:43:00.0" in t for t in res["overlap"]["overlaps"]), res["overlap"]
    assert res["past"]["outside_page"], res["past"]
    assert not any(v for v in res["clean"].values() if isinstance(v, list))


@pytest.mark.parametrize("name, with_plan", [("dgx-h100", True), ("synthetic", False)])
def test_browser_screenshot(chromium, tree, tmp_path, name, with_plan):
    m = machine_named(tree, name)
    desc = m.desc
    text, topo, plan = draw(m, with_plan)
    svg = tmp_path / f"{name}.svg"
    svg.write_text(text, encoding="utf-8")
    png = tmp_path / f"{name}.png"
    browser.screenshot(svg, png)
    width, height, rows = browser.read_png(png)
    assert (width, height) == browser.svg_size(text)
    pixels = Counter(p for row in rows for p in row)
    white = pixels[(255, 255, 255)]
    assert white < 0.9 * width * height, "mostly blank"
    assert len(pixels) > 200, f"only {len(pixels)} colours"
    rgb = lambda c: tuple(int(c[i:i + 2], 16) for i in (1, 3, 5))  # noqa: E731
    if with_plan:
        for r in plan.ranks:
            colour = rgb(nsvg.RANK_COLOURS[r.local_rank % len(nsvg.RANK_COLOURS)])
            assert pixels[colour] > 500, (r.local_rank, pixels[colour])
    classes = {v for row in ref.class_matrix(desc).values() for v in row.values()}
    for c in classes:
        assert pixels[rgb(nsvg.CLASS_COLOURS[c])] > 100, c
    # the drawing reaches the margin on the right and at the bottom, and
    # nothing is cut at the edge: the outermost 4 pixels are page background
    near_right = {rows[y][x] for y in range(height) for x in range(width - 14, width - 8)}
    near_bottom = {p for y in range(height - 14, height - 8) for p in rows[y]}
    assert near_right - {(255, 255, 255)} and near_bottom - {(255, 255, 255)}
    edge = {rows[y][x] for y in range(height) for x in (*range(4), *range(width - 4, width))}
    edge |= {p for y in (*range(4), *range(height - 4, height)) for p in rows[y]}
    assert edge == {(255, 255, 255)}, edge
