"""The timeline's series are views of the replay: they must equal the probe and the decision log."""

from __future__ import annotations

import io
import random
from pathlib import Path

import pytest
from rich.console import Console

from budget.decisions import ANOMALY, BLOCK, HANDOFF, STRANDED, WAKE, Decision
from cli.views.sparkline import InflightSparklines, columns, sparkline_rows
from cli.views.summary import RunSummary
from cli.views.timeline import BUDGETS, Segments, StepSeries, Timeline
from traces.format import Remove
from traces.replay import replay

SAMPLES = Path(__file__).resolve().parent.parent / "traces" / "samples"
SAMPLE_NAMES = sorted(p.name for p in SAMPLES.glob("*.jsonl"))


def _by_index(series: StepSeries, samples: list[tuple[float, object]]) -> dict[int, list]:
    """The samples grouped by the bucket the series put them in."""
    groups: dict[int, list] = {}
    for t, v in samples:
        groups.setdefault(int((t - series.origin) / series.width), []).append((t, v))
    return groups


def _assert_buckets_match(series: StepSeries, samples: list[tuple[float, object]], key=None):
    k = key or (lambda x: x)
    buckets = list(series.buckets())
    assert len(buckets) <= series.size
    assert sum(b.count for b in buckets) == len(samples) == series.samples
    groups = _by_index(series, samples)
    assert len(groups) == len(buckets)
    for b, (_i, inside) in zip(buckets, sorted(groups.items()), strict=True):
        assert b.count == len(inside)
        assert b.first == inside[0] and b.last == inside[-1]
        assert k(b.low[1]) == min(k(v) for _t, v in inside)
        assert k(b.high[1]) == max(k(v) for _t, v in inside)
    points = series.points()
    assert set(points) <= set(samples)
    assert points[-1] == samples[-1]


@pytest.mark.parametrize("size", [2, 3, 8, 64])
def test_step_series_keeps_first_low_high_last_of_every_bucket(size: int) -> None:
    rng = random.Random(size)
    for _ in range(150):
        s = StepSeries(size)
        t = rng.random() * 10
        samples = []
        for _ in range(rng.randint(1, 250)):
            t += rng.choice([0.0, 0.0, rng.random() * rng.choice([1e-3, 0.1, 10.0])])
            v = rng.randint(0, 100)
            s.add(t, v)
            samples.append((t, v))
        _assert_buckets_match(s, samples)


def test_step_series_memory_is_bounded() -> None:
    s = StepSeries(256)
    for i in range(200_000):
        s.add(i * 0.001, i % 977)
    assert len(list(s.buckets())) <= 256
    assert len(s.points()) <= 4 * 256
    assert s.peak() == 976


def test_segments_are_capped_and_keep_the_total() -> None:
    seg = Segments(cap=8)
    for i in range(1000):
        seg.add(i * 1.0, i * 1.0 + 0.5, i % 2, 0.5)
    assert len(seg.intervals()) <= 8
    assert seg.total == pytest.approx(500.0)
    assert seg.intervals()[0][0] == 0.0 and seg.intervals()[-1][1] == 999.5


class _Recorder:
    """Replays a trace into a Timeline while keeping the raw probe samples and every record."""

    def __init__(self, path: Path, overrides: dict | None = None, buckets: int = 4096) -> None:
        self.records: list[Decision] = []
        self.raw: dict[tuple[str, str], list[tuple[float, int, bool]]] = {}
        self.removes: list[tuple[int, float, str, str | None, str | None]] = []
        self.timeline = Timeline(buckets=buckets)
        self.summary = RunSummary(keep=10_000)

        def on_new_scope(scope) -> None:  # type: ignore[no-untyped-def]
            if scope.glob is not None:
                raw = self.raw.setdefault((scope.changefeed, scope.sink), [])
                cause = scope.report.cause
                scope.glob.probe = lambda ts, v: raw.append((ts, v, cause.line is None))
            self.timeline.attach(scope)  # chains onto the raw probe

        def on_open(reader, _config) -> None:  # type: ignore[no-untyped-def]
            h = reader.header
            self.timeline.set_defaults(h and h.changefeed, h and h.sink)

        def on_event(line: int, ev: object) -> None:
            if isinstance(ev, Remove):
                self.removes.append((line, ev.ts, ev.dispatcher, ev.changefeed, ev.sink))
            self.timeline.on_event(line, ev)

        def emit(rec: Decision) -> None:
            self.records.append(rec)
            self.summary(rec)
            self.timeline(rec)

        self.result = replay(str(path), emit, overrides or {}, on_new_scope=on_new_scope,
                             on_open=on_open, on_event=on_event)
        self.timeline.finish(self.result.last_ts)
        self.summary.close_round()


@pytest.mark.parametrize("name", SAMPLE_NAMES)
def test_inflight_series_equals_the_probe(name: str) -> None:
    rec = _Recorder(SAMPLES / name)
    tl = rec.timeline
    for key, raw in rec.raw.items():
        st = tl.scopes[key]
        assert st.inflight_is_global
        # The drain's samples sit at the drain's place on the timeline, after the last event.
        placed = [(tl.drain_ts if drain else ts, v) for ts, v, drain in raw]
        _assert_buckets_match(st.inflight, placed)
        assert st.peak_inflight() == rec.result.engine.scopes[key].glob.peak
        assert st.inflight.points()[-1][1] == rec.result.engine.scopes[key].glob.inflight


