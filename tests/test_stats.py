"""`stats`: figures checked against values worked out by hand on small traces."""

from __future__ import annotations

import json
import math
import random
from pathlib import Path

import pytest
from click.testing import CliRunner
from hypothesis import given, settings
from hypothesis import strategies as st

from cli.main import cli
from cli.replaying import replay_with_progress
from cli.views.quantiles import RELATIVE_ERROR, Distribution
from cli.views.stats import TraceStats, jain_index

CASES = Path(__file__).parent / "data" / "cases"
SAMPLES = Path(__file__).resolve().parent.parent / "traces" / "samples"


def _write(tmp_path: Path, name: str, lines: list[dict]) -> str:
    p = tmp_path / name
    p.write_text("".join(json.dumps(x) + "\n" for x in lines))
    return str(p)


def _stats(path: str, overrides: dict | None = None) -> dict:
    ts = TraceStats()
    result = replay_with_progress(path, ts.sinks(), overrides or {}, show_progress=False,
                                  **ts.hooks())
    return ts.to_json(result)


def test_two_dispatchers_global_by_hand() -> None:
    # global high = min(4 × 128 MiB, 200 / 2) = 100, low 50; eff = 2 × bytes.
    s = _stats(str(CASES / "01-two-dispatchers-global.jsonl"))
    w, o, (sc,) = s["workload"], s["outcome"], s["scopes"]
    assert (w["span"], w["scopes"], w["dispatchers"], w["enqueues"], w["dmls"]) == (3, 1, 2, 2, 2)
    assert (w["raw_bytes"], w["effective_bytes"], w["flushed_raw_bytes"]) == (120, 240, 120)
    assert w["throughput_bytes_per_s"] == pytest.approx(40)
    assert w["flush_latency"]["p50"] == 2 and w["flush_latency"]["max"] == 2
    assert w["dml_bytes"]["max"] == 60
    # in-flight 120 on [0,1), 240 on [1,2), 120 on [2,3), 0 at 3
    assert sc["peak_inflight"] == 240 and sc["overshoot_ratio"] == pytest.approx(2.4)
    assert sc["mean_inflight"] == pytest.approx(160)
    assert sc["fraction_at_or_above_high"] == pytest.approx(1.0)
    assert sc["fraction_at_or_below_low"] == 0
    # waiters: 1 on [0,1), 2 on [1,3) → 5 dispatcher-seconds, none while in-flight ≤ low
    assert sc["global_wait_dispatcher_seconds"] == pytest.approx(5)
    assert sc["needless_wait_fraction"] == 0
    assert o["held"]["global"]["count"] == 2
    assert o["held"]["global"]["p50"] == 2 and o["held"]["global"]["max"] == 3
    assert o["longest_fifo_wait"] == 3
    assert o["wake_rounds"] == 1 and o["round_size"]["max"] == 2
    assert o["jain_fairness"] == pytest.approx(25 / 26)
    assert o["pauses_per_dispatcher"] == {"mean": 1, "max": 1}


def test_handoff_case_by_hand() -> None:
    # per low/high 100/200, global high = min(800, 500) = 500, low 250.
    s = _stats(str(CASES / "02-handoff.jsonl"))
    o, (sc,) = s["outcome"], s["scopes"]
    # per holds: hot block 0 → handoff 2; big block 0.5 → wake 3
    assert o["held"]["per"]["count"] == 2
    assert (o["held"]["per"]["p50"], o["held"]["per"]["max"]) == (2.0, 2.5)
    # global holds: small 1.5 → 3; hot handoff 2 → 3
    assert (o["held"]["global"]["p50"], o["held"]["global"]["max"]) == (1.0, 1.5)
    assert o["paused"]["count"] == 3 and o["paused"]["max"] == 3
    assert o["handoffs"] == 1 and o["blocks"] == {"global": 1, "per": 2}
    # in-flight 240, 760, 640, 660, 540, 20, 0 at ts 0, .5, 1, 1.5, 2, 3, 4
    assert sc["mean_inflight"] == pytest.approx(1710 / 4)
    assert sc["fraction_at_or_above_high"] == pytest.approx(2.5 / 4)
    assert sc["fraction_at_or_below_low"] == pytest.approx(1.5 / 4)
    assert sc["global_wait_dispatcher_seconds"] == pytest.approx(2.5)
    w = s["workload"]
    assert (w["flush_latency"]["p50"], w["flush_latency"]["p90"]) == (2.0, 2.5)
    assert w["batch_dmls"]["max"] == 2


