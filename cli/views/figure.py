"""The matplotlib picture of a timeline: per scope, in-flight bytes against the watermarks, paused
dispatchers by budget with the wake rounds, and the paused intervals of the top dispatchers.

matplotlib is an optional dependency: import this module only after checking it is installed
(`cli.plot` does), and only with a non-interactive backend selected.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import matplotlib

matplotlib.use("Agg")  # files only; never a window

from matplotlib import pyplot as plt  # noqa: E402
from matplotlib.axes import Axes  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402
from matplotlib.lines import Line2D  # noqa: E402
from matplotlib.patches import Patch  # noqa: E402

from budget.config import format_bytes  # noqa: E402
from cli.console import format_seconds  # noqa: E402
from cli.views.timeline import BUDGETS, ScopeTimeline, Timeline  # noqa: E402

#: One colour per budget that can hold a paused path (stack order of the paused panel).
BUDGET_COLOURS = {"per": "#e8871e", "global": "#3b6fb6", "legacy": "#8c8c8c"}
BUDGET_LABELS = {"per": "paused by its own budget",
                 "global": "paused in the global queue",
                 "legacy": "legacy pause (until flushed)"}
INFLIGHT_COLOUR = "#1f3b73"
HIGH_COLOUR = "#c0392b"
LOW_COLOUR = "#27ae60"
ROUND_COLOUR = "#7d3c98"
#: Line colours of the configurations overlaid with --compare.
COMPARE_COLOURS = ("#d35400", "#16a085", "#8e44ad")
FIG_WIDTH = 11.0


@dataclass
class Run:
    """One configuration's replay: its label (the flags that made it) and its timeline."""

    label: str
    timeline: Timeline


def _unit(peak: float) -> tuple[float, str]:
    for scale, name in ((1 << 30, "GiB"), (1 << 20, "MiB"), (1 << 10, "KiB")):
        if peak >= 2 * scale:
            return float(scale), name
    return 1.0, "B"


def _step(points: Sequence[tuple[float, object]], end: float) -> tuple[list[float], list]:
    """x and y of a step function drawn with ``drawstyle="steps-post"``, held to ``end``."""
    xs = [p[0] for p in points]
    ys = [p[1] for p in points]
    if xs and xs[-1] < end:
        xs.append(end)
        ys.append(ys[-1])
    return xs, ys


def _scope_title(st: ScopeTimeline) -> str:
    parts = [f"policy {st.policy}"]
    peak = st.peak_inflight()
    if st.global_high is not None:
        parts.append(f"global high {format_bytes(st.global_high)}, low "
                     f"{format_bytes(st.global_low or 0)}")
        parts.append(f"peak {format_bytes(peak)} = {peak / st.global_high:.2f}× high")
    else:
        parts.append(f"no global budget; peak {format_bytes(peak)} in flight")
    if st.round_total:
        parts.append(f"{st.round_total} wake round{'s' if st.round_total != 1 else ''} "
                     f"woke {st.woken_total}")
    if st.stranded:
        parts.append(f"{st.stranded} stranded")
    if st.leaks:
        parts.append(f"{st.leaks} leaked")
    return "  ·  ".join(parts)


def _legend(ax: Axes, handles: list, **kw: object) -> None:
    """Legends sit right of the panels, so they never cover the data."""
    ax.legend(handles=handles, loc="upper left", bbox_to_anchor=(1.01, 1.0), fontsize=7.5,
              frameon=False, borderaxespad=0.0, **kw)


def _drain_band(ax: Axes, last: float, right: float, label: bool) -> None:
    ax.axvspan(last, right, color="#000", alpha=0.06, lw=0, zorder=0)
    if label:
        ax.text((last + right) / 2, 0.5, "end-of-trace drain", transform=ax.get_xaxis_transform(),
                rotation=90, ha="center", va="center", fontsize=7, color="#555")


