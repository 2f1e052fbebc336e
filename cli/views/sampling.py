"""The model's state between trace events, and how long each budget held each dispatcher.

Time-weighted figures (mean in-flight, time above high, waiting while below low) and the gauges
of the metrics need the scope's state after every event. Only the event's own dispatcher and its
scope's global budget can change in one event (a wake round changes who is *paused*, never
in-flight bytes or the per-dispatcher ``blocked`` flag), so :class:`BoundarySampler` reads just
those after each event: O(1) per event, memory bounded by the number of dispatchers.

An event's effect is read when the next event arrives. The last event's effect is read at the
first sign of the end-of-trace drain — the first record without a line (a leak, a drain record)
or the first change of global in-flight made by the drain — so the last sample is the state the
trace itself left (leaked bytes and stranded waiters included), not the state after the simulated
drain. The replay's ``on_trace_end`` hook calls :meth:`BoundarySampler.end` exactly there; the
other signs only matter to callers that replay without that hook.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from budget.decisions import BLOCK, HANDOFF, WAKE, Decision
from budget.scope import Scope
from traces.format import DEFAULT_CHANGEFEED, DEFAULT_SINK, Remove

ScopeKey = tuple[str, str]


class ScopeState:
    """One scope's totals after the latest event that touched it."""

    __slots__ = ("changefeed", "sink", "scope", "inflight", "per_blocked", "_seen",
                 "traced_global")

    def __init__(self, scope: Scope) -> None:
        self.changefeed = scope.changefeed
        self.sink = scope.sink
        self.scope = scope
        #: Sum of the dispatchers' in-flight bytes (equals the global in-flight where there is one).
        self.inflight = 0
        #: Dispatchers held by their own budget (legacy sinks: paused until their batch flushes).
        self.per_blocked = 0
        self._seen: dict[str, tuple[int, bool]] = {}
        #: Global in-flight after the latest change caused by a trace line (not by the drain).
        self.traced_global = 0

    @property
    def key(self) -> ScopeKey:
        return (self.changefeed, self.sink)

    @property
    def global_inflight(self) -> int | None:
        return self.traced_global if self.scope.glob is not None else None

    @property
    def global_blocked(self) -> int:
        """Dispatchers in the global budget's blocked set (the live entries of its FIFO queue)."""
        glob = self.scope.glob
        return glob.blocked_count if glob is not None else 0

    def _update(self, dispatcher: str) -> None:
        d = self.scope.dispatchers.get(dispatcher)
        now = (d.inflight, d.blocked) if d is not None else (0, False)
        seen = self._seen
        before = seen.get(dispatcher, (0, False))
        if now == before:
            return
        self.inflight += now[0] - before[0]
        self.per_blocked += int(now[1]) - int(before[1])
        if now == (0, False):
            seen.pop(dispatcher, None)
        else:
            seen[dispatcher] = now


StateObserver = Callable[[float, ScopeState], None]


class BoundarySampler:
    """Feeds observers ``(ts, state)`` after every event, for the scope the event touched.

    Wire it to a replay with ``on_open``, ``on_new_scope``, ``on_event`` and ``on_progress``.
    """

    def __init__(self) -> None:
        self.observers: list[StateObserver] = []
        self.event_observers: list[Callable[[ScopeKey, Any], None]] = []
        self.scopes: dict[ScopeKey, ScopeState] = {}
        self.default_changefeed = DEFAULT_CHANGEFEED
        self.default_sink = DEFAULT_SINK
        self._pending: tuple[ScopeKey, str, float] | None = None
        self.ended = False

    def on_open(self, reader: Any, _config: object) -> None:
        self.default_changefeed, self.default_sink = reader.default_scope

    def on_new_scope(self, scope: Scope) -> None:
        state = self.scopes[(scope.changefeed, scope.sink)] = ScopeState(scope)
        glob = scope.glob
        if glob is None:
            return
        cause = scope.cause
        before = glob.probe  # another view's probe keeps working

        def probe(ts: float, inflight: int) -> None:
            if before is not None:
                before(ts, inflight)
            if cause.line is None:
                self.end()
            else:
                state.traced_global = inflight

        glob.probe = probe

    def key_of(self, ev: Any) -> ScopeKey:
        return (ev.changefeed or self.default_changefeed, ev.sink or self.default_sink)

    def on_event(self, _line: int, ev: Any) -> None:
        self.settle()
        key = self.key_of(ev)
        self._pending = (key, ev.dispatcher, ev.ts)
        for obs in self.event_observers:
            obs(key, ev)

    def on_progress(self, _done: int) -> None:
        """Kept for replay wiring; progress is reported per chunk, not per event."""

    def on_record(self, rec: Decision) -> None:
        """Decision records arrive here too: the first one without a line ends the trace."""
        if rec.line is None:
            self.end()

    def end(self) -> None:
        """The trace's lines are all applied; read the last one before the drain changes more."""
        if not self.ended:
            self.ended = True
            pending = self._pending
            if pending is not None:
                state = self.scopes.get(pending[0])
                if state is not None and state.scope.glob is not None:
                    # The drain may already have flushed one DML of the last event's dispatcher;
                    # the per-dispatcher total equals global in-flight (both sum the DMLs in
                    # flight), which the probe holds as the trace left it.
                    state._update(pending[1])
                    state.inflight = state.traced_global
                    self._pending = None
                    for obs in self.observers:
                        obs(pending[2], state)
                    return
            self.settle()

    def settle(self) -> None:
        """Read the effect of the last event (idempotent)."""
        pending = self._pending
        if pending is None:
            return
        self._pending = None
        key, dispatcher, ts = pending
        state = self.scopes.get(key)
        if state is None:  # the model never built the scope (cannot happen for a valid event)
            return
        state._update(dispatcher)
        for obs in self.observers:
            obs(ts, state)


