"""TiCDC's in-flight budget metrics (SPEC section 6), computed from a replay in trace time.

Six families, labelled ``namespace``, ``changefeed`` and ``type`` (the sink type) like TiCDC's
dispatcher metrics — three for the changefeed-global budget, as the plan names them, and their
per-dispatcher counterparts:

- ``ticdc_dispatcher_inflight_budget_global_bytes`` (gauge): the global budget's in-flight bytes;
- ``ticdc_dispatcher_inflight_budget_global_blocked_dispatcher_count`` (gauge): dispatchers in its
  blocked set (the live entries of the FIFO queue);
- ``ticdc_dispatcher_inflight_budget_global_blocked_duration`` (histogram, s): time each spent in
  the queue, observed when the global budget wakes it;
- ``ticdc_dispatcher_inflight_budget_bytes`` (gauge): the sum of the per-dispatcher budgets'
  in-flight bytes;
- ``ticdc_dispatcher_inflight_budget_blocked_dispatcher_count`` (gauge): dispatchers held by their
  own budget;
- ``ticdc_dispatcher_inflight_budget_blocked_duration`` (histogram, s): how long each such hold
  lasted, observed at the hand-off or wake that ended it.

Only scopes with a budget are exported (sinks ``cloudstorage`` and ``redo``; a ``legacy`` scope has
no budget to report), the global families only where the scope's global budget is enabled.
Histograms use TiCDC's buckets, 0.01 × 2^k s for k = 0..19. Everything is in trace time, so a
trace always gives the same metrics.
"""

from __future__ import annotations

import bisect
from collections.abc import Callable, Iterator

from prometheus_client import CollectorRegistry
from prometheus_client.metrics_core import GaugeMetricFamily, HistogramMetricFamily, Metric
from prometheus_client.utils import floatToGoString

from budget.config import POLICY_LEGACY
from cli.views.sampling import BoundarySampler, HoldTracker, ScopeKey, ScopeState

PREFIX = "ticdc_dispatcher_inflight_budget"
GLOBAL_BYTES = f"{PREFIX}_global_bytes"
GLOBAL_BLOCKED = f"{PREFIX}_global_blocked_dispatcher_count"
GLOBAL_DURATION = f"{PREFIX}_global_blocked_duration"
PER_BYTES = f"{PREFIX}_bytes"
PER_BLOCKED = f"{PREFIX}_blocked_dispatcher_count"
PER_DURATION = f"{PREFIX}_blocked_duration"
LABELS = ("namespace", "changefeed", "type")
#: TiCDC's prometheus.ExponentialBuckets(0.01, 2, 20).
BUCKETS = tuple(0.01 * 2**k for k in range(20))
BUCKET_LABELS = tuple(floatToGoString(b) for b in BUCKETS) + ("+Inf",)

HELP = {
    GLOBAL_BYTES: "In-flight bytes of the changefeed-global budget (effective bytes).",
    GLOBAL_BLOCKED: "Dispatchers held in the global budget's FIFO queue.",
    GLOBAL_DURATION: "Seconds a dispatcher waited in the global budget's queue (trace time).",
    PER_BYTES: "Sum of the per-dispatcher budgets' in-flight bytes (effective bytes).",
    PER_BLOCKED: "Dispatchers held by their own per-dispatcher budget.",
    PER_DURATION: "Seconds a per-dispatcher budget held its dispatcher (trace time).",
}
GAUGES = (GLOBAL_BYTES, GLOBAL_BLOCKED, PER_BYTES, PER_BLOCKED)
HISTOGRAMS = (GLOBAL_DURATION, PER_DURATION)
#: Exposition order of the families.
FAMILIES = (GLOBAL_BYTES, GLOBAL_BLOCKED, GLOBAL_DURATION, PER_BYTES, PER_BLOCKED, PER_DURATION)


def scope_labels(changefeed: str, sink: str) -> tuple[str, str, str]:
    """TiCDC's labels: a changefeed id ``ns/name`` is split; one without ``/`` is in ``default``."""
    ns, sep, name = changefeed.partition("/")
    if not sep:
        return ("default", changefeed, sink)
    return (ns, name, sink)


