"""The checkpoints of one query, packed: a million fit in a sidecar's memory.

A checkpoint is an offset and the opaque cursor the upstream gave there. As a
Python `dict[int, str]` beside a sorted `list[int]` one costs about 220 bytes;
here the offsets are a C array, each cursor is packed into one shared buffer, and
a cursor made of base64url segments (most are: `body.signature`) is kept
decoded, a fifth smaller. Packing is exact: `unpack(pack(c)) == c` for every
string, and a cursor that would not come back identical is kept as it is.
"""

from __future__ import annotations

import base64
import binascii
import bisect
import re
from array import array

_SEGMENT = re.compile(r"[A-Za-z0-9_-]+")
_RAW, _SEGMENTS = 0, 1


def _varint(value: int) -> bytes:
    out = bytearray()
    while True:
        low, value = value & 0x7F, value >> 7
        out.append(low | (0x80 if value else 0))
        if not value:
            return bytes(out)


def _read_varint(buffer: bytearray | bytes, at: int) -> tuple[int, int]:
    value = shift = 0
    while True:
        byte = buffer[at]
        at += 1
        value |= (byte & 0x7F) << shift
        shift += 7
        if not byte & 0x80:
            return value, at


def _decoded(segment: str) -> bytes | None:
    """The bytes a base64url segment (no padding) spells, if they spell it back exactly."""
    if not _SEGMENT.fullmatch(segment) or len(segment) % 4 == 1:
        return None
    try:
        data = base64.urlsafe_b64decode(segment + "=" * (-len(segment) % 4))
    except (binascii.Error, ValueError):
        return None
    return data if base64.urlsafe_b64encode(data).rstrip(b"=").decode() == segment else None


def pack(cursor: str) -> bytes:
    """The cursor's bytes, length first."""
    parts = [_decoded(segment) for segment in cursor.split(".")]
    if all(part is not None for part in parts):
        body = bytes([_SEGMENTS]) + _varint(len(parts)) + b"".join(
            _varint(len(part)) + part for part in parts if part is not None)
    else:
        body = bytes([_RAW]) + cursor.encode()
    return _varint(len(body)) + body


def unpack(buffer: bytearray | bytes, at: int) -> str:
    """The cursor packed at `at`."""
    size, at = _read_varint(buffer, at)
    kind, end = buffer[at], at + size
    if kind == _RAW:
        return bytes(buffer[at + 1:end]).decode()
    count, at = _read_varint(buffer, at + 1)
    segments = []
    for _ in range(count):
        length, at = _read_varint(buffer, at)
        segments.append(base64.urlsafe_b64encode(buffer[at:at + length]).rstrip(b"=").decode())
        at += length
    return ".".join(segments)


def _packed_size(buffer: bytearray, at: int) -> int:
    size, body = _read_varint(buffer, at)
    return body - at + size


class PackedCheckpoints:
    """Sorted offsets and their packed cursors. A cursor replaced or forgotten leaves
    its bytes behind until they are half the buffer; then the buffer is rewritten."""

    __slots__ = ("blob", "offsets", "stale", "starts")

    def __init__(self) -> None:
        self.offsets = array("q")
        self.starts = array("I")  # where each offset's cursor begins in `blob`
        self.blob = bytearray()
        self.stale = 0  # bytes of `blob` no offset points at

    def __len__(self) -> int:
        return len(self.offsets)

    def at_or_before(self, offset: int) -> tuple[int, str] | None:
        index = bisect.bisect_right(self.offsets, offset)
        if not index:
            return None
        return self.offsets[index - 1], unpack(self.blob, self.starts[index - 1])

    def put(self, offset: int, cursor: str, most: int) -> None:
        """Remember `cursor` at `offset`; past `most`, forget the lowest offset (crawls
        move forward)."""
        index = bisect.bisect_left(self.offsets, offset)
        start = len(self.blob)
        self.blob += pack(cursor)
        if index < len(self.offsets) and self.offsets[index] == offset:
            self.stale += _packed_size(self.blob, self.starts[index])
            self.starts[index] = start
        else:
            if len(self.offsets) >= most:
                self.stale += _packed_size(self.blob, self.starts[0])
                del self.offsets[0], self.starts[0]
                index -= 1
            self.offsets.insert(max(index, 0), offset)
            self.starts.insert(max(index, 0), start)
        if self.stale * 2 > len(self.blob):
            self._rewrite()

    def _rewrite(self) -> None:
        blob = bytearray()
        for i, start in enumerate(self.starts):
            self.starts[i] = len(blob)
            blob += self.blob[start:start + _packed_size(self.blob, start)]
        self.blob, self.stale = blob, 0
