"""numabind's exceptions.

Every failure of the C core arrives as a :class:`NumabindError`, an
:class:`OSError` whose ``errno`` is the C call's error, whose message names the
offending value, and whose ``call`` names the C function that failed.
``str()`` of one is for a log ("[Errno 22] ... (Invalid argument, from
nmb_plan_create)"); ``message`` is the sentence alone, for a person (the
``numabind`` command prints it).
"""

from __future__ import annotations

__all__ = ["NumabindError", "TopologyError", "EnvironmentValueError", "PlacementError", "BindingError"]


class NumabindError(OSError):
    """A numabind C call failed: ``errno``, ``strerror``, ``detail``, ``call``,
    and ``message``: the detail (else the system's text) without the errno
    or the call."""

    def __init__(self, errno: int, strerror: str, detail: str = "", call: str = "") -> None:
        message = detail or strerror
        full = f"{message} ({strerror}, from {call})" if call else message
        super().__init__(errno, full)
        self.detail = detail
        self.call = call
        self.message = message


class TopologyError(NumabindError):
    """The machine's topology could not be read (a missing or malformed file)."""


class PlacementError(NumabindError):
    """No placement satisfies the request on this machine (a rank without a
    GPU, more ranks than CPUs, a node outside the allowed set)."""


class BindingError(NumabindError):
    """Applying a plan failed; the process's previous CPU affinity and memory
    policy were restored before this was raised."""


class EnvironmentValueError(TopologyError, PlacementError, ValueError):
    """An environment variable numabind honours holds a value that names
    nothing on this machine (``CUDA_VISIBLE_DEVICES=9`` on a 4-GPU box,
    ``LOCAL_RANK=x``); ``variable`` is its name, as the C core reported it
    (``nmb_last_error_variable()``)."""

    def __init__(self, errno: int, strerror: str, detail: str = "", call: str = "", variable: str = "") -> None:
        super().__init__(errno, strerror, detail, call)
        self.variable = variable
