"""`budget-replay compare`: one trace, several configurations, one table side by side."""

from __future__ import annotations

import sys
from concurrent.futures import ProcessPoolExecutor
from typing import Any

import click
import msgspec

from cli.atomic import atomic_output
from cli.console import stdout_console
from cli.replaying import sample_path
from cli.views.whatif import compare_table
from cli.whatif import MODES, load_toml, parse_flags, parse_named, run_config

DEFAULT_CONFIGS = ("option-a=--policy option-a", "admission=--policy admission")


@click.command("compare")
@click.argument("trace", required=False)
@click.option("--config", "configs", multiple=True, metavar="NAME=FLAGS",
              help="A configuration: NAME=\"--policy admission --max-wake 16\" (repeatable; "
                   "a bare policy name works too). Default: option-a and admission.")
@click.option("--toml", "toml_path", type=click.Path(exists=True, dir_okay=False),
              help="A TOML file of named configurations ([name] tables of flags).")
@click.option("--base", default="", metavar="FLAGS",
              help="Flags every configuration starts from, e.g. \"--per-high 128MiB --per-low "
                   "64MiB\" on an offered-load trace.")
@click.option("--mode", type=click.Choice(MODES), default="closed-loop", show_default=True,
              help="closed-loop re-times the trace (paused dispatchers' batches wait); "
                   "open-loop replays it as recorded.")
@click.option("--format", "fmt", type=click.Choice(["table", "json"]), default="table",
              show_default=True)
@click.option("-o", "--output", type=click.Path(dir_okay=False, writable=True),
              help="Write the JSON figures to this file (atomically).")
@click.option("--jobs", type=click.IntRange(1), default=1, show_default=True,
              help="Run configurations in parallel processes.")
def compare_command(trace: str | None, configs: tuple[str, ...], toml_path: str | None,
                    base: str, mode: str, fmt: str, output: str | None, jobs: int) -> None:
    """Run TRACE under each configuration and show peak and mean in-flight, overshoot, blocked
    time, pauses, stranded waiters, leaks, delay added to DMLs, throughput and makespan, with a
    column per configuration and the best value of each row starred."""
    path = trace if trace is not None else sample_path()
    named = [parse_named(c) for c in configs]
    if toml_path:
        named += load_toml(toml_path)
    if not named:
        named = [parse_named(c) for c in DEFAULT_CONFIGS]
    if base:
        shared = parse_flags(base, "--base")
        named = [(n, {**shared, **o}) for n, o in named]
    names = [n for n, _ in named]
    if len(set(names)) != len(names):
        raise click.BadParameter("configuration names must be distinct", param_hint="--config")
    if jobs > 1 and len(named) > 1:
        with ProcessPoolExecutor(max_workers=min(jobs, len(named))) as pool:
            results = list(pool.map(run_config, [path] * len(named), [o for _, o in named],
                                    [mode] * len(named)))
    else:
        results = [run_config(path, o, mode) for _, o in named]
    data = {"trace": path, "mode": mode,
            "configs": [{"name": n, "overrides": o, "figures": r}
                        for (n, o), r in zip(named, results, strict=True)]}
    if output:
        with atomic_output(output, "wb") as f:
            f.write(msgspec.json.format(msgspec.json.encode(data), indent=2) + b"\n")
    if fmt == "json":
        if not output:
            sys.stdout.buffer.write(msgspec.json.format(msgspec.json.encode(data), indent=2)
                                    + b"\n")
        return
    console = stdout_console()
    console.print(compare_table(f"What if: {path} ({mode})", names, results))
    anomalies: Any = [n for n, r in zip(names, results, strict=True)
                      if r["conformance_anomalies"]]
    if anomalies:
        console.print(f"note: conformance anomalies under {', '.join(anomalies)} (the recorded "
                      "times do not fit that configuration; use --mode closed-loop)")
