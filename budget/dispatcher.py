"""Per-dispatcher behaviour: the in-flight budget (Option A and Phase 1) and the legacy pause.

A dispatcher's *path* is paused when the dynamic stream would stop delivering to it; only a wake
resumes it. The per-dispatcher budget holds it with ``blocked``, the global budget with
``global_blocked``; it is resumed only when neither holds it.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from budget.decisions import UNDERFLOW

if TYPE_CHECKING:
    from budget.global_budget import GlobalBudget
    from budget.report import Reporter

DmlId = int | str


class Dispatcher:
    """State shared by every policy: in-flight DMLs (id → (seq, effective bytes)) and the pause."""

    __slots__ = ("id", "dmls", "inflight", "paused", "paused_since", "removed", "blocked",
                 "blocked_since", "_report")

    def __init__(self, dispatcher_id: str, report: Reporter) -> None:
        self.id = dispatcher_id
        self.dmls: dict[DmlId, tuple[int, int]] = {}
        self.inflight = 0
        self.paused = False
        self.paused_since = 0.0
        self.removed = False
        self.blocked = False
        self.blocked_since = 0.0
        self._report = report

    def _pause(self) -> None:
        if not self.paused:
            self.paused = True
            self.paused_since = self._report.cause.ts

    def _resume(self, by: str, round: int | None = None, position: int | None = None) -> None:
        self.paused = False
        self._report.wake(self.id, by, self._report.cause.ts - self.paused_since, round, position)

    # Policy hooks --------------------------------------------------------------------------
    def track(self, dml_id: DmlId, eff: int, seq: int) -> None:
        raise NotImplementedError

    def after_batch(self) -> None:
        raise NotImplementedError

    def flush(self, dml_id: DmlId) -> bool:
        """Apply the DML's post-flush callback; False when it is not in flight."""
        raise NotImplementedError

    def remove(self) -> None:
        self.removed = True
        self.blocked = False
        self.paused = False


class BudgetedDispatcher(Dispatcher):
    """Option A (``global_budget`` set) or the per-dispatcher budget alone (``None``)."""

    __slots__ = ("global_blocked", "per_low", "per_high", "glob")

    def __init__(self, dispatcher_id: str, report: Reporter, per_low: int, per_high: int,
                 glob: GlobalBudget | None) -> None:
        super().__init__(dispatcher_id, report)
        self.global_blocked = False
        self.per_low = per_low
        self.per_high = per_high
        self.glob = glob

    def track(self, dml_id: DmlId, eff: int, seq: int) -> None:
        self.dmls[dml_id] = (seq, eff)
        before = self.inflight
        after = before + eff
        self.inflight = after
        if before < self.per_high <= after:
            self._report.cross("per", "high", "up", after, self.id)
        glob = self.glob
        if glob is not None:
            glob.on_enqueue(eff)

    def after_batch(self) -> None:
        """Try block, after a handled batch with at least one DML (SPEC section 2, step 2)."""
        glob = self.glob
        if self.inflight >= self.per_high:
            # The global budget is not consulted when the dispatcher's own budget holds it.
            if not self.blocked:
                self.blocked = True
                self.blocked_since = self._report.cause.ts
            self._pause()
            self._report.block(self.id, "per", self.inflight,
                               glob.inflight if glob is not None else 0)
        elif self._global_try_block():
            self.global_blocked = True
            self._pause()
            self._report.block(self.id, "global", self.inflight,
                               glob.inflight)  # type: ignore[union-attr]

    def flush(self, dml_id: DmlId) -> bool:
        """The DML's post-flush callback, in the reference's order (SPEC section 2, step 4).

        Returns False, doing nothing, when the DML is not in flight.
        """
        entry = self.dmls.pop(dml_id, None)
        if entry is None:
            return False
        eff = entry[1]
        before = self.inflight
        after = before - eff
        if after < 0:
            self._report.anomaly(UNDERFLOW, self.id,
                                 f"per-dispatcher in-flight {before} - {eff} < 0")
            after = 0
        self.inflight = after
        if before > self.per_low >= after:
            self._report.cross("per", "low", "down", after, self.id)
        glob = self.glob
        if glob is not None:
            glob.on_flush(eff)
        if self.blocked and after <= self.per_low:
            self.blocked = False
            if self.global_blocked:
                return True  # the global queue will wake it
            if self._global_try_block():
                self.global_blocked = True
                self._report.handoff(self.id, after, glob.inflight)  # type: ignore[union-attr]
            else:
                self._resume("per")
        return True

    def _global_try_block(self) -> bool:
        """Ask the global budget to hold this dispatcher (policies may ask differently)."""
        glob = self.glob
        return glob is not None and glob.try_block(self.id, self._global_wake)

    def _global_wake(self, round_no: int, position: int) -> bool:
        if not self.global_blocked:
            return False
        self.global_blocked = False
        if self.blocked:
            return False  # a global wake does not resume what the per budget still holds
        self._resume("global", round_no, position)
        return True

    def remove(self) -> None:
        if self.glob is not None:
            self.glob.cleanup_dispatcher(self.id)
        self.global_blocked = False
        super().remove()


class LegacyDispatcher(Dispatcher):
    """Non-budget sinks: every handled batch pauses the path until all its DMLs are flushed."""

    __slots__ = ()

    def track(self, dml_id: DmlId, eff: int, seq: int) -> None:
        self.dmls[dml_id] = (seq, eff)
        self.inflight += eff

    def after_batch(self) -> None:
        if not self.blocked:
            self.blocked = True
            self.blocked_since = self._report.cause.ts
        self._pause()
        self._report.block(self.id, "legacy")

    def flush(self, dml_id: DmlId) -> bool:
        entry = self.dmls.pop(dml_id, None)
        if entry is None:
            return False
        self.inflight -= entry[1]
        if not self.dmls and self.blocked:
            self.blocked = False
            self._resume("legacy")
        return True
