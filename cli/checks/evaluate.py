"""Running one check case: replay the trace through the invariants and the summary view, then
hold what was observed against the case's expectations."""

from __future__ import annotations

import time
from dataclasses import dataclass, field

from budget.config import format_bytes
from budget.decisions import ANOMALY, HANDOFF, LEAK, WAKE, Decision
from cli.checks.expectations import COUNT, SECONDS, SIZE, CheckCase, NumberSpec
from cli.checks.invariants import InvariantOutcome, InvariantSet, InvariantSettings
from cli.console import format_seconds
from cli.replaying import fan_out
from cli.views.summary import RunSummary
from traces.errors import TraceError
from traces.replay import ReplayResult, replay

PASSED, FAILED, ERROR = "passed", "failed", "error"
#: Items of a long set or order shown in a report line.
SHOW_ITEMS = 12


@dataclass(frozen=True)
class Failure:
    """One failed expectation or invariant, with where to point a reader (file and line)."""

    kind: str  # "invariant" or "expectation"
    name: str  # the invariant's name or the expectation's key (``expect.blocks``)
    message: str
    expected: str | None = None
    got: str | None = None
    path: str | None = None
    line: int | None = None


@dataclass
class CaseResult:
    case: CheckCase
    status: str
    failures: list[Failure] = field(default_factory=list)
    invariants: list[InvariantOutcome] = field(default_factory=list)
    error: TraceError | None = None
    seconds: float = 0.0


class ScopeRecords:
    """What the summary view does not keep: the global wake order, hand-offs and leaks."""

    def __init__(self, changefeed: str | None, sink: str | None, keep: int) -> None:
        self.changefeed = changefeed
        self.sink = sink
        self.keep = keep
        self.wake_order: list[str] = []
        self.handed_off: set[str] = set()
        self.leaked: set[str] = set()

    def __call__(self, rec: Decision) -> None:
        if (self.changefeed is not None and rec.changefeed != self.changefeed) or \
                (self.sink is not None and rec.sink != self.sink):
            return
        kind = rec.kind
        if kind == WAKE:
            if rec.by == "global" and len(self.wake_order) < self.keep:
                self.wake_order.append(rec.dispatcher or "")
        elif kind == HANDOFF:
            self.handed_off.add(rec.dispatcher or "")
        elif kind == ANOMALY and rec.code == LEAK:
            self.leaked.add(rec.dispatcher or "")


def settings_for(case: CheckCase, base: InvariantSettings,
                 disabled: frozenset[str] = frozenset()) -> InvariantSettings:
    """Defaults (the command line's bounds), then the file's settings; ``--disable`` wins."""
    modes = dict(case.invariant_modes)
    modes.update({name: "off" for name in disabled})
    s = base.with_modes(modes)
    return InvariantSettings(s.modes,
                             case.max_overshoot if case.max_overshoot is not None
                             else s.max_overshoot,
                             case.max_blocked if case.max_blocked is not None
                             else s.max_blocked)


def run_case(case: CheckCase, overrides: dict[str, object] | None = None,
             base: InvariantSettings | None = None,
             disabled: frozenset[str] = frozenset()) -> CaseResult:
    """Replay the case's trace and evaluate it. Trace errors become an ``error`` result."""
    started = time.perf_counter()
    invariants = InvariantSet(settings_for(case, base or InvariantSettings(), disabled))
    summary = RunSummary(keep=1)
    records = ScopeRecords(case.changefeed, case.sink,
                           len(case.wake_order) + SHOW_ITEMS if case.wake_order else 0)
    config = dict(case.config)
    config.update(overrides or {})
    try:
        result = replay(case.trace, fan_out([invariants, summary, records]), config,
                        on_new_scope=invariants.on_new_scope, on_open=invariants.on_open,
                        on_event=invariants.on_event)
    except TraceError as e:
        return CaseResult(case, ERROR, [Failure("error", "trace", e.one_line(), path=e.path,
                                                line=e.line)],
                          error=e, seconds=time.perf_counter() - started)
    summary.close_round()
    outcomes = invariants.finish(result.last_ts)
    failures = [_invariant_failure(case, o) for o in outcomes if not o.passed]
    failures += evaluate(case, observe(case, result, summary, records))
    return CaseResult(case, FAILED if failures else PASSED, failures, outcomes,
                      seconds=time.perf_counter() - started)


def _invariant_failure(case: CheckCase, o: InvariantOutcome) -> Failure:
    if o.mode == "fail":
        return Failure("invariant", o.name, f"invariant {o.name} was expected to fail on this "
                       "trace but held", expected="a violation", got="none",
                       path=case.source or case.trace, line=case.line)
    v = o.first
    assert v is not None
    more = f" ({o.violations} violations in all)" if o.violations > 1 else ""
    return Failure("invariant", o.name, v.message + more, path=case.trace, line=v.line)


# Observation -------------------------------------------------------------------------------
@dataclass
class Observed:
    numbers: dict[str, float | None]
    anomalies: dict[str, int]
    sets: dict[str, set[str]]
    wake_order: list[str]