def _inflight_panel(ax: Axes, runs: Sequence[Run], key: tuple[str, str], t0: float,
                    end: float) -> None:
    main = runs[0].timeline.scopes[key]
    peaks = [r.timeline.scopes[key].peak_inflight() for r in runs if key in r.timeline.scopes]
    marks = [m for r in runs if key in r.timeline.scopes
             for m in (r.timeline.scopes[key].global_high,) if m is not None]
    scale, unit = _unit(max(peaks + marks + [1]))
    handles: list = []
    for i, run in enumerate(runs):
        st = run.timeline.scopes.get(key)
        if st is None:
            continue
        xs, ys = _step(st.inflight.points(), end)
        xs = [x - t0 for x in xs]
        ys = [y / scale for y in ys]
        colour = INFLIGHT_COLOUR if i == 0 else COMPARE_COLOURS[(i - 1) % len(COMPARE_COLOURS)]
        what = "global in-flight" if st.inflight_is_global else "in-flight (all dispatchers)"
        label = what if len(runs) == 1 else f"{run.label}: {what}"
        (line,) = ax.plot(xs, ys, drawstyle="steps-post", color=colour, lw=1.3 if i == 0 else 1.1,
                          ls="-" if i == 0 else (0, (4, 1.5)), label=label, zorder=3 - i * 0.1)
        handles.append(line)
        if st.global_high is not None:
            high = st.global_high / scale
            low = (st.global_low or 0) / scale
            same = i > 0 and main.global_high == st.global_high and main.global_low == st.global_low
            if not same:
                suffix = "" if len(runs) == 1 else f" ({run.label})"
                ls = "--" if i == 0 else ":"
                h = ax.axhline(high, color=HIGH_COLOUR, ls=ls, lw=1,
                               label=f"high {format_bytes(st.global_high)}{suffix}")
                lo = ax.axhline(low, color=LOW_COLOUR, ls=ls, lw=1,
                                label=f"low {format_bytes(st.global_low or 0)}{suffix}")
                handles += [h, lo]
            if i == 0 and any(y > high for y in ys):
                # Clipped at high rather than masked: a masked step fill drops the last step.
                ax.fill_between(xs, high, [max(y, high) for y in ys], step="post",
                                color=HIGH_COLOUR, alpha=0.28, lw=0)
                handles.append(Patch(color=HIGH_COLOUR, alpha=0.28, label="overshoot above high"))
        if i == 0 and st.round_total:
            handles.append(_round_markers(ax, st, t0, run_label=None))
        elif st.round_total:
            _round_markers(ax, st, t0, run_label=run.label, hollow=True)
    ax.set_ylabel(f"in flight ({unit})")
    ax.set_ylim(bottom=0, top=max(max(peaks + marks + [1]) / scale * 1.12, 1e-9))
    _legend(ax, handles)
    ax.grid(axis="y", alpha=0.25)


def _round_markers(ax: Axes, st: ScopeTimeline, t0: float, run_label: str | None,
                   hollow: bool = False) -> Line2D:
    """A triangle on the panel's top edge per wake round (per bucket when they crowd)."""
    xs, sizes = [], []
    for b in st.rounds.buckets():
        xs.append(b.high[0] - t0)
        sizes.append(b.high[1])
    trans = ax.get_xaxis_transform()
    biggest = max(sizes) if sizes else 1
    ax.scatter(xs, [0.985] * len(xs), s=[18 + 60 * (s / biggest) for s in sizes], marker="v",
               transform=trans, clip_on=False, zorder=4,
               facecolors="none" if hollow else ROUND_COLOUR, edgecolors=ROUND_COLOUR, lw=0.8)
    label = f"global wake round\n(size ∝ woken, up to {biggest})"
    if run_label:
        label = f"{run_label}: {label}"
    return Line2D([], [], marker="v", ls="", color=ROUND_COLOUR, label=label)


def _paused_panel(ax: Axes, runs: Sequence[Run], key: tuple[str, str], t0: float,
                  end: float) -> None:
    st = runs[0].timeline.scopes[key]
    xs, ys = _step(st.paused.points(), end)
    xs = [x - t0 for x in xs]
    handles: list = []
    base = [0] * len(ys)
    for b in BUDGETS:
        j = BUDGETS.index(b)
        top = [base[k] + ys[k][j] for k in range(len(ys))]
        if any(y[j] for y in ys):
            ax.fill_between(xs, base, top, step="post", color=BUDGET_COLOURS[b], alpha=0.85, lw=0)
            handles.append(Patch(color=BUDGET_COLOURS[b], label=BUDGET_LABELS[b]))
        base = top
    if ys:
        # The outline keeps short dips visible (a round wakes many, they re-block at once).
        ax.plot(xs, [sum(y) for y in ys], drawstyle="steps-post", color="#1b2a49", lw=0.6)
    for i, run in enumerate(runs[1:], start=1):
        other = run.timeline.scopes.get(key)
        if other is None:
            continue
        oxs, oys = _step(other.paused.points(), end)
        colour = COMPARE_COLOURS[(i - 1) % len(COMPARE_COLOURS)]
        (line,) = ax.plot([x - t0 for x in oxs], [sum(y) for y in oys], drawstyle="steps-post",
                          color=colour, ls=(0, (4, 1.5)), lw=1.1,
                          label=f"{run.label}: all paused")
        handles.append(line)
    if st.stranded:
        last = runs[0].timeline.last_ts or t0
        ax.annotate(f"{st.stranded} stranded", xy=(last - t0, st.stranded), xytext=(-4, 4),
                    textcoords="offset points", ha="right", va="bottom", fontsize=8,
                    color=HIGH_COLOUR, fontweight="bold")
    ax.set_ylabel("paused\ndispatchers")
    ax.set_ylim(bottom=0)
    ax.yaxis.get_major_locator().set_params(integer=True)
    if handles:
        _legend(ax, handles)
    else:
        ax.text(0.5, 0.5, "no dispatcher was paused", transform=ax.transAxes, ha="center",
                va="center", fontsize=9, color="#666")
    ax.grid(axis="y", alpha=0.25)


