"""Expectation files (``*.expect.toml``): named tests, each a trace plus what it must show.

Read with the standard library's ``tomllib``. As in ``promtool test rules``, every key is checked:
an unknown or mistyped key makes the whole file invalid (exit 7) instead of being ignored.
"""

from __future__ import annotations

import glob
import math
import os
import re
import tomllib
from dataclasses import dataclass, field
from typing import Any

from budget.config import POLICIES, parse_size
from cli.checks.invariants import INVARIANTS, MUST_FAIL, OFF, ON
from traces.errors import EXIT_INVALID_EXPECTATIONS, TraceError

SUFFIX = ".expect.toml"


class InvalidExpectations(TraceError):
    """An expectation file that cannot be used: bad TOML, an unknown key, a wrong type."""

    status = EXIT_INVALID_EXPECTATIONS


# Value kinds of numeric expectations: how they are parsed and shown.
COUNT, NUMBER, SIZE, SECONDS = "count", "number", "size", "seconds"

#: Numeric expectations (``[test.expect]`` keys) and the kind of their values.
NUMERIC_KEYS: dict[str, str] = {
    "events": COUNT, "decisions": COUNT,
    "blocks": COUNT, "blocks_per": COUNT, "blocks_global": COUNT, "blocks_legacy": COUNT,
    "wakes": COUNT, "wakes_per": COUNT, "wakes_global": COUNT, "wakes_legacy": COUNT,
    "handoffs": COUNT, "rounds": COUNT, "largest_round": COUNT,
    "crossings": COUNT, "crossings_global_high": COUNT, "crossings_global_low": COUNT,
    "crossings_per_high": COUNT, "crossings_per_low": COUNT,
    "blocked_dispatchers": COUNT, "waiting": COUNT,
    "peak_global_inflight": SIZE, "peak_ratio": NUMBER,
    "longest_blocked": SECONDS, "longest_global_wait": SECONDS,
}
#: Set expectations: exact sets of dispatcher ids (``not_blocked``: none of these).
SET_KEYS = ("blocked", "not_blocked", "woken", "handed_off", "stranded", "leaked")
ORDER_KEYS = ("wake_order",)
EXPECT_KEYS = (*NUMERIC_KEYS, *SET_KEYS, *ORDER_KEYS, "anomalies")

CONFIG_KEYS: dict[str, str] = {
    "per_low": SIZE, "per_high": SIZE, "global_high": SIZE, "global_low": SIZE,
    "memory_quota": SIZE, "area_quota": SIZE, "redo_percentage": COUNT, "multiplier": COUNT,
    "max_wake_per_round": COUNT,
}
TEST_KEYS = ("name", "trace", "description", "policy", "changefeed", "sink", "config",
             "invariants", "expect")
INVARIANT_BOUND_KEYS = ("max_overshoot", "max_blocked")
RANGE_KEYS = ("min", "max", "value", "tolerance", "rel_tolerance")


@dataclass(frozen=True)
class NumberSpec:
    """An exact value, a ``[min, max]`` range, or a value within an (absolute or relative)
    tolerance."""

    kind: str
    min: float | None = None
    max: float | None = None
    value: float | None = None
    tolerance: float = 0.0
    rel_tolerance: float = 0.0

    def accepts(self, got: float | None) -> bool:
        if got is None:
            return False
        if self.value is not None:
            allowed = max(self.tolerance, self.rel_tolerance * abs(self.value))
            if self.kind in (NUMBER, SECONDS) and not allowed:
                return math.isclose(got, self.value, rel_tol=1e-9, abs_tol=1e-12)
            return abs(got - self.value) <= allowed
        if self.min is not None and got < self.min:
            return False
        return not (self.max is not None and got > self.max)


@dataclass(frozen=True)
class CheckCase:
    """One test of an expectation file applied to one trace (a glob may give several)."""

    name: str
    trace: str
    source: str | None = None  # the expectation file; None for a bare trace
    line: int | None = None  # line of the test's `name` in the file (for annotations)
    description: str | None = None
    config: dict[str, object] = field(default_factory=dict)
    changefeed: str | None = None
    sink: str | None = None
    invariant_modes: dict[str, str] = field(default_factory=dict)
    max_overshoot: float | None = None
    max_blocked: float | None = None
    numbers: dict[str, NumberSpec] = field(default_factory=dict)
    anomalies: dict[str, NumberSpec] = field(default_factory=dict)
    sets: dict[str, frozenset[str]] = field(default_factory=dict)
    wake_order: tuple[str, ...] | None = None

    @property
    def suite(self) -> str:
        return self.source or self.trace


