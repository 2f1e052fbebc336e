"""Policy admission: admission before a batch, headroom-sized rounds, and it never strands."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from budget.admission import admit
from budget.config import BudgetConfig
from budget.decisions import BLOCK, STRANDED, WAKE, Decision
from budget.engine import Engine
from traces.replay import replay

CF, SINK = "cf", "cloudstorage"


def engine(**cfg: object) -> tuple[Engine, list[Decision]]:
    recs: list[Decision] = []
    base = {"policy": "admission", "global_high": 100, "global_low": 50, "per_high": 1000,
            "per_low": 500, "multiplier": 1}
    base.update(cfg)
    return Engine(BudgetConfig().merged(base), recs.append), recs


def test_batch_arriving_at_or_above_high_waits_and_queues() -> None:
    e, recs = engine()
    assert admit(e, 0.0, CF, SINK, "a", 60)
    e.enqueue(0.0, 1, CF, SINK, "a", [(1, 60)])
    assert admit(e, 0.1, CF, SINK, "b", 50)
    e.enqueue(0.1, 2, CF, SINK, "b", [(1, 50)])  # crosses high: b is held after its batch
    assert [r.dispatcher for r in recs if r.kind == BLOCK] == ["b"]
    # c was running, global is at 110 ≥ high: its batch is refused before it is tracked.
    assert not admit(e, 0.2, CF, SINK, "c", 10)
    assert e.scopes[(CF, SINK)].glob.inflight == 110
    assert e.scopes[(CF, SINK)].glob.queued() == ["b", "c"]


def test_newcomer_does_not_overtake_waiters_below_high() -> None:
    e, recs = engine()
    e.enqueue(0.0, 1, CF, SINK, "a", [(1, 120)])  # a held
    e.flush(0.1, 2, CF, SINK, "a", 1)  # to 0: a is woken with a grant
    assert [r.dispatcher for r in recs if r.kind == WAKE] == ["a"]
    e.enqueue(0.2, 3, CF, SINK, "b", [(1, 120)])  # b held
    e.enqueue(0.2, 4, CF, SINK, "x", [(1, 10)])  # x pushes a... x held too (≥ high)
    e.flush(0.3, 5, CF, SINK, "b", 1)  # 10 in flight ≤ low: round wakes b (est 120) only
    glob = e.scopes[(CF, SINK)].glob
    assert glob.inflight == 10
    assert glob.queued() == ["x"]
    assert not admit(e, 0.3, CF, SINK, "new", 1)  # x waits, so a newcomer queues behind it


def test_round_is_sized_to_the_headroom() -> None:
    e, recs = engine(max_wake_per_round=64)
    e.enqueue(0.0, 1, CF, SINK, "a", [(1, 45)])  # runs on: 45 < high
    e.enqueue(0.0, 2, CF, SINK, "f", [(1, 60)])  # 105 ≥ high: f is held after its batch
    for i in range(10):
        assert not admit(e, 0.1, CF, SINK, f"w{i}", 10)  # each waits with a 10-byte batch
    e.remove(0.2, 3, CF, SINK, "f")  # f's queue entry becomes a tombstone; its bytes stay
    e.flush(0.3, 4, CF, SINK, "f", 1)  # 45 in flight: headroom 55 fits five 10-byte batches
    woken = [(r.dispatcher, r.round, r.position) for r in recs if r.kind == WAKE]
    assert woken == [(f"w{i}", 1, i + 1) for i in range(5)]
    # Granted: their batches go in without a check, and the rest still wait in FIFO order.
    assert admit(e, 0.3, CF, SINK, "w0", 10)
    assert e.scopes[(CF, SINK)].glob.queued() == [f"w{i}" for i in range(5, 10)]


@pytest.mark.parametrize("waiters", [65, 200, 1000])
def test_never_strands_more_than_max_wake_waiters(tmp_path, waiters: int) -> None:
    # The reference strands all but 64 here (the shape of SPEC's stranded example).
    lines = ['{"type":"header","version":1,"changefeed":"cf","sink":"redo",'
             '"config":{"area_quota":1073741824}}',
             '{"type":"enqueue","ts":0,"dispatcher":"bulk","id":1,"bytes":314572800}']
    for i in range(waiters):
        lines.append(f'{{"type":"enqueue","ts":0.1,"dispatcher":"t{i}","id":1,"bytes":4096}}')
    for i in range(waiters):
        lines.append(f'{{"type":"flush","ts":1,"dispatcher":"t{i}","id":1}}')
    lines.append('{"type":"flush","ts":2,"dispatcher":"bulk","id":1}')
    path = tmp_path / "s.jsonl"
    path.write_text("\n".join(lines) + "\n")
    for policy, stranded in (("option-a", waiters - 64), ("admission", 0)):
        recs: list[Decision] = []
        replay(str(path), recs.append, {"policy": policy})
        assert sum(r.code == STRANDED for r in recs) == stranded
        if policy == "admission":
            woken = [r.dispatcher for r in recs
                     if r.kind == WAKE and not r.drain and r.dispatcher != "bulk"]
            assert woken == [f"t{i}" for i in range(waiters)]  # FIFO, all at the last release


ops = st.lists(st.tuples(st.sampled_from(["arrive", "flush", "remove"]),
                         st.integers(0, 79), st.integers(1, 60)), max_size=120)


@settings(max_examples=150, deadline=None)
@given(ops, st.integers(1, 8))
def test_no_waiter_survives_the_drain(script, max_wake) -> None:
    """Whatever happens, after the drain nobody is stranded and global in-flight is 0."""
    e, recs = engine(max_wake_per_round=max_wake)
    t = 0.0
    inflight: dict[str, list[int]] = {}
    next_id = 0
    for op, who, size in script:
        t += 0.01
        d = f"d{who % 12}"
        if op == "arrive":
            if admit(e, t, CF, SINK, d, size):
                next_id += 1
                e.enqueue(t, None, CF, SINK, d, [(next_id, size)])
                inflight.setdefault(d, []).append(next_id)
        elif op == "flush" and inflight.get(d):
            e.flush(t, None, CF, SINK, d, inflight[d].pop(0))
        elif op == "remove":
            e.remove(t, None, CF, SINK, d)
    e.finish()
    assert not [r for r in recs if r.code == STRANDED]
    glob = e.scopes[(CF, SINK)].glob if (CF, SINK) in e.scopes else None
    if glob is not None:
        assert glob.inflight == 0 and glob.blocked_count == 0


def test_admission_bounds_overshoot_in_closed_loop() -> None:
    from io import BytesIO

    from traces.generator import generate, options_for
    from traces.simulate import simulate

    buf = BytesIO()
    generate(buf, options_for("many-tables", dispatchers=300, rate=400.0, duration=2.0,
                              area_quota=64 << 20, offered=True), seed=3)
    import tempfile
    with tempfile.NamedTemporaryFile(suffix=".jsonl") as f:
        f.write(buf.getvalue())
        f.flush()
        base = {"per_high": 128 << 20, "per_low": 64 << 20}
        a = simulate(f.name, lambda r: None, {**base, "policy": "option-a"})
        b = simulate(f.name, lambda r: None, {**base, "policy": "admission"})
    assert a.overshoot > 2.0
    assert b.overshoot < 1.5  # bounded by one batch past high
