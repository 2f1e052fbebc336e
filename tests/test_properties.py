"""Property-based tests over random operation sequences (hypothesis).

For any sequence of enqueues, flushes and removals: global in-flight equals the sum of what its
dispatchers were charged; nothing goes negative without an underflow report; every wake resumes
a paused dispatcher exactly once; global wakes come out in registration order; replay is
deterministic; after the drain, exactly the still-paused dispatchers are reported stranded.
"""

from __future__ import annotations

from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from budget.config import BudgetConfig
from budget.decisions import Decision
from budget.engine import Engine

DISPATCHERS = [f"d{i}" for i in range(6)]

op = st.one_of(
    st.tuples(st.just("enq"), st.sampled_from(DISPATCHERS),
              st.lists(st.integers(0, 60), min_size=0, max_size=3)),
    st.tuples(st.just("flush"), st.sampled_from(DISPATCHERS), st.integers(0, 5)),
    st.tuples(st.just("flush"), st.sampled_from(DISPATCHERS), st.integers(0, 5)),
    st.tuples(st.just("remove"), st.sampled_from(DISPATCHERS), st.none()),
)
configs = st.fixed_dictionaries({
    "per_low": st.integers(1, 80),
    "per_high": st.integers(40, 200),
    "area_quota": st.integers(0, 900),
    "max_wake_per_round": st.integers(1, 4),
    "policy": st.sampled_from(["option-a", "option-a", "per-dispatcher"]),
})
sinks = st.sampled_from(["cloudstorage", "redo", "mysql"])


class Checker:
    """Runs the ops and checks the invariants after every one of them."""

    def __init__(self, config: dict[str, Any], sink: str) -> None:
        self.records: list[Decision] = []
        self.engine = Engine(BudgetConfig().merged(config), self._on_record)
        self.sink = sink
        self.scope = self.engine.scope("ns/cf", sink)
        self.paused: dict[str, float] = {}
        self.registration: dict[str, int] = {}
        self.next_reg = 0
        self.last_global_wake_reg = -1
        self.next_id = 0

    def _on_record(self, r: Decision) -> None:
        self.records.append(r)
        d = r.dispatcher or ""
        if r.kind == "block":
            self.paused.setdefault(d, r.ts)
            if r.by == "global" and d not in self.registration:
                self._register(d)
        elif r.kind == "handoff":
            self._register(d)  # the global budget takes it over: a new place at the tail
        elif r.kind == "wake":
            assert r.dispatcher in self.paused, f"wake of {r.dispatcher}, which is not paused"
            assert abs(r.ts - self.paused.pop(r.dispatcher or "") - (r.blocked_for or 0)) < 1e-9
            if r.by == "global":
                reg = self.registration.pop(d)
                assert reg > self.last_global_wake_reg, "global wakes out of FIFO order"
                self.last_global_wake_reg = reg

    def _register(self, d: str) -> None:
        self.registration[d] = self.next_reg
        self.next_reg += 1

    def run(self, ops: list[tuple[str, str, Any]]) -> None:
        t = 0.0
        for kind, d, arg in ops:
            t += 0.5
            disp = self.scope.dispatchers.get(d)
            if kind == "enq":
                dmls = []
                for size in arg:
                    self.next_id += 1
                    dmls.append((self.next_id, size))
                self.engine.enqueue(t, None, "ns/cf", self.sink, d, dmls)
            elif kind == "flush":
                ids = list(disp.dmls) if disp is not None else []
                dml_id = ids[arg % len(ids)] if ids else -1
                self.engine.flush(t, None, "ns/cf", self.sink, d, dml_id)
            else:
                self.engine.remove(t, None, "ns/cf", self.sink, d)
                self.paused.pop(d, None)
                self.registration.pop(d, None)
            self.check_state()
        self.engine.finish()
        self.check_state()
        stranded = {r.dispatcher for r in self.records if r.code == "stranded"}
        assert stranded == set(self.paused)
        assert all(not d.dmls for d in self.scope.dispatchers.values())

    def check_state(self) -> None:
        s = self.scope
        mult = s.limits.multiplier
        for d in s.dispatchers.values():
            assert d.inflight >= 0
            assert d.inflight == sum(eff for _seq, eff in d.dmls.values())
            assert all(mult == 0 or eff % mult == 0 for _s, eff in d.dmls.values())
            if not d.removed:
                assert d.paused == (d.id in self.paused)
        if s.glob is not None:
            assert s.glob.inflight == sum(d.inflight for d in s.dispatchers.values())
            assert s.glob.inflight >= 0
        assert not [r for r in self.records if r.code == "underflow"]


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(configs, sinks, st.lists(op, max_size=60))
def test_invariants_hold_on_random_sequences(config: dict[str, Any], sink: str,
                                             ops: list[tuple[str, str, Any]]) -> None:
    Checker(config, sink).run(ops)


@settings(max_examples=100, deadline=None)
@given(configs, sinks, st.lists(op, max_size=40))
def test_replay_is_deterministic(config: dict[str, Any], sink: str,
                                 ops: list[tuple[str, str, Any]]) -> None:
    a, b = Checker(config, sink), Checker(config, sink)
    a.run(ops)
    b.run(ops)
    assert a.records == b.records


def test_checker_catches_a_lifo_wake_round(monkeypatch: Any) -> None:
    """The FIFO invariant can fail: reverse the order a round wakes in and it must."""
    from budget.global_budget import GlobalBudget

    def lifo_round(self: GlobalBudget) -> None:
        taken = []
        while self._queue and len(taken) < self.max_wake:
            entry = self._blocked.pop(self._queue.popleft(), None)
            if entry is not None:
                taken.append(entry[0])
        for i, wake in enumerate(reversed(taken)):
            wake(1, i + 1)

    monkeypatch.setattr(GlobalBudget, "_wake_round", lifo_round)
    ops = [("enq", "d0", [60]), ("enq", "d1", [1]), ("enq", "d2", [1]), ("flush", "d0", 0)]
    try:
        Checker({"per_low": 50, "per_high": 200, "area_quota": 200, "max_wake_per_round": 4},
                "cloudstorage").run(ops)
    except AssertionError as e:
        assert "FIFO" in str(e)
    else:
        raise AssertionError("a LIFO wake round went unnoticed")
