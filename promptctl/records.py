"""Frozen records: what ``@dataclass(frozen=True)`` gives, for the types on the CLI's start-up path.

``dataclasses`` costs about 15 ms to import on a small machine (it imports ``inspect``), and each decorated
class about 0.7 ms more (its methods are generated and compiled). ``promptctl log`` loads a dozen such types
and is measured against a bare ``git for-each-ref`` started from Python, so its types are records instead:
a class lists its fields as annotations, in order, as a dataclass does; a class attribute is a field's
default; ``Factory(dict)`` makes a fresh default per instance. Records are immutable, compare and hash by
their field values (and class), and print like dataclasses. Modules off that path keep using dataclasses.

    class Serving(Record):
        version: str
        percent: int
        template_hash: str = ""
"""

from __future__ import annotations

__all__ = ["Factory", "FrozenRecordError", "Record"]


class FrozenRecordError(AttributeError):
    """Assigning to a field of a record (records never change once made)."""


class Factory:
    """A default made anew for each record: ``notes: list[str] = Factory(list)``."""

    __slots__ = ("make",)

    def __init__(self, make):
        self.make = make


_MISSING = object()


def _own_annotations(cls: type) -> dict:
    """The annotations the class body wrote, in order (not its bases'). Python 3.14 evaluates them lazily
    (``__annotate__``) unless the module has ``from __future__ import annotations``."""
    own = cls.__dict__.get("__annotations__")
    if own is not None:
        return own
    try:
        import annotationlib  # Python 3.14+
    except ImportError:
        return {}
    return annotationlib.get_annotations(cls, format=annotationlib.Format.FORWARDREF)


class Record:
    __slots__ = ()
    _fields: tuple[str, ...] = ()
    _defaults: tuple = ()  # one per field: the default, a Factory, or _MISSING

    def __init_subclass__(cls, **kwargs) -> None:
        super().__init_subclass__(**kwargs)
        names = tuple(_own_annotations(cls))
        defaults = tuple(cls.__dict__.get(name, _MISSING) for name in names)
        seen_default = False
        for name, default in zip(names, defaults, strict=True):
            if default is _MISSING and seen_default:
                raise TypeError(
                    f"{cls.__name__}: field {name!r} without a default follows one with a default"
                )
            seen_default = seen_default or default is not _MISSING
        for name, default in zip(names, defaults, strict=True):
            if isinstance(default, Factory):
                delattr(cls, name)  # the class attribute would be a shared Factory, not a value
        cls._fields = names
        cls._defaults = defaults

    def __init__(self, *args, **kwargs) -> None:
        fields = self._fields
        if len(args) > len(fields):
            raise TypeError(f"{type(self).__name__}() takes {len(fields)} arguments, {len(args)} given")
        values = self.__dict__
        for name, value in zip(fields, args, strict=False):  # args may stop early: the rest below
            values[name] = value
        if len(args) == len(fields) and not kwargs:
            return
        for name, default in zip(fields[len(args) :], self._defaults[len(args) :], strict=True):
            if name in kwargs:
                values[name] = kwargs.pop(name)
            elif default is _MISSING:
                raise TypeError(f"{type(self).__name__}() missing the argument {name!r}")
            else:
                values[name] = default.make() if isinstance(default, Factory) else default
        if kwargs:
            name = next(iter(kwargs))
            given_twice = name in fields
            what = "got two values for" if given_twice else "got an unexpected argument"
            raise TypeError(f"{type(self).__name__}() {what} {name!r}")

    def _values(self) -> tuple:
        values = self.__dict__
        return tuple(values[name] for name in self._fields)

    def __setattr__(self, name: str, value) -> None:
        raise FrozenRecordError(f"cannot assign to field {name!r} of a {type(self).__name__}")

    def __delattr__(self, name: str) -> None:
        raise FrozenRecordError(f"cannot delete field {name!r} of a {type(self).__name__}")

    def __eq__(self, other) -> bool:
        if other.__class__ is not self.__class__:
            return NotImplemented
        return self._values() == other._values()

    def __hash__(self) -> int:
        return hash((self.__class__, self._values()))

    def __repr__(self) -> str:
        fields = ", ".join(
            f"{name}={value!r}" for name, value in zip(self._fields, self._values(), strict=True)
        )
        return f"{type(self).__qualname__}({fields})"
