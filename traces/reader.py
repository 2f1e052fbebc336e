"""Streaming reader for v1 traces: a path, a ``.gz`` file (detected by content) or ``-`` (stdin).

Lines are decoded one at a time with one reused typed decoder, so memory stays flat however long
the trace is. Every problem becomes a :class:`~traces.errors.TraceError` naming file, line, field.
"""

from __future__ import annotations

import gzip
import itertools
import os
import re
import sys
import zlib
from collections.abc import Callable, Iterator
from typing import BinaryIO

import msgspec

from traces.errors import TraceError, TruncatedTrace, UnreadableTrace
from traces.format import VERSION, Enqueue, Header, Line, default_scope

#: Longest line accepted; anything longer is refused rather than read whole.
MAX_LINE_BYTES = 16 << 20
GZIP_MAGIC = b"\x1f\x8b"
_BOM = b"\xef\xbb\xbf"
#: Bytes read at a time; lines are split out of each chunk.
CHUNK_BYTES = 1 << 20

_decoder = msgspec.json.Decoder(Line)
_AT_RE = re.compile(r"^(.*?)(?: - at `\$(.*)`)?$", re.S)


def _field_error(err: msgspec.ValidationError) -> tuple[str | None, str]:
    """Split msgspec's message into the field path and a lower-case reason."""
    m = _AT_RE.match(str(err))
    assert m is not None
    reason, path = m.group(1), (m.group(2) or "").lstrip(".")
    missing = re.match(r"Object missing required field `(.+)`", reason)
    if missing:
        field = f"{path}.{missing.group(1)}" if path else missing.group(1)
        return field, "missing (required)"
    if len(reason) > 200:  # msgspec echoes the bad value; keep the message one readable line
        reason = reason[:160] + "…" + reason[-20:]
    if path == "type" and reason.startswith("Invalid value"):
        return "type", (f"unknown type {reason.split(' ', 2)[2]} "
                        "(expected header, enqueue, flush or remove)")
    if path == "ts" and ("<=" in reason or ">=" in reason):
        return "ts", ("out of range: ts is in seconds since the trace's origin, at most 1e15 "
                      "either way (were microseconds or nanoseconds recorded?)")
    if reason == "Expected `object`, got `array`" and not path:
        return None, "not a JSON object (each line must be one object)"
    if reason.startswith("Expected `object`") and not path:
        return None, reason.replace("Expected", "expected a JSON", 1)
    return (path or None), reason[:1].lower() + reason[1:]


def _decode_reason(raw: bytes, reason: str, lineno: int) -> str:
    """msgspec's syntax message, made specific: which column, and the usual culprits."""
    if "UTF-8" in reason:
        return "invalid UTF-8 in the line (traces are UTF-8 text)"
    if reason == "Input data was truncated":
        return "the line ends inside a JSON value (a line break or a cut in the middle of it?)"
    reason = reason.removeprefix("JSON is malformed: ")
    m = re.search(r" \(byte (\d+)\)$", reason)
    if m is not None:
        at = int(m.group(1))
        reason = f"{reason[:m.start()]} at column {at + 1}"
        if raw[at:at + 1] == b"\x00":
            reason += " (a NUL byte)"
        elif raw[at:at + 3] in (b"NaN", b"Inf") or raw[at:at + 4] == b"-Inf":
            reason += " (NaN and Infinity are not JSON numbers)"
    if lineno == 1 and raw.lstrip()[:1] != b"{":
        reason += " (is this a JSON Lines trace?)"
    return reason


