"""Synthetic workloads: seeded, streamed, closed-loop v1 traces for the scenarios engineers discuss.

Every table is a lazy source of batches (Poisson arrivals whose rate follows a Zipf skew across
tables and an optional burst cycle; log-normal DML sizes and flush latencies with occasional slow
flushes). The sources run through :class:`~traces.closed_loop.ClosedLoop`, so a paused dispatcher
delivers nothing until woken and the trace never holds an enqueue while paused.

Determinism: one ``random.Random(seed)`` is drawn from in event order, which the closed loop fixes
(its heap breaks ties by insertion order), so the same seed and options give the same bytes.
Memory is O(dispatchers + DMLs in flight), never O(events): batches are drawn when they are due
and written out at once. A per-table ``Random`` would cost ~2.5 KiB each; one shared generator
keeps 100,000 tables cheap.
"""

from __future__ import annotations

import itertools
import math
import random
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass, fields, replace
from typing import IO

from budget.config import BudgetConfig, MiB
from traces.closed_loop import Batch, ClosedLoop, Source
from traces.writer import TraceWriter

KiB = 1 << 10
#: Per-dispatcher watermarks of an offered-load trace: never reached.
OFFERED_PER_HIGH = 1 << 62
OFFERED_PER_LOW = 1 << 61

#: What ``--sinks`` accepts and the scopes each table gets.
SINK_CHOICES = {
    "cloudstorage": ("cloudstorage",),
    "redo": ("redo",),
    "both": ("redo", "cloudstorage"),
    "legacy": ("mysql",),
}


@dataclass(frozen=True)
class GenOptions:
    """The knobs of a generated workload (defaults: a moderate cloud-storage changefeed)."""

    dispatchers: int = 200
    changefeeds: int = 1
    sinks: str = "cloudstorage"
    duration: float = 20.0
    #: Batches per second over all tables (before bursts).
    rate: float = 250.0
    #: Zipf exponent of the rate across tables (0: uniform; 1+: a few hot tables).
    zipf: float = 1.0
    #: Every table sends one batch within this many seconds of the start (a changefeed start-up).
    startup: float = 0.0
    #: Burst cycle: every ``burst_period`` s the rate is multiplied by ``burst_factor`` for
    #: ``burst_duty`` of the period. 0 turns bursts off.
    burst_period: float = 0.0
    burst_duty: float = 0.2
    burst_factor: float = 8.0
    #: DMLs per batch: 1 + a geometric draw with this mean excess.
    batch_dmls: float = 3.0
    #: Log-normal DML size (bytes, before the multiplier).
    dml_median: int = 256 * KiB
    dml_sigma: float = 1.0
    dml_max: int = 16 * MiB
    #: Log-normal flush latency (seconds) and the slow object store.
    latency_median: float = 0.3
    latency_sigma: float = 0.5
    slow_probability: float = 0.01
    slow_factor: float = 20.0
    #: Share of tables removed during the run, and of those whose in-flight DMLs never flush.
    remove_fraction: float = 0.0
    leak_fraction: float = 0.0
    #: Share of tables that join during the run (table churn: created after the start).
    join_fraction: float = 0.0
    #: Budget configuration written to the header (keys of SPEC section 4; None: default).
    per_low: int | None = None
    per_high: int | None = None
    area_quota: int | None = None
    memory_quota: int | None = None
    redo_percentage: int | None = None
    global_high: int | None = None
    global_low: int | None = None
    max_wake_per_round: int | None = None
    multiplier: int | None = None
    policy: str | None = None
    #: Offered load: nobody is ever paused, so every batch keeps its upstream arrival time. The
    #: header says so (policy per-dispatcher, per-dispatcher watermarks out of reach); what-ifs
    #: on it (``compare --base``) then start from the workload, not from Option A's delays.
    offered: bool = False

    def header_config(self) -> dict[str, object]:
        keys = {f.name for f in fields(BudgetConfig)}
        cfg = {k: v for k, v in asdict(self).items() if k in keys and v is not None}
        if self.offered:
            cfg.update(policy="per-dispatcher", per_low=OFFERED_PER_LOW,
                       per_high=OFFERED_PER_HIGH)
        return cfg

    def budget_config(self) -> BudgetConfig:
        return BudgetConfig().merged(self.header_config())


