"""Fuzzing the whole command line (`run`, `stats`, `check`) with mutated traces, in-process.

Every input must end in a documented exit status; a bad trace in exactly one line on standard
error naming the file and the line, the same status the reader gives; no traceback, no output
file left half-written.
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile

from fuzz_harness import (
    DOCUMENTED,
    TRACE_ERRORS,
    assert_one_line_error,
    fuzz_settings,
    hostile_trace,
    invoke,
)
from hypothesis import given
from hypothesis import strategies as st
from test_fuzz_reader import read_all

COMMANDS = [
    ["run", "--format", "jsonl"],
    ["run"],
    ["run", "--format", "json"],
    ["run", "--strict", "--format", "jsonl"],
    ["stats"],
    ["stats", "--format", "json"],
    ["check"],
    ["check", "--format", "json"],
]


def _line_of(err: str) -> int:
    return int(err.split(": ", 2)[1].rsplit(":", 1)[1])


def _leftovers(d: str, keep: set[str]) -> set[str]:
    return set(os.listdir(d)) - keep


@given(hostile_trace(), st.sampled_from(COMMANDS), st.booleans(), st.booleans())
@fuzz_settings(400)
def test_commands_survive_mutated_traces(case: tuple[bytes, bool], cmd: list[str],
                                         outputs: bool, via_stdin: bool) -> None:
    data, gz = case
    with tempfile.TemporaryDirectory() as d:
        path = os.path.join(d, "t.jsonl.gz" if gz else "t.jsonl")
        with open(path, "wb") as f:
            f.write(data)
        _, reader_err = read_all(path)
        is_check = cmd[0] == "check"
        via_stdin = via_stdin and not is_check
        argv = [*cmd, "-" if via_stdin else path]
        prom = os.path.join(d, "m.prom")
        om = os.path.join(d, "m.om")
        if outputs and not is_check:
            argv += ["--metrics", prom, "--openmetrics", om]
        elif outputs:
            argv += ["--junit", os.path.join(d, "j.xml")]
        o = invoke(argv, stdin=data if via_stdin else b"")
        assert o.crash is None, o.crash
        assert o.status in DOCUMENTED, (o.status, o.err)
        assert "Traceback" not in o.err
        name = "<stdin>" if via_stdin else path
        if is_check:
            # check reports a bad trace as an errored test case and carries on.
            if reader_err is not None:
                assert o.status in {1} | TRACE_ERRORS, (o.status, o.out)
            assert o.status in {0, 1} | TRACE_ERRORS
            assert not [f for f in os.listdir(d) if f.endswith(".tmp")]
            return
        if reader_err is not None and o.status != reader_err.status:
            # Only a model-level error (a duplicate id, a strict anomaly) on an earlier line
            # than the reader's may come first.
            assert o.status in (3, 5), (o.status, o.err, reader_err.one_line())
            assert reader_err.line is not None and _line_of(o.err) < reader_err.line, o.err
        if o.status in TRACE_ERRORS:
            line_max = None if gz else data.count(b"\n") + 1
            assert_one_line_error(o, name, line_max)
            # Nothing half-written: the metrics files are not created at all.
            assert _leftovers(d, {os.path.basename(path)}) == set(), os.listdir(d)
        else:
            assert o.status == 0, (o.status, o.err)
            assert o.err == "", o.err
            if outputs:
                assert os.path.getsize(prom) > 0 and os.path.getsize(om) > 0
            assert not [f for f in os.listdir(d) if f.endswith(".tmp")]


@given(hostile_trace(), st.sampled_from([["run"], ["run", "--format", "jsonl"], ["stats"]]))
@fuzz_settings(8, 60)
def test_console_script_on_mutated_traces(case: tuple[bytes, bool], cmd: list[str]) -> None:
    """A few through a real process: what a user sees, interpreter shutdown included."""
    data, gz = case
    with tempfile.TemporaryDirectory() as d:
        path = os.path.join(d, "t.jsonl.gz" if gz else "t.jsonl")
        with open(path, "wb") as f:
            f.write(data)
        r = subprocess.run([sys.executable, "-m", "cli", *cmd, path], capture_output=True,
                           text=True, errors="replace", timeout=120)
    assert r.returncode in {0} | TRACE_ERRORS, r.stderr
    assert "Traceback" not in r.stderr and "Exception ignored" not in r.stderr
    if r.returncode:
        assert r.stderr.count("\n") == 1 and r.stderr.startswith(f"budget-replay: {path}")
    else:
        assert r.stderr == ""
