"""The comparison report: mismatch rates per route, per field and over time,
and the latest example of each kind of mismatch, side by side.

One summary (`summarize`) feeds both `legacy-bridge compare report` (text) and
`/_bridge/compare` (a plain HTML page with no external assets: it renders
offline).
"""

from __future__ import annotations

import html
import json
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from legacy_bridge.progressrows import ModeChange
from legacy_bridge.store import ComparisonRow


@dataclass
class RouteSummary:
    route: str
    compared: int = 0
    differ: int = 0
    fields: dict[str, int] = field(default_factory=dict)  # path -> comparisons differing
    hours: dict[str, list[int]] = field(default_factory=dict)  # hour -> [differ, compared]
    # path -> hour -> comparisons differing on it (the field's trend)
    field_hours: dict[str, dict[str, int]] = field(default_factory=dict)
    examples: dict[str, dict[str, Any]] = field(default_factory=dict)  # path -> latest

    @property
    def rate(self) -> float:
        return self.differ / self.compared if self.compared else 0.0


def summarize(rows: Iterable[ComparisonRow]) -> list[RouteSummary]:
    routes: dict[str, RouteSummary] = {}
    for row in rows:  # oldest first: later examples replace earlier ones
        summary = routes.setdefault(row.route, RouteSummary(row.route))
        summary.compared += 1
        hour = summary.hours.setdefault(row.at[:13] + ":00Z", [0, 0])
        hour[1] += 1
        if row.agrees:
            continue
        summary.differ += 1
        hour[0] += 1
        seen: set[str] = set()
        for difference in json.loads(row.differences):
            path = difference["path"]
            if path not in seen:
                seen.add(path)
                summary.fields[path] = summary.fields.get(path, 0) + 1
                trend = summary.field_hours.setdefault(path, {})
                trend[row.at[:13] + ":00Z"] = trend.get(row.at[:13] + ":00Z", 0) + 1
            summary.examples[path] = {**difference, "request": row.request, "at": row.at}
    return sorted(routes.values(), key=lambda s: s.route)


def text(summaries: list[RouteSummary]) -> str:
    if not summaries:
        return "no comparisons stored yet (run a route in shadow mode)"
    lines = []
    for s in summaries:
        lines.append(f"{s.route}: {s.compared} comparisons, {s.differ} differ "
                     f"({100 * s.rate:.3f}%)")
        for path, count in sorted(s.fields.items(), key=lambda kv: -kv[1]):
            lines.append(f"  {path:<34} {count:>7} differ  "
                         f"{100 * count / s.compared:7.3f}%")
        for hour, (differ, compared) in sorted(s.hours.items()):
            lines.append(f"  {hour}  {differ:>6} / {compared:<6}")
        for path, example in s.examples.items():
            lines.append(f"  latest {path}: {example['record']} legacy {example['legacy']!r} "
                         f"bridge {example['bridge']!r} ({example['request']})")
    return "\n".join(lines)


def _e(value: Any) -> str:
    return html.escape(value if isinstance(value, str) else json.dumps(value))


def _mode_text(mode: str | None, percent: int | None) -> str:
    if mode is None:
        return "the table's mode"
    return mode if percent in (None, 100) else f"{mode} for {percent}% of clients"


def sparkline(rates: list[float], width: int = 120, height: int = 24) -> str:
    """Agreement rates (0..1, oldest first) as an inline SVG line: no script, no assets."""
    if not rates:
        return ""
    rates = rates * 2 if len(rates) == 1 else rates  # one hour: a level line
    step = width / (len(rates) - 1)
    points = " ".join(f"{i * step:.1f},{height - r * (height - 2) - 1:.1f}"
                      for i, r in enumerate(rates))
    last = rates[-1]
    return (f'<svg class=trend width={width} height={height} role=img '
            f'aria-label="agreement {100 * last:.1f}% now, {len(rates)} hours">'
            f'<polyline fill=none stroke="{"#080" if last == 1 else "#a00"}" stroke-width=1.5 '
            f'points="{points}"/></svg>')


