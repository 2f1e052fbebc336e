"""Running one what-if configuration, and parsing the ways people name configurations.

A configuration is a set of the `run` flags (``--policy admission --max-wake 16``), given on the
command line as ``NAME=FLAGS``, in a TOML file of named tables, or as one point of a sweep grid.
"""

from __future__ import annotations

import shlex
import tomllib
from typing import Any

import click

from cli.options import CONFIG_FLAGS, budget_options, pop_overrides
from cli.views.whatif import BlockingTally, figures
from traces.replay import replay
from traces.simulate import simulate

#: How a trace is run for a what-if: re-timed closed-loop (default) or replayed as recorded.
MODES = ("closed-loop", "open-loop")


@click.command(add_help_option=False)
@budget_options
def _flags(**kwargs: Any) -> dict[str, object]:
    return pop_overrides(kwargs)


def parse_flags(text: str, where: str = "--config") -> dict[str, object]:
    """``--policy admission --per-high 64MiB`` → BudgetConfig overrides."""
    try:
        return _flags.main(args=shlex.split(text), standalone_mode=False)  # type: ignore[return-value]
    except click.ClickException as e:
        raise click.BadParameter(f"{text!r}: {e.format_message()}", param_hint=where) from None


def parse_named(spec: str) -> tuple[str, dict[str, object]]:
    """``NAME=FLAGS`` (a bare policy name is accepted as a shorthand: ``admission``)."""
    if "=" in spec and not spec.lstrip().startswith("-"):
        name, flags = spec.split("=", 1)
    else:
        name, flags = spec, spec
    name = name.strip()
    if flags.strip() and not flags.strip().startswith("-"):
        flags = f"--policy {flags.strip()}"
    return name, parse_flags(flags)


def load_toml(path: str) -> list[tuple[str, dict[str, object]]]:
    """A TOML file of named configurations::

        [option-a]
        policy = "option-a"

        [admission-16]
        policy = "admission"
        max-wake = 16
        per-high = "64MiB"
    """
    with open(path, "rb") as f:
        data = tomllib.load(f)
    out = []
    for name, table in data.items():
        if not isinstance(table, dict):
            raise click.BadParameter(f"{path}: {name!r} must be a table of flags",
                                     param_hint="--toml")
        args: list[str] = []
        for k, v in table.items():
            args += [f"--{k.replace('_', '-')}", str(v)]
        out.append((name, parse_flags(shlex.join(args), f"--toml {path} [{name}]")))
    return out


def param_name(flag: str) -> str:
    """``per-high`` → the click parameter ``per_high`` (checked against the config flags)."""
    key = flag.strip().lstrip("-").replace("-", "_")
    if key not in CONFIG_FLAGS:
        names = ", ".join(k.replace("_", "-") for k in CONFIG_FLAGS)
        raise click.BadParameter(f"unknown parameter {flag!r} (one of {names})",
                                 param_hint="--param")
    return key


def run_config(path: str, overrides: dict[str, object], mode: str = "closed-loop"
               ) -> dict[str, Any]:
    """Run one configuration on the trace and return its figures (top level: picklable)."""
    tally = BlockingTally()
    if mode == "closed-loop":
        sim = simulate(path, tally, overrides)
        return figures(sim, tally)
    # Open loop: the recorded times stand; the figures come from a re-timing with no delay.
    res = replay(path, tally, overrides)
    sim = simulate(path, lambda _r: None, {**overrides, "policy": "per-dispatcher",
                                           "per_high": 1 << 62, "per_low": 1 << 61})
    out = figures(sim, tally)
    out["delay_p50"] = out["delay_p99"] = 0.0
    peaks = [s.glob.peak / s.limits.global_high for s in res.engine.scopes.values()
             if s.glob is not None]
    out["overshoot"] = max(peaks) if peaks else None
    return out
