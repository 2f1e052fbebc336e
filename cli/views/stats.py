"""The figures of `budget-replay stats`: the workload of a trace and what the budget made of it.

Workload figures come from the trace events (``on_event``); outcome figures from the decision
records and the model's state between events (:mod:`cli.views.sampling`). Memory is bounded by the
number of scopes, dispatchers and DMLs in flight at once, never by the trace's length: percentiles
use :class:`~cli.views.quantiles.Distribution`.
"""

from __future__ import annotations

from collections import Counter
from typing import Any

from budget.config import POLICY_LEGACY
from budget.decisions import ANOMALY, BLOCK, HANDOFF, LEAK, STRANDED, WAKE, Decision
from cli.views.quantiles import Distribution
from cli.views.sampling import BoundarySampler, HoldTracker, ScopeKey, ScopeState
from traces.format import Enqueue, Flush, Remove
from traces.replay import ReplayResult

BUDGETS = ("per", "global", "legacy")


class Workload:
    """Sizes, counts and flush latency of the trace as recorded (independent of the policy)."""

    def __init__(self, sampler: BoundarySampler) -> None:
        sampler.event_observers.append(self.on_event)
        self.first_ts: float | None = None
        self.last_ts: float | None = None
        self.dispatchers: set[tuple[ScopeKey, str]] = set()
        self.enqueues = 0
        self.dmls = 0
        self.raw_bytes = 0
        self.flushes = 0
        self.flushed_bytes = 0
        self.unmatched_flushes = 0
        self.removes = 0
        self.batch_dmls = Distribution()
        self.batch_bytes = Distribution()
        self.dml_bytes = Distribution()
        self.flush_latency = Distribution()
        #: (scope, dispatcher, id) → (enqueue ts, bytes), for DMLs in flight only.
        self._inflight: dict[tuple[ScopeKey, str, object], tuple[float, int]] = {}

    def on_event(self, key: ScopeKey, ev: Any) -> None:
        ts = ev.ts
        if self.first_ts is None:
            self.first_ts = ts
        self.last_ts = ts
        cls = ev.__class__
        d = ev.dispatcher
        self.dispatchers.add((key, d))
        if cls is Enqueue:
            dmls = ev.dmls()
            self.enqueues += 1
            total = 0
            for dml_id, size in dmls:
                self.dml_bytes.add(size)
                self._inflight[(key, d, dml_id)] = (ts, size)
                total += size
            self.dmls += len(dmls)
            self.raw_bytes += total
            self.batch_dmls.add(len(dmls))
            self.batch_bytes.add(total)
        elif cls is Flush:
            self.flushes += 1
            got = self._inflight.pop((key, d, ev.id), None)
            if got is None:
                self.unmatched_flushes += 1
            else:
                self.flush_latency.add(ts - got[0])
                self.flushed_bytes += got[1]
        elif cls is Remove:
            self.removes += 1

    @property
    def unflushed(self) -> int:
        """DMLs enqueued that the trace never flushed."""
        return len(self._inflight)

    def to_json(self, multiplier: int) -> dict[str, Any]:
        span = (self.last_ts - self.first_ts) if self.first_ts is not None else 0.0
        return {
            "first_ts": self.first_ts,
            "last_ts": self.last_ts,
            "span": span,
            "scopes": len({k for k, _ in self.dispatchers}),
            "dispatchers": len(self.dispatchers),
            "enqueues": self.enqueues,
            "dmls": self.dmls,
            "flushes": self.flushes,
            "removes": self.removes,
            "unmatched_flushes": self.unmatched_flushes,
            "unflushed_dmls": self.unflushed,
            "raw_bytes": self.raw_bytes,
            "effective_bytes": self.raw_bytes * multiplier,
            "flushed_raw_bytes": self.flushed_bytes,
            "throughput_bytes_per_s": self.flushed_bytes / span if span > 0 else None,
            "batch_dmls": self.batch_dmls.summary(),
            "batch_bytes": self.batch_bytes.summary(),
            "dml_bytes": self.dml_bytes.summary(),
            "flush_latency": self.flush_latency.summary(),
            "percentiles_exact": all(x.exact for x in (self.batch_dmls, self.batch_bytes,
                                                        self.dml_bytes, self.flush_latency)),
        }


