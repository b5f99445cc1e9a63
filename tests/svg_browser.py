"""Headless Chromium for numabind's SVG drawings: screenshots, and the real
layout of every box and text as the browser computes it.

Pure standard library; Debian's ``chromium`` package (tools/dev.sh installs
it). Used by tests/test_svg.py and tools/svg_examples.py.

``find_chromium()``                  the browser, or None ($NUMABIND_CHROMIUM overrides)
``screenshot(svg, png, w, h)``       the SVG file rendered at 1:1 into a PNG
``layout_problems(svgs, workdir)``   per SVG: elements outside the page, boxes
                                     overlapping their siblings or leaving their
                                     parent, text outside its box
``read_png(path)``                   (width, height, rows of RGB tuples)
"""
from __future__ import annotations

import html
import json
import os
import re
import shutil
import struct
import subprocess
import tempfile
import zlib
from pathlib import Path
from typing import Any

CANDIDATES = ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable")
TIMEOUT = 120


def find_chromium() -> str | None:
    override = os.environ.get("NUMABIND_CHROMIUM")
    if override:
        return shutil.which(override) or (override if os.access(override, os.X_OK) else None)
    for name in CANDIDATES:
        path = shutil.which(name)
        if path:
            return path
    return None


def _chromium(args: list[str]) -> subprocess.CompletedProcess[str]:
    exe = find_chromium()
    if exe is None:
        raise FileNotFoundError("no chromium on PATH")
    # Profile, HOME (fontconfig and crash caches) in one scratch directory, removed after.
    profile = tempfile.mkdtemp(prefix="numabind-chromium-")
    cmd = [exe, "--headless", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
           "--no-first-run", "--no-default-browser-check", "--disable-extensions",
           "--hide-scrollbars", "--force-device-scale-factor=1", "--mute-audio",
           f"--user-data-dir={profile}", *args]
    try:
        p = subprocess.run(cmd, capture_output=True, text=True, timeout=TIMEOUT,
                           env={**os.environ, "HOME": profile, "XDG_CONFIG_HOME": profile,
                                "XDG_CACHE_HOME": profile})
    finally:
        shutil.rmtree(profile, ignore_errors=True)
    return p