#: Named scenarios; each overrides some defaults of :class:`GenOptions`.
PRESETS: dict[str, dict[str, object]] = {
    "default": {},
    # One table takes most of the traffic and fills its own 128 MiB budget again and again.
    "hot-table": {"dispatchers": 20, "zipf": 2.5, "rate": 300.0, "dml_median": 512 * KiB,
                  "latency_median": 0.4},
    # A start-up of 2,000 small tables against a 128 MiB global high (area quota 256 MiB):
    # every table sends a batch in the first second, far more than the global budget.
    "many-tables": {"dispatchers": 2000, "zipf": 0.6, "rate": 1500.0, "startup": 1.0,
                    "duration": 10.0, "batch_dmls": 2.0, "dml_median": 128 * KiB,
                    "area_quota": 256 * MiB},
    # A slow object store: seconds per flush, and one flush in twenty takes 10× longer.
    "slow-sink": {"dispatchers": 300, "rate": 300.0, "latency_median": 1.5,
                  "latency_sigma": 0.6, "slow_probability": 0.05, "slow_factor": 10.0,
                  "area_quota": 512 * MiB},
    # Upstream bursts: for 1 s in every 5 s the rate is ten times higher.
    "bursty": {"dispatchers": 300, "rate": 250.0, "burst_period": 5.0, "burst_duty": 0.2,
               "burst_factor": 10.0, "area_quota": 512 * MiB},
    # Tables dropped and created during the run; some dropped tables leak their in-flight DMLs.
    "churn": {"dispatchers": 400, "rate": 400.0, "remove_fraction": 0.3, "leak_fraction": 0.2,
              "join_fraction": 0.3, "latency_median": 0.8, "area_quota": 512 * MiB},
    # The same tables write to the redo log and to cloud storage (memory quota split 50/50).
    "redo-storage": {"dispatchers": 200, "sinks": "both", "rate": 300.0,
                     "memory_quota": 1024 * MiB, "redo_percentage": 50},
}


def options_for(preset: str = "default", **overrides: object) -> GenOptions:
    """A preset's options with explicit overrides (``None`` values are ignored)."""
    if preset not in PRESETS:
        raise KeyError(preset)
    opts = replace(GenOptions(), **PRESETS[preset])
    return replace(opts, **{k: v for k, v in overrides.items() if v is not None})


def zipf_cumulative(n: int, s: float) -> list[float]:
    """Cumulative Zipf weights of ``n`` tables, normalised to end at 1.0."""
    acc = list(itertools.accumulate(1.0 / (i + 1) ** s for i in range(n)))
    total = acc[-1]
    return [a / total for a in acc]


class _Workload:
    """Shared draws of one generated workload; sources call back into it for their batches."""

    def __init__(self, opts: GenOptions, rng: random.Random) -> None:
        self.o = opts
        self.rng = rng
        self._mu_size = math.log(max(opts.dml_median, 1))
        self._mu_lat = math.log(max(opts.latency_median, 1e-6))

    def burst_multiplier(self, t: float) -> float:
        o = self.o
        if o.burst_period <= 0:
            return 1.0
        return o.burst_factor if (t % o.burst_period) < o.burst_duty * o.burst_period else 1.0

    def batch(self, at: float) -> Batch:
        o, rng = self.o, self.rng
        n = 1
        if o.batch_dmls > 0:
            # 1 + geometric(mean batch_dmls), drawn by inversion (one uniform per batch).
            p = 1.0 / (1.0 + o.batch_dmls)
            n += int(math.log(1.0 - rng.random()) / math.log(1.0 - p))
        sizes, lats = [], []
        for _ in range(n):
            size = int(rng.lognormvariate(self._mu_size, o.dml_sigma))
            sizes.append(max(1, min(size, o.dml_max)))
            lat = rng.lognormvariate(self._mu_lat, o.latency_sigma)
            if o.slow_probability and rng.random() < o.slow_probability:
                lat *= o.slow_factor
            lats.append(lat)
        # The sink completes a batch's objects in order: no DML of a batch flushes before the
        # previous one (keeps the per-dispatcher release order realistic).
        for i in range(1, n):
            lats[i] = max(lats[i], lats[i - 1])
        return Batch(at=at, sizes=sizes, latencies=lats)

    def arrivals(self, rate: float, start: float, end: float, first_at: float | None
                 ) -> Iterator[Batch]:
        """A table's batches: Poisson with ``rate`` (times the burst factor) until ``end``."""
        rng = self.rng
        t = start
        if first_at is not None:
            t = first_at
            yield self.batch(t)
        while True:
            # Thinning-free approximation: the rate in force at the current time.
            t += rng.expovariate(rate * self.burst_multiplier(t))
            if t >= end:
                return
            yield self.batch(t)


