"""One registry of named things (samplers, datasets, tables, aggregations, fusions), after torchvision's
``models/_api.py`` and lm-evaluation-harness's ``lm_eval/api/registry.py``.

Contract of a :class:`Registry`:

- a name is registered once: registering another object under a taken name is a ``ValueError`` (a bug in the
  code that registers); registering the same object again is a no-op;
- :meth:`Registry.get` of an unknown name is a one-line :class:`~samplerbench.core.errors.UserError`:
  ``unknown <kind> 'nsnte'; did you mean 'nsnet'? valid: a, b, c`` ("did you mean" only when a name is close);
- names come in registration order, or sorted when the registry is made with ``sort=True``;
- with ``entry_points=GROUP``, the entry points of that group are loaded once, at the first lookup; an object
  one names that its import did not register is registered under the entry point's name."""

from __future__ import annotations

import difflib
import types
from collections.abc import Callable, Iterator
from importlib.metadata import entry_points as installed_entry_points
from typing import Generic, TypeVar, overload

from samplerbench.core.errors import UserError

T = TypeVar("T")


class Registry(Generic[T]):
    """Names to objects of one ``kind`` (the word error messages use: ``"sampler"``).

    ``check(name, obj)``: called before ``obj`` is stored under ``name``; it raises for an object this registry
    cannot hold (and may stamp the name on it)."""

    def __init__(self, kind: str, *, sort: bool = False, entry_points: str | None = None,
                 check: Callable[[str, T], None] | None = None) -> None:
        self.kind = kind
        self._sort = sort
        self._group = entry_points
        self._check = check
        self._entries: dict[str, T] = {}
        self._group_loaded = entry_points is None

    @overload
    def register(self, name: str) -> Callable[[T], T]: ...

    @overload
    def register(self, name: str, obj: T) -> T: ...

    def register(self, name: str, obj: T | None = None) -> T | Callable[[T], T]:
        """Register ``obj`` under ``name`` and return it; without ``obj``, a decorator that does so:
        ``@REGISTRY.register("uniform")``."""
        if obj is None:
            return lambda decorated: self.register(name, decorated)
        existing = self._entries.get(name)
        if existing is not None and existing != obj:
            origin = f" (in {existing.__module__})" if isinstance(existing, type | types.FunctionType) else ""
            raise ValueError(f"a {self.kind} named {name!r} is already registered{origin}")
        if self._check is not None:
            self._check(name, obj)
        self._entries[name] = obj
        return obj

    def get(self, name: str) -> T:
        """The object registered as ``name``, else the module's one-line :class:`UserError`."""
        self._load_group()
        try:
            return self._entries[name]
        except KeyError:
            valid = self.names()
            close = difflib.get_close_matches(str(name), valid, n=1)
            hint = f" did you mean {close[0]!r}?" if close else ""
            raise UserError(f"unknown {self.kind} {name!r};{hint} valid: {', '.join(valid)}") from None

    def names(self) -> list[str]:
        """Every registered name, in registration order (sorted for a registry made with ``sort=True``)."""
        self._load_group()
        return sorted(self._entries) if self._sort else list(self._entries)

    def items(self) -> list[tuple[str, T]]:
        """``(name, object)`` pairs in :meth:`names`' order."""
        return [(name, self._entries[name]) for name in self.names()]

    def __iter__(self) -> Iterator[str]:
        return iter(self.names())

    def __contains__(self, name: object) -> bool:
        self._load_group()
        return name in self._entries

    def _load_group(self) -> None:
        """Import the entry points of the registry's group, once; see the module's contract."""
        if self._group_loaded:
            return
        self._group_loaded = True
        for ep in installed_entry_points(group=self._group):
            obj = ep.load()
            if ep.name not in self._entries and obj not in self._entries.values():
                self.register(ep.name, obj)