def test_waiting_the_budget_did_not_need(tmp_path: Path) -> None:
    # max one wake per round: c stays queued while in-flight is 0, until the next release.
    hdr = {"type": "header", "version": 1,
           "config": {"per_low": 50, "per_high": 100, "global_high": 100, "global_low": 50,
                      "max_wake_per_round": 1}}
    ev = [hdr,
          {"ts": 0, "type": "enqueue", "dispatcher": "a", "id": 1, "bytes": 30},
          {"ts": 1, "type": "enqueue", "dispatcher": "b", "id": 1, "bytes": 30},
          {"ts": 2, "type": "enqueue", "dispatcher": "c", "id": 1, "bytes": 30},
          {"ts": 3, "type": "flush", "dispatcher": "a", "id": 1},
          {"ts": 4, "type": "flush", "dispatcher": "b", "id": 1},
          {"ts": 5, "type": "flush", "dispatcher": "c", "id": 1},
          {"ts": 7, "type": "enqueue", "dispatcher": "a", "id": 2, "bytes": 10},
          {"ts": 8, "type": "flush", "dispatcher": "a", "id": 2}]
    s = _stats(_write(tmp_path, "t.jsonl", ev))
    o, (sc,) = s["outcome"], s["scopes"]
    # in-flight 60,120,180,120,60,0,0,20 over unit steps → 560 byte-seconds over 8 s
    assert sc["mean_inflight"] == pytest.approx(70)
    assert sc["peak_inflight"] == 180 and sc["overshoot_ratio"] == pytest.approx(1.8)
    assert sc["time_at_or_above_high"] == pytest.approx(3)
    assert sc["time_at_or_below_low"] == pytest.approx(3)
    # waiters 1 on [1,2), 2 on [2,5), 1 on [5,8): 10 dispatcher-seconds, 3 of them at ≤ low
    assert sc["global_wait_dispatcher_seconds"] == pytest.approx(10)
    assert sc["needless_wait_fraction"] == pytest.approx(0.3)
    assert o["held"]["global"]["p50"] == 4 and o["longest_fifo_wait"] == 6
    assert o["wake_rounds"] == 2 and o["round_size"]["max"] == 1
    assert o["jain_fairness"] == pytest.approx(100 / 104)


def test_open_holds_and_end_state(tmp_path: Path) -> None:
    # three waiters, one wake per round; the last release wakes only a: b and c stay queued with
    # nothing in flight. d's DML lets the drain wake b (waiting); c is stranded.
    hdr = {"type": "header", "version": 1,
           "config": {"global_high": 100, "global_low": 50, "max_wake_per_round": 1}}
    ev = [hdr,
          {"ts": 0, "type": "enqueue", "dispatcher": "a", "id": 1, "bytes": 60},
          {"ts": 1, "type": "enqueue", "dispatcher": "b", "id": 1, "bytes": 10},
          {"ts": 2, "type": "enqueue", "dispatcher": "c", "id": 1, "bytes": 10},
          {"ts": 2.5, "type": "flush", "dispatcher": "b", "id": 1},
          {"ts": 2.75, "type": "flush", "dispatcher": "c", "id": 1},
          {"ts": 3, "type": "flush", "dispatcher": "a", "id": 1},
          {"ts": 4, "type": "enqueue", "dispatcher": "d", "id": 1, "bytes": 1}]
    s = _stats(_write(tmp_path, "t.jsonl", ev))
    o = s["outcome"]
    assert (o["stranded"], o["waiting"], o["paused_at_end"]) == (1, 1, 2)
    assert o["longest_open_hold"]["global"] == pytest.approx(3)  # b queued since 1, end at 4
    assert o["held"]["global"]["count"] == 1 and o["held"]["global"]["max"] == 3  # a: 0 → 3
    # waiters 1, 2, 3, 2 on unit steps; the last second at in-flight ≤ low
    assert s["scopes"][0]["needless_wait_fraction"] == pytest.approx(2 / 8)
    assert s["workload"]["unflushed_dmls"] == 1


