"""Legacy bearer token -> the client it identifies, its plans, its upstream key. Pure.

The token table holds SHA-256 digests, never tokens. A token is compared with
every digest in constant time, so timing tells nothing about near misses.
Plan isolation lives here: the company API key the proxy holds can read every
plan, so a plan-scoped token is kept inside its plans before any upstream call.
"""

from __future__ import annotations

import hashlib
import hmac
import tomllib
from dataclasses import dataclass
from pathlib import Path
from typing import Literal, TypeVar

from limits import parse
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from legacy_bridge.errors import ConfigError, Forbidden, TokenFileError, Unauthorized
from legacy_bridge.settings import Settings

COMPANY_SCOPE = "*"
M = TypeVar("M", bound=BaseModel)


def digest(token: str) -> str:
    """The token table's form of a legacy bearer token: hex SHA-256."""
    return hashlib.sha256(token.encode()).hexdigest()


UUID_PATTERN = r"^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$"


class TokenEntry(BaseModel):
    """A v2 client (`plans`) or a course-progress user (`user_id` and `role`)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    label: str = Field(min_length=1)
    sha256: str = Field(pattern=r"^[0-9a-f]{64}$")
    plans: tuple[str, ...] = ()
    user_id: str | None = Field(None, pattern=UUID_PATTERN)
    role: Literal["learner", "admin"] = "learner"
    rate: str | None = None  # e.g. "20/second": requests this client may send (ratelimits.py)
    concurrent: int | None = Field(None, ge=1)  # requests of this client in flight at once

    @model_validator(mode="after")
    def _grants_something(self) -> TokenEntry:
        if not self.plans and self.user_id is None:
            raise ValueError("needs plans (v2 routes) or user_id (course progress)")
        if self.rate is not None:
            try:
                parse(self.rate)
            except ValueError:
                raise ValueError(f"rate {self.rate!r} is not like \"20/second\" or "
                                 "\"1000/hour\"") from None
        return self


class LearnerEntry(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    user_id: str = Field(pattern=UUID_PATTERN)
    auth_token: str = Field(min_length=1)


class LearnersFile(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    learners: tuple[LearnerEntry, ...] = ()


class TokenFile(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    tokens: tuple[TokenEntry, ...] = ()


@dataclass(frozen=True)
class Client:
    label: str  # for logs and reports; never the token
    plans: frozenset[str]
    upstream_key: str
    scope: str  # cursor checkpoints are never shared across scopes
    user_id: str | None = None  # course progress: the learner (lower-case UUID)
    role: str = "learner"

    def check_plan(self, plan_id: str) -> None:
        if COMPANY_SCOPE not in self.plans and plan_id not in self.plans:
            raise Forbidden("this token may not read this plan")


# Usage labels for requests relayed to the old API without a listed token.
NO_TOKEN = "(no token)"
UNLISTED_TOKEN = "(unlisted token)"


def _read(path: Path, model: type[M], error: type[Exception], name: str, fix: str) -> M:
    """A file of secrets' digests or tokens, read into its model; a mistake names the
    file, the key and the fix, never a value (pydantic's message carries none)."""
    try:
        return model.model_validate(tomllib.loads(path.read_text()))
    except (OSError, tomllib.TOMLDecodeError) as exc:
        raise error(f"{name}{path}: {exc}") from None
    except ValidationError as exc:
        first = exc.errors()[0]
        key = ".".join(str(p) for p in first["loc"])
        raise error(f"{name}{path}: {key}: {first['msg']} - fix: {fix}") from None


def load_tokens(path: Path) -> tuple[TokenEntry, ...]:
    return _read(path, TokenFile, TokenFileError, "",
                 "each [[tokens]] needs label, sha256 (legacy-bridge hash-token) and plans, "
                 "or user_id and role for course progress").tokens


class Learners:
    """user_id -> the learner's upstream `authToken` (gap G7, option a: a file)."""

    def __init__(self, tokens: dict[str, str]) -> None:
        self._tokens = tokens

    def auth_token(self, user_id: str) -> str | None:
        return self._tokens.get(user_id.lower())

    def user_ids(self) -> list[str]:
        return list(self._tokens)

    def any_token(self) -> str | None:
        """The first learner's token: checks that read as "any learner" use it."""
        return next(iter(self._tokens.values()), None)


def load_learners(path: Path | None) -> Learners:
    """BRIDGE_LEARNERS_FILE; no file: no learner has a platform identity."""
    if path is None:
        return Learners({})
    entries = _read(path, LearnersFile, ConfigError, "BRIDGE_LEARNERS_FILE ",
                    "each [[learners]] needs user_id (a UUID) and auth_token").learners
    tokens: dict[str, str] = {}
    for n, entry in enumerate(entries):
        user = entry.user_id.lower()
        if user in tokens:
            raise ConfigError(f"BRIDGE_LEARNERS_FILE {path}: learners.{n}.user_id: {user} "
                              "is listed twice - fix: keep one entry per learner")
        tokens[user] = entry.auth_token
    return Learners(tokens)


def bearer(authorization: str | None) -> str:
    scheme, _, value = (authorization or "").partition(" ")
    if scheme.lower() != "bearer" or not value.strip():
        raise Unauthorized("a valid bearer token is required")
    return value.strip()


class Authenticator:
    """`tokens` mode: the token table. `passthrough`: the bearer value is the upstream key."""

    def __init__(self, mode: str, entries: tuple[TokenEntry, ...], api_key: str | None) -> None:
        self.mode = mode
        self.entries = entries
        self.api_key = api_key or ""
        # Checkpoints are per upstream credential: one scope for the proxy's key.
        self.key_scope = digest(self.api_key)[:16]

    def client(self, authorization: str | None) -> Client:
        token = bearer(authorization)
        if self.mode == "passthrough":
            return Client("passthrough", frozenset({COMPANY_SCOPE}), token, digest(token)[:16])
        found = self._entry(token)
        if found is None:
            raise Unauthorized("a valid bearer token is required")
        user = found.user_id.lower() if found.user_id is not None else None
        return Client(found.label, frozenset(found.plans), self.api_key, self.key_scope,
                      user, found.role)

    def label(self, authorization: str | None) -> str:
        """Who sent a request the old API answers (and authenticates): the
        table's label, or a fixed stand-in; never the token."""
        try:
            token = bearer(authorization)
        except Unauthorized:
            return NO_TOKEN
        if self.mode == "passthrough":
            return "passthrough"
        found = self._entry(token)
        return UNLISTED_TOKEN if found is None else found.label

    def _entry(self, token: str) -> TokenEntry | None:
        presented = digest(token)
        found: TokenEntry | None = None
        for entry in self.entries:  # no early exit: constant time over the table
            if hmac.compare_digest(entry.sha256, presented):
                found = entry
        return found


def authenticator_from(settings: Settings) -> Authenticator:
    """The authenticator BRIDGE_AUTH_MODE names, with its token table and key loaded."""
    if settings.auth_mode == "passthrough":
        return Authenticator("passthrough", (), None)
    if settings.tokens_file is None:
        raise ConfigError("BRIDGE_TOKENS_FILE is required when BRIDGE_AUTH_MODE=tokens "
                          "(or use BRIDGE_AUTH_MODE=passthrough)")
    key = settings.api_key()
    if not key:
        raise ConfigError("BRIDGE_UPSTREAM_API_KEY or BRIDGE_UPSTREAM_API_KEY_FILE is "
                          "required when BRIDGE_AUTH_MODE=tokens")
    return Authenticator("tokens", load_tokens(settings.tokens_file), key)
