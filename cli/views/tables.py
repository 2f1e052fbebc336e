"""Rich tables for `budget-replay run`: summary, blocking, wake order, crossings, anomalies."""

from __future__ import annotations

from rich import box
from rich.console import Console
from rich.table import Table
from rich.text import Text

from budget.config import format_bytes
from budget.decisions import CONFORMANCE_CODES, LEAK, STRANDED
from cli.console import format_seconds, format_ts
from cli.views.summary import DispatcherKey, DispatcherTally, RunSummary
from traces.replay import ReplayResult

ANOMALY_TEXT = {
    "enqueue_while_paused": "enqueue while the path was paused (applied anyway)",
    "unknown_flush": "flush of a DML that is not in flight (ignored)",
    "after_remove": "enqueue for a removed dispatcher (ignored)",
    "underflow": "in-flight bytes went below zero (clamped)",
    LEAK: "removed with DMLs in flight that never flushed (released by the drain)",
    STRANDED: "still paused after the drain: never woken (liveness failure)",
}


def _table(title: str, caption: str | None = None) -> Table:
    return Table(title=title, caption=caption, box=box.SIMPLE_HEAD, title_justify="left",
                 caption_justify="left", show_edge=False, pad_edge=False)


def summary_table(summary: RunSummary, result: ReplayResult) -> Table:
    scopes = summary.scope_figures(result)
    t = _table(f"Replay of {result.path}: {result.events:,} events, "
               f"{format_seconds((result.last_ts or 0) - (result.first_ts or 0))} of trace time")
    t.add_column("scope (changefeed / sink)")
    t.add_column("policy")
    t.add_column("global high / low", justify="right")
    t.add_column("peak in-flight", justify="right")
    t.add_column("peak/high", justify="right")
    t.add_column("blocks per/glob/leg", justify="right")
    t.add_column("wakes", justify="right")
    t.add_column("hand-offs", justify="right")
    t.add_column("rounds", justify="right")
    t.add_column("stranded", justify="right")
    t.add_column("waiting", justify="right")
    t.add_column("leaks", justify="right")
    t.add_column("anomalies", justify="right")
    for s in scopes:
        if s["global_enabled"]:
            marks = f"{format_bytes(s['global_high'])} / {format_bytes(s['global_low'])}"
            peak = format_bytes(s["peak_global_inflight"])
            ratio = s["peak_ratio"]
            ratio_text = Text(f"{ratio:.2f}×", style="bold red" if ratio > 1 else "green")
        else:
            marks = Text(s["global_disabled_reason"] or "off", style="yellow")
            peak, ratio_text = "-", Text("-")
        b = s["blocks"]
        conformance = s["conformance_anomalies"]
        t.add_row(
            f"{s['changefeed']} / {s['sink']}",
            s["policy"],
            marks,
            peak,
            ratio_text,
            f"{b.get('per', 0)}/{b.get('global', 0)}/{b.get('legacy', 0)}",
            str(sum(s["wakes"].values())),
            str(s["handoffs"]),
            str(s["rounds"]),
            Text(str(s["stranded"]), style="bold red" if s["stranded"] else ""),
            str(s["waiting"]),
            Text(str(s["leaks"]), style="bold red" if s["leaks"] else ""),
            Text(str(conformance), style="yellow" if conformance else ""),
        )
    return t


def config_table(result: ReplayResult) -> Table:
    t = _table("Effective configuration (defaults < trace header < flags)")
    t.add_column("scope")
    for name in ("per low", "per high", "multiplier", "area quota", "global high", "global low",
                 "max wake"):
        t.add_column(name, justify="right")
    for (cf, sink), s in result.engine.scopes.items():
        lim = s.limits
        if lim.policy == "legacy":
            t.add_row(f"{cf} / {sink}", *(["-"] * 7))
            continue
        glob = s.glob is not None
        t.add_row(f"{cf} / {sink}", format_bytes(lim.per_low), format_bytes(lim.per_high),
                  str(lim.multiplier), format_bytes(lim.area_quota),
                  format_bytes(lim.global_high) if glob else "off",
                  format_bytes(lim.global_low) if glob else "off",
                  str(lim.max_wake_per_round) if glob else "-")
    return t


