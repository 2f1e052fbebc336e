"""Metrics: the .prom end state and the OpenMetrics series, parsed back with prometheus-client and
compared with hand-worked values and with the decision log."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from collections import defaultdict
from pathlib import Path

import prometheus_client
import pytest
from click.testing import CliRunner
from prometheus_client.openmetrics.parser import text_string_to_metric_families as parse_om
from prometheus_client.parser import text_string_to_metric_families as parse_prom

from cli.main import cli
from cli.views.metrics import (
    BUCKETS,
    FAMILIES,
    GLOBAL_BLOCKED,
    GLOBAL_BYTES,
    GLOBAL_DURATION,
    PER_BLOCKED,
    PER_BYTES,
    PER_DURATION,
    Histogram,
    scope_labels,
)

CASES = Path(__file__).parent / "data" / "cases"
SAMPLES = Path(__file__).resolve().parent.parent / "traces" / "samples"
START = 1_000_000.0
CF = (("changefeed", "changefeed"), ("namespace", "default"), ("type", "cloudstorage"))


def _write(tmp_path: Path, lines: list[dict]) -> str:
    p = tmp_path / "t.jsonl"
    p.write_text("".join(json.dumps(x) + "\n" for x in lines))
    return str(p)


def _run(trace: str, tmp_path: Path, *extra: str) -> tuple[dict, dict, list[dict]]:
    """Replay once; return the .prom samples, the OpenMetrics series and the decision log."""
    prom, om, log = tmp_path / "m.prom", tmp_path / "m.om", tmp_path / "d.jsonl"
    res = CliRunner().invoke(cli, ["run", trace, "--format", "jsonl", "-o", str(log),
                                   "--metrics", str(prom), "--openmetrics", str(om),
                                   "--start-time", str(START), *extra])
    assert res.exit_code == 0, res.output
    decisions = [json.loads(x) for x in log.read_text().splitlines()]
    return read_prom(prom.read_text()), read_openmetrics(om.read_text()), decisions


def _key(name: str, labels: dict[str, str]) -> tuple[str, tuple]:
    return name, tuple(sorted(labels.items()))


def read_prom(text: str) -> dict[tuple[str, tuple], float]:
    return {_key(s.name, s.labels): s.value
            for fam in parse_prom(text) for s in fam.samples}


def read_openmetrics(text: str) -> dict[tuple[str, tuple], list[tuple[float, float]]]:
    """Series → [(wall time, value)], parsed with prometheus-client's OpenMetrics parser.

    prometheus-client 0.26 drops the bucket samples of a histogram's second and later timestamped
    points (its duplicate check does not reset when the timestamp moves on), so each histogram
    point is parsed as a document of its own; gauges are parsed a family at a time.
    """
    assert text.endswith("# EOF\n")
    body = text[: -len("# EOF\n")]
    families: list[list[str]] = []
    for line in body.splitlines():
        if line.startswith("# TYPE"):
            families.append([])
        families[-1].append(line)
    out: dict[tuple[str, tuple], list[tuple[float, float]]] = defaultdict(list)
    for lines in families:
        meta = [x for x in lines if x.startswith("#")]
        samples = [x for x in lines if not x.startswith("#")]
        if "histogram" in meta[0]:
            docs, cur, point = [], [], None
            for x in samples:
                labels = re.sub(r',?le="[^"]*"', "", x[x.index("{"):x.index("}")])
                this = (labels, x.rsplit(" ", 1)[1])  # one point: a label set at one time
                if cur and this != point:
                    docs.append(cur)
                    cur = []
                cur.append(x)
                point = this
            if cur:
                docs.append(cur)
        else:
            docs = [samples]
        for doc in docs:
            for fam in parse_om("\n".join(meta + doc) + "\n# EOF\n"):
                for s in fam.samples:
                    out[_key(s.name, s.labels)].append((round(float(s.timestamp), 3), s.value))
    return dict(out)


def _at(series: list[tuple[float, float]], wall: float) -> float:
    """The series' value at a wall time (its last sample at or before it)."""
    value = None
    for t, v in series:
        if t <= wall + 1e-6:
            value = v
    assert value is not None, wall
    return value


