"""Hand-picked hostile traces, each with the status and the one-line message it must give.

The hypothesis suites explore; these pin down every kind of bad input the issue lists, so a
regression names the case that broke.
"""

from __future__ import annotations

import gzip
import json
import os
import pickle
import subprocess
import sys
import tracemalloc
from pathlib import Path

import pytest
from fuzz_harness import assert_one_line_error, base_lines, encode_lines, invoke

from traces.errors import StrictAnomaly, TraceError, TruncatedTrace, UnreadableTrace
from traces.reader import MAX_LINE_BYTES, TraceReader

HDR = b'{"type":"header","version":1,"config":{"per_low":100,"per_high":200}}'


def ev(**fields: object) -> bytes:
    base: dict = {"ts": 1, "type": "enqueue", "dispatcher": "d", "id": 1, "bytes": 10}
    base.update(fields)
    return json.dumps({k: v for k, v in base.items() if v is not ...}).encode()


# (id, trace bytes, exit status, substrings of the message, line named)
CASES = [
    ("nan-ts", b'{"ts":NaN,"type":"flush","dispatcher":"d","id":1}\n', 3,
     ["NaN and Infinity"], 1),
    ("infinity-bytes", HDR + b'\n{"ts":1,"type":"enqueue","dispatcher":"d","id":1,'
     b'"bytes":Infinity}\n', 3, ["malformed JSON"], 2),
    ("1e400-ts", b'{"ts":1e400,"type":"remove","dispatcher":"d"}\n', 3, ["`ts`"], 1),
    ("2**70-ts", ev(ts=2**70) + b"\n", 3, ["`ts`", "seconds"], 1),
    ("ns-since-epoch-ts", ev(ts=1.7e18) + b"\n", 3, ["`ts`", "nanoseconds"], 1),
    ("negative-bytes", HDR + b"\n" + ev(bytes=-1) + b"\n", 3, ["`bytes`", ">= 0"], 2),
    ("2**70-bytes", ev(bytes=2**70) + b"\n", 3, ["`bytes`"], 1),
    ("bool-bytes", ev(bytes=True) + b"\n", 3, ["`bytes`", "bool"], 1),
    ("bool-ts", ev(ts=False) + b"\n", 3, ["`ts`", "bool"], 1),
    ("float-id", ev(id=1.5) + b"\n", 3, ["`id`", "float"], 1),
    ("string-bytes", ev(bytes="10") + b"\n", 3, ["`bytes`", "str"], 1),
    ("missing-dispatcher", ev(dispatcher=...) + b"\n", 3, ["`dispatcher`", "missing"], 1),
    ("missing-bytes", ev(bytes=...) + b"\n", 3, ["`bytes`", "enqueue needs"], 1),
    ("missing-type", ev(type=...) + b"\n", 3, ["`type`"], 1),
    ("unknown-type", ev(type="upsert") + b"\n", 3, ["`type`", "unknown type 'upsert'"], 1),
    ("event-in-events-bad", ev(id=..., bytes=..., events=[{"id": 1, "bytes": -5}]) + b"\n", 3,
     ["`events[0].bytes`"], 1),
    ("events-not-list", ev(id=..., bytes=..., events={"id": 1}) + b"\n", 3, ["`events`"], 1),
    ("version-2", b'{"type":"header","version":2}\n', 3, ["`version`", "unsupported"], 1),
    ("version-bool", b'{"type":"header","version":true}\n', 3, ["`version`"], 1),
    ("header-twice", HDR + b"\n" + HDR + b"\n", 3, ["header is allowed only"], 2),
    ("ts-decreases", ev(ts=2) + b"\n" + ev(ts=1, id=2) + b"\n", 3,
     ["`ts`", "must not decrease", "line 1"], 2),
    ("array-line", b"[1,2,3]\n", 3, ["not a JSON object"], 1),
    ("string-line", ev() + b'\n"hello"\n', 3, ["expected a JSON"], 2),
    ("invalid-utf8", b'{"ts":1,"type":"remove","dispatcher":"\xff\xfe"}\n', 3,
     ["invalid UTF-8"], 1),
    ("nul-byte", b'{"ts":1,"type":"remove","dispatcher":"a\x00b"}\n', 3, ["NUL"], 1),
    ("deeply-nested", b'{"ts":1,"type":"remove","dispatcher":"d","x":' + b"[" * 200_000
     + b"]" * 200_000 + b"}\n", 3, ["nested too deeply"], 1),
    ("long-dispatcher", ev(dispatcher="x" * 100_000) + b"\n", 3, ["`dispatcher`", "4096"], 1),
    ("long-type", ev(type="y" * 100_000) + b"\n", 3, ["`type`", "…"], 1),
    ("long-policy", b'{"type":"header","version":1,"config":{"policy":"' + b"p" * 5000
     + b'"}}\n', 3, ["`config.policy`"], 1),
    ("unknown-policy", b'{"type":"header","version":1,"config":{"policy":"fifo"}}\n', 3,
     ["`config.policy`", "option-a"], 1),
    ("duplicate-dml-id", ev() + b"\n" + ev() + b"\n", 3, ["`id`", "enqueued again"], 2),
    ("cut-mid-line", ev() + b"\n" + ev(id=2)[:25], 4, ["cut off mid-write"], 2),
    ("cut-mid-number", ev() + b'\n{"ts":1.', 4, ["cut off mid-write"], 2),
    ("line-break-in-value", b'{"ts":1,"type":"remove",\n"dispatcher":"d"}\n', 3,
     ["ends inside a JSON value"], 1),
    ("binary-file", b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR", 3, ["is this a JSON Lines trace"], 1),
    ("gzip-header-only", b"\x1f\x8b", 4, ["gzip stream ends early"], 1),
]

# Legal, if odd: these replay (status 0).
ACCEPTED = [
    ("empty", b""),
    ("blank-lines", b"\n\n   \n\t\n"),
    ("header-only", HDR + b"\n"),
    ("header-only-no-newline", HDR),
    ("crlf", ev().replace(b"}", b"}\r") + b"\n"),
    ("utf8-bom", b"\xef\xbb\xbf" + HDR + b"\n" + ev() + b"\n"),
    # Duplicate keys: JSON leaves them undefined; like most parsers the last one wins.
    ("duplicate-keys", b'{"ts":5,"ts":1,"type":"enqueue","type":"enqueue","dispatcher":"d",'
     b'"id":1,"bytes":10}\n' + ev(ts=2, type="flush", bytes=...) + b"\n"),
    ("unknown-fields", ev(extra={"nested": [1, [2, [3]]]}, note="x" * 10_000) + b"\n"),
    ("escaped-nul-and-ansi", ev(dispatcher="a\u0000\x1b[31mred") + b"\n"),
    ("huge-multiplier", b'{"type":"header","version":1,"config":{"multiplier":'
     + str(2**70).encode() + b"}}\n" + ev(bytes=2**53) + b"\n"),
    ("huge-watermarks", b'{"type":"header","version":1,"config":{"per_high":' + str(2**70).encode()
     + b',"global_high":-5,"memory_quota":-1}}\n' + ev() + b"\n"),
    ("negative-ts", ev(ts=-1e11) + b"\n" + ev(ts=1e11, type="flush", bytes=...) + b"\n"),
    ("no-trailing-newline", ev()),
]


def _write(tmp_path: Path, name: str, data: bytes) -> str:
    path = tmp_path / name
    path.write_bytes(data)
    return str(path)


@pytest.mark.parametrize("case_id,data,status,parts,line", CASES, ids=[c[0] for c in CASES])
@pytest.mark.parametrize("cmd", [["run"], ["run", "--format", "jsonl"], ["stats"]])
def test_bad_trace(tmp_path: Path, cmd: list[str], case_id: str, data: bytes, status: int,
                   parts: list[str], line: int | None) -> None:
    path = _write(tmp_path, "bad.jsonl", data)
    prom = tmp_path / "out.prom"
    o = invoke([*cmd, path, "--metrics", str(prom)])
    assert o.crash is None, o.crash
    assert o.status == status, o.err
    assert_one_line_error(o, path, data.count(b"\n") + 1)
    where = f"{path}:{line}: " if line is not None else f"{path}: "
    assert o.err.startswith(f"budget-replay: {where}"), o.err
    for part in parts:
        assert part in o.err, o.err
    assert len(o.err) < 400
    assert sorted(os.listdir(tmp_path)) == ["bad.jsonl"]  # no metrics file, no temp file


@pytest.mark.parametrize("case_id,data", ACCEPTED, ids=[c[0] for c in ACCEPTED])
@pytest.mark.parametrize("cmd", [["run"], ["run", "--format", "jsonl"], ["stats"],
                                 ["check"]])
def test_odd_but_legal_trace(tmp_path: Path, cmd: list[str], case_id: str, data: bytes) -> None:
    path = _write(tmp_path, "odd.jsonl", data)
    extra = ["--openmetrics", str(tmp_path / "o.om")] if cmd[0] != "check" else []
    o = invoke([*cmd, path, *extra])
    assert o.crash is None, o.crash
    assert o.status in (0, 1), o.err  # check may fail an invariant on an absurd config
    assert "Traceback" not in o.err and "internal error" not in o.err


def test_check_reports_a_bad_trace_and_keeps_going(tmp_path: Path) -> None:
    good = _write(tmp_path, "good.jsonl", encode_lines(base_lines()))
    bad = _write(tmp_path, "bad.jsonl", ev() + b"\n" + ev(id=2)[:20])
    o = invoke(["check", "--format", "json", bad, good])
    assert o.crash is None, o.crash
    assert o.status == 4
    report = json.loads(o.out)
    assert "cut off" in json.dumps(report)


# Files that are not there, not files, or not readable ------------------------------------------
def test_missing_file(tmp_path: Path) -> None:
    path = str(tmp_path / "nope.jsonl")
    o = invoke(["run", path])
    assert o.status == 6 and "no such file" in o.err
    assert_one_line_error(o, path)


@pytest.mark.parametrize("cmd", [["run"], ["stats"], ["run", "--format", "jsonl"]])
def test_directory_as_trace(tmp_path: Path, cmd: list[str]) -> None:
    o = invoke([*cmd, str(tmp_path)])
    assert o.status == 6 and "is a directory" in o.err
    assert_one_line_error(o, str(tmp_path))


def test_path_through_a_file(tmp_path: Path) -> None:
    f = _write(tmp_path, "plain.jsonl", ev() + b"\n")
    o = invoke(["run", f + "/x.jsonl"])
    assert o.status == 6, o.err
    assert_one_line_error(o, f + "/x.jsonl")


@pytest.mark.skipif(not os.path.exists("/proc/self/mem"), reason="needs Linux /proc")
def test_file_that_opens_but_cannot_be_read() -> None:
    # Opening /proc/self/mem works, reading its first bytes fails with EIO: a real read error
    # that even root gets (chmod 000 does not stop root).
    o = invoke(["run", "/proc/self/mem"])
    assert o.status == 6, o.err
    assert_one_line_error(o, "/proc/self/mem")


def test_permission_denied(tmp_path: Path) -> None:
    """chmod 000 does not stop root, so the unreadable file is read by an unprivileged child."""
    path = _write(tmp_path, "secret.jsonl", ev() + b"\n")
    os.chmod(path, 0)
    if os.geteuid() != 0:
        o = invoke(["run", path])
        assert o.status == 6 and "permission denied" in o.err
        return
    os.chmod(tmp_path, 0o755)
    # Everything is imported as root (the interpreter lives under /root), then privileges drop.
    code = ("import os, sys\n"
            "from traces.reader import TraceReader\n"
            "from traces.errors import TraceError\n"
            "os.setgid(65534); os.setuid(65534)\n"
            "try:\n    TraceReader(sys.argv[1])\n"
            "except TraceError as e:\n    print(e.status, e.one_line())\n")
    root = str(Path(__file__).resolve().parent.parent)
    try:
        r = subprocess.run([sys.executable, "-c", code, path], capture_output=True, text=True,
                           cwd=root, env={**os.environ, "PYTHONPATH": root}, timeout=60)
    except OSError as e:
        pytest.skip(f"cannot start an unprivileged child: {e}")
    if r.returncode != 0 and ("Permission denied" in r.stderr or "ModuleNotFound" in r.stderr):
        pytest.skip("the unprivileged user cannot run this Python: " + r.stderr[-200:])
    assert r.stdout.startswith("6 ") and "permission denied" in r.stdout, r.stdout + r.stderr


# Gzip -------------------------------------------------------------------------------------------
def _gz(data: bytes) -> bytes:
    return gzip.compress(data, mtime=0)


def test_truncated_gzip(tmp_path: Path) -> None:
    data = _gz(encode_lines(base_lines() * 3))
    path = _write(tmp_path, "t.jsonl.gz", data[: len(data) // 2])
    o = invoke(["run", path])
    assert o.status == 4 and "gzip stream ends early" in o.err
    assert_one_line_error(o, path)


@pytest.mark.parametrize("where", [10, 0.5, -6])
def test_corrupt_gzip(tmp_path: Path, where: float) -> None:
    data = bytearray(_gz(encode_lines(base_lines() * 3)))
    i = int(len(data) * where) if isinstance(where, float) else where
    data[i] ^= 0x5A
    path = _write(tmp_path, "c.jsonl.gz", bytes(data))
    o = invoke(["stats", path])
    assert o.status in (3, 4), o.err
    assert_one_line_error(o, path)


def test_gzip_of_garbage(tmp_path: Path) -> None:
    path = _write(tmp_path, "g.jsonl.gz", _gz(os.urandom(5000)))
    o = invoke(["run", path])
    assert o.status in (3, 4), o.err
    assert_one_line_error(o, path)


# A line of hundreds of megabytes --------------------------------------------------------------
def _huge_sparse_line(tmp_path: Path, size: int) -> str:
    """A 'line' of ``size`` bytes that costs no disk: a sparse file (NULs inside a string)."""
    path = tmp_path / "huge.jsonl"
    with open(path, "wb") as f:
        f.write(ev() + b"\n" + b'{"ts":2,"type":"remove","dispatcher":"')
        f.seek(size)
        f.write(b'"}\n')
    return str(path)


def _peak_while_reading(path: str) -> tuple[int, TraceError | None]:
    tracemalloc.start()
    err = None
    try:
        with TraceReader(path) as reader:
            for _ in reader:
                pass
    except TraceError as e:
        err = e
    finally:
        _, peak = tracemalloc.get_traced_memory()
        tracemalloc.stop()
    return peak, err


def test_huge_line_is_refused_without_reading_it_whole(tmp_path: Path) -> None:
    path = _huge_sparse_line(tmp_path, 400 << 20)
    peak, err = _peak_while_reading(path)
    assert err is not None and err.status == 3 and err.line == 2
    assert "longer than 16 MiB" in err.message
    # Bounded by the line limit plus a chunk or two, not by the 400 MB line.
    assert peak < 4 * MAX_LINE_BYTES, peak


def test_huge_line_inside_gzip_is_refused(tmp_path: Path) -> None:
    """A gzip bomb: 300 MB of one line compresses to a few hundred KB."""
    path = tmp_path / "bomb.jsonl.gz"
    with gzip.open(path, "wb", compresslevel=1) as f:
        f.write(b'{"ts":1,"type":"remove","dispatcher":"')
        block = b"x" * (1 << 20)
        for _ in range(300):
            f.write(block)
        f.write(b'"}\n')
    peak, err = _peak_while_reading(str(path))
    assert err is not None and err.status == 3 and err.line == 1
    assert peak < 4 * MAX_LINE_BYTES, peak


def test_huge_line_real_process_memory(tmp_path: Path) -> None:
    """The console script on a 600 MB line: refused, and its peak RSS stays far below that."""
    path = _huge_sparse_line(tmp_path, 600 << 20)
    proc = subprocess.Popen([sys.executable, "-m", "cli", "run", path],
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    assert proc.stderr is not None
    err = proc.stderr.read().decode()
    _, status, usage = os.wait4(proc.pid, 0)
    proc.returncode = os.waitstatus_to_exitcode(status)
    assert proc.returncode == 3, err
    assert err.count("\n") == 1 and f"{path}:2:" in err
    assert usage.ru_maxrss * 1024 < 200 << 20, usage.ru_maxrss  # KiB on Linux


# --strict ---------------------------------------------------------------------------------------
STRICT = [
    ("enqueue-while-paused", encode_lines(base_lines()), 5, "while its path is paused"),
    ("unknown-flush", ev(type="flush", bytes=...) + b"\n", 1, "no such DML in flight"),
    ("after-remove", ev(type="remove", id=..., bytes=...) + b"\n" + ev(ts=2) + b"\n", 2,
     "was removed"),
]


@pytest.mark.parametrize("case_id,data,line,part", STRICT, ids=[c[0] for c in STRICT])
@pytest.mark.parametrize("cmd", [["run"], ["run", "--format", "jsonl"], ["stats"]])
def test_strict_turns_anomalies_into_errors(tmp_path: Path, cmd: list[str], case_id: str,
                                            data: bytes, line: int, part: str) -> None:
    path = _write(tmp_path, "s.jsonl", data)
    lax = invoke([*cmd, path])
    assert lax.status == 0 and lax.err == "", lax.err
    o = invoke([*cmd, "--strict", path])
    assert o.status == 5, o.err
    assert o.err.startswith(f"budget-replay: {path}:{line}: ") and part in o.err, o.err
    assert_one_line_error(o, path)


def test_without_strict_anomalies_are_counted(tmp_path: Path) -> None:
    path = _write(tmp_path, "s.jsonl", encode_lines(base_lines()))
    o = invoke(["run", "--format", "json", path])
    assert o.status == 0
    assert json.loads(o.out)["anomalies_total"] == 3
    log = [json.loads(x) for x in invoke(["run", "--format", "jsonl", path]).out.splitlines()]
    assert [r["line"] for r in log if r.get("code") == "enqueue_while_paused"] == [5, 6, 7]


# Errors leave worker processes intact ---------------------------------------------------------
def test_trace_errors_pickle() -> None:
    for e in (TraceError("t", 3, "bad", "ts"), TruncatedTrace("t", 9, "cut"),
              UnreadableTrace("t", None, "gone"), StrictAnomaly("t", 1, "x")):
        back = pickle.loads(pickle.dumps(e))
        assert type(back) is type(e) and back.one_line() == e.one_line()
        assert back.status == e.status


@pytest.mark.parametrize("cmd", [["sweep", "--param", "per-high=64MiB,128MiB", "--jobs", "2"],
                                 ["compare", "--jobs", "2"]])
def test_bad_trace_in_worker_processes(tmp_path: Path, cmd: list[str]) -> None:
    path = _write(tmp_path, "cut.jsonl", encode_lines(base_lines())[:-30])
    r = subprocess.run([sys.executable, "-m", "cli", cmd[0], path, *cmd[1:]],
                       capture_output=True, text=True, timeout=120)
    assert r.returncode == 4, r.stderr
    assert r.stderr.count("\n") == 1 and r.stderr.startswith(f"budget-replay: {path}:")
