"""Shared pieces of the fuzz suite: hypothesis profiles, trace mutations, an in-process CLI call.

Profiles: the default (``ci``) is derandomized and bounded so the whole fuzz suite takes well under
a minute; ``HYPOTHESIS_PROFILE=long`` (or ``BUDGET_REPLAY_FUZZ=long``) runs many more examples with
a fresh random seed each time. Registered here rather than in conftest.py so that the other
property tests keep their own settings.
"""

from __future__ import annotations

import gzip
import io
import json
import os
import signal
import sys
import traceback
from dataclasses import dataclass

from hypothesis import HealthCheck, settings
from hypothesis import strategies as st

from traces.errors import (
    EXIT_CHECK_FAILED,
    EXIT_INTERRUPTED,
    EXIT_INVALID_EXPECTATIONS,
    EXIT_INVALID_TRACE,
    EXIT_OK,
    EXIT_OUTPUT_FAILED,
    EXIT_STRICT_ANOMALY,
    EXIT_TRUNCATED_TRACE,
    EXIT_UNREADABLE,
    EXIT_USAGE,
)

#: Every status `budget-replay --help` documents.
DOCUMENTED = {EXIT_OK, EXIT_CHECK_FAILED, EXIT_USAGE, EXIT_INVALID_TRACE, EXIT_TRUNCATED_TRACE,
              EXIT_STRICT_ANOMALY, EXIT_UNREADABLE, EXIT_INVALID_EXPECTATIONS, EXIT_OUTPUT_FAILED,
              EXIT_INTERRUPTED, 141}
#: Statuses a bad trace may end in (the reader's and the replay's errors).
TRACE_ERRORS = {EXIT_INVALID_TRACE, EXIT_TRUNCATED_TRACE, EXIT_STRICT_ANOMALY, EXIT_UNREADABLE}

_COMMON = dict(deadline=None, database=None, print_blob=True,
               suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large,
                                      HealthCheck.filter_too_much])
settings.register_profile("fuzz-ci", derandomize=True, **_COMMON)
settings.register_profile("fuzz-long", derandomize=False, **_COMMON)
LONG = "long" in (os.environ.get("BUDGET_REPLAY_FUZZ", ""),
                  os.environ.get("HYPOTHESIS_PROFILE", ""))


def fuzz_settings(ci_examples: int, long_examples: int | None = None) -> settings:
    """Settings for one fuzz test: a fixed seed and ``ci_examples`` unless the long profile."""
    if LONG:
        return settings(settings.get_profile("fuzz-long"),
                        max_examples=long_examples or ci_examples * 20)
    return settings(settings.get_profile("fuzz-ci"), max_examples=ci_examples)


# A small valid trace touching every line type, two scopes, blocking and waking. ---------------
def base_lines() -> list[dict]:
    lines: list[dict] = [{"type": "header", "version": 1, "changefeed": "default/cf",
                          "sink": "cloudstorage",
                          "config": {"per_low": 100, "per_high": 200, "global_high": 400,
                                     "multiplier": 2}}]
    ts = 0.0
    for i in range(6):
        ts += 0.01
        lines.append({"type": "enqueue", "ts": ts, "dispatcher": f"d{i % 3}",
                      "events": [{"id": i * 2, "bytes": 60}, {"id": i * 2 + 1, "bytes": 50}]})
    lines.append({"type": "enqueue", "ts": ts, "dispatcher": "m", "changefeed": "default/m",
                  "sink": "mysql", "id": "x", "bytes": 7})
    for i in range(6):
        ts += 0.02
        lines.append({"type": "flush", "ts": ts, "dispatcher": f"d{i % 3}", "id": i * 2})
        lines.append({"type": "flush", "ts": ts, "dispatcher": f"d{i % 3}", "id": i * 2 + 1})
    lines.append({"type": "remove", "ts": ts + 1, "dispatcher": "d0"})
    lines.append({"type": "flush", "ts": ts + 1, "dispatcher": "m", "changefeed": "default/m",
                  "sink": "mysql", "id": "x"})
    return lines


def encode_lines(lines: list) -> bytes:
    """JSON Lines; items already ``bytes`` are written as they are."""
    return b"".join(
        (x if isinstance(x, bytes) else json.dumps(x, separators=(",", ":")).encode()) + b"\n"
        for x in lines)


