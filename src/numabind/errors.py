"""numabind's exceptions.

Every failure of the C core arrives as a :class:`NumabindError`, an
:class:`OSError` whose ``errno`` is the C call's error, whose message names the
offending value, and whose ``call`` names the C function that failed.
"""

from __future__ import annotations

__all__ = ["NumabindError", "TopologyError", "EnvironmentValueError"]


class NumabindError(OSError):
    """A numabind C call failed: ``errno``, ``strerror``, ``detail``, ``call``."""

    def __init__(self, errno: int, strerror: str, detail: str = "", call: str = "") -> None:
        message = detail or strerror
        if call:
            message = f"{message} ({strerror}, from {call})"
        super().__init__(errno, message)
        self.detail = detail
        self.call = call


class TopologyError(NumabindError):
    """The machine's topology could not be read (a missing or malformed file)."""


class EnvironmentValueError(TopologyError, ValueError):
    """An environment variable numabind honours holds a value that names
    nothing on this machine (``CUDA_VISIBLE_DEVICES=9`` on a 4-GPU box)."""
