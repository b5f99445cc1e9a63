"""Drop-in helpers for the frameworks numabind serves.

Each submodule imports its framework and fails with a clear ImportError when
it is missing; ``import numabind`` never imports them.
"""
