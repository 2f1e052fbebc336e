"""Atomic output files: a failure or Ctrl-C part-way leaves the previous file, no temp file."""

from __future__ import annotations

import errno
import os
import stat
from pathlib import Path

import pytest
from fuzz_harness import base_lines, encode_lines, invoke

import cli.metrics_files
import cli.run
from cli.atomic import OutputFailed, atomic_output

OLD = b"previous content\n"


@pytest.fixture
def trace(tmp_path: Path) -> str:
    path = tmp_path / "in" / "t.jsonl"
    path.parent.mkdir()
    path.write_bytes(encode_lines(base_lines()))
    return str(path)


@pytest.fixture
def out_dir(tmp_path: Path) -> Path:
    d = tmp_path / "out"
    d.mkdir()
    return d


def _only(d: Path, *names: str) -> None:
    assert sorted(os.listdir(d)) == sorted(names), os.listdir(d)


@pytest.mark.parametrize("exc", [RuntimeError("boom"), KeyboardInterrupt(),
                                 OSError(errno.ENOSPC, "No space left on device")])
def test_failure_inside_the_block_keeps_the_previous_file(out_dir: Path,
                                                          exc: BaseException) -> None:
    target = out_dir / "m.prom"
    target.write_bytes(OLD)
    expected = OutputFailed if isinstance(exc, OSError) else type(exc)
    with pytest.raises(expected), atomic_output(str(target), "wb") as f:
        f.write(b"half of the new con")
        raise exc
    assert target.read_bytes() == OLD
    _only(out_dir, "m.prom")


def test_success_replaces_whole_and_is_readable(out_dir: Path) -> None:
    target = out_dir / "m.txt"
    target.write_bytes(OLD)
    with atomic_output(str(target)) as f:
        f.write("new\n")
    assert target.read_text() == "new\n"
    assert stat.S_IMODE(os.stat(target).st_mode) == 0o644
    _only(out_dir, "m.txt")


def test_missing_folder_is_an_output_error(tmp_path: Path) -> None:
    with pytest.raises(OutputFailed) as info, atomic_output(str(tmp_path / "no" / "x.prom")):
        pass
    assert "no/x.prom" in info.value.one_line() and info.value.status == 8


# Through the command line ------------------------------------------------------------------------
def test_jsonl_writer_fails_mid_write(trace: str, out_dir: Path,
                                      monkeypatch: pytest.MonkeyPatch) -> None:
    target = out_dir / "log.jsonl"
    target.write_bytes(OLD)
    calls = {"n": 0}
    real_flush = cli.run.JsonlWriter.flush

    def failing_call(self, rec):  # type: ignore[no-untyped-def]
        calls["n"] += 1
        if calls["n"] == 20:
            real_flush(self)  # some bytes really reach the temporary file first
            raise OSError(errno.ENOSPC, "No space left on device")
        self._buf.extend(b"x\n")

    monkeypatch.setattr(cli.run.JsonlWriter, "__call__", failing_call)
    o = invoke(["run", trace, "--format", "jsonl", "-o", str(target)])
    assert o.crash is None, o.crash
    assert o.status == 8, o.err
    assert o.err.count("\n") == 1 and "No space left on device" in o.err
    assert str(target) in o.err
    assert target.read_bytes() == OLD
    _only(out_dir, "log.jsonl")


def test_ctrl_c_while_writing_metrics(trace: str, out_dir: Path,
                                      monkeypatch: pytest.MonkeyPatch) -> None:
    prom, om = out_dir / "m.prom", out_dir / "m.om"
    prom.write_bytes(OLD)
    om.write_bytes(OLD)

    def interrupted(*_a, **_k):  # type: ignore[no-untyped-def]
        raise KeyboardInterrupt

    monkeypatch.setattr(cli.metrics_files, "generate_latest", interrupted)
    o = invoke(["run", trace, "--metrics", str(prom), "--openmetrics", str(om)])
    # (click starts a new line first, so the message does not follow a "^C" on a terminal)
    assert o.status == 130 and o.err.strip() == "budget-replay: interrupted", o.err
    assert prom.read_bytes() == OLD and om.read_bytes() == OLD
    _only(out_dir, "m.prom", "m.om")


def test_strict_error_mid_log_keeps_the_previous_log(trace: str, out_dir: Path) -> None:
    target = out_dir / "log.jsonl"
    target.write_bytes(OLD)
    o = invoke(["run", trace, "--strict", "--format", "jsonl", "-o", str(target)])
    assert o.status == 5, o.err
    assert target.read_bytes() == OLD
    _only(out_dir, "log.jsonl")


def test_bad_trace_creates_no_output(tmp_path: Path, out_dir: Path) -> None:
    bad = tmp_path / "bad.jsonl"
    bad.write_bytes(encode_lines(base_lines())[:-20])
    argv_sets = [
        ["run", str(bad), "--format", "jsonl", "-o", str(out_dir / "a.jsonl")],
        ["run", str(bad), "--format", "json", "-o", str(out_dir / "a.json")],
        ["run", str(bad), "--svg", str(out_dir / "a.svg"), "--html", str(out_dir / "a.html"),
         "--metrics", str(out_dir / "a.prom"), "--openmetrics", str(out_dir / "a.om")],
        ["stats", str(bad), "--format", "json", "-o", str(out_dir / "s.json")],
        ["check", str(bad), "--junit", str(out_dir / "j.xml")],
    ]
    for argv in argv_sets:
        o = invoke(argv)
        assert o.status == 4, (argv, o.err)
        if argv[0] != "check":  # check reports the bad trace as an errored test case
            _only(out_dir)
    assert not [f for f in os.listdir(out_dir) if f.endswith(".tmp")]


@pytest.mark.parametrize("option", ["-o", "--metrics", "--openmetrics", "--svg", "--html"])
def test_output_into_missing_folder(trace: str, tmp_path: Path, option: str) -> None:
    fmt = ["--format", "jsonl"] if option == "-o" else []
    target = str(tmp_path / "missing" / "x")
    o = invoke(["run", trace, *fmt, option, target])
    assert o.crash is None, o.crash
    assert o.status == 8, o.err
    assert o.err == (f"budget-replay: cannot write {target}: No such file or directory "
                     "(any previous file is left as it was)\n")


def test_junit_into_missing_folder(trace: str, tmp_path: Path) -> None:
    o = invoke(["check", trace, "--junit", str(tmp_path / "missing" / "j.xml")])
    assert o.status == 8 and o.err.count("\n") == 1 and "j.xml" in o.err, o.err
