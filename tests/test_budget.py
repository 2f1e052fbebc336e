"""The model, call by call: the plan's Task 1 cases, the per-dispatcher budget, the weak spots."""

from __future__ import annotations

from model_harness import Harness

from budget.config import BudgetConfig, parse_size
from budget.decisions import Cause
from budget.global_budget import GlobalBudget
from budget.report import Reporter


def _global(high: int = 100, low: int = 50, max_wake: int = 64):  # type: ignore[no-untyped-def]
    records: list = []
    cause = Cause()
    g = GlobalBudget(high, low, max_wake, Reporter("ns/cf", "cloudstorage", cause, records.append))
    return g, cause, records


class TestGlobalBudgetApi:
    """The plan's API: on_enqueue, try_block, on_flush, cleanup_dispatcher."""

    def test_blocks_only_at_or_above_high(self) -> None:
        g, _, _ = _global()
        g.on_enqueue(99)
        assert not g.try_block("a", lambda r, p: True)
        g.on_enqueue(1)
        assert g.try_block("a", lambda r, p: True)
        assert g.blocked_count == 1

    def test_second_registration_keeps_first_position(self) -> None:
        g, cause, _ = _global()
        g.on_enqueue(100)
        order: list[str] = []
        for d in ("a", "b", "a"):
            g.try_block(d, lambda r, p, d=d: order.append(d) or True)
        assert g.blocked_count == 2
        assert g.queued() == ["a", "b"]
        g.on_flush(100)
        assert order == ["a", "b"]

    def test_wakes_only_when_release_ends_at_or_below_low(self) -> None:
        g, _, _ = _global()
        g.on_enqueue(120)
        woken: list[str] = []
        g.try_block("a", lambda r, p: woken.append("a") or True)
        g.on_flush(60)  # 60 > low
        assert woken == []
        g.on_flush(10)  # 50 == low
        assert woken == ["a"]
        assert g.blocked_count == 0

    def test_cleanup_removes_dispatcher_and_wakes_nobody(self) -> None:
        g, _, _ = _global()
        g.on_enqueue(100)
        woken: list[str] = []
        g.try_block("a", lambda r, p: woken.append("a") or True)
        g.try_block("b", lambda r, p: woken.append("b") or True)
        g.cleanup_dispatcher("a")
        assert woken == []
        assert g.queued() == ["b"]
        g.on_flush(100)
        assert woken == ["b"]

    def test_round_wakes_at_most_max_and_skips_tombstones(self) -> None:
        g, _, _ = _global(max_wake=2)
        g.on_enqueue(100)
        woken: list[str] = []
        for d in "abcde":
            g.try_block(d, lambda r, p, d=d: woken.append(d) or True)
        g.cleanup_dispatcher("b")
        g.on_flush(100)
        assert woken == ["a", "c"]  # the tombstone for b does not count
        g.on_enqueue(1)
        g.on_flush(1)
        assert woken == ["a", "c", "d", "e"]

    def test_round_numbers_and_positions(self) -> None:
        g, _, _ = _global(max_wake=2)
        g.on_enqueue(100)
        seen: list[tuple[str, int, int]] = []
        for d in "abc":
            g.try_block(d, lambda r, p, d=d: seen.append((d, r, p)) or True)
        g.on_flush(100)
        g.on_enqueue(1)
        g.on_flush(1)
        assert seen == [("a", 1, 1), ("b", 1, 2), ("c", 2, 1)]

    def test_underflow_is_clamped_and_reported(self) -> None:
        g, _, records = _global()
        g.on_enqueue(10)
        g.on_flush(30)
        assert g.inflight == 0
        assert [r.code for r in records if r.kind == "anomaly"] == ["underflow"]

    def test_100000_waiters_stay_linear(self) -> None:
        """A quadratic queue would not finish: 100,000 waiters, woken 64 at a time."""
        g, _, _ = _global(high=100, low=50, max_wake=64)
        g.on_enqueue(100)
        woken = []
        for i in range(100_000):
            g.try_block(f"d{i}", lambda r, p, i=i: woken.append(i) or True)
        for i in range(0, 100_000, 3):
            g.cleanup_dispatcher(f"d{i}")
        g.on_flush(100)  # the first round; later ones run on every release ending at 0
        while g.blocked_count:
            g.on_enqueue(1)
            g.on_flush(1)
        assert woken == [i for i in range(100_000) if i % 3]


