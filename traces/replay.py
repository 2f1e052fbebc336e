"""Feeds a trace file through the budget engine: the one loop between the format and the model."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from dataclasses import dataclass

from budget.config import POLICIES, BudgetConfig
from budget.decisions import (
    AFTER_REMOVE,
    ANOMALY,
    CONFORMANCE_CODES,
    ENQUEUE_WHILE_PAUSED,
    UNKNOWN_FLUSH,
    Decision,
    DecisionSink,
)
from budget.engine import DuplicateDml, Engine
from budget.scope import Scope
from traces.errors import StrictAnomaly, TraceError
from traces.format import Enqueue, Flush, Header
from traces.reader import TraceReader


@dataclass
class ReplayResult:
    """What a finished replay leaves besides its decisions: the model's final state and counts."""

    path: str
    config: BudgetConfig
    header: Header | None
    engine: Engine
    events: int
    enqueues: int
    flushes: int
    removes: int
    first_ts: float | None
    last_ts: float | None


def resolve_config(header: Header | None, overrides: dict[str, object] | None = None,
                   source: str = "<trace>") -> BudgetConfig:
    """Defaults, then the trace header's ``config``, then command-line overrides."""
    cfg = BudgetConfig()
    if header is not None and header.config is not None:
        hdr = {f: getattr(header.config, f) for f in header.config.__struct_fields__}
        if hdr.get("policy") is not None and hdr["policy"] not in POLICIES:
            raise TraceError(source, 1, f"unknown policy {hdr['policy']!r} (expected one of "
                             f"{', '.join(POLICIES)})", "config.policy")
        cfg = cfg.merged(hdr)
    if overrides:
        given = {k: v for k, v in overrides.items() if v is not None}
        cfg = cfg.merged(given)
        # A quota typed on the command line replaces an area quota recorded in the header.
        if "memory_quota" in given and "area_quota" not in given:
            cfg = dataclasses.replace(cfg, area_quota=None)
    return cfg


def _describe(rec: Decision, last_id: object) -> str:
    if rec.code == ENQUEUE_WHILE_PAUSED:
        return f"enqueue by dispatcher {rec.dispatcher} while its path is paused"
    if rec.code == UNKNOWN_FLUSH:
        return (f"flush of id {last_id!r} for dispatcher {rec.dispatcher}, which has no such "
                "DML in flight")
    if rec.code == AFTER_REMOVE:
        return f"enqueue for dispatcher {rec.dispatcher}, which was removed"
    return f"anomaly {rec.code}"


def replay(path: str, emit: DecisionSink, overrides: dict[str, object] | None = None, *,
           strict: bool = False, progress: Callable[[int], None] | None = None,
           on_new_scope: Callable[[Scope], None] | None = None,
           on_open: Callable[[TraceReader, BudgetConfig], None] | None = None,
           on_event: Callable[[int, object], None] | None = None,
           on_trace_end: Callable[[], None] | None = None) -> ReplayResult:
    """Replay the trace at ``path`` (a file, ``.gz`` or ``-``), sending decisions to ``emit``.

    ``on_event(line, event)`` sees each trace event before the model applies it (workload views);
    ``on_trace_end()`` runs after the last event and before the end-of-trace records and drain,
    when the model holds the state the trace itself left.
    Raises :class:`TraceError` (and subclasses) for bad input.
    """
    with TraceReader(path, progress=progress) as reader:
        name = reader.name
        header = reader.header
        config = resolve_config(header, overrides, name)
        if on_open is not None:
            on_open(reader, config)
        sink_fn = emit
        if strict:
            last: list[object] = [None]
            user_on_event = on_event

            def on_event(line: int, ev: object) -> None:
                last[0] = getattr(ev, "id", None)
                if user_on_event is not None:
                    user_on_event(line, ev)

            def sink_fn(rec: Decision) -> None:
                if rec.kind == ANOMALY and rec.code in CONFORMANCE_CODES:
                    raise StrictAnomaly(name, rec.line, _describe(rec, last[0]) +
                                        " (a conformance anomaly; fatal under --strict)")
                emit(rec)
        engine = Engine(config, sink_fn, on_new_scope)
        dcf, dsink = reader.default_scope
        cause = engine.cause
        scope_of = engine.scope
        default_scope = None
        n_enq = n_fl = n_rm = 0
        first_ts = None
        # The hot loop: the engine's own enqueue/flush/remove, with the cause moved and the scope
        # looked up here so that events of the header's default scope cost no tuple or lookup.
        for line, ev in reader:
            if on_event is not None:
                on_event(line, ev)
            cause.ts = ev.ts  # type: ignore[union-attr]
            cause.line = line
            if ev.changefeed is None and ev.sink is None:  # type: ignore[union-attr]
                scope = default_scope
                if scope is None:
                    scope = default_scope = scope_of(dcf, dsink)
            else:
                scope = scope_of(ev.changefeed or dcf, ev.sink or dsink)  # type: ignore[union-attr]
            cls = ev.__class__
            try:
                if cls is Flush:
                    n_fl += 1
                    scope.flush(ev.dispatcher, ev.id)  # type: ignore[union-attr]
                elif cls is Enqueue:
                    n_enq += 1
                    evs = ev.events  # type: ignore[union-attr]
                    scope.enqueue(ev.dispatcher,  # type: ignore[union-attr]
                                  [(ev.id, ev.bytes)] if evs is None  # type: ignore[union-attr]
                                  else [(x.id, x.bytes) for x in evs])
                else:
                    n_rm += 1
                    scope.remove(ev.dispatcher)  # type: ignore[union-attr]
            except DuplicateDml as e:
                raise TraceError(name, line, f"DML id {e.dml_id!r} of dispatcher "
                                 f"{e.dispatcher} is enqueued again while still in flight "
                                 "(ids are unique within a dispatcher)", "id") from None
            if first_ts is None:
                first_ts = cause.ts
                engine.started = True
        if on_trace_end is not None:
            on_trace_end()
        engine.finish()
        return ReplayResult(path=name, config=config, header=header, engine=engine,
                            events=n_enq + n_fl + n_rm, enqueues=n_enq, flushes=n_fl,
                            removes=n_rm, first_ts=first_ts, last_ts=engine.last_ts)
