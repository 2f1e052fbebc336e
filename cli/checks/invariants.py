"""Built-in invariants, evaluated during a replay as views of the decision stream.

Each invariant folds decisions (and, where it needs the workload, the trace events) and reports
the first place it broke. Only conservation and overshoot look at model state, through the global
budget's ``probe`` hook, which observes every change of global in-flight bytes.
"""

from __future__ import annotations

from collections import OrderedDict, deque
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, ClassVar

from budget.config import POLICY_OPTION_A, format_bytes
from budget.decisions import (
    ANOMALY,
    BLOCK,
    CONFORMANCE_CODES,
    CROSS,
    HANDOFF,
    LEAK,
    STRANDED,
    UNDERFLOW,
    WAKE,
    Decision,
)
from budget.scope import Scope
from cli.console import format_seconds
from traces.format import DEFAULT_CHANGEFEED, DEFAULT_SINK, Enqueue, Flush, Remove

ScopeKey = tuple[str, str]

#: Modes of an invariant: checked, not checked, or expected to break (a scenario that shows a
#: known weak spot, such as the stranded sample).
ON, OFF, MUST_FAIL = "on", "off", "fail"

DEFAULT_MAX_OVERSHOOT = 4.0
DEFAULT_MAX_BLOCKED = 60.0


@dataclass(frozen=True)
class Violation:
    """Where an invariant first broke."""

    invariant: str
    message: str
    line: int | None = None
    ts: float | None = None
    changefeed: str | None = None
    sink: str | None = None
    dispatcher: str | None = None


@dataclass(frozen=True)
class InvariantOutcome:
    name: str
    mode: str
    violations: int
    first: Violation | None

    @property
    def passed(self) -> bool:
        if self.mode == OFF:
            return True
        if self.mode == MUST_FAIL:
            return self.violations > 0
        return self.violations == 0

    @property
    def status(self) -> str:
        """``passed``, ``failed``, ``off``, ``failed as expected`` or ``held unexpectedly``."""
        if self.mode == OFF:
            return "off"
        if self.mode == MUST_FAIL:
            return "failed as expected" if self.violations else "held unexpectedly"
        return "failed" if self.violations else "passed"


class Invariant:
    """Base: subclasses set ``name``/``summary``/``kinds`` and call :meth:`fail`."""

    name: ClassVar[str]
    summary: ClassVar[str]
    #: Decision kinds :meth:`on_decision` wants.
    kinds: ClassVar[frozenset[str]] = frozenset()
    #: True: :meth:`on_event` sees every trace event; False: only ``remove`` events.
    wants_events: ClassVar[bool] = False
    wants_probe: ClassVar[bool] = False

    def __init__(self) -> None:
        self.violations = 0
        self.first: Violation | None = None

    def fail(self, message: str, line: int | None = None, ts: float | None = None,
             scope: ScopeKey | None = None, dispatcher: str | None = None) -> None:
        self.violations += 1
        if self.first is None:
            cf, sink = scope if scope is not None else (None, None)
            self.first = Violation(self.name, message, line, ts, cf, sink, dispatcher)

    def on_decision(self, rec: Decision) -> None:
        pass

    def on_event(self, line: int, scope: ScopeKey, ev: Any) -> None:
        pass

    def on_scope(self, scope: Scope) -> None:
        pass

    def on_probe(self, scope: Scope, ts: float, inflight: int) -> None:
        pass

    def finish(self, last_ts: float) -> None:
        pass


def _at(line: int | None) -> str:
    return f"line {line}" if line is not None else "the end of the trace"


class PauseTracker:
    """Which dispatchers are paused, since when and since which line (from block/wake records)."""

    def __init__(self) -> None:
        self.paused: dict[tuple[str, str, str], tuple[float, int | None]] = {}

    def decision(self, rec: Decision) -> tuple[float, int | None] | None:
        """Fold one record; on a wake, return the pause it ended."""
        key = (rec.changefeed, rec.sink, rec.dispatcher or "")
        if rec.kind == BLOCK:
            self.paused.setdefault(key, (rec.ts, rec.line))
        elif rec.kind == WAKE:
            return self.paused.pop(key, None)
        return None

    def removed(self, scope: ScopeKey, dispatcher: str) -> None:
        # A removed dispatcher's path is gone: its pause ends without a wake.
        self.paused.pop((scope[0], scope[1], dispatcher), None)


