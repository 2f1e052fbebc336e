"""Golden cases: each trace in tests/data/cases next to the decision log it must produce.

Cases 01-04 are the reference implementation's own logs (shared/examples); the others are
hand-worked from SPEC section 2. Add a case for every bug fixed.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from decision_log import as_dicts, differences, load

from budget.decisions import Decision
from traces.replay import replay

CASES = sorted(p for p in (Path(__file__).parent / "data" / "cases").glob("*.jsonl")
               if not p.name.endswith(".decisions.jsonl"))


def _replay(path: Path) -> list[Decision]:
    out: list[Decision] = []
    replay(str(path), out.append)
    return out


@pytest.mark.parametrize("trace", CASES, ids=[p.stem for p in CASES])
def test_golden_decision_log(trace: Path) -> None:
    expected = load(trace.with_name(trace.stem + ".decisions.jsonl"))
    got = as_dicts(_replay(trace))
    assert differences(got, expected) == []


@pytest.mark.parametrize("trace", CASES, ids=[p.stem for p in CASES])
def test_golden_replay_is_deterministic(trace: Path) -> None:
    assert as_dicts(_replay(trace)) == as_dicts(_replay(trace))


def test_comparison_catches_a_reordered_log() -> None:
    """The comparison itself must fail on two swapped records (so the golden test can fail)."""
    trace = CASES[0]
    expected = load(trace.with_name(trace.stem + ".decisions.jsonl"))
    swapped = expected[:]
    swapped[-1], swapped[-2] = swapped[-2], swapped[-1]
    assert differences(swapped, expected)
    assert differences(expected[:-1], expected)


def test_shared_examples_are_the_cases() -> None:
    """The reference logs in ../shared/examples, when present, are byte-for-byte our cases 01-04."""
    shared = Path(__file__).resolve().parents[2] / "shared" / "examples"
    if not shared.is_dir():
        pytest.skip("shared/examples not beside this checkout")
    for p in shared.glob("*.jsonl"):
        assert (Path(__file__).parent / "data" / "cases" / p.name).read_bytes() == p.read_bytes()
