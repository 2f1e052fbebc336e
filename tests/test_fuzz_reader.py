"""Fuzzing the trace reader: any bytes end in events or in one TraceError naming file and line."""

from __future__ import annotations

import gzip
import os
import tempfile

import pytest
from fuzz_harness import TRACE_ERRORS, base_lines, encode_lines, fuzz_settings, hostile_trace
from hypothesis import given
from hypothesis import strategies as st

from traces.errors import TraceError
from traces.reader import TraceReader


def read_all(path: str) -> tuple[int, TraceError | None]:
    """Events read before the end or the first error, and that error."""
    n = 0
    try:
        with TraceReader(path) as reader:
            for _ in reader:
                n += 1
    except TraceError as e:
        return n, e
    return n, None


def check_error(e: TraceError, path: str, data: bytes, gz: bool) -> None:
    assert e.status in TRACE_ERRORS
    msg = e.one_line()
    assert "\n" not in msg and msg.startswith(path), msg
    assert e.message and len(msg) < 600, msg
    if e.line is not None:
        assert e.line >= 1
        if not gz:
            assert e.line <= data.count(b"\n") + 1, msg


@given(hostile_trace())
@fuzz_settings(1000)
def test_reader_survives_mutated_traces(case: tuple[bytes, bool]) -> None:
    data, gz = case
    with tempfile.TemporaryDirectory() as d:
        path = os.path.join(d, "t.jsonl.gz" if gz else "t.jsonl")
        with open(path, "wb") as f:
            f.write(data)
        n, err = read_all(path)
        if err is not None:
            check_error(err, path, data, gz)
        else:
            # Whatever was accepted is a well-formed stream: typed events, non-decreasing ts.
            assert n <= max(1, data.count(b"\n") + 1) or gz


@given(st.binary(max_size=300))
@fuzz_settings(500)
def test_reader_survives_random_bytes(data: bytes) -> None:
    with tempfile.TemporaryDirectory() as d:
        path = os.path.join(d, "r.jsonl")
        with open(path, "wb") as f:
            f.write(data)
        _, err = read_all(path)
        if err is not None:
            check_error(err, path, data, data[:2] == b"\x1f\x8b")


@given(st.integers(1, 4000), st.sampled_from([b"\n", b""]))
@fuzz_settings(60)
def test_cut_anywhere_is_truncated_or_valid(cut: int, tail: bytes) -> None:
    """A recording cut at any byte: the prefix up to the last newline replays, the rest is
    reported as truncated (status 4) at the right line, never as some other failure."""
    data = encode_lines(base_lines())
    cut = min(cut, len(data))
    chopped = data[:cut]
    with tempfile.TemporaryDirectory() as d:
        path = os.path.join(d, "cut.jsonl")
        with open(path, "wb") as f:
            f.write(chopped)
        n, err = read_all(path)
    complete = chopped.count(b"\n")
    if chopped.endswith(b"\n") or cut == len(data):
        assert err is None
        assert n == complete - 1  # the header is not an event
    else:
        # A cut that still leaves a whole JSON object (cut at the very end of a line, or
        # only whitespace missing) reads fine; otherwise it is truncation at the last line.
        if err is not None:
            assert err.status == 4, err.one_line()
            assert err.line == complete + 1
            assert "cut off" in err.message


def test_gzip_cut_anywhere_is_truncated() -> None:
    data = gzip.compress(encode_lines(base_lines()), mtime=0)
    with tempfile.TemporaryDirectory() as d:
        path = os.path.join(d, "cut.jsonl.gz")
        for cut in range(2, len(data) - 1, 7):
            with open(path, "wb") as f:
                f.write(data[:cut])
            _, err = read_all(path)
            assert err is not None and err.status in (3, 4), cut
            check_error(err, path, data, True)


@pytest.mark.parametrize("trailer", [b"\n", b"", b"\n\n  \n"])
def test_valid_trace_reads_whole(trailer: bytes) -> None:
    data = encode_lines(base_lines()).rstrip(b"\n") + trailer
    with tempfile.TemporaryDirectory() as d:
        path = os.path.join(d, "ok.jsonl")
        with open(path, "wb") as f:
            f.write(data)
        n, err = read_all(path)
    assert err is None and n == len(base_lines()) - 1