class NoStranded(Invariant):
    name = "stranded"
    summary = ("every paused dispatcher is woken: none is still paused after the end-of-trace "
               "drain, and none is left paused without a `stranded` record")
    kinds = frozenset({BLOCK, WAKE, ANOMALY})

    def __init__(self) -> None:
        super().__init__()
        self.pauses = PauseTracker()

    def on_decision(self, rec: Decision) -> None:
        if rec.kind == ANOMALY:
            if rec.code == STRANDED:
                key = (rec.changefeed, rec.sink, rec.dispatcher or "")
                since = self.pauses.paused.pop(key, None)
                where = f" at line {since[1]} (ts {since[0]:g})" if since else ""
                self.fail(f"dispatcher {rec.dispatcher}, paused{where}, is still paused after "
                          "the end-of-trace drain: stranded", since[1] if since else None, rec.ts,
                          (rec.changefeed, rec.sink), rec.dispatcher)
            return
        self.pauses.decision(rec)

    def on_event(self, line: int, scope: ScopeKey, ev: Any) -> None:
        if ev.__class__ is Remove:
            self.pauses.removed(scope, ev.dispatcher)

    def finish(self, last_ts: float) -> None:
        for (cf, sink, d), (ts, line) in self.pauses.paused.items():
            self.fail(f"dispatcher {d}, paused at line {line} (ts {ts:g}), was neither woken nor "
                      "reported stranded at the end of the trace (did the drain run?)",
                      line, ts, (cf, sink), d)


class AnomalyFree(Invariant):
    """No anomaly record with one of ``codes``."""

    codes: ClassVar[frozenset[str]]
    kinds = frozenset({ANOMALY})

    def on_decision(self, rec: Decision) -> None:
        if rec.code in self.codes:
            self.fail(self.describe(rec), rec.line, rec.ts, (rec.changefeed, rec.sink),
                      rec.dispatcher)

    def describe(self, rec: Decision) -> str:
        who = f" (dispatcher {rec.dispatcher})" if rec.dispatcher else ""
        detail = f": {rec.detail}" if rec.detail else ""
        return f"anomaly {rec.code} at {_at(rec.line)}{who}{detail}"


class NoLeak(AnomalyFree):
    name = "leak"
    summary = "no removed dispatcher still has DMLs in flight at the end of the trace"
    codes = frozenset({LEAK})

    def __init__(self) -> None:
        super().__init__()
        self.removed_at: dict[tuple[str, str, str], int] = {}

    def on_event(self, line: int, scope: ScopeKey, ev: Any) -> None:
        if ev.__class__ is Remove:
            self.removed_at.setdefault((scope[0], scope[1], ev.dispatcher), line)

    def on_decision(self, rec: Decision) -> None:
        if rec.code == LEAK:
            line = self.removed_at.get((rec.changefeed, rec.sink, rec.dispatcher or ""))
            self.fail(f"dispatcher {rec.dispatcher} was removed at {_at(line)} with DMLs in "
                      "flight that never flushed: their bytes stay charged to the global budget "
                      "(leak)", line, rec.ts, (rec.changefeed, rec.sink), rec.dispatcher)


class NoConformanceAnomaly(AnomalyFree):
    name = "conformance"
    summary = ("the recorded system followed the model: no enqueue while paused, unknown flush "
               "or enqueue after remove")
    codes = CONFORMANCE_CODES


class NoUnderflow(AnomalyFree):
    name = "underflow"
    summary = "no in-flight counter (per-dispatcher or global) would go below zero"
    codes = frozenset({UNDERFLOW})


@dataclass
class _Queued:
    seq: int
    line: int | None
    maybe_dropped: bool = False


class _FifoScope:
    __slots__ = ("seq", "queued", "order", "last_seq", "last_who", "round", "position")

    def __init__(self) -> None:
        self.seq = 0
        self.queued: dict[str, _Queued] = {}
        self.order: deque[tuple[int, str]] = deque()
        self.last_seq = 0
        self.last_who: tuple[str, _Queued] | None = None
        self.round = 0
        self.position = 0


