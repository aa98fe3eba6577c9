"""Issue 14, item 6: the compare page, report and gate read the store a batch at a time."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from legacy_bridge import report
from legacy_bridge.store import ComparisonRow, Store


def _filled(tmp_path: Path, count: int) -> Store:
    store = Store(f"sqlite:///{tmp_path}/s.sqlite3", keep_comparisons=10_000)
    for i in range(count):
        store.add_comparison(ComparisonRow(
            f"2026-12-01T00:{i // 60 % 60:02d}:{i % 60:02d}.000000Z", "users",
            f"/api/v2/plans/p/users?page={i}", 200, 200, i % 3 != 0,
            '[{"record": "r", "path": "status", "legacy": "a", "bridge": "b"}]',
            '{"golden": "' + "x" * 10_000 + '"}'))
    return store


def test_a_report_over_the_store_holds_one_batch_and_no_golden_case(tmp_path: Path) -> None:
    store = _filled(tmp_path, 2_500)
    largest = 0
    read = store._read

    def counted(text: str, args: list[Any]) -> list[tuple[Any, ...]]:
        nonlocal largest
        rows = read(text, args)
        largest = max(largest, len(rows))
        assert all(row[-1] is None for row in rows)  # golden cases stay on disk
        return rows

    store._read = counted  # type: ignore[method-assign]
    (summary,) = report.summarize(store.iter_comparisons())
    assert (summary.compared, summary.differ) == (2_500, 834)
    assert largest == 1_000
    store.close()


def test_export_reads_only_the_newest_golden_cases(tmp_path: Path) -> None:
    store = _filled(tmp_path, 30)
    cases = store.golden_cases("users", 5)
    assert [c.request for c in cases] == [f"/api/v2/plans/p/users?page={i}"
                                          for i in range(25, 30)]
    store.close()
