#!/usr/bin/env python3
"""Regenerates docs/images: numabind's drawing of every described machine
(tests/machines/*.json and the synthetic machine of tests/conftest.py), of
the machine alone and with its default plan, as SVG and as a PNG screenshot
from headless Chromium.

    python tools/svg_examples.py [--out docs/images] [--no-png]

Run it with a Python that has numabind installed (e.g. .venv/bin/python
after `bash tools/dev.sh test`).
"""
from __future__ import annotations

import argparse
import copy
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO / "tests"))

import numabind  # noqa: E402
import numabind.svg as nsvg  # noqa: E402
import svg_browser  # noqa: E402
import sysfs_tree as st  # noqa: E402
from conftest import SYNTHETIC  # noqa: E402

# Plans drawn for the docs: the defaults, except on the synthetic machine,
# whose allowed memory nodes exclude GPU 2's node; there four GPUs under the
# `node` policy show CPUs shared by several ranks and a rank of unknown locality.
PLAN_OPTIONS = {"synthetic": {"gpus": [0, 1, 3, 4], "policy": "node"}}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", type=Path, default=REPO / "docs" / "images")
    ap.add_argument("--no-png", action="store_true", help="SVG only")
    args = ap.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    descs = {name: st.load(name) for name in st.MACHINES}
    descs["synthetic"] = copy.deepcopy(SYNTHETIC)
    with tempfile.TemporaryDirectory(prefix="numabind-svg-") as tmp:
        for name, desc in descs.items():
            root = Path(tmp) / name
            st.write_tree(copy.deepcopy(desc), root)
            topo = numabind.topology(root)
            source = "tests/conftest.py" if name == "synthetic" else f"tests/machines/{name}.json"
            opts = PLAN_OPTIONS.get(name, {})
            drawings = {name: nsvg.render(topo, title=f"{name} (fixture {source})")}
            if topo.gpus:
                plan = numabind.plan(topology=topo, **opts)
                how = " ".join(f"{k}={v}" for k, v in opts.items()) or "default options"
                drawings[f"{name}-plan"] = nsvg.render(
                    topo, plan, title=f"{name}: plan, {how} (fixture {source})")
            for stem, text in drawings.items():
                svg = args.out / f"{stem}.svg"
                svg.write_text(text, encoding="utf-8")
                if not args.no_png:
                    svg_browser.screenshot(svg, args.out / f"{stem}.png")
                print(f"wrote {svg.relative_to(REPO) if svg.is_relative_to(REPO) else svg}"
                      + ("" if args.no_png else " and .png"))
    return 0


if __name__ == "__main__":
    sys.exit(main())