class FifoWakes(Invariant):
    """A shadow of the global queue, rebuilt from block/handoff records.

    Registrations only append, so the dispatchers a scope's global wakes resume must come out in
    increasing registration order, and nobody registered earlier may still be waiting when a later
    one is woken. A waiter that its own budget also held (a per block while queued) may be taken by
    a round without being woken, which no record shows; such entries are not held against the
    model (this happens only after an ``enqueue_while_paused`` anomaly).
    """

    name = "fifo"
    summary = ("global wakes come out in registration (FIFO) order per scope, in numbered rounds "
               "of at most max_wake_per_round")
    kinds = frozenset({BLOCK, HANDOFF, WAKE})

    def __init__(self) -> None:
        super().__init__()
        self.scopes: dict[ScopeKey, _FifoScope] = {}
        self.max_wake: dict[ScopeKey, int] = {}

    def on_scope(self, scope: Scope) -> None:
        # The round-size cap is Option A's rule; a policy of the project's own may lift it on
        # purpose (admission wakes every waiter once nothing is in flight).
        if scope.limits.policy == POLICY_OPTION_A:
            self.max_wake[(scope.changefeed, scope.sink)] = scope.limits.max_wake_per_round

    def _scope(self, key: ScopeKey) -> _FifoScope:
        s = self.scopes.get(key)
        if s is None:
            s = self.scopes[key] = _FifoScope()
        return s

    def _register(self, s: _FifoScope, d: str, line: int | None) -> None:
        s.seq += 1
        s.queued[d] = _Queued(s.seq, line)
        s.order.append((s.seq, d))

    def on_decision(self, rec: Decision) -> None:
        kind = rec.kind
        d = rec.dispatcher or ""
        if kind == BLOCK:
            if rec.by == "global":
                s = self._scope((rec.changefeed, rec.sink))
                if d not in s.queued:
                    self._register(s, d, rec.line)
            elif rec.by == "per":
                s = self.scopes.get((rec.changefeed, rec.sink))
                q = s.queued.get(d) if s is not None else None
                if q is not None:
                    q.maybe_dropped = True
        elif kind == HANDOFF:
            # The per budget let go and the global budget took it: always a fresh registration.
            self._register(self._scope((rec.changefeed, rec.sink)), d, rec.line)
        elif kind == WAKE and rec.by == "global":
            self._global_wake(rec, d)

    def _global_wake(self, rec: Decision, d: str) -> None:
        key = (rec.changefeed, rec.sink)
        s = self._scope(key)
        self._check_round(rec, s, key)
        q = s.queued.pop(d, None)
        if q is None:
            self.fail(f"global wake of dispatcher {d} at {_at(rec.line)}, which was not waiting in "
                      "the global queue", rec.line, rec.ts, key, d)
            return
        if q.maybe_dropped:
            return
        if q.seq < s.last_seq and s.last_who is not None:
            other, oq = s.last_who
            self.fail(f"global wake of dispatcher {d} (queued #{q.seq} at {_at(q.line)}) came "
                      f"after the wake of {other} (queued later, #{oq.seq} at {_at(oq.line)}): "
                      f"not FIFO (round {rec.round}, position {rec.position})",
                      rec.line, rec.ts, key, d)
        order = s.order
        while order and order[0][0] < q.seq:
            seq, waiting = order.popleft()
            wq = s.queued.get(waiting)
            if wq is None or wq.seq != seq:
                continue  # woken already, removed, or registered again later
            if wq.maybe_dropped:
                del s.queued[waiting]
                continue
            self.fail(f"global wake of dispatcher {d} (queued #{q.seq} at {_at(q.line)}) while "
                      f"{waiting}, queued earlier (#{seq} at {_at(wq.line)}), was still waiting: "
                      f"not FIFO (round {rec.round}, position {rec.position})",
                      rec.line, rec.ts, key, d)
        if order and order[0][0] == q.seq:
            order.popleft()
        if q.seq > s.last_seq:
            s.last_seq = q.seq
            s.last_who = (d, q)

    def _check_round(self, rec: Decision, s: _FifoScope, key: ScopeKey) -> None:
        r, p = rec.round or 0, rec.position or 0
        if r == s.round and p == s.position + 1:
            pass
        elif r == s.round + 1 and p == 1:
            s.round = r
        else:
            self.fail(f"global wake of {rec.dispatcher} at {_at(rec.line)} is round {r} position "
                      f"{p}, expected round {s.round} position {s.position + 1} or round "
                      f"{s.round + 1} position 1", rec.line, rec.ts, key, rec.dispatcher)
            s.round = r
        s.position = p
        limit = self.max_wake.get(key)
        if limit is not None and p > limit:
            self.fail(f"wake round {r} at {_at(rec.line)} woke {p} dispatchers, more than "
                      f"max_wake_per_round ({limit})", rec.line, rec.ts, key, rec.dispatcher)

    def on_event(self, line: int, scope: ScopeKey, ev: Any) -> None:
        if ev.__class__ is Remove:
            s = self.scopes.get(scope)
            if s is not None:
                s.queued.pop(ev.dispatcher, None)  # its queue entry is a tombstone now