def blocking_table(rows: list[tuple[DispatcherKey, DispatcherTally, float]], top: int) -> Table:
    t = _table(f"Blocking: dispatchers by blocked time (top {min(top, len(rows))} "
               f"of {len(rows)} that were paused)")
    t.add_column("dispatcher")
    t.add_column("scope")
    t.add_column("pauses", justify="right")
    t.add_column("blocked", justify="right")
    t.add_column("longest", justify="right")
    t.add_column("by")
    t.add_column("at the end")
    for (cf, sink, d), tally, total in rows[:top]:
        longest = max(tally.longest, total - tally.blocked_time)
        if tally.stranded:
            end = Text("stranded", style="bold red")
        elif tally.removed_paused:
            end = Text("removed while paused")
        elif tally.drain_woken:
            end = Text("waiting (woken by drain)", style="yellow")
        else:
            end = Text("running")
        t.add_row(d, f"{cf} / {sink}", str(tally.pauses), format_seconds(total),
                  format_seconds(longest), ", ".join(sorted(tally.by)), end)
    return t


def rounds_table(summary: RunSummary, top: int) -> Table:
    rounds = list(summary.rounds)
    total = summary.rounds.total
    t = _table(f"Wake order: global wake rounds ({total} in all"
               + (f", first {top} shown" if total > top else "") + ")")
    t.add_column("ts", justify="right")
    t.add_column("line", justify="right")
    t.add_column("scope")
    t.add_column("round", justify="right")
    t.add_column("woken, in FIFO order (waited)", overflow="fold")
    for r in rounds[:top]:
        woken = ", ".join(f"{d} ({format_seconds(w)})" for d, w in r.woken)
        t.add_row(format_ts(r.ts), "drain" if r.drain else str(r.line or ""),
                  f"{r.changefeed} / {r.sink}", str(r.number), woken)
    return t


def crossings_table(summary: RunSummary, top: int) -> Table:
    total = summary.crossings.total
    t = _table(f"Watermark crossings ({total} in all"
               + (f", first {top} shown" if total > top else "") + ")")
    t.add_column("ts", justify="right")
    t.add_column("line", justify="right")
    t.add_column("scope")
    t.add_column("level")
    t.add_column("crossed")
    t.add_column("in-flight", justify="right")
    for rec in list(summary.crossings)[:top]:
        level = "global" if rec.level == "global" else f"per {rec.dispatcher}"
        arrow = "↑ reached high" if rec.direction == "up" else "↓ fell to low"
        t.add_row(format_ts(rec.ts), "drain" if rec.drain else str(rec.line or ""),
                  f"{rec.changefeed} / {rec.sink}", level,
                  Text(arrow, style="red" if rec.direction == "up" else "green"),
                  format_bytes(rec.inflight or 0))
    return t


def anomalies_table(summary: RunSummary, top: int) -> Table:
    total = summary.anomalies.total
    t = _table(f"Anomalies ({total} in all" + (f", first {top} shown" if total > top else "")
               + ")")
    t.add_column("ts", justify="right")
    t.add_column("line", justify="right")
    t.add_column("scope")
    t.add_column("dispatcher")
    t.add_column("code")
    t.add_column("meaning", overflow="fold")
    for rec in list(summary.anomalies)[:top]:
        style = "yellow" if rec.code in CONFORMANCE_CODES else "bold red"
        t.add_row(format_ts(rec.ts), "end" if rec.line is None else str(rec.line),
                  f"{rec.changefeed} / {rec.sink}", rec.dispatcher or "",
                  Text(rec.code or "", style=style),
                  rec.detail or ANOMALY_TEXT.get(rec.code or "", ""))
    return t


def render_run(console: Console, summary: RunSummary, result: ReplayResult, top: int,
               extra: list | None = None) -> None:
    """Print every table of `run`; empty sections say so in one line instead of a table."""
    parts: list = [summary_table(summary, result), config_table(result)]
    for s in result.engine.scopes.values():
        reason = s.limits.why_global_disabled()
        if reason and s.limits.policy == "option-a":
            parts.append(Text(f"note: {s.changefeed} / {s.sink}: {reason}; it never blocks",
                              style="yellow"))
    if extra:
        parts.extend(extra)
    ranked = summary.ranked(result.last_ts or 0.0)
    parts.append(blocking_table(ranked, top) if ranked
                 else Text("Blocking: no dispatcher was paused."))
    parts.append(rounds_table(summary, top) if summary.rounds.total
                 else Text("Wake order: no global wake round ran."))
    parts.append(crossings_table(summary, top) if summary.crossings.total
                 else Text("Watermark crossings: none."))
    parts.append(anomalies_table(summary, top) if summary.anomalies.total
                 else Text("Anomalies: none."))
    for p in parts:
        console.print(p)
        console.print()
