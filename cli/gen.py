"""`budget-replay gen`: write a synthetic closed-loop workload as a v1 trace."""

from __future__ import annotations

from dataclasses import fields
from typing import Any

import click
from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

from budget.config import POLICIES
from cli.atomic import atomic_output
from cli.console import stderr_console
from cli.options import SIZE
from traces.generator import PRESETS, SINK_CHOICES, GenOptions, generate, options_for

#: Flags of `gen` that map straight onto GenOptions fields.
_KNOBS = ("dispatchers", "changefeeds", "sinks", "duration", "rate", "zipf", "startup",
          "burst_period", "burst_factor", "batch_dmls", "dml_median", "latency_median",
          "slow_probability", "slow_factor", "remove_fraction", "leak_fraction", "join_fraction",
          "per_low", "per_high", "area_quota", "memory_quota", "redo_percentage", "global_high",
          "max_wake_per_round", "policy", "offered")


@click.command("gen")
@click.option("--preset", type=click.Choice(list(PRESETS)), default="default", show_default=True,
              help="Scenario: one hot table, thousands of small tables, slow sink, bursty "
                   "upstream, table churn, redo plus cloud storage.")
@click.option("--seed", type=int, default=1, show_default=True,
              help="Same seed and options, same bytes.")
@click.option("-o", "--output", required=True, type=click.Path(dir_okay=False, writable=True),
              help="Trace file to write (atomically); .gz is compressed.")
@click.option("--dispatchers", type=click.IntRange(1), help="Tables (dispatchers per sink).")
@click.option("--changefeeds", type=click.IntRange(1), help="Changefeeds the tables spread over.")
@click.option("--sinks", type=click.Choice(list(SINK_CHOICES)), help="Sink types of each table.")
@click.option("--duration", type=click.FloatRange(0, min_open=True),
              help="Seconds of upstream traffic (the trace runs on until the sink catches up).")
@click.option("--rate", type=click.FloatRange(0, min_open=True),
              help="Batches per second over all tables.")
@click.option("--zipf", type=click.FloatRange(0), help="Skew of the rate across tables.")
@click.option("--startup", type=click.FloatRange(0),
              help="Every table sends a batch within this many seconds of the start.")
@click.option("--burst-period", type=click.FloatRange(0), help="Seconds between bursts (0: none).")
@click.option("--burst-factor", type=click.FloatRange(1), help="Rate multiplier in a burst.")
@click.option("--batch-dmls", type=click.FloatRange(0), help="Mean extra DMLs per batch.")
@click.option("--dml-median", type=SIZE, help="Median DML size (log-normal).")
@click.option("--latency-median", type=click.FloatRange(0, min_open=True),
              help="Median flush latency in seconds (log-normal).")
@click.option("--slow-probability", type=click.FloatRange(0, 1), help="Share of slow flushes.")
@click.option("--slow-factor", type=click.FloatRange(1), help="How much slower a slow flush is.")
@click.option("--remove-fraction", type=click.FloatRange(0, 1), help="Share of tables removed.")
@click.option("--leak-fraction", type=click.FloatRange(0, 1),
              help="Share of removed tables whose in-flight DMLs never flush.")
@click.option("--join-fraction", type=click.FloatRange(0, 1),
              help="Share of tables created during the run.")
@click.option("--policy", type=click.Choice(POLICIES), help="Policy the workload runs under.")
@click.option("--per-low", type=SIZE)
@click.option("--per-high", type=SIZE)
@click.option("--area-quota", type=SIZE)
@click.option("--memory-quota", "--quota", type=SIZE)
@click.option("--redo-percentage", type=click.IntRange(0, 100))
@click.option("--global-high", type=SIZE)
@click.option("--max-wake", "max_wake_per_round", type=click.IntRange(1))
@click.option("--offered", is_flag=True, default=None,
              help="Offered load: no budget pauses anyone, so batches keep their upstream "
                   "arrival times (a neutral input for compare and sweep).")
@click.option("--progress/--no-progress", default=None,
              help="Progress bar on stderr (default: when stderr is a terminal).")
def gen_command(preset: str, seed: int, output: str, progress: bool | None,
                **knobs: Any) -> None:
    """Generate a closed-loop workload: the budget's decisions feed back (a paused dispatcher
    delivers nothing until woken), so the trace replays with no conformance anomaly under the
    configuration written in its header. Streamed: memory does not grow with the events."""
    assert set(knobs) <= set(_KNOBS) | {f.name for f in fields(GenOptions)}
    opts = options_for(preset, **knobs)
    console = stderr_console()
    show = console.is_terminal if progress is None else progress
    bar = Progress(TextColumn("[bold]generating[/] " + output), BarColumn(),
                   TextColumn("{task.completed:.0f}/{task.total:.0f} s of upstream time"),
                   TimeElapsedColumn(), console=console, transient=True, disable=not show)
    task = bar.add_task("gen", total=opts.duration)
    with bar, atomic_output(output, "wb") as f:
        stats = generate(f, opts, seed, gz=output.endswith(".gz"),
                         progress=lambda t: bar.update(task, completed=min(t, opts.duration)))
    console.print(f"wrote {output}: {stats.lines:,} lines, {stats.dispatchers:,} dispatchers, "
                  f"{stats.last_ts:.2f} s of trace time (preset {preset}, seed {seed})",
                  highlight=False)