class _Ledger:
    """What one scope's dispatchers were charged, from the trace (raw bytes, enqueue order)."""

    __slots__ = ("dmls", "removed", "total", "pending", "applied", "broken")

    def __init__(self) -> None:
        self.dmls: OrderedDict[tuple[str, object], int] = OrderedDict()
        self.removed: set[str] = set()
        self.total = 0  # raw bytes in flight after every event seen so far
        self.pending: deque[int] = deque()  # changes of the current event not yet seen by a probe
        self.applied = 0  # raw bytes the model should hold after the probes seen so far
        self.broken = False


class Conservation(Invariant):
    """Global in-flight equals what the scope's dispatchers were charged, at every change.

    The ledger is built independently from the trace: an enqueue charges each DML's bytes (times
    the multiplier), a flush of an in-flight id releases them, an enqueue after a removal charges
    nothing. Each probe (one per change of global in-flight) must match the ledger after some of
    the current event's changes, and every change must be seen before the next event. The drain
    releases what is left in enqueue order, and after it global in-flight must be 0.
    """

    name = "conservation"
    summary = ("global in-flight equals the sum of what its dispatchers were charged at every "
               "step, and is 0 after the end-of-trace drain")
    wants_events = True
    wants_probe = True

    def __init__(self) -> None:
        super().__init__()
        self.ledgers: dict[ScopeKey, _Ledger] = {}
        self.scopes: dict[ScopeKey, Scope] = {}
        self.last: ScopeKey | None = None
        self.last_line: int | None = None

    def on_scope(self, scope: Scope) -> None:
        self.scopes[(scope.changefeed, scope.sink)] = scope

    def _ledger(self, key: ScopeKey) -> _Ledger:
        led = self.ledgers.get(key)
        if led is None:
            led = self.ledgers[key] = _Ledger()
        return led

    def _settle(self, key: ScopeKey) -> None:
        """The event that touched ``key`` is over: each of its changes must have been applied."""
        led = self.ledgers[key]
        scope = self.scopes.get(key)
        if not led.pending or scope is None or scope.glob is None or led.broken:
            led.applied += sum(led.pending)
            led.pending.clear()
            return
        missing = [p for p in led.pending if p]
        led.applied += sum(led.pending)
        led.pending.clear()
        if missing:
            mult = scope.limits.multiplier
            self._broke(key, led, self.last_line, scope.report.cause.ts,
                        f"after {_at(self.last_line)} global in-flight is "
                        f"{scope.glob.inflight} bytes but its dispatchers were charged "
                        f"{led.applied * mult}: {len(missing)} change(s) of this event never "
                        "reached the global budget")

    def _broke(self, key: ScopeKey, led: _Ledger, line: int | None, ts: float | None,
               message: str) -> None:
        led.broken = True  # one report per scope: later steps would only repeat it
        self.fail(message, line, ts, key)

    def on_event(self, line: int, scope: ScopeKey, ev: Any) -> None:
        if self.last is not None:
            self._settle(self.last)
        led = self._ledger(scope)
        self.last = scope
        self.last_line = line
        cls = ev.__class__
        if cls is Enqueue:
            if ev.dispatcher in led.removed:
                return
            dmls = [(ev.id, ev.bytes)] if ev.events is None else [(x.id, x.bytes)
                                                                   for x in ev.events]
            for dml_id, size in dmls:
                led.dmls[(ev.dispatcher, dml_id)] = size
                led.total += size
                led.pending.append(size)
        elif cls is Flush:
            size = led.dmls.pop((ev.dispatcher, ev.id), None)
            if size is not None:
                led.total -= size
                led.pending.append(-size)
        elif cls is Remove:
            led.removed.add(ev.dispatcher)

    def on_probe(self, scope: Scope, ts: float, inflight: int) -> None:
        key = (scope.changefeed, scope.sink)
        led = self._ledger(key)
        if led.broken:
            return
        mult = scope.limits.multiplier
        cause = scope.report.cause
        if cause.drain:
            if self.last is not None:
                self._settle(self.last)
                self.last = None
                if led.broken:
                    return
            if not led.dmls:
                self._broke(key, led, None, ts, f"the drain changed global in-flight to "
                            f"{inflight} bytes after every charged DML had been released")
                return
            (d, dml_id), size = led.dmls.popitem(last=False)
            led.total -= size
            led.applied = led.total
            if inflight != led.total * mult:
                self._broke(key, led, None, ts,
                            f"during the end-of-trace drain (flushing DML {dml_id!r} of {d}) "
                            f"global in-flight is {inflight} bytes, but its dispatchers still "
                            f"hold {led.total * mult}")
            return
        pending = led.pending
        while led.applied * mult != inflight and pending:
            led.applied += pending.popleft()
        if led.applied * mult != inflight:
            self._broke(key, led, cause.line, ts,
                        f"at {_at(cause.line)} global in-flight is {inflight} bytes but its "
                        f"dispatchers were charged {led.applied * mult}")

    def finish(self, last_ts: float) -> None:
        if self.last is not None:
            self._settle(self.last)
        for key, scope in self.scopes.items():
            glob = scope.glob
            led = self.ledgers.get(key)
            if glob is None or led is None or led.broken:
                continue
            if glob.inflight != 0 or led.dmls:
                self.fail(f"after the end-of-trace drain global in-flight is "
                          f"{format_bytes(glob.inflight)} and {len(led.dmls)} DML(s) were never "
                          "released (expected 0: the drain flushes everything in flight)",
                          None, last_ts, key)


