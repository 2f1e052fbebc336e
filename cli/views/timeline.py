"""The timeline of a replay: in-flight bytes, paused dispatchers by budget, wake rounds and the
paused intervals of each dispatcher, folded from decision records and probe samples.

Everything is bounded in memory whatever the trace length: a series keeps at most ``size`` time
buckets (the bucket width doubles, and neighbours merge, whenever the trace outgrows them), and a
dispatcher keeps at most ``MAX_SEGMENTS`` paused intervals (the closest neighbours merge). A bucket
keeps its first, lowest, highest and last sample, so peaks and the drop of a drain survive the
downsampling exactly; with few samples per bucket the series is the exact step function.
"""

from __future__ import annotations

from array import array
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

from budget.decisions import ANOMALY, BLOCK, HANDOFF, LEAK, STRANDED, WAKE, Decision
from budget.scope import Scope
from traces.format import DEFAULT_CHANGEFEED, DEFAULT_SINK, Enqueue, Flush, Remove

#: The budgets that can hold a paused path, in the order paused counts are stacked.
BUDGETS = ("per", "global", "legacy")
_BUDGET_INDEX = {b: i for i, b in enumerate(BUDGETS)}
#: Time buckets per series: several per pixel column of a wide picture.
DEFAULT_BUCKETS = 2048
#: Paused intervals kept per dispatcher before neighbouring ones merge.
MAX_SEGMENTS = 48
#: Finest bucket width (seconds); it doubles as the trace's time span grows.
_FINEST = 2.0 ** -20
#: The end-of-trace drain happens "after" the last event at the same trace time; it is drawn in
#: a band this fraction of the trace's span wide, so its wakes and what it leaves stay visible.
DRAIN_BAND = 0.06

ScopeKey = tuple[str, str]


@dataclass(frozen=True, slots=True)
class Bucket:
    """The samples of one time bucket ``[start, end)``: first, lowest, highest and last."""

    start: float
    end: float
    count: int
    first: tuple[float, Any]
    low: tuple[float, Any]
    high: tuple[float, Any]
    last: tuple[float, Any]


class StepSeries:
    """A step function of time (a value holds until the next sample), downsampled to at most
    ``size`` buckets. Samples must come in non-decreasing time, as trace events do.

    ``key`` orders values for the low/high of a bucket (``None``: the values themselves).
    """

    __slots__ = ("size", "key", "width", "origin", "samples", "_done", "_cur", "_cur_index")

    def __init__(self, size: int = DEFAULT_BUCKETS, key: Callable[[Any], float] | None = None
                 ) -> None:
        if size < 2:
            raise ValueError("a series needs at least 2 buckets")
        self.size = size
        self.key = key
        self.width = _FINEST
        self.origin: float | None = None
        self.samples = 0
        # Closed buckets: [index, first_t, first_v, low_t, low_v, high_t, high_v, last_t, last_v, n]
        self._done: list[list[Any]] = []
        self._cur: list[Any] | None = None
        self._cur_index = -1

    def add(self, t: float, v: Any) -> None:
        self.samples += 1
        if self.origin is None:
            self.origin = t
        i = int((t - self.origin) / self.width)
        cur = self._cur
        if cur is None or i != self._cur_index:
            if i >= self.size:
                while i >= self.size:
                    self._coarsen()
                    i = int((t - self.origin) / self.width)
                cur = self._cur  # after merging, the sample may fall in the current bucket
            if cur is None or i != self._cur_index:
                if cur is not None:
                    self._done.append(cur)
                self._cur = [i, t, v, t, v, t, v, t, v, 1]
                self._cur_index = i
                return
        k = self.key
        kv = v if k is None else k(v)
        if kv < (cur[4] if k is None else k(cur[4])):
            cur[3] = t
            cur[4] = v
        if kv > (cur[6] if k is None else k(cur[6])):
            cur[5] = t
            cur[6] = v
        cur[7] = t
        cur[8] = v
        cur[9] += 1

    def _coarsen(self) -> None:
        """Double the bucket width; buckets that now share an index merge."""
        self.width *= 2
        merged: list[list[Any]] = []
        for b in self._done + ([self._cur] if self._cur is not None else []):
            b[0] //= 2
            if merged and merged[-1][0] == b[0]:
                self._merge_into(merged[-1], b)
            else:
                merged.append(b)
        if self._cur is not None:
            self._cur = merged.pop()
            self._cur_index = self._cur[0]
        self._done = merged

    def _merge_into(self, a: list[Any], b: list[Any]) -> None:
        k = self.key or (lambda x: x)
        if k(b[4]) < k(a[4]):
            a[3], a[4] = b[3], b[4]
        if k(b[6]) > k(a[6]):
            a[5], a[6] = b[5], b[6]
        a[7], a[8] = b[7], b[8]
        a[9] += b[9]

    def buckets(self) -> Iterator[Bucket]:
        """The buckets in time order (empty buckets are not stored)."""
        if self.origin is None:
            return
        w = self.width
        o = self.origin
        for b in self._done + ([self._cur] if self._cur is not None else []):
            yield Bucket(o + b[0] * w, o + (b[0] + 1) * w, b[9], (b[1], b[2]), (b[3], b[4]),
                         (b[5], b[6]), (b[7], b[8]))

    def points(self) -> list[tuple[float, Any]]:
        """Samples to draw as a step function: per bucket its first, low, high and last, in
        time order. With at most four samples per bucket, that is every sample."""
        out: list[tuple[float, Any]] = []
        for b in self._done + ([self._cur] if self._cur is not None else []):
            picks = sorted({(b[1], 0): b[2], (b[3], 1): b[4], (b[5], 2): b[6],
                            (b[7], 3): b[8]}.items())
            last_t = None
            for (t, _order), v in picks:
                if out and t == last_t and out[-1][1] == v:
                    continue
                out.append((t, v))
                last_t = t
        return out

    def peak(self) -> Any:
        """The highest sample (by ``key``), or None when empty."""
        best = None
        k = self.key or (lambda x: x)
        for b in self._done + ([self._cur] if self._cur is not None else []):
            if best is None or k(b[6]) > k(best):
                best = b[6]
        return best


