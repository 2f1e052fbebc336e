"""Closed-loop what-if: replay a recorded trace as if it had run under another configuration.

A recorded trace is open-loop: its enqueues happened when they happened. To ask "what if the
watermarks or the policy had been different?", each dispatcher's recorded batches are re-timed:

* a dispatcher's batches keep their order and their recorded arrival times, but a batch is
  delivered only when the dispatcher's path is not paused (and, under policy ``admission``, when
  the budget admits it); a delayed batch delays the ones queued behind it;
* each DML keeps its recorded flush latency (recorded flush ts − recorded enqueue ts), so a batch
  delivered ``d`` seconds late flushes ``d`` seconds late;
* removals keep their recorded times; batches of a removed dispatcher that were never delivered
  are dropped, and DMLs that never flushed in the recording never flush here (leaks stay leaks).

The trace is streamed: simulated time never runs ahead of the recorded line being read (a
simulated event is never earlier than its recorded one), so memory holds only what is in flight
or delayed, not the whole trace.
"""

from __future__ import annotations

import heapq
import math
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field

from budget.admission import admit
from budget.config import BudgetConfig
from budget.decisions import WAKE, Decision, DecisionSink
from budget.engine import Engine
from traces.format import DEFAULT_CHANGEFEED, DEFAULT_SINK, Enqueue, Flush, Header, Remove
from traces.reader import TraceReader
from traces.replay import resolve_config
from traces.writer import TraceWriter

Key = tuple[str, str, str]

# At equal times: flushes, then removals, then arrivals (as the closed-loop synthesizer).
_FLUSH, _REMOVE, _ARRIVE = 0, 1, 2


class Quantiles:
    """Bounded-memory quantiles: counts in log buckets 1% wide (plus exact zero, min, max)."""

    __slots__ = ("counts", "zeros", "n", "total", "max", "_step")

    def __init__(self) -> None:
        self.counts: dict[int, int] = {}
        self.zeros = 0
        self.n = 0
        self.total = 0.0
        self.max = 0.0
        self._step = math.log(1.01)

    def add(self, x: float, weight: int = 1) -> None:
        self.n += weight
        self.total += x * weight
        if x <= 0:
            self.zeros += weight
            return
        if x > self.max:
            self.max = x
        b = int(math.floor(math.log(x) / self._step))
        self.counts[b] = self.counts.get(b, 0) + weight

    def quantile(self, q: float) -> float | None:
        if not self.n:
            return None
        rank = q * self.n
        seen = self.zeros
        if seen >= rank:
            return 0.0
        for b in sorted(self.counts):
            seen += self.counts[b]
            if seen >= rank:
                return min(math.exp((b + 0.5) * self._step), self.max)
        return self.max

    @property
    def mean(self) -> float | None:
        return self.total / self.n if self.n else None


@dataclass
class _Batch:
    line: int
    at: float
    dmls: list[_Dml]


@dataclass
class _Dml:
    rec_id: object
    size: int
    rec_at: float
    sim_id: int = 0
    sim_at: float | None = None  # when delivered
    flushed_at: float | None = None  # recorded flush ts, once read

    def flush_time(self) -> float:
        # delay + recorded flush (not start + latency): an undelayed DML keeps its exact ts.
        return (self.sim_at - self.rec_at) + self.flushed_at  # type: ignore[operator]


@dataclass
class _Disp:
    key: Key
    pending: deque[_Batch] = field(default_factory=deque)
    armed: bool = False  # an arrival is scheduled, or it waits for a wake
    waiting: bool = False
    removed: bool = False
    next_id: int = 0


@dataclass
class ScopeLoad:
    """Effective in-flight bytes of one scope over simulated time (whatever the policy)."""

    multiplier: int
    global_high: int | None
    inflight: int = 0
    peak: int = 0
    area: float = 0.0  # ∫ in-flight dt
    last_t: float = 0.0


