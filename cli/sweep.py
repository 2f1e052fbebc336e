"""`budget-replay sweep`: a grid of configurations run in parallel processes."""

from __future__ import annotations

import csv
import io
import itertools
import os
from concurrent.futures import ProcessPoolExecutor
from typing import Any

import click
import msgspec
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn

from cli.atomic import atomic_output
from cli.console import stderr_console, stdout_console
from cli.replaying import sample_path
from cli.views.whatif import ROWS, sweep_table
from cli.whatif import MODES, param_name, parse_flags, run_config


def parse_param(spec: str) -> tuple[str, list[str]]:
    """``per-high=64MiB,128MiB`` → (``per-high``, [``64MiB``, ``128MiB``])."""
    if "=" not in spec:
        raise click.BadParameter(f"{spec!r}: expected NAME=V1,V2,...", param_hint="--param")
    name, values = spec.split("=", 1)
    param_name(name)
    vals = [v.strip() for v in values.split(",") if v.strip()]
    if not vals:
        raise click.BadParameter(f"{spec!r}: no values", param_hint="--param")
    return name.strip().lstrip("-"), vals


def grid(params: list[tuple[str, list[str]]], base: str = ""
         ) -> list[tuple[dict[str, str], dict[str, object]]]:
    """Every combination, as (the values shown, the configuration overrides)."""
    out = []
    for combo in itertools.product(*(vals for _, vals in params)):
        shown = {name: v for (name, _), v in zip(params, combo, strict=True)}
        flags = " ".join(f"--{n} {v}" for n, v in shown.items())
        out.append((shown, parse_flags(f"{base} {flags}", "--param")))
    return out


@click.command("sweep")
@click.argument("trace", required=False)
@click.option("--param", "params", multiple=True, required=True, metavar="NAME=V1,V2,...",
              help="A configuration flag and its values, e.g. per-high=64MiB,128MiB,256MiB "
                   "(repeatable; the grid is every combination).")
@click.option("--base", default="", metavar="FLAGS",
              help="Flags every grid point shares, e.g. \"--policy admission\".")
@click.option("--mode", type=click.Choice(MODES), default="closed-loop", show_default=True)
@click.option("--jobs", type=click.IntRange(1), default=None,
              help="Worker processes (default: all cores).")
@click.option("-o", "--output", type=click.Path(dir_okay=False, writable=True),
              help="Write the results (atomically) as CSV or JSON, by extension.")
@click.option("--format", "fmt", type=click.Choice(["table", "csv", "json"]), default="table",
              show_default=True, help="What to print on stdout.")
def sweep_command(trace: str | None, params: tuple[str, ...], base: str, mode: str,
                  jobs: int | None, output: str | None, fmt: str) -> None:
    """Run TRACE under every combination of --param values and show memory against blocking:
    peak in-flight, overshoot, p99 blocked time and delay, throughput, makespan, stranded."""
    path = trace if trace is not None else sample_path()
    parsed = [parse_param(p) for p in params]
    points = grid(parsed, base)
    jobs = jobs or os.cpu_count() or 1
    bar = Progress(TextColumn("[bold]sweeping[/]"), BarColumn(), MofNCompleteColumn(),
                   console=stderr_console(), transient=True,
                   disable=not stderr_console().is_terminal)
    results: list[dict[str, Any]] = []
    with bar:
        task = bar.add_task("sweep", total=len(points))
        if jobs > 1 and len(points) > 1:
            with ProcessPoolExecutor(max_workers=min(jobs, len(points))) as pool:
                futures = [pool.submit(run_config, path, o, mode) for _, o in points]
                for fut in futures:
                    results.append(fut.result())
                    bar.advance(task)
        else:
            for _, o in points:
                results.append(run_config(path, o, mode))
                bar.advance(task)
    rows = [{"params": shown, **r} for (shown, _), r in zip(points, results, strict=True)]
    names = [n for n, _ in parsed]
    if output:
        as_json = output.endswith(".json")
        with atomic_output(output, "wb" if as_json else "w") as f:
            if as_json:
                f.write(_json(path, mode, rows))
            else:
                f.write(_csv(names, rows))
    if fmt == "json":
        click.echo(_json(path, mode, rows).decode(), nl=False)
    elif fmt == "csv":
        click.echo(_csv(names, rows), nl=False)
    else:
        stdout_console().print(sweep_table(f"Sweep of {path} ({mode}, {len(rows)} points)",
                                           names, rows))


def _json(path: str, mode: str, rows: list[dict[str, Any]]) -> bytes:
    return msgspec.json.format(msgspec.json.encode({"trace": path, "mode": mode,
                                                    "points": rows}), indent=2) + b"\n"


def _csv(names: list[str], rows: list[dict[str, Any]]) -> str:
    buf = io.StringIO()
    keys = [r.key for r in ROWS] + ["dropped_batches", "conformance_anomalies"]
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(names + keys)
    for r in rows:
        w.writerow([r["params"][n] for n in names] + ["" if r.get(k) is None else r[k]
                                                      for k in keys])
    return buf.getvalue()
