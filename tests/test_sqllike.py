"""LIKE without backtracking: the same answers as a regular expression, in linear time."""

from __future__ import annotations

import re

import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from legacy_bridge import sqllike
from legacy_bridge.errors import UnsupportedSql
from legacy_bridge.sqllike import compile_like


def oracle(pattern: str, escape: str, ignore_case: bool, text: str) -> bool:
    """The textbook translation: `%` is `.*`, `_` is `.`, the rest literal."""
    out, i = [], 0
    while i < len(pattern):
        if pattern[i] == escape and i + 1 < len(pattern):
            out.append(re.escape(pattern[i + 1]))
            i += 2
            continue
        out.append({"%": ".*", "_": "."}.get(pattern[i], re.escape(pattern[i])))
        i += 1
    flags = re.DOTALL | (re.IGNORECASE if ignore_case else 0)
    return re.fullmatch("".join(out), text, flags) is not None


patterns = st.text(alphabet="ab%_!A", max_size=10).filter(lambda p: not p.endswith("!"))
texts = st.text(alphabet="abAB%_!\n", max_size=14)


@settings(max_examples=400, deadline=None, derandomize=True)
@given(pattern=patterns, text=texts, ignore_case=st.booleans())
@example(pattern="%a%b%", text="xxaxxbxx", ignore_case=False)
@example(pattern="a%a", text="a", ignore_case=False)      # segments may not overlap
@example(pattern="%!%%", text="50%", ignore_case=False)    # an escaped % is literal
@example(pattern="_%_", text="ab", ignore_case=False)
def test_like_answers_as_the_regular_expression_does(pattern: str, text: str,
                                                     ignore_case: bool) -> None:
    assert compile_like(pattern, "!", ignore_case).matches(text) == \
        oracle(pattern, "!", ignore_case, text)


def test_a_pattern_ending_in_the_escape_character_is_refused_as_postgres_does() -> None:
    with pytest.raises(UnsupportedSql, match="escape character"):
        compile_like("abc!", "!", ignore_case=False)


def test_a_hostile_pattern_costs_steps_not_seconds(monkeypatch: pytest.MonkeyPatch) -> None:
    """The pattern that took a regular expression 53 s on one 45-character e-mail:
    here every segment is tried at most once per character of the text."""
    calls = 0
    fits = sqllike._fits

    def counted(text: str, at: int, segment: sqllike.Segment) -> bool:
        nonlocal calls
        calls += 1
        return fits(text, at, segment)

    monkeypatch.setattr(sqllike, "_fits", counted)
    pattern = compile_like("%_" * 10 + "!", "\\", ignore_case=False)
    email = "a.very.long.address.of.somebody@example.com.x"
    assert not pattern.matches(email)
    assert calls <= len(pattern.segments) * (len(email) + 1)
