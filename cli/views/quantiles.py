"""Percentiles in bounded memory: exact for small samples, log-bucketed beyond.

Traces can hold hundreds of millions of DMLs, so no view may keep one number per event. A
:class:`Distribution` keeps its first ``exact_limit`` values as they are (the small traces people
reason about by hand get exact percentiles); past that it folds them into logarithmic buckets
whose bounds grow by ``GAMMA`` (the DDSketch construction), so any percentile it reports is within
``RELATIVE_ERROR`` (1%) of a value that really occurred at that rank. Count, sum, min and max stay
exact throughout. Memory: at most ``exact_limit`` floats, then one counter per occupied bucket
(about 70 buckets per factor of ten of range, a few thousand at most).
"""

from __future__ import annotations

import math

#: Bucket growth factor; a bucket's representative is within RELATIVE_ERROR of all its values.
GAMMA = 1.02
RELATIVE_ERROR = (GAMMA - 1) / (GAMMA + 1)
EXACT_LIMIT = 1024
_LOG_GAMMA = math.log(GAMMA)


class Distribution:
    """Count, mean, min, max and nearest-rank percentiles of non-negative values."""

    __slots__ = ("count", "total", "min", "max", "exact_limit", "_exact", "_sorted", "_buckets",
                 "_zeros")

    def __init__(self, exact_limit: int = EXACT_LIMIT) -> None:
        self.count = 0
        self.total = 0.0
        self.min: float | None = None
        self.max: float | None = None
        self.exact_limit = exact_limit
        self._exact: list[float] | None = []
        self._sorted = True
        self._buckets: dict[int, int] = {}
        self._zeros = 0

    @property
    def exact(self) -> bool:
        """True while every value is kept (percentiles are exact)."""
        return self._exact is not None

    def add(self, value: float) -> None:
        self.count += 1
        self.total += value
        if self.min is None or value < self.min:
            self.min = value
        if self.max is None or value > self.max:
            self.max = value
        exact = self._exact
        if exact is not None:
            exact.append(value)
            self._sorted = False
            if len(exact) > self.exact_limit:
                self._exact = None
                for v in exact:
                    self._fold(v)
            return
        self._fold(value)

    def _fold(self, value: float) -> None:
        if value <= 0:
            self._zeros += 1
            return
        i = math.ceil(math.log(value) / _LOG_GAMMA)
        self._buckets[i] = self._buckets.get(i, 0) + 1

    @property
    def mean(self) -> float | None:
        return self.total / self.count if self.count else None

    def percentile(self, p: float) -> float | None:
        """The nearest-rank ``p``-th percentile (the smallest value with ``p``% at or below it)."""
        n = self.count
        if n == 0:
            return None
        if p >= 100:
            return self.max
        rank = max(1, math.ceil(p / 100 * n))
        exact = self._exact
        if exact is not None:
            if not self._sorted:
                exact.sort()
                self._sorted = True
            return exact[rank - 1]
        seen = self._zeros
        if rank <= seen:
            return 0.0
        for i in sorted(self._buckets):
            seen += self._buckets[i]
            if seen >= rank:
                rep = 2 * GAMMA**i / (GAMMA + 1)
                return min(max(rep, self.min or 0.0), self.max or 0.0)
        return self.max

    def summary(self, percentiles: tuple[int, ...] = (50, 90, 99)) -> dict[str, float | int | None]:
        """``count``, ``mean``, each ``pNN`` and ``max`` (``None`` when empty)."""
        out: dict[str, float | int | None] = {"count": self.count, "mean": self.mean}
        for p in percentiles:
            out[f"p{p}"] = self.percentile(p)
        out["max"] = self.max
        return out
