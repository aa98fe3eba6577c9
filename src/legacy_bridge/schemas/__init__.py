"""The project's copy of the upstream GraphQL schemas (SDL), one file per API."""

from __future__ import annotations

from functools import cache
from importlib import resources

from graphql import GraphQLSchema, build_schema


def sdl(api: str) -> str:
    """The SDL text of `api` (e.g. "program-progress")."""
    return resources.files(__name__).joinpath(f"{api}.graphql").read_text()


@cache
def schema(api: str) -> GraphQLSchema:
    return build_schema(sdl(api))


def names() -> list[str]:
    return sorted(p.name.removesuffix(".graphql")
                  for p in resources.files(__name__).iterdir()
                  if p.name.endswith(".graphql"))
