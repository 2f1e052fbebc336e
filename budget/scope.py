"""One (changefeed, sink type) scope: its limits, its global budget and its dispatchers."""

from __future__ import annotations

from budget.admission import AdmissionBudget, AdmissionDispatcher
from budget.config import POLICY_ADMISSION, POLICY_LEGACY, ScopeLimits
from budget.decisions import AFTER_REMOVE, ENQUEUE_WHILE_PAUSED, UNKNOWN_FLUSH, Cause, DecisionSink
from budget.dispatcher import BudgetedDispatcher, Dispatcher, DmlId, LegacyDispatcher
from budget.global_budget import GlobalBudget
from budget.report import Reporter


class Scope:
    """Dispatchers of one scope share one global budget; scopes never share one."""

    __slots__ = ("changefeed", "sink", "limits", "report", "glob", "dispatchers", "removed_ids",
                 "_make", "cause")

    def __init__(self, changefeed: str, sink: str, limits: ScopeLimits, cause: Cause,
                 emit: DecisionSink) -> None:
        self.changefeed = changefeed
        self.sink = sink
        self.limits = limits
        self.report = Reporter(changefeed, sink, cause, emit)
        self.cause = cause
        self.glob: GlobalBudget | None = None
        if limits.uses_global and limits.policy == POLICY_ADMISSION:
            self.glob = AdmissionBudget(limits.global_high, limits.global_low,
                                        limits.max_wake_per_round, self.report)
        elif limits.uses_global:
            self.glob = GlobalBudget(limits.global_high, limits.global_low,
                                     limits.max_wake_per_round, self.report)
        #: Live dispatchers, and removed ones that still have DMLs in flight (first-seen order).
        self.dispatchers: dict[str, Dispatcher] = {}
        #: Ids of removed dispatchers with nothing left in flight (kept to spot late enqueues).
        self.removed_ids: set[str] = set()
        if limits.policy == POLICY_LEGACY:
            self._make = lambda d: LegacyDispatcher(d, self.report)
        elif limits.policy == POLICY_ADMISSION:
            self._make = lambda d: AdmissionDispatcher(d, self.report, limits.per_low,
                                                       limits.per_high, self.glob)  # type: ignore[arg-type]
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

    # Trace events, applied at the time and line the shared ``cause`` holds --------------------
    def enqueue(self, dispatcher: str, dmls: list[tuple[DmlId, int]]) -> None:
        """One handled batch: track each DML, then try block once if the batch had any DML."""
        d = self.dispatchers.get(dispatcher)
        if d is None:
            if dispatcher in self.removed_ids:
                self.report.anomaly(AFTER_REMOVE, dispatcher)
                return
            d = self.new_dispatcher(dispatcher)
        elif d.removed:
            self.report.anomaly(AFTER_REMOVE, dispatcher)
            return
        inflight = d.dmls
        if dmls and dmls[0][0] in inflight:
            raise DuplicateDml(dispatcher, dmls[0][0])
        if d.paused:
            # A paused path delivers nothing: any handled batch, even an empty one, says the
            # recorded system did not follow the model.
            self.report.anomaly(ENQUEUE_WHILE_PAUSED, dispatcher)
        if not dmls:
            return  # try block runs only after a batch with at least one DML
        mult = self.limits.multiplier
        cause = self.cause
        seq = cause.seq
        track = d.track
        for dml_id, size in dmls:
            # A repeated id within the batch is caught here, once its first copy is tracked; the
            # trace is invalid then and the replay stops, so the half-tracked batch is moot.
            if dml_id in inflight:
                raise DuplicateDml(dispatcher, dml_id)
            seq += 1
            cause.seq = seq
            track(dml_id, size * mult, seq)
        d.after_batch()

    def flush(self, dispatcher: str, dml_id: DmlId) -> None:
        """A DML's post-flush callback fired; a flush of an id not in flight is an anomaly."""
        d = self.dispatchers.get(dispatcher)
        if d is None or not d.flush(dml_id):
            self.report.anomaly(UNKNOWN_FLUSH, dispatcher)
        elif d.removed:
            self.forget_if_done(d)

    def remove(self, dispatcher: str) -> None:
        """The dispatcher is cleaned up: it leaves the global queue; nobody is woken."""
        d = self.dispatchers.get(dispatcher)
        if d is None:
            self.removed_ids.add(dispatcher)
            return
        if d.removed:
            return
        d.remove()
        self.forget_if_done(d)


class DuplicateDml(Exception):
    """A DML id enqueued again while it is still in flight: the trace is invalid."""

    def __init__(self, dispatcher: str, dml_id: DmlId) -> None:
        super().__init__(f"DML id {dml_id!r} of dispatcher {dispatcher} is already in flight")
        self.dispatcher = dispatcher
        self.dml_id = dml_id