def test_policy_flag_changes_outcome_not_workload() -> None:
    path = str(SAMPLES / "many-tables.jsonl")
    a = _stats(path)
    b = _stats(path, {"policy": "per-dispatcher"})
    assert a["workload"] == b["workload"]
    assert b["outcome"]["blocks"].get("global", 0) == 0
    assert b["scopes"][0]["global_enabled"] is False and b["scopes"][0]["high"] is not None


@pytest.mark.parametrize("sample", sorted(p.name for p in SAMPLES.glob("*.jsonl")))
def test_samples_agree_with_model(sample: str) -> None:
    ts = TraceStats()
    result = replay_with_progress(str(SAMPLES / sample), ts.sinks(), {}, show_progress=False,
                                  **ts.hooks())
    s = ts.to_json(result)
    assert s["workload"]["enqueues"] == result.enqueues
    assert s["workload"]["flushes"] == result.flushes
    for sc in s["scopes"]:
        glob = result.engine.scopes[(sc["changefeed"], sc["sink"])].glob
        if glob is not None:
            assert sc["peak_inflight"] == glob.peak
            assert sc["peak_ts"] == glob.peak_ts
        for f in ("fraction_at_or_above_high", "fraction_at_or_below_low",
                  "needless_wait_fraction"):
            assert sc[f] is None or 0 <= sc[f] <= 1 + 1e-9
    o = s["outcome"]
    assert o["jain_fairness"] is None or 0 < o["jain_fairness"] <= 1 + 1e-9
    assert o["held"]["global"]["count"] <= o["blocks"].get("global", 0) + o["handoffs"]


def test_cli_side_by_side_and_json(tmp_path: Path) -> None:
    a, b = str(CASES / "01-two-dispatchers-global.jsonl"), str(CASES / "02-handoff.jsonl")
    runner = CliRunner()
    res = runner.invoke(cli, ["stats", a, b])
    assert res.exit_code == 0, res.output
    header = next(line for line in res.output.splitlines() if "01-two" in line)
    assert "02-handoff.jsonl" in header  # one column per trace
    out = tmp_path / "s.json"
    res = runner.invoke(cli, ["stats", a, b, "--format", "json", "-o", str(out)])
    assert res.exit_code == 0, res.output
    data = json.loads(out.read_text())
    assert [t["trace"] for t in data["traces"]] == [a, b]
    res = runner.invoke(cli, ["stats", a, b, "--metrics", str(tmp_path / "m.prom")],
                        standalone_mode=False)
    assert res.exit_code != 0


def test_cli_default_sample_and_flags() -> None:
    res = CliRunner().invoke(cli, ["stats", "--format", "json", "--policy", "per-dispatcher"])
    assert res.exit_code == 0, res.output
    (t,) = json.loads(res.output)["traces"]
    assert t["policy"] == "per-dispatcher"


# Distribution ---------------------------------------------------------------------------------
def test_distribution_exact_nearest_rank() -> None:
    d = Distribution()
    for v in [5, 1, 4, 2, 3]:
        d.add(v)
    assert [d.percentile(p) for p in (0, 20, 21, 50, 90, 100)] == [1, 1, 2, 3, 5, 5]
    assert d.mean == 3 and d.exact


@settings(max_examples=60, deadline=None)
@given(st.lists(st.floats(min_value=0, max_value=1e9, allow_nan=False), min_size=1,
                max_size=400),
       st.sampled_from([50, 90, 99, 100]))
def test_distribution_bucketed_within_relative_error(values: list[float], p: int) -> None:
    d = Distribution(exact_limit=8)
    for v in values:
        d.add(v)
    exact = sorted(values)[max(1, math.ceil(p / 100 * len(values))) - 1]
    got = d.percentile(p)
    assert got == pytest.approx(exact, rel=RELATIVE_ERROR * 1.0001, abs=1e-300)
    assert d.count == len(values) and d.max == max(values)


def test_distribution_memory_is_bounded() -> None:
    d = Distribution()
    rng = random.Random(5)
    for _ in range(200_000):
        d.add(rng.lognormvariate(0, 2))
    assert not d.exact
    assert len(d._buckets) < 2000  # log buckets, not one entry per value


def test_jain_index() -> None:
    assert jain_index([]) is None
    assert jain_index([1, 1, 1]) == pytest.approx(1)
    assert jain_index([1, 0, 0, 0]) == pytest.approx(0.25)