def parse_duration(value: object) -> float:
    """Seconds from a number or a string such as ``1.5s``, ``250ms``, ``2m``, ``1h``."""
    if isinstance(value, bool):
        raise ValueError(f"not a duration: {value!r}")
    if isinstance(value, int | float):
        if value < 0:
            raise ValueError(f"negative duration: {value!r}")
        return float(value)
    if isinstance(value, str):
        m = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*(ms|s|m|h)?\s*", value)
        if m:
            scale = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0, None: 1.0}[m.group(2)]
            return float(m.group(1)) * scale
    raise ValueError(f"not a duration: {value!r} (try 30, \"1.5s\", \"250ms\" or \"2m\")")


class _Loader:
    """Validates one parsed file; every complaint names the test and the key."""

    def __init__(self, path: str, text: str) -> None:
        self.path = path
        self.text = text
        self.where = ""
        self.test_name: str | None = None

    def error(self, key: str, message: str) -> InvalidExpectations:
        if self.test_name is not None:
            message += f" (in test {self.test_name!r})"
        return InvalidExpectations(self.path, None, message, f"{self.where}{key}")

    def only(self, table: dict[str, Any], allowed: tuple[str, ...] | dict[str, Any],
             prefix: str) -> None:
        for key in table:
            if key not in allowed:
                raise self.error(f"{prefix}{key}", "unknown key (expected one of "
                                 f"{', '.join(allowed)})")

    def string(self, value: object, key: str) -> str:
        if not isinstance(value, str) or not value:
            raise self.error(key, f"expected a non-empty string, got {value!r}")
        return value

    def table(self, value: object, key: str) -> dict[str, Any]:
        if not isinstance(value, dict):
            raise self.error(key, f"expected a table, got {type(value).__name__}")
        return value

    def scalar(self, value: object, kind: str, key: str) -> float:
        try:
            if kind == SIZE:
                if isinstance(value, float) and value.is_integer():
                    value = int(value)
                if not isinstance(value, int | str) or isinstance(value, bool):
                    raise ValueError(f"not a size: {value!r}")
                return float(parse_size(value))
            if kind == SECONDS:
                return parse_duration(value)
            if isinstance(value, bool) or not isinstance(value, int | float):
                raise ValueError(f"expected a number, got {value!r}")
            if kind == COUNT and (not float(value).is_integer() or value < 0):
                raise ValueError(f"expected a whole number ≥ 0, got {value!r}")
            return float(value)
        except ValueError as e:
            raise self.error(key, str(e)) from None

    def number_spec(self, value: object, kind: str, key: str) -> NumberSpec:
        if not isinstance(value, dict):
            return NumberSpec(kind, value=self.scalar(value, kind, key))
        self.only(value, RANGE_KEYS, f"{key}.")
        if not value:
            raise self.error(key, "empty table: give min, max, or value (with a tolerance)")
        got = {k: self.scalar(v, NUMBER if "tolerance" in k else kind, f"{key}.{k}")
               for k, v in value.items()}
        if ("value" in got) == ("min" in got or "max" in got):
            raise self.error(key, "give either value (with tolerance or rel_tolerance) or "
                             "min/max")
        if ("tolerance" in got or "rel_tolerance" in got) and "value" not in got:
            raise self.error(key, "a tolerance needs a value")
        if "min" in got and "max" in got and got["min"] > got["max"]:
            raise self.error(key, f"min {value['min']!r} is above max {value['max']!r}")
        return NumberSpec(kind, got.get("min"), got.get("max"), got.get("value"),
                          got.get("tolerance", 0.0), got.get("rel_tolerance", 0.0))

    def ids(self, value: object, key: str) -> list[str]:
        if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
            raise self.error(key, "expected a list of dispatcher ids (strings)")
        return value

    def test_line(self, name: str) -> int | None:
        pat = re.compile(r"^\s*name\s*=\s*([\"'])" + re.escape(name) + r"\1")
        for i, text in enumerate(self.text.splitlines(), 1):
            if pat.match(text):
                return i
        return None

    def cases(self, doc: dict[str, Any]) -> list[CheckCase]:
        self.only(doc, ("test",), "")
        tests = doc.get("test")
        if not isinstance(tests, list) or not tests:
            raise self.error("test", "missing: the file needs at least one [[test]] table")
        out: list[CheckCase] = []
        names: set[str] = set()
        for i, t in enumerate(tests, 1):
            self.where = f"test[{i}]."
            t = self.table(t, "")
            self.test_name = t["name"] if isinstance(t.get("name"), str) else None
            self.only(t, TEST_KEYS, "")
            for required in ("name", "trace"):
                if required not in t:
                    raise self.error(required, "missing (required)")
            name = self.string(t["name"], "name")
            if name in names:
                raise self.error("name", f"duplicate test name {name!r}")
            names.add(name)
            out.extend(self.test(t, name))
        return out

    def test(self, t: dict[str, Any], name: str) -> list[CheckCase]:
        config: dict[str, object] = {}
        if "policy" in t:
            policy = self.string(t["policy"], "policy")
            if policy not in POLICIES:
                raise self.error("policy", f"unknown policy {policy!r} (expected one of "
                                 f"{', '.join(POLICIES)})")
            config["policy"] = policy
        cfg = self.table(t.get("config", {}), "config")
        self.only(cfg, CONFIG_KEYS, "config.")
        for k, v in cfg.items():
            config[k] = int(self.scalar(v, CONFIG_KEYS[k], f"config.{k}"))
        modes: dict[str, str] = {}
        bounds: dict[str, float] = {}
        inv = self.table(t.get("invariants", {}), "invariants")
        self.only(inv, (*INVARIANTS, *INVARIANT_BOUND_KEYS), "invariants.")
        for k, v in inv.items():
            if k == "max_overshoot":
                bounds[k] = self.scalar(v, NUMBER, f"invariants.{k}")
                if bounds[k] <= 0:
                    raise self.error(f"invariants.{k}", "must be above 0")
            elif k == "max_blocked":
                bounds[k] = self.scalar(v, SECONDS, f"invariants.{k}")
            else:
                modes[k] = self.mode(v, f"invariants.{k}")
        exp = self.table(t.get("expect", {}), "expect")
        self.only(exp, EXPECT_KEYS, "expect.")
        numbers = {k: self.number_spec(v, NUMERIC_KEYS[k], f"expect.{k}")
                   for k, v in exp.items() if k in NUMERIC_KEYS}
        anomalies = {code: self.number_spec(v, COUNT, f"expect.anomalies.{code}")
                     for code, v in self.table(exp.get("anomalies", {}),
                                               "expect.anomalies").items()}
        sets = {k: frozenset(self.ids(exp[k], f"expect.{k}")) for k in SET_KEYS if k in exp}
        order = tuple(self.ids(exp["wake_order"], "expect.wake_order")) \
            if "wake_order" in exp else None
        changefeed = self.string(t["changefeed"], "changefeed") if "changefeed" in t else None
        sink = self.string(t["sink"], "sink") if "sink" in t else None
        description = self.string(t["description"], "description") \
            if "description" in t else None
        traces = self.traces(self.string(t["trace"], "trace"))
        line = self.test_line(name)
        return [CheckCase(name if len(traces) == 1 else f"{name} [{os.path.basename(p)}]",
                          p, self.path, line, description, dict(config), changefeed, sink,
                          modes, bounds.get("max_overshoot"), bounds.get("max_blocked"),
                          numbers, anomalies, sets, order)
                for p in traces]

    def mode(self, value: object, key: str) -> str:
        if value is True or value == ON:
            return ON
        if value is False or value == OFF:
            return OFF
        if value == MUST_FAIL:
            return MUST_FAIL
        raise self.error(key, f"expected true, false or \"fail\" (the trace must break it), "
                         f"got {value!r}")

    def traces(self, pattern: str) -> list[str]:
        base = os.path.dirname(self.path)
        full = os.path.join(base, pattern)
        if glob.has_magic(pattern):
            found = sorted(p for p in glob.glob(full, recursive=True) if os.path.isfile(p))
            if not found:
                raise self.error("trace", f"{pattern!r} matches no file (relative to "
                                 f"{base or '.'})")
            return [os.path.normpath(p) for p in found]
        if not os.path.isfile(full):
            raise self.error("trace", f"{pattern!r}: no such file (relative to {base or '.'})")
        return [os.path.normpath(full)]


def load_expectations(path: str) -> list[CheckCase]:
    """The cases of one expectation file; raises :class:`InvalidExpectations`."""
    try:
        with open(path, "rb") as f:
            raw = f.read()
    except OSError as e:
        raise InvalidExpectations(path, None, f"cannot read: {e.strerror}") from None
    try:
        text = raw.decode("utf-8")
        doc = tomllib.loads(text)
    except UnicodeDecodeError:
        raise InvalidExpectations(path, None, "not UTF-8 text") from None
    except tomllib.TOMLDecodeError as e:
        m = re.search(r"\(at line (\d+), column \d+\)$", str(e))
        line = int(m.group(1)) if m else None
        msg = re.sub(r"\s*\(at line \d+, column \d+\)$", "", str(e))
        raise InvalidExpectations(path, line, f"invalid TOML: {msg}") from None
    return _Loader(path, text).cases(doc)
