"""Closed-loop trace synthesis: the budget's decisions feed back into the workload.

A paused dispatcher delivers nothing until it is woken, exactly as TiCDC's dynamic stream behaves,
so a synthesized trace never holds an enqueue while paused. Each dispatcher is a source of batches
with wanted arrival times; a batch that arrives while its dispatcher is paused waits for the wake.
"""

from __future__ import annotations

import heapq
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field

from budget.admission import admit
from budget.config import BudgetConfig
from budget.decisions import WAKE, Decision
from budget.engine import Engine
from traces.writer import TraceWriter


@dataclass
class Batch:
    """One handled batch: when it wants to arrive, and each DML's size and flush latency."""

    at: float
    sizes: list[int]
    latencies: list[float]


@dataclass
class Source:
    """A dispatcher's workload: its batches in arrival order and, optionally, its removal."""

    dispatcher: str
    batches: Iterator[Batch]
    changefeed: str | None = None
    sink: str | None = None
    remove_at: float | None = None
    #: DMLs still in flight at removal never flush (a leak in the recorded system).
    leak_on_remove: bool = False
    # state
    next_id: int = 0
    waiting: Batch | None = None
    removed: bool = False
    pending_flushes: set[int] = field(default_factory=set)


# Event kinds, ordered so that at equal times flushes come before removals and arrivals.
_FLUSH, _REMOVE, _ARRIVE = 0, 1, 2


class ClosedLoop:
    """Runs sources against the model and writes the resulting trace."""

    def __init__(self, writer: TraceWriter, config: BudgetConfig, changefeed: str,
                 sink: str, ts_digits: int = 6) -> None:
        self.writer = writer
        self.changefeed = changefeed
        self.sink = sink
        self.digits = ts_digits
        self.engine = Engine(config, self._on_decision)
        self._heap: list[tuple[float, int, int, object]] = []
        self._seq = 0
        self._sources: dict[tuple[str, str, str], Source] = {}
        self._now = 0.0
        self.events = 0
        #: Optional ``progress(now)``, called every ``progress_every`` events (a progress bar).
        self.progress: Callable[[float], None] | None = None
        self.progress_every = 1 << 14

    def _push(self, t: float, kind: int, payload: object) -> None:
        self._seq += 1
        heapq.heappush(self._heap, (round(t, self.digits), kind, self._seq, payload))

    def add(self, src: Source) -> None:
        key = (src.changefeed or self.changefeed, src.sink or self.sink, src.dispatcher)
        self._sources[key] = src
        self._schedule_next(src)
        if src.remove_at is not None:
            self._push(src.remove_at, _REMOVE, src)

    def _schedule_next(self, src: Source, not_before: float = 0.0) -> None:
        b = next(src.batches, None)
        if b is not None:
            b.at = max(b.at, not_before)
            self._push(b.at, _ARRIVE, (src, b))

    def _on_decision(self, rec: Decision) -> None:
        if rec.kind == WAKE and not rec.drain:
            src = self._sources.get((rec.changefeed, rec.sink, rec.dispatcher or ""))
            if src is not None and src.waiting is not None:
                b, src.waiting = src.waiting, None
                self._push(self._now, _ARRIVE, (src, b))

    def run(self, until: float | None = None) -> None:
        heap = self._heap
        w = self.writer
        eng = self.engine
        while heap:
            t, kind, _seq, payload = heapq.heappop(heap)
            if until is not None and t > until:
                break
            self._now = t
            if kind == _FLUSH:
                src, dml_id = payload  # type: ignore[misc]
                if dml_id not in src.pending_flushes:
                    continue
                src.pending_flushes.discard(dml_id)
                cf, sk = src.changefeed, src.sink
                w.flush_event(t, src.dispatcher, dml_id, cf, sk)
                eng.flush(t, None, cf or self.changefeed, sk or self.sink, src.dispatcher, dml_id)
            elif kind == _REMOVE:
                src = payload  # type: ignore[assignment]
                src.removed = True
                src.waiting = None
                if src.leak_on_remove:
                    src.pending_flushes.clear()
                w.remove(t, src.dispatcher, src.changefeed, src.sink)
                eng.remove(t, None, src.changefeed or self.changefeed, src.sink or self.sink,
                           src.dispatcher)
            else:
                src, batch = payload  # type: ignore[misc]
                if src.removed:
                    continue
                scope = eng.scope(src.changefeed or self.changefeed, src.sink or self.sink)
                d = scope.dispatchers.get(src.dispatcher)
                if d is not None and d.paused:
                    src.waiting = batch  # delivered when the dispatcher is woken
                    continue
                if not admit(eng, t, src.changefeed or self.changefeed, src.sink or self.sink,
                             src.dispatcher, sum(batch.sizes)):
                    src.waiting = batch  # policy admission: held back until a wake
                    continue
                dmls = []
                for size, lat in zip(batch.sizes, batch.latencies, strict=True):
                    src.next_id += 1
                    dmls.append((src.next_id, size))
                    src.pending_flushes.add(src.next_id)
                    self._push(t + lat, _FLUSH, (src, src.next_id))
                w.enqueue(t, src.dispatcher, dmls, src.changefeed, src.sink)
                eng.enqueue(t, None, src.changefeed or self.changefeed, src.sink or self.sink,
                            src.dispatcher, dmls)
                self._schedule_next(src, not_before=t)
            self.events += 1
            if self.progress is not None and not self.events % self.progress_every:
                self.progress(t)
