"""The replay as an OpenMetrics time series, for ``promtool tsdb create-blocks-from openmetrics``.

OpenMetrics wants every family's samples together and each series in time order, but a replay
produces all series interleaved in time. So samples are spooled as they happen: one small binary
buffer per series, flushed in chunks to one anonymous temporary file, and only at the end
formatted family by family into the output. Memory stays bounded (a buffer per series and one
index entry per 64 KiB chunk) however long the trace is.

A series gets a sample whenever its value changes, at most one per millisecond (the TSDB's
resolution; the last value in a millisecond wins), and the unchanged value is repeated every
``heartbeat`` seconds — like a Prometheus scrape — so that no series goes stale in a long quiet
stretch. Every series is carried to the last timestamp of the trace. Trace time ``ts`` maps to
wall-clock time ``start + (ts - first_ts)``.
"""

from __future__ import annotations

import struct
import tempfile
from collections.abc import Iterator
from typing import IO

from cli.views.metrics import (
    BUCKET_LABELS,
    BUCKETS,
    FAMILIES,
    HELP,
    HISTOGRAMS,
    BudgetMetrics,
    ScopeMetrics,
)

#: Seconds between repeated samples of an unchanged series (a typical scrape interval).
HEARTBEAT = 15.0
#: Most repeats of one series over the whole trace: a trace spanning more heartbeats than this
#: (about 42 hours at 15 s) is repeated less often rather than written without bound (a span of
#: 1e11 s would otherwise never finish).
MAX_HEARTBEATS = 10_000
_CHUNK = 1 << 16
_GAUGE = struct.Struct("<qq")  # ms, value
_I64 = (1 << 63) - 1
_HIST = struct.Struct(f"<qqd{len(BUCKETS) + 1}q")  # ms, count, sum, cumulative buckets


class _Spool:
    """Per-series append-only byte streams kept in one temporary file."""

    def __init__(self) -> None:
        self.file = tempfile.TemporaryFile()
        self.chunks: dict[int, list[tuple[int, int]]] = {}
        self.bufs: dict[int, bytearray] = {}

    def append(self, series: int, data: bytes) -> None:
        buf = self.bufs.get(series)
        if buf is None:
            buf = self.bufs[series] = bytearray()
        buf += data
        if len(buf) >= _CHUNK:
            f = self.file
            f.seek(0, 2)
            self.chunks.setdefault(series, []).append((f.tell(), len(buf)))
            f.write(buf)
            buf.clear()

    def read(self, series: int) -> Iterator[bytes]:
        f = self.file
        for offset, length in self.chunks.get(series, ()):
            f.seek(offset)
            yield f.read(length)
        yield bytes(self.bufs.get(series, b""))

    def close(self) -> None:
        self.file.close()


class _Series:
    __slots__ = ("id", "family", "labels", "pending", "pending_ms")

    def __init__(self, sid: int, family: str, labels: tuple[str, str, str]) -> None:
        self.id = sid
        self.family = family
        self.labels = labels
        self.pending: tuple | None = None
        self.pending_ms = -1


def _labels_text(labels: tuple[str, str, str], le: str | None = None) -> str:
    ns, cf, sink = (_escape(x) for x in labels)
    extra = f',le="{le}"' if le is not None else ""
    return f'{{namespace="{ns}",changefeed="{cf}",type="{sink}"{extra}}}'


def _escape(value: str) -> str:
    return value.replace("\\", "\\\\").replace("\n", "\\n").replace('"', '\\"')


def _ts_text(ms: int) -> str:
    # A tenth of a millisecond past the mark: Prometheus's parser truncates seconds × 1000 to an
    # integer, and 1.001 × 1000 is 1000.999…; with the extra digit truncating and rounding
    # readers alike get the intended millisecond, and no two samples of a series share one.
    return f"{ms // 1000}.{ms % 1000:03d}1"


