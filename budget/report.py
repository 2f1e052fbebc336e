"""The scope's voice: builds decision records with the scope and the current cause filled in."""

from __future__ import annotations

from budget.decisions import ANOMALY, BLOCK, CROSS, HANDOFF, WAKE, Cause, Decision, DecisionSink


class Reporter:
    """Writes the records of one (changefeed, sink) scope to the decision sink.

    Each method builds its record in one call with explicit fields: records are made on the
    replay's hot path, so no keyword dictionaries are packed and unpacked on the way.
    """

    __slots__ = ("changefeed", "sink", "cause", "emit")

    def __init__(self, changefeed: str, sink: str, cause: Cause, emit: DecisionSink) -> None:
        self.changefeed = changefeed
        self.sink = sink
        self.cause = cause
        self.emit = emit

    def cross(self, level: str, mark: str, direction: str, inflight: int,
              dispatcher: str | None = None) -> None:
        c = self.cause
        self.emit(Decision(kind=CROSS, ts=c.ts, line=c.line, drain=c.drain,
                           changefeed=self.changefeed, sink=self.sink, dispatcher=dispatcher,
                           level=level, mark=mark, direction=direction, inflight=inflight))

    def block(self, dispatcher: str, by: str, per_inflight: int | None = None,
              global_inflight: int | None = None) -> None:
        c = self.cause
        self.emit(Decision(kind=BLOCK, ts=c.ts, line=c.line, drain=c.drain,
                           changefeed=self.changefeed, sink=self.sink, dispatcher=dispatcher,
                           by=by, per_inflight=per_inflight, global_inflight=global_inflight))

    def handoff(self, dispatcher: str, per_inflight: int, global_inflight: int) -> None:
        c = self.cause
        self.emit(Decision(kind=HANDOFF, ts=c.ts, line=c.line, drain=c.drain,
                           changefeed=self.changefeed, sink=self.sink, dispatcher=dispatcher,
                           per_inflight=per_inflight, global_inflight=global_inflight))

    def wake(self, dispatcher: str, by: str, blocked_for: float, round: int | None = None,
             position: int | None = None) -> None:
        c = self.cause
        self.emit(Decision(kind=WAKE, ts=c.ts, line=c.line, drain=c.drain,
                           changefeed=self.changefeed, sink=self.sink, dispatcher=dispatcher,
                           by=by, blocked_for=blocked_for, round=round, position=position))

    def anomaly(self, code: str, dispatcher: str | None = None, detail: str | None = None) -> None:
        c = self.cause
        self.emit(Decision(kind=ANOMALY, ts=c.ts, line=c.line, drain=c.drain,
                           changefeed=self.changefeed, sink=self.sink, dispatcher=dispatcher,
                           code=code, detail=detail))