# Hand-worked: tests/data/cases/02-handoff (per 100/200, global 500/250, eff = 2 × bytes) ------
def test_prom_end_state_by_hand(tmp_path: Path) -> None:
    prom, _, _ = _run(str(CASES / "02-handoff.jsonl"), tmp_path)
    names = {n for n, _ in prom}
    for fam in FAMILIES:
        assert any(n.startswith(fam) for n in names), fam
    for g in (GLOBAL_BYTES, GLOBAL_BLOCKED, PER_BYTES, PER_BLOCKED):
        assert prom[(g, CF)] == 0
    # queue waits: small 1.5 → 3 (1.5 s), hot handed off at 2 → 3 (1.0 s)
    assert prom[(GLOBAL_DURATION + "_count", CF)] == 2
    assert prom[(GLOBAL_DURATION + "_sum", CF)] == pytest.approx(2.5)
    assert prom[(GLOBAL_DURATION + "_bucket", tuple(sorted(CF + (("le", "0.64"),))))] == 0
    assert prom[(GLOBAL_DURATION + "_bucket", tuple(sorted(CF + (("le", "1.28"),))))] == 1
    assert prom[(GLOBAL_DURATION + "_bucket", tuple(sorted(CF + (("le", "2.56"),))))] == 2
    assert prom[(GLOBAL_DURATION + "_bucket", tuple(sorted(CF + (("le", "+Inf"),))))] == 2
    # per holds: hot 0 → hand-off 2 (2.0 s), big 0.5 → wake 3 (2.5 s)
    assert prom[(PER_DURATION + "_count", CF)] == 2
    assert prom[(PER_DURATION + "_sum", CF)] == pytest.approx(4.5)
    assert prom[(PER_DURATION + "_bucket", tuple(sorted(CF + (("le", "1.28"),))))] == 0


def test_openmetrics_series_by_hand(tmp_path: Path) -> None:
    _, om, _ = _run(str(CASES / "02-handoff.jsonl"), tmp_path)

    def series(name: str) -> list[tuple[float, float]]:
        return [(t - START, v) for t, v in om[(name, CF)]]

    assert series(GLOBAL_BYTES) == [(0, 240), (0.5, 760), (1, 640), (1.5, 660), (2, 540),
                                    (3, 20), (4, 0)]
    assert series(PER_BYTES) == series(GLOBAL_BYTES)
    assert series(GLOBAL_BLOCKED) == [(0, 0), (1.5, 1), (2, 2), (3, 0), (4, 0)]
    assert series(PER_BLOCKED) == [(0, 1), (0.5, 2), (2, 1), (3, 0), (4, 0)]
    assert series(GLOBAL_DURATION + "_count") == [(0, 0), (3, 2), (4, 2)]
    assert series(PER_DURATION + "_count") == [(0, 0), (2, 1), (3, 2), (4, 2)]
    assert series(PER_DURATION + "_sum") == [(0, 0), (2, 2.0), (3, 4.5), (4, 4.5)]


def test_end_state_is_the_trace_not_the_drain(tmp_path: Path) -> None:
    # c is removed with 60 effective bytes in flight (a leak); b waits in the queue at the end.
    hdr = {"type": "header", "version": 1, "config": {"global_high": 100, "global_low": 50}}
    ev = [hdr,
          {"ts": 0, "type": "enqueue", "dispatcher": "c", "id": 1, "bytes": 30},
          {"ts": 1, "type": "remove", "dispatcher": "c"},
          {"ts": 2, "type": "enqueue", "dispatcher": "b", "id": 1, "bytes": 25}]
    prom, om, log = _run(_write(tmp_path, ev), tmp_path)
    assert prom[(GLOBAL_BYTES, CF)] == 110
    assert prom[(GLOBAL_BLOCKED, CF)] == 1
    assert om[(GLOBAL_BYTES, CF)][-1] == (START + 2, 110)
    assert any(r.get("code") == "leak" for r in log)  # the drain did release them afterwards
    assert prom[(GLOBAL_DURATION + "_count", CF)] == 0  # the drain's wake is not observed


def test_heartbeat_keeps_series_fresh(tmp_path: Path) -> None:
    ev = [{"ts": 100, "type": "enqueue", "dispatcher": "a", "id": 1, "bytes": 5},
          {"ts": 140, "type": "flush", "dispatcher": "a", "id": 1}]
    _, om, _ = _run(_write(tmp_path, ev), tmp_path)
    assert om[(GLOBAL_BYTES, CF)] == [(START, 10), (START + 15, 10), (START + 30, 10),
                                      (START + 40, 0)]