class OpenMetricsWriter:
    """Listens to :class:`BudgetMetrics` and writes the series with :meth:`write`."""

    def __init__(self, metrics: BudgetMetrics, heartbeat: float = HEARTBEAT) -> None:
        metrics.listeners.append(self.on_change)
        self.heartbeat_ms = max(1, round(heartbeat * 1000))
        self._spool = _Spool()
        self._series: dict[tuple[str, tuple[str, str, str]], _Series] = {}
        self._order: list[_Series] = []
        self.samples = 0

    def on_change(self, ts: float, sm: ScopeMetrics) -> None:
        ms = round(ts * 1000)  # trace milliseconds: the TSDB keeps nothing finer
        for family in sm.families():
            key = (family, sm.labels)
            s = self._series.get(key)
            if s is None:
                s = self._series[key] = _Series(len(self._order), family, sm.labels)
                self._order.append(s)
            if family in HISTOGRAMS:
                h = sm.hists[family]
                if s.pending is not None and s.pending[0] == h.count:
                    continue
                value: tuple = (h.count, h.sum, *h.cumulative())
            else:
                value = (sm.values[family],)
                if s.pending == value:
                    continue
            if s.pending is not None and s.pending_ms != ms:
                self._commit(s)
            s.pending = value
            s.pending_ms = ms

    def _commit(self, s: _Series) -> None:
        p = s.pending
        assert p is not None
        if s.family in HISTOGRAMS:
            data = _HIST.pack(s.pending_ms, p[0], p[1], *p[2:])
        else:
            try:
                data = _GAUGE.pack(s.pending_ms, p[0])
            except struct.error:  # beyond int64 (exabytes in flight): only hostile traces
                data = _GAUGE.pack(s.pending_ms, max(-_I64, min(_I64, int(p[0]))))
        self._spool.append(s.id, data)

    def _records(self, s: _Series) -> Iterator[tuple[int, tuple]]:
        st = _HIST if s.family in HISTOGRAMS else _GAUGE
        for chunk in self._spool.read(s.id):
            for rec in st.iter_unpack(chunk):
                yield rec[0], rec[1:]

    def _timeline(self, s: _Series, end_ms: int) -> Iterator[tuple[int, tuple]]:
        """The series' samples with the repeats that keep it fresh, up to ``end_ms``."""
        hb = self.heartbeat_ms
        prev: tuple[int, tuple] | None = None
        for ms, value in self._records(s):
            if prev is not None:
                t = prev[0] + hb
                while t < ms:
                    yield t, prev[1]
                    t += hb
            yield ms, value
            prev = (ms, value)
        if prev is not None:
            t = prev[0] + hb
            while t < end_ms:
                yield t, prev[1]
                t += hb
            if t - hb < end_ms:
                yield end_ms, prev[1]

    def write(self, out: IO[str], start: float, first_ts: float, last_ts: float) -> None:
        """Format every series into ``out``, trace time ``first_ts`` at wall-clock ``start`` (Unix
        seconds), every series carried to ``last_ts``. Ends with ``# EOF``."""
        for s in self._order:
            if s.pending is not None:
                self._commit(s)
                s.pending = None
        start_ms = round(start * 1000) - round(first_ts * 1000)
        end_ms = round(last_ts * 1000)
        span_ms = end_ms - round(first_ts * 1000)
        self.heartbeat_ms = max(self.heartbeat_ms, -(-span_ms // MAX_HEARTBEATS))
        write = out.write
        for family in FAMILIES:
            series = [s for s in self._order if s.family == family]
            if not series:
                continue
            kind = "histogram" if family in HISTOGRAMS else "gauge"
            write(f"# TYPE {family} {kind}\n# HELP {family} {HELP[family]}\n")
            for s in series:
                if kind == "gauge":
                    lbl = _labels_text(s.labels)
                    for ms, (value,) in self._timeline(s, end_ms):
                        write(f"{family}{lbl} {value} {_ts_text(start_ms + ms)}\n")
                        self.samples += 1
                    continue
                bucket_lbls = [_labels_text(s.labels, le) for le in BUCKET_LABELS]
                lbl = _labels_text(s.labels)
                for ms, value in self._timeline(s, end_ms):
                    ts = _ts_text(start_ms + ms)
                    count, total = value[0], value[1]
                    lines = [f"{family}_bucket{b} {c} {ts}\n"
                             for b, c in zip(bucket_lbls, value[2:], strict=True)]
                    lines.append(f"{family}_count{lbl} {count} {ts}\n")
                    lines.append(f"{family}_sum{lbl} {_float_text(total)} {ts}\n")
                    write("".join(lines))
                    self.samples += 1
        write("# EOF\n")
        self._spool.close()


def _float_text(v: float) -> str:
    r = repr(float(v))
    return r[:-2] if r.endswith(".0") else r
