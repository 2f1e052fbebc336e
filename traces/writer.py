"""Writer for v1 traces: what it writes always reads back with :mod:`traces.reader`."""

from __future__ import annotations

import gzip
from collections.abc import Iterable
from typing import IO

import msgspec

from traces.format import VERSION, Dml, DmlId, Enqueue, Flush, Header, HeaderConfig, Remove


class TraceWriter:
    """Writes one JSON object per line to a binary stream (plain, or gzip when ``gz``).

    Gzip output is written with a zero mtime and no file name so the same content always gives
    the same bytes.
    """

    def __init__(self, out: IO[bytes], gz: bool = False) -> None:
        self._gz = gzip.GzipFile(fileobj=out, mode="wb", mtime=0, filename="") if gz else None
        self._out = self._gz if self._gz is not None else out
        self._enc = msgspec.json.Encoder()
        self._buf = bytearray()
        self.lines = 0

    def _line(self, obj: msgspec.Struct) -> None:
        buf = self._buf
        self._enc.encode_into(obj, buf, len(buf))
        buf.extend(b"\n")
        self.lines += 1
        if len(buf) >= 1 << 16:
            self.flush()

    def header(self, changefeed: str | None = None, sink: str | None = None,
               config: dict[str, object] | None = None) -> None:
        cfg = HeaderConfig(**config) if config else None
        self._line(Header(version=VERSION, changefeed=changefeed, sink=sink, config=cfg))

    def enqueue(self, ts: float, dispatcher: str, dmls: Iterable[tuple[DmlId, int]],
                changefeed: str | None = None, sink: str | None = None) -> None:
        items = list(dmls)
        if len(items) == 1:
            ev = Enqueue(ts=ts, dispatcher=dispatcher, changefeed=changefeed, sink=sink,
                         id=items[0][0], bytes=items[0][1])
        else:
            ev = Enqueue(ts=ts, dispatcher=dispatcher, changefeed=changefeed, sink=sink,
                         events=[Dml(id=i, bytes=b) for i, b in items])
        self._line(ev)

    def flush_event(self, ts: float, dispatcher: str, dml_id: DmlId,
                    changefeed: str | None = None, sink: str | None = None) -> None:
        self._line(Flush(ts=ts, dispatcher=dispatcher, id=dml_id, changefeed=changefeed,
                         sink=sink))

    def remove(self, ts: float, dispatcher: str, changefeed: str | None = None,
               sink: str | None = None) -> None:
        self._line(Remove(ts=ts, dispatcher=dispatcher, changefeed=changefeed, sink=sink))

    def flush(self) -> None:
        if self._buf:
            self._out.write(self._buf)
            self._buf.clear()

    def close(self) -> None:
        """Write what is buffered and end the gzip member (the underlying stream stays open)."""
        self.flush()
        if self._gz is not None:
            self._gz.close()
