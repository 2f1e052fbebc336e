"""`budget-replay stats`: the numbers behind a replay, one column per trace."""

from __future__ import annotations

import sys
from typing import Any

import click
import msgspec
from rich import box
from rich.console import Console
from rich.table import Table

from budget.config import format_bytes
from cli.atomic import atomic_output
from cli.console import format_seconds, stdout_console
from cli.metrics_files import metrics_options, pop_export
from cli.options import budget_options, pop_overrides
from cli.replaying import replay_with_progress, sample_path
from cli.statuses import EXIT_STATUS_HELP
from cli.views.stats import TraceStats


def collect(path: str, overrides: dict[str, object], *, strict: bool = False,
            progress: bool | None = None, export: Any = None) -> dict[str, Any]:
    """Replay one trace and return its figures (the object of ``stats --format json``)."""
    stats = TraceStats()
    sinks = stats.sinks()
    hooks = stats.hooks()
    if export is not None and export.enabled:
        export.attach(stats.sampler, stats.holds)
    result = replay_with_progress(path, sinks, overrides, strict=strict, show_progress=progress,
                                  **hooks)
    figures = stats.to_json(result)
    if export is not None:
        export.write(result)
    return figures


@click.command("stats", epilog=EXIT_STATUS_HELP)
@click.argument("traces", nargs=-1)
@click.option("--format", "fmt", type=click.Choice(["table", "json"]), default="table",
              show_default=True, help="A table (traces side by side) or a JSON object.")
@budget_options
@click.option("--strict", is_flag=True, help="Conformance anomalies are errors (exit 5).")
@metrics_options
@click.option("-o", "--output", type=click.Path(dir_okay=False, writable=True),
              help="Write the json output to this file (atomically) instead of stdout.")
@click.option("--progress/--no-progress", default=None,
              help="Progress bar on stderr (default: when stderr is a terminal).")
def stats_command(traces: tuple[str, ...], fmt: str, strict: bool, output: str | None,
                  progress: bool | None, **flags: Any) -> None:
    """Workload and outcome figures of each TRACE under the chosen policy and configuration.

    The workload: span, scopes, dispatchers, DMLs, bytes, batch and DML sizes, flush latency,
    throughput. The outcome: blocked-time percentiles by budget, pauses per dispatcher, time at or
    above the global high and at or below its low, peak and mean in-flight, overshoot, waiting
    the budget did not need (queued while in-flight was already at or below low), wake-round sizes,
    the longest FIFO wait and fairness. Several traces are shown side by side. Without TRACE,
    uses a small bundled sample.

    Percentiles are nearest-rank: exact up to 1024 values, then from log buckets within 1%.
    """
    overrides = pop_overrides(flags)
    export = pop_export(flags)
    paths = list(traces) or [sample_path()]
    if export.enabled and len(paths) > 1:
        raise click.UsageError("--metrics and --openmetrics take one trace at a time")
    results = [collect(p, overrides, strict=strict, progress=progress, export=export)
               for p in paths]
    if fmt == "json":
        data = msgspec.json.format(msgspec.json.encode({"traces": results}), indent=2) + b"\n"
        if output:
            with atomic_output(output, "wb") as f:
                f.write(data)
        else:
            sys.stdout.buffer.write(data)
        return
    console = stdout_console()
    if not traces:
        console.print(f"(no trace given: using the bundled sample {paths[0]})\n")
    render_stats(console, results)


# Rendering -----------------------------------------------------------------------------------
def _table(title: str) -> Table:
    return Table(title=title, box=box.SIMPLE_HEAD, title_justify="left", show_edge=False,
                 pad_edge=False)


def _pct(d: dict[str, Any], fmt: Any) -> str:
    if not d or not d.get("count"):
        return "-"
    return " / ".join(fmt(d[k]) for k in ("p50", "p90", "p99", "max")) + f"  (n={d['count']:,})"


def _bytes(v: float | None) -> str:
    return "-" if v is None else format_bytes(v)


def _share(v: float | None) -> str:
    return "-" if v is None else f"{v * 100:.1f}%"


def _name(path: str) -> str:
    return path.rsplit("/", 1)[-1]


