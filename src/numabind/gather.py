"""Capture every file numabind reads into a tarball that replays the machine
under ``NUMABIND_FSROOT`` (as ``hwloc-gather-topology`` does for hwloc).

The C core records each path it reads, lists or resolves; this module walks
those paths on the real filesystem, keeping symbolic links as links (made
relative, so the tree resolves inside itself) and file contents as read.
That includes the NVIDIA driver's ``/proc/driver/nvidia/gpus`` and the
``/dev/nvidia<minor>`` nodes that say which GPUs this process can open (in
a container, only its own); device nodes are stored as empty regular files.
"""

from __future__ import annotations

import io
import os
import stat
import tarfile
import time
from typing import IO, Iterable

from numabind import _core
from numabind.topology import Topology

__all__ = ["gather", "extract"]


class _Capture:
    def __init__(self, tar: tarfile.TarFile, root: str) -> None:
        self.tar = tar
        self.root = root.rstrip("/")
        self.added: set[str] = set()
        self.now = int(time.time())

    def _info(self, name: str, kind: bytes, mode: int) -> tarfile.TarInfo:
        info = tarfile.TarInfo(name.lstrip("/"))
        info.type = kind
        info.mode = mode
        info.mtime = self.now
        return info

    def _dir(self, path: str) -> None:
        if path in self.added or path == "/":
            return
        self._dir(os.path.dirname(path))
        self.added.add(path)
        self.tar.addfile(self._info(path, tarfile.DIRTYPE, 0o755))

    def _in_tree(self, target: str) -> str:
        """An absolute link target as a path below the root: a fixture tree
        may link to itself by its full path (`/dev/shm/t/sys/devices/...`)."""
        if self.root and os.path.isabs(target) and (target == self.root or target.startswith(self.root + "/")):
            return target[len(self.root):] or "/"
        return target

    def _link(self, path: str, target: str) -> None:
        if path in self.added:
            return
        self._dir(os.path.dirname(path))
        target = self._in_tree(target)
        if os.path.isabs(target):
            # A link into the real root would escape the replayed tree.
            target = os.path.relpath(target, os.path.dirname(path))
        info = self._info(path, tarfile.SYMTYPE, 0o777)
        info.linkname = target
        self.added.add(path)
        self.tar.addfile(info)

    def _file(self, path: str) -> None:
        if path in self.added:
            return
        try:
            # sysfs reports 4096 bytes for every attribute: read, don't stat.
            with open(self.root + path, "rb") as f:
                data = f.read(1 << 20)
        except OSError:
            return  # unreadable here too: the replay sees it missing, as the core did
        self._dir(os.path.dirname(path))
        info = self._info(path, tarfile.REGTYPE, 0o444)
        info.size = len(data)
        self.added.add(path)
        self.tar.addfile(info, io.BytesIO(data))

    def _placeholder(self, path: str) -> None:
        """A device node (/dev/nvidia4) as an empty regular file: the core
        only asks whether it exists, and an archive of character devices
        would not unpack without root."""
        if path in self.added:
            return
        self._dir(os.path.dirname(path))
        self.added.add(path)
        self.tar.addfile(self._info(path, tarfile.REGTYPE, 0o444), io.BytesIO(b""))

    def path(self, path: str, depth: int = 0) -> None:
        """Adds `path` and every link met on the way to it."""
        if depth > 40:
            return  # a link loop: the core saw ELOOP, the replay will too
        parts = [p for p in path.split("/") if p]
        current = ""
        for i, part in enumerate(parts):
            current = f"{current}/{part}"
            try:
                st = os.lstat(self.root + current)
            except OSError:
                return
            if stat.S_ISLNK(st.st_mode):
                target = self._in_tree(os.readlink(self.root + current))
                self._link(current, target)
                resolved = os.path.normpath(os.path.join(os.path.dirname(current), target))
                rest = "/".join(parts[i + 1:])
                self.path(resolved + ("/" + rest if rest else ""), depth + 1)
                return
            if i == len(parts) - 1:
                if stat.S_ISDIR(st.st_mode):
                    self._dir(current)
                    self.listing(current)
                elif stat.S_ISREG(st.st_mode):
                    self._file(current)
                elif stat.S_ISCHR(st.st_mode):
                    self._placeholder(current)

    def listing(self, path: str) -> None:
        """A listed directory's entries: links and directories (files are
        added when read)."""
        try:
            names = sorted(os.listdir(self.root + path))
        except OSError:
            return
        for name in names:
            child = f"{path}/{name}"
            try:
                st = os.lstat(self.root + child)
            except OSError:
                continue
            if stat.S_ISLNK(st.st_mode):
                self._link(child, os.readlink(self.root + child))
            elif stat.S_ISDIR(st.st_mode):
                self._dir(child)


