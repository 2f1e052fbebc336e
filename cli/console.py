"""Consoles: rich on a terminal, plain stable text when piped."""

from __future__ import annotations

import os
import sys

from rich.console import Console

#: Width used when output is not a terminal: wide enough that no column is cropped.
PIPE_WIDTH = 200


class _Console(Console):
    def on_broken_pipe(self) -> None:
        # rich exits with status 1 here; raise instead so that main() reports a closed pipe
        # (`| head`) the way it does for every other writer: quietly, status 141.
        raise BrokenPipeError


def stdout_console(record: bool = False) -> Console:
    """A console for reports on standard output; colourless and wide when piped."""
    tty = sys.stdout.isatty()
    if tty:
        return _Console(record=record, highlight=False)
    return _Console(record=record, highlight=False, no_color=True, color_system=None,
                   width=int(os.environ.get("COLUMNS", PIPE_WIDTH)), force_terminal=False,
                   soft_wrap=False)


def stderr_console() -> Console:
    return _Console(stderr=True, highlight=False)


def format_seconds(s: float | None) -> str:
    """Durations people read: ``350 ms``, ``1.25 s``, ``2m 05s``, ``1h 02m``."""
    if s is None:
        return "-"
    if s < 0.001 and s != 0:
        return f"{s * 1e6:.0f} µs"
    if s < 1:
        return f"{s * 1000:.0f} ms" if s else "0 s"
    if s < 60:
        return f"{s:.2f} s"
    if s < 3600:
        return f"{int(s // 60)}m {s % 60:02.0f}s"
    return f"{int(s // 3600)}h {int(s % 3600 // 60):02d}m"


def format_ts(ts: float) -> str:
    """A trace timestamp (seconds since the trace's origin)."""
    return f"{ts:.3f}".rstrip("0").rstrip(".") if ts != int(ts) else f"{int(ts)}"
