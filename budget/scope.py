"""One (changefeed, sink type) scope: its limits, its global budget and its dispatchers."""

from __future__ import annotations

from budget.config import POLICY_LEGACY, ScopeLimits
from budget.decisions import Cause, DecisionSink
from budget.dispatcher import BudgetedDispatcher, Dispatcher, LegacyDispatcher
from budget.global_budget import GlobalBudget
from budget.report import Reporter


class Scope:
    """Dispatchers of one scope share one global budget; scopes never share one."""

    __slots__ = ("changefeed", "sink", "limits", "report", "glob", "dispatchers", "removed_ids",
                 "_make")

    def __init__(self, changefeed: str, sink: str, limits: ScopeLimits, cause: Cause,
                 emit: DecisionSink) -> None:
        self.changefeed = changefeed
        self.sink = sink
        self.limits = limits
        self.report = Reporter(changefeed, sink, cause, emit)
        self.glob: GlobalBudget | None = None
        if limits.uses_global:
            self.glob = GlobalBudget(limits.global_high, limits.global_low,
                                     limits.max_wake_per_round, self.report)
        #: Live dispatchers, and removed ones that still have DMLs in flight (first-seen order).
        self.dispatchers: dict[str, Dispatcher] = {}
        #: Ids of removed dispatchers with nothing left in flight (kept to spot late enqueues).
        self.removed_ids: set[str] = set()
        if limits.policy == POLICY_LEGACY:
            self._make = lambda d: LegacyDispatcher(d, self.report)
        else:
            self._make = lambda d: BudgetedDispatcher(d, self.report, limits.per_low,
                                                      limits.per_high, self.glob)

    def new_dispatcher(self, dispatcher_id: str) -> Dispatcher:
        d = self._make(dispatcher_id)
        self.dispatchers[dispatcher_id] = d
        return d

    def forget_if_done(self, d: Dispatcher) -> None:
        """A removed dispatcher whose last DML has flushed no longer needs its state."""
        if d.removed and not d.dmls:
            del self.dispatchers[d.id]
            self.removed_ids.add(d.id)

    @property
    def global_inflight(self) -> int:
        return self.glob.inflight if self.glob is not None else 0
