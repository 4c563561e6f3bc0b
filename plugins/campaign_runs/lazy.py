"""A class attribute built on first read, so declaring a plugin does not import what only some processes use."""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Generic, TypeVar, cast

T = TypeVar("T")


class Lazy(Generic[T]):
    """Descriptor: calls ``factory`` on the first read (class or instance) and returns that same value ever after."""

    def __init__(self, factory: Callable[[], T]) -> None:
        self._factory = factory
        self._lock = threading.Lock()
        self._built = False
        self._value: T | None = None
        self.__doc__ = factory.__doc__

    def __get__(self, instance: object, owner: type | None = None) -> T:
        """The factory's value, built once."""
        if not self._built:
            with self._lock:
                if not self._built:
                    self._value = self._factory()
                    self._built = True
        return cast("T", self._value)

    def __repr__(self) -> str:
        state = "built" if self._built else "not built yet"
        return f"<Lazy {getattr(self._factory, '__qualname__', self._factory)!r}, {state}>"


class Computed(Generic[T]):
    """Descriptor: calls ``factory`` on every read (class or instance), for values that follow the configuration."""

    def __init__(self, factory: Callable[[], T]) -> None:
        self._factory = factory
        self.__doc__ = factory.__doc__

    def __get__(self, instance: object, owner: type | None = None) -> T:
        """The factory's value now."""
        return self._factory()
