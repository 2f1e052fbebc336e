"""Ctrl-C and closed pipes on real processes: status 130 or 141, a short message or none, no
temporary file left behind, no traceback."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
OLD = b"previous content\n"


def _cmd(*args: str) -> list[str]:
    return [sys.executable, "-m", "cli", *args]


def _batch(i: int) -> bytes:
    """Two lines: an enqueue of a small batch and the flush of one of its DMLs."""
    ts = i * 0.001
    d = f"d{i % 500}"
    return (b'{"type":"enqueue","ts":%.3f,"dispatcher":"%s","events":[{"id":%d,"bytes":4096},'
            b'{"id":%d,"bytes":8192}]}\n{"type":"flush","ts":%.3f,"dispatcher":"%s","id":%d}\n'
            % (ts, d.encode(), 2 * i, 2 * i + 1, ts, d.encode(), 2 * i))


@pytest.fixture(scope="module")
def big_trace(tmp_path_factory: pytest.TempPathFactory) -> str:
    """About 200k lines (15 MB): a replay that takes a second or more."""
    path = tmp_path_factory.mktemp("big") / "big.jsonl"
    with open(path, "wb") as f:
        f.write(b'{"type":"header","version":1,"changefeed":"default/big"}\n')
        f.write(b"".join(_batch(i) for i in range(100_000)))
    return str(path)


def _feed_forever(proc: subprocess.Popen) -> threading.Thread:
    """Stream an endless trace into the child's stdin: a replay that only Ctrl-C ends."""

    def feed() -> None:
        assert proc.stdin is not None
        i = 0
        try:
            while True:
                proc.stdin.write(b"".join(_batch(j) for j in range(i, i + 2000)))
                i += 2000
        except (BrokenPipeError, ValueError, OSError):
            pass

    t = threading.Thread(target=feed, daemon=True)
    t.start()
    return t


def _wait_for(pred, timeout: float = 30.0) -> None:  # type: ignore[no-untyped-def]
    end = time.monotonic() + timeout
    while not pred():
        if time.monotonic() > end:
            raise AssertionError("timed out waiting for the child to start")
        time.sleep(0.02)


def _tmp_files(d: Path) -> list[str]:
    return [f for f in os.listdir(d) if f.endswith(".tmp")]


@pytest.mark.parametrize("fmt", ["jsonl", "json"])
def test_sigint_during_a_long_replay(tmp_path: Path, fmt: str) -> None:
    out = tmp_path / f"out.{fmt}"
    out.write_bytes(OLD)
    prom = tmp_path / "m.prom"
    proc = subprocess.Popen(_cmd("run", "-", "--format", fmt, "-o", str(out), "--metrics",
                                 str(prom), "--no-progress"),
                            stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, cwd=ROOT)
    feeder = _feed_forever(proc)
    if fmt == "jsonl":  # the log streams into its temporary file from the first decision
        _wait_for(lambda: _tmp_files(tmp_path))
    time.sleep(1.0)
    assert proc.poll() is None, proc.stderr.read() if proc.stderr else ""
    sent = time.monotonic()
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=30)
    took = time.monotonic() - sent
    feeder.join(timeout=5)
    assert proc.returncode == 130, err
    assert err.decode().strip() == "budget-replay: interrupted"
    assert took < 5, took  # promptly, not after the input ends
    assert out.read_bytes() == OLD
    assert not prom.exists()
    assert _tmp_files(tmp_path) == []


def test_sigint_during_gen(tmp_path: Path) -> None:
    out = tmp_path / "gen.jsonl"
    out.write_bytes(OLD)
    proc = subprocess.Popen(_cmd("gen", "--preset", "many-tables", "--duration", "100000",
                                 "-o", str(out), "--no-progress"),
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, cwd=ROOT)
    _wait_for(lambda: _tmp_files(tmp_path))
    time.sleep(0.5)
    assert proc.poll() is None
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=30)
    assert proc.returncode == 130, err
    assert err.decode().strip() == "budget-replay: interrupted"
    assert out.read_bytes() == OLD
    assert _tmp_files(tmp_path) == []


def _head(argv: list[str], lines: int = 5) -> tuple[int, bytes, bytes]:
    """``argv | head -n lines``: read a few lines, close the pipe, collect the writer's end."""
    proc = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, cwd=ROOT)
    assert proc.stdout is not None and proc.stderr is not None
    got = b"".join(proc.stdout.readline() for _ in range(lines))
    proc.stdout.close()
    err = proc.stderr.read()
    proc.wait(timeout=60)
    return proc.returncode, got, err


def test_broken_pipe_is_quiet(big_trace: str) -> None:
    status, got, err = _head(_cmd("run", big_trace, "--format", "jsonl"))
    assert got.count(b"\n") == 5
    assert err == b"", err.decode()
    assert status == 141


@pytest.mark.parametrize("args", [["run"], ["run", "--format", "json"], ["stats"]])
def test_broken_pipe_on_the_reports(big_trace: str, args: list[str]) -> None:
    status, _, err = _head(_cmd(*args, big_trace), lines=1)
    assert err == b"", err.decode()
    assert status in (0, 141)  # a report that fits the pipe buffer may finish first


@pytest.mark.skipif(shutil.which("sh") is None or shutil.which("budget-replay") is None,
                    reason="needs a shell and the installed console script")
def test_shell_pipeline_into_head(big_trace: str) -> None:
    r = subprocess.run(f"budget-replay run '{big_trace}' --format jsonl | head -n 3; "
                       "echo \"status=${PIPESTATUS[0]:-}\"", shell=True, executable="bash",
                       capture_output=True, timeout=120)
    assert r.stderr == b"", r.stderr.decode()
    lines = r.stdout.decode().splitlines()
    assert len(lines) == 4 and lines[-1] == "status=141", lines
