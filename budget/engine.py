"""The replay engine: applies trace events, in order, to the scopes and finishes the trace.

It is driven by plain calls (one per trace event) and reports every decision to one sink, in the
order the reference makes them (SPEC section 5). It knows nothing of files or formats.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable

from budget.config import BudgetConfig
from budget.decisions import LEAK, STRANDED, Cause, DecisionSink
from budget.dispatcher import Dispatcher, DmlId
from budget.scope import DuplicateDml, Scope

__all__ = ["Engine", "DuplicateDml"]


class Engine:
    """Replays a trace through one model per scope and reports decisions to ``emit``.

    Each event method first moves the shared :class:`Cause` to the event's time and line. A fast
    caller (the trace replay loop) may do that itself with :meth:`at` and call the scope's own
    ``enqueue``/``flush``/``remove``; the decisions are the same.
    """

    def __init__(self, config: BudgetConfig, emit: DecisionSink,
                 on_new_scope: Callable[[Scope], None] | None = None) -> None:
        self.config = config
        self.emit = emit
        self.cause = Cause()
        self.scopes: dict[tuple[str, str], Scope] = {}
        self.on_new_scope = on_new_scope
        self.started = False
        self.finished = False

    @property
    def last_ts(self) -> float | None:
        """Trace time of the last event applied (``None`` before any)."""
        return self.cause.ts if self.started else None

    def scope(self, changefeed: str, sink: str) -> Scope:
        key = (changefeed, sink)
        s = self.scopes.get(key)
        if s is None:
            s = Scope(changefeed, sink, self.config.limits_for(sink), self.cause, self.emit)
            self.scopes[key] = s
            if self.on_new_scope is not None:
                self.on_new_scope(s)
        return s

    def at(self, ts: float, line: int | None) -> None:
        """Move the cause of the next decisions to trace time ``ts`` and trace line ``line``."""
        c = self.cause
        c.ts = ts
        c.line = line
        self.started = True

    def enqueue(self, ts: float, line: int | None, changefeed: str, sink: str, dispatcher: str,
                dmls: Iterable[tuple[DmlId, int]]) -> None:
        """One handled batch: track each DML, then try block once if the batch had any DML."""
        self.at(ts, line)
        self.scope(changefeed, sink).enqueue(dispatcher, list(dmls))

    def flush(self, ts: float, line: int | None, changefeed: str, sink: str, dispatcher: str,
              dml_id: DmlId) -> None:
        """A DML's post-flush callback fired."""
        self.at(ts, line)
        self.scope(changefeed, sink).flush(dispatcher, dml_id)

    def remove(self, ts: float, line: int | None, changefeed: str, sink: str,
               dispatcher: str) -> None:
        """The dispatcher is cleaned up: it leaves the global queue; nobody is woken."""
        self.at(ts, line)
        self.scope(changefeed, sink).remove(dispatcher)

    def finish(self) -> None:
        """End of trace: leaks, then the drain (every DML still in flight, in enqueue order),
        then one ``stranded`` per dispatcher still paused after the drain."""
        if self.finished:
            return
        self.finished = True
        if not self.started:
            return
        c = self.cause
        c.line = None
        scopes = list(self.scopes.values())
        for s in scopes:
            for d in s.dispatchers.values():
                if d.removed and d.dmls:
                    s.report.anomaly(LEAK, d.id)
        pending: list[tuple[int, Scope, Dispatcher, DmlId]] = []
        for s in scopes:
            for d in s.dispatchers.values():
                for dml_id, (seq, _eff) in d.dmls.items():
                    pending.append((seq, s, d, dml_id))
        pending.sort(key=lambda p: p[0])
        c.drain = True
        for _seq, s, d, dml_id in pending:
            d.flush(dml_id)
            if d.removed:
                s.forget_if_done(d)
        c.drain = False
        for s in scopes:
            for d in s.dispatchers.values():
                if d.paused and not d.removed:
                    s.report.anomaly(STRANDED, d.id)
