"""`budget-replay plot`: a picture of a replay (PNG, SVG, PDF or an HTML page).

matplotlib is optional (`pip install 'budget-replay[plot]'`); it is imported only when this
command runs, with the non-interactive Agg backend.
"""

from __future__ import annotations

import html
import io
import os
import shlex
from typing import Any

import click

from budget.config import format_bytes
from cli.atomic import atomic_output
from cli.console import stdout_console
from cli.options import budget_options, pop_overrides
from cli.replaying import replay_with_progress, sample_path
from cli.views.timeline import Timeline

FORMATS = {".png": "png", ".svg": "svg", ".pdf": "pdf", ".html": "html", ".htm": "html"}
#: Enough for a crisp 11-inch-wide picture that stays small enough to attach to an issue.
PNG_DPI = 110


class PlotUnavailable(click.ClickException):
    """matplotlib is not installed: a usage problem the user fixes with one pip command."""

    exit_code = 2


@click.command(add_help_option=False, context_settings={"ignore_unknown_options": False})
@budget_options
def _compare_flags(**flags: Any) -> dict[str, object]:
    return flags


def parse_compare(value: str) -> tuple[str, list[str]]:
    """``"--max-wake 8"`` or ``"NAME=--max-wake 8"`` → (label, flag arguments)."""
    text = value.strip()
    label = None
    head, sep, rest = text.partition("=")
    if sep and head and not head.startswith("-") and " " not in head:
        label, text = head, rest.strip()
    args = shlex.split(text)
    return (label or " ".join(args) or "same flags"), args


def compare_overrides(value: str, base: dict[str, object]) -> tuple[str, dict[str, object]]:
    """The label and configuration of one --compare: the main flags, then these on top."""
    label, args = parse_compare(value)
    try:
        ctx = _compare_flags.make_context("--compare", list(args))
    except click.UsageError as e:
        raise click.BadParameter(f"{value!r}: {e.format_message()} (give run's policy and "
                                 "configuration flags, e.g. \"--max-wake 8\" or "
                                 "\"small=--global-high 64MiB\")", param_hint="--compare") from None
    return label, {**base, **pop_overrides(dict(ctx.params))}


def _output_format(path: str) -> str:
    ext = os.path.splitext(path)[1].lower()
    if ext not in FORMATS:
        raise click.BadParameter(f"{path!r}: the name must end in .png, .svg, .pdf or .html "
                                 "(that picks the format)", param_hint="-o/--output")
    return FORMATS[ext]


def _require_matplotlib() -> None:
    try:
        import matplotlib  # noqa: F401
    except ImportError:
        raise PlotUnavailable("plot needs matplotlib, which is not installed: "
                              "pip install 'budget-replay[plot]'") from None


def replay_timeline(path: str, overrides: dict[str, object], *, strict: bool = False,
                    show_progress: bool | None = None, buckets: int | None = None) -> Timeline:
    """Replay ``path`` and fold it into a :class:`Timeline`."""
    tl = Timeline(**({"buckets": buckets} if buckets else {}))

    def on_open(reader: Any, _config: Any) -> None:
        tl.set_defaults(*reader.default_scope)

    result = replay_with_progress(path, [tl], overrides, strict=strict, show_progress=show_progress,
                                  on_new_scope=tl.attach, on_event=tl.on_event, on_open=on_open)
    tl.finish(result.last_ts)
    return tl


@click.command("plot")
@click.argument("trace", required=False)
@click.option("-o", "--output", required=True, type=click.Path(dir_okay=False, writable=True),
              help="The picture: .png, .svg, .pdf, or .html (a page with the picture and a "
                   "summary table). Written atomically.")
@budget_options
@click.option("--compare", "compares", multiple=True, metavar='"[NAME=]FLAGS"',
              help='Overlay another configuration: the same trace replayed with these flags on '
                   'top of the main ones, e.g. --compare "--max-wake 8" or --compare '
                   '"small=--global-high 64MiB --global-low 32MiB". Repeatable (up to 3).')
@click.option("--top", type=click.IntRange(0, 60), default=12, show_default=True,
              help="Dispatchers in each scope's strip chart of paused intervals (0: none).")
@click.option("--title", help="A title above the picture (default: the trace's name).")
@click.option("--strict", is_flag=True, help="Conformance anomalies are errors (exit 5).")
@click.option("--progress/--no-progress", default=None,
              help="Progress bar on stderr (default: when stderr is a terminal).")