# Mutations ----------------------------------------------------------------------------------
#: Values that a field may be retyped to: wrong types, out-of-range numbers, hostile strings.
HOSTILE_VALUES: list[bytes] = [
    b"null", b"true", b"false", b"-1", b"-0.5", b"0", b"1180591620717411303424",  # 2**70
    b"-1180591620717411303424", b"9223372036854775808", b"1e400", b"-1e400", b"1e-400",
    b"NaN", b"Infinity", b"-Infinity", b'"NaN"', b'"12"', b'""', b"[]", b"{}", b"[1,2]",
    b'{"id":1,"bytes":2}', b'[{"id":1,"bytes":-3}]', b'[{"id":true,"bytes":1}]',
    b'[{"bytes":1}]', b'[{"id":1}]', b'"\\u0000"', b'"\\ud800"', b'"\x1b[31mred\x1b[0m"',
    b'"' + b"x" * 5000 + b'"', b"[" * 300 + b"]" * 300, b"[" * 5000 + b"]" * 5000,
    b'"header"', b'"enqueue"', b'"flush"', b'"remove"', b'"bogus"', b"1.5", b"2",
]
FIELDS = ["ts", "type", "dispatcher", "changefeed", "sink", "events", "id", "bytes", "version",
          "config", "per_low", "per_high", "global_high", "global_low", "multiplier",
          "max_wake_per_round", "memory_quota", "area_quota", "redo_percentage", "policy"]
#: Raw byte snippets spliced in anywhere: invalid UTF-8, NUL, control bytes, stray syntax.
SPLICES = [b"\x00", b"\xff", b"\xc3\x28", b"\xed\xa0\x80", b"\xef\xbb\xbf", b"\r", b"\n", b"\n\n",
           b"{", b"}", b",", b'"', b"\\", b"\x1f\x8b", b" ", b"\t", b"NaN"]


def _set_field(line: bytes, field: str, value: bytes | None) -> bytes:
    """``line`` with ``field`` replaced by raw ``value`` (or deleted), wherever it sits."""
    try:
        obj = json.loads(line)
    except (ValueError, RecursionError):
        return line
    if not isinstance(obj, dict):
        return line
    target = obj.get("config") if field in {"per_low", "per_high", "global_high", "global_low",
                                            "multiplier", "max_wake_per_round", "memory_quota",
                                            "area_quota", "redo_percentage", "policy"} else obj
    if not isinstance(target, dict):
        target = obj
    marker = "\u2603MARK\u2603"
    if value is None:
        target.pop(field, None)
    else:
        target[field] = marker
    out = json.dumps(obj, separators=(",", ":")).encode()
    return out.replace(json.dumps(marker).encode(), value or b"") if value is not None else out


@st.composite
def mutation(draw: st.DrawFn, n_lines: int) -> tuple:
    kind = draw(st.sampled_from(["cut", "flip", "swap", "delete", "retype", "splice",
                                 "dupkey", "dropline", "dupline", "negsize"]))
    line = draw(st.integers(0, max(0, n_lines - 1)))
    if kind == "cut":
        return kind, draw(st.floats(0, 1))
    if kind == "flip":
        return kind, draw(st.floats(0, 1)), draw(st.integers(1, 255))
    if kind == "swap":
        return kind, line, draw(st.integers(0, max(0, n_lines - 1)))
    if kind == "delete":
        return kind, line, draw(st.sampled_from(FIELDS))
    if kind == "retype":
        return kind, line, draw(st.sampled_from(FIELDS)), draw(st.sampled_from(HOSTILE_VALUES))
    if kind == "splice":
        return kind, draw(st.floats(0, 1)), draw(st.sampled_from(SPLICES))
    if kind == "dupkey":
        return kind, line, draw(st.sampled_from(FIELDS)), draw(st.sampled_from(HOSTILE_VALUES))
    return kind, line


