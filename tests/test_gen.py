"""The workload generator: seeded, byte-identical, closed-loop (zero conformance anomalies)."""

from __future__ import annotations

import gzip
import hashlib
import io

import pytest
from click.testing import CliRunner

from budget.decisions import CONFORMANCE_CODES
from cli.main import cli
from traces.generator import PRESETS, generate, options_for
from traces.reader import TraceReader
from traces.replay import replay

SMALL = {"dispatchers": 40, "duration": 1.0, "rate": 120.0}


def _gen(preset: str, seed: int = 1, **kw: object) -> bytes:
    buf = io.BytesIO()
    generate(buf, options_for(preset, **{**SMALL, **kw}), seed)
    return buf.getvalue()


@pytest.mark.parametrize("preset", list(PRESETS))
@pytest.mark.parametrize("policy", ["option-a", "admission"])
def test_presets_replay_without_conformance_anomalies(tmp_path, preset, policy) -> None:
    path = tmp_path / "g.jsonl"
    path.write_bytes(_gen(preset, policy=policy))
    codes: list[str] = []
    res = replay(str(path), lambda r: codes.append(r.code) if r.kind == "anomaly" else None)
    assert res.enqueues > 0
    assert not [c for c in codes if c in CONFORMANCE_CODES]
    assert res.config.policy == policy


def test_same_seed_same_bytes_other_seed_other_bytes() -> None:
    a, b, c = _gen("bursty", 7), _gen("bursty", 7), _gen("bursty", 8)
    assert hashlib.sha256(a).digest() == hashlib.sha256(b).digest()
    assert a != c


def test_churn_removes_and_leaks() -> None:
    data = _gen("churn", 3, dispatchers=200, duration=3.0, leak_fraction=1.0)
    assert b'"type":"remove"' in data


def test_gen_command_writes_gzip_identical_to_plain(tmp_path) -> None:
    r = CliRunner()
    plain, gz = tmp_path / "a.jsonl", tmp_path / "a.jsonl.gz"
    for out in (plain, gz):
        res = r.invoke(cli, ["gen", "--preset", "hot-table", "--seed", "4", "--duration", "1",
                             "-o", str(out), "--no-progress"])
        assert res.exit_code == 0, res.output
    assert gzip.decompress(gz.read_bytes()) == plain.read_bytes()
    assert gzip.decompress(gz.read_bytes()) == gzip.decompress(gz.read_bytes())
    with TraceReader(str(gz)) as reader:
        assert reader.header.config is None  # hot-table keeps every default
        assert sum(1 for _ in reader) > 10


def test_offered_load_never_pauses(tmp_path) -> None:
    path = tmp_path / "o.jsonl"
    path.write_bytes(_gen("many-tables", offered=True))
    kinds: list[str] = []
    replay(str(path), lambda r: kinds.append(r.kind))
    assert "block" not in kinds


def test_hundred_thousand_dispatchers_in_bounded_time() -> None:
    # Scale check without a timed assertion: 100,000 tables, a short run.
    buf = io.BytesIO()
    stats = generate(buf, options_for("many-tables", dispatchers=100_000, duration=0.2,
                                      rate=2000.0, startup=0.0), seed=1)
    assert stats.dispatchers == 100_000
