"""The `run` summary: counts, per-dispatcher blocking, wake rounds, crossings and anomalies.

Everything here is computed from the decision records; the replay's final model state supplies
only what no record carries (the effective limits and the peak of global in-flight).
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from budget.decisions import (
    ANOMALY,
    BLOCK,
    CONFORMANCE_CODES,
    CROSS,
    HANDOFF,
    LEAK,
    STRANDED,
    WAKE,
    Decision,
)
from cli.views.excerpt import Excerpt
from traces.format import DEFAULT_CHANGEFEED, DEFAULT_SINK, Remove
from traces.replay import ReplayResult

ScopeKey = tuple[str, str]
DispatcherKey = tuple[str, str, str]


class DispatcherTally:
    """Blocking history of one dispatcher, folded from its records."""

    __slots__ = ("pauses", "blocked_time", "longest", "by", "paused_since", "drain_woken",
                 "stranded", "wakes", "removed_paused")

    def __init__(self) -> None:
        self.pauses = 0
        self.blocked_time = 0.0
        self.longest = 0.0
        self.by: set[str] = set()
        self.paused_since: float | None = None
        self.drain_woken = False
        self.stranded = False
        self.wakes = 0
        self.removed_paused = False


@dataclass
class Round:
    changefeed: str
    sink: str
    number: int
    ts: float
    line: int | None
    drain: bool
    woken: list[tuple[str, float]] = field(default_factory=list)  # (dispatcher, waited)


@dataclass
class ScopeTally:
    blocks: Counter = field(default_factory=Counter)
    wakes: Counter = field(default_factory=Counter)
    handoffs: int = 0
    rounds: int = 0
    round_sizes: Counter = field(default_factory=Counter)
    longest_global_wait: float = 0.0
    crossings: Counter = field(default_factory=Counter)
    anomalies: Counter = field(default_factory=Counter)


class RunSummary:
    """A decision sink that folds the stream into what `run` shows."""

    def __init__(self, keep: int = 50, dispatcher: str | None = None,
                 changefeed: str | None = None) -> None:
        self.keep = keep
        self.only_dispatcher = dispatcher
        self.only_changefeed = changefeed
        self.scopes: dict[ScopeKey, ScopeTally] = {}
        self.dispatchers: dict[DispatcherKey, DispatcherTally] = {}
        self.rounds: Excerpt[Round] = Excerpt(keep)
        self.crossings: Excerpt[Decision] = Excerpt(keep)
        self.anomalies: Excerpt[Decision] = Excerpt(keep)
        self.records = 0
        self._open_round: Round | None = None
        self.default_changefeed = DEFAULT_CHANGEFEED
        self.default_sink = DEFAULT_SINK

    def _scope(self, rec: Decision) -> ScopeTally:
        key = (rec.changefeed, rec.sink)
        s = self.scopes.get(key)
        if s is None:
            s = self.scopes[key] = ScopeTally()
        return s

    def _dispatcher(self, rec: Decision) -> DispatcherTally:
        key = (rec.changefeed, rec.sink, rec.dispatcher or "")
        t = self.dispatchers.get(key)
        if t is None:
            t = self.dispatchers[key] = DispatcherTally()
        return t

    def _selected(self, rec: Decision) -> bool:
        if self.only_changefeed is not None and rec.changefeed != self.only_changefeed:
            return False
        if self.only_dispatcher is not None and rec.dispatcher is not None \
                and rec.dispatcher != self.only_dispatcher:
            return False
        return True

    def __call__(self, rec: Decision) -> None:
        if not self._selected(rec):
            return
        self.records += 1
        kind = rec.kind
        scope = self._scope(rec)
        if kind == BLOCK:
            scope.blocks[rec.by] += 1
            t = self._dispatcher(rec)
            t.by.add(rec.by or "")
            if t.paused_since is None:
                t.paused_since = rec.ts
                t.pauses += 1
        elif kind == HANDOFF:
            scope.handoffs += 1
            self._dispatcher(rec).by.add("global")
        elif kind == WAKE:
            scope.wakes[rec.by] += 1
            t = self._dispatcher(rec)
            waited = rec.blocked_for or 0.0
            t.blocked_time += waited
            t.longest = max(t.longest, waited)
            t.paused_since = None
            t.wakes += 1
            if rec.drain:
                t.drain_woken = True
            if rec.by == "global":
                scope.longest_global_wait = max(scope.longest_global_wait, waited)
                r = self._open_round
                if (r is None or r.number != rec.round or r.changefeed != rec.changefeed
                        or r.sink != rec.sink):
                    self.close_round()
                    r = Round(rec.changefeed, rec.sink, rec.round or 0, rec.ts, rec.line,
                              rec.drain)
                    self._open_round = r
                    self.rounds.append(r)
                    scope.rounds += 1
                r.woken.append((rec.dispatcher or "", waited))
        elif kind == CROSS:
            scope.crossings[(rec.level, rec.mark)] += 1
            self.crossings.append(rec)
        elif kind == ANOMALY:
            scope.anomalies[rec.code] += 1
            self.anomalies.append(rec)
            if rec.code == STRANDED:
                self._dispatcher(rec).stranded = True

    def opened(self, reader: object, _config: object) -> None:
        """Learn the header's default scope, to place events that omit theirs."""
        self.default_changefeed, self.default_sink = reader.default_scope  # type: ignore[attr-defined]

    def observe(self, line: int, event: object) -> None:
        """Trace events the records do not show: a removal ends a pause without a wake."""
        if event.__class__ is Remove:
            key = (event.changefeed or self.default_changefeed,  # type: ignore[attr-defined]
                   event.sink or self.default_sink, event.dispatcher)  # type: ignore[attr-defined]
            t = self.dispatchers.get(key)
            if t is not None and t.paused_since is not None:
                waited = event.ts - t.paused_since  # type: ignore[attr-defined]
                t.blocked_time += waited
                t.longest = max(t.longest, waited)
                t.paused_since = None
                t.removed_paused = True

    def close_round(self) -> None:
        """Count the size of the round being folded; call once more after the last record."""
        r = self._open_round
        if r is not None:
            self.scopes[(r.changefeed, r.sink)].round_sizes[len(r.woken)] += 1
            self._open_round = None

    # Results --------------------------------------------------------------------------------
    def ranked(self, last_ts: float) -> list[tuple[DispatcherKey, DispatcherTally, float]]:
        """Dispatchers by total blocked time, open pauses counted up to the end of the trace."""
        rows = []
        for k, t in self.dispatchers.items():
            if not t.pauses:
                continue
            total = t.blocked_time
            if t.paused_since is not None:
                total += last_ts - t.paused_since
            rows.append((k, t, total))
        rows.sort(key=lambda r: (-r[2], r[0]))
        return rows

    def scope_figures(self, result: ReplayResult) -> list[dict[str, Any]]:
        """One object per scope: its effective limits, peak, and the counts of its records."""
        per_scope: Counter[ScopeKey] = Counter()
        waiting: Counter[ScopeKey] = Counter()
        for (cf, sink, _d), t in self.dispatchers.items():
            per_scope[(cf, sink)] += 1
            if t.drain_woken:
                waiting[(cf, sink)] += 1
        scopes = []
        for key, s in result.engine.scopes.items():
            if self.only_changefeed is not None and key[0] != self.only_changefeed:
                continue
            lim = s.limits
            tally = self.scopes.get(key, ScopeTally())
            glob = s.glob
            peak = glob.peak if glob is not None else None
            anomalies = dict(sorted(tally.anomalies.items()))
            scopes.append({
                "changefeed": key[0],
                "sink": key[1],
                "policy": lim.policy,
                "per_low": lim.per_low,
                "per_high": lim.per_high,
                "multiplier": lim.multiplier,
                "max_wake_per_round": lim.max_wake_per_round,
                "area_quota": lim.area_quota,
                "global_high": lim.global_high,
                "global_low": lim.global_low,
                "global_enabled": glob is not None,
                "global_disabled_reason": lim.why_global_disabled(),
                "peak_global_inflight": peak,
                "peak_global_ts": glob.peak_ts if glob is not None else None,
                "peak_ratio": (peak / lim.global_high) if glob is not None else None,
                "dispatchers": per_scope[key],
                "blocks": dict(sorted(tally.blocks.items())),
                "wakes": dict(sorted(tally.wakes.items())),
                "handoffs": tally.handoffs,
                "rounds": tally.rounds,
                "largest_round": max(tally.round_sizes, default=0),
                "longest_global_wait": tally.longest_global_wait,
                "crossings": {f"{lv}_{mk}": n for (lv, mk), n in sorted(tally.crossings.items())},
                "anomalies": anomalies,
                "conformance_anomalies": sum(n for c, n in anomalies.items()
                                             if c in CONFORMANCE_CODES),
                "stranded": anomalies.get(STRANDED, 0),
                "leaks": anomalies.get(LEAK, 0),
                "waiting": waiting[key],
            })
        return scopes

    def to_json(self, result: ReplayResult, top: int) -> dict[str, Any]:
        """The summary object of ``run --format json``."""
        last_ts = result.last_ts or 0.0
        scopes = self.scope_figures(result)
        blocked = [
            {"changefeed": k[0], "sink": k[1], "dispatcher": k[2], "pauses": t.pauses,
             "blocked_time": total, "longest": max(t.longest, total - t.blocked_time),
             "by": sorted(t.by), "stranded": t.stranded, "waiting": t.drain_woken,
             "removed_while_paused": t.removed_paused}
            for k, t, total in (self.ranked(last_ts)[:top] if top > 0 else [])
        ]
        return {
            "trace": result.path,
            "events": result.events,
            "enqueues": result.enqueues,
            "flushes": result.flushes,
            "removes": result.removes,
            "first_ts": result.first_ts,
            "last_ts": result.last_ts,
            "decisions": self.records,
            "scopes": scopes,
            "blocked_dispatchers": blocked,
            "rounds": [{"changefeed": r.changefeed, "sink": r.sink, "round": r.number,
                        "ts": r.ts, "line": r.line, "drain": r.drain,
                        "woken": [{"dispatcher": d, "waited": w} for d, w in r.woken]}
                       for r in list(self.rounds)[:top]],
            "rounds_total": self.rounds.total,
            "crossings_total": self.crossings.total,
            "anomalies_total": self.anomalies.total,
        }
