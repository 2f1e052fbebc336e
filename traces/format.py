"""The v1 trace format (SPEC section 4) as typed msgspec structs.

One struct per line type, tagged by ``type``, so a single reused decoder validates and types each
line in one pass. Unknown extra fields are ignored for forward compatibility.
"""

from __future__ import annotations

from typing import Annotated

import msgspec

VERSION = 1
DEFAULT_CHANGEFEED = "default/changefeed"
DEFAULT_SINK = "cloudstorage"

#: A DML's approximate size in bytes; bounded so effective bytes stay exact in any int64 port.
Size = Annotated[int, msgspec.Meta(ge=0, le=2**53)]
#: Dispatcher, changefeed, sink and string DML ids: TiCDC's are far shorter; a longer one is refused
#: so that a hostile trace cannot make every view (labels, tables) hold megabyte-sized names.
MAX_NAME = 4096
Name = Annotated[str, msgspec.Meta(max_length=MAX_NAME)]
DmlId = int | Name
#: Seconds since the trace's origin. Bounded (about 31,700 years either way) so that a mistaken
#: unit (ms or ns since the epoch) is reported, and millisecond timestamps fit in an int64.
Ts = Annotated[float, msgspec.Meta(ge=-1e15, le=1e15)]


class HeaderConfig(msgspec.Struct, forbid_unknown_fields=False, omit_defaults=True):
    """Budget configuration carried by a trace header (integers, bytes for sizes)."""

    per_low: int | None = None
    per_high: int | None = None
    multiplier: Annotated[int, msgspec.Meta(ge=0)] | None = None
    area_quota: int | None = None
    memory_quota: int | None = None
    redo_percentage: Annotated[int, msgspec.Meta(ge=0, le=100)] | None = None
    global_high: int | None = None
    global_low: int | None = None
    max_wake_per_round: Annotated[int, msgspec.Meta(ge=0)] | None = None
    policy: Annotated[str, msgspec.Meta(max_length=64)] | None = None


class Header(msgspec.Struct, tag="header", tag_field="type", omit_defaults=True):
    version: int
    changefeed: Name | None = None
    sink: Name | None = None
    config: HeaderConfig | None = None


class Dml(msgspec.Struct, gc=False):
    id: DmlId
    bytes: Size


class Enqueue(msgspec.Struct, tag="enqueue", tag_field="type", omit_defaults=True,
              gc=False):
    ts: Ts
    dispatcher: Name
    changefeed: Name | None = None
    sink: Name | None = None
    events: list[Dml] | None = None
    id: DmlId | None = None
    bytes: Size | None = None

    def dmls(self) -> list[tuple[DmlId, int]]:
        if self.events is not None:
            return [(e.id, e.bytes) for e in self.events]
        return [(self.id, self.bytes)]  # type: ignore[list-item]


class Flush(msgspec.Struct, tag="flush", tag_field="type", omit_defaults=True,
            gc=False):
    ts: Ts
    dispatcher: Name
    id: DmlId
    changefeed: Name | None = None
    sink: Name | None = None


class Remove(msgspec.Struct, tag="remove", tag_field="type", omit_defaults=True,
             gc=False):
    ts: Ts
    dispatcher: Name
    changefeed: Name | None = None
    sink: Name | None = None


def default_scope(header: Header | None) -> tuple[str, str]:
    """The (changefeed, sink) of events that name neither: the header's, else the format's."""
    if header is None:
        return DEFAULT_CHANGEFEED, DEFAULT_SINK
    return header.changefeed or DEFAULT_CHANGEFEED, header.sink or DEFAULT_SINK


Event = Enqueue | Flush | Remove
Line = Header | Enqueue | Flush | Remove
