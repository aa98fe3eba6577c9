"""Joined counters: distinct assessments per learner, program and plan."""

from __future__ import annotations

from typing import Any

from legacy_bridge.joins import join_values
from legacy_bridge.mapping import load_mappings
from legacy_bridge.operations import VariablePath
from support import MAPPINGS

JOIN = next(r for r in load_mappings(MAPPINGS) if r.name == "progress").joins["assessments"]
ATTEMPTS = [
    {"userId": "u1", "programKey": "p1", "assessmentId": "a1", "status": "FAILED"},
    {"userId": "u1", "programKey": "p1", "assessmentId": "a1", "status": "PASSED"},
    {"userId": "u1", "programKey": "p1", "assessmentId": "a2", "status": "IN_PROGRESS"},
    {"userId": "u1", "programKey": "p2", "assessmentId": "a3", "status": "PASSED"},
    {"userId": "u1", "programKey": None, "assessmentId": "a4", "status": "PASSED"},
    {"userId": "u2", "programKey": "p1", "assessmentId": "a1", "status": "SUBMITTED"},
]


async def test_counts_distinct_attempted_and_passed_per_program() -> None:
    sent: list[dict[VariablePath, Any]] = []

    async def fetch_all(variables: dict[VariablePath, Any]) -> list[dict[str, Any]]:
        sent.append(variables)
        return ATTEMPTS

    nodes = [{"userId": "u1", "programKey": "p1"}, {"userId": "u1", "programKey": "p2"},
             {"userId": "u2", "programKey": "p1"}, {"userId": "u3", "programKey": "p1"}]
    values = await join_values(JOIN, nodes, {"planId": "plan"}, fetch_all)
    assert [(v[("assessments", "attempted")], v[("assessments", "completed")])
            for v in values] == [(2, 1), (1, 1), (1, 0), (0, 0)]
    assert sent == [{("filter", "learningPlanId"): "plan",
                     ("filter", "userIds"): ["u1", "u2", "u3"]}]


async def test_an_empty_page_sends_nothing() -> None:
    async def fetch_all(variables: dict[VariablePath, Any]) -> list[dict[str, Any]]:
        raise AssertionError("no request expected")

    assert await join_values(JOIN, [], {"planId": "plan"}, fetch_all) == []
