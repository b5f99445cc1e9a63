"""numabind as its users build against it: a C++ program through CMake's
find_package and through pkg-config, a Cython module that cimports numabind,
mypy over the shipped types, the installed file list, and one version
everywhere. Runs against whatever numabind is installed (tools/dev.sh's
.venv; tools/ci/stage-wheel.sh's fresh venv holding the manylinux wheel)."""
from __future__ import annotations

import importlib.metadata
import json
import os
import re
import shutil
import subprocess
import sys
import sysconfig
from pathlib import Path

import pytest

import numabind

HERE = Path(__file__).resolve().parent / "consumers"
CI = os.environ.get("CI") == "true"


def need(tool: str) -> str:
    path = shutil.which(tool)
    if path is None:
        if CI:
            pytest.fail(f"{tool} is not installed (tools/dev.sh installs it)")
        pytest.skip(f"{tool} is not installed")
    return path


@pytest.fixture(scope="module")
def dgx(tree) -> Path:
    return tree("dgx-h100")


@pytest.fixture(scope="module")
def expected(dgx) -> dict:
    r = numabind.plan(topology=numabind.topology(dgx))[3]
    return {"version": numabind.__version__, "rank": 3, "gpu": r.gpu, "numa_node": r.numa_node,
            "cpus": numabind._core.format_cpulist(r.cpus), "nic": r.hca, "ranks": 8}


def run_json(cmd: list[str]) -> dict:
    p = subprocess.run(cmd, capture_output=True, text=True, timeout=120)
    assert p.returncode == 0, f"{cmd}: {p.stderr}"
    return json.loads(p.stdout)


def test_cmake_find_package_consumer(dgx, expected, tmp_path):
    cmake = need("cmake")
    build = tmp_path / "build"
    subprocess.run([cmake, "-S", str(HERE / "cxx"), "-B", str(build), f"-Dnumabind_DIR={numabind.get_cmake_dir()}",
                    "-DCMAKE_FIND_USE_PACKAGE_REGISTRY=OFF"], check=True, capture_output=True, timeout=300)
    subprocess.run([cmake, "--build", str(build)], check=True, capture_output=True, timeout=300)
    assert run_json([str(build / "plan_rank"), str(dgx), "3"]) == expected


def test_cmake_package_version_is_checked(tmp_path):
    cmake = need("cmake")
    src = tmp_path / "src"
    src.mkdir()
    (src / "CMakeLists.txt").write_text("cmake_minimum_required(VERSION 3.18)\nproject(v NONE)\n"
                                        "find_package(numabind 99 CONFIG REQUIRED)\n")
    p = subprocess.run([cmake, "-S", str(src), "-B", str(tmp_path / "b"),
                        f"-Dnumabind_DIR={numabind.get_cmake_dir()}"], capture_output=True, text=True, timeout=300)
    assert p.returncode != 0 and numabind.__version__ in p.stderr


def test_pkgconfig_consumer(dgx, expected, tmp_path):
    pkg_config, cxx = need("pkg-config"), need("g++")
    env = {**os.environ, "PKG_CONFIG_PATH": numabind.get_pkgconfig_dir(), "PKG_CONFIG_LIBDIR": ""}
    flags = subprocess.run([pkg_config, "--cflags", "--libs", "numabind"], capture_output=True, text=True,
                           env=env, check=True).stdout.split()
    assert f"-I{Path(numabind.get_include()).resolve()}" in [f"-I{Path(f[2:]).resolve()}" for f in flags
                                                            if f.startswith("-I")]
    version = subprocess.run([pkg_config, "--modversion", "numabind"], capture_output=True, text=True, env=env,
                             check=True).stdout.strip()
    assert version == numabind.__version__
    exe = tmp_path / "plan_rank"
    subprocess.run([cxx, str(HERE / "cxx" / "plan_rank.cpp"), "-o", str(exe), *flags], check=True, timeout=300)
    assert run_json([str(exe), str(dgx), "3"]) == expected


def test_cython_consumer_cimports_numabind(dgx, expected, tmp_path):
    cc = need("gcc")
    pytest.importorskip("Cython", reason="the Cython consumer needs Cython (the test extra installs it)")
    shutil.copy(HERE / "cython" / "plan_rank.pyx", tmp_path)
    subprocess.run([sys.executable, "-m", "cython", "-3", "plan_rank.pyx", "-o", "plan_rank.c"], cwd=tmp_path,
                   check=True, capture_output=True, timeout=300)
    lib = numabind.get_library_dir()
    so = tmp_path / ("plan_rank" + sysconfig.get_config_var("EXT_SUFFIX"))
    subprocess.run([cc, "-shared", "-fPIC", "-O1", f"-I{sysconfig.get_paths()['include']}",
                    f"-I{numabind.get_include()}", "plan_rank.c", "-o", str(so), f"-L{lib}",
                    "-l:libnumabind.so.0", f"-Wl,-rpath,{lib}"], cwd=tmp_path, check=True, timeout=300)
    code = f"import plan_rank; print(plan_rank.rank_cpus({str(dgx)!r}, 3))"
    out = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == expected["cpus"]


