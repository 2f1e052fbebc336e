"""``--metrics``, ``--openmetrics`` and ``--start-time``: metrics files written from a replay."""

from __future__ import annotations

import time
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import click
from prometheus_client import generate_latest

from cli.atomic import atomic_output
from cli.views.metrics import BudgetMetrics
from cli.views.openmetrics import OpenMetricsWriter
from cli.views.sampling import BoundarySampler, HoldTracker
from traces.replay import ReplayResult


class StartTime(click.ParamType):
    """A wall-clock instant: ISO 8601 (``2024-05-01T12:00:00Z``, no zone means UTC) or Unix time."""

    name = "TIME"

    def convert(self, value: Any, param: click.Parameter | None,
                ctx: click.Context | None) -> float:
        if isinstance(value, (int, float)):
            return float(value)
        text = str(value).strip()
        try:
            return float(text)
        except ValueError:
            pass
        try:
            dt = datetime.fromisoformat(text)
        except ValueError:
            self.fail(f"not a time: {text!r} (try 2024-05-01T12:00:00Z or Unix seconds)",
                      param, ctx)
        if dt.tzinfo is None:
            dt = dt.replace(tzinfo=UTC)
        return dt.timestamp()


def metrics_options(f: Callable[..., Any]) -> Callable[..., Any]:
    """Add ``--metrics``, ``--openmetrics`` and ``--start-time`` (popped by :func:`pop_export`)."""
    opts = [
        click.option("--metrics", "metrics_file", type=click.Path(dir_okay=False),
                     help="Write TiCDC's budget metrics at the end of the trace (Prometheus text, "
                          "for node_exporter's textfile collector) to this file, atomically."),
        click.option("--openmetrics", "openmetrics_file", type=click.Path(dir_okay=False),
                     help="Write the whole replay as an OpenMetrics time series to this file, for "
                          "`promtool tsdb create-blocks-from openmetrics`."),
        click.option("--start-time", type=StartTime(),
                     help="Wall-clock time of the trace's first event in --openmetrics output "
                          "(ISO 8601 or Unix seconds; default: now minus the trace's span)."),
    ]
    for opt in reversed(opts):
        f = opt(f)
    return f


class MetricsExport:
    """The metrics of one replay and the files they go to; inert when no file is asked for."""

    def __init__(self, prom: str | None = None, openmetrics: str | None = None,
                 start_time: float | None = None) -> None:
        self.prom = prom
        self.openmetrics = openmetrics
        self.start_time = start_time
        self.sampler: BoundarySampler | None = None
        self.holds: HoldTracker | None = None
        self.metrics: BudgetMetrics | None = None
        self.writer: OpenMetricsWriter | None = None
        self._own_holds = False

    @property
    def enabled(self) -> bool:
        return bool(self.prom or self.openmetrics)

    def attach(self, sampler: BoundarySampler | None = None,
               holds: HoldTracker | None = None) -> None:
        """Build the metrics on a sampler (shared with other views, or a new one)."""
        if not self.enabled:
            return
        self.sampler = sampler if sampler is not None else BoundarySampler()
        self._own_holds = holds is None
        self.holds = holds if holds is not None else HoldTracker(self.sampler)
        self.metrics = BudgetMetrics(self.sampler, self.holds)
        if self.openmetrics:
            self.writer = OpenMetricsWriter(self.metrics)

    def sinks(self) -> list[Any]:
        """Decision sinks to add to the replay (none when the hold tracker is shared)."""
        return [self.holds] if self.holds is not None and self._own_holds else []

    def hooks(self, on_new_scope: Callable[[Any], None] | None = None) -> dict[str, Any]:
        """Replay hooks; ``on_new_scope`` is another view's hook, called as well."""
        s = self.sampler
        if s is None:
            return {"on_new_scope": on_new_scope} if on_new_scope is not None else {}
        new_scope = s.on_new_scope
        if on_new_scope is not None:
            def new_scope(scope: Any) -> None:
                on_new_scope(scope)
                s.on_new_scope(scope)
        return {"on_open": s.on_open, "on_new_scope": new_scope, "on_event": s.on_event,
                "on_progress": s.on_progress, "on_trace_end": s.end}

    def write(self, result: ReplayResult) -> None:
        if self.metrics is None:
            return
        assert self.sampler is not None
        self.sampler.settle()
        if self.prom:
            data = generate_latest(self.metrics.registry())
            with atomic_output(self.prom, "wb") as f:
                f.write(data)
        if self.writer is not None and self.openmetrics:
            first = result.first_ts if result.first_ts is not None else 0.0
            last = result.last_ts if result.last_ts is not None else first
            start = self.start_time
            if start is None:
                start = time.time() - (last - first)
            with atomic_output(self.openmetrics, "w") as f:
                self.writer.write(f, start, first, last)


def pop_export(flags: dict[str, Any]) -> MetricsExport:
    """Take the metrics flags out of a command's keyword arguments."""
    return MetricsExport(flags.pop("metrics_file", None), flags.pop("openmetrics_file", None),
                         flags.pop("start_time", None))
