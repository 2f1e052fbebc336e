"""`budget-replay run`: replay a trace and show blocking, wake order and watermark crossings."""

from __future__ import annotations

import sys
from typing import Any

import click
import msgspec

from cli.atomic import atomic_output
from cli.console import stdout_console
from cli.metrics_files import metrics_options, pop_export
from cli.options import budget_options, pop_overrides
from cli.replaying import chain_hooks, replay_with_progress, sample_path
from cli.statuses import EXIT_STATUS_HELP
from cli.views.sparkline import InflightSparklines
from cli.views.summary import RunSummary
from cli.views.tables import render_run


class RecordFilter:
    """Passes on only the records of one changefeed and/or dispatcher."""

    def __init__(self, sink: Any, changefeed: str | None, dispatcher: str | None) -> None:
        self.sink = sink
        self.changefeed = changefeed
        self.dispatcher = dispatcher

    def __call__(self, rec: Any) -> None:
        if self.changefeed is not None and rec.changefeed != self.changefeed:
            return
        if self.dispatcher is not None and rec.dispatcher != self.dispatcher:
            return
        self.sink(rec)


class JsonlWriter:
    """Writes each decision as one JSON line as soon as it is made (streamed)."""

    def __init__(self, out: Any) -> None:
        self._write = out.write
        self._encode = msgspec.json.Encoder().encode_into
        self._buf = bytearray()

    def __call__(self, rec: Any) -> None:
        buf = self._buf
        self._encode(rec, buf, len(buf))
        buf.extend(b"\n")
        if len(buf) > 1 << 16:
            self.flush()

    def flush(self) -> None:
        if self._buf:
            self._write(self._buf)
            self._buf.clear()


@click.command("run", epilog=EXIT_STATUS_HELP)
@click.argument("trace", required=False)
@click.option("--format", "fmt", type=click.Choice(["table", "jsonl", "json"]),
              help="table (default on a terminal and when piped), jsonl (the decision log) or "
                   "json (a summary object).")
@budget_options
@click.option("--strict", is_flag=True, help="Conformance anomalies are errors (exit 5).")
@click.option("--top", type=click.IntRange(1), default=20, show_default=True,
              help="Rows in the blocking, wake-order, crossing and anomaly tables.")
@click.option("--dispatcher", help="Show only this dispatcher's records.")
@click.option("--changefeed", help="Show only this changefeed's records.")
@click.option("-o", "--output", type=click.Path(dir_okay=False, writable=True),
              help="Write jsonl/json output to this file (atomically) instead of stdout.")
@click.option("--svg", "svg_path", type=click.Path(dir_okay=False, writable=True),
              help="Also save the table report as an SVG picture of the terminal (atomically).")
@click.option("--html", "html_path", type=click.Path(dir_okay=False, writable=True),
              help="Also save the table report as a self-contained HTML page (atomically).")
@metrics_options
@click.option("--progress/--no-progress", default=None,
              help="Progress bar on stderr (default: when stderr is a terminal).")
def run_command(trace: str | None, fmt: str | None, strict: bool, top: int,
                dispatcher: str | None, changefeed: str | None, output: str | None,
                progress: bool | None, svg_path: str | None = None, html_path: str | None = None,
                **flags: Any) -> None:
    """Replay TRACE (a .jsonl or .jsonl.gz file, or - for stdin) through the budget.

    Without TRACE, replays a small bundled sample. Shows a summary per scope (changefeed, sink),
    which dispatchers were blocked, by which budget and for how long, the global wake rounds in
    FIFO order, the watermark crossings and the anomalies.
    """
    overrides = pop_overrides(flags)
    export = pop_export(flags)
    export.attach()
    path = trace if trace is not None else sample_path()
    fmt = fmt or "table"
    if fmt == "jsonl":
        if output:
            with atomic_output(output, "wb") as f:
                _replay_jsonl(path, f, overrides, strict, progress, changefeed, dispatcher,
                              export)
        else:
            _replay_jsonl(path, sys.stdout.buffer, overrides, strict, progress, changefeed,
                          dispatcher, export)
        return
    summary = RunSummary(keep=max(top, 50), dispatcher=dispatcher, changefeed=changefeed)
    sparks = InflightSparklines()
    hooks = chain_hooks({"on_new_scope": sparks.attach},
                        {"on_open": summary.opened, "on_event": summary.observe},
                        export.hooks())
    result = replay_with_progress(path, [summary, *export.sinks()], overrides, strict=strict,
                                  show_progress=progress, **hooks)
    summary.close_round()
    export.write(result)
    if fmt == "json":
        data = msgspec.json.format(msgspec.json.encode(summary.to_json(result, top)), indent=2)
        if output:
            with atomic_output(output, "wb") as f:
                f.write(data + b"\n")
        else:
            sys.stdout.buffer.write(data + b"\n")
        return
    console = stdout_console(record=bool(svg_path or html_path))
    if trace is None:
        console.print(f"(no trace given: replaying the bundled sample {path})\n")
    render_run(console, summary, result, top,
               extra=sparks.renderables(result.first_ts, result.last_ts, changefeed))
    _save_recording(console, svg_path, html_path, f"budget-replay run {result.path}")


def _save_recording(console: Any, svg_path: str | None, html_path: str | None,
                    title: str) -> None:
    """The report just printed, as the files asked for (both from one recording)."""
    if svg_path:
        with atomic_output(svg_path, "w") as f:
            f.write(console.export_svg(title=title, clear=False))
    if html_path:
        with atomic_output(html_path, "w") as f:
            f.write(console.export_html(clear=False))


def _replay_jsonl(path: str, out: Any, overrides: dict[str, object], strict: bool,
                  progress: bool | None, changefeed: str | None, dispatcher: str | None,
                  export: Any = None) -> None:
    writer = JsonlWriter(out)
    sink: Any = writer
    if changefeed is not None or dispatcher is not None:
        sink = RecordFilter(writer, changefeed, dispatcher)
    extra = export.sinks() if export is not None else []
    hooks = export.hooks() if export is not None else {}
    try:
        result = replay_with_progress(path, [sink, *extra], overrides, strict=strict,
                                      show_progress=progress, **hooks)
    finally:
        writer.flush()
    if export is not None:
        export.write(result)