@dataclass
class SimResult:
    """Figures only the simulation knows (the decisions carry the rest)."""

    config: BudgetConfig
    header: Header | None
    first_ts: float | None = None
    last_ts: float | None = None
    batches: int = 0
    delivered: int = 0
    dropped_batches: int = 0
    flushed_bytes: int = 0
    delay: Quantiles = field(default_factory=Quantiles)  # per DML, seconds added
    scopes: dict[tuple[str, str], ScopeLoad] = field(default_factory=dict)
    engine: Engine | None = None

    @property
    def makespan(self) -> float:
        if self.first_ts is None or self.last_ts is None:
            return 0.0
        return self.last_ts - self.first_ts

    @property
    def peak_inflight(self) -> int:
        """The largest scope's peak (scopes have separate budgets)."""
        return max((s.peak for s in self.scopes.values()), default=0)

    @property
    def mean_inflight(self) -> float:
        span = self.makespan
        if not span:
            return 0.0
        return max((s.area / span for s in self.scopes.values()), default=0.0)

    @property
    def overshoot(self) -> float | None:
        ratios = [s.peak / s.global_high for s in self.scopes.values() if s.global_high]
        return max(ratios) if ratios else None

    @property
    def throughput(self) -> float:
        """Effective bytes flushed per second of makespan."""
        span = self.makespan
        return self.flushed_bytes / span if span else 0.0


