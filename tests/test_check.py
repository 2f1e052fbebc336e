"""`budget-replay check`: exit statuses, the human report, JSON, JUnit and GitHub annotations."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from cli.main import main

ROOT = Path(__file__).resolve().parent.parent
SAMPLES = ROOT / "traces" / "samples"
CASES = Path(__file__).resolve().parent / "data" / "cases"


def run_cli(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    with pytest.raises(SystemExit) as exc:
        main(list(args))
    out, err = capsys.readouterr()
    return exc.value.code, out, err


def run_json(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, dict]:
    status, out, _err = run_cli(capsys, "check", "--format", "json", *args)
    return status, json.loads(out)


@pytest.fixture
def sample_copy(tmp_path: Path) -> Path:
    """A folder with a copy of some samples, for expectation files written by the tests."""
    for name in ("stranded.jsonl", "leak.jsonl", "many-tables.jsonl", "hot-table.jsonl"):
        shutil.copy(SAMPLES / name, tmp_path / name)
    return tmp_path


def write(path: Path, text: str) -> Path:
    path.write_text(text, encoding="utf-8")
    return path


def test_bundled_samples_pass_with_their_expectations(capsys: pytest.CaptureFixture[str]) -> None:
    status, doc = run_json(capsys, str(ROOT / "traces"))
    assert status == 0, doc
    assert doc["summary"]["failed"] == doc["summary"]["errors"] == 0
    files = {Path(t["file"]).name for t in doc["tests"]}
    # Every bundled sample has an expectation file, so the folder gives no bare trace.
    assert files == {p.name for p in SAMPLES.glob("*.expect.toml")}
    assert {Path(t["trace"]).name for t in doc["tests"]} == {p.name for p in
                                                            SAMPLES.glob("*.jsonl")}
    by_name = {t["name"]: t for t in doc["tests"]}
    stranded = by_name["one wake round of 64 strands the other 36 tables"]
    assert stranded["invariants"]["stranded"] == "failed as expected"
    assert stranded["invariants"]["fifo"] == "passed"
    assert by_name["removed tables leak their in-flight bytes"]["invariants"]["leak"] == \
        "failed as expected"


def test_no_path_checks_the_bundled_samples(capsys: pytest.CaptureFixture[str]) -> None:
    status, out, _ = run_cli(capsys, "check")
    assert status == 0
    assert out.rstrip().endswith("passed, 0 failed, 0 errors")
    assert "SUCCESS" in out and "FAILED" not in out


@pytest.mark.parametrize(("case", "broken"), [
    ("01-two-dispatchers-global", set()),
    ("02-handoff", set()),
    ("03-stranded", {"stranded"}),
    ("04-legacy-anomaly-leak", {"leak", "conformance"}),
])
def test_invariants_on_golden_cases(capsys: pytest.CaptureFixture[str], case: str,
                                    broken: set[str]) -> None:
    status, doc = run_json(capsys, str(CASES / f"{case}.jsonl"))
    (test,) = doc["tests"]
    failed = {name for name, s in test["invariants"].items() if s == "failed"}
    assert failed == broken
    assert status == (1 if broken else 0)
    assert {f["name"] for f in test["failures"]} == broken


def test_bare_trace_report_points_at_the_line(capsys: pytest.CaptureFixture[str]) -> None:
    status, out, _ = run_cli(capsys, "check", str(CASES / "03-stranded.jsonl"))
    assert status == 1
    assert "FAILED" in out
    assert f"invariant stranded broke at {CASES / '03-stranded.jsonl'}:5" in out
    assert "dispatcher t3, paused at line 5 (ts 0.3), is still paused after the end-of-trace " \
           "drain: stranded (2 violations in all)" in out


def test_disable_switches_an_invariant_off(capsys: pytest.CaptureFixture[str]) -> None:
    status, doc = run_json(capsys, "--disable", "leak", "--disable", "conformance",
                           str(CASES / "04-legacy-anomaly-leak.jsonl"))
    assert status == 0
    assert doc["tests"][0]["invariants"]["leak"] == "off"


def test_bounds_from_the_command_line(capsys: pytest.CaptureFixture[str]) -> None:
    status, doc = run_json(capsys, "--max-overshoot", "2", "--max-blocked", "500ms",
                           str(SAMPLES / "many-tables.jsonl"))
    assert status == 1
    fails = {f["name"]: f for f in doc["tests"][0]["failures"]}
    assert set(fails) == {"overshoot", "blocked-time"}
    assert "above 2 × high (128.0 MiB); peak 366.0 MiB = 2.86 × high" in \
        fails["overshoot"]["message"]
    assert fails["overshoot"]["line"] is not None
    assert "longer than the 500 ms bound" in fails["blocked-time"]["message"]


FAILING = """\
[[test]]
name = "wrong numbers"
trace = "many-tables.jsonl"
[test.expect]
blocks_global = 900
rounds = { min = 1, max = 10 }
peak_ratio = { value = 2.5, tolerance = 0.1 }
peak_global_inflight = { max = "256MiB" }
longest_global_wait = { max = "500ms" }
wake_order = ["t107", "t119", "t000"]
anomalies = { stranded = 1 }

