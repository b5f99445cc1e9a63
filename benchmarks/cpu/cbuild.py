"""Builds benchmarks/cpu/bench.c against the installed numabind (pkg-config
from ``python -m numabind --pkgconfigdir``) and, when its headers can be
found, hwloc."""
from __future__ import annotations

import ctypes.util
import glob
import os
import shutil
import subprocess
from pathlib import Path

HERE = Path(__file__).resolve().parent


def hwloc_flags(build: Path) -> tuple[list[str], list[str], str]:
    """(cflags, libs, where) for hwloc, or ([], [], why not)."""
    lib = None
    for pattern in ("/usr/lib/*/libhwloc.so", "/usr/lib64/libhwloc.so", "/usr/lib/*/libhwloc.so.15",
                    "/usr/lib64/libhwloc.so.15"):
        found = sorted(glob.glob(pattern))
        if found:
            lib = found[0]
            break
    if lib is None and ctypes.util.find_library("hwloc") is None:
        return [], [], "libhwloc not installed"
    libs = [lib] if lib else ["-lhwloc"]
    if Path("/usr/include/hwloc.h").exists():
        return [], libs, "/usr/include"
    inc = os.environ.get("HWLOC_INCLUDE")
    if inc and Path(inc, "hwloc.h").exists():
        return [f"-I{inc}"], libs, inc
    root = build / "hwloc-dev"
    may_download = os.environ.get("NUMABIND_BENCH_NO_DOWNLOAD", "") in ("", "0")
    if may_download and not (root / "usr/include/hwloc.h").exists() and shutil.which("apt-get") \
            and shutil.which("dpkg-deb"):
        root.mkdir(parents=True, exist_ok=True)
        try:
            subprocess.run(["apt-get", "download", "libhwloc-dev"], cwd=root, capture_output=True, timeout=120)
            for deb in root.glob("libhwloc-dev_*.deb"):
                subprocess.run(["dpkg-deb", "-x", str(deb), str(root)], capture_output=True, timeout=60)
        except subprocess.TimeoutExpired:
            pass
    if (root / "usr/include/hwloc.h").exists():
        flags = [f"-I{root / 'usr/include'}"] + [f"-I{d}" for d in glob.glob(str(root / "usr/include/*-linux-gnu"))]
        return flags, libs, "apt-get download libhwloc-dev (headers only)"
    return [], [], "hwloc headers not found (apt-get install libhwloc-dev, or set HWLOC_INCLUDE): no hwloc rows"


def numabind_flags(python: str) -> list[str] | str:
    """Compiler flags for the numabind that `python` imports: pkg-config when
    there is one, else its include and library directories; or why not."""
    pc = subprocess.run([python, "-m", "numabind", "--pkgconfigdir"], capture_output=True, text=True).stdout.strip()
    if shutil.which("pkg-config"):
        p = subprocess.run(["pkg-config", "--cflags", "--libs", "numabind"], capture_output=True, text=True,
                           env={**os.environ, "PKG_CONFIG_PATH": pc})
        if p.returncode == 0:
            return p.stdout.split()
    p = subprocess.run([python, "-c", "import numabind; print(numabind.get_include()); "
                        "print(numabind.get_library_dir())"], capture_output=True, text=True)
    if p.returncode != 0:
        return f"numabind not importable by {python}: {p.stderr.strip()[-300:]}"
    inc, lib = p.stdout.split()
    return [f"-I{inc}", f"-L{lib}", "-l:libnumabind.so.0", f"-Wl,-rpath,{lib}"]


def build_c(build: Path, python: str, hwloc: bool = True) -> tuple[str | None, dict]:
    info: dict = {}
    if not shutil.which("gcc") and not shutil.which("cc"):
        info["why"] = "no C compiler"
        return None, info
    nb_flags = numabind_flags(python)
    if isinstance(nb_flags, str):
        info["why"] = nb_flags
        return None, info
    hw_cflags, hw_libs, where = hwloc_flags(build) if hwloc else ([], [], "not asked for")
    if not hw_cflags and where != "/usr/include":
        hw_libs = []          # no headers: build without hwloc
    info["hwloc"] = where
    out = build / "bench"
    cc = shutil.which("gcc") or shutil.which("cc")
    argv = [cc, "-O2", "-Wall", str(HERE / "bench.c"), "-o", str(out), *nb_flags, "-lpthread"]
    if hw_libs:
        argv[2:2] = ["-DHAVE_HWLOC", *hw_cflags]
        argv += hw_libs
    p = subprocess.run(argv, capture_output=True, text=True)
    if p.returncode != 0:
        info["why"] = f"cc failed: {p.stderr.strip()[-1500:]}"
        return None, info
    info["command"] = " ".join(argv)
    info["with_hwloc"] = bool(hw_libs)
    return str(out), info