class TraceReader:
    """Iterates ``(line_number, event)`` over a trace; ``header`` is read on open."""

    def __init__(self, path: str, progress: Callable[[int], None] | None = None,
                 max_line: int = MAX_LINE_BYTES) -> None:
        self.path = path
        self.name = "<stdin>" if path == "-" else path
        self.progress = progress
        self.max_line = max_line
        self.size: int | None = None
        self._raw: BinaryIO
        self._stream: BinaryIO
        self._open()
        self.header: Header | None = None
        self._lineno = 0
        self._unterminated = False
        self._head: list[bytes] = []
        self._chunk_iter = self._chunks()
        self._read_header()

    # Opening ------------------------------------------------------------------------------
    def _open(self) -> None:
        if self.path == "-":
            raw: BinaryIO = sys.stdin.buffer
            peek = raw.peek(2)[:2] if hasattr(raw, "peek") else b""
        else:
            if os.path.isdir(self.path):
                raise UnreadableTrace(self.name, None, "is a directory, not a trace file")
            try:
                raw = open(self.path, "rb")  # noqa: SIM115 - closed by close()
            except FileNotFoundError:
                raise UnreadableTrace(self.name, None, "no such file") from None
            except PermissionError:
                raise UnreadableTrace(self.name, None, "permission denied") from None
            except OSError as e:
                raise UnreadableTrace(self.name, None, e.strerror or str(e)) from None
            try:
                self.size = os.fstat(raw.fileno()).st_size
                peek = raw.read(2)
                raw.seek(0)
            except OSError as e:
                raw.close()
                raise UnreadableTrace(self.name, None, e.strerror or str(e)) from None
        self._raw = raw
        if peek == GZIP_MAGIC:
            self._stream = gzip.GzipFile(fileobj=raw, mode="rb")  # type: ignore[assignment]
        else:
            self._stream = raw

    def close(self) -> None:
        if self._stream is not self._raw:
            self._stream.close()
        if self._raw is not sys.stdin.buffer:
            self._raw.close()

    def __enter__(self) -> TraceReader:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @property
    def default_scope(self) -> tuple[str, str]:
        """The (changefeed, sink) of events that name neither (from the header)."""
        return default_scope(self.header)

    def bytes_read(self) -> int:
        try:
            return self._raw.tell()
        except (OSError, ValueError):
            return 0

    # Lines --------------------------------------------------------------------------------
    def _chunks(self) -> Iterator[list[bytes]]:
        """Raw lines (without their newline), a chunk's worth at a time.

        Reading fixed-size chunks and splitting them is much cheaper than one ``readline`` per
        line, and a line longer than ``max_line`` is refused before it is held whole.
        """
        read = self._stream.read
        rest = b""
        while True:
            try:
                chunk = read(CHUNK_BYTES)
            except (gzip.BadGzipFile, zlib.error) as e:
                raise TraceError(self.name, self._lineno + 1,
                                 f"corrupt gzip data ({e}); the file is damaged") from None
            except EOFError:
                raise TruncatedTrace(self.name, self._lineno + 1,
                                     "the gzip stream ends early: the trace was cut off "
                                     "mid-write") from None
            except OSError as e:
                raise UnreadableTrace(self.name, self._lineno + 1,
                                      e.strerror or str(e)) from None
            if not chunk:
                break
            if rest:
                chunk = rest + chunk
            lines = chunk.split(b"\n")
            rest = lines.pop()
            if len(rest) > self.max_line:
                raise TraceError(self.name, self._lineno + len(lines) + 1,
                                 f"line is longer than {self.max_line >> 20} MiB; refusing to "
                                 "read it whole (is this a trace file?)")
            if self.progress is not None:
                self.progress(self.bytes_read())
            yield lines
        if rest:
            self._unterminated = True
            yield [rest]

    def _error(self, raw: bytes, lineno: int, err: Exception) -> TraceError:
        """The message for a line that did not decode."""
        if isinstance(err, msgspec.ValidationError):
            field, reason = _field_error(err)
            return TraceError(self.name, lineno, reason, field)
        if isinstance(err, RecursionError):
            return TraceError(self.name, lineno, "a value is nested too deeply (no trace field "
                              "nests more than two levels)")
        # Only the last line can lack its newline; a cut leaves an unfinished object or number.
        if self._unterminated and raw.lstrip()[:1] == b"{" and (
                str(err) == "Input data was truncated" or "invalid number" in str(err)):
            return TruncatedTrace(self.name, lineno,
                                  "the final line was cut off mid-write (no newline, incomplete "
                                  "JSON); remove it or re-record")
        return TraceError(self.name, lineno, "malformed JSON: " + _decode_reason(raw, str(err),
                                                                             lineno))

    def _read_header(self) -> None:
        for lines in self._chunk_iter:
            for i, raw in enumerate(lines):
                self._lineno += 1
                if self._lineno == 1 and raw[:3] == _BOM:  # editors on Windows add one
                    raw = lines[i] = raw[3:]
                if not raw.strip():
                    continue
                try:
                    first = _decoder.decode(raw)
                except (msgspec.ValidationError, msgspec.DecodeError, RecursionError) as e:
                    raise self._error(raw, self._lineno, e) from None
                if isinstance(first, Header):
                    if first.version != VERSION:
                        raise TraceError(self.name, self._lineno,
                                         f"unsupported trace version {first.version} (this tool "
                                         f"reads version {VERSION})", "version")
                    self.header = first
                    self._head = lines[i + 1:]
                else:
                    self._lineno -= 1  # the first event is read again by __iter__
                    self._head = lines[i:]
                return
        self._head = []

    def __iter__(self) -> Iterator[tuple[int, Line]]:
        """``(line_number, event)`` for every event, validated: types, order of ``ts``, fields."""
        name = self.name
        decode = _decoder.decode
        errors = (msgspec.ValidationError, msgspec.DecodeError, RecursionError)
        last_ts = float("-inf")
        last_line = 0
        lineno = self._lineno
        head, self._head = self._head, []
        for lines in itertools.chain((head,), self._chunk_iter):
            for raw in lines:
                lineno += 1
                try:
                    ev = decode(raw)
                except errors as e:
                    if not raw.strip():
                        continue
                    self._lineno = lineno
                    raise self._error(raw, lineno, e) from None
                cls = ev.__class__
                if cls is Header:
                    raise TraceError(name, lineno, "a header is allowed only as the first line",
                                     "type")
                ts = ev.ts  # type: ignore[union-attr]
                if ts < last_ts:
                    raise TraceError(name, lineno, f"{ts:g} is earlier than {last_ts:g} on "
                                     f"line {last_line}; ts must not decrease", "ts")
                last_ts = ts
                last_line = lineno
                if cls is Enqueue and ev.events is None and (  # type: ignore[union-attr]
                        ev.id is None or ev.bytes is None):  # type: ignore[union-attr]
                    missing = "id" if ev.id is None else "bytes"  # type: ignore[union-attr]
                    raise TraceError(name, lineno, "missing: an enqueue needs `events` or a "
                                     "top-level `id` and `bytes`", missing)
                yield lineno, ev
            self._lineno = lineno
