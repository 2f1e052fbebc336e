"""Breaking the model on purpose (monkeypatched in the test only) makes specific checks fail,
with messages that point at the cause."""

from __future__ import annotations

import json
from collections import deque
from pathlib import Path
from typing import Any

import pytest

from budget.decisions import LEAK, STRANDED
from budget.engine import Engine
from budget.global_budget import GlobalBudget
from cli.main import main

ROOT = Path(__file__).resolve().parent.parent
SAMPLES = ROOT / "traces" / "samples"
CASES = Path(__file__).resolve().parent / "data" / "cases"


def check(capsys: pytest.CaptureFixture[str], *paths: Path) -> tuple[int, dict[str, Any]]:
    with pytest.raises(SystemExit) as exc:
        main(["check", "--format", "json", *map(str, paths)])
    out, _ = capsys.readouterr()
    doc = json.loads(out)
    return exc.value.code, {t["name"]: t for t in doc["tests"]}


def failed(test: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {f["name"]: f for f in test["failures"]}


class _Stack(deque):
    """A queue whose head is its newest entry: wake rounds become LIFO."""

    def popleft(self) -> Any:
        return self.pop()


@pytest.fixture
def lifo_wakes(monkeypatch: pytest.MonkeyPatch) -> None:
    init = GlobalBudget.__init__

    def lifo_init(self: GlobalBudget, *args: Any, **kwargs: Any) -> None:
        init(self, *args, **kwargs)
        self._queue = _Stack()

    monkeypatch.setattr(GlobalBudget, "__init__", lifo_init)


def finish_without_drain(self: Engine) -> None:
    """Engine.finish with the drain dropped: leaks and stranded are still reported."""
    if self.finished:
        return
    self.finished = True
    if self.last_ts is None:
        return
    self.cause.line = None
    for s in self.scopes.values():
        for d in s.dispatchers.values():
            if d.removed and d.dmls:
                s.report.anomaly(LEAK, d.id)
    for s in self.scopes.values():
        for d in s.dispatchers.values():
            if d.paused and not d.removed:
                s.report.anomaly(STRANDED, d.id)


def test_unbroken_model_passes(capsys: pytest.CaptureFixture[str]) -> None:
    status, tests = check(capsys, SAMPLES)
    assert status == 0
    assert all(t["status"] == "passed" for t in tests.values())


@pytest.mark.usefixtures("lifo_wakes")
def test_lifo_wake_order_breaks_fifo(capsys: pytest.CaptureFixture[str]) -> None:
    status, tests = check(capsys, SAMPLES)
    assert status == 1
    fifo = failed(tests["global budget queues 120 tables and wakes them FIFO"])
    assert {"fifo", "expect.wake_order"} <= set(fifo)
    msg = fifo["fifo"]["message"]
    assert msg.startswith("global wake of dispatcher t072 (queued #120 at line 184) while t107, "
                          "queued earlier (#1 at line 65), was still waiting: not FIFO "
                          "(round 1, position 1)")
    assert fifo["fifo"]["line"] == 486  # the release that ran the first wake round
    assert fifo["fifo"]["path"].endswith("many-tables.jsonl")
    # Scenarios without global wakes are untouched.
    for name in ("hot table is held by its own budget only", "legacy sink pauses after every "
                 "batch", "without the global budget nothing blocks"):
        assert tests[name]["status"] == "passed", name
    # Every scenario with global wake rounds notices.
    for name in ("per budget hands the hot table over to the global queue", "redo scope",
                 "cloud-storage scope", "one wake round of 64 strands the other 36 tables"):
        assert "fifo" in failed(tests[name]), name


def test_dropping_the_drain_breaks_liveness_and_conservation(
        capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(Engine, "finish", finish_without_drain)
    status, tests = check(capsys, SAMPLES)
    assert status == 1
    leak = failed(tests["removed tables leak their in-flight bytes"])
    assert set(leak) == {"stranded", "conservation", "expect.waiting", "expect.wakes_global",
                         "expect.anomalies.stranded"}
    assert leak["stranded"]["message"].startswith(
        "dispatcher live-0, paused at line 11 (ts 0.2), is still paused after the end-of-trace "
        "drain: stranded (10 violations in all)")
    assert leak["conservation"]["message"].startswith(
        "after the end-of-trace drain global in-flight is 72.0 MiB and 18 DML(s) were never "
        "released")
    assert (leak["expect.waiting"]["expected"], leak["expect.waiting"]["got"]) == ("10", "0")
    mixed = failed(tests["cloud-storage changefeed"])
    assert set(mixed) == {"conservation"}
    # Traces that end with nothing in flight do not depend on the drain.
    assert tests["global budget queues 120 tables and wakes them FIFO"]["status"] == "passed"


def test_skipping_all_end_of_trace_work_is_caught(capsys: pytest.CaptureFixture[str],
                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(Engine, "finish", lambda self: None)
    status, tests = check(capsys, CASES / "03-stranded.jsonl")
    assert status == 1
    stranded = failed(tests["03-stranded.jsonl"])["stranded"]
    assert stranded["message"] == ("dispatcher t3, paused at line 5 (ts 0.3), was neither woken "
                                   "nor reported stranded at the end of the trace (did the drain "
                                   "run?) (2 violations in all)")
    assert stranded["line"] == 5


def test_releasing_the_wrong_amount_breaks_conservation(capsys: pytest.CaptureFixture[str],
                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    on_flush = GlobalBudget.on_flush
    monkeypatch.setattr(GlobalBudget, "on_flush",
                        lambda self, eff: on_flush(self, eff - 2 if eff > 2 else eff))
    status, tests = check(capsys, CASES / "01-two-dispatchers-global.jsonl",
                          SAMPLES / "handoff.expect.toml")
    assert status == 1
    cons = failed(tests["01-two-dispatchers-global.jsonl"])["conservation"]
    first_flush = next(i for i, line in enumerate(
        (CASES / "01-two-dispatchers-global.jsonl").read_text().splitlines(), 1)
        if '"flush"' in line)
    assert cons["line"] == first_flush
    assert "global in-flight is" in cons["message"] and "were charged" in cons["message"]
    assert "conservation" in failed(tests["per budget hands the hot table over to the global "
                                          "queue"])


def test_rounds_larger_than_max_wake_break_fifo(capsys: pytest.CaptureFixture[str],
                                                monkeypatch: pytest.MonkeyPatch) -> None:
    init = GlobalBudget.__init__

    def greedy(self: GlobalBudget, high: int, low: int, max_wake: int, report: Any) -> None:
        init(self, high, low, max_wake * 2, report)

    monkeypatch.setattr(GlobalBudget, "__init__", greedy)
    status, tests = check(capsys, SAMPLES / "stranded.expect.toml")
    assert status == 1
    broken = failed(tests["one wake round of 64 strands the other 36 tables"])
    assert broken["fifo"]["message"].startswith(
        "wake round 1 at line 203 woke 65 dispatchers, more than max_wake_per_round (64)")
    # The invariant that must fail on this trace no longer does: that is reported too.
    assert broken["stranded"]["message"] == ("invariant stranded was expected to fail on this "
                                             "trace but held")