def _agreement(s: RouteSummary, differing: dict[str, int] | None = None) -> list[float]:
    """Per hour, oldest first: the share of comparisons that agreed (on one field)."""
    rates = []
    for hour, (differ, compared) in sorted(s.hours.items()):
        off = differ if differing is None else differing.get(hour, 0)
        rates.append(1 - off / compared if compared else 1.0)
    return rates


def page(summaries: list[RouteSummary], modes: dict[str, str] | None = None,
         changes: list[ModeChange] | None = None) -> str:
    """The comparison page: per route its mode, agreement and trend, then per field;
    at the end who changed which route's mode, and when."""
    sections = []
    for s in summaries:
        fields = "".join(
            f"<tr class=mismatch><td>{_e(path)}</td><td class=n>{count}</td>"
            f"<td class=n>{100 * (1 - count / s.compared):.3f}%</td>"
            f"<td>{sparkline(_agreement(s, s.field_hours.get(path, {})))}</td></tr>"
            for path, count in sorted(s.fields.items(), key=lambda kv: -kv[1]))
        hours = "".join(
            f"<tr><td>{_e(hour)}</td><td class=n>{differ}</td><td class=n>{compared}</td>"
            f"<td class=n>{100 * differ / compared:.2f}%</td></tr>"
            for hour, (differ, compared) in sorted(s.hours.items()))
        examples = "".join(
            f"<tr class=example><td>{_e(path)}</td><td>{_e(ex['record'])}</td>"
            f"<td><code>{_e(ex['legacy'])}</code></td><td><code>{_e(ex['bridge'])}</code></td>"
            f"<td><code>{_e(ex['request'])}</code></td><td>{_e(ex['at'])}</td></tr>"
            for path, ex in s.examples.items())
        mode = (modes or {}).get(s.route)
        sections.append(f"""
<section id="route-{_e(s.route)}">
<h2>{_e(s.route)}: {100 * (1 - s.rate):.2f}% agree {sparkline(_agreement(s))}</h2>
<p class=summary>{s.differ} of {s.compared} comparisons differ
{f'&middot; mode <b class=mode>{_e(mode)}</b>' if mode else ''}</p>
<h3>By field</h3>
<table><tr><th>field</th><th class=n>comparisons differing</th><th class=n>agreement</th>
<th>trend</th></tr>
{fields or '<tr><td colspan=4>every field agrees</td></tr>'}</table>
<h3>By hour (UTC)</h3>
<table><tr><th>hour</th><th class=n>differ</th><th class=n>compared</th>
<th class=n>differing</th></tr>{hours}</table>
<h3>Latest example of each mismatch</h3>
<table><tr><th>field</th><th>record</th><th>legacy</th><th>bridge</th><th>request</th>
<th>at</th></tr>{examples or '<tr><td colspan=6>none</td></tr>'}</table>
</section>""")
    body = "".join(sections) or "<p>No comparisons stored yet: run a route in shadow mode.</p>"
    if changes:
        rows = "".join(
            f"<tr class=change><td>{_e(c.at)}</td><td>{_e(c.who)}</td><td>{_e(c.route)}</td>"
            f"<td>{_e(_mode_text(c.from_mode, c.from_percent))}</td>"
            f"<td>{_e(_mode_text(c.to_mode, c.to_percent))}</td></tr>" for c in changes)
        body += (f"<section id=mode-changes><h2>Mode changes</h2><table><tr><th>when (UTC)</th>"
                 f"<th>who</th><th>route</th><th>from</th><th>to</th></tr>{rows}</table>"
                 "</section>")
    return f"""<!doctype html>
<html lang=en><head><meta charset=utf-8><title>legacy-bridge: legacy vs bridge</title>
<style>body{{font:14px system-ui,sans-serif;margin:2em;max-width:80em}}
table{{border-collapse:collapse;margin-bottom:1em}}
td,th{{border-bottom:1px solid #ddd;padding:.3em .8em;text-align:left;vertical-align:top}}
.n{{text-align:right}}.mismatch td:first-child,.example td:first-child{{color:#a00}}
svg.trend{{vertical-align:middle;margin-left:.5em}}
code{{white-space:pre-wrap}}</style></head><body>
<h1>Side-by-side comparison: legacy API vs legacy-bridge</h1>{body}</body></html>"""
