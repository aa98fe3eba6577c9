"""Issue 14, item 8: CSV cells a spreadsheet would run, neutralised only when asked."""

from __future__ import annotations

from collections.abc import AsyncGenerator
from typing import Any

from legacy_bridge.dataapi import csv_lines

ROWS = [["=HYPERLINK(\"http://x\")", "+1", "-2", "@SUM(A1)", "plain", -3, None]]


async def _rest() -> AsyncGenerator[list[Any], None]:
    for row in ROWS[1:]:
        yield row


async def _csv(neutralize: bool) -> str:
    return "".join([part async for part in csv_lines(
        list("abcdefg"), ROWS[0], _rest(), "data-api", neutralize)])


async def test_by_default_cells_are_the_old_apis_bytes() -> None:
    assert (await _csv(False)).splitlines()[1] == \
        '"=HYPERLINK(""http://x"")",+1,-2,@SUM(A1),plain,-3,'


async def test_when_asked_formula_cells_are_made_inert() -> None:
    assert (await _csv(True)).splitlines()[1] == \
        '"\'=HYPERLINK(""http://x"")",\'+1,\'-2,\'@SUM(A1),plain,-3,'
