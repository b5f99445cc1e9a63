"""Where the wheel keeps what C, C++ and Cython callers build against.

The installed package is an install prefix: ``numabind/include`` (the C
headers), ``numabind/lib`` (``libnumabind.so.N``, ``cmake/numabind``,
``pkgconfig/numabind.pc``), and the ``.pxd`` files beside the Python ones.

    cmake -Dnumabind_DIR="$(python -m numabind --cmakedir)" ...
    PKG_CONFIG_PATH="$(python -m numabind --pkgconfigdir)" pkg-config --cflags --libs numabind
"""

from __future__ import annotations

import os

__all__ = ["get_include", "get_library_dir", "get_cmake_dir", "get_pkgconfig_dir"]

_HERE = os.path.dirname(os.path.abspath(__file__))


def _existing(path: str, what: str) -> str:
    if not os.path.isdir(path):
        raise FileNotFoundError(f"numabind's {what} directory {path} is missing: "
                                f"this numabind was not installed from its wheel or with pip")
    return path


def get_include() -> str:
    """The directory holding ``numabind/numabind.h``."""
    return _existing(os.path.join(_HERE, "include"), "include")


def get_library_dir() -> str:
    """The directory holding ``libnumabind.so.N``."""
    return _existing(os.path.join(_HERE, "lib"), "library")


def get_cmake_dir() -> str:
    """The directory holding ``numabindConfig.cmake`` (for ``numabind_DIR``)."""
    return _existing(os.path.join(_HERE, "lib", "cmake", "numabind"), "CMake package")


def get_pkgconfig_dir() -> str:
    """The directory holding ``numabind.pc`` (for ``PKG_CONFIG_PATH``)."""
    return _existing(os.path.join(_HERE, "lib", "pkgconfig"), "pkg-config")