[[test]]
name = "wrong sets"
trace = "stranded.jsonl"
[test.invariants]
stranded = false
[test.expect]
stranded = ["tbl-064", "nobody"]
not_blocked = ["bulk"]

[[test]]
name = "invariant expected to fail holds"
trace = "hot-table.jsonl"
[test.invariants]
leak = "fail"

[[test]]
name = "all right"
trace = "*.jsonl"
[test.invariants]
stranded = false
leak = false
[test.expect]
events = { min = 1 }
"""


def test_expectation_failures_show_expected_and_got(capsys: pytest.CaptureFixture[str],
                                                    sample_copy: Path) -> None:
    f = write(sample_copy / "bad.expect.toml", FAILING)
    status, doc = run_json(capsys, str(f))
    assert status == 1
    tests = {t["name"]: t for t in doc["tests"]}
    # One case per trace the glob matches, named after the trace.
    assert {n for n in tests if n.startswith("all right")} == {
        "all right [hot-table.jsonl]", "all right [leak.jsonl]",
        "all right [many-tables.jsonl]", "all right [stranded.jsonl]"}
    assert all(t["status"] == "passed" for n, t in tests.items() if n.startswith("all right"))
    got = {x["name"]: x for x in tests["wrong numbers"]["failures"]}
    assert set(got) == {"expect.blocks_global", "expect.rounds", "expect.peak_ratio",
                        "expect.peak_global_inflight", "expect.longest_global_wait",
                        "expect.wake_order", "expect.anomalies.stranded"}
    assert (got["expect.blocks_global"]["expected"], got["expect.blocks_global"]["got"]) == \
        ("900", "943")
    assert got["expect.rounds"]["expected"] == "between 1 and 10"
    assert got["expect.peak_ratio"]["expected"] == "2.5 ± 0.1"
    assert got["expect.peak_global_inflight"]["got"] == "366.0 MiB (383778816 bytes)"
    assert got["expect.longest_global_wait"]["got"] == "981 ms"
    assert "differs at position 3" in got["expect.wake_order"]["message"]
    assert got["expect.wake_order"]["got"].startswith("[t107, t119, t065")
    assert got["expect.blocks_global"]["path"] == str(f)
    assert got["expect.blocks_global"]["line"] == 2  # the test's `name = ...` line
    sets = {x["name"]: x for x in tests["wrong sets"]["failures"]}
    assert "missing [nobody] (1); unexpected [tbl-065" in sets["expect.stranded"]["message"]
    assert sets["expect.not_blocked"]["got"] == "blocked: [bulk] (1)"
    (held,) = tests["invariant expected to fail holds"]["failures"]
    assert held["name"] == "leak" and held["got"] == "none"


def test_human_report_lists_expected_and_got(capsys: pytest.CaptureFixture[str],
                                             sample_copy: Path) -> None:
    f = write(sample_copy / "bad.expect.toml", FAILING)
    status, out, _ = run_cli(capsys, "check", str(f), "-k", "wrong numbers")
    assert status == 1
    lines = out.splitlines()
    i = lines.index("    - expect.blocks_global: blocks_global is 943")
    assert lines[i + 1:i + 3] == ["        expected: 900", "        got:      943"]
    assert lines[-1] == "1 tests: 0 passed, 1 failed, 0 errors"


@pytest.mark.parametrize(("text", "field", "message"), [
    ('[[test]]\nname = "a"\ntrace = "leak.jsonl"\n[test.expect]\nblokcs = 3\n',
     "test[1].expect.blokcs", "unknown key"),
    ('[[test]]\nname = "a"\ntrace = "leak.jsonl"\nstrict = true\n', "test[1].strict",
     "unknown key"),
    ('[[tests]]\nname = "a"\n', "tests", "unknown key"),
    ('[[test]]\nname = "a"\n', "test[1].trace", "missing"),
    ('[[test]]\nname = "a"\ntrace = "nope-*.jsonl"\n', "test[1].trace", "matches no file"),
    ('[[test]]\nname = "a"\ntrace = "missing.jsonl"\n', "test[1].trace", "no such file"),
    ('[[test]]\nname = "a"\ntrace = "leak.jsonl"\n[test.invariants]\nfifo = "maybe"\n',
     "test[1].invariants.fifo", "expected true, false or \"fail\""),
    ('[[test]]\nname = "a"\ntrace = "leak.jsonl"\n[test.invariants]\nliveness = true\n',
     "test[1].invariants.liveness", "unknown key"),
    ('[[test]]\nname = "a"\ntrace = "leak.jsonl"\n[test.expect]\nblocks = "many"\n',
     "test[1].expect.blocks", "expected a number"),
    ('[[test]]\nname = "a"\ntrace = "leak.jsonl"\n[test.expect]\nblocks = { min = 3, mx = 4 }\n',
     "test[1].expect.blocks.mx", "unknown key"),
    ('[[test]]\nname = "a"\ntrace = "leak.jsonl"\n[test.expect]\nblocked = "a"\n',
     "test[1].expect.blocked", "list of dispatcher ids"),
    ('[[test]]\nname = "a"\ntrace = "leak.jsonl"\npolicy = "lifo"\n', "test[1].policy",
     "unknown policy"),
    ('[[test]]\nname = "a"\ntrace = "leak.jsonl"\n[test.config]\nper_high = "lots"\n',
     "test[1].config.per_high", "not a size"),
    ('[[test]]\nname = "a"\ntrace = "leak.jsonl"\n[[test]]\nname = "a"\ntrace = "leak.jsonl"\n',
     "test[2].name", "duplicate test name"),
])
def test_invalid_expectation_files_exit_7(capsys: pytest.CaptureFixture[str],
                                          sample_copy: Path, text: str, field: str,
                                          message: str) -> None:
    f = write(sample_copy / "x.expect.toml", text)
    status, out, err = run_cli(capsys, "check", str(sample_copy))
    assert status == 7
    assert out == ""  # nothing runs
    assert err.startswith(f"budget-replay: {f}: field `{field}`: ")
    assert message in err
    assert "(in test 'a')" in err or field == "tests"
    assert len(err.splitlines()) == 1


def test_bad_toml_names_the_line(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    f = write(tmp_path / "x.expect.toml", '[[test]]\nname = "a"\ntrace = \n')
    status, _out, err = run_cli(capsys, "check", str(f))
    assert status == 7
    assert err.startswith(f"budget-replay: {f}:3: invalid TOML")


def test_trace_errors_keep_their_status_and_others_still_run(
        capsys: pytest.CaptureFixture[str], sample_copy: Path) -> None:
    write(sample_copy / "cut.jsonl", '{"ts":0,"type":"enqueue","dispatcher":"a","id":1,"by')
    write(sample_copy / "bad.jsonl", '{"ts":0,"type":"enqueue","dispatcher":"a","id":1}\n')
    write(sample_copy / "t.expect.toml", '[[test]]\nname = "cut"\ntrace = "cut.jsonl"\n'
          '[[test]]\nname = "fine"\ntrace = "hot-table.jsonl"\n')
    status, doc = run_json(capsys, str(sample_copy / "t.expect.toml"))
    assert status == 4  # truncated trace
    assert [t["status"] for t in doc["tests"]] == ["error", "passed"]
    status, doc = run_json(capsys, str(sample_copy / "bad.jsonl"))
    assert status == 3
    assert "field `bytes`" in doc["tests"][0]["failures"][0]["message"]
    status, doc = run_json(capsys, str(sample_copy / "missing.jsonl"))
    assert status == 6


def test_junit_report_parses_back(capsys: pytest.CaptureFixture[str], sample_copy: Path,
                                  tmp_path: Path) -> None:
    write(sample_copy / "bad.expect.toml", FAILING)
    (sample_copy / "sub").mkdir()
    write(sample_copy / "sub" / "cut.jsonl", '{"ts":0,"type":"enqueue"')
    report = tmp_path / "out" / "junit.xml"
    report.parent.mkdir()
    status, _out, _err = run_cli(capsys, "check", str(sample_copy), "--junit", str(report))
    assert status == 4
    root = ET.parse(report).getroot()
    assert root.tag == "testsuites"
    suites = {s.get("name"): s for s in root.iter("testsuite")}
    bad = suites[str(sample_copy / "bad.expect.toml")]
    assert (bad.get("tests"), bad.get("failures"), bad.get("errors")) == ("7", "3", "0")
    cases = {c.get("name"): c for c in bad.iter("testcase")}
    failure = cases["wrong numbers"].find("failure")
    assert failure is not None
    assert failure.get("type") == "expect.blocks_global"
    assert "expected: 900" in (failure.text or "")
    assert cases["all right [leak.jsonl]"].find("failure") is None
    cut = suites[str(sample_copy / "sub" / "cut.jsonl")]
    assert cut.find("testcase/error") is not None
    assert int(root.get("tests")) == sum(int(s.get("tests")) for s in suites.values())


def test_junit_report_is_accepted_by_junitparser(capsys: pytest.CaptureFixture[str],
                                                 sample_copy: Path, tmp_path: Path) -> None:
    junitparser = pytest.importorskip("junitparser")
    write(sample_copy / "bad.expect.toml", FAILING)
    report = tmp_path / "junit.xml"
    run_cli(capsys, "check", str(sample_copy / "bad.expect.toml"), "--junit", str(report))
    xml = junitparser.JUnitXml.fromfile(str(report))
    outcomes = {}
    for suite in xml:
        for case in suite:
            outcomes[case.name] = "passed" if case.is_passed else type(case.result[0]).__name__
    assert outcomes["wrong numbers"] == "Failure"
    assert outcomes["all right [many-tables.jsonl]"] == "passed"
    assert len(outcomes) == 7


def test_junit_write_failure_exits_8(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    status, _out, err = run_cli(capsys, "check", str(CASES / "01-two-dispatchers-global.jsonl"),
                                "--junit", str(tmp_path / "no" / "such" / "dir.xml"))
    assert status == 8
    assert "cannot write" in err


def test_github_annotations(capsys: pytest.CaptureFixture[str], sample_copy: Path,
                            monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("GITHUB_ACTIONS", "true")
    f = write(sample_copy / "bad.expect.toml", FAILING)
    status, out, _ = run_cli(capsys, "check", str(f), str(CASES / "03-stranded.jsonl"))
    assert status == 1
    notes = [line for line in out.splitlines() if line.startswith("::error ")]
    parsed = []
    for note in notes:
        props, message = note[len("::error "):].split("::", 1)
        parsed.append((dict(p.split("=", 1) for p in props.split(",")), message))
    stranded = [p for p, m in parsed if p["file"] == str(CASES / "03-stranded.jsonl")
                .replace(":", "%3A")]
    assert stranded == [{"file": str(CASES / "03-stranded.jsonl"), "line": "5",
                         "title": "03-stranded.jsonl%3A stranded"}]
    blocks = [m for p, m in parsed if p["title"] == "wrong numbers%3A expect.blocks_global"]
    assert blocks == ["expect.blocks_global: blocks_global is 943%0A  expected: 900%0A"
                      "  got:      943"]
    monkeypatch.delenv("GITHUB_ACTIONS")
    _status, out, _ = run_cli(capsys, "check", str(f))
    assert "::error" not in out


def test_real_subprocess(tmp_path: Path) -> None:
    env = dict(os.environ, GITHUB_ACTIONS="")
    proc = subprocess.run([sys.executable, "-c", "from cli.main import main; main()", "check",
                           str(SAMPLES / "stranded.expect.toml"), str(CASES / "03-stranded.jsonl"),
                           "--format", "json"], capture_output=True, text=True, env=env,
                          cwd=ROOT, check=False)
    assert proc.returncode == 1, proc.stderr
    doc = json.loads(proc.stdout)
    assert [t["status"] for t in doc["tests"]] == ["passed", "passed", "failed"]
    assert doc["status"] == 1