def gather(out: str | os.PathLike[str] | IO[bytes], fsroot: str | None = None) -> list[str]:
    """Writes ``out`` (a .tar.gz path, or a binary file object such as
    ``sys.stdout.buffer``, written as a stream) holding every file numabind
    reads on this machine, plus ``numabind/gpu-uuids`` from NVML. Returns
    the paths read.

    A write that fails removes the partial archive (a regular file it
    created or truncated) and raises the OSError; an empty path is a
    ValueError. The capture is of the machine, not of this process's view
    of it: ``CUDA_VISIBLE_DEVICES`` is ignored (a MIG instance in it
    included)."""
    if isinstance(out, (str, os.PathLike)) and os.fspath(out) == "":
        raise ValueError("gather: the archive's path is empty")
    handle = _core.TopologyHandle(fsroot, _core.RECORD_FILES | _core.ALL_GPUS)
    topo = Topology._from_handle(handle)
    paths = handle.files()
    root = "" if topo.fsroot == "/" else topo.fsroot
    if not isinstance(out, (str, os.PathLike)):
        with tarfile.open(fileobj=out, mode="w|gz") as tar:   # a stream: no seeking back
            _write(tar, topo, paths, root)
        return paths
    with open(out, "wb") as f:
        try:
            with tarfile.open(fileobj=f, mode="w:gz") as tar:
                _write(tar, topo, paths, root)
            f.flush()
        except BaseException:
            # never leave half an archive that looks whole; a device (/dev/full) stays
            if stat.S_ISREG(os.fstat(f.fileno()).st_mode):
                try:
                    os.unlink(out)
                except OSError:
                    pass
            try:
                f.close()   # drops what the failed write left buffered, or it fails again
            except OSError:
                pass
            raise
    return paths


def _write(tar: tarfile.TarFile, topo: Topology, paths: list[str], root: str) -> None:
    cap = _Capture(tar, root)
    for p in paths:
        cap.path(p)
    cap.path("/proc/self/status")  # the allowed sets, as the replay reads them
    uuids = "".join(f"{g.pci_address} {g.uuid}\n" for g in topo.all_gpus if g.uuid)
    if uuids and "/numabind/gpu-uuids" not in cap.added:
        cap._dir("/numabind")
        info = cap._info("/numabind/gpu-uuids", tarfile.REGTYPE, 0o444)
        data = uuids.encode()
        info.size = len(data)
        tar.addfile(info, io.BytesIO(data))


def extract(archive: str | os.PathLike[str], dest: str | os.PathLike[str]) -> None:
    """Unpacks a gathered tarball into ``dest`` (for ``NUMABIND_FSROOT=dest``)."""
    with tarfile.open(archive, "r:gz") as tar:
        members: Iterable[tarfile.TarInfo] = tar.getmembers()
        if hasattr(tarfile, "data_filter"):
            tar.extractall(dest, members=members, filter="tar")
        else:  # Python < 3.10.12 / 3.11.4
            tar.extractall(dest, members=members)