HoldObserver = Callable[[float, ScopeKey, str, str, float], None]


class HoldTracker:
    """How long each budget held each dispatcher, folded from the decision records.

    A hold by the per-dispatcher budget (``per``; ``legacy`` for non-budget sinks) runs from the
    ``block`` that set it to the ``handoff`` or ``wake`` that ended it; a hold by the global
    budget runs from its ``block`` (or the ``handoff`` into the queue) to its global ``wake`` — the
    time spent in the FIFO queue. Records of the end-of-trace drain are not observed: a hold still
    open at the end is reported by :meth:`open_holds`. Memory: one entry per held dispatcher.
    """

    def __init__(self, sampler: BoundarySampler | None = None) -> None:
        self.sampler = sampler
        self.observers: list[HoldObserver] = []
        self._per: dict[tuple[ScopeKey, str], tuple[str, float]] = {}
        self._global: dict[tuple[ScopeKey, str], float] = {}
        if sampler is not None:
            sampler.event_observers.append(self.on_event)

    def _observe(self, ts: float, key: ScopeKey, dispatcher: str, budget: str,
                 since: float) -> None:
        for obs in self.observers:
            obs(ts, key, dispatcher, budget, ts - since)

    def __call__(self, rec: Decision) -> None:
        kind = rec.kind
        if rec.line is None:
            if self.sampler is not None:
                self.sampler.on_record(rec)
            return
        if rec.drain or kind not in (BLOCK, HANDOFF, WAKE):
            return
        key = (rec.changefeed, rec.sink)
        d = rec.dispatcher or ""
        hk = (key, d)
        if kind == BLOCK:
            if rec.by == "global":
                self._global.setdefault(hk, rec.ts)
            else:  # per or legacy: the first block starts the clock, as the model's blocked_since
                self._per.setdefault(hk, (rec.by or "per", rec.ts))
        elif kind == HANDOFF:
            held = self._per.pop(hk, None)
            if held is not None:
                self._observe(rec.ts, key, d, held[0], held[1])
            self._global[hk] = rec.ts
        else:  # a wake resumes the path: no budget holds it any more
            held = self._per.pop(hk, None)
            since = self._global.pop(hk, None)
            if rec.by == "global":
                if since is not None:
                    self._observe(rec.ts, key, d, "global", since)
            elif held is not None:
                self._observe(rec.ts, key, d, held[0], held[1])

    def on_event(self, key: ScopeKey, ev: Any) -> None:
        # A removed dispatcher leaves both budgets without a record (SPEC section 2, step 6).
        if ev.__class__ is Remove:
            self._per.pop((key, ev.dispatcher), None)
            self._global.pop((key, ev.dispatcher), None)

    def open_holds(self) -> list[tuple[ScopeKey, str, str, float]]:
        """Holds the trace left open: (scope, dispatcher, budget, since)."""
        out = [(k[0], k[1], budget, since) for k, (budget, since) in self._per.items()]
        out += [(k[0], k[1], "global", since) for k, since in self._global.items()]
        return out
