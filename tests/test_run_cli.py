"""`budget-replay run` from the command line: formats, filters, samples, determinism."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner
from decision_log import differences, load

from cli.main import cli

CASES = Path(__file__).parent / "data" / "cases"
SAMPLES = Path(__file__).resolve().parent.parent / "traces" / "samples"


def run(*args: str) -> str:
    result = CliRunner().invoke(cli, ["run", *args], catch_exceptions=False)
    assert result.exit_code == 0, result.output
    return result.output


def summary(path: Path, *flags: str) -> dict:
    return json.loads(run(str(path), "--format", "json", *flags))


@pytest.mark.parametrize("case", ["01-two-dispatchers-global", "02-handoff", "03-stranded",
                                  "04-legacy-anomaly-leak"])
def test_jsonl_is_the_reference_log(case: str) -> None:
    out = run(str(CASES / f"{case}.jsonl"), "--format", "jsonl")
    got = [json.loads(line) for line in out.splitlines()]
    assert differences(got, load(CASES / f"{case}.decisions.jsonl")) == []


def test_jsonl_is_byte_identical_across_runs(tmp_path: Path) -> None:
    a, b = tmp_path / "a.jsonl", tmp_path / "b.jsonl"
    for out in (a, b):
        run(str(SAMPLES / "mixed.jsonl"), "--format", "jsonl", "-o", str(out))
    assert a.read_bytes() == b.read_bytes()
    assert len(a.read_bytes().splitlines()) > 100


def test_no_trace_replays_the_bundled_sample() -> None:
    out = run()
    assert "bundled sample" in out
    for title in ("Effective configuration", "Blocking:", "Wake order:", "Watermark crossings",
                  "Anomalies"):
        assert title in out


def test_piped_table_has_no_colour_codes() -> None:
    proc = subprocess.run([sys.executable, "-m", "cli", "run", str(SAMPLES / "stranded.jsonl"),
                           "--top", "100"],
                          capture_output=True, text=True, check=True)
    assert "\x1b[" not in proc.stdout
    assert "stranded" in proc.stdout and "tbl-099" in proc.stdout
    assert proc.stderr == ""


def test_filters_restrict_the_log() -> None:
    out = run(str(CASES / "02-handoff.jsonl"), "--format", "jsonl", "--dispatcher", "hot")
    recs = [json.loads(line) for line in out.splitlines()]
    assert recs and {r["dispatcher"] for r in recs} == {"hot"}
    out = run(str(SAMPLES / "mixed.jsonl"), "--format", "jsonl", "--changefeed", "default/mysql")
    assert {json.loads(line)["sink"] for line in out.splitlines()} == {"mysql"}


def test_flags_override_the_header() -> None:
    s = summary(CASES / "01-two-dispatchers-global.jsonl", "--global-high", "1KiB")
    assert s["scopes"][0]["global_high"] == 1024
    assert s["scopes"][0]["blocks"] == {}
    s = summary(CASES / "01-two-dispatchers-global.jsonl", "--quota", "100")
    assert s["scopes"][0]["global_high"] == 50  # --quota replaces the header's area_quota


def test_disabled_global_budget_is_said() -> None:
    out = run(str(CASES / "01-two-dispatchers-global.jsonl"), "--global-high", "100",
              "--global-low", "100")
    assert "global budget disabled" in out


class TestSamplesShowTheirBehaviour:
    def test_stranded(self) -> None:
        s = summary(SAMPLES / "stranded.jsonl")["scopes"][0]
        assert (s["sink"], s["stranded"], s["rounds"], s["largest_round"]) == ("redo", 36, 1, 64)

    def test_leak(self) -> None:
        s = summary(SAMPLES / "leak.jsonl")["scopes"][0]
        assert s["leaks"] == 6 and s["waiting"] > 0

    def test_handoff(self) -> None:
        assert summary(SAMPLES / "handoff.jsonl")["scopes"][0]["handoffs"] > 0

    def test_hot_table(self) -> None:
        s = summary(SAMPLES / "hot-table.jsonl")
        assert s["scopes"][0]["blocks"] == {"per": s["scopes"][0]["wakes"]["per"]}
        assert s["blocked_dispatchers"][0]["dispatcher"] == "orders"

    def test_many_tables(self) -> None:
        s = summary(SAMPLES / "many-tables.jsonl")["scopes"][0]
        assert s["blocks"].get("global", 0) > 100 and s["rounds"] > 5 and s["peak_ratio"] > 1

    def test_legacy(self) -> None:
        s = summary(SAMPLES / "legacy-mysql.jsonl")["scopes"][0]
        assert s["policy"] == "legacy" and s["blocks"] == {"legacy": s["wakes"]["legacy"]}

    def test_redo_and_storage_are_separate_scopes(self) -> None:
        scopes = summary(SAMPLES / "redo-and-storage.jsonl")["scopes"]
        assert sorted(s["sink"] for s in scopes) == ["cloudstorage", "redo"]
        assert all(s["global_high"] == 128 << 20 for s in scopes)

    def test_removed_while_paused_is_not_counted_to_the_end(self) -> None:
        s = summary(SAMPLES / "mixed.jsonl", "--top", "100")
        dropped = [d for d in s["blocked_dispatchers"] if d["dispatcher"] == "dropped"]
        assert dropped and dropped[0]["removed_while_paused"]
        assert dropped[0]["blocked_time"] < 0.5  # removed at 0.2 s, not at the end (3.6 s)


def test_samples_rebuild_byte_for_byte(tmp_path: Path) -> None:
    from traces.samples.build import build

    for path in build(str(tmp_path)):
        name = Path(path).name
        assert Path(path).read_bytes() == (SAMPLES / name).read_bytes(), name


def test_samples_have_no_conformance_anomalies() -> None:
    for p in SAMPLES.glob("*.jsonl"):
        run(str(p), "--strict", "--format", "json")
