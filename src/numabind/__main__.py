"""``python -m numabind``: the CLI, or where the C/C++ build files are.

    python -m numabind --includes        # -I<dir> for a C or C++ compiler
    python -m numabind --cmakedir        # for -Dnumabind_DIR=... / CMAKE_PREFIX_PATH
    python -m numabind --pkgconfigdir    # for PKG_CONFIG_PATH
    python -m numabind --includes --version   # ... the bare version last ("0.1.0")
    python -m numabind --version         # alone: the CLI's ("numabind 0.1.0")
    python -m numabind show              # anything else: the numabind command line
"""

import sys

_FLAGS = ("--includes", "--cmakedir", "--pkgconfigdir", "--version")


def _paths(argv: list[str]) -> int:
    import argparse

    import numabind
    from numabind import paths

    p = argparse.ArgumentParser(prog="python -m numabind", description="numabind's build paths")
    p.add_argument("--includes", action="store_true", help="the include flag for numabind's C headers")
    p.add_argument("--cmakedir", action="store_true", help="the directory of numabindConfig.cmake")
    p.add_argument("--pkgconfigdir", action="store_true", help="the directory of numabind.pc")
    p.add_argument("--version", action="store_true", help="numabind's version")
    a = p.parse_args(argv)
    out = []
    if a.includes:
        out.append(f"-I{paths.get_include()}")
    if a.cmakedir:
        out.append(paths.get_cmake_dir())
    if a.pkgconfigdir:
        out.append(paths.get_pkgconfig_dir())
    if a.version:
        out.append(numabind.__version__)
    print(" ".join(out))
    return 0


def _restore_sigint() -> None:
    # the native numabind's hand-over: SIGINT was ignored while Python started
    import os

    if os.environ.pop("NUMABIND_RESTORE_SIGINT", None) is not None:
        import signal

        signal.signal(signal.SIGINT, signal.default_int_handler)


def _main() -> int:
    _restore_sigint()
    argv = sys.argv[1:]
    # --version alone is the command line's; with a path flag, the bare version.
    if argv and all(arg in _FLAGS for arg in argv) and set(argv) != {"--version"}:
        return _paths(argv)
    try:    # Ctrl-C before the CLI's own handler is set: no traceback either
        from numabind.cli import main
    except KeyboardInterrupt:
        print("numabind: interrupted", file=sys.stderr)
        return 130
    return main()


if __name__ == "__main__":
    sys.exit(_main())