class OvershootBound(Invariant):
    name = "overshoot"
    summary = "peak global in-flight stays within max_overshoot × global high"
    wants_probe = True

    def __init__(self, bound: float = DEFAULT_MAX_OVERSHOOT) -> None:
        super().__init__()
        self.bound = bound
        self.first_over: dict[ScopeKey, tuple[int | None, float, int]] = {}
        self.scopes: dict[ScopeKey, Scope] = {}

    def on_scope(self, scope: Scope) -> None:
        self.scopes[(scope.changefeed, scope.sink)] = scope

    def on_probe(self, scope: Scope, ts: float, inflight: int) -> None:
        high = scope.limits.global_high
        if inflight > self.bound * high:
            key = (scope.changefeed, scope.sink)
            if key not in self.first_over:
                self.first_over[key] = (scope.report.cause.line, ts, inflight)

    def finish(self, last_ts: float) -> None:
        for key, (line, ts, value) in self.first_over.items():
            glob = self.scopes[key].glob
            high = self.scopes[key].limits.global_high
            peak = glob.peak if glob is not None else value
            self.fail(f"global in-flight reached {format_bytes(value)} at {_at(line)}, above "
                      f"{self.bound:g} × high ({format_bytes(high)}); peak "
                      f"{format_bytes(peak)} = {peak / high:.2f} × high", line, ts, key)


class BlockedTimeBound(Invariant):
    name = "blocked-time"
    summary = "no dispatcher stays paused longer than max_blocked seconds"
    kinds = frozenset({BLOCK, WAKE})

    def __init__(self, bound: float = DEFAULT_MAX_BLOCKED) -> None:
        super().__init__()
        self.bound = bound
        self.pauses = PauseTracker()

    def on_decision(self, rec: Decision) -> None:
        since = self.pauses.decision(rec)
        if rec.kind == WAKE and (rec.blocked_for or 0.0) > self.bound:
            started = f" (paused at {_at(since[1])})" if since else ""
            self.fail(f"dispatcher {rec.dispatcher} was paused for "
                      f"{format_seconds(rec.blocked_for)}{started} until its {rec.by} wake at "
                      f"{_at(rec.line)}, longer than the {format_seconds(self.bound)} bound",
                      rec.line, rec.ts, (rec.changefeed, rec.sink), rec.dispatcher)

    def on_event(self, line: int, scope: ScopeKey, ev: Any) -> None:
        if ev.__class__ is Remove:
            self.pauses.removed(scope, ev.dispatcher)

    def finish(self, last_ts: float) -> None:
        for (cf, sink, d), (ts, line) in self.pauses.paused.items():
            if last_ts - ts > self.bound:
                self.fail(f"dispatcher {d}, paused at {_at(line)}, was still paused at the end "
                          f"of the trace after {format_seconds(last_ts - ts)}, longer than the "
                          f"{format_seconds(self.bound)} bound", line, ts, (cf, sink), d)