def test_same_trace_same_files(tmp_path: Path) -> None:
    trace = str(SAMPLES / "handoff.jsonl")
    a, b = tmp_path / "a", tmp_path / "b"
    a.mkdir()
    b.mkdir()
    _run(trace, a)
    _run(trace, b)
    for name in ("m.prom", "m.om"):
        assert (a / name).read_bytes() == (b / name).read_bytes()


def _blocked_set_timeline(trace: Path, decisions: list[dict]) -> dict[int, dict]:
    """From the decision log (and the trace's removes): per trace millisecond, the last-known
    global blocked count and global in-flight of each scope."""
    lines = trace.read_text().splitlines()
    header = json.loads(lines[0]) if '"header"' in lines[0] else {}
    dcf = header.get("changefeed") or "default/changefeed"
    dsink = header.get("sink") or "cloudstorage"
    by_line: dict[int, list[dict]] = defaultdict(list)
    for r in decisions:
        if r.get("line") is not None:
            by_line[r["line"]].append(r)
    blocked: dict[tuple, set] = defaultdict(set)
    inflight: dict[tuple, int] = {}
    out: dict[int, dict] = {}
    for no, text in enumerate(lines, 1):
        ev = json.loads(text)
        if ev.get("type") == "header":
            continue
        key = (ev.get("changefeed") or dcf, ev.get("sink") or dsink)
        if ev["type"] == "remove":
            blocked[key].discard(ev["dispatcher"])
        for r in by_line.get(no, []):
            k = (r["changefeed"], r["sink"])
            if r["kind"] == "block" and r["by"] == "global" or r["kind"] == "handoff":
                blocked[k].add(r["dispatcher"])
            elif r["kind"] == "wake" and r["by"] == "global":
                blocked[k].discard(r["dispatcher"])
            if r["kind"] in ("block", "handoff") and r.get("global_inflight") is not None:
                inflight[k] = r["global_inflight"]
            elif r["kind"] == "cross" and r["level"] == "global":
                inflight[k] = r["inflight"]
        ms = round(ev["ts"] * 1000)
        out[ms] = {"blocked": {k: len(v) for k, v in blocked.items()},
                   "inflight": dict(inflight), "line": no}
    return out


@pytest.mark.parametrize("sample", ["mixed.jsonl", "handoff.jsonl", "many-tables.jsonl",
                                    "stranded.jsonl", "leak.jsonl", "redo-and-storage.jsonl"])
def test_series_agree_with_decision_log(sample: str, tmp_path: Path) -> None:
    trace = SAMPLES / sample
    prom, om, decisions = _run(str(trace), tmp_path)
    assert not any(r.get("code") == "enqueue_while_paused" for r in decisions)
    timeline = _blocked_set_timeline(trace, decisions)
    first_ms = min(timeline)
    checked = 0
    for (name, labels), series in om.items():
        if name != GLOBAL_BLOCKED:
            continue
        lab = dict(labels)
        cf = f"{lab['namespace']}/{lab['changefeed']}"
        key = (cf, lab["type"])
        for wall, value in series:
            ms = round((wall - START) * 1000) + first_ms
            if ms in timeline:  # a sample at an event's millisecond, not a repeat
                assert value == timeline[ms]["blocked"].get(key, 0), (key, ms)
                checked += 1
        # the .prom end state equals the series' last sample
        assert prom[(name, labels)] == series[-1][1]
    # global in-flight: wherever a record carries the value at the end of its millisecond
    for ms, state in timeline.items():
        for key, value in state["inflight"].items():
            last_line_of_ms = state["line"]
            recs = [r for r in decisions if r.get("line") == last_line_of_ms
                    and (r["changefeed"], r["sink"]) == key]
            if not recs or recs[-1]["kind"] not in ("block", "handoff"):
                continue
            labels = tuple(sorted(zip(("namespace", "changefeed", "type"),
                                      scope_labels(*key), strict=True)))
            wall = START + (ms - first_ms) / 1000
            assert _at(om[(GLOBAL_BYTES, labels)], wall) == value
            checked += 1
    assert checked > 0


