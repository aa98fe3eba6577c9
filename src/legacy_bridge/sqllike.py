"""SQL LIKE / ILIKE in linear time, without backtracking. Pure.

A pattern is split at its unescaped `%` into fixed-length segments (literal
characters and `_`, any one character). The first segment must match at the
start, the last at the end, and each one between at its leftmost place after
the one before: with fixed-length segments the leftmost choice is never worse,
so there is nothing to backtrack. A text of n characters costs at most
n x (longest segment) steps, whatever the pattern; a regular expression with
a `.*` per `%` can take exponential time on a hostile pattern.
"""

from __future__ import annotations

from dataclasses import dataclass

from legacy_bridge.errors import UnsupportedSql

ANY = None  # `_` in a segment
Segment = tuple[str | None, ...]


@dataclass(frozen=True)
class LikePattern:
    segments: tuple[Segment, ...]  # at least one; several when the pattern has a `%`
    ignore_case: bool

    def matches(self, text: str) -> bool:
        if self.ignore_case:
            text = text.lower()
        segments = self.segments
        if len(segments) == 1:
            return len(text) == len(segments[0]) and _fits(text, 0, segments[0])
        first, last = segments[0], segments[-1]
        end = len(text) - len(last)
        if len(first) > end or not _fits(text, 0, first) or not _fits(text, end, last):
            return False
        position = len(first)
        for segment in segments[1:-1]:
            found = _find(text, segment, position, end)
            if found < 0:
                return False
            position = found + len(segment)
        return True


def compile_like(pattern: str, escape: str, ignore_case: bool) -> LikePattern:
    """The pattern's segments; `escape` makes the next character literal (Postgres: `\\`)."""
    if ignore_case:
        pattern = pattern.lower()
    segments: list[Segment] = []
    current: list[str | None] = []
    i = 0
    while i < len(pattern):
        char = pattern[i]
        if escape and char == escape:
            if i + 1 == len(pattern):
                raise UnsupportedSql("LIKE pattern must not end with escape character")
            current.append(pattern[i + 1])
            i += 2
            continue
        if char == "%":
            segments.append(tuple(current))
            current = []
        else:
            current.append(ANY if char == "_" else char)
        i += 1
    segments.append(tuple(current))
    return LikePattern(tuple(segments), ignore_case)


def _fits(text: str, at: int, segment: Segment) -> bool:
    return all(want is ANY or text[at + k] == want for k, want in enumerate(segment))


def _find(text: str, segment: Segment, start: int, end: int) -> int:
    """The leftmost place in [start, end - len(segment)] where the segment fits, or -1."""
    if ANY not in segment:  # all literal: the string search in C
        return text.find("".join(str(c) for c in segment), start, end)
    for at in range(start, end - len(segment) + 1):
        if _fits(text, at, segment):
            return at
    return -1