def plot_command(trace: str | None, output: str, compares: tuple[str, ...], top: int,
                 title: str | None, strict: bool, progress: bool | None, **flags: Any) -> None:
    """Draw a timeline of TRACE: per scope (changefeed, sink), global in-flight bytes against
    the high and low watermarks (overshoot shaded, wake rounds marked), paused dispatchers split
    by the budget holding them, and the paused intervals of the TOP dispatchers.

    Without TRACE, draws a small bundled sample. Needs matplotlib:
    pip install 'budget-replay[plot]'.
    """
    fmt = _output_format(output)
    if len(compares) > 3:
        raise click.BadParameter("at most 3 configurations can be overlaid",
                                 param_hint="--compare")
    overrides = pop_overrides(flags)
    others = [compare_overrides(c, overrides) for c in compares]
    path = trace if trace is not None else sample_path()
    if others and path == "-":
        raise click.BadParameter("--compare replays the trace again, so it needs a file, not "
                                 "standard input", param_hint="--compare")
    _require_matplotlib()
    from cli.views.figure import Run

    runs = [Run("baseline" if others else "", replay_timeline(path, overrides, strict=strict,
                                                              show_progress=progress))]
    for label, ov in others:
        runs.append(Run(label, replay_timeline(path, ov, strict=strict, show_progress=progress)))
    heading = title if title is not None else f"budget-replay: {os.path.basename(path)}"
    if others:
        heading += "   (dashed: " + ", ".join(r.label for r in runs[1:]) + ")"
    if not runs[0].timeline.scopes:
        raise click.ClickException(f"{path}: the trace has no events to draw")
    data = render(runs, fmt, top=top, title=heading)
    with atomic_output(output, "wb") as f:
        f.write(data)
    stdout_console().print(f"wrote {output} ({fmt}, {len(runs[0].timeline.scopes)} scope(s)"
                           + (f", {len(runs)} configurations" if others else "") + ")")


def render(runs: list, fmt: str, *, top: int = 12, title: str | None = None) -> bytes:
    """The picture of ``runs`` as bytes of ``fmt`` (png, svg, pdf or html)."""
    from matplotlib import pyplot as plt

    from cli.views.figure import timeline_figure

    # SVG text stays text (searchable, smaller); a fixed salt and no dates make the same trace
    # always give the same file.
    with plt.rc_context({"svg.fonttype": "none", "svg.hashsalt": "budget-replay"}):
        fig = timeline_figure(runs, top=top, title=title)
        try:
            buf = io.BytesIO()
            meta = {"svg": {"Date": None}, "html": {"Date": None}, "pdf": {"CreationDate": None}}
            fig.savefig(buf, format="svg" if fmt == "html" else fmt, dpi=PNG_DPI,
                        metadata=meta.get(fmt))
        finally:
            plt.close(fig)
    if fmt != "html":
        return buf.getvalue()
    return html_page(runs, buf.getvalue().decode("utf-8"), title or "budget-replay").encode()


def summary_rows(runs: list) -> list[list[str]]:
    """One row per (configuration, scope): what the picture shows, in numbers."""
    rows = []
    for run in runs:
        for st in run.timeline.scopes.values():
            peak = st.peak_inflight()
            if st.global_high is not None:
                marks = f"{format_bytes(st.global_high)} / {format_bytes(st.global_low or 0)}"
                ratio = f"{peak / st.global_high:.2f}×"
            else:
                marks, ratio = "no global budget", "-"
            rows.append([run.label or "-", st.name, st.policy, marks, format_bytes(peak), ratio,
                         str(st.round_total), str(st.woken_total), str(st.stranded),
                         str(st.leaks)])
    return rows


HTML_COLUMNS = ["configuration", "scope", "policy", "global high / low", "peak in-flight",
                "peak/high", "wake rounds", "woken by rounds", "stranded", "leaks"]


def html_page(runs: list, svg: str, title: str) -> str:
    """A self-contained page: a summary table and the picture (inline SVG)."""
    svg = svg[svg.index("<svg"):]  # drop the XML prolog and doctype: the SVG sits inside HTML
    head = "".join(f"<th>{html.escape(c)}</th>" for c in HTML_COLUMNS)
    body = "".join("<tr>" + "".join(f"<td>{html.escape(v)}</td>" for v in row) + "</tr>"
                   for row in summary_rows(runs))
    return f"""<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<title>{html.escape(title)}</title>
<style>
body {{ font-family: system-ui, sans-serif; margin: 1.5em; color: #222; }}
table {{ border-collapse: collapse; margin-bottom: 1.5em; font-size: 0.9em; }}
th, td {{ border-bottom: 1px solid #ccc; padding: 0.3em 0.8em; text-align: right; }}
th:nth-child(-n+3), td:nth-child(-n+3) {{ text-align: left; }}
svg {{ max-width: 100%; height: auto; }}
</style>
</head>
<body>
<h1>{html.escape(title)}</h1>
<table>
<thead><tr>{head}</tr></thead>
<tbody>{body}</tbody>
</table>
{svg}
</body>
</html>
"""
