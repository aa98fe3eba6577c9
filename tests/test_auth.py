"""Legacy tokens: digests only, plans enforced, passthrough, clear token-file errors."""

from __future__ import annotations

from pathlib import Path

import pytest

from legacy_bridge.auth import (
    NO_TOKEN,
    UNLISTED_TOKEN,
    Authenticator,
    digest,
    load_learners,
    load_tokens,
)
from legacy_bridge.errors import ConfigError, Forbidden, TokenFileError, Unauthorized
from support import TOKENS, token_table

PLAN_A, PLAN_B = "aaaaaaaa-0000-4000-8000-000000000000", "bbbbbbbb-0000-4000-8000-000000000000"


@pytest.fixture
def authenticator(tmp_path: Path) -> Authenticator:
    path = tmp_path / "tokens.toml"
    path.write_text(token_table({"t-a": ("a", [PLAN_A]), "t-all": ("all", ["*"])}))
    return Authenticator("tokens", load_tokens(path), "company-key")


def test_known_token_gets_its_label_plans_and_the_company_key(
        authenticator: Authenticator) -> None:
    client = authenticator.client("Bearer t-a")
    assert (client.label, client.plans, client.upstream_key) == ("a", {PLAN_A}, "company-key")
    client.check_plan(PLAN_A)
    with pytest.raises(Forbidden):
        client.check_plan(PLAN_B)


def test_company_scope_reads_every_plan(authenticator: Authenticator) -> None:
    authenticator.client("Bearer t-all").check_plan(PLAN_B)


@pytest.mark.parametrize("header", [None, "", "Bearer", "Bearer ", "Basic t-a", "t-a",
                                    "Bearer t-b", "Bearer T-A"])
def test_missing_or_unknown_token_is_unauthorized(authenticator: Authenticator,
                                                  header: str | None) -> None:
    with pytest.raises(Unauthorized):
        authenticator.client(header)


@pytest.mark.parametrize(("header", "label"), [
    ("Bearer t-a", "a"), ("Bearer t-b", UNLISTED_TOKEN), (None, NO_TOKEN), ("Basic t-a", NO_TOKEN)])
def test_requests_for_the_old_api_are_labelled_without_the_token(
        authenticator: Authenticator, header: str | None, label: str) -> None:
    assert authenticator.label(header) == label


def test_bearer_scheme_is_case_insensitive(authenticator: Authenticator) -> None:
    assert authenticator.client("bearer t-a").label == "a"


def test_every_client_of_the_proxy_key_shares_one_checkpoint_scope(
        authenticator: Authenticator) -> None:
    assert authenticator.client("Bearer t-a").scope == authenticator.client("Bearer t-all").scope


def test_passthrough_uses_the_bearer_value_as_key_and_scope() -> None:
    auth = Authenticator("passthrough", (), None)
    one, two = auth.client("Bearer key-1"), auth.client("Bearer key-2")
    assert one.upstream_key == "key-1" and one.scope != two.scope
    one.check_plan(PLAN_B)


def test_token_table_holds_digests_not_tokens(tmp_path: Path) -> None:
    text = token_table(TOKENS)
    assert all(token not in text for token in TOKENS)
    assert digest("demo-plan-token") in text


@pytest.mark.parametrize(("content", "message"), [
    ('[[tokens]]\nlabel = "x"\nsha256 = "nothex"\nplans = ["*"]\n', "tokens.0.sha256"),
    ('[[tokens]]\nlabel = "x"\nsha256 = "' + "a" * 64 + '"\nplans = []\n',
     "tokens.0: .*needs plans"),
    ('[[tokens]]\nlabel = "x"\ntoken = "plain"\n', "tokens.0"),
    ("[[tokens]\n", "tokens.toml"),
])
def test_bad_token_file_names_the_problem(tmp_path: Path, content: str, message: str) -> None:
    path = tmp_path / "tokens.toml"
    path.write_text(content)
    with pytest.raises(TokenFileError, match=message):
        load_tokens(path)


@pytest.mark.parametrize(("content", "message"), [
    ('[[learners]]\nuser_id = "nope"\nauth_token = "at-secret"\n', "learners.0.user_id"),
    ('[[learners]]\nuser_id = "0b6c1a52-5d8e-4f3a-9c1e-7a2b4c6d8e01"\n', "learners.0.auth_token"),
    ('[[learners]]\nuser_id = "0b6c1a52-5d8e-4f3a-9c1e-7a2b4c6d8e01"\nauth_token = "a"\n'
     '[[learners]]\nuser_id = "0B6C1A52-5D8E-4F3A-9C1E-7A2B4C6D8E01"\nauth_token = "b"\n',
     "listed twice"),
])
def test_a_bad_learners_file_names_the_key_never_a_token(
        tmp_path: Path, content: str, message: str) -> None:
    path = tmp_path / "learners.toml"
    path.write_text(content)
    with pytest.raises(ConfigError, match=message) as caught:
        load_learners(path)
    assert "BRIDGE_LEARNERS_FILE" in str(caught.value)
    assert "at-secret" not in str(caught.value)
