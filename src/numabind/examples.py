"""Real GPU nodes bundled with numabind, to read without one:
``numabind show --example dgx-h100``, ``numabind.topology(numabind.examples.root("dgx-h100"))``.

Each is the sysfs tree of one description in the project's tests/machines
(a DGX H100, an Azure ND H100 v5, ...), packed by tools/make_examples.py as
``numabind/machines/NAME.tar.xz``. :func:`root` unpacks one once into the
user's cache (``$XDG_CACHE_HOME/numabind``, else ``~/.cache/numabind``;
where neither is writable, a directory of the user's own in the temporary
directory, ``numabind-examples-UID``, mode 0700) and returns the directory
to use as ``NUMABIND_FSROOT``.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

from numabind._core import VERSION_STRING

__all__ = ["names", "describe", "root"]

_DIR = Path(__file__).resolve().parent / "machines"


class ExampleError(ValueError):
    """An example name numabind does not bundle."""


def names() -> list[str]:
    """The bundled machines' names, sorted."""
    return sorted(p.name[: -len(".tar.xz")] for p in _DIR.glob("*.tar.xz"))


def describe() -> list[dict[str, str]]:
    """name, source (where the description comes from) and notes of each."""
    import json

    return json.loads((_DIR / "index.json").read_text(encoding="utf-8"))


def _archive(name: str) -> Path:
    if name not in names():
        raise ExampleError(f"no bundled machine {name!r}; choose from {', '.join(names())} "
                           "(numabind show --example list)")
    return _DIR / f"{name}.tar.xz"


def _cache() -> Path | None:
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    path = Path(base) / "numabind" / f"examples-{VERSION_STRING}"
    try:
        path.mkdir(parents=True, exist_ok=True)
        if os.access(path, os.W_OK | os.X_OK):
            return path
    except OSError:
        pass
    return _private_tmp()


def _private_tmp() -> Path | None:
    """A cache in the temporary directory (no writable home: a container's
    read-only one, a service account's): the user's own directory, 0700, so
    that nobody else can put a tree there; None where that cannot be had."""
    import stat

    path = Path(tempfile.gettempdir()) / f"numabind-examples-{os.getuid()}" / VERSION_STRING
    try:
        os.mkdir(path.parent, 0o700)
    except FileExistsError:
        pass
    except OSError:
        return None
    try:
        st = os.lstat(path.parent)
        if not stat.S_ISDIR(st.st_mode) or st.st_uid != os.getuid() or st.st_mode & 0o077:
            return None
        path.mkdir(exist_ok=True)
    except OSError:
        return None
    return path


def _unpack(archive: Path, into: Path) -> None:
    import tarfile

    with tarfile.open(archive, "r:xz") as tar:
        members = tar.getmembers()
        for m in members:   # what tools/make_examples.py writes: files, directories, relative links inside
            if not (m.isfile() or m.isdir() or m.issym()) or m.name.startswith("/") or ".." in m.name.split("/"):
                raise ExampleError(f"{archive}: unexpected member {m.name!r}")
            target = os.path.normpath(os.path.join(os.path.dirname(m.name), m.linkname)) if m.issym() else ""
            if m.issym() and (m.linkname.startswith("/") or target == ".." or target.startswith("../")):
                raise ExampleError(f"{archive}: link {m.name!r} leaves the tree")
        try:
            tar.extractall(into, members=members, filter="data")
        except TypeError:   # a Python without extraction filters (3.10 before 3.10.12): checked above
            tar.extractall(into, members=members)


def root(name: str) -> str:
    """The directory holding bundled machine ``name``'s tree, unpacked on
    first use (concurrent callers each unpack and one rename wins)."""
    archive = _archive(name)
    cache = _cache()
    stamp = f"{name}-{archive.stat().st_size}-{int(archive.stat().st_mtime)}"
    if cache is not None:
        done = cache / stamp
        if (done / "sys").is_dir():
            return str(done)
        tmp = Path(tempfile.mkdtemp(prefix=f".{name}-", dir=cache))
        _unpack(archive, tmp)
        try:
            os.rename(tmp, done)
        except OSError:          # another process's copy is in place already
            import shutil

            shutil.rmtree(tmp, ignore_errors=True)
        return str(done)
    tmp = Path(tempfile.mkdtemp(prefix=f"numabind-{name}-"))
    _unpack(archive, tmp)
    return str(tmp)
