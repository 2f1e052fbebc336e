"""A small harness to drive the model directly with calls, as TiCDC's dispatchers would."""

from __future__ import annotations

from typing import Any

from budget.config import BudgetConfig
from budget.decisions import Decision
from budget.engine import Engine


class Harness:
    """An engine for one scope, a clock, and the decisions it made."""

    def __init__(self, sink: str = "cloudstorage", **config: Any) -> None:
        self.records: list[Decision] = []
        self.engine = Engine(BudgetConfig().merged(config), self.records.append)
        self.sink = sink
        self.cf = "default/cf"
        self.t = 0.0
        self._ids: dict[str, int] = {}

    @property
    def scope(self):  # type: ignore[no-untyped-def]
        return self.engine.scope(self.cf, self.sink)

    def tick(self, dt: float = 1.0) -> None:
        self.t += dt

    def enqueue(self, d: str, *sizes: int) -> list[int]:
        ids = []
        for _ in sizes:
            self._ids[d] = self._ids.get(d, 0) + 1
            ids.append(self._ids[d])
        self.engine.enqueue(self.t, None, self.cf, self.sink, d, list(zip(ids, sizes, strict=True)))
        return ids

    def flush(self, d: str, dml_id: int) -> None:
        self.engine.flush(self.t, None, self.cf, self.sink, d, dml_id)

    def remove(self, d: str) -> None:
        self.engine.remove(self.t, None, self.cf, self.sink, d)

    def finish(self) -> None:
        self.engine.finish()

    def paused(self, d: str) -> bool:
        return self.scope.dispatchers[d].paused

    def kinds(self, kind: str, **match: Any) -> list[Decision]:
        return [r for r in self.records if r.kind == kind
                and all(getattr(r, k) == v for k, v in match.items())]

    def wakes(self, by: str | None = None) -> list[str]:
        return [r.dispatcher for r in self.records
                if r.kind == "wake" and (by is None or r.by == by)]
