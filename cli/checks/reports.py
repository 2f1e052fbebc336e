"""Reports of a check run: the human report, JSON, JUnit XML and GitHub Actions annotations."""

from __future__ import annotations

import os
import xml.etree.ElementTree as ET
from collections.abc import Sequence
from typing import IO, Any

from rich.console import Console
from rich.markup import escape

from cli.checks.evaluate import ERROR, FAILED, PASSED, CaseResult, Failure
from traces.errors import EXIT_CHECK_FAILED, EXIT_OK


def exit_status(results: Sequence[CaseResult]) -> int:
    """0 all passed; a trace error's own status (3, 4, 6) before 1 for failed checks."""
    for r in results:
        if r.status == ERROR and r.error is not None:
            return r.error.status
    if any(r.status != PASSED for r in results):
        return EXIT_CHECK_FAILED
    return EXIT_OK


def counts(results: Sequence[CaseResult]) -> dict[str, int]:
    return {"tests": len(results),
            "passed": sum(r.status == PASSED for r in results),
            "failed": sum(r.status == FAILED for r in results),
            "errors": sum(r.status == ERROR for r in results)}


def _where(f: Failure) -> str:
    if f.path is None:
        return ""
    return f"{f.path}:{f.line}" if f.line is not None else f.path


def failure_lines(f: Failure) -> list[str]:
    """How one failure reads in the human report and in pytest's."""
    if f.kind == "error":
        return [f"error: {f.message}"]
    if f.kind == "invariant":
        where = _where(f)
        if f.got is not None:  # an invariant the trace should break held
            head = f"invariant {f.name}" + (f" ({where})" if where else "")
        else:
            head = f"invariant {f.name}" + (f" broke at {where}" if f.line is not None else "")
        lines = [head, f"  {f.message}"]
    else:
        lines = [f"{f.name}: {f.message}"]
    if f.expected is not None:
        lines.append(f"  expected: {f.expected}")
        lines.append(f"  got:      {f.got}")
    return lines


def case_title(r: CaseResult) -> str:
    c = r.case
    extra = [os.path.basename(c.trace)] if c.source else []
    extra += [f"{o.name} failed as expected" for o in r.invariants
              if o.mode == "fail" and o.passed]
    return c.name + (f"  ({'; '.join(extra)})" if extra else "")


_LABEL = {PASSED: ("SUCCESS", "green"), FAILED: ("FAILED", "bold red"),
          ERROR: ("ERROR", "bold red")}


def render_text(console: Console, results: Sequence[CaseResult]) -> None:
    suite = None
    for r in results:
        if r.case.suite != suite and r.case.source is not None:
            suite = r.case.suite
            console.print(f"[bold]{escape(suite)}[/]")
        elif r.case.source is None and suite is not None:
            suite = None
            console.print("[bold](traces without an expectation file)[/]")
        label, style = _LABEL[r.status]
        console.print(f"  [{style}]{label:<8}[/] {escape(case_title(r))}")
        for f in r.failures:
            for i, line in enumerate(failure_lines(f)):
                console.print(("    - " if i == 0 else "      ") + escape(line))
    n = counts(results)
    style = "green" if n["passed"] == n["tests"] else "bold red"
    console.print(f"\n[{style}]{n['tests']} tests: {n['passed']} passed, {n['failed']} failed, "
                  f"{n['errors']} errors[/]")


def to_json(results: Sequence[CaseResult]) -> dict[str, Any]:
    return {
        "status": exit_status(results),
        "summary": counts(results),
        "tests": [{
            "name": r.case.name,
            "file": r.case.source,
            "trace": r.case.trace,
            "status": r.status,
            "invariants": {o.name: o.status for o in r.invariants},
            "failures": [{"kind": f.kind, "name": f.name, "message": f.message,
                          "expected": f.expected, "got": f.got, "path": f.path,
                          "line": f.line} for f in r.failures],
        } for r in results],
    }


def junit_tree(results: Sequence[CaseResult]) -> ET.ElementTree:
    """JUnit XML: one ``testsuite`` per expectation file (or bare trace), one ``testcase``
    per test."""
    n = counts(results)
    root = ET.Element("testsuites", name="budget-replay check", tests=str(n["tests"]),
                      failures=str(n["failed"]), errors=str(n["errors"]),
                      time=f"{sum(r.seconds for r in results):.3f}")
    suites: dict[str, list[CaseResult]] = {}
    for r in results:
        suites.setdefault(r.case.suite, []).append(r)
    for name, rs in suites.items():
        sn = counts(rs)
        suite = ET.SubElement(root, "testsuite", name=name, tests=str(sn["tests"]),
                              failures=str(sn["failed"]), errors=str(sn["errors"]), skipped="0",
                              time=f"{sum(r.seconds for r in rs):.3f}")
        for r in rs:
            attrs = {"classname": _classname(name), "name": r.case.name,
                     "file": r.case.source or r.case.trace, "time": f"{r.seconds:.3f}"}
            if r.case.line is not None:
                attrs["line"] = str(r.case.line)
            tc = ET.SubElement(suite, "testcase", attrs)
            if r.status == PASSED:
                continue
            tag = "error" if r.status == ERROR else "failure"
            first = r.failures[0]
            el = ET.SubElement(tc, tag, message=first.message,
                               type=first.name if tag == "failure" else "TraceError")
            el.text = "\n".join("\n".join(failure_lines(f)) for f in r.failures)
    return ET.ElementTree(root)


def _classname(suite: str) -> str:
    base = os.path.basename(suite)
    for suffix in (".expect.toml", ".jsonl.gz", ".jsonl"):
        if base.endswith(suffix):
            return base[: -len(suffix)]
    return base


def write_junit(results: Sequence[CaseResult], out: IO[bytes]) -> None:
    tree = junit_tree(results)
    ET.indent(tree)
    tree.write(out, encoding="utf-8", xml_declaration=True)


def _escape_data(s: str) -> str:
    return s.replace("%", "%25").replace("\r", "%0D").replace("\n", "%0A")


def _escape_property(s: str) -> str:
    return _escape_data(s).replace(":", "%3A").replace(",", "%2C")


def github_annotations(results: Sequence[CaseResult]) -> list[str]:
    """``::error`` workflow commands, one per failure, pointing at the trace or the
    expectation file line."""
    out = []
    for r in results:
        for f in r.failures:
            props = []
            if f.path:
                props.append(f"file={_escape_property(f.path)}")
                if f.line is not None:
                    props.append(f"line={f.line}")
            props.append(f"title={_escape_property(f'{r.case.name}: {f.name}')}")
            out.append(f"::error {','.join(props)}::{_escape_data(chr(10).join(failure_lines(f)))}")
    return out