@pytest.mark.parametrize("name", SAMPLE_NAMES)
def test_paused_counts_and_rounds_equal_the_decision_log(name: str) -> None:
    rec = _Recorder(SAMPLES / name)
    tl = rec.timeline
    hdr = rec.result.header
    # An independent fold of the log: who is paused, held by which budget, after each record.
    holder: dict[tuple[str, str], dict[str, str]] = {}
    states: dict[tuple[str, str], list[tuple[float, tuple[int, ...]]]] = {}

    def note(key: tuple[str, str], ts: float) -> None:
        h = holder[key]
        states.setdefault(key, []).append(
            (ts, tuple(sum(1 for b in h.values() if b == name) for name in BUDGETS)))

    # Removes write no record; they clear a pause (SPEC 2, step 6) between the records of the
    # lines around them, and before the end-of-trace records (which have no line).
    rm_iter = iter(rec.removes)
    next_rm = next(rm_iter, None)
    for r in rec.records:
        while next_rm is not None and (r.line is None or next_rm[0] < r.line):
            line, ts, d, cf, sk = next_rm
            key = (cf or (hdr and hdr.changefeed) or "default/changefeed",
                   sk or (hdr and hdr.sink) or "cloudstorage")
            if holder.setdefault(key, {}).pop(d, None) is not None:
                note(key, ts)
            next_rm = next(rm_iter, None)
        key = (r.changefeed, r.sink)
        h = holder.setdefault(key, {})
        if r.kind == BLOCK:
            h[r.dispatcher] = r.by
        elif r.kind == HANDOFF:
            h[r.dispatcher] = "global"
        elif r.kind == WAKE:
            h.pop(r.dispatcher, None)
        else:
            continue
        note(key, tl.timeline_ts(r))
    for key, st in tl.scopes.items():
        want = states.get(key, [])
        buckets = list(st.paused.buckets())
        assert bool(want) == bool(buckets)
        if not want:
            continue
        series = st.paused
        # Every bucket ends in the state left by the last record that falls in it.
        index = [int((ts - series.origin) / series.width) for ts, _v in want]
        for b in buckets:
            i = int((b.last[0] - series.origin) / series.width)
            last_state = [v for j, (_ts, v) in zip(index, want, strict=True) if j <= i][-1]
            assert b.last[1] == last_state
        assert max(sum(b.high[1]) for b in buckets) == max(sum(v) for _t, v in want)
        stranded = sum(1 for r in rec.records if r.kind == ANOMALY and r.code == STRANDED
                       and (r.changefeed, r.sink) == key)
        assert st.stranded == stranded
        tally = rec.summary.scopes.get(key)
        assert st.round_total == (tally.rounds if tally else 0)
        assert st.woken_total == (tally.wakes.get("global", 0) if tally else 0)


@pytest.mark.parametrize("name", SAMPLE_NAMES)
def test_paused_time_per_dispatcher_equals_the_run_summary(name: str) -> None:
    rec = _Recorder(SAMPLES / name)
    last = rec.result.last_ts or 0.0
    want = {k: total for k, _t, total in rec.summary.ranked(last)}
    for key, st in rec.timeline.scopes.items():
        for d, seg, total in st.top(10_000, last):
            # The summary counts a removed dispatcher's pause to the end of the trace; the model
            # ends it at the removal, and so does the timeline.
            if (key[0], key[1], d) in want and seg.ended != "removed":
                assert total == pytest.approx(want[(key[0], key[1], d)], abs=1e-9), d


def test_stranded_dispatchers_get_rows_in_the_strip_chart() -> None:
    rec = _Recorder(SAMPLES / "stranded.jsonl")
    st = next(iter(rec.timeline.scopes.values()))
    rows = st.top(12, rec.result.last_ts or 0.0)
    assert len(rows) == 12
    assert sum(1 for _d, seg, _t in rows if seg.ended == "stranded") == 4
    assert st.stranded == 36
    assert st.paused.points()[-1][1] == (0, 36, 0)  # they stay paused for good


def test_timeline_keeps_a_bounded_size_for_a_long_series() -> None:
    rec = _Recorder(SAMPLES / "many-tables.jsonl", buckets=64)
    for st in rec.timeline.scopes.values():
        assert len(list(st.inflight.buckets())) <= 64
        assert len(list(st.paused.buckets())) <= 64
        assert st.peak_inflight() == max(v for _t, v, _d in rec.raw[(st.changefeed, st.sink)])


def test_sparkline_columns_keep_peaks_and_hold_values() -> None:
    s = StepSeries(64)
    for t, v in [(0.0, 10), (1.0, 50), (1.01, 5), (5.0, 20)]:
        s.add(t, v)
    cols = columns(s, 10, 0.0, 10.0)
    assert cols[0] == 10  # the first slice
    assert cols[1] == 50  # the brief peak survives
    assert cols[2:5] == [5, 5, 5]  # held
    assert cols[5:] == [20] * 5
    rows = sparkline_rows(cols, high=40, low=20, rows=2)
    assert len(rows) == 2 and all(len(r.plain) == 10 for r in rows)
    assert rows[0].plain[1] != " "  # the peak above high reaches the top row


def test_sparkline_renders_per_global_scope() -> None:
    sparks = InflightSparklines()
    res = replay(str(SAMPLES / "mixed.jsonl"), lambda r: None, {}, on_new_scope=sparks.attach)
    parts = sparks.renderables(res.first_ts, res.last_ts)
    assert len(parts) == 1  # the mysql scope has no global budget
    console = Console(width=100, file=io.StringIO(), color_system=None)
    for p in parts:
        console.print(p)
    text = console.file.getvalue()
    assert "default/tour / cloudstorage: global in-flight" in text
    assert "high 48.0 MiB" in text and "low 24.0 MiB" in text
