#!/usr/bin/env python3
"""Writes the machines `numabind show --example NAME` shows: each description
of tests/machines as the sysfs tree tests/sysfs_tree.py writes for it, packed
as src/numabind/machines/NAME.tar.xz (sorted, owner 0, mtime 0: the same
bytes for the same tree), plus index.json (name, where it comes from).

    python3 tools/make_examples.py          # after changing tests/machines or the writer

tests/test_examples.py fails when an archive differs from the tree the
writer makes now, so the bundled machines never drift from the tested ones.
"""
from __future__ import annotations

import io
import json
import sys
import tarfile
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))
import sysfs_tree as st  # noqa: E402

OUT = ROOT / "src/numabind/machines"


def pack(tree: Path) -> bytes:
    """The tree as a reproducible .tar.xz."""
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:xz") as tar:
        for path in sorted(tree.rglob("*"), key=lambda p: p.relative_to(tree).as_posix()):
            info = tar.gettarinfo(str(path), arcname=path.relative_to(tree).as_posix())
            info.uid = info.gid = 0
            info.uname = info.gname = ""
            info.mtime = 0
            info.mode = 0o755 if info.isdir() else 0o644 if info.isfile() else info.mode
            if info.isfile():
                with open(path, "rb") as f:
                    tar.addfile(info, f)
            else:
                tar.addfile(info)
    return buf.getvalue()


def build(name: str) -> bytes:
    with tempfile.TemporaryDirectory() as tmp:
        st.write_tree(st.load(name), Path(tmp))
        return pack(Path(tmp))


def index() -> list[dict[str, str]]:
    out = []
    for name in st.MACHINES:
        desc = st.load(name)
        out.append({"name": name, "source": desc["sources"][0], "notes": "; ".join(desc.get("notes") or [])})
    return out


def main() -> int:
    OUT.mkdir(parents=True, exist_ok=True)
    for entry in index():
        (OUT / f"{entry['name']}.tar.xz").write_bytes(build(entry["name"]))
        print(f"wrote {OUT / entry['name']}.tar.xz")
    (OUT / "index.json").write_text(json.dumps(index(), indent=1) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
