"""Policy ``admission``: Option A's structure (per budget, global FIFO) without its weak spots.

Option A decides after a batch is tracked, so every dispatcher that is not paused gets one more
batch in however full the global budget is, and a round then wakes up to 64 dispatchers at once:
a start-up of thousands of tables overshoots ``high`` many times over. Its rounds also stop at 64
and run only on a release, so waiters left when nothing is in flight are stranded. This policy:

* **admits before a batch**: a batch that arrives while global in-flight ≥ high, or while others
  already wait (FIFO: newcomers do not overtake), waits, and its dispatcher joins the queue. Only a
  closed loop can hold a batch back, so the simulator asks :func:`admit` before it delivers one;
  a replay of a recorded trace cannot delay what was recorded and sees only the checks below;
* keeps Option A's checks after a batch (per budget first, then the global one) and its hand-off;
* sizes rounds to the headroom: a round (still run when a release ends ≤ low) wakes waiters from
  the head while in-flight plus the bytes each woken one is expected to bring (the batch it waits
  with, else its last batch) stays below high, at most ``max wakes per round``. A woken dispatcher
  holds a *grant*: its next batch is admitted without a check, and its expected bytes are reserved
  until that batch is tracked or time moves on (so several releases at one instant do not spend
  the same headroom twice);
* never strands: when a release leaves nothing in flight no later release will come, so the round
  wakes every remaining waiter — without a grant, so each must pass admission again and memory
  stays bounded. Hence a waiter always has bytes in flight ahead of it, and the end-of-trace drain
  (which flushes everything) always empties the queue.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from budget.config import POLICY_ADMISSION
from budget.dispatcher import BudgetedDispatcher, DmlId
from budget.global_budget import GlobalBudget

if TYPE_CHECKING:
    from budget.engine import Engine
    from budget.report import Reporter

__all__ = ["POLICY_ADMISSION", "AdmissionBudget", "AdmissionDispatcher", "admit"]


class AdmissionBudget(GlobalBudget):
    """The global budget of policy ``admission``: headroom-sized rounds, grants, liveness."""

    __slots__ = ("_est", "_waiters", "reserved", "_reserved_ts")

    def __init__(self, high: int, low: int, max_wake: int, report: Reporter) -> None:
        super().__init__(high, low, max_wake, report)
        self._est: dict[str, int] = {}
        self._waiters: dict[str, AdmissionDispatcher] = {}
        #: Bytes promised to granted dispatchers that have not sent their batch yet.
        self.reserved = 0
        self._reserved_ts = 0.0

    @property
    def has_waiters(self) -> bool:
        return bool(self._blocked)

    def hold(self, d: AdmissionDispatcher, expected: int) -> None:
        """Queue ``d`` (keeping a first registration's position) with the bytes it will bring."""
        if d.id not in self._blocked:
            self._blocked[d.id] = (d._global_wake, self._report.cause.ts)
            self._queue.append(d.id)
            self._waiters[d.id] = d
        self._est[d.id] = max(expected, self._est.get(d.id, 0))

    def try_hold(self, d: AdmissionDispatcher, expected: int) -> bool:
        """Option A's global try-block, remembering the expected bytes for round sizing."""
        if self.inflight < self.high:
            return False
        self.hold(d, expected)
        return True

    def cleanup_dispatcher(self, dispatcher_id: str) -> None:
        super().cleanup_dispatcher(dispatcher_id)
        self._est.pop(dispatcher_id, None)
        self._waiters.pop(dispatcher_id, None)

    def release_reservation(self, amount: int, at: float) -> None:
        if amount and at == self._reserved_ts:
            self.reserved = max(0, self.reserved - amount)

    def on_flush(self, eff: int) -> None:
        # Option A runs rounds only at low (hysteresis); sized rounds can also use the headroom
        # between low and high as soon as it fits the next waiter's expected batch.
        super().on_flush(eff)
        if self.low < self.inflight < self.high and self._blocked:
            self._wake_round()

    def _wake_round(self) -> None:
        queue = self._queue
        if not queue:
            return
        ts = self._report.cause.ts
        if ts != self._reserved_ts:
            self.reserved = 0  # grants from an earlier instant no longer hold headroom
            self._reserved_ts = ts
        blocked = self._blocked
        projected = self.inflight + self.reserved
        # At or below low a round always wakes its head, however big its batch (progress);
        # above low only waiters whose expected bytes fit under high are woken.
        force = self.inflight <= self.low
        taken: list[tuple[AdmissionDispatcher, int | None]] = []
        while queue and len(taken) < self.max_wake and projected < self.high:
            d_id = queue[0]
            if d_id not in blocked:
                queue.popleft()  # a tombstone: skipped and dropped
                continue
            est = self._est.get(d_id, 0)
            if projected + est > self.high and not (force and not taken):
                break
            queue.popleft()
            del blocked[d_id]
            del self._est[d_id]
            projected += est
            taken.append((self._waiters.pop(d_id), est))
        if self.inflight == 0:
            # Nothing in flight: no release will ever run another round. Wake everyone left;
            # without a grant each goes through admission again, so memory stays bounded.
            while queue:
                d_id = queue.popleft()
                if blocked.pop(d_id, None) is not None:
                    self._est.pop(d_id, None)
                    taken.append((self._waiters.pop(d_id), None))
        round_no = self.rounds + 1
        woken = 0
        for d, est in taken:
            if est is not None:
                self.reserved += est
            if d.global_wake(round_no, woken + 1, est):
                woken += 1
        if woken:
            self.rounds = round_no


class AdmissionDispatcher(BudgetedDispatcher):
    """A dispatcher under policy ``admission`` (see the module docstring)."""

    __slots__ = ("granted", "reservation", "reserved_at", "last_batch", "_batch", "_open")

    def __init__(self, dispatcher_id: str, report: Reporter, per_low: int, per_high: int,
                 glob: AdmissionBudget | None) -> None:
        super().__init__(dispatcher_id, report, per_low, per_high, glob)
        self.granted = False
        self.reservation = 0
        self.reserved_at = 0.0
        self.last_batch = 0
        self._batch = 0
        self._open = False

    def admit(self, eff: int) -> bool:
        """Admission before a batch of ``eff`` effective bytes; False: it waits, paused."""
        glob = self.glob
        if glob is None or self.granted or self.paused:
            return True
        assert isinstance(glob, AdmissionBudget)
        if glob.inflight < glob.high and not glob.has_waiters:
            return True
        glob.hold(self, eff)
        self.global_blocked = True
        self._pause()
        self._report.block(self.id, "global", self.inflight, glob.inflight)
        return False

    def track(self, dml_id: DmlId, eff: int, seq: int) -> None:
        if not self._open:
            self._open = True
            self._batch = 0
            if self.granted:
                self.granted = False
                glob = self.glob
                if isinstance(glob, AdmissionBudget):
                    glob.release_reservation(self.reservation, self.reserved_at)
                self.reservation = 0
        self._batch += eff
        super().track(dml_id, eff, seq)

    def after_batch(self) -> None:
        self._open = False
        self.last_batch = self._batch
        super().after_batch()

    def _global_try_block(self) -> bool:
        # The hand-off and the check after a batch remember the bytes the next batch will bring,
        # so rounds can be sized to the headroom.
        glob = self.glob
        return isinstance(glob, AdmissionBudget) and glob.try_hold(self, self.last_batch)

    def global_wake(self, round_no: int, position: int, grant: int | None) -> bool:
        """Woken by a round; ``grant`` is the reserved byte count, ``None`` for a liveness wake."""
        if grant is not None and not self.removed:
            self.granted = True
            self.reservation = grant
            self.reserved_at = self._report.cause.ts
        return self._global_wake(round_no, position)

    def remove(self) -> None:
        if self.granted and isinstance(self.glob, AdmissionBudget):
            self.glob.release_reservation(self.reservation, self.reserved_at)
        self.granted = False
        super().remove()


def admit(engine: Engine, ts: float, changefeed: str, sink: str, dispatcher: str,
          nbytes: int, line: int | None = None) -> bool:
    """Ask the model, before delivering a batch of ``nbytes`` DML bytes, whether it may enter.

    Always True except under policy ``admission``, where a refused batch must wait: the dispatcher
    is paused and queued (a ``block`` by ``global``), and the batch goes in when it is woken.
    Policies that decide only after a batch are not touched, so their decisions do not change.
    """
    scope = engine.scope(changefeed, sink)
    if scope.limits.policy != POLICY_ADMISSION or scope.glob is None:
        return True
    d = scope.dispatchers.get(dispatcher)
    if d is None:
        if dispatcher in scope.removed_ids:
            return True  # the engine reports the enqueue as after_remove
        d = scope.new_dispatcher(dispatcher)
    if d.removed or d.paused or not isinstance(d, AdmissionDispatcher):
        return True
    engine.at(ts, line)
    return d.admit(nbytes * scope.limits.multiplier)