class Segments:
    """One dispatcher's paused intervals: (start, end, budget index), at most ``cap`` of them."""

    __slots__ = ("starts", "ends", "budgets", "cap", "total", "ended")

    def __init__(self, cap: int = MAX_SEGMENTS) -> None:
        self.starts = array("d")
        self.ends = array("d")
        self.budgets = array("b")
        self.cap = cap
        self.total = 0.0  # seconds paused, closed intervals only
        #: How the last pause ended when it was not a wake: "stranded" or "removed".
        self.ended: str | None = None

    def add(self, start: float, end: float, budget: int, seconds: float) -> None:
        """An interval drawn from ``start`` to ``end`` that lasted ``seconds`` of trace time
        (they differ only where the drain's place on the timeline is involved)."""
        self.total += seconds
        if self.ends and self.ends[-1] == start and self.budgets[-1] == budget:
            self.ends[-1] = end  # one pause re-blocked by the same budget: one interval
            return
        self.starts.append(start)
        self.ends.append(end)
        self.budgets.append(budget)
        if len(self.starts) > self.cap:
            self._merge_closest()

    def _merge_closest(self) -> None:
        """Halve the list by merging across the smallest gaps; a merged interval takes the
        budget that held it longer."""
        while len(self.starts) > self.cap // 2:
            s, e, b = self.starts, self.ends, self.budgets
            gaps = [s[j + 1] - e[j] for j in range(len(s) - 1)]
            j = min(range(len(gaps)), key=gaps.__getitem__)
            keep = b[j] if e[j] - s[j] >= e[j + 1] - s[j + 1] else b[j + 1]
            e[j] = e[j + 1]
            b[j] = keep
            del s[j + 1], e[j + 1], b[j + 1]

    def intervals(self) -> list[tuple[float, float, str]]:
        return [(s, e, BUDGETS[b]) for s, e, b in zip(self.starts, self.ends, self.budgets,
                                                        strict=True)]


@dataclass
class Round:
    ts: float
    woken: int
    drain: bool


