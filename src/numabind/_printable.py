"""Text from a machine's files, made safe to show.

A tree's names (an RDMA device, a netdev, a GPU UUID, the root's own path)
are whatever bytes the files hold: an escape sequence in one would recolour
or rewrite the reader's terminal. Every text output of the CLI passes such
values through :func:`printable`; shell lines pass them through
:func:`shell_quote`.
"""

from __future__ import annotations

__all__ = ["printable", "shell_quote"]


def _escape(c: str) -> str:
    # repr's own escape for one character: \x1b, \n, \t, \x85, \u202e
    return "\\\\" if c == "\\" else repr(c)[1:-1]


def printable(text: object) -> str:
    """``text`` with every character that is not printable (control
    characters, escape sequences, line and paragraph separators, bidi
    overrides) written as Python writes it in a repr (``\\x1b``), and a
    backslash doubled, so that what is shown is never taken for an escape."""
    s = str(text)
    if s.isprintable() and "\\" not in s:
        return s
    return "".join(c if c.isprintable() and c != "\\" else _escape(c) for c in s)


def _ansi_c(c: str) -> str:
    """One character inside bash's $'...' quotes."""
    if c in "\\'":
        return "\\" + c
    if c.isprintable():
        return c
    code = ord(c)
    # \xHH is a byte: only ASCII is the same byte in every locale.
    return f"\\x{code:02x}" if code < 0x80 else f"\\u{code:04x}" if code < 0x10000 else f"\\U{code:08x}"


def shell_quote(value: str) -> str:
    """``value`` as one shell word: ``shlex.quote`` when it is printable,
    else ANSI-C quoting (``$'mlx5_\\x1b[31m'``, bash, zsh, ksh and POSIX.1-2024
    sh), which gives the same bytes back and prints no control character."""
    if value.isprintable():
        import shlex      # imports re: only where a shell line is written
        return shlex.quote(value)
    return "$'" + "".join(_ansi_c(c) for c in value) + "'"