class Histogram:
    """Bucket counts, count and sum of one labelled histogram."""

    __slots__ = ("counts", "count", "sum")

    def __init__(self) -> None:
        self.counts = [0] * (len(BUCKETS) + 1)
        self.count = 0
        self.sum = 0.0

    def observe(self, value: float) -> None:
        # Prometheus buckets are upper-inclusive: a value equal to a bound falls in that bucket.
        self.counts[bisect.bisect_left(BUCKETS, value)] += 1
        self.count += 1
        self.sum += value

    def cumulative(self) -> list[int]:
        out, acc = [], 0
        for c in self.counts:
            acc += c
            out.append(acc)
        return out


class ScopeMetrics:
    """The current value of every series of one scope."""

    __slots__ = ("key", "labels", "has_global", "values", "hists")

    def __init__(self, state: ScopeState) -> None:
        self.key = state.key
        self.labels = scope_labels(state.changefeed, state.sink)
        self.has_global = state.scope.glob is not None
        self.values: dict[str, int] = {PER_BYTES: 0, PER_BLOCKED: 0}
        self.hists: dict[str, Histogram] = {PER_DURATION: Histogram()}
        if self.has_global:
            self.values[GLOBAL_BYTES] = 0
            self.values[GLOBAL_BLOCKED] = 0
            self.hists[GLOBAL_DURATION] = Histogram()

    def families(self) -> tuple[str, ...]:
        return tuple(f for f in FAMILIES if f in self.values or f in self.hists)


ChangeListener = Callable[[float, ScopeMetrics], None]


class BudgetMetrics:
    """The metrics of one replay; ``listeners`` hear ``(ts, scope)`` after every change."""

    def __init__(self, sampler: BoundarySampler, holds: HoldTracker) -> None:
        sampler.observers.append(self.on_sample)
        holds.observers.append(self.on_hold)
        self.scopes: dict[ScopeKey, ScopeMetrics] = {}
        self.listeners: list[ChangeListener] = []
        self._skip: set[ScopeKey] = set()

    def on_sample(self, ts: float, state: ScopeState) -> None:
        key = state.key
        sm = self.scopes.get(key)
        if sm is None:
            if key in self._skip:
                return
            if state.scope.limits.policy == POLICY_LEGACY:
                self._skip.add(key)
                return
            sm = self.scopes[key] = ScopeMetrics(state)
        v = sm.values
        v[PER_BYTES] = state.inflight
        v[PER_BLOCKED] = state.per_blocked
        if sm.has_global:
            v[GLOBAL_BYTES] = state.global_inflight or 0
            v[GLOBAL_BLOCKED] = state.global_blocked
        for listen in self.listeners:
            listen(ts, sm)

    def on_hold(self, ts: float, key: ScopeKey, _dispatcher: str, budget: str,
                duration: float) -> None:
        sm = self.scopes.get(key)
        if sm is None:
            return
        h = sm.hists.get(GLOBAL_DURATION if budget == "global" else PER_DURATION)
        if h is None:
            return
        h.observe(duration)
        for listen in self.listeners:
            listen(ts, sm)

    def collect(self) -> Iterator[Metric]:
        """The families as prometheus-client objects (the current state)."""
        for name in FAMILIES:
            if name in HISTOGRAMS:
                fam: Metric = HistogramMetricFamily(name, HELP[name], labels=LABELS)
                for sm in self.scopes.values():
                    h = sm.hists.get(name)
                    if h is not None:
                        fam.add_metric(sm.labels, list(zip(BUCKET_LABELS, h.cumulative(),
                                                           strict=True)), h.sum)
            else:
                fam = GaugeMetricFamily(name, HELP[name], labels=LABELS)
                for sm in self.scopes.values():
                    if name in sm.values:
                        fam.add_metric(sm.labels, sm.values[name])
            yield fam

    def registry(self) -> CollectorRegistry:
        """A private registry holding these metrics (never prometheus-client's global one)."""
        reg = CollectorRegistry(auto_describe=False)
        reg.register(self)
        return reg