@dataclass
class GenStats:
    """What the generator produced."""

    lines: int = 0
    events: int = 0
    dispatchers: int = 0
    last_ts: float = 0.0


def generate(out: IO[bytes], opts: GenOptions, seed: int = 1, *, gz: bool = False,
             progress: Callable[[float], None] | None = None) -> GenStats:
    """Write the workload ``opts`` (seeded by ``seed``) as a v1 trace to the binary stream."""
    if opts.sinks not in SINK_CHOICES:
        raise ValueError(f"unknown sinks {opts.sinks!r} (expected one of "
                         f"{', '.join(SINK_CHOICES)})")
    if opts.dispatchers < 1 or opts.changefeeds < 1:
        raise ValueError("dispatchers and changefeeds must be at least 1")
    rng = random.Random(seed)
    work = _Workload(opts, rng)
    sinks = SINK_CHOICES[opts.sinks]
    changefeeds = [f"default/cf-{i}" for i in range(opts.changefeeds)] \
        if opts.changefeeds > 1 else ["default/changefeed"]
    w = TraceWriter(out, gz=gz)
    w.header(changefeed=changefeeds[0], sink=sinks[-1], config=opts.header_config() or None)
    loop = ClosedLoop(w, opts.budget_config(), changefeeds[0], sinks[-1])
    loop.progress = progress
    cum = zipf_cumulative(opts.dispatchers, opts.zipf)
    n = opts.dispatchers
    width = len(str(n - 1))
    for i in range(n):
        share = cum[i] - (cum[i - 1] if i else 0.0)
        rate = max(opts.rate * share, 1e-9)
        start = 0.0
        if opts.join_fraction and rng.random() < opts.join_fraction:
            start = rng.uniform(0.0, opts.duration * 0.8)
        remove_at = None
        leak = False
        if opts.remove_fraction and rng.random() < opts.remove_fraction:
            remove_at = rng.uniform(start + (opts.duration - start) * 0.2, opts.duration)
            leak = rng.random() < opts.leak_fraction
        first_at = None
        if opts.startup > 0:
            first_at = start + rng.uniform(0.0, opts.startup)
        cf = changefeeds[i % len(changefeeds)]
        for sink in sinks:
            src = Source(f"t{i:0{width}d}", work.arrivals(rate, start, opts.duration, first_at),
                         changefeed=None if cf == changefeeds[0] else cf,
                         sink=None if sink == sinks[-1] else sink,
                         remove_at=remove_at, leak_on_remove=leak)
            loop.add(src)
    loop.run()
    w.close()
    return GenStats(lines=w.lines, events=loop.events, dispatchers=n * len(sinks),
                    last_ts=loop._now)


def estimated_events(opts: GenOptions) -> int:
    """About how many trace events the options give (for sizing and progress)."""
    batches = opts.rate * opts.duration * (1 + (opts.burst_factor - 1) * opts.burst_duty
                                           if opts.burst_period > 0 else 1)
    batches += opts.dispatchers if opts.startup > 0 else 0
    return int(batches * (2 + opts.batch_dmls) * len(SINK_CHOICES[opts.sinks]))


__all__ = ["GenOptions", "GenStats", "PRESETS", "SINK_CHOICES", "generate", "options_for",
           "estimated_events", "zipf_cumulative"]
