"""Streaming reader for v1 traces: a path, a ``.gz`` file (detected by content) or ``-`` (stdin).

Lines are decoded one at a time with one reused typed decoder, so memory stays flat however long
the trace is. Every problem becomes a :class:`~traces.errors.TraceError` naming file, line, field.
"""

from __future__ import annotations

import gzip
import os
import re
import sys
import zlib
from collections.abc import Callable, Iterator
from typing import BinaryIO

import msgspec

from traces.errors import TraceError, TruncatedTrace, UnreadableTrace
from traces.format import VERSION, Enqueue, Header, Line

#: Longest line accepted; anything longer is refused rather than read whole.
MAX_LINE_BYTES = 16 << 20
GZIP_MAGIC = b"\x1f\x8b"
_PROGRESS_EVERY = 8192

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
    if path == "type" and reason.startswith("Invalid value"):
        return "type", (f"unknown type {reason.split(' ', 2)[2]} "
                        "(expected header, enqueue, flush or remove)")
    if reason == "Expected `object`, got `array`" and not path:
        return None, "not a JSON object (each line must be one object)"
    if reason.startswith("Expected `object`") and not path:
        return None, reason.replace("Expected", "expected a JSON", 1)
    return (path or None), reason[:1].lower() + reason[1:]


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
        self._first: tuple[int, bytes] | None = None
        self._lineno = 0
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

    def bytes_read(self) -> int:
        try:
            return self._raw.tell()
        except (OSError, ValueError):
            return 0

    # Lines --------------------------------------------------------------------------------
    def _next_raw(self) -> bytes:
        """The next non-blank line, or ``b""`` at the end; counts line numbers."""
        readline = self._stream.readline
        limit = self.max_line + 1
        while True:
            try:
                raw = readline(limit)
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
            if not raw:
                return b""
            self._lineno += 1
            if len(raw) > self.max_line:
                raise TraceError(self.name, self._lineno,
                                 f"line is longer than {self.max_line >> 20} MiB; refusing to "
                                 "read it whole (is this a trace file?)")
            if raw.strip():
                return raw

    def _decode(self, raw: bytes) -> Line:
        try:
            return _decoder.decode(raw)
        except msgspec.ValidationError as e:
            field, reason = _field_error(e)
            raise TraceError(self.name, self._lineno, reason, field) from None
        except msgspec.DecodeError as e:
            if not raw.endswith(b"\n"):
                raise TruncatedTrace(self.name, self._lineno,
                                     "the final line was cut off mid-write (no newline, "
                                     "incomplete JSON); remove it or re-record") from None
            reason = str(e)
            if "UTF-8" in reason:
                reason = "invalid UTF-8 in the line"
            raise TraceError(self.name, self._lineno, f"malformed JSON: {reason}") from None

    def _read_header(self) -> None:
        raw = self._next_raw()
        if not raw:
            return
        first = self._decode(raw)
        if isinstance(first, Header):
            if first.version != VERSION:
                raise TraceError(self.name, self._lineno,
                                 f"unsupported trace version {first.version} (this tool reads "
                                 f"version {VERSION})", "version")
            self.header = first
        else:
            self._first = (self._lineno, first)  # type: ignore[assignment]

    def __iter__(self) -> Iterator[tuple[int, Line]]:
        name = self.name
        progress = self.progress
        last_ts = float("-inf")
        last_line = 0
        pending = self._first
        self._first = None
        decode = self._decode
        next_raw = self._next_raw
        count = 0
        while True:
            if pending is not None:
                lineno, ev = pending
                pending = None
            else:
                raw = next_raw()
                if not raw:
                    break
                ev = decode(raw)
                lineno = self._lineno
            cls = ev.__class__
            if cls is Header:
                raise TraceError(name, lineno, "a header is allowed only as the first line",
                                 "type")
            ts = ev.ts  # type: ignore[union-attr]
            if ts < last_ts:
                raise TraceError(name, lineno, f"{ts:g} is earlier than {last_ts:g} on line "
                                 f"{last_line}; ts must not decrease", "ts")
            last_ts = ts
            last_line = lineno
            if cls is Enqueue and ev.events is None and (ev.id is None or ev.bytes is None):
                missing = "id" if ev.id is None else "bytes"
                raise TraceError(name, lineno, "missing: an enqueue needs `events` or a "
                                 "top-level `id` and `bytes`", missing)
            count += 1
            if progress is not None and count % _PROGRESS_EVERY == 0:
                progress(self.bytes_read())
            yield lineno, ev
        if progress is not None:
            progress(self.bytes_read())

