"""`budget-replay check`: a CI gate over recorded traces and their expectation files."""

from __future__ import annotations

import os
import sys
from importlib import resources
from typing import Any

import click
import msgspec

from cli.atomic import atomic_output
from cli.checks.discovery import discover
from cli.checks.evaluate import CaseResult, run_case
from cli.checks.expectations import parse_duration
from cli.checks.invariants import (
    DEFAULT_MAX_BLOCKED,
    DEFAULT_MAX_OVERSHOOT,
    INVARIANTS,
    InvariantSettings,
)
from cli.checks.reports import exit_status, github_annotations, render_text, to_json, write_junit
from cli.console import stdout_console
from cli.options import budget_options, pop_overrides
from cli.statuses import EXIT_STATUS_HELP
from traces.errors import EXIT_INVALID_EXPECTATIONS, EXIT_OUTPUT_FAILED


class CheckOutputError(click.ClickException):
    exit_code = EXIT_OUTPUT_FAILED


class Duration(click.ParamType):
    name = "DURATION"

    def convert(self, value: Any, param: click.Parameter | None,
                ctx: click.Context | None) -> float:
        try:
            return parse_duration(value)
        except ValueError as e:
            self.fail(str(e), param, ctx)


def _invariant_help() -> str:
    return "\n".join(f"  {name:<13} {cls.summary}" for name, cls in INVARIANTS.items())


@click.command("check", epilog="\b\nInvariants (all on by default):\n" + _invariant_help()
               + "\n\n" + EXIT_STATUS_HELP)
@click.argument("paths", nargs=-1, type=click.Path())
@click.option("--junit", "junit", type=click.Path(dir_okay=False, writable=True),
              help="Also write a JUnit XML report to this file (atomically).")
@click.option("--format", "fmt", type=click.Choice(["text", "json"]), default="text",
              show_default=True, help="text (the human report) or json.")
@click.option("--disable", "disabled", multiple=True, type=click.Choice(list(INVARIANTS)),
              help="Do not check this invariant (repeatable); wins over the files.")
@click.option("--max-overshoot", type=click.FloatRange(min=0, min_open=True),
              default=DEFAULT_MAX_OVERSHOOT, show_default=True,
              help="Overshoot bound: peak global in-flight ≤ this × global high (a file's "
                   "invariants.max_overshoot wins).")
@click.option("--max-blocked", type=Duration(), default=str(DEFAULT_MAX_BLOCKED) + "s",
              show_default=True,
              help="Longest a dispatcher may stay paused (a file's invariants.max_blocked wins).")
@click.option("-k", "select", metavar="TEXT",
              help="Run only tests whose name contains TEXT (case-insensitive).")
@budget_options
def check_command(paths: tuple[str, ...], junit: str | None, fmt: str,
                  disabled: tuple[str, ...], max_overshoot: float, max_blocked: float,
                  select: str | None, **flags: Any) -> int:
    """Check traces against the built-in invariants and their expectation files.

    PATHS are traces (.jsonl, .jsonl.gz), expectation files (*.expect.toml) or folders; a folder
    gives its expectation files and every trace under it that none of them names. Without PATHS,
    checks the bundled samples. Configuration flags override the files' [test.config].

    Exit status: 0 all passed, 1 an expectation or invariant failed, 7 an invalid expectation
    file (nothing is run), 3/4/6 an invalid, truncated or unreadable trace (the other tests
    still run), 8 the JUnit file could not be written.
    """
    overrides = pop_overrides(flags)
    targets = list(paths) or [str(resources.files("traces.samples"))]
    found = discover(targets)
    if found.invalid:
        for e in found.invalid:
            click.echo(f"budget-replay: {e.one_line()}", err=True)
        return EXIT_INVALID_EXPECTATIONS
    cases = found.cases
    if select:
        cases = [c for c in cases if select.lower() in c.name.lower()]
    base = InvariantSettings(max_overshoot=max_overshoot, max_blocked=max_blocked)
    results: list[CaseResult] = [run_case(c, overrides, base, frozenset(disabled))
                                 for c in cases]
    if junit:
        try:
            with atomic_output(junit, "wb") as f:
                write_junit(results, f)
        except OSError as e:
            raise CheckOutputError(f"cannot write {junit}: {e.strerror or e}") from None
    if os.environ.get("GITHUB_ACTIONS") == "true":
        for line in github_annotations(results):
            click.echo(line)
    if fmt == "json":
        data = msgspec.json.format(msgspec.json.encode(to_json(results)), indent=2)
        sys.stdout.buffer.write(data + b"\n")
    else:
        render_text(stdout_console(), results)
    return exit_status(results)
