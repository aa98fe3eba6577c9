"""The checkpoints of one query, packed: a million fit in a sidecar's memory.

A checkpoint is an offset and the opaque cursor the upstream gave there. As a
Python `dict[int, str]` beside a sorted `list[int]` one costs about 220 bytes;
here the offsets are a C array and each cursor is packed into one shared buffer:

- a cursor made of base64url segments (most are: `body.signature`) is kept
  decoded: three bytes for every four characters;
- the cursors of one query look alike (the same filter fingerprint, the same
  date prefix, `arrayconnection:`...), so each segment keeps only what differs
  from the query's first cursor: the lengths of the shared head and tail, and
  the middle.

Packing is exact: `unpack(pack(c, ref), ref) == c` for every string and every
reference, and a segment that would not come back identical is kept as text.
"""

from __future__ import annotations

import base64
import binascii
import bisect
import re
from array import array

_SEGMENT = re.compile(r"[A-Za-z0-9_-]+")
_TEXT = 0  # first byte of a cursor kept as text; otherwise the number of segments
Reference = list[bytes]  # the decoded segments of a query's first cursor


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


def segments(cursor: str) -> Reference | None:
    """The cursor's decoded base64url segments, or None when it is not made of them."""
    parts = [_decoded(segment) for segment in cursor.split(".")]
    if len(parts) > 255 or any(part is None for part in parts):
        return None
    return [part for part in parts if part is not None]


def _shared(data: bytes, like: bytes) -> tuple[int, int]:
    """(head, tail): how many leading and trailing bytes `data` shares with `like`
    (found by halving, so the comparing is done by bytes' own, not byte by byte)."""
    most = min(len(data), len(like))
    low, high = 0, most
    while low < high:
        mid = (low + high + 1) // 2
        if data[:mid] == like[:mid]:
            low = mid
        else:
            high = mid - 1
    head = low
    low, high = 0, most - head
    while low < high:
        mid = (low + high + 1) // 2
        if data[len(data) - mid:] == like[len(like) - mid:]:
            low = mid
        else:
            high = mid - 1
    return head, low


def pack(cursor: str, reference: Reference) -> bytes:
    """The cursor as bytes: its segments as they differ from `reference`'s, or its text."""
    parts = segments(cursor)
    if not parts:
        text = cursor.encode()
        return bytes([_TEXT]) + _varint(len(text)) + text
    out = bytearray([len(parts)])
    for index, part in enumerate(parts):
        like = reference[index] if index < len(reference) else b""
        head, tail = _shared(part, like)
        middle = part[head:len(part) - tail]
        out += _varint(head) + _varint(tail) + _varint(len(middle)) + middle
    return bytes(out)


def unpack(buffer: bytearray | bytes, at: int, reference: Reference) -> str:
    """The cursor packed at `at` against `reference`."""
    count = buffer[at]
    at += 1
    if count == _TEXT:
        size, at = _read_varint(buffer, at)
        return bytes(buffer[at:at + size]).decode()
    texts = []
    for index in range(count):
        like = reference[index] if index < len(reference) else b""
        head, at = _read_varint(buffer, at)
        tail, at = _read_varint(buffer, at)
        size, at = _read_varint(buffer, at)
        part = like[:head] + bytes(buffer[at:at + size]) + like[len(like) - tail:]
        texts.append(base64.urlsafe_b64encode(part).rstrip(b"=").decode())
        at += size
    return ".".join(texts)


def _end(buffer: bytearray, at: int) -> int:
    """Where the cursor packed at `at` ends."""
    count = buffer[at]
    at += 1
    if count == _TEXT:
        size, at = _read_varint(buffer, at)
        return at + size
    for _ in range(count):
        _, at = _read_varint(buffer, at)
        _, at = _read_varint(buffer, at)
        size, at = _read_varint(buffer, at)
        at += size
    return at


class PackedCheckpoints:
    """Sorted offsets and their packed cursors. A cursor replaced or forgotten leaves
    its bytes behind until they are half the buffer; then the buffer is rewritten."""

    __slots__ = ("blob", "offsets", "reference", "stale", "starts")

    def __init__(self) -> None:
        self.offsets = array("q")
        self.starts = array("I")  # where each offset's cursor begins in `blob`
        self.blob = bytearray()
        self.stale = 0  # bytes of `blob` no offset points at
        self.reference: Reference | None = None  # the first cursor's segments, kept

    def __len__(self) -> int:
        return len(self.offsets)

    def at_or_before(self, offset: int) -> tuple[int, str] | None:
        index = bisect.bisect_right(self.offsets, offset)
        if not index:
            return None
        return self.offsets[index - 1], unpack(self.blob, self.starts[index - 1],
                                               self.reference or [])

    def put(self, offset: int, cursor: str, most: int) -> None:
        """Remember `cursor` at `offset`; past `most`, forget the lowest offset (crawls
        move forward)."""
        if self.reference is None:
            self.reference = segments(cursor) or []
        index = bisect.bisect_left(self.offsets, offset)
        start = len(self.blob)
        self.blob += pack(cursor, self.reference)
        if index < len(self.offsets) and self.offsets[index] == offset:
            self.stale += _end(self.blob, self.starts[index]) - self.starts[index]
            self.starts[index] = start
        else:
            if len(self.offsets) >= most:
                self.stale += _end(self.blob, self.starts[0]) - self.starts[0]
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
            blob += self.blob[start:_end(self.blob, start)]
        self.blob, self.stale = blob, 0
