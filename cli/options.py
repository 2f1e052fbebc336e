"""Command-line options shared by every command that replays a trace."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import click

from budget.config import POLICIES, parse_size


class SizeType(click.ParamType):
    """A byte size: ``64MiB``, ``512MB``, ``1GiB`` or plain bytes."""

    name = "SIZE"

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> int:
        if isinstance(value, int):
            return value
        try:
            return parse_size(value)
        except ValueError as e:
            self.fail(str(e), param, ctx)


SIZE = SizeType()

#: flag name → BudgetConfig field
CONFIG_FLAGS: dict[str, str] = {
    "policy": "policy",
    "per_low": "per_low",
    "per_high": "per_high",
    "global_high": "global_high",
    "global_low": "global_low",
    "quota": "memory_quota",
    "area_quota": "area_quota",
    "redo_percentage": "redo_percentage",
    "multiplier": "multiplier",
    "max_wake": "max_wake_per_round",
}


def budget_options(f: Callable[..., Any]) -> Callable[..., Any]:
    """Add the policy and configuration overrides (precedence: defaults, header, flags)."""
    opts = [
        click.option("--policy", type=click.Choice(POLICIES),
                     help="Policy for cloudstorage/redo scopes (other sinks are always legacy)."),
        click.option("--per-low", type=SIZE, help="Per-dispatcher low watermark (default 64MiB)."),
        click.option("--per-high", type=SIZE,
                     help="Per-dispatcher high watermark (default 128MiB)."),
        click.option("--global-high", type=SIZE,
                     help="Global high watermark, replacing the derivation from the quota."),
        click.option("--global-low", type=SIZE, help="Global low watermark (default high/2)."),
        click.option("--quota", type=SIZE,
                     help="Changefeed memory-quota (default 1GiB); replaces a header's "
                          "area_quota."),
        click.option("--area-quota", type=SIZE,
                     help="Quota every scope's global budget derives from (no redo split)."),
        click.option("--redo-percentage", type=click.IntRange(0, 100),
                     help="Share of the memory quota that redo scopes get (TiCDC default 50)."),
        click.option("--multiplier", type=click.IntRange(0),
                     help="Effective bytes per DML byte (default 2)."),
        click.option("--max-wake", type=click.IntRange(1),
                     help="Most dispatchers one global wake round resumes (default 64)."),
    ]
    for opt in reversed(opts):
        f = opt(f)
    return f


def pop_overrides(kwargs: dict[str, Any]) -> dict[str, object]:
    """Take the configuration flags out of a command's keyword arguments."""
    out: dict[str, object] = {}
    for flag, field in CONFIG_FLAGS.items():
        value = kwargs.pop(flag, None)
        if value is not None:
            out[field] = value
    return out
