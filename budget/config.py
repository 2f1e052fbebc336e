"""Budget configuration: defaults, the global watermarks derived from the area quota, overrides.

Mirrors the Option A plan: each (changefeed, sink type) scope gets a global budget whose high
watermark is derived from the per-dispatcher high and the quota of its memory area.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, fields, replace

MiB = 1 << 20
GiB = 1 << 30

DEFAULT_PER_LOW = 64 * MiB
DEFAULT_PER_HIGH = 128 * MiB
DEFAULT_MULTIPLIER = 2
DEFAULT_MAX_WAKE = 64
DEFAULT_MEMORY_QUOTA = 1 * GiB

#: Sink types that keep several DML batches in flight under a byte budget.
BUDGET_SINKS = frozenset({"cloudstorage", "redo"})

POLICY_OPTION_A = "option-a"
POLICY_PER_DISPATCHER = "per-dispatcher"
POLICY_LEGACY = "legacy"
#: The project's own policy (budget/admission.py): admission before a batch, sized rounds.
POLICY_ADMISSION = "admission"
POLICIES = (POLICY_OPTION_A, POLICY_PER_DISPATCHER, POLICY_LEGACY, POLICY_ADMISSION)

_SIZE_RE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([kKmMgGtT]i?[bB]?|[bB])?\s*$")
_UNITS = {
    "": 1, "b": 1,
    "k": 1000, "kb": 1000, "ki": 1 << 10, "kib": 1 << 10,
    "m": 1000**2, "mb": 1000**2, "mi": 1 << 20, "mib": 1 << 20,
    "g": 1000**3, "gb": 1000**3, "gi": 1 << 30, "gib": 1 << 30,
    "t": 1000**4, "tb": 1000**4, "ti": 1 << 40, "tib": 1 << 40,
}


def parse_size(text: str | int) -> int:
    """Parse a byte size a person typed: ``64MiB``, ``512MB``, ``1GiB``, ``1.5Gi`` or plain bytes.

    Binary units (``KiB``/``Ki``) are powers of 1024, decimal ones (``KB``/``K``) powers of 1000.
    Negative values are allowed only as plain integers (they disable a budget on purpose).
    """
    if isinstance(text, bool):
        raise ValueError(f"not a size: {text!r}")
    if isinstance(text, int):
        return text
    s = str(text).strip()
    if re.fullmatch(r"-?\d+", s):
        return int(s)
    m = _SIZE_RE.match(s)
    if not m:
        raise ValueError(f"not a size: {text!r} (try 64MiB, 512MB, 1GiB or a number of bytes)")
    number, unit = m.group(1), (m.group(2) or "").lower()
    value = float(number) * _UNITS[unit]
    if value != int(value):
        raise ValueError(f"not a whole number of bytes: {text!r}")
    return int(value)


def format_bytes(n: float) -> str:
    """Human form of a byte count, binary units: ``128.0 MiB``."""
    sign = "-" if n < 0 else ""
    n = abs(n)
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if n < 1024 or unit == "TiB":
            return f"{sign}{n:.0f} {unit}" if unit == "B" else f"{sign}{n:.1f} {unit}"
        n /= 1024
    raise AssertionError("unreachable")


@dataclass(frozen=True, slots=True)
class BudgetConfig:
    """The configuration keys of a trace header (SPEC section 4); ``None`` means "not given"."""

    per_low: int = DEFAULT_PER_LOW
    per_high: int = DEFAULT_PER_HIGH
    multiplier: int = DEFAULT_MULTIPLIER
    area_quota: int | None = None
    memory_quota: int = DEFAULT_MEMORY_QUOTA
    redo_percentage: int | None = None
    global_high: int | None = None
    global_low: int | None = None
    max_wake_per_round: int = DEFAULT_MAX_WAKE
    policy: str = POLICY_OPTION_A

    def merged(self, overrides: dict[str, object]) -> BudgetConfig:
        """A copy with every non-``None`` override applied (header over defaults, flags over
        header)."""
        known = {f.name for f in fields(self)}
        unknown = set(overrides) - known
        if unknown:
            raise KeyError(", ".join(sorted(unknown)))
        return replace(self, **{k: v for k, v in overrides.items() if v is not None})

    def area_for(self, sink: str) -> int:
        """The quota a scope's global budget derives from (TiCDC's memory-quota and redo split)."""
        if self.area_quota is not None:
            return self.area_quota
        if self.redo_percentage is not None:
            redo = self.memory_quota * self.redo_percentage // 100
            return redo if sink == "redo" else self.memory_quota - redo
        return self.memory_quota

    def policy_for(self, sink: str) -> str:
        """Budgets apply only to cloudstorage and redo; every other sink keeps the legacy pause."""
        return self.policy if sink in BUDGET_SINKS else POLICY_LEGACY

    def limits_for(self, sink: str) -> ScopeLimits:
        """Resolve the effective limits of one (changefeed, sink) scope."""
        area = self.area_for(sink)
        if self.global_high is not None:
            high = self.global_high
        elif area > 0:
            high = min(4 * self.per_high, area // 2)
        else:
            high = 4 * self.per_high
        low = self.global_low if self.global_low is not None else high // 2
        return ScopeLimits(
            policy=self.policy_for(sink),
            per_low=self.per_low,
            per_high=self.per_high,
            multiplier=self.multiplier,
            global_high=high,
            global_low=low,
            max_wake_per_round=self.max_wake_per_round,
            area_quota=area,
        )


@dataclass(frozen=True, slots=True)
class ScopeLimits:
    """The effective limits one scope runs with."""

    policy: str
    per_low: int
    per_high: int
    multiplier: int
    global_high: int
    global_low: int
    max_wake_per_round: int
    area_quota: int

    @property
    def global_enabled(self) -> bool:
        """A global budget with high ≤ 0, low ≤ 0 or low ≥ high never blocks (SPEC section 2)."""
        return self.global_high > 0 and self.global_low > 0 and self.global_low < self.global_high

    @property
    def uses_global(self) -> bool:
        return self.policy in (POLICY_OPTION_A, POLICY_ADMISSION) and self.global_enabled

    def why_global_disabled(self) -> str | None:
        """A sentence for the user when the global budget of this scope is off, else ``None``."""
        if self.policy in (POLICY_LEGACY, POLICY_PER_DISPATCHER):
            return f"policy {self.policy} has no global budget"
        if self.global_high <= 0:
            return f"global budget disabled: high is {self.global_high} (≤ 0)"
        if self.global_low <= 0:
            return f"global budget disabled: low is {self.global_low} (≤ 0)"
        if self.global_low >= self.global_high:
            return (f"global budget disabled: low {self.global_low} is not below "
                    f"high {self.global_high}")
        return None