def _strip_panel(ax: Axes, st: ScopeTimeline, top: int, t0: float, end: float,
                 right: float) -> None:
    rows = st.top(top, end)
    min_w = (right - t0) * 2e-4  # a pause shorter than this still shows as a hairline
    for y, (_d, seg, _total) in enumerate(rows):
        by_budget: dict[str, list[tuple[float, float]]] = {}
        for s, e, b in seg.intervals():
            by_budget.setdefault(b, []).append((s - t0, max(e - s, min_w)))
        for b, spans in by_budget.items():
            ax.broken_barh(spans, (y - 0.38, 0.76), color=BUDGET_COLOURS[b], lw=0)
        if seg.ended == "stranded" and seg.ends:
            ax.broken_barh([(seg.ends[-1] - t0, right - seg.ends[-1])], (y - 0.38, 0.76),
                           facecolor="none", edgecolor=HIGH_COLOUR, hatch="////", lw=0.8)
        elif seg.ended == "removed" and seg.ends:
            ax.plot([seg.ends[-1] - t0], [y], marker="x", color="black", ms=5, mew=1.5)
    ax.set_yticks(range(len(rows)))
    ax.set_yticklabels([f"{d}  {format_seconds(total)}" for d, _s, total in rows], fontsize=7)
    for label, (_d, seg, _t) in zip(ax.get_yticklabels(), rows, strict=True):
        if seg.ended == "stranded":
            label.set_color(HIGH_COLOUR)
            label.set_fontweight("bold")
    ax.set_ylim(len(rows) - 0.5, -0.5)
    ax.set_ylabel("paused longest", fontsize=8)
    ax.grid(axis="x", alpha=0.25)
    handles = [Patch(color=BUDGET_COLOURS[b], label=f"{b} budget" if b != "legacy" else b)
               for b in BUDGETS if any(x[2] == b for _d, seg, _t in rows
                                       for x in seg.intervals())]
    if any(seg.ended == "stranded" for _d, seg, _t in rows):
        handles.append(Patch(facecolor="none", edgecolor=HIGH_COLOUR, hatch="////",
                             label="stranded: still paused\nafter the drain"))
    if any(seg.ended == "removed" for _d, seg, _t in rows):
        handles.append(Line2D([], [], marker="x", ls="", color="black", mew=1.5,
                              label="removed while paused"))
    _legend(ax, handles)


def _strip_rows(st: ScopeTimeline, top: int) -> int:
    return min(top, len(st.dispatchers) + len(st._open))


def _panel_heights(st: ScopeTimeline, top: int) -> list[float]:
    n = _strip_rows(st, top)
    first = 2.6 if st.global_high is not None else 1.6
    return [first, 1.5] + ([0.3 + 0.2 * n] if n else [])


def timeline_figure(runs: Sequence[Run], top: int = 12, title: str | None = None) -> Figure:
    """The picture of ``runs[0]`` (with the others overlaid), one block of panels per scope."""
    main = runs[0].timeline
    keys = list(main.scopes)
    t0 = main.first_ts or 0.0
    last = max((r.timeline.last_ts or t0) for r in runs)
    end = max(r.timeline.end_ts for r in runs)
    if end <= t0:
        end = t0 + 1e-3
    drained = end > last
    right = end + (end - last) * 0.6 if drained else end + (end - t0) * 0.01
    heights = [_panel_heights(main.scopes[k], top) for k in keys]
    blocks = [sum(h) + 0.55 for h in heights]
    fig = plt.figure(figsize=(FIG_WIDTH, sum(blocks) + (0.35 if title else 0.0)),
                     layout="constrained")
    sub = fig.subfigures(len(keys), 1, squeeze=False, height_ratios=blocks)[:, 0]
    for sf, k, hr in zip(sub, keys, heights, strict=True):
        st = main.scopes[k]
        axes = sf.subplots(len(hr), 1, sharex=True, gridspec_kw={"height_ratios": hr})
        sf.suptitle(st.name, fontsize=10, x=0.01, ha="left", fontweight="bold")
        axes[0].set_title(_scope_title(st), loc="left", fontsize=8.5,
                          color=HIGH_COLOUR if st.stranded or st.leaks else "#333")
        _inflight_panel(axes[0], runs, k, t0, right)
        _paused_panel(axes[1], runs, k, t0, right)
        if len(hr) > 2:
            _strip_panel(axes[2], st, top, t0, end, right)
        if drained:
            for n, ax in enumerate(axes):
                _drain_band(ax, last - t0, right - t0, label=n == 0)
        axes[-1].set_xlabel("trace time (s)")
        axes[-1].set_xlim(0, right - t0)
    if title:
        fig.suptitle(title, fontsize=11, x=0.01, ha="left", fontweight="bold")
    return fig


__all__ = ["Run", "timeline_figure"]