class ScopeOutcome:
    """Time-weighted in-flight figures and wake rounds of one scope."""

    def __init__(self, state: ScopeState, start: float) -> None:
        self.state = state
        limits = state.scope.limits
        glob = state.scope.glob
        # Where the policy keeps no global budget, the watermarks it *would* have had still say how
        # the memory compares (a what-if against option-a).
        if glob is not None:
            self.high: int | None = glob.high
            self.low: int | None = glob.low
        elif limits.global_enabled and limits.policy != POLICY_LEGACY:
            self.high, self.low = limits.global_high, limits.global_low
        else:
            self.high = self.low = None
        self.last_ts = start
        self.inflight = 0
        self.waiters = 0
        self.peak = 0
        self.peak_ts = start
        self.byte_seconds = 0.0
        self.above_high = 0.0
        self.below_low = 0.0
        self.waiter_seconds = 0.0
        self.needless_waiter_seconds = 0.0
        self.round_sizes = Distribution()
        self.longest_global_wait = 0.0

    def advance(self, ts: float) -> None:
        dt = ts - self.last_ts
        if dt > 0:
            self.byte_seconds += self.inflight * dt
            if self.high is not None and self.inflight >= self.high:
                self.above_high += dt
            low_now = self.low is not None and self.inflight <= self.low
            if low_now:
                self.below_low += dt
            if self.waiters:
                self.waiter_seconds += self.waiters * dt
                if low_now:
                    self.needless_waiter_seconds += self.waiters * dt
            self.last_ts = ts

    def sample(self, ts: float, state: ScopeState) -> None:
        self.advance(ts)
        g = state.global_inflight
        self.inflight = g if g is not None else state.inflight
        self.waiters = state.global_blocked
        if self.inflight > self.peak:
            self.peak = self.inflight
            self.peak_ts = ts


class Outcome:
    """Blocking, waiting, rounds and fairness under the chosen policy, folded from the decisions."""

    def __init__(self, sampler: BoundarySampler, holds: HoldTracker) -> None:
        sampler.observers.append(self.on_sample)
        sampler.event_observers.append(self.on_event)
        holds.observers.append(self.on_hold)
        self.holds = holds
        self.scopes: dict[ScopeKey, ScopeOutcome] = {}
        self.start: float | None = None
        self.paused = Distribution()
        self.held = {b: Distribution() for b in BUDGETS}
        self.pauses: Counter[tuple[ScopeKey, str]] = Counter()
        self.paused_time: dict[tuple[ScopeKey, str], float] = {}
        self._paused_since: dict[tuple[ScopeKey, str], float] = {}
        self.blocks: Counter[str] = Counter()
        self.handoffs = 0
        self.anomalies: Counter[str] = Counter()
        self.drain_woken: set[tuple[ScopeKey, str]] = set()
        self.round_sizes = Distribution()
        self._round: tuple[ScopeKey, int] | None = None
        self._round_size = 0

    # Inputs ---------------------------------------------------------------------------------
    def on_sample(self, ts: float, state: ScopeState) -> None:
        if self.start is None:
            self.start = ts
        s = self.scopes.get(state.key)
        if s is None:
            s = self.scopes[state.key] = ScopeOutcome(state, self.start)
        s.sample(ts, state)

    def on_hold(self, _ts: float, key: ScopeKey, _d: str, budget: str, duration: float) -> None:
        self.held[budget].add(duration)
        if budget == "global":
            s = self.scopes.get(key)
            if s is not None:
                s.longest_global_wait = max(s.longest_global_wait, duration)

    def on_event(self, key: ScopeKey, ev: Any) -> None:
        if ev.__class__ is Remove:  # removal ends a pause without a wake
            since = self._paused_since.pop((key, ev.dispatcher), None)
            if since is not None:
                hk = (key, ev.dispatcher)
                self.paused_time[hk] = self.paused_time.get(hk, 0.0) + ev.ts - since

    def __call__(self, rec: Decision) -> None:
        kind = rec.kind
        hk = ((rec.changefeed, rec.sink), rec.dispatcher or "")
        if kind == ANOMALY:
            self.anomalies[rec.code or ""] += 1
            return
        if rec.drain:
            if kind == WAKE:
                self.drain_woken.add(hk)
            return
        if kind == BLOCK:
            self.blocks[rec.by or ""] += 1
            if hk not in self._paused_since:
                self._paused_since[hk] = rec.ts
                self.pauses[hk] += 1
        elif kind == HANDOFF:
            self.handoffs += 1
        elif kind == WAKE:
            waited = rec.blocked_for or 0.0
            self._paused_since.pop(hk, None)
            self.paused.add(waited)
            self.paused_time[hk] = self.paused_time.get(hk, 0.0) + waited
            if rec.by == "global":
                rk = (hk[0], rec.round or 0)
                if rk != self._round:
                    self._close_round()
                    self._round = rk
                self._round_size += 1

    def _close_round(self) -> None:
        if self._round is not None:
            s = self.scopes.get(self._round[0])
            if s is not None:
                s.round_sizes.add(self._round_size)
            self.round_sizes.add(self._round_size)
        self._round = None
        self._round_size = 0

    # Results --------------------------------------------------------------------------------
    def finish(self, last_ts: float) -> None:
        self._close_round()
        for s in self.scopes.values():
            s.advance(last_ts)

    def to_json(self, last_ts: float, span: float, dispatchers: int) -> dict[str, Any]:
        totals = dict(self.paused_time)
        open_pauses = 0
        for hk, since in self._paused_since.items():
            totals[hk] = totals.get(hk, 0.0) + last_ts - since
            open_pauses += 1
        open_holds = self.holds.open_holds()
        longest_open = {b: max((last_ts - since for _k, _d, bb, since in open_holds if bb == b),
                               default=None) for b in BUDGETS}
        paused_counts = list(self.pauses.values())
        waiter_seconds = sum(s.waiter_seconds for s in self.scopes.values())
        needless = sum(s.needless_waiter_seconds for s in self.scopes.values())
        return {
            "paused": self.paused.summary(),
            "held": {b: d.summary() for b, d in self.held.items()},
            "blocks": dict(sorted(self.blocks.items())),
            "handoffs": self.handoffs,
            "dispatchers_paused": len(self.pauses),
            "pauses_per_dispatcher": {
                "mean": sum(paused_counts) / dispatchers if dispatchers else None,
                "max": max(paused_counts, default=0),
            },
            "paused_at_end": open_pauses,
            "longest_open_hold": longest_open,
            "longest_fifo_wait": self.held["global"].max,
            "jain_fairness": jain_index(list(totals.values())),
            "needless_wait_fraction": needless / waiter_seconds if waiter_seconds > 0 else None,
            "global_wait_dispatcher_seconds": waiter_seconds,
            "wake_rounds": self.round_sizes.count,
            "round_size": self.round_sizes.summary(),
            "waiting": len(self.drain_woken),
            "stranded": self.anomalies.get(STRANDED, 0),
            "leaks": self.anomalies.get(LEAK, 0),
            "anomalies": dict(sorted(self.anomalies.items())),
        }


