"""`compare`: one column per configuration, parsed back from its JSON output."""

from __future__ import annotations

import json

import pytest
from click.testing import CliRunner

from cli.main import cli
from cli.views.whatif import _best, pareto
from cli.whatif import parse_named


@pytest.fixture(scope="module")
def trace(tmp_path_factory) -> str:
    path = tmp_path_factory.mktemp("cmp") / "g.jsonl"
    res = CliRunner().invoke(cli, ["gen", "--preset", "many-tables", "--dispatchers", "200",
                                   "--duration", "1", "--rate", "300", "--offered",
                                   "--area-quota", "32MiB", "-o", str(path), "--no-progress"])
    assert res.exit_code == 0, res.output
    return str(path)


def test_parse_named() -> None:
    assert parse_named("admission") == ("admission", {"policy": "admission"})
    name, o = parse_named("small=--policy option-a --per-high 64MiB --max-wake 8")
    assert name == "small"
    assert o == {"policy": "option-a", "per_high": 64 << 20, "max_wake_per_round": 8}


def test_compare_json_has_a_column_per_config(trace: str, tmp_path) -> None:
    out = tmp_path / "c.json"
    res = CliRunner().invoke(cli, ["compare", trace, "--base", "--per-high 16MiB --per-low 8MiB",
                                   "--config", "option-a", "--config", "admission",
                                   "--config", "mw8=--policy option-a --max-wake 8",
                                   "-o", str(out)])
    assert res.exit_code == 0, res.output
    data = json.loads(out.read_text())
    figs = {c["name"]: c["figures"] for c in data["configs"]}
    assert list(figs) == ["option-a", "admission", "mw8"]
    assert figs["admission"]["overshoot"] < figs["option-a"]["overshoot"]
    assert all(f["stranded"] == 0 and f["conformance_anomalies"] == 0 for f in figs.values())
    assert "peak in-flight" in res.output and "* best in its row" in res.output


def test_compare_toml(trace: str, tmp_path) -> None:
    toml = tmp_path / "c.toml"
    toml.write_text('[a]\npolicy = "option-a"\n\n[b]\npolicy = "admission"\nmax-wake = 4\n')
    res = CliRunner().invoke(cli, ["compare", trace, "--toml", str(toml), "--format", "json"])
    assert res.exit_code == 0, res.output
    data = json.loads(res.output)
    assert [c["name"] for c in data["configs"]] == ["a", "b"]
    assert data["configs"][1]["overrides"] == {"policy": "admission", "max_wake_per_round": 4}


def test_compare_rejects_bad_flags(trace: str) -> None:
    res = CliRunner().invoke(cli, ["compare", trace, "--config", "x=--per-high lots"])
    assert res.exit_code == 2


def test_best_and_pareto() -> None:
    assert _best([3, 1, 1, None], "min") == {1, 2}
    assert _best([2, 2], "min") == set()
    rows = [{"peak_inflight": 1, "delay_p99": 9}, {"peak_inflight": 5, "delay_p99": 1},
            {"peak_inflight": 6, "delay_p99": 9}]
    assert pareto(rows) == {0, 1}
