"""The paged REST surface: one legacy GET route per mapping table, translated.

`RestRoute.translate` is one request, top to bottom:
authenticate -> parse parameters -> scope -> plan and read the page
(checkpoints, cursor walk) -> join -> rewrite -> respond in the table's envelope.
The migration mode around it is the pipeline's (pipeline.py), not this module's.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from typing import Any

from starlette.requests import Request
from starlette.responses import Response

from legacy_bridge import params
from legacy_bridge.auth import Authenticator, Client
from legacy_bridge.errors import UpstreamTimeout
from legacy_bridge.joins import join_values
from legacy_bridge.mapping import Join
from legacy_bridge.modes import Mode
from legacy_bridge.operations import VariablePath
from legacy_bridge.pagination import (
    Answer,
    Checkpoints,
    Fetch,
    answer_of,
    query_key,
    read_all,
    read_page,
)
from legacy_bridge.paramtypes import PARAM_TYPES
from legacy_bridge.pipeline import Comparison
from legacy_bridge.query import Document, input_variables
from legacy_bridge.responses import json_response
from legacy_bridge.routes import CompiledRoute
from legacy_bridge.shadow import Tape, diff_answers, golden_case
from legacy_bridge.upstream import Upstream
from legacy_bridge.usage import Usage


@dataclass(frozen=True)
class Limits:
    """The settings one translated request obeys."""

    total_deadline: float
    max_walk_requests: int
    keep_pii: bool  # comparisons keep personal values instead of hashing them


class RestRoute:
    """One legacy route of a mapping table, as a surface of the pipeline."""

    def __init__(self, compiled: CompiledRoute, auth: Authenticator, upstream: Upstream,
                 checkpoints: Checkpoints, usage: Usage, limits: Limits) -> None:
        self.compiled = compiled
        self.name = compiled.route.name
        self.mode: Mode | None = compiled.route.mode
        self.auth, self.upstream, self.checkpoints = auth, upstream, checkpoints
        self.usage, self.limits = usage, limits

    def admit(self, request: Request) -> None:
        return None  # a GET has no body; the token is checked in its contract order

    async def receive(self, request: Request) -> bytes | None:
        return None  # a GET: nothing to forward but the URL and headers

    async def translate(self, request: Request, body: bytes | None, tape: Tape | None = None,
                        count_usage: bool = True) -> Response:
        route = self.compiled.route
        # authenticate -> parse parameters -> scope: nothing goes upstream before these
        client = self.auth.client(request.headers.get("authorization"))
        request.state.client = client.label
        query = {key: request.query_params.getlist(key) for key in request.query_params}
        legacy = params.parse(route, request.path_params, query)
        if legacy.plan is not None:
            client.check_plan(legacy.plan)
        try:
            async with asyncio.timeout(self.limits.total_deadline):
                # plan pages -> query upstream (checkpoints, cursor walk, retries)
                page = await read_page(
                    legacy.offset, legacy.per_page, max_first=route.max_first,
                    max_walk=self.limits.max_walk_requests, checkpoints=self.checkpoints,
                    query=query_key(client.scope, route.endpoint, legacy.variables),
                    fetch=self._fetcher(client, legacy, tape), api=route.api)
                # join: one batched query per join for the whole page
                joined = await self._join(page.nodes, legacy, client, tape)
        except TimeoutError:
            raise UpstreamTimeout("the upstream did not answer in time") from None
        if tape is not None:
            tape.checkpoint = page.start
        # rewrite -> respond
        items = [self.compiled.rewriter.item(node, extra)
                 for node, extra in zip(page.nodes, joined, strict=True)]
        if count_usage:
            self.usage.record(client.label, route.name, [p for p in query if p in route.params],
                              self.compiled.returned_fields(items))
        held = {"items": items, "total": page.total, "page": legacy.page,
                "per_page": legacy.per_page}
        return json_response({key: held[role] for key, role in route.envelope})

    def relayable(self, request: Request) -> None:
        for param in self.compiled.route.params.values():
            if param.source == "path":
                PARAM_TYPES[param.type].parse(param, request.path_params[param.name])

    def relayed_params(self, request: Request) -> list[str]:
        return [p for p in request.query_params if p in self.compiled.route.params]

    def comparison(self, request: Request, body: bytes | None) -> Comparison:
        route = self.compiled.route
        target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
        keep_pii = self.limits.keep_pii
        return Comparison(
            target,
            diff=lambda legacy, bridge: diff_answers(route, legacy, bridge, keep_pii),
            golden=lambda legacy, bridge: golden_case(route, target, legacy, bridge, keep_pii))

    # -- query upstream ---------------------------------------------------------

    async def _query(self, endpoint: str, document: Document, variables: dict[str, Any],
                     client: Client, tape: Tape | None) -> dict[str, Any]:
        data = await self.upstream.query(endpoint, document, variables, client.upstream_key)
        if tape is not None:
            tape.record(endpoint, document, variables, data)
        return data

    def _fetcher(self, client: Client, legacy: params.Request, tape: Tape | None) -> Fetch:
        compiled, route = self.compiled, self.compiled.route

        async def fetch(first: int, after: str | None, with_nodes: bool) -> Answer:
            document = compiled.page if with_nodes else compiled.walk
            variables = input_variables(legacy.variables, route.connection, first, after)
            data = await self._query(route.endpoint, document, variables, client, tape)
            return answer_of(data, route.connection, with_nodes)

        return fetch

    async def _join(self, nodes: list[dict[str, Any]], legacy: params.Request, client: Client,
                    tape: Tape | None) -> list[dict[tuple[str, str], Any]]:
        joined: list[dict[tuple[str, str], Any]] = [{} for _ in nodes]
        for name, join in self.compiled.route.joins.items():
            document = self.compiled.joins[name]

            async def fetch_all(variables: dict[VariablePath, Any], join: Join = join,
                                document: Document = document) -> list[dict[str, Any]]:
                async def page(after: str | None) -> Answer:
                    data = await self._query(
                        join.endpoint, document,
                        input_variables(variables, join.connection, join.max_first, after),
                        client, tape)
                    return answer_of(data, join.connection, with_nodes=True)

                return [node async for answer in read_all(page) for node in answer.nodes or []]

            values = await join_values(join, nodes, legacy.values, fetch_all)
            for item, extra in zip(joined, values, strict=True):
                item.update(extra)
        return joined