class Simulation:
    """Feeds recorded events in; re-timed events go to the model (and optionally a writer)."""

    def __init__(self, config: BudgetConfig, emit: DecisionSink,
                 changefeed: str = DEFAULT_CHANGEFEED, sink: str = DEFAULT_SINK,
                 writer: TraceWriter | None = None, header: Header | None = None) -> None:
        self.emit = emit
        self.changefeed = changefeed
        self.sink = sink
        self.writer = writer
        self.engine = Engine(config, self._on_decision)
        self.result = SimResult(config=config, header=header, engine=self.engine)
        self._heap: list[tuple[float, int, int, object]] = []
        self._seq = 0
        self._disps: dict[Key, _Disp] = {}
        self._recorded: dict[tuple[Key, object], _Dml] = {}
        self._inflight: dict[tuple[Key, int], _Dml] = {}
        self._now = 0.0

    # Recorded events ---------------------------------------------------------------------------
    def feed(self, line: int, ev: Enqueue | Flush | Remove) -> None:
        """Apply one recorded event (in trace order)."""
        ts = ev.ts
        self._advance(ts)
        if self.result.first_ts is None:
            self.result.first_ts = ts
            self._now = ts
        key = (ev.changefeed or self.changefeed, ev.sink or self.sink, ev.dispatcher)
        cls = ev.__class__
        if cls is Enqueue:
            d = self._disps.get(key)
            if d is None:
                d = self._disps[key] = _Disp(key)
            if d.removed:
                return  # an enqueue after removal: the model would ignore it too
            dmls = ev.dmls()  # type: ignore[union-attr]
            batch = _Batch(line, ts, [_Dml(i, b, ts) for i, b in dmls])
            for m in batch.dmls:
                self._recorded[(key, m.rec_id)] = m
            self.result.batches += 1
            d.pending.append(batch)
            if not d.armed:
                d.armed = True
                self._push(ts, _ARRIVE, d)
        elif cls is Flush:
            m = self._recorded.pop((key, ev.id), None)  # type: ignore[union-attr]
            if m is None:
                return  # not in flight in the recording (or its batch was dropped)
            m.flushed_at = ts
            if m.sim_at is not None:
                self._push(m.flush_time(), _FLUSH, (key, m, line))
        else:
            self._push(ts, _REMOVE, (key, line))

    def finish(self) -> SimResult:
        """Run what is left, then end the trace in the model (leaks, drain, stranded)."""
        self._advance(math.inf)
        self.engine.finish()
        res = self.result
        for s in res.scopes.values():
            s.area += s.inflight * max(0.0, (res.last_ts or 0.0) - s.last_t)
        return res

    # Simulated events --------------------------------------------------------------------------
    def _push(self, t: float, kind: int, payload: object) -> None:
        self._seq += 1
        heapq.heappush(self._heap, (t, kind, self._seq, payload))

    def _advance(self, until: float) -> None:
        heap = self._heap
        while heap and heap[0][0] < until:
            t, kind, _s, payload = heapq.heappop(heap)
            self._now = t
            if kind == _FLUSH:
                key, m, line = payload  # type: ignore[misc]
                self._flush(t, key, m, line)
            elif kind == _REMOVE:
                key, line = payload  # type: ignore[misc]
                self._remove(t, key, line)
            else:
                self._arrive(t, payload)  # type: ignore[arg-type]
            self.result.last_ts = t

    def _load(self, key: Key) -> ScopeLoad:
        sk = (key[0], key[1])
        load = self.result.scopes.get(sk)
        if load is None:
            scope = self.engine.scope(key[0], key[1])
            lim = scope.limits
            load = ScopeLoad(lim.multiplier, lim.global_high if lim.global_enabled else None,
                             last_t=self._now)
            self.result.scopes[sk] = load
        return load

    def _move(self, load: ScopeLoad, t: float, delta: int) -> None:
        load.area += load.inflight * (t - load.last_t)
        load.last_t = t
        load.inflight += delta
        if load.inflight > load.peak:
            load.peak = load.inflight

    def _arrive(self, t: float, d: _Disp) -> None:
        if d.removed or not d.pending:
            d.armed = False
            return
        cf, sink, name = d.key
        scope = self.engine.scope(cf, sink)
        md = scope.dispatchers.get(name)
        batch = d.pending[0]
        if md is not None and md.paused:
            d.waiting = True  # delivered when the dispatcher is woken
            return
        if not admit(self.engine, t, cf, sink, name, sum(m.size for m in batch.dmls), batch.line):
            d.waiting = True
            return
        d.pending.popleft()
        dmls = []
        for m in batch.dmls:
            d.next_id += 1
            m.sim_id = d.next_id
            m.sim_at = t
            dmls.append((m.sim_id, m.size))
            self._inflight[(d.key, m.sim_id)] = m
            if m.flushed_at is not None:
                self._push(m.flush_time(), _FLUSH, (d.key, m, None))
        res = self.result
        res.delivered += 1
        res.delay.add(t - batch.at, len(dmls))
        load = self._load(d.key)
        self._move(load, t, sum(s for _, s in dmls) * load.multiplier)
        if self.writer is not None:
            self.writer.enqueue(t, name, dmls, *self._scope_fields(cf, sink))
        self.engine.enqueue(t, batch.line, cf, sink, name, dmls)
        if d.pending:
            self._push(max(t, d.pending[0].at), _ARRIVE, d)
        else:
            d.armed = False

    def _flush(self, t: float, key: Key, m: _Dml, line: int | None) -> None:
        if self._inflight.pop((key, m.sim_id), None) is None:
            return
        cf, sink, name = key
        load = self._load(key)
        eff = m.size * load.multiplier
        self._move(load, t, -eff)
        self.result.flushed_bytes += eff
        if self.writer is not None:
            self.writer.flush_event(t, name, m.sim_id, *self._scope_fields(cf, sink))
        self.engine.flush(t, line, cf, sink, name, m.sim_id)

    def _remove(self, t: float, key: Key, line: int) -> None:
        d = self._disps.get(key)
        if d is not None:
            d.removed = True
            d.waiting = False
            for b in d.pending:
                self.result.dropped_batches += 1
                for m in b.dmls:
                    self._recorded.pop((key, m.rec_id), None)
            d.pending.clear()
        cf, sink, name = key
        if self.writer is not None:
            self.writer.remove(t, name, *self._scope_fields(cf, sink))
        self.engine.remove(t, line, cf, sink, name)

    def _scope_fields(self, cf: str, sink: str) -> tuple[str | None, str | None]:
        return (None if cf == self.changefeed else cf, None if sink == self.sink else sink)

    def _on_decision(self, rec: Decision) -> None:
        if rec.kind == WAKE and not rec.drain:
            d = self._disps.get((rec.changefeed, rec.sink, rec.dispatcher or ""))
            if d is not None and d.waiting:
                d.waiting = False
                self._push(self._now, _ARRIVE, d)
        self.emit(rec)


def simulate(path: str, emit: DecisionSink, overrides: dict[str, object] | None = None, *,
             writer: TraceWriter | None = None,
             progress: Callable[[int], None] | None = None) -> SimResult:
    """Re-time the trace at ``path`` under its header's configuration plus ``overrides``."""
    with TraceReader(path, progress=progress) as reader:
        header = reader.header
        config = resolve_config(header, overrides, reader.name)
        cf, sink = reader.default_scope
        if writer is not None:
            cfg = {k: getattr(config, k) for k in ("per_low", "per_high", "multiplier",
                                                   "max_wake_per_round", "policy")}
            for k in ("area_quota", "memory_quota", "redo_percentage", "global_high",
                      "global_low"):
                if getattr(config, k) is not None:
                    cfg[k] = getattr(config, k)
            writer.header(changefeed=cf, sink=sink, config=cfg)
        sim = Simulation(config, emit, cf, sink, writer, header)
        for line, ev in reader:
            sim.feed(line, ev)  # type: ignore[arg-type]
        return sim.finish()