#: Every built-in invariant, in report order.
INVARIANTS: dict[str, type[Invariant]] = {
    cls.name: cls for cls in (NoStranded, NoLeak, NoConformanceAnomaly, FifoWakes, Conservation,
                              NoUnderflow, OvershootBound, BlockedTimeBound)
}


@dataclass(frozen=True)
class InvariantSettings:
    """Which invariants run and how (``on``, ``off`` or ``fail``), and the two bounds."""

    modes: tuple[tuple[str, str], ...] = ()
    max_overshoot: float = DEFAULT_MAX_OVERSHOOT
    max_blocked: float = DEFAULT_MAX_BLOCKED

    def mode(self, name: str) -> str:
        return dict(self.modes).get(name, ON)

    def with_modes(self, modes: dict[str, str]) -> InvariantSettings:
        merged = dict(self.modes)
        merged.update(modes)
        return InvariantSettings(tuple(sorted(merged.items())), self.max_overshoot,
                                 self.max_blocked)


class InvariantSet:
    """Runs the enabled invariants as one decision sink plus the replay's event/scope hooks."""

    def __init__(self, settings: InvariantSettings | None = None) -> None:
        self.settings = settings or InvariantSettings()
        self.active: list[Invariant] = []
        for name, cls in INVARIANTS.items():
            if self.settings.mode(name) == OFF:
                continue
            if cls is OvershootBound:
                self.active.append(OvershootBound(self.settings.max_overshoot))
            elif cls is BlockedTimeBound:
                self.active.append(BlockedTimeBound(self.settings.max_blocked))
            else:
                self.active.append(cls())
        self._by_kind: dict[str, list[Callable[[Decision], None]]] = {
            k: [] for k in (BLOCK, HANDOFF, WAKE, CROSS, ANOMALY)}
        for inv in self.active:
            for k in inv.kinds:
                self._by_kind[k].append(inv.on_decision)
        self._event_hooks = [inv.on_event for inv in self.active if inv.wants_events]
        self._remove_hooks = [inv.on_event for inv in self.active]
        self._probe_hooks = [inv.on_probe for inv in self.active if inv.wants_probe]
        self._default_scope: ScopeKey = (DEFAULT_CHANGEFEED, DEFAULT_SINK)

    def __call__(self, rec: Decision) -> None:
        for fn in self._by_kind.get(rec.kind, ()):
            fn(rec)

    def on_open(self, reader: Any, _config: Any) -> None:
        self._default_scope = reader.default_scope

    def on_event(self, line: int, ev: Any) -> None:
        hooks = self._remove_hooks if ev.__class__ is Remove else self._event_hooks
        if not hooks:
            return
        dcf, dsink = self._default_scope
        key = (ev.changefeed or dcf, ev.sink or dsink)
        for fn in hooks:
            fn(line, key, ev)

    def on_new_scope(self, scope: Scope) -> None:
        for inv in self.active:
            inv.on_scope(scope)
        glob = scope.glob
        if glob is None or not self._probe_hooks:
            return
        hooks = self._probe_hooks
        chained = glob.probe  # keep any observer installed before us

        def probe(ts: float, inflight: int) -> None:
            for fn in hooks:
                fn(scope, ts, inflight)
            if chained is not None:
                chained(ts, inflight)

        glob.probe = probe

    def finish(self, last_ts: float | None) -> list[InvariantOutcome]:
        for inv in self.active:
            inv.finish(last_ts or 0.0)
        ran = {inv.name: inv for inv in self.active}
        out = []
        for name in INVARIANTS:
            inv = ran.get(name)
            mode = self.settings.mode(name)
            out.append(InvariantOutcome(name, mode, inv.violations if inv else 0,
                                        inv.first if inv else None))
        return out
