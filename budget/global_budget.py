"""The per-changefeed global in-flight budget (Option A): a byte counter and a FIFO of waiters.

One exists per (changefeed, sink type) scope. It mirrors the plan's API: ``on_enqueue``,
``try_block``, ``on_flush`` and ``cleanup_dispatcher``.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable

from budget.decisions import UNDERFLOW
from budget.report import Reporter

#: A registered waiter's wake callback: called with the round and the position the wake would
#: take; returns True when it actually resumed the dispatcher.
WakeCallback = Callable[[int, int], bool]


class GlobalBudget:
    """Global in-flight bytes with high/low watermarks and a FIFO queue of blocked dispatchers.

    The queue is a deque of ids and the blocked set a dict; a dispatcher removed by cleanup stays in
    the deque as a tombstone that a wake round skips and drops, so every operation is O(1)
    amortised and a round costs O(woken + tombstones skipped).
    """

    __slots__ = ("high", "low", "max_wake", "inflight", "peak", "peak_ts", "rounds",
                 "_blocked", "_queue", "_report", "probe")

    def __init__(self, high: int, low: int, max_wake: int, report: Reporter) -> None:
        self.high = high
        self.low = low
        self.max_wake = max_wake
        self.inflight = 0
        self.peak = 0
        self.peak_ts = 0.0
        self.rounds = 0  # rounds that woke at least one dispatcher
        self._blocked: dict[str, tuple[WakeCallback, float]] = {}
        self._queue: deque[str] = deque()
        self._report = report
        #: Optional observer of every change of ``inflight``: ``probe(ts, inflight)``.
        self.probe: Callable[[float, int], None] | None = None

    @property
    def blocked_count(self) -> int:
        return len(self._blocked)

    def is_blocked(self, dispatcher_id: str) -> bool:
        return dispatcher_id in self._blocked

    def queued(self) -> list[str]:
        """The live waiters in FIFO order (tombstones left out)."""
        seen: set[str] = set()
        out = []
        for d in self._queue:
            if d in self._blocked and d not in seen:
                seen.add(d)
                out.append(d)
        return out

    def on_enqueue(self, eff: int) -> None:
        if eff <= 0:
            return
        before = self.inflight
        after = before + eff
        self.inflight = after
        if after > self.peak:
            self.peak = after
            self.peak_ts = self._report.cause.ts
        if before < self.high <= after:
            self._report.cross("global", "high", "up", after)
        if self.probe is not None:
            self.probe(self._report.cause.ts, after)

    def try_block(self, dispatcher_id: str, wake: WakeCallback) -> bool:
        """Hold the dispatcher when in-flight is at or above high; keeps its first queue place."""
        if self.inflight < self.high:
            return False
        if dispatcher_id not in self._blocked:
            self._blocked[dispatcher_id] = (wake, self._report.cause.ts)
            self._queue.append(dispatcher_id)
        return True

    def on_flush(self, eff: int) -> None:
        """Release a flushed DML's bytes; a release that ends at or below low runs a wake round."""
        before = self.inflight
        after = before - eff
        if after < 0:
            self._report.anomaly(UNDERFLOW, detail=f"global in-flight {before} - {eff} < 0")
            after = 0
        self.inflight = after
        low = self.low
        if before > low >= after:
            self._report.cross("global", "low", "down", after)
        if self.probe is not None:
            self.probe(self._report.cause.ts, after)
        if after <= low:
            self._wake_round()

    def cleanup_dispatcher(self, dispatcher_id: str) -> None:
        """Forget a removed dispatcher; its queue entry becomes a tombstone. Nobody is woken."""
        self._blocked.pop(dispatcher_id, None)

    def _wake_round(self) -> None:
        queue = self._queue
        if not queue:
            return
        blocked = self._blocked
        taken: list[WakeCallback] = []
        while queue and len(taken) < self.max_wake:
            if self.inflight >= self.high:
                break
            entry = blocked.pop(queue.popleft(), None)
            if entry is not None:  # else a tombstone: skipped and dropped
                taken.append(entry[0])
        round_no = self.rounds + 1
        woken = 0
        for wake in taken:
            if wake(round_no, woken + 1):
                woken += 1
        if woken:
            self.rounds = round_no
