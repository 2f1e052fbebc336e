"""The replay engine: applies trace events, in order, to the scopes and finishes the trace.

It is driven by plain calls (one per trace event) and reports every decision to one sink, in the
order the reference makes them (SPEC section 5). It knows nothing of files or formats.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable

from budget.config import BudgetConfig
from budget.decisions import AFTER_REMOVE, ENQUEUE_WHILE_PAUSED, LEAK, STRANDED, UNKNOWN_FLUSH, Cause, DecisionSink
from budget.dispatcher import Dispatcher, DmlId
from budget.scope import Scope


class DuplicateDml(Exception):
    """A DML id enqueued again while it is still in flight: the trace is invalid."""

    def __init__(self, dispatcher: str, dml_id: DmlId) -> None:
        super().__init__(f"DML id {dml_id!r} of dispatcher {dispatcher} is already in flight")
        self.dispatcher = dispatcher
        self.dml_id = dml_id


class Engine:
    """Replays a trace through one model per scope and reports decisions to ``emit``."""

    def __init__(self, config: BudgetConfig, emit: DecisionSink,
                 on_new_scope: Callable[[Scope], None] | None = None) -> None:
        self.config = config
        self.emit = emit
        self.cause = Cause()
        self.scopes: dict[tuple[str, str], Scope] = {}
        self.on_new_scope = on_new_scope
        self.last_ts: float | None = None
        self._seq = 0
        self.finished = False

    def scope(self, changefeed: str, sink: str) -> Scope:
        key = (changefeed, sink)
        s = self.scopes.get(key)
        if s is None:
            s = Scope(changefeed, sink, self.config.limits_for(sink), self.cause, self.emit)
            self.scopes[key] = s
            if self.on_new_scope is not None:
                self.on_new_scope(s)
        return s

    def _at(self, ts: float, line: int | None) -> None:
        c = self.cause
        c.ts = ts
        c.line = line
        self.last_ts = ts

    def enqueue(self, ts: float, line: int | None, changefeed: str, sink: str, dispatcher: str,
                dmls: Iterable[tuple[DmlId, int]]) -> None:
        """One handled batch: track each DML, then try block once if the batch had any DML."""
        self._at(ts, line)
        scope = self.scope(changefeed, sink)
        d = scope.dispatchers.get(dispatcher)
        if d is None:
            if dispatcher in scope.removed_ids:
                scope.report.anomaly(AFTER_REMOVE, dispatcher)
                return
            d = scope.new_dispatcher(dispatcher)
        elif d.removed:
            scope.report.anomaly(AFTER_REMOVE, dispatcher)
            return
        dmls = list(dmls)
        inflight = d.dmls
        if len(dmls) == 1:
            if dmls[0][0] in inflight:
                raise DuplicateDml(dispatcher, dmls[0][0])
        else:
            ids = [i for i, _ in dmls]
            if len(set(ids)) != len(ids) or any(i in inflight for i in ids):
                seen: set[DmlId] = set()
                for i in ids:
                    if i in inflight or i in seen:
                        raise DuplicateDml(dispatcher, i)
                    seen.add(i)
        if not dmls:
            return
        if d.paused:
            scope.report.anomaly(ENQUEUE_WHILE_PAUSED, dispatcher)
        mult = scope.limits.multiplier
        seq = self._seq
        for dml_id, size in dmls:
            seq += 1
            d.track(dml_id, size * mult, seq)
        self._seq = seq
        d.after_batch()

    def flush(self, ts: float, line: int | None, changefeed: str, sink: str, dispatcher: str,
              dml_id: DmlId) -> None:
        """A DML's post-flush callback fired."""
        self._at(ts, line)
        scope = self.scope(changefeed, sink)
        d = scope.dispatchers.get(dispatcher)
        if d is None or dml_id not in d.dmls:
            scope.report.anomaly(UNKNOWN_FLUSH, dispatcher)
            return
        d.flush(dml_id)
        if d.removed:
            scope.forget_if_done(d)

    def remove(self, ts: float, line: int | None, changefeed: str, sink: str,
               dispatcher: str) -> None:
        """The dispatcher is cleaned up: it leaves the global queue; nobody is woken."""
        self._at(ts, line)
        scope = self.scope(changefeed, sink)
        d = scope.dispatchers.get(dispatcher)
        if d is None:
            scope.removed_ids.add(dispatcher)
            return
        if d.removed:
            return
        d.remove()
        scope.forget_if_done(d)

    def finish(self) -> None:
        """End of trace: leaks, then the drain (every DML still in flight, in enqueue order),
        then one ``stranded`` per dispatcher still paused after the drain."""
        if self.finished:
            return
        self.finished = True
        if self.last_ts is None:
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