def apply_mutation(data: bytes, m: tuple) -> bytes:
    lines = data.split(b"\n")
    kind = m[0]
    if kind == "cut":
        return data[: int(len(data) * m[1])]
    if kind == "flip":
        if not data:
            return data
        i = min(len(data) - 1, int(len(data) * m[1]))
        return data[:i] + bytes([data[i] ^ m[2]]) + data[i + 1:]
    if kind == "splice":
        i = int(len(data) * m[1])
        return data[:i] + m[2] + data[i:]
    i = min(m[1], len(lines) - 1)
    if kind == "swap":
        j = min(m[2], len(lines) - 1)
        lines[i], lines[j] = lines[j], lines[i]
    elif kind == "delete":
        lines[i] = _set_field(lines[i], m[2], None)
    elif kind == "retype":
        lines[i] = _set_field(lines[i], m[2], m[3])
    elif kind == "dupkey":
        if lines[i].startswith(b"{"):
            lines[i] = b'{"' + m[2].encode() + b'":' + m[3] + b"," + lines[i][1:]
    elif kind == "dropline":
        del lines[i]
    elif kind == "dupline":
        lines.insert(i, lines[i])
    elif kind == "negsize":
        lines[i] = lines[i].replace(b'"bytes":', b'"bytes":-', 1)
    return b"\n".join(lines)


@st.composite
def hostile_trace(draw: st.DrawFn) -> tuple[bytes, bool]:
    """A mutated trace and whether it is gzipped (the gzip bytes may be mutated too)."""
    data = encode_lines(base_lines())
    shape = draw(st.sampled_from(["mutated"] * 8 + ["empty", "header", "blank"]))
    if shape == "empty":
        data = b""
    elif shape == "header":
        data = data.split(b"\n", 1)[0] + draw(st.sampled_from([b"\n", b""]))
    elif shape == "blank":
        data = b"\n \n\t\n"
    else:
        n = data.count(b"\n")
        for m in draw(st.lists(mutation(n), min_size=1, max_size=4)):
            data = apply_mutation(data, m)
    gz = draw(st.integers(0, 5)) == 0
    if gz:
        data = gzip.compress(data, mtime=0)
        if draw(st.booleans()):
            data = apply_mutation(data, draw(st.sampled_from([("cut", 0.0), ("cut", 0.5),
                                                               ("cut", 0.97)]) | mutation(1)))
    return data, gz


# Calling the command line in-process --------------------------------------------------------
@dataclass
class Outcome:
    status: int
    out: bytes
    err: str
    crash: str | None  # a traceback when something other than SystemExit escaped main()


class _Std(io.TextIOWrapper):
    def isatty(self) -> bool:
        return False


class Hang(BaseException):  # not Exception: main() must not turn it into a status
    """Raised in the command when it runs past the time limit (a hang, as far as a user knows)."""


def _hang(signum: int, frame: object) -> None:
    raise Hang("still running after the time limit")


def invoke(argv: list[str], stdin: bytes = b"", limit: float = 60.0) -> Outcome:
    """Run ``budget-replay argv`` in this process, as the console script would.

    A command still running after ``limit`` seconds is stopped and reported as a crash.
    """
    from cli.main import main

    saved = sys.stdin, sys.stdout, sys.stderr
    out, err = io.BytesIO(), io.BytesIO()
    sys.stdin = _Std(io.BufferedReader(io.BytesIO(stdin)), encoding="utf-8")
    sys.stdout = _Std(out, encoding="utf-8", write_through=True)
    sys.stderr = _Std(err, encoding="utf-8", errors="backslashreplace", write_through=True)
    crash = None
    status = -1
    old = signal.signal(signal.SIGALRM, _hang)
    signal.setitimer(signal.ITIMER_REAL, limit)
    try:
        main(argv)
    except SystemExit as e:
        status = e.code if isinstance(e.code, int) else (0 if e.code is None else 1)
    except BaseException:  # noqa: BLE001 - the point is to see anything escaping main()
        crash = traceback.format_exc()
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, old)
        for f in (sys.stdout, sys.stderr):
            try:
                f.flush()
            except ValueError:
                pass
        result = out.getvalue(), err.getvalue().decode("utf-8", "replace")
        sys.stdin, sys.stdout, sys.stderr = saved
    return Outcome(status, result[0], result[1], crash)


def assert_one_line_error(o: Outcome, name: str, line_max: int | None = None) -> None:
    """A trace error: exactly one line on stderr naming the file (and a plausible line)."""
    lines = o.err.splitlines()
    assert len(lines) == 1, o.err
    msg = lines[0]
    assert msg.startswith(f"budget-replay: {name}"), msg
    assert "Traceback" not in msg
    rest = msg[len(f"budget-replay: {name}"):]
    if rest.startswith(":") and rest[1:2].isdigit() and line_max is not None:
        n = int(rest[1:].split(":", 1)[0])
        assert 1 <= n <= line_max, msg