def observe(case: CheckCase, result: ReplayResult, summary: RunSummary,
            records: ScopeRecords) -> Observed:
    """Fold the summary view's scopes (those the case selects) into the figures it checks."""
    def selected(cf: str, sink: str) -> bool:
        return (case.changefeed is None or cf == case.changefeed) and \
            (case.sink is None or sink == case.sink)

    doc = summary.to_json(result, top=0)
    scopes = [s for s in doc["scopes"] if selected(s["changefeed"], s["sink"])]
    n: dict[str, float | None] = {"events": result.events, "decisions": summary.records}
    for key in ("handoffs", "rounds", "waiting"):
        n[key] = sum(s[key] for s in scopes)
    n["largest_round"] = max((s["largest_round"] for s in scopes), default=0)
    for key in ("blocks", "wakes"):
        n[key] = sum(sum(s[key].values()) for s in scopes)
        for by in ("per", "global", "legacy"):
            n[f"{key}_{by}"] = sum(s[key].get(by, 0) for s in scopes)
    n["crossings"] = sum(sum(s["crossings"].values()) for s in scopes)
    for name in ("global_high", "global_low", "per_high", "per_low"):
        n[f"crossings_{name}"] = sum(s["crossings"].get(name, 0) for s in scopes)
    peaks = [s for s in scopes if s["global_enabled"]]
    n["peak_global_inflight"] = max((s["peak_global_inflight"] for s in peaks), default=None)
    n["peak_ratio"] = max((s["peak_ratio"] for s in peaks), default=None)
    n["longest_global_wait"] = max((s["longest_global_wait"] for s in scopes), default=0.0)
    anomalies: dict[str, int] = {}
    for s in scopes:
        for code, count in s["anomalies"].items():
            anomalies[code] = anomalies.get(code, 0) + count
    last_ts = result.last_ts or 0.0
    blocked: set[str] = set()
    woken: set[str] = set()
    stranded: set[str] = set()
    longest = 0.0
    for (cf, sink, d), t, total in summary.ranked(last_ts):
        if not selected(cf, sink):
            continue
        blocked.add(d)
        longest = max(longest, t.longest, total - t.blocked_time)
        if t.stranded:
            stranded.add(d)
    for (cf, sink, d), t in summary.dispatchers.items():
        if selected(cf, sink) and t.wakes:
            woken.add(d)
    n["longest_blocked"] = longest
    n["blocked_dispatchers"] = len(blocked)
    sets = {"blocked": blocked, "woken": woken, "stranded": stranded,
            "handed_off": records.handed_off, "leaked": records.leaked}
    return Observed(n, anomalies, sets, records.wake_order)


# Evaluation --------------------------------------------------------------------------------
def show_value(v: float | None, kind: str) -> str:
    if v is None:
        return "none (no enabled global budget)"
    if kind == SIZE:
        return f"{format_bytes(v)} ({int(v)} bytes)"
    if kind == SECONDS:
        return format_seconds(v)
    if kind == COUNT or float(v).is_integer():
        return str(int(v))
    return f"{v:.6g}"


def show_spec(spec: NumberSpec) -> str:
    k = spec.kind
    if spec.value is not None:
        tol = ""
        if spec.tolerance:
            tol = f" ± {show_value(spec.tolerance, k if k != SIZE else COUNT)}"
        elif spec.rel_tolerance:
            tol = f" ± {spec.rel_tolerance:.3g} (relative)"
        return show_value(spec.value, k) + tol
    if spec.min is not None and spec.max is not None:
        return f"between {show_value(spec.min, k)} and {show_value(spec.max, k)}"
    if spec.min is not None:
        return f"at least {show_value(spec.min, k)}"
    return f"at most {show_value(spec.max, k)}"


def show_ids(ids: list[str] | set[str] | frozenset[str] | tuple[str, ...],
             ordered: bool = False) -> str:
    items = list(ids) if ordered else sorted(ids)
    if not items:
        return "[] (none)"
    head = ", ".join(items[:SHOW_ITEMS])
    more = f", … (+{len(items) - SHOW_ITEMS} more)" if len(items) > SHOW_ITEMS else ""
    return f"[{head}{more}] ({len(items)})"


def evaluate(case: CheckCase, seen: Observed) -> list[Failure]:
    """Every failed expectation of the case, in file order of kinds: numbers, anomalies, sets,
    wake order."""
    out: list[Failure] = []
    src, line = case.source, case.line

    def failed(key: str, message: str, expected: str, got: str) -> None:
        out.append(Failure("expectation", f"expect.{key}", message, expected, got, src, line))

    for key, spec in case.numbers.items():
        got = seen.numbers.get(key)
        if not spec.accepts(got):
            failed(key, f"{key} is {show_value(got, spec.kind)}", show_spec(spec),
                   show_value(got, spec.kind))
    for code, spec in case.anomalies.items():
        got = seen.anomalies.get(code, 0)
        if not spec.accepts(got):
            failed(f"anomalies.{code}", f"{got} `{code}` anomalies", show_spec(spec), str(got))
    for key, want in case.sets.items():
        if key == "not_blocked":
            hit = want & seen.sets["blocked"]
            if hit:
                failed(key, f"{len(hit)} of these dispatchers were blocked",
                       f"none of {show_ids(want)} blocked", f"blocked: {show_ids(hit)}")
            continue
        got = seen.sets[key]
        if got != want:
            missing, extra = want - got, got - want
            parts = []
            if missing:
                parts.append(f"missing {show_ids(missing)}")
            if extra:
                parts.append(f"unexpected {show_ids(extra)}")
            failed(key, f"{key} differs: " + "; ".join(parts), show_ids(want), show_ids(got))
    if case.wake_order is not None:
        want_order = list(case.wake_order)
        got_order = seen.wake_order[:len(want_order)]
        if got_order != want_order:
            at = next((i for i, (a, b) in enumerate(zip(want_order, got_order, strict=False))
                       if a != b), len(got_order))
            failed("wake_order", f"the global wake order differs at position {at + 1}",
                   show_ids(want_order, ordered=True) + " (a prefix)",
                   show_ids(seen.wake_order[:len(want_order) + 2], ordered=True))
    return out