def test_legacy_scopes_are_not_exported_and_labels(tmp_path: Path) -> None:
    prom, om, _ = _run(str(SAMPLES / "mixed.jsonl"), tmp_path)
    types = {dict(lab)["type"] for _, lab in prom}
    assert types == {"cloudstorage"}
    assert {dict(lab)["changefeed"] for _, lab in om} == {"tour"}
    assert scope_labels("ns1/cf", "redo") == ("ns1", "cf", "redo")
    assert scope_labels("plain", "redo") == ("default", "plain", "redo")


def test_per_dispatcher_policy_exports_only_per_dispatcher_families(tmp_path: Path) -> None:
    prom, _, _ = _run(str(CASES / "02-handoff.jsonl"), tmp_path, "--policy", "per-dispatcher")
    names = {n for n, _ in prom}
    assert PER_BYTES in names and GLOBAL_BYTES not in names


def test_private_registry_and_buckets() -> None:
    assert BUCKETS[0] == 0.01 and len(BUCKETS) == 20 and BUCKETS[-1] == pytest.approx(5242.88)
    h = Histogram()
    for v in (0.01, 0.0100001, 6000):
        h.observe(v)
    cum = h.cumulative()
    assert (cum[0], cum[1], cum[-2], cum[-1]) == (1, 2, 2, 3)  # upper bounds are inclusive
    names = {m.name for m in prometheus_client.REGISTRY.collect()}
    assert not any(n.startswith("ticdc_") for n in names)


def test_openmetrics_empty_trace(tmp_path: Path) -> None:
    p = tmp_path / "empty.jsonl"
    p.write_text('{"type": "header", "version": 1}\n')
    om = tmp_path / "e.om"
    res = CliRunner().invoke(cli, ["stats", str(p), "--openmetrics", str(om),
                                   "--metrics", str(tmp_path / "e.prom")])
    assert res.exit_code == 0, res.output
    assert om.read_text() == "# EOF\n"


def test_bad_start_time(tmp_path: Path) -> None:
    res = CliRunner().invoke(cli, ["stats", str(CASES / "02-handoff.jsonl"), "--openmetrics",
                                   str(tmp_path / "x.om"), "--start-time", "yesterday"],
                             standalone_mode=False)
    assert res.exit_code != 0
    assert not (tmp_path / "x.om").exists()


def test_iso_start_time(tmp_path: Path) -> None:
    om = tmp_path / "x.om"
    res = CliRunner().invoke(cli, ["stats", str(CASES / "02-handoff.jsonl"), "--openmetrics",
                                   str(om), "--start-time", "2024-05-01T00:00:00Z"])
    assert res.exit_code == 0, res.output
    series = read_openmetrics(om.read_text())[(GLOBAL_BYTES, CF)]
    assert series[0] == (1714521600.0, 240)


@pytest.mark.skipif(shutil.which("promtool") is None, reason="promtool is not installed")
def test_promtool_accepts_openmetrics(tmp_path: Path) -> None:
    om = tmp_path / "mixed.om"
    res = CliRunner().invoke(cli, ["stats", str(SAMPLES / "redo-and-storage.jsonl"),
                                   "--openmetrics", str(om)])
    assert res.exit_code == 0, res.output
    out = subprocess.run(["promtool", "tsdb", "create-blocks-from", "openmetrics", str(om),
                          str(tmp_path / "tsdb")], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert any((tmp_path / "tsdb").iterdir())


@pytest.mark.skipif(shutil.which("promtool") is None, reason="promtool is not installed")
def test_promtool_millisecond_steps(tmp_path: Path) -> None:
    # events 1 ms apart at wall-clock times where seconds × 1000 is not exact in binary
    ev = [{"ts": i / 1000, "type": "enqueue", "dispatcher": f"d{i}", "id": 1, "bytes": 1}
          for i in range(1, 400)]
    om = tmp_path / "ms.om"
    res = CliRunner().invoke(cli, ["stats", _write(tmp_path, ev), "--openmetrics", str(om),
                                   "--start-time", "1700000000.001"])
    assert res.exit_code == 0, res.output
    assert len(read_openmetrics(om.read_text())[(GLOBAL_BYTES, CF)]) == 399
    out = subprocess.run(["promtool", "tsdb", "create-blocks-from", "openmetrics", str(om),
                          str(tmp_path / "tsdb")], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
