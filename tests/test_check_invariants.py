"""The built-in invariants hold on the real model for any trace, conformant or not: they only
fire when the model breaks (see test_check_broken_model.py) or on stranded/leak/anomaly records.
Also unit checks of expectation values (sizes, durations, ranges)."""

from __future__ import annotations

import io
import os
import tempfile
from collections import Counter

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from budget.decisions import ANOMALY, CONFORMANCE_CODES, LEAK, STRANDED, UNDERFLOW
from cli.checks.expectations import COUNT, NUMBER, NumberSpec, parse_duration
from cli.checks.invariants import InvariantSet, InvariantSettings
from cli.replaying import fan_out
from traces.replay import replay
from traces.writer import TraceWriter

DISPATCHERS = ["a", "b", "c", "d", "e"]

ops = st.lists(st.one_of(
    st.tuples(st.just("enqueue"), st.sampled_from(DISPATCHERS),
              st.lists(st.integers(0, 60), min_size=0, max_size=3)),
    st.tuples(st.just("flush"), st.sampled_from(DISPATCHERS), st.integers(0, 6)),
    st.tuples(st.just("remove"), st.sampled_from(DISPATCHERS), st.just(0)),
    st.tuples(st.just("stray"), st.sampled_from(DISPATCHERS), st.just(0)),
), max_size=60)


def build_trace(steps: list, per_low: int, per_high: int, global_high: int, max_wake: int,
                policy: str, two_scopes: bool) -> bytes:
    buf = io.BytesIO()
    w = TraceWriter(buf)
    w.header("default/cf", "cloudstorage", {"per_low": per_low, "per_high": per_high,
                                            "global_high": global_high,
                                            "max_wake_per_round": max_wake, "policy": policy})
    next_id: Counter = Counter()
    inflight: dict[str, list[int]] = {d: [] for d in DISPATCHERS}
    ts = 0.0
    for kind, d, arg in steps:
        ts += 0.1
        sink = "redo" if two_scopes and d in ("d", "e") else None
        if kind == "enqueue":
            dmls = []
            for size in arg:
                next_id[d] += 1
                dmls.append((next_id[d], size))
                inflight[d].append(next_id[d])
            if dmls:
                w.enqueue(ts, d, dmls, sink=sink)
        elif kind == "flush" and inflight[d]:
            w.flush_event(ts, d, inflight[d].pop(arg % len(inflight[d])), sink=sink)
        elif kind == "stray":
            w.flush_event(ts, d, "never-enqueued", sink=sink)  # unknown_flush
        elif kind == "remove":
            w.remove(ts, d, sink=sink)
    w.close()
    return buf.getvalue()


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(steps=ops, per_low=st.integers(1, 40), per_gap=st.integers(1, 60),
       global_high=st.integers(2, 200), max_wake=st.integers(1, 3),
       policy=st.sampled_from(["option-a", "option-a", "per-dispatcher", "admission"]),
       two_scopes=st.booleans())
def test_invariants_hold_on_the_model(steps: list, per_low: int, per_gap: int, global_high: int,
                                      max_wake: int, policy: str, two_scopes: bool) -> None:
    data = build_trace(steps, per_low, per_low + per_gap, global_high, max_wake, policy,
                       two_scopes)
    fd, path = tempfile.mkstemp(suffix=".jsonl")
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
        inv = InvariantSet(InvariantSettings(max_overshoot=1e9, max_blocked=1e9))
        codes: Counter = Counter()

        def count(rec) -> None:  # type: ignore[no-untyped-def]
            if rec.kind == ANOMALY:
                codes[rec.code] += 1

        result = replay(path, fan_out([inv, count]), on_new_scope=inv.on_new_scope,
                        on_open=inv.on_open, on_event=inv.on_event)
    finally:
        os.unlink(path)
    outcomes = {o.name: o for o in inv.finish(result.last_ts)}
    # The model never breaks these, whatever the trace.
    for name in ("fifo", "conservation", "overshoot", "blocked-time"):
        assert outcomes[name].violations == 0, outcomes[name].first
    # These fire exactly once per record of their kind: no false alarm from the closure.
    assert outcomes["stranded"].violations == codes[STRANDED]
    assert outcomes["leak"].violations == codes[LEAK]
    assert outcomes["underflow"].violations == codes[UNDERFLOW] == 0
    assert outcomes["conformance"].violations == sum(codes[c] for c in CONFORMANCE_CODES)


@pytest.mark.parametrize(("text", "seconds"), [
    (30, 30.0), (1.5, 1.5), ("250ms", 0.25), ("1.5s", 1.5), ("2m", 120.0), ("1h", 3600.0),
    ("7", 7.0)])
def test_parse_duration(text: object, seconds: float) -> None:
    assert parse_duration(text) == seconds


@pytest.mark.parametrize("bad", ["soon", "-1s", True, -3, "1d"])
def test_parse_duration_refuses(bad: object) -> None:
    with pytest.raises(ValueError):
        parse_duration(bad)


def test_number_specs() -> None:
    assert NumberSpec(COUNT, value=3).accepts(3) and not NumberSpec(COUNT, value=3).accepts(4)
    assert NumberSpec(COUNT, min=1, max=3).accepts(3)
    assert not NumberSpec(COUNT, min=1, max=3).accepts(0)
    assert NumberSpec(NUMBER, value=2.0, tolerance=0.1).accepts(2.09)
    assert not NumberSpec(NUMBER, value=2.0, tolerance=0.1).accepts(2.11)
    assert NumberSpec(NUMBER, value=100.0, rel_tolerance=0.01).accepts(100.9)
    assert NumberSpec(NUMBER, value=0.1 + 0.2).accepts(0.3)  # floats compare closely
    assert not NumberSpec(NUMBER, max=1.0).accepts(None)  # no global budget: nothing to bound
