"""`legacy-bridge check --upstream`: the course map against the live platform.

For each mapped course, the platform's completion criterion (`courseTopicViewed`)
lists the topics it requires. The map's required lessons must cover exactly
those topics, and every mapped topic must exist: otherwise a lesson would read
complete when the platform says it is not, or never complete at all.
"""

from __future__ import annotations

from typing import Any

import httpx

from legacy_bridge.coursemap import CourseMap
from legacy_bridge.progresstable import ProgressTable


def check_course_map(client: httpx.Client, key: str, auth_token: str, table: ProgressTable,
                     courses: CourseMap) -> list[str]:
    """Problems, each naming the map's file, the key and the fix; [] when it agrees."""
    problems: list[str] = []
    for n, course in enumerate(courses.courses.values()):
        where = f"{courses.file}: courses.{n}"
        try:
            answer = client.post(table.endpoint, headers={
                "Authorization": f"Token {key}", "authToken": auth_token}, json={
                "query": table.criteria.text, "operationName": table.criteria.operation_name,
                "variables": {table.criteria_course_variable: course.upstream_id}})
            answer.raise_for_status()
            body: Any = answer.json()
        except (httpx.HTTPError, ValueError) as exc:
            problems.append(f"{where}.upstream_id: the upstream did not answer for "
                            f"{course.upstream_id!r} ({type(exc).__name__}) - fix: check "
                            "the upstream URL and key")
            continue
        criteria = (body.get("data") or {}).get(table.criteria.operation_name)
        if not isinstance(criteria, list):
            problems.append(f"{where}.upstream_id: the upstream knows no course "
                            f"{course.upstream_id!r} - fix: use the platform's course ID")
            continue
        required = next((set(c.get("required") or []) for c in criteria
                         if isinstance(c, dict) and c.get("type") == table.criteria_type),
                        None)
        if required is None:
            continue  # no topic criterion (a percentage): nothing to compare with
        mapped = {t for lesson in course.lessons if lesson.is_required for t in lesson.topics}
        for topic in sorted(required - mapped):
            owner = next((f"lessons.{i}" for i, lesson in enumerate(course.lessons)
                          if topic in lesson.topics), None)
            problems.append(
                f"{where}.{owner or 'lessons'}: the platform requires topic {topic!r}, "
                + ("but its lesson is not is_required - fix: set is_required = true"
                   if owner else "which no lesson lists - fix: add it to its lesson"))
        for topic in sorted(mapped - required):
            problems.append(f"{where}.lessons: topic {topic!r} of a required lesson is not "
                            "required by the platform - fix: check the lesson's topics and "
                            "is_required")
    return problems
