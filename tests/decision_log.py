"""Comparing decision logs the way SPEC section 5 says they compare.

Key order and number formatting do not matter; times compare to within 1e-6; end-of-trace
``leak`` and ``stranded`` records may come in any order among themselves.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import msgspec

from budget.decisions import Decision

TIME_FIELDS = ("ts", "blocked_for")
UNORDERED_END = ("leak", "stranded")


def as_dicts(records: list[Decision]) -> list[dict[str, Any]]:
    return [json.loads(msgspec.json.encode(r)) for r in records]


def load(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def _key(rec: dict[str, Any]) -> str:
    return json.dumps({k: v for k, v in rec.items() if k not in TIME_FIELDS}, sort_keys=True)


def _canonical(records: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Sort each run of end-of-trace leak records and of stranded records."""
    out: list[dict[str, Any]] = []
    i = 0
    while i < len(records):
        r = records[i]
        code = r.get("code") if r.get("kind") == "anomaly" and "line" not in r else None
        if code in UNORDERED_END:
            j = i
            while (j < len(records) and records[j].get("code") == code
                   and "line" not in records[j]):
                j += 1
            out.extend(sorted(records[i:j], key=_key))
            i = j
        else:
            out.append(r)
            i += 1
    return out


def differences(got: list[dict[str, Any]], expected: list[dict[str, Any]]) -> list[str]:
    """Human-readable differences; empty when the logs are the same."""
    got, expected = _canonical(got), _canonical(expected)
    problems = []
    for i, (g, e) in enumerate(zip(got, expected, strict=False)):
        same = set(g) == set(e) and all(
            abs(float(g[k]) - float(e[k])) <= 1e-6 if k in TIME_FIELDS else g[k] == e[k]
            for k in e)
        if not same:
            problems.append(f"record {i + 1}:\n  got      {g}\n  expected {e}")
            break
    if len(got) != len(expected):
        problems.append(f"{len(got)} records, expected {len(expected)}")
    return problems
