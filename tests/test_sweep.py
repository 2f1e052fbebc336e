"""`sweep`: the grid, in processes, written atomically as CSV and JSON."""

from __future__ import annotations

import csv
import json
import subprocess
import sys

from click.testing import CliRunner

from cli.main import cli
from cli.sweep import grid, parse_param


def test_grid_is_every_combination() -> None:
    pts = grid([parse_param("per-high=64MiB,128MiB"), parse_param("max-wake=8,64")],
               "--policy admission")
    assert [p[0] for p in pts] == [
        {"per-high": "64MiB", "max-wake": "8"}, {"per-high": "64MiB", "max-wake": "64"},
        {"per-high": "128MiB", "max-wake": "8"}, {"per-high": "128MiB", "max-wake": "64"}]
    assert pts[3][1] == {"policy": "admission", "per_high": 128 << 20, "max_wake_per_round": 64}


def test_unknown_param_is_a_usage_error(tmp_path) -> None:
    res = CliRunner().invoke(cli, ["sweep", "--param", "colour=red"])
    assert res.exit_code == 2


def test_sweep_in_processes_writes_csv_and_json(tmp_path) -> None:
    trace = tmp_path / "g.jsonl"
    r = CliRunner().invoke(cli, ["gen", "--preset", "bursty", "--dispatchers", "50",
                                 "--duration", "1", "-o", str(trace), "--no-progress"])
    assert r.exit_code == 0
    out_csv, out_json = tmp_path / "s.csv", tmp_path / "s.json"
    for out in (out_csv, out_json):
        proc = subprocess.run([sys.executable, "-m", "cli", "sweep", str(trace),
                               "--param", "per-high=16MiB,64MiB",
                               "--param", "policy=option-a,admission",
                               "--jobs", "2", "-o", str(out)],
                              capture_output=True, text=True, timeout=120)
        assert proc.returncode == 0, proc.stderr
    rows = list(csv.DictReader(out_csv.open()))
    assert len(rows) == 4 and {r["policy"] for r in rows} == {"option-a", "admission"}
    data = json.loads(out_json.read_text())
    assert [p["params"] for p in data["points"]] == [
        {"per-high": h, "policy": p} for h in ("16MiB", "64MiB") for p in ("option-a", "admission")]
    assert "peak in-flight" in proc.stdout
