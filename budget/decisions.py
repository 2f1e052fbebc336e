"""Decision records: what the model decided, one record per decision (SPEC section 5).

The decision log is the project's ground truth; every table, statistic, metric and check is a view
of a stream of these records.
"""

from __future__ import annotations

from typing import Protocol

import msgspec

BLOCK = "block"
HANDOFF = "handoff"
WAKE = "wake"
CROSS = "cross"
ANOMALY = "anomaly"

# Anomaly codes.
ENQUEUE_WHILE_PAUSED = "enqueue_while_paused"
UNKNOWN_FLUSH = "unknown_flush"
AFTER_REMOVE = "after_remove"
UNDERFLOW = "underflow"
LEAK = "leak"
STRANDED = "stranded"

#: Anomalies that show the recorded system did not follow the model (``--strict`` makes them fatal).
CONFORMANCE_CODES = frozenset({ENQUEUE_WHILE_PAUSED, UNKNOWN_FLUSH, AFTER_REMOVE})


class Decision(msgspec.Struct, omit_defaults=True, kw_only=True, gc=False):
    """One decision. Fields that do not apply to a kind stay ``None`` and are not encoded."""

    kind: str
    ts: float
    changefeed: str
    sink: str
    line: int | None = None
    dispatcher: str | None = None
    by: str | None = None
    per_inflight: int | None = None
    global_inflight: int | None = None
    blocked_for: float | None = None
    round: int | None = None
    position: int | None = None
    level: str | None = None
    mark: str | None = None
    direction: str | None = None
    inflight: int | None = None
    code: str | None = None
    detail: str | None = None
    drain: bool = False


class DecisionSink(Protocol):
    """Anything that takes decisions as they are made."""

    def __call__(self, decision: Decision, /) -> None: ...


class Cause:
    """Where the event being applied came from: its trace time and line, or the end-of-trace drain.

    The model reads it when it writes a record; the replay engine moves it forward before each
    event.
    It is data, not a clock: the core never asks the system for the time.
    """

    __slots__ = ("ts", "line", "drain", "seq")

    def __init__(self) -> None:
        self.ts: float = 0.0
        self.line: int | None = None
        self.drain: bool = False
        #: DMLs tracked so far, in every scope: orders the end-of-trace drain by enqueue.
        self.seq: int = 0