def svg_size(svg_text: str) -> tuple[int, int]:
    m = re.search(r'<svg[^>]*\swidth="([\d.]+)"[^>]*\sheight="([\d.]+)"', svg_text)
    if not m:
        raise ValueError("no width/height on the <svg> element")
    return int(-(-float(m.group(1)) // 1)), int(-(-float(m.group(2)) // 1))


def screenshot(svg: Path, png: Path, width: int | None = None, height: int | None = None) -> None:
    """Renders ``svg`` at 1:1 (window = the SVG's size unless given) into ``png``."""
    if width is None or height is None:
        width, height = svg_size(svg.read_text(encoding="utf-8"))
    png.unlink(missing_ok=True)
    p = _chromium([f"--screenshot={png}", f"--window-size={width},{height}",
                   svg.resolve().as_uri()])
    if not png.exists():
        raise RuntimeError(f"chromium wrote no screenshot (rc {p.returncode}): {p.stderr[-2000:]}")


# Runs in the page: for each <svg>, the problems of its layout as the browser
# measured it. "Items" are boxes (g.box), CPU cells, cores, pills and class
# tags; each has its outline as its first <rect>.
_CHECK_JS = r"""
(function () {
  const EPS = 0.75;
  const ITEM = 'g.box, g.core, g.cpu, g.pill, g.tag';
  function r(el) { const b = el.getBoundingClientRect();
    return {l: b.left, t: b.top, r: b.right, b: b.bottom, w: b.width, h: b.height}; }
  function inside(a, b) { return a.l >= b.l - EPS && a.t >= b.t - EPS && a.r <= b.r + EPS && a.b <= b.b + EPS; }
  function overlap(a, b) {
    const w = Math.min(a.r, b.r) - Math.max(a.l, b.l), h = Math.min(a.b, b.b) - Math.max(a.t, b.t);
    return w > EPS && h > EPS; }
  function desc(el) {
    let s = el.tagName.toLowerCase();
    if (el.getAttribute('class')) s += '.' + el.getAttribute('class').replace(/ /g, '.');
    for (const a of el.attributes) if (a.name.startsWith('data-')) s += '[' + a.name + '=' + a.value + ']';
    if (el.tagName.toLowerCase() === 'text') s += ' "' + el.textContent.slice(0, 60) + '"';
    return s; }
  function outline(item) { return item.querySelector(':scope > rect'); }
  function parentItem(el) { const p = el.parentElement; return p ? p.closest(ITEM) : null; }
  const results = [];
  for (const svg of document.querySelectorAll('svg')) {
    const page = r(svg);
    const res = {id: svg.id, width: page.w, height: page.h, elements: 0, texts: 0, items: 0,
                 outside_page: [], outside_parent: [], overlaps: [], text_outside: [], text_overlaps: []};
    for (const el of svg.querySelectorAll('rect, text, path')) {
      const b = r(el); res.elements++;
      if (b.w === 0 && b.h === 0) continue;
      if (!inside(b, page)) res.outside_page.push(desc(el));
    }
    const items = Array.from(svg.querySelectorAll(ITEM));
    res.items = items.length;
    const children = new Map();
    for (const it of items) {
      const p = parentItem(it);
      if (!children.has(p)) children.set(p, {items: [], texts: []});
      children.get(p).items.push(it);
      if (p && !inside(r(outline(it)), r(outline(p)))) res.outside_parent.push(desc(it) + ' in ' + desc(p));
    }
    for (const t of svg.querySelectorAll('text')) {
      res.texts++;
      const p = t.parentElement.closest(ITEM);
      if (!children.has(p)) children.set(p, {items: [], texts: []});
      children.get(p).texts.push(t);
      if (p && !inside(r(t), r(outline(p)))) res.text_outside.push(desc(t) + ' in ' + desc(p));
    }
    for (const [p, c] of children) {
      const boxes = c.items.map(it => [it, r(outline(it))]);
      for (let i = 0; i < boxes.length; i++)
        for (let j = i + 1; j < boxes.length; j++)
          if (overlap(boxes[i][1], boxes[j][1]))
            res.overlaps.push(desc(boxes[i][0]) + ' / ' + desc(boxes[j][0]));
      const texts = c.texts.map(t => [t, r(t)]);
      for (const [t, tb] of texts) {
        for (const [it, ib] of boxes) if (overlap(tb, ib)) res.text_overlaps.push(desc(t) + ' / ' + desc(it));
        for (const [u, ub] of texts) if (u !== t && t.compareDocumentPosition(u) & 4 && overlap(tb, ub))
          res.text_overlaps.push(desc(t) + ' / ' + desc(u));
      }
    }
    results.push(res);
  }
  document.getElementById('numabind-result').textContent = JSON.stringify(results);
})();
"""


def layout_problems(svgs: dict[str, str], workdir: Path) -> dict[str, dict[str, Any]]:
    """Loads every SVG inline in one page and returns, by name, what the
    browser measured (see _CHECK_JS): lists of problems, empty when clean."""
    parts = []
    for name, text in svgs.items():
        body = re.sub(r"^<\?xml[^>]*>\s*", "", text)
        body = body.replace("<svg ", f'<svg id="{html.escape(name)}" ', 1)
        parts.append(f'<div style="margin:0;padding:0;line-height:0">{body}</div>')
    page = ("<!doctype html><html><head><meta charset='utf-8'></head>"
            "<body style='margin:0;padding:0'>" + "".join(parts)
            + "<pre id='numabind-result'>not run</pre><script>" + _CHECK_JS + "</script></body></html>")
    f = workdir / "layout.html"
    f.write_text(page, encoding="utf-8")
    p = _chromium(["--dump-dom", "--virtual-time-budget=5000", f.resolve().as_uri()])
    m = re.search(r"<pre id=\"numabind-result\">(.*?)</pre>", p.stdout, re.S)
    if not m or m.group(1) == "not run":
        raise RuntimeError(f"the page's check did not run (rc {p.returncode}): {p.stderr[-2000:]}")
    return {res["id"]: res for res in json.loads(html.unescape(m.group(1)))}


def read_png(path: Path) -> tuple[int, int, list[list[tuple[int, ...]]]]:
    """A non-interlaced 8-bit RGB or RGBA PNG (what Chromium writes) as RGB rows."""
    data = path.read_bytes()
    if data[:8] != b"\x89PNG\r\n\x1a\n":
        raise ValueError(f"{path} is not a PNG")
    pos, idat, ihdr = 8, b"", None
    while pos < len(data):
        length, kind = struct.unpack(">I4s", data[pos:pos + 8])
        chunk = data[pos + 8:pos + 8 + length]
        if kind == b"IHDR":
            ihdr = struct.unpack(">IIBBBBB", chunk)
        elif kind == b"IDAT":
            idat += chunk
        pos += 12 + length
    if ihdr is None:
        raise ValueError(f"{path} has no IHDR")
    width, height, depth, colour, _, _, interlace = ihdr
    if depth != 8 or colour not in (2, 6) or interlace:
        raise ValueError(f"{path}: unsupported PNG (depth {depth}, colour type {colour}, interlace {interlace})")
    bpp = 3 if colour == 2 else 4
    raw = zlib.decompress(idat)
    stride = width * bpp
    rows, prev = [], bytearray(stride)
    for y in range(height):
        ftype = raw[y * (stride + 1)]
        line = bytearray(raw[y * (stride + 1) + 1:(y + 1) * (stride + 1)])
        for i in range(stride):
            a = line[i - bpp] if i >= bpp else 0
            b = prev[i]
            c = prev[i - bpp] if i >= bpp else 0
            if ftype == 1:
                line[i] = (line[i] + a) & 0xFF
            elif ftype == 2:
                line[i] = (line[i] + b) & 0xFF
            elif ftype == 3:
                line[i] = (line[i] + (a + b) // 2) & 0xFF
            elif ftype == 4:
                pa, pb, pc = abs(b - c), abs(a - c), abs(a + b - 2 * c)
                line[i] = (line[i] + (a if pa <= pb and pa <= pc else b if pb <= pc else c)) & 0xFF
        rows.append([tuple(line[i:i + 3]) for i in range(0, stride, bpp)])
        prev = line
    return width, height, rows
