"""What-if figures: one row of numbers per configuration, for `compare` and `sweep`.

Blocking figures fold the decision stream; memory, delay and throughput come from the
simulation, which is the only place that knows when a delayed batch finally ran.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from rich import box
from rich.table import Table
from rich.text import Text

from budget.config import format_bytes
from budget.decisions import ANOMALY, BLOCK, CONFORMANCE_CODES, LEAK, STRANDED, WAKE, Decision
from cli.console import format_seconds
from traces.simulate import Quantiles, SimResult


class BlockingTally:
    """A decision sink: pauses, how long they lasted, stranded waiters, leaks, anomalies."""

    def __init__(self) -> None:
        self.paused: set[tuple[str, str, str]] = set()
        self.pauses = 0
        self.blocked = Quantiles()
        self.stranded = 0
        self.leaks = 0
        self.conformance = 0
        self.global_blocks = 0

    def __call__(self, rec: Decision) -> None:
        kind = rec.kind
        if kind == BLOCK:
            key = (rec.changefeed, rec.sink, rec.dispatcher or "")
            if key not in self.paused:
                self.paused.add(key)
                self.pauses += 1
            if rec.by == "global":
                self.global_blocks += 1
        elif kind == WAKE:
            self.paused.discard((rec.changefeed, rec.sink, rec.dispatcher or ""))
            self.blocked.add(rec.blocked_for or 0.0)
        elif kind == ANOMALY:
            if rec.code == STRANDED:
                self.stranded += 1
            elif rec.code == LEAK:
                self.leaks += 1
            elif rec.code in CONFORMANCE_CODES:
                self.conformance += 1


def figures(sim: SimResult, tally: BlockingTally) -> dict[str, Any]:
    """The numbers of one configuration (plain data: JSON, CSV and process pools carry it)."""
    return {
        "peak_inflight": sim.peak_inflight,
        "mean_inflight": sim.mean_inflight,
        "overshoot": sim.overshoot,
        "blocked_p50": tally.blocked.quantile(0.5),
        "blocked_p99": tally.blocked.quantile(0.99),
        "blocked_max": tally.blocked.max if tally.blocked.n else None,
        "pauses": tally.pauses,
        "stranded": tally.stranded,
        "leaks": tally.leaks,
        "delay_p50": sim.delay.quantile(0.5),
        "delay_p99": sim.delay.quantile(0.99),
        "throughput": sim.throughput,
        "makespan": sim.makespan,
        "dropped_batches": sim.dropped_batches,
        "conformance_anomalies": tally.conformance,
    }


@dataclass(frozen=True)
class Row:
    key: str
    label: str
    fmt: Any
    better: str  # "min", "max" or "" (not ranked)


def _bytes(v: Any) -> str:
    return "-" if v is None else format_bytes(v)


def _ratio(v: Any) -> str:
    return "-" if v is None else f"{v:.2f}×"


def _int(v: Any) -> str:
    return "-" if v is None else f"{v:,}"


def _rate(v: Any) -> str:
    return "-" if v is None else f"{format_bytes(v)}/s"


ROWS = [
    Row("peak_inflight", "peak in-flight", _bytes, "min"),
    Row("mean_inflight", "mean in-flight", _bytes, "min"),
    Row("overshoot", "overshoot (peak / global high)", _ratio, "min"),
    Row("blocked_p50", "blocked time p50", format_seconds, "min"),
    Row("blocked_p99", "blocked time p99", format_seconds, "min"),
    Row("blocked_max", "blocked time max", format_seconds, "min"),
    Row("pauses", "pauses", _int, "min"),
    Row("stranded", "stranded", _int, "min"),
    Row("leaks", "leaks", _int, "min"),
    Row("delay_p50", "delay added to DMLs p50", format_seconds, "min"),
    Row("delay_p99", "delay added to DMLs p99", format_seconds, "min"),
    Row("throughput", "throughput (effective)", _rate, "max"),
    Row("makespan", "makespan", format_seconds, "min"),
]


def _best(values: list[Any], better: str) -> set[int]:
    present = [(v, i) for i, v in enumerate(values) if v is not None]
    if not better or len(present) < 2:
        return set()
    target = (min if better == "min" else max)(v for v, _ in present)
    if all(v == target for v, _ in present):
        return set()  # a tie everywhere says nothing
    return {i for v, i in present if v == target}


def compare_table(title: str, names: list[str], results: list[dict[str, Any]]) -> Table:
    """One column per configuration; the best value of each row is bold and starred."""
    t = Table(title=title, caption="* best in its row", box=box.SIMPLE_HEAD, title_justify="left",
              caption_justify="left", show_edge=False, pad_edge=False)
    t.add_column("figure")
    for n in names:
        t.add_column(n, justify="right")
    for row in ROWS:
        values = [r.get(row.key) for r in results]
        best = _best(values, row.better)
        cells: list[Text | str] = [row.label]
        for i, v in enumerate(values):
            text = row.fmt(v)
            cells.append(Text(text + " *", style="bold green") if i in best else text + "  ")
        t.add_row(*cells)
    return t


SWEEP_COLUMNS = ["peak_inflight", "overshoot", "blocked_p99", "delay_p99", "throughput",
                 "makespan", "stranded"]


def pareto(results: list[dict[str, Any]], keys: tuple[str, str] = ("peak_inflight",
                                                                    "delay_p99")) -> set[int]:
    """Indices of the grid points no other point beats on both memory and delay."""
    pts = [(r.get(keys[0]) or 0, r.get(keys[1]) or 0) for r in results]
    out = set()
    for i, (a, b) in enumerate(pts):
        if not any((c <= a and d <= b) and (c < a or d < b) for c, d in pts):
            out.add(i)
    return out


def sweep_table(title: str, params: list[str], rows: list[dict[str, Any]]) -> Table:
    t = Table(title=title, caption="* on the memory/delay frontier (no other point has both "
              "lower peak in-flight and lower p99 delay)", box=box.SIMPLE_HEAD,
              title_justify="left", caption_justify="left", show_edge=False, pad_edge=False)
    for p in params:
        t.add_column(p)
    fmt = {r.key: r for r in ROWS}
    for k in SWEEP_COLUMNS:
        t.add_column(fmt[k].label, justify="right")
    t.add_column("", justify="left")
    front = pareto(rows)
    for i, r in enumerate(rows):
        cells = [str(r["params"][p]) for p in params]
        cells += [fmt[k].fmt(r.get(k)) for k in SWEEP_COLUMNS]
        cells.append("*" if i in front else "")
        t.add_row(*cells, style="bold" if i in front else None)
    return t
