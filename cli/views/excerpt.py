"""A bounded list: the first and last items of a long stream, and how many there were."""

from __future__ import annotations

from collections import deque
from collections.abc import Iterator
from typing import Generic, TypeVar

T = TypeVar("T")


class Excerpt(Generic[T]):
    """Keeps the first and last ``limit`` items, so memory never grows with the trace."""

    __slots__ = ("head", "tail", "total", "_limit")

    def __init__(self, limit: int = 50) -> None:
        self._limit = limit
        self.head: list[T] = []
        self.tail: deque[T] = deque(maxlen=limit)
        self.total = 0

    def append(self, item: T) -> None:
        self.total += 1
        if len(self.head) < self._limit:
            self.head.append(item)
        else:
            self.tail.append(item)

    @property
    def omitted(self) -> int:
        return self.total - len(self.head) - len(self.tail)

    def __iter__(self) -> Iterator[T]:
        yield from self.head
        yield from self.tail

    def __len__(self) -> int:
        return len(self.head) + len(self.tail)

    def last(self) -> T | None:
        if self.tail:
            return self.tail[-1]
        return self.head[-1] if self.head else None
