"""pytest plugin: collects ``*.expect.toml`` files so that ``pytest traces/`` runs the checks.

Registered through the ``pytest11`` entry point, so it loads in every pytest session of an
environment where budget-replay is installed. It therefore imports nothing heavy until a session
actually collects an expectation file, and collects nothing else: the project's own
``pytest`` (testpaths ``tests``) is unaffected.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

if TYPE_CHECKING:
    from cli.checks.evaluate import CaseResult
    from cli.checks.expectations import CheckCase

SUFFIX = ".expect.toml"


def pytest_collect_file(file_path: Path, parent: pytest.Collector) -> pytest.Collector | None:
    if file_path.name.endswith(SUFFIX):
        return ExpectationFile.from_parent(parent, path=file_path)
    return None


class ExpectationFile(pytest.File):
    """One expectation file; each test (and each trace its glob matches) is one item."""

    def collect(self) -> Any:
        from cli.checks.expectations import InvalidExpectations, load_expectations

        try:
            cases = load_expectations(str(self.path))
        except InvalidExpectations as e:
            raise self.CollectError(e.one_line()) from None
        for case in cases:
            yield CheckItem.from_parent(self, name=case.name, case=case)


class CheckFailed(Exception):
    """A check case that did not pass; carries the result for the report."""

    def __init__(self, result: CaseResult) -> None:
        super().__init__(result.case.name)
        self.result = result


class CheckItem(pytest.Item):
    def __init__(self, *, case: CheckCase, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.case = case

    def runtest(self) -> None:
        from cli.checks.evaluate import PASSED, run_case

        result = run_case(self.case)
        if result.status != PASSED:
            raise CheckFailed(result)

    def repr_failure(self, excinfo: pytest.ExceptionInfo[BaseException],
                     style: Any = None) -> str:
        if isinstance(excinfo.value, CheckFailed):
            from cli.checks.reports import failure_lines

            r = excinfo.value.result
            lines = [f"{r.case.name} ({r.case.trace}): {r.status.upper()}"]
            for f in r.failures:
                lines += ["  " + line for line in failure_lines(f)]
            return "\n".join(lines)
        return super().repr_failure(excinfo, style)

    def reportinfo(self) -> tuple[Path, int | None, str]:
        line = self.case.line - 1 if self.case.line is not None else None
        return self.path, line, f"{self.case.name} [{Path(self.case.trace).name}]"
