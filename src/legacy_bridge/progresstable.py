"""The course-progress table (`[course_progress]`): routes with verbs, a bare-array
record, a write body, and the GraphQL read and mutations behind them.

The GraphQL documents are written here from the schema, never by hand in the
table: the read selects one inline fragment per member of its union (a member
missing from the SDL could never count as completed), and every argument the
table names is checked to exist with the type it is given. A mistake stops
the start-up naming the file, the key and the fix.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from graphql import (
    GraphQLField,
    GraphQLObjectType,
    GraphQLSchema,
    GraphQLUnionType,
    get_named_type,
    parse,
    validate,
)
from pydantic import BaseModel, ConfigDict, Field

from legacy_bridge.errors import MappingError
from legacy_bridge.mapping import KEY_ORDER, RawCompare
from legacy_bridge.modes import Mode
from legacy_bridge.operations import (
    PROGRESS_TABLE_KEY,
    SchemaChecks,
    SchemaSource,
    bundled_schema,
    is_progress_table,
    read_table,
)
from legacy_bridge.query import Document

TABLE_KEY = PROGRESS_TABLE_KEY
RECORD_KEYS = ("user_id", "course_id", "lesson_id", "completed", "video_progress",
               "last_position", "completed_at")
METHODS = ("GET", "POST", "PUT")


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class RawProgressRoute(_Strict):
    name: str = Field(pattern=r"^[a-z][a-z0-9-]*$")
    path: str = Field(pattern=r"^/")
    methods: tuple[Literal["GET", "POST", "PUT"], ...] = Field(min_length=1)
    learner: Literal["caller", "path"]
    role: Literal["learner", "admin"] = "learner"


class RawRecord(_Strict):
    keys: tuple[str, ...]
    timestamp_digits: int = Field(3, ge=0, le=6)


class RawBody(_Strict):
    required: tuple[str, ...] = ("course_id", "lesson_id")
    positions: tuple[str, ...] = ("video_progress", "last_position")
    defaults: dict[str, bool | int | float] = {}


class RawCourseProgress(_Strict):
    api: str
    endpoint: str = Field(pattern=r"^/")
    mode: Mode | None = None  # overrides BRIDGE_MODE for these routes
    done_query: str
    done_course_variable: str
    done_page_id: str = "id"
    complete_mutation: str
    complete_topic_variable: str
    complete_progress_variable: str
    complete_progress: int = 100
    # G1 (c), opt-in: a position save on a one-topic lesson with a duration also sends
    # floor(100 * video_progress / duration), only when it rises, at most 99
    forward_partial: bool = False
    status_mutation: str
    status_course_variable: str
    status_variable: str
    status_completed: str
    criteria_query: str
    criteria_course_variable: str
    criteria_type: str
    routes: tuple[RawProgressRoute, ...] = Field(min_length=1)
    params: dict[Literal["course"], str]
    record: RawRecord
    body: RawBody = RawBody()
    warnings: dict[Literal["not_reverted"], str]
    # shadow comparison of reads: records matched by identity, times as instants
    compare: RawCompare = RawCompare()


class RawFile(_Strict):
    course_progress: RawCourseProgress


@dataclass(frozen=True)
class ProgressRoute:
    name: str
    path: str
    methods: tuple[str, ...]
    learner: Literal["caller", "path"]
    role: Literal["learner", "admin"]
    path_param: str | None  # the learner's UUID in the path, e.g. "learnerId"

    @property
    def allow(self) -> str:
        return ", ".join(self.methods)


@dataclass(frozen=True)
class ProgressTable:
    file: str
    endpoint: str
    mode: Mode | None
    routes: tuple[ProgressRoute, ...]
    course_param: str
    keys: tuple[str, ...]
    timestamp_digits: int
    defaults: dict[str, Any]
    not_reverted: str
    done: Document
    done_course_variable: str
    done_page_id: str
    done_field: str
    complete: Document
    complete_topic_variable: str
    complete_progress_variable: str
    complete_progress: int
    forward_partial: bool
    set_status: Document
    status_course_variable: str
    status_variable: str
    status_completed: str
    criteria: Document  # `check --upstream`: the topics the platform requires per course
    criteria_course_variable: str
    criteria_type: str
    compare: RawCompare


def load_progress_table(directory: Path,
                        source: SchemaSource = bundled_schema) -> ProgressTable | None:
    """The one course-progress table in `directory`, checked; None when there is none."""
    files = [f for f in sorted(directory.glob("*.toml")) if is_progress_table(f)]
    if not files:
        return None
    if len(files) > 1:
        raise MappingError(str(files[1]), TABLE_KEY, f"{files[0]} also has a [{TABLE_KEY}]",
                           "keep one course-progress table")
    raw = read_table(files[0], RawFile, "Course progress").course_progress
    return _Checker(str(files[0]), source).table(raw)


class _Checker(SchemaChecks):
    def __init__(self, file: str, source: SchemaSource) -> None:
        super().__init__(file, source)

    def table(self, raw: RawCourseProgress) -> ProgressTable:
        key = TABLE_KEY
        if sorted(raw.record.keys) != sorted(RECORD_KEYS):
            raise self.fail(f"{key}.record.keys", "must list each record field once",
                            f"order these: {', '.join(RECORD_KEYS)}")
        for rule in ("identity", "ignore", "timestamps", "pii", "strict"):
            for path in getattr(raw.compare, rule):
                if path not in RECORD_KEYS and not (rule == "strict" and path == KEY_ORDER):
                    raise self.fail(f"{key}.compare.{rule}", f"{path!r} is not a record field",
                                    f"use some of {', '.join(RECORD_KEYS)}")
        for name in raw.body.defaults:
            if name not in ("completed", *raw.body.positions):
                raise self.fail(f"{key}.body.defaults.{name}", "not a writable field",
                                "give defaults for completed and the positions only")
        schema = self.schema(f"{key}.api", raw.api, raw.endpoint)
        done_field = self._field(schema, "query", f"{key}.done_query", raw.done_query)
        self._argument(done_field, f"{key}.done_course_variable", raw.done_course_variable)
        done = self._done_document(schema, raw, done_field)
        complete_field = self._field(schema, "mutation", f"{key}.complete_mutation",
                                     raw.complete_mutation)
        status_field = self._field(schema, "mutation", f"{key}.status_mutation",
                                   raw.status_mutation)
        complete = self._mutation(schema, raw.complete_mutation, complete_field, {
            raw.complete_topic_variable: f"{key}.complete_topic_variable",
            raw.complete_progress_variable: f"{key}.complete_progress_variable"})
        status = self._mutation(schema, raw.status_mutation, status_field, {
            raw.status_course_variable: f"{key}.status_course_variable",
            raw.status_variable: f"{key}.status_variable"})
        criteria_field = self._field(schema, "query", f"{key}.criteria_query",
                                     raw.criteria_query)
        self._argument(criteria_field, f"{key}.criteria_course_variable",
                       raw.criteria_course_variable)
        arg = criteria_field.args[raw.criteria_course_variable]
        criteria = self._checked(
            schema, f"{key}.criteria_query",
            f"query {raw.criteria_query}(${raw.criteria_course_variable}: {arg.type}) "
            f"{{ {raw.criteria_query}({raw.criteria_course_variable}: "
            f"${raw.criteria_course_variable}) {{ type required }} }}", raw.criteria_query)
        routes = tuple(self._route(n, r) for n, r in enumerate(raw.routes))
        return ProgressTable(
            self.file, raw.endpoint, raw.mode, routes, raw.params["course"], raw.record.keys,
            raw.record.timestamp_digits,
            {"completed": False, "video_progress": 0, "last_position": 0,
             **raw.body.defaults},
            raw.warnings["not_reverted"], done, raw.done_course_variable, raw.done_page_id,
            raw.done_query, complete, raw.complete_topic_variable,
            raw.complete_progress_variable, raw.complete_progress, raw.forward_partial,
            status,
            raw.status_course_variable, raw.status_variable, raw.status_completed,
            criteria, raw.criteria_course_variable, raw.criteria_type, raw.compare)

    def _route(self, n: int, raw: RawProgressRoute) -> ProgressRoute:
        key = f"{TABLE_KEY}.routes.{n}"
        params = re.findall(r"\{([A-Za-z_][A-Za-z0-9_]*)\}", raw.path)
        if raw.learner == "path" and len(params) != 1:
            raise self.fail(f"{key}.path", "learner = \"path\" needs one {param} in the path",
                            "e.g. /api/admin/progress/{learnerId}")
        if raw.learner == "caller" and params:
            raise self.fail(f"{key}.path", "the caller's records take no path parameter",
                            "remove it, or set learner = \"path\"")
        if raw.learner == "path" and raw.methods != ("GET",):
            raise self.fail(f"{key}.methods", "another learner's records are read-only",
                            'set methods = ["GET"]')
        return ProgressRoute(raw.name, raw.path, raw.methods, raw.learner, raw.role,
                             params[0] if params else None)

    def _field(self, schema: GraphQLSchema, kind: str, key: str, name: str) -> GraphQLField:
        root = schema.query_type if kind == "query" else schema.mutation_type
        if root is None or name not in root.fields:
            have = ", ".join(root.fields) if root is not None else "none"
            raise self.fail(key, f"the {kind} type has no field {name!r}", f"use one of {have}")
        found: GraphQLField = root.fields[name]
        return found

    def _argument(self, field: GraphQLField, key: str, name: str) -> None:
        if name not in field.args:
            raise self.fail(key, f"no argument {name!r}",
                            f"use one of {', '.join(field.args)}")

    def _done_document(self, schema: GraphQLSchema, raw: RawCourseProgress,
                       field: GraphQLField) -> Document:
        union = get_named_type(field.type)
        members = union.types if isinstance(union, GraphQLUnionType) else (
            (union,) if isinstance(union, GraphQLObjectType) else ())
        for member in members:
            if raw.done_page_id not in member.fields:
                raise self.fail(f"{TABLE_KEY}.done_page_id",
                                f"{member.name} has no field {raw.done_page_id!r}",
                                "name the page id field every page type has")
        if not members:
            raise self.fail(f"{TABLE_KEY}.done_query", f"{raw.done_query} returns no pages",
                            "name a query returning a list of page objects")
        arg = field.args[raw.done_course_variable]
        selection = " ".join(f"... on {m.name} {{ {raw.done_page_id} }}" for m in members)
        text = (f"query {raw.done_query}(${raw.done_course_variable}: {arg.type}) "
                f"{{ {raw.done_query}({raw.done_course_variable}: "
                f"${raw.done_course_variable}) {{ __typename {selection} }} }}")
        return self._checked(schema, f"{TABLE_KEY}.done_query", text, raw.done_query)

    def _mutation(self, schema: GraphQLSchema, name: str, field: GraphQLField,
                  variables: dict[str, str]) -> Document:
        for variable, key in variables.items():
            self._argument(field, key, variable)
        declared = ", ".join(f"${v}: {field.args[v].type}" for v in variables)
        passed = ", ".join(f"{v}: ${v}" for v in variables)
        text = f"mutation {name}({declared}) {{ {name}({passed}) }}"
        return self._checked(schema, f"{TABLE_KEY}.{name}", text, name)

    def _checked(self, schema: GraphQLSchema, key: str, text: str, name: str) -> Document:
        problems = validate(schema, parse(text))
        if problems:
            raise self.fail(key, problems[0].message, "match the table to the upstream schema")
        return Document(text, name)
