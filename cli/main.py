"""`budget-replay`: replay TiCDC in-flight budget traces. The only place exit statuses are made."""

from __future__ import annotations

import os
import sys

import click

from cli.atomic import OutputFailed
from cli.check import check_command
from cli.compare import compare_command
from cli.gen import gen_command
from cli.plot import plot_command
from cli.run import run_command
from cli.stats import stats_command
from cli.statuses import EXIT_STATUS_HELP
from cli.sweep import sweep_command
from traces.errors import (
    EXIT_BROKEN_PIPE,
    EXIT_INTERRUPTED,
    EXIT_OUTPUT_FAILED,
    EXIT_USAGE,
    TraceError,
)

#: A failure that is a bug in budget-replay rather than in its input (sysexits' EX_SOFTWARE).
EXIT_INTERNAL = 70


class OutputError(click.ClickException):
    exit_code = EXIT_OUTPUT_FAILED


@click.group(epilog=EXIT_STATUS_HELP, context_settings={"help_option_names": ["-h", "--help"],
                                                        "max_content_width": 100})
@click.version_option(package_name="budget-replay")
def cli() -> None:
    """Replay TiCDC dispatcher enqueue/flush traces through the per-dispatcher and the
    per-changefeed (global) in-flight byte budget of the cloud-storage and redo sinks, and show
    who was blocked, by which budget, for how long, and in which order they were woken.

    Start with `budget-replay run` (a bundled sample) or `budget-replay run TRACE.jsonl`.
    """


cli.add_command(run_command)
cli.add_command(gen_command)
cli.add_command(compare_command)
cli.add_command(sweep_command)
cli.add_command(stats_command)
cli.add_command(check_command)
cli.add_command(plot_command)


def _quiet_broken_pipe() -> None:
    # Point stdout at /dev/null so the interpreter's final flush does not complain again.
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
    except (OSError, ValueError):
        pass


def main(argv: list[str] | None = None) -> None:
    """Console entry point: maps every failure to one line on stderr and a documented status."""
    try:
        status = cli.main(args=argv, prog_name="budget-replay", standalone_mode=False)
        status = status if isinstance(status, int) else 0
        sys.stdout.flush()
    except TraceError as e:
        _say(e.one_line())
        status = e.status
    except click.exceptions.Exit as e:
        status = e.exit_code
    except click.ClickException as e:
        e.show()
        status = e.exit_code if e.exit_code != 1 or isinstance(e, OutputError) else EXIT_USAGE
    except (click.Abort, KeyboardInterrupt):
        _say("interrupted")
        status = EXIT_INTERRUPTED
    except BrokenPipeError:
        _quiet_broken_pipe()
        status = EXIT_BROKEN_PIPE
    except SystemExit as e:
        # click turns a closed pipe (EPIPE) inside a command into sys.exit(1) after wrapping the
        # streams; that is `| head` having read enough, status 141 like any other pipe writer.
        if e.code != 1 or not isinstance(sys.stdout, click.utils.PacifyFlushWrapper):
            raise
        _quiet_broken_pipe()
        status = EXIT_BROKEN_PIPE
    except OutputFailed as e:
        _say(e.one_line())
        status = e.status
    except OSError as e:  # standard output itself (a full disk, a closed terminal)
        what = e.filename if e.filename is not None else "standard output"
        _say(f"cannot write {what}: {e.strerror or e}")
        _quiet_broken_pipe()
        status = EXIT_OUTPUT_FAILED
    except Exception as e:  # noqa: BLE001 - the last resort: one line, not a traceback
        if os.environ.get("BUDGET_REPLAY_DEBUG"):
            raise
        _say(f"internal error: {type(e).__name__}: {str(e)[:200]} (a bug in budget-replay; "
             "please report it with the command line; BUDGET_REPLAY_DEBUG=1 shows the traceback)")
        status = EXIT_INTERNAL
    sys.exit(status)


def _say(message: str) -> None:
    try:
        click.echo(f"budget-replay: {message}", err=True)
    except (BrokenPipeError, OSError):
        pass


__all__ = ["cli", "main", "OutputError", "EXIT_USAGE"]
