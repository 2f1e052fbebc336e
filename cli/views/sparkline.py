"""A terminal sparkline of each scope's global in-flight bytes against its watermarks, for `run`.

No plotting library: block characters, one column per slice of trace time showing the highest
in-flight of that slice (peaks are what overshoot is about), coloured by where it stands against
the watermarks. The series behind it is the same bounded one the plot uses.
"""

from __future__ import annotations

from rich.console import Console, ConsoleOptions, RenderResult
from rich.text import Text

from budget.config import format_bytes
from budget.scope import Scope
from cli.console import format_seconds
from cli.views.timeline import StepSeries

BLOCKS = " ▁▂▃▄▅▆▇█"
#: Buckets kept per scope: a few per column of the widest sparkline.
SPARK_BUCKETS = 512
ROWS = 4
MAX_WIDTH = 96
OVER, BETWEEN, UNDER = "red", "yellow", "green"


def columns(series: StepSeries, width: int, start: float, end: float) -> list[int]:
    """The highest value in each of ``width`` equal slices of [start, end]; a slice with no
    sample holds the value the step function had (the last one before it)."""
    highs: list[int | None] = [None] * width
    lasts: list[int | None] = [None] * width
    span = end - start
    for b in series.buckets():
        for t, v in (b.first, b.low, b.high, b.last):
            c = min(width - 1, int((t - start) / span * width)) if span > 0 else width - 1
            c = max(c, 0)
            if highs[c] is None or v > highs[c]:
                highs[c] = v
        c_last = min(width - 1, int((b.last[0] - start) / span * width)) if span > 0 else width - 1
        lasts[max(c_last, 0)] = b.last[1]
    out: list[int] = []
    carry = 0
    for c in range(width):
        if highs[c] is None:
            out.append(carry)
        else:
            # A slice's level is its peak; the value carried on is where the slice ended.
            out.append(max(highs[c], carry))
            carry = lasts[c] if lasts[c] is not None else carry
    return out


def sparkline_rows(values: list[int], high: int, low: int, rows: int = ROWS) -> list[Text]:
    """``rows`` lines of block characters, top line first; the high line dotted where empty."""
    top = max(max(values, default=0), high, 1)
    levels = rows * 8
    lines = []
    high_row = min(rows - 1, int(high / top * levels - 1e-9) // 8)
    low_row = min(rows - 1, int(low / top * levels - 1e-9) // 8)
    for r in range(rows - 1, -1, -1):
        line = Text()
        for v in values:
            fill = round(v / top * levels) - r * 8
            fill = max(0, min(8, fill))
            style = OVER if v > high else BETWEEN if v > low else UNDER
            if fill:
                line.append(BLOCKS[fill], style=style)
            elif r == high_row:
                line.append("·", style="dim red")
            elif r == low_row:
                line.append("·", style="dim green")
            else:
                line.append(" ")
        lines.append(line)
    return lines


class ScopeSparkline:
    """One scope's sparkline as a rich renderable that fits the console width."""

    def __init__(self, name: str, series: StepSeries, high: int, low: int, start: float,
                 end: float) -> None:
        self.name = name
        self.series = series
        self.high = high
        self.low = low
        self.start = start
        self.end = end

    def __rich_console__(self, console: Console, options: ConsoleOptions) -> RenderResult:
        margin = 22
        width = max(16, min(MAX_WIDTH, options.max_width - margin - 2))
        values = columns(self.series, width, self.start, self.end)
        peak = self.series.peak() or 0
        top = max(peak, self.high, 1)
        ratio = peak / self.high
        head = Text(f"{self.name}: global in-flight over {format_seconds(self.end - self.start)}"
                    f" (peak {format_bytes(peak)} = ")
        head.append(f"{ratio:.2f}× high", style="bold red" if ratio > 1 else "green")
        head.append(")")
        yield head
        lines = sparkline_rows(values, self.high, self.low)
        rows = len(lines)
        high_row = rows - 1 - min(rows - 1, int(self.high / top * rows * 8 - 1e-9) // 8)
        low_row = rows - 1 - min(rows - 1, int(self.low / top * rows * 8 - 1e-9) // 8)
        for i, line in enumerate(lines):
            out = Text("  ") + line + Text(" ┤ ")
            notes = []
            if i == 0:
                notes.append(format_bytes(top))
            if i == high_row:
                notes.append(Text(f"high {format_bytes(self.high)}", style="red"))
            if i == low_row and low_row != high_row:
                notes.append(Text(f"low {format_bytes(self.low)}", style="green"))
            for n, note in enumerate(notes):
                out.append(" · " if n else "")
                out.append(note if isinstance(note, Text) else Text(note))
            yield out


class InflightSparklines:
    """An ``on_new_scope`` hook that keeps each global budget's in-flight series for `run`."""

    def __init__(self, buckets: int = SPARK_BUCKETS) -> None:
        self.buckets = buckets
        self.scopes: dict[tuple[str, str], tuple[Scope, StepSeries]] = {}

    def attach(self, scope: Scope) -> None:
        if scope.glob is None:
            return  # no global budget: nothing to draw against watermarks
        series = StepSeries(self.buckets)
        self.scopes[(scope.changefeed, scope.sink)] = (scope, series)
        prev = scope.glob.probe
        if prev is None:
            scope.glob.probe = series.add
        else:  # another view observes this budget too: feed both

            def both(ts: float, inflight: int) -> None:
                prev(ts, inflight)
                series.add(ts, inflight)

            scope.glob.probe = both

    def renderables(self, start: float | None, end: float | None,
                    changefeed: str | None = None) -> list:
        """One sparkline per scope with a global budget that saw any in-flight bytes."""
        out: list = []
        if start is None or end is None:
            return out
        for (cf, sink), (scope, series) in self.scopes.items():
            if changefeed is not None and cf != changefeed or not series.samples:
                continue
            glob = scope.glob
            assert glob is not None
            out.append(ScopeSparkline(f"{cf} / {sink}", series, glob.high, glob.low, start, end))
        return out


__all__ = ["InflightSparklines", "ScopeSparkline", "columns", "sparkline_rows"]
