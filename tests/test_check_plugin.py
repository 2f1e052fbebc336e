"""The pytest plugin collects *.expect.toml files; its items pass and fail as `check` does."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from cli import pytest_plugin

ROOT = Path(__file__).resolve().parent.parent
SAMPLES = ROOT / "traces" / "samples"

BAD = """\
[[test]]
name = "wrong count"
trace = "hot-table.jsonl"
[test.expect]
blocks_per = 35

[[test]]
name = "right count"
trace = "hot-table.jsonl"
[test.expect]
blocks_per = 36

[[test]]
name = "stranded unnoticed"
trace = "stranded.jsonl"
"""


@pytest.fixture(scope="module")
def folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    d = tmp_path_factory.mktemp("plugin")
    for name in ("hot-table", "stranded", "leak"):
        shutil.copy(SAMPLES / f"{name}.jsonl", d)
        shutil.copy(SAMPLES / f"{name}.expect.toml", d)
    (d / "bad.expect.toml").write_text(BAD, encoding="utf-8")
    return d


def run_pytest(folder: Path, *args: str) -> tuple[int, dict[str, str], str]:
    """Run pytest in a subprocess; outcomes by test name, from its own JUnit report."""
    report = folder.parent / f"{folder.name}-junit.xml"
    env = {k: v for k, v in os.environ.items() if not k.startswith("PYTEST_")}
    proc = subprocess.run([sys.executable, "-m", "pytest", str(folder), "-p", "no:cacheprovider",
                           "-q", f"--junitxml={report}", "--rootdir", str(folder), *args],
                          capture_output=True, text=True, cwd=folder, env=env, check=False)
    outcomes = {}
    for case in ET.parse(report).getroot().iter("testcase"):
        failed = case.find("failure") is not None or case.find("error") is not None
        outcomes[case.get("name")] = "failed" if failed else "passed"
    return proc.returncode, outcomes, proc.stdout


def run_cli(folder: Path) -> tuple[int, dict[str, str]]:
    proc = subprocess.run([sys.executable, "-c", "from cli.main import main; main()", "check",
                           str(folder), "--format", "json"], capture_output=True, text=True,
                          env=dict(os.environ, GITHUB_ACTIONS=""), check=False)
    doc = json.loads(proc.stdout)
    return proc.returncode, {t["name"]: t["status"] for t in doc["tests"]}


def test_plugin_items_pass_and_fail_as_the_cli_does(folder: Path) -> None:
    status, by_plugin, out = run_pytest(folder)
    cli_status, by_cli = run_cli(folder)
    assert by_plugin == by_cli
    assert by_cli["wrong count"] == by_cli["stranded unnoticed"] == "failed"
    assert by_cli["right count"] == "passed"
    assert by_cli["one wake round of 64 strands the other 36 tables"] == "passed"
    assert (status, cli_status) == (1, 1)
    # pytest shows the same expected/got lines as the CLI report.
    assert "expect.blocks_per: blocks_per is 36" in out
    assert "expected: 35" in out
    assert "invariant stranded broke at" in out


def test_plugin_selection_with_k(folder: Path) -> None:
    status, outcomes, _ = run_pytest(folder, "-k", "right or leak")
    assert status == 0
    assert outcomes == {"right count": "passed", "removed tables leak their in-flight bytes":
                        "passed"}


def test_invalid_file_is_a_collection_error(tmp_path: Path) -> None:
    shutil.copy(SAMPLES / "leak.jsonl", tmp_path)
    (tmp_path / "x.expect.toml").write_text('[[test]]\nname = "a"\ntrace = "leak.jsonl"\n'
                                            "oops = 1\n", encoding="utf-8")
    status, _, out = run_pytest(tmp_path)
    assert status == 2  # pytest: interrupted by collection errors
    assert "field `test[1].oops`: unknown key" in out


def test_plugin_collects_only_expectation_files() -> None:
    assert pytest_plugin.pytest_collect_file(Path("x.jsonl"), None) is None  # type: ignore[arg-type]
    assert pytest_plugin.pytest_collect_file(Path("x.toml"), None) is None  # type: ignore[arg-type]
    # The project's own run (testpaths = tests) holds no expectation file to collect.
    assert not list((ROOT / "tests").rglob("*.expect.toml"))