def jain_index(values: list[float]) -> float | None:
    """Jain's fairness index (Σx)² / (n·Σx²): 1 when all are equal, 1/n when one takes all."""
    if not values:
        return None
    sq = sum(v * v for v in values)
    if sq == 0:
        return 1.0
    return sum(values) ** 2 / (len(values) * sq)


class TraceStats:
    """Everything `stats` reports for one trace; wire :meth:`hooks` into a replay."""

    def __init__(self, sampler: BoundarySampler | None = None,
                 holds: HoldTracker | None = None) -> None:
        self.sampler = sampler if sampler is not None else BoundarySampler()
        self.holds = holds if holds is not None else HoldTracker(self.sampler)
        self.workload = Workload(self.sampler)
        self.outcome = Outcome(self.sampler, self.holds)

    def sinks(self) -> list[Any]:
        """Decision sinks, in the order they must see each record."""
        return [self.holds, self.outcome]

    def hooks(self) -> dict[str, Any]:
        s = self.sampler
        return {"on_open": s.on_open, "on_new_scope": s.on_new_scope, "on_event": s.on_event,
                "on_progress": s.on_progress, "on_trace_end": s.end}

    def to_json(self, result: ReplayResult) -> dict[str, Any]:
        self.sampler.settle()
        w = self.workload
        first = w.first_ts if w.first_ts is not None else 0.0
        last = w.last_ts if w.last_ts is not None else first
        span = last - first
        self.outcome.finish(last)
        per_scope: Counter[ScopeKey] = Counter(k for k, _ in w.dispatchers)
        scopes = []
        for key, s in self.outcome.scopes.items():
            lim = s.state.scope.limits
            scopes.append({
                "changefeed": key[0],
                "sink": key[1],
                "policy": lim.policy,
                "dispatchers": per_scope.get(key, 0),
                "global_enabled": s.state.scope.glob is not None,
                "high": s.high,
                "low": s.low,
                "peak_inflight": s.peak,
                "peak_ts": s.peak_ts,
                "overshoot_ratio": s.peak / s.high if s.high else None,
                "mean_inflight": s.byte_seconds / span if span > 0 else None,
                "time_at_or_above_high": s.above_high if s.high is not None else None,
                "time_at_or_below_low": s.below_low if s.low is not None else None,
                "fraction_at_or_above_high": (s.above_high / span
                                              if span > 0 and s.high is not None else None),
                "fraction_at_or_below_low": (s.below_low / span
                                             if span > 0 and s.low is not None else None),
                "global_wait_dispatcher_seconds": s.waiter_seconds,
                "needless_wait_fraction": (s.needless_waiter_seconds / s.waiter_seconds
                                           if s.waiter_seconds > 0 else None),
                "wake_rounds": s.round_sizes.count,
                "round_size": s.round_sizes.summary(),
                "longest_fifo_wait": s.longest_global_wait,
            })
        workload = w.to_json(result.config.multiplier)
        outcome = self.outcome.to_json(last, span, len(w.dispatchers))
        return {
            "trace": result.path,
            "policy": result.config.policy,
            "workload": workload,
            "outcome": outcome,
            "scopes": scopes,
        }
