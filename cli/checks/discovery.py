"""From command-line paths to check cases: expectation files, bare traces and folders."""

from __future__ import annotations

import os
from dataclasses import dataclass, field

from cli.checks.expectations import SUFFIX, CheckCase, InvalidExpectations, load_expectations

TRACE_SUFFIXES = (".jsonl", ".jsonl.gz")
#: Golden decision logs sit next to their traces (tests/data/cases); they are not traces.
NOT_TRACES = (".decisions.jsonl", ".decisions.jsonl.gz")


@dataclass
class Discovery:
    cases: list[CheckCase] = field(default_factory=list)
    invalid: list[InvalidExpectations] = field(default_factory=list)


def is_trace(name: str) -> bool:
    return name.endswith(TRACE_SUFFIXES) and not name.endswith(NOT_TRACES)


def _walk(folder: str) -> tuple[list[str], list[str]]:
    expect, traces = [], []
    for root, dirs, files in os.walk(folder):
        dirs[:] = sorted(d for d in dirs if not d.startswith((".", "__")))
        for name in sorted(files):
            path = os.path.normpath(os.path.join(root, name))
            if name.endswith(SUFFIX):
                expect.append(path)
            elif is_trace(name):
                traces.append(path)
    return expect, traces


def bare_case(trace: str) -> CheckCase:
    """A trace with no expectation file: only the built-in invariants."""
    return CheckCase(name=os.path.basename(trace) if trace != "-" else "<stdin>", trace=trace)


def discover(paths: list[str]) -> Discovery:
    """Expectation files are loaded as given; a folder gives its expectation files and every
    trace under it that none of them names (checked against the built-in invariants only)."""
    found = Discovery()
    seen: set[tuple[str | None, str, str]] = set()

    def add(case: CheckCase) -> None:
        key = (case.source and os.path.abspath(case.source), case.name,
               os.path.abspath(case.trace))
        if key not in seen:
            seen.add(key)
            found.cases.append(case)

    def load(path: str) -> list[CheckCase]:
        try:
            cases = load_expectations(path)
        except InvalidExpectations as e:
            found.invalid.append(e)
            return []
        for c in cases:
            add(c)
        return cases

    for path in paths:
        if os.path.isdir(path):
            expect, traces = _walk(path)
            covered: set[str] = set()
            for e in expect:
                covered.update(os.path.abspath(c.trace) for c in load(e))
            for t in traces:
                if os.path.abspath(t) not in covered:
                    add(bare_case(t))
        elif path.endswith(SUFFIX):
            load(path)
        else:
            add(bare_case(path))
    return found
