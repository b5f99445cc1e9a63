"""Immutable value classes without dataclass generation.

``@dataclass(frozen=True)`` writes each class's methods as source and
compiles them when the module is imported: about 9 ms for numabind's value
classes, paid by every ``import numabind`` (issue 16). :class:`Record` gives
a ``__slots__`` class the same behaviour from its field list, at no import
cost: frozen (assigning or deleting an attribute raises
``dataclasses.FrozenInstanceError``), ``==`` and ``hash`` over the compared
fields, the dataclass ``repr``, pickling and copying, and ``_replace``. The
classes write their own ``__init__`` (typed, for mypy and readers).

``dataclasses.fields``, ``replace``, ``asdict`` and ``is_dataclass`` keep
working on them: ``__dataclass_fields__`` is built the first time something
asks for it (importing dataclasses then, not before).
"""

from __future__ import annotations

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any, TypeVar

    R = TypeVar("R", bound="Record")

__all__ = ["Record", "frozen_set"]

#: Sets an attribute of a frozen instance, for ``__init__``.
frozen_set = object.__setattr__


def _frozen_error(message: str) -> Exception:
    from dataclasses import FrozenInstanceError   # only when someone tries to mutate one
    return FrozenInstanceError(message)


class _DataclassFields:
    """``__dataclass_fields__``, made on first access from a throwaway
    dataclass with the same fields (so the Field objects are real ones)."""

    def __get__(self, obj: object, cls: type[Record]) -> dict[str, Any]:
        import dataclasses

        init = cls.__init__
        code = init.__code__
        params = code.co_varnames[1:code.co_argcount + code.co_kwonlyargcount]
        defaults = dict(zip(params[code.co_argcount - 1 - len(init.__defaults__ or ()):], init.__defaults__ or ()))
        defaults.update(init.__kwdefaults__ or {})
        spec = []
        for name in cls._fields:
            opts: dict[str, Any] = {"compare": name in cls._compare, "repr": name in cls._repr}
            if name in defaults:
                opts["default"] = defaults[name]
            spec.append((name, cls.__annotations__.get(name, "Any"), dataclasses.field(**opts)))
        shadow = dataclasses.make_dataclass(cls.__name__, spec, frozen=True, eq=cls._eq)
        fields: dict[str, Any] = shadow.__dataclass_fields__  # type: ignore[attr-defined]
        type.__setattr__(cls, "__dataclass_fields__", fields)
        return fields


class Record:
    """Base of a frozen ``__slots__`` value class.

    A subclass lists its fields in ``__slots__`` (or ``fields=`` when it has
    slots that are not fields), in ``__init__`` order, and may leave some out
    of ``==``/``hash`` (``compare_exclude``) or the repr (``repr_exclude``);
    ``eq=False`` keeps identity comparison, as ``@dataclass(eq=False)``.
    """

    __slots__ = ()
    _fields: tuple[str, ...] = ()
    _compare: tuple[str, ...] = ()
    _repr: tuple[str, ...] = ()
    _eq = True
    __dataclass_fields__ = _DataclassFields()

    def __init_subclass__(cls, *, fields: tuple[str, ...] | None = None, compare_exclude: tuple[str, ...] = (),
                          repr_exclude: tuple[str, ...] = (), eq: bool = True, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        names = tuple(cls.__slots__ if fields is None else fields)
        cls._fields = names
        cls._compare = tuple(n for n in names if n not in compare_exclude)
        cls._repr = tuple(n for n in names if n not in repr_exclude)
        cls._eq = eq
        setattr(cls, "__match_args__", names)   # positional patterns, as a dataclass has
        if not eq:
            cls.__eq__ = object.__eq__           # type: ignore[method-assign,assignment]
            cls.__hash__ = object.__hash__       # type: ignore[method-assign,assignment]

    def __setattr__(self, name: str, value: Any) -> None:
        raise _frozen_error(f"cannot assign to field {name!r}")

    def __delattr__(self, name: str) -> None:
        raise _frozen_error(f"cannot delete field {name!r}")

    def _key(self) -> tuple[Any, ...]:
        return tuple([getattr(self, n) for n in self._compare])

    def __eq__(self, other: object) -> bool:
        if other.__class__ is self.__class__:
            return self._key() == other._key()  # type: ignore[attr-defined,no-any-return]
        return NotImplemented

    def __hash__(self) -> int:
        return hash(self._key())

    def __repr__(self) -> str:
        return (f"{self.__class__.__qualname__}("
                + ", ".join([f"{n}={getattr(self, n)!r}" for n in self._repr]) + ")")

    def __reduce__(self) -> tuple[Any, ...]:
        # Rebuilt through __init__: pickle's default would set the slots with
        # setattr, which a frozen instance refuses.
        return self.__class__, tuple([getattr(self, n) for n in self._fields])

    def _replace(self: R, **changes: Any) -> R:
        """A copy with ``changes`` (as ``dataclasses.replace``)."""
        values = {n: getattr(self, n) for n in self._fields}
        values.update(changes)
        return self.__class__(**values)

    __replace__ = _replace   # copy.replace (Python 3.13), as a dataclass has it