def test_python_m_numabind_paths():
    out = subprocess.run([sys.executable, "-m", "numabind", "--includes", "--cmakedir", "--pkgconfigdir",
                          "--version"], capture_output=True, text=True, check=True).stdout.split()
    assert out == [f"-I{numabind.get_include()}", numabind.get_cmake_dir(), numabind.get_pkgconfig_dir(),
                   numabind.__version__]
    assert (Path(out[0][2:]) / "numabind" / "numabind.h").is_file()
    assert (Path(out[1]) / "numabindConfig.cmake").is_file()
    assert (Path(out[2]) / "numabind.pc").is_file()
    # anything else is still the command line
    p = subprocess.run([sys.executable, "-m", "numabind", "plan", "--help"], capture_output=True, text=True)
    assert p.returncode == 0 and "usage" in p.stdout
    # and --help names the path flags
    p = subprocess.run([sys.executable, "-m", "numabind", "--help"], capture_output=True, text=True)
    assert all(f in p.stdout for f in ("--includes", "--cmakedir", "--pkgconfigdir")), p.stdout


def test_one_version_everywhere():
    header = (Path(numabind.get_include()) / "numabind" / "version.h").read_text()
    from_header = re.search(r'#define NMB_VERSION_STRING "([^"]+)"', header).group(1)
    encoded, from_library = numabind._core.library_version()
    major, minor, patch = (int(x) for x in from_library.split("."))
    assert encoded == (major << 16 | minor << 8 | patch)  # NMB_VERSION_ENCODE
    assert from_header == from_library == numabind.__version__ == importlib.metadata.version("numabind")
    source = Path(__file__).resolve().parent.parent / "csrc/include/numabind/version.h"
    if source.is_file():  # in a checkout: the source header is the one the wheel was built from
        assert source.read_text() == header


# The wheel's files below numabind/ (bytecode and the extension's ABI tag aside).
WHEEL_FILES = sorted("""
__init__.py __main__.py _core.pyi _distance.py _printable.py _record.py audit.py cli.py errors.py examples.py
gather.py paths.py placement.py status.py svg.py py.typed topology.py libnumabind.pxd
machines/index.json machines/azure-nd96isr-h100-v5.tar.xz machines/dgx-h100.tar.xz machines/h100x4-flat-vm.tar.xz
machines/paired-switch-rocev2.tar.xz machines/plain-2cpu-no-gpu.tar.xz
integrations/__init__.py integrations/deep_ep.py
include/numabind/bitmap.h include/numabind/common.h include/numabind/numabind.h include/numabind/plan.h
include/numabind/topology.h include/numabind/version.h
lib/libnumabind.so.0 lib/cmake/numabind/numabindConfig.cmake lib/cmake/numabind/numabindConfigVersion.cmake
lib/pkgconfig/numabind.pc
""".split())


def installed_files() -> list[str]:
    files = importlib.metadata.files("numabind")
    assert files, "numabind was not installed from a wheel (no RECORD)"
    return [str(f) for f in files]


def test_wheel_file_list_is_pinned():
    files = installed_files()
    ours = sorted(f.split("/", 1)[1] for f in files if f.startswith("numabind/") and "__pycache__" not in f)
    ext = [f for f in ours if f.startswith("_core.") and f.endswith(".so")]
    assert len(ext) == 1 and ext[0] == "_core" + sysconfig.get_config_var("EXT_SUFFIX")
    assert [f for f in ours if f not in ext] == WHEEL_FILES
    # Outside the package: metadata, the console script, and — in an
    # auditwheel-repaired wheel only — the grafted libnuma; never libibverbs.
    others = [f for f in files if not f.startswith("numabind/")]
    for f in others:
        assert (f.startswith("numabind-") and ".dist-info/" in f) or f.endswith("bin/numabind") \
            or re.fullmatch(r"numabind\.libs/libnuma-[0-9a-f]+\.so\.1(\.\d+)*", f), f
    assert not any("ibverbs" in f or "mlx5" in f for f in files)


def test_mypy_reads_the_shipped_types(tmp_path):
    pytest.importorskip("mypy", reason="mypy comes with the test extra")
    base = [sys.executable, "-m", "mypy", "--no-incremental", "--cache-dir", str(tmp_path / "cache"),
            "--config-file", str(HERE / "mypy.ini")]
    good = subprocess.run([*base, "--strict", str(HERE / "typed_use.py")], capture_output=True, text=True,
                          cwd=tmp_path)
    assert good.returncode == 0, good.stdout + good.stderr
    bad = subprocess.run([*base, str(HERE / "typed_misuse.py")], capture_output=True, text=True, cwd=tmp_path)
    assert bad.returncode == 1, bad.stdout
    assert 'Argument "rank" to "pin_rank" has incompatible type "str"' in bad.stdout
    assert 'Incompatible types in assignment (expression has type "tuple[int, ...]"' in bad.stdout
    # and the package itself, through its stubs, type-checks
    pkg = subprocess.run([*base, "-p", "numabind"], capture_output=True, text=True, cwd=tmp_path)
    assert pkg.returncode == 0, pkg.stdout + pkg.stderr