def render_stats(console: Console, results: list[dict[str, Any]]) -> None:
    w = _table("Workload (percentiles: p50 / p90 / p99 / max)")
    o = _table("Outcome (blocked times: p50 / p90 / p99 / max, in trace time)")
    for t in (w, o):
        t.add_column("")
        for r in results:
            t.add_column(_name(r["trace"]), justify="right")

    def row(table: Table, label: str, cell: Any) -> None:
        table.add_row(label, *(cell(r) for r in results))

    row(w, "span", lambda r: format_seconds(r["workload"]["span"]))
    row(w, "scopes / dispatchers",
        lambda r: f"{r['workload']['scopes']} / {r['workload']['dispatchers']:,}")
    row(w, "batches / DMLs",
        lambda r: f"{r['workload']['enqueues']:,} / {r['workload']['dmls']:,}")
    row(w, "flushes / removes",
        lambda r: f"{r['workload']['flushes']:,} / {r['workload']['removes']:,}")
    row(w, "bytes raw (effective)", lambda r: f"{format_bytes(r['workload']['raw_bytes'])} "
        f"({format_bytes(r['workload']['effective_bytes'])})")
    row(w, "DMLs per batch", lambda r: _pct(r["workload"]["batch_dmls"], lambda v: f"{v:g}"))
    row(w, "batch size", lambda r: _pct(r["workload"]["batch_bytes"], format_bytes))
    row(w, "DML size", lambda r: _pct(r["workload"]["dml_bytes"], format_bytes))
    row(w, "flush latency", lambda r: _pct(r["workload"]["flush_latency"], format_seconds))
    row(w, "throughput (flushed)",
        lambda r: _bytes(r["workload"]["throughput_bytes_per_s"]) + "/s")
    row(w, "unflushed DMLs / unmatched flushes",
        lambda r: f"{r['workload']['unflushed_dmls']:,} / "
                  f"{r['workload']['unmatched_flushes']:,}")

    row(o, "policy", lambda r: r["policy"])
    row(o, "paused (any budget)", lambda r: _pct(r["outcome"]["paused"], format_seconds))
    row(o, "held by per-dispatcher budget",
        lambda r: _pct(r["outcome"]["held"]["per"], format_seconds))
    row(o, "held by global budget (FIFO wait)",
        lambda r: _pct(r["outcome"]["held"]["global"], format_seconds))
    row(o, "held by legacy pause", lambda r: _pct(r["outcome"]["held"]["legacy"], format_seconds))
    row(o, "blocks per / global / legacy, hand-offs",
        lambda r: " / ".join(str(r["outcome"]["blocks"].get(b, 0))
                             for b in ("per", "global", "legacy"))
        + f", {r['outcome']['handoffs']}")
    row(o, "dispatchers paused; pauses each (mean / max)",
        lambda r: f"{r['outcome']['dispatchers_paused']:,}; "
                  f"{r['outcome']['pauses_per_dispatcher']['mean'] or 0:.1f} / "
                  f"{r['outcome']['pauses_per_dispatcher']['max']}")
    row(o, "wake rounds; size p50 / max",
        lambda r: f"{r['outcome']['wake_rounds']:,}; " + (
            f"{r['outcome']['round_size']['p50']} / {r['outcome']['round_size']['max']}"
            if r["outcome"]["wake_rounds"] else "-"))
    row(o, "longest FIFO wait", lambda r: format_seconds(r["outcome"]["longest_fifo_wait"]))
    row(o, "queued while in-flight ≤ low (unneeded)",
        lambda r: _share(r["outcome"]["needless_wait_fraction"]))
    row(o, "fairness (Jain's index of blocked time)",
        lambda r: "-" if r["outcome"]["jain_fairness"] is None
        else f"{r['outcome']['jain_fairness']:.3f}")
    row(o, "paused at end: waiting / stranded",
        lambda r: f"{r['outcome']['waiting']} / {r['outcome']['stranded']}")
    row(o, "leaks; other anomalies", lambda r: f"{r['outcome']['leaks']}; " + (", ".join(
        f"{c} {n}" for c, n in r["outcome"]["anomalies"].items()
        if c not in ("leak", "stranded")) or "none"))

    s = _table("Scopes (global in-flight; time-weighted over the trace's span)")
    several = len(results) > 1
    if several:
        s.add_column("trace", overflow="fold")
    for col in ("scope (changefeed / sink)", "policy", "global high / low", "peak",
                "peak/high", "mean", "time ≥ high", "time ≤ low", "queued ≤ low",
                "rounds", "longest FIFO wait"):
        s.add_column(col, justify="left" if col.startswith(("scope", "policy")) else "right",
                     overflow="fold")
    for r in results:
        for sc in r["scopes"]:
            marks = (f"{format_bytes(sc['high'])} / {format_bytes(sc['low'])}"
                     if sc["high"] is not None else "-")
            if sc["high"] is not None and not sc["global_enabled"]:
                marks += " (not enforced)"
            cells = [
                f"{sc['changefeed']} / {sc['sink']}", sc["policy"], marks,
                format_bytes(sc["peak_inflight"]),
                "-" if sc["overshoot_ratio"] is None else f"{sc['overshoot_ratio']:.2f}×",
                _bytes(sc["mean_inflight"]),
                _share(sc["fraction_at_or_above_high"]), _share(sc["fraction_at_or_below_low"]),
                _share(sc["needless_wait_fraction"]), f"{sc['wake_rounds']:,}",
                format_seconds(sc["longest_fifo_wait"]) if sc["global_enabled"] else "-",
            ]
            s.add_row(*([_name(r["trace"])] if several else []), *cells)
    console.print(w)
    console.print()
    console.print(o)
    console.print()
    console.print(s)