class TestDispatcherScenarios:
    """Per-dispatcher budget and its interplay with the global one (SPEC section 2)."""

    def test_no_block_below_high_block_at_high(self) -> None:
        h = Harness(per_low=100, per_high=200, area_quota=10_000)
        h.enqueue("a", 99)  # 198 effective
        assert not h.paused("a")
        h.enqueue("a", 1)  # 200 effective: at high
        assert h.paused("a")
        assert [r.by for r in h.kinds("block")] == ["per"]

    def test_no_wake_until_at_or_below_low(self) -> None:
        h = Harness(per_low=100, per_high=200, area_quota=10_000)
        ids = h.enqueue("a", 60, 60)  # 240
        h.flush("a", ids[0])  # 120 > low
        assert h.paused("a")
        h.flush("a", ids[1])  # 0
        assert not h.paused("a")
        assert h.wakes("per") == ["a"]

    def test_handoff_to_the_global_budget(self) -> None:
        h = Harness(per_low=100, per_high=200, area_quota=1000)  # global high 500, low 250
        a = h.enqueue("a", 60, 60)  # per blocks a; global 240
        h.enqueue("big", 200)  # per-blocked; global 640
        h.flush("a", a[0])
        h.flush("a", a[1])  # a's own budget releases it, but global 400 >= ... not >= 500
        # global 400 is below high: a is simply woken
        assert h.wakes() == ["a"]
        h2 = Harness(per_low=100, per_high=200, area_quota=1000)
        a = h2.enqueue("a", 60, 60)
        h2.enqueue("big", 300)  # global 840
        h2.flush("a", a[0])
        h2.flush("a", a[1])  # global 600 >= 500: handoff
        assert [r.kind for r in h2.records if r.dispatcher == "a"][-1] == "handoff"
        assert h2.paused("a")
        h2.flush("big", 1)  # global 0: round wakes a by global
        assert h2.wakes("global") == ["a"]

    def test_global_wake_while_per_budget_holds_does_not_resume(self) -> None:
        h = Harness(per_low=100, per_high=200, area_quota=1000)
        h.enqueue("big", 250)  # per-blocked, global 500 (high)
        h.enqueue("x", 10)  # global-blocked, global 520
        x2 = h.enqueue("x", 100)  # enqueue while paused: per 220 >= 200 → per holds it too
        h.flush("big", 1)  # global 220 <= low: the round takes x but may not resume it
        assert h.paused("x")
        assert "x" not in h.wakes()
        h.flush("x", x2[0])  # per 20 <= low: per releases, global is below high → wake by per
        assert h.wakes() == ["big", "x"]
        assert h.kinds("wake", dispatcher="x")[0].by == "per"

    def test_a_blocked_by_global_after_own_drain_woken_by_b(self) -> None:
        """The plan's integration case: A's own in-flight drained while the global budget still
        holds it; B's flush later brings global to low and wakes A."""
        h = Harness(per_low=100, per_high=200, area_quota=1000)  # global 500/250
        h.enqueue("b", 240)  # per-blocked b, global 480
        a = h.enqueue("a", 30)  # global 540 >= 500: a blocked by global
        assert h.kinds("block", dispatcher="a")[0].by == "global"
        h.flush("a", a[0])  # a's own in-flight is now 0, global 480: a stays queued
        assert h.paused("a") and h.scope.dispatchers["a"].inflight == 0
        h.tick()
        h.flush("b", 1)  # global 0: round wakes a, then b's own budget wakes b
        assert h.wakes() == ["a", "b"]
        wake_a = h.kinds("wake", dispatcher="a")[0]
        assert (wake_a.by, wake_a.round, wake_a.position, wake_a.blocked_for) == \
            ("global", 1, 1, 1.0)

    def test_more_than_64_waiters_are_stranded(self) -> None:
        h = Harness(area_quota=2000)  # global high 1000, low 500, 64 wakes per round
        h.enqueue("bulk", 600)  # 1200 effective
        for i in range(100):
            h.enqueue(f"t{i}", 1)
        for i in range(100):
            h.flush(f"t{i}", 1)  # 1200, no round: still above low
        h.tick()
        h.flush("bulk", 1)  # 0: one round of 64
        assert len(h.wakes("global")) == 64
        h.finish()
        stranded = [r.dispatcher for r in h.kinds("anomaly", code="stranded")]
        assert stranded == [f"t{i}" for i in range(63, 100)]  # bulk + t0..t62 were woken

    def test_removed_dispatcher_leaks_until_drain(self) -> None:
        h = Harness(per_low=100, per_high=200, area_quota=400)  # global 200/100
        h.enqueue("gone", 100)  # 200: at its own high and at global high: held by its own
        h.enqueue("w", 5)  # 210: blocked by global
        h.remove("gone")
        h.finish()
        assert [r.code for r in h.kinds("anomaly")] == ["leak"]
        drain = [(r.kind, r.dispatcher) for r in h.records if r.drain]
        # gone's own budget falls to low, global falls to low, and the round wakes w
        assert drain == [("cross", "gone"), ("cross", None), ("wake", "w")]

    def test_legacy_pauses_every_batch_until_all_flushed(self) -> None:
        h = Harness(sink="mysql")
        ids = h.enqueue("m", 10, 10)
        assert h.paused("m")
        h.flush("m", ids[0])
        assert h.paused("m")
        h.flush("m", ids[1])
        assert not h.paused("m")
        assert [(r.kind, r.by) for r in h.records] == [("block", "legacy"), ("wake", "legacy")]
        assert h.records[0].per_inflight is None


