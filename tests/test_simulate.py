"""The closed-loop simulation against hand-worked timelines."""

from __future__ import annotations

import io
import json
from pathlib import Path

from budget.decisions import Decision
from traces.simulate import Quantiles, simulate
from traces.writer import TraceWriter

# per high 100 (multiplier 1), no global budget worth speaking of: only "a" ever pauses.
HEADER = ('{"type":"header","version":1,"changefeed":"cf","sink":"cloudstorage","config":'
          '{"per_low":50,"per_high":100,"multiplier":1,"global_high":1000000,'
          '"policy":"per-dispatcher"}}')


def write(tmp_path: Path, *events: dict) -> str:
    p = tmp_path / "t.jsonl"
    p.write_text("\n".join([HEADER] + [json.dumps(e) for e in events]) + "\n")
    return str(p)


def resimulate(path: str, overrides: dict | None = None) -> tuple[list[dict], list[Decision]]:
    buf = io.BytesIO()
    w = TraceWriter(buf)
    recs: list[Decision] = []
    simulate(path, recs.append, overrides, writer=w)
    w.close()
    return [json.loads(x) for x in buf.getvalue().splitlines()[1:]], recs


def enq(ts, d, i, b):
    return {"type": "enqueue", "ts": ts, "dispatcher": d, "id": i, "bytes": b}


def fl(ts, d, i):
    return {"type": "flush", "ts": ts, "dispatcher": d, "id": i}


def test_same_configuration_is_a_fixed_point(tmp_path: Path) -> None:
    path = write(tmp_path, enq(0, "a", 1, 60), enq(0.5, "b", 1, 10), fl(1, "a", 1),
                 fl(1.5, "b", 1))
    out, _ = resimulate(path)
    assert [(e["type"], e["ts"], e["dispatcher"]) for e in out] == [
        ("enqueue", 0, "a"), ("enqueue", 0.5, "b"), ("flush", 1, "a"), ("flush", 1.5, "b")]


def test_a_delayed_enqueue_moves_its_flush_by_the_same_delay(tmp_path: Path) -> None:
    # Recorded with no pause. Under per-high 50, a's first batch (60) pauses it until its flush
    # at 2.0, so its second batch (recorded at 1.0, flush latency 0.25) arrives at 2.0 and
    # flushes at 2.25. b is never paused and keeps its times.
    path = write(tmp_path, enq(0, "a", 1, 60), enq(1.0, "a", 2, 10), enq(1.1, "b", 1, 5),
                 fl(1.25, "a", 2), fl(1.3, "b", 1), fl(2.0, "a", 1))
    out, recs = resimulate(path, {"per_high": 50, "per_low": 20})
    timeline = [(e["type"], e["ts"], e["dispatcher"], e["id"]) for e in out
                if e["type"] != "header"]
    assert timeline == [
        ("enqueue", 0, "a", 1),
        ("enqueue", 1.1, "b", 1),
        ("flush", 1.3, "b", 1),
        ("flush", 2.0, "a", 1),
        ("enqueue", 2.0, "a", 2),
        ("flush", 2.25, "a", 2),
    ]
    wake = [r for r in recs if r.kind == "wake"]
    assert [(r.dispatcher, r.ts, r.blocked_for) for r in wake] == [("a", 2.0, 2.0)]


def test_delay_carries_over_to_later_batches_in_order(tmp_path: Path) -> None:
    # a's three batches: the first pauses it until 3.0; the other two (recorded at 1 and 1.5)
    # are delivered in order at 3.0, keeping their latencies (1 and 2).
    path = write(tmp_path, enq(0, "a", 1, 60), enq(1, "a", 2, 1), enq(1.5, "a", 3, 1),
                 fl(2, "a", 2), fl(3, "a", 1), fl(3.5, "a", 3))
    out, _ = resimulate(path, {"per_high": 50, "per_low": 20})
    times = {(e["type"], e["id"]): e["ts"] for e in out}
    assert times[("enqueue", 2)] == 3.0 and times[("flush", 2)] == 4.0
    assert times[("enqueue", 3)] == 3.0 and times[("flush", 3)] == 5.0


def test_removal_drops_undelivered_batches_and_keeps_leaks(tmp_path: Path) -> None:
    path = write(tmp_path, enq(0, "a", 1, 60), enq(0.5, "a", 2, 1),
                 {"type": "remove", "ts": 1, "dispatcher": "a"})
    buf = io.BytesIO()
    w = TraceWriter(buf)
    recs: list[Decision] = []
    res = simulate(path, recs.append, {"per_high": 50, "per_low": 20}, writer=w)
    assert res.dropped_batches == 1
    assert [r.code for r in recs if r.kind == "anomaly"] == ["leak"]


def test_resimulated_trace_replays_without_anomalies(tmp_path: Path) -> None:
    from traces.generator import generate, options_for
    from traces.replay import replay

    src = tmp_path / "g.jsonl"
    with open(src, "wb") as f:
        generate(f, options_for("churn", dispatchers=60, duration=2.0, rate=150.0,
                                offered=True), seed=5)
    for policy in ("option-a", "admission"):
        out = tmp_path / f"{policy}.jsonl"
        with open(out, "wb") as f:
            w = TraceWriter(f)
            simulate(str(src), lambda r: None, {"policy": policy, "per_high": 8 << 20,
                                                 "per_low": 4 << 20}, writer=w)
            w.close()
        recs: list[Decision] = []
        replay(str(out), recs.append)
        codes = [r.code for r in recs if r.kind == "anomaly"]
        assert not {"enqueue_while_paused", "unknown_flush", "after_remove"} & set(codes)


def test_quantiles_are_within_one_percent() -> None:
    q = Quantiles()
    for i in range(1, 1001):
        q.add(i / 1000)
    assert abs(q.quantile(0.5) - 0.5) < 0.01
    assert abs(q.quantile(0.99) - 0.99) < 0.011
    assert q.max == 1.0