@dataclass
class ScopeTimeline:
    """The series of one (changefeed, sink) scope."""

    changefeed: str
    sink: str
    policy: str
    global_high: int | None  # None: no enabled global budget
    global_low: int | None
    per_high: int
    inflight: StepSeries
    #: True: ``inflight`` is the global budget's counter (the probe); False: the sum of the
    #: dispatchers' in-flight bytes (scopes without a global budget).
    inflight_is_global: bool
    paused: StepSeries  # values: (per, global, legacy) counts
    rounds: StepSeries  # values: dispatchers woken by one round; count = rounds in a bucket
    round_total: int = 0
    woken_total: int = 0
    stranded: int = 0
    leaks: int = 0
    dispatchers: dict[str, Segments] = field(default_factory=dict)
    #: Paused now: dispatcher → (timeline start, budget, trace-time start).
    _open: dict[str, tuple[float, int, float]] = field(default_factory=dict)
    _counts: list[int] = field(default_factory=lambda: [0, 0, 0])
    _round: tuple[int, Round] | None = None

    @property
    def name(self) -> str:
        return f"{self.changefeed} / {self.sink}"

    def peak_inflight(self) -> int:
        return self.inflight.peak() or 0

    def top(self, n: int, last_ts: float) -> list[tuple[str, Segments, float]]:
        """The n dispatchers paused longest (open pauses counted to the end), longest first."""
        rows = []
        for d, seg in self.dispatchers.items():
            total = seg.total
            if d in self._open:
                total += last_ts - self._open[d][2]
            rows.append((d, seg, total))
        rows.sort(key=lambda r: (-r[2], r[0]))
        picked = rows[:n]
        # Stranded dispatchers blocked last, so they rarely rank by time; they are the liveness
        # failure the picture must show, so up to a third of the rows are kept for them.
        shown = {r[0] for r in picked}
        missing = [r for r in rows if r[1].ended == "stranded" and r[0] not in shown]
        if missing and n:
            room = min(len(missing), max(1, n // 3))
            picked = picked[:n - room] + missing[:room]
        return picked

    # Folding ----------------------------------------------------------------------------------
    def _pause(self, ts: float, d: str, budget: int, real: float) -> None:
        now = self._open.get(d)
        if now is not None:
            if now[1] == budget:
                return
            self._close(ts, d, None, real)
        self._open[d] = (ts, budget, real)
        self._counts[budget] += 1
        self.paused.add(ts, tuple(self._counts))

    def _close(self, ts: float, d: str, ended: str | None, real: float) -> None:
        start, budget, real_start = self._open.pop(d)
        ts = max(ts, start)  # a pause begun by the drain (a hand-off) ends no earlier
        seg = self.dispatchers.get(d)
        if seg is None:
            seg = self.dispatchers[d] = Segments()
        seg.add(start, ts, budget, real - real_start)
        seg.ended = ended
        if ended != "stranded":  # a stranded dispatcher stays paused for good
            self._counts[budget] -= 1
            self.paused.add(ts, tuple(self._counts))

    def _flush_round(self) -> None:
        if self._round is not None:
            r = self._round[1]
            self.rounds.add(r.ts, r.woken)
            self.round_total += 1
            self.woken_total += r.woken
            self._round = None

    def record(self, rec: Decision, ts: float) -> None:
        """Fold one record; ``ts`` is its time on the timeline (the drain's is moved)."""
        kind = rec.kind
        d = rec.dispatcher or ""
        real = rec.ts
        if kind == BLOCK:
            self._pause(ts, d, _BUDGET_INDEX[rec.by or "legacy"], real)
        elif kind == HANDOFF:
            self._pause(ts, d, _BUDGET_INDEX["global"], real)
        elif kind == WAKE:
            if d in self._open:
                self._close(ts, d, None, real)
            if rec.by == "global":
                if self._round is None or self._round[0] != rec.round:
                    self._flush_round()
                    self._round = (rec.round or 0, Round(ts, 0, rec.drain))
                self._round[1].woken += 1
        elif kind == ANOMALY:
            if rec.code == STRANDED:
                self.stranded += 1
                if d in self._open:
                    # Drawn to where the events end; the drain band shows it still paused.
                    self._close(real, d, "stranded", real)
            elif rec.code == LEAK:
                self.leaks += 1

    def removed(self, ts: float, d: str) -> None:
        # Cleanup clears the pause without a wake (SPEC section 2, step 6): no record says so.
        if d in self._open:
            self._close(ts, d, "removed", ts)


class Timeline:
    """A decision sink plus model hooks that fold a replay into per-scope series.

    Wire it as ``replay(..., emit=timeline, on_new_scope=timeline.attach,
    on_event=timeline.on_event)`` and call :meth:`finish` after the replay.
    """

    def __init__(self, buckets: int = DEFAULT_BUCKETS, default_changefeed: str | None = None,
                 default_sink: str | None = None) -> None:
        self.buckets = buckets
        self.scopes: dict[ScopeKey, ScopeTimeline] = {}
        self.models: dict[ScopeKey, Scope] = {}
        self.default_changefeed = default_changefeed or DEFAULT_CHANGEFEED
        self.default_sink = default_sink or DEFAULT_SINK
        self.first_ts: float | None = None
        self.last_ts: float | None = None
        #: Where the end-of-trace records (leaks, drain, stranded) sit on the timeline: after
        #: ``last_ts`` by DRAIN_BAND of the span; None until the trace has ended.
        self.drain_ts: float | None = None
        # Scopes without a global budget: the event being applied (scope key, dispatcher,
        # its model object before the event, its in-flight before) and each scope's total.
        self._pending: tuple[ScopeKey, str, Any, int, float] | None = None
        self._totals: dict[ScopeKey, int] = {}

    def set_defaults(self, changefeed: str | None, sink: str | None) -> None:
        """The trace header's defaults for events that name no scope."""
        self.default_changefeed = changefeed or DEFAULT_CHANGEFEED
        self.default_sink = sink or DEFAULT_SINK

    def attach(self, scope: Scope) -> None:
        """``on_new_scope`` hook: start the scope's series and observe its global counter."""
        key = (scope.changefeed, scope.sink)
        lim = scope.limits
        glob = scope.glob
        st = ScopeTimeline(
            changefeed=scope.changefeed, sink=scope.sink, policy=lim.policy,
            global_high=glob.high if glob is not None else None,
            global_low=glob.low if glob is not None else None, per_high=lim.per_high,
            inflight=StepSeries(self.buckets), inflight_is_global=glob is not None,
            paused=StepSeries(self.buckets, key=sum), rounds=StepSeries(self.buckets))
        self.scopes[key] = st
        self.models[key] = scope
        if glob is not None:
            cause = scope.report.cause
            add = st.inflight.add
            end = self._end_time

            prev = glob.probe

            def probe(ts: float, inflight: int) -> None:
                # Events always have a line; the drain (and only it) runs with none.
                add(ts if cause.line is not None else end(), inflight)
                if prev is not None:
                    prev(ts, inflight)

            glob.probe = probe
        else:
            self._totals[key] = 0

    def __call__(self, rec: Decision) -> None:
        st = self.scopes.get((rec.changefeed, rec.sink))
        if st is not None:
            st.record(rec, rec.ts if rec.line is not None else self._end_time())

    def _end_time(self) -> float:
        if self.drain_ts is None:
            self._settle()
            first = self.first_ts or 0.0
            last = self.last_ts if self.last_ts is not None else first
            self.drain_ts = last + max((last - first) * DRAIN_BAND, 1e-3)
        return self.drain_ts

    def timeline_ts(self, rec: Decision) -> float:
        """Where a record sits on the timeline: its ts, or the drain's place for end records."""
        return rec.ts if rec.line is not None else self._end_time()

    def on_event(self, line: int, ev: object) -> None:
        """``on_event`` hook: sees each event before the model applies it."""
        ts = ev.ts  # type: ignore[attr-defined]
        if self.first_ts is None:
            self.first_ts = ts
        self.last_ts = ts
        self._settle()
        cls = ev.__class__
        key = (ev.changefeed or self.default_changefeed,  # type: ignore[attr-defined]
               ev.sink or self.default_sink)  # type: ignore[attr-defined]
        if cls is Remove:
            st = self.scopes.get(key)
            if st is not None:
                st.removed(ts, ev.dispatcher)  # type: ignore[attr-defined]
            return
        if cls is not Enqueue and cls is not Flush:
            return
        scope = self.models.get(key)
        if scope is not None and scope.glob is not None:
            return  # the probe sees every change
        d = scope.dispatchers.get(ev.dispatcher) if scope is not None else None  # type: ignore[attr-defined]
        self._pending = (key, ev.dispatcher, d, d.inflight if d is not None else 0, ts)  # type: ignore[attr-defined]

    def _settle(self) -> None:
        """Account the in-flight change of the event just applied (scopes without a global
        budget): the dispatcher's bytes after the event minus before."""
        p = self._pending
        if p is None:
            return
        self._pending = None
        key, did, d, before, ts = p
        scope = self.models.get(key)
        if scope is None or scope.glob is not None:
            return
        if d is None:
            d = scope.dispatchers.get(did)
        after = d.inflight if d is not None else 0
        if after != before:
            total = self._totals[key] + after - before
            self._totals[key] = total
            self.scopes[key].inflight.add(ts, total)

    def finish(self, last_ts: float | None = None) -> None:
        """After the replay: the last event's change, the drain, the round being folded."""
        self._settle()
        if last_ts is not None:
            self.last_ts = last_ts
        for key, st in self.scopes.items():
            st._flush_round()
            scope = self.models[key]
            if scope.glob is None and self.last_ts is not None:
                # The drain flushed what was left; no event carries it.
                total = sum(d.inflight for d in scope.dispatchers.values())
                if total != self._totals[key]:
                    self._totals[key] = total
                    st.inflight.add(self._end_time(), total)

    @property
    def end_ts(self) -> float:
        """The right end of the timeline: the drain's place, else the last event."""
        if self.drain_ts is not None:
            return self.drain_ts
        return self.last_ts if self.last_ts is not None else 0.0


__all__ = ["BUDGETS", "Bucket", "Round", "ScopeTimeline", "Segments", "StepSeries", "Timeline"]