class TestConfig:
    def test_derived_global_watermarks(self) -> None:
        lim = BudgetConfig().limits_for("cloudstorage")
        assert (lim.global_high, lim.global_low) == (512 << 20, 256 << 20)
        lim = BudgetConfig(area_quota=200).limits_for("redo")
        assert (lim.global_high, lim.global_low) == (100, 50)
        lim = BudgetConfig(area_quota=0).limits_for("redo")
        assert lim.global_high == 4 * (128 << 20)

    def test_redo_split(self) -> None:
        cfg = BudgetConfig(memory_quota=1000, redo_percentage=30, per_high=10_000)
        assert cfg.limits_for("redo").global_high == 150
        assert cfg.limits_for("cloudstorage").global_high == 350
        assert BudgetConfig(memory_quota=1000, per_high=10_000).limits_for("redo").global_high \
            == 500

    def test_explicit_watermarks_and_disabled(self) -> None:
        lim = BudgetConfig(global_high=300).limits_for("cloudstorage")
        assert (lim.global_high, lim.global_low, lim.global_enabled) == (300, 150, True)
        for high, low in ((0, 10), (100, 0), (100, 100), (100, 200)):
            lim = BudgetConfig(global_high=high, global_low=low).limits_for("cloudstorage")
            assert not lim.global_enabled
            assert lim.why_global_disabled()

    def test_policy_per_sink(self) -> None:
        cfg = BudgetConfig(policy="per-dispatcher")
        assert cfg.policy_for("redo") == "per-dispatcher"
        assert cfg.policy_for("kafka") == "legacy"

    def test_parse_size(self) -> None:
        assert parse_size("64MiB") == 64 << 20
        assert parse_size("512MB") == 512_000_000
        assert parse_size("1GiB") == 1 << 30
        assert parse_size("1.5Ki") == 1536
        assert parse_size("12345") == 12345
        for bad in ("12 parsecs", "", "MiB", "1.3B"):
            try:
                parse_size(bad)
            except ValueError:
                continue
            raise AssertionError(f"accepted {bad!r}")
