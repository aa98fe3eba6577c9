"""Packed checkpoints: every cursor comes back exactly, and the structure answers as a
plain sorted mapping of offsets to cursors would."""

from __future__ import annotations

import bisect

from hypothesis import example, given
from hypothesis import strategies as st

from legacy_bridge.cursorpack import PackedCheckpoints, pack, segments, unpack
from legacy_bridge.emulator.cursors import CursorCodec

BASE64URL = st.text(alphabet="ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_",
                    max_size=90)
CURSORS = st.one_of(st.text(max_size=120), st.lists(BASE64URL, min_size=1, max_size=4)
                    .map(".".join))


@given(CURSORS, CURSORS)
@example("", "")
@example(".", "ab")
@example("YQ", "YQ")  # decodes, but "YR" would not spell itself back
@example("YR", "YQ")
@example("ab.cd.ef", "ab")
@example("ab", "ab.cd.ef")
@example("é.ü", "")
@example("QUFBQkJC", "QUFBQUFB")  # AAABBB against AAAAAA: head and tail would overlap
def test_every_cursor_comes_back_exactly_whatever_it_is_packed_against(
        cursor: str, first: str) -> None:
    reference = segments(first) or []
    assert unpack(pack(cursor, reference), 0, reference) == cursor


CODEC = CursorCodec(b"secret")


def test_a_base64url_cursor_alone_is_kept_decoded_smaller_than_its_text() -> None:
    cursor = CODEC.encode(("2024-02-13T07:38:00Z", 367), "5d7a26cd61bd5459")
    assert len(pack(cursor, [])) <= len(cursor) * 0.85


def test_a_cursor_keeps_only_what_differs_from_its_querys_first() -> None:
    first = CODEC.encode(("2024-02-13T07:38:00Z", 367), "5d7a26cd61bd5459")
    later = CODEC.encode(("2024-02-14T11:02:00Z", 9120), "5d7a26cd61bd5459")
    reference = segments(first)
    assert reference is not None
    assert len(pack(later, reference)) <= len(later) / 2


Operation = tuple[int, str]


@given(st.lists(st.tuples(st.integers(0, 5000), CURSORS), max_size=60),
       st.integers(1, 20), st.lists(st.integers(0, 5000), max_size=20))
def test_it_answers_as_a_sorted_mapping_that_forgets_its_lowest_offset(
        puts: list[Operation], most: int, asked: list[int]) -> None:
    packed = PackedCheckpoints()
    model: dict[int, str] = {}
    for offset, cursor in puts:
        packed.put(offset, cursor, most)
        if offset not in model and len(model) >= most:
            del model[min(model)]
        model[offset] = cursor
    assert list(packed.offsets) == sorted(model)
    for offset in asked + list(model):
        keys = sorted(model)
        index = bisect.bisect_right(keys, offset)
        expected = (keys[index - 1], model[keys[index - 1]]) if index else None
        assert packed.at_or_before(offset) == expected
