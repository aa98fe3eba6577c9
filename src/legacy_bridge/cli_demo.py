"""`legacy-bridge demo` and `legacy-bridge emulate`: the commands that run the emulator.

Loaded only when one of them is called (see cli._Commands).
"""

from __future__ import annotations

import asyncio
import shutil
from pathlib import Path
from typing import Any

import click
import httpx
import uvicorn
from pydantic import SecretStr
from starlette.applications import Starlette

from legacy_bridge import logs
from legacy_bridge.app import create_app
from legacy_bridge.auth import digest
from legacy_bridge.emulator.app import (
    DEMO_ADMIN_TOKEN,
    DEMO_ADMIN_USER,
    DEMO_API_KEY,
    DEMO_COMPANY_TOKEN,
    DEMO_LEARNER2_TOKEN,
    DEMO_LEARNER_TOKEN,
    DEMO_PLAN_TOKEN,
    EmulatorConfig,
    create_emulator_app,
)
from legacy_bridge.emulator.dataset import DEMO_PLAN_ID, DatasetSpec, empty_plan_id, ensure
from legacy_bridge.emulator.learning_path import ANA, AUTH_TOKENS, BEN
from legacy_bridge.emulator.legacy import DRIFTS
from legacy_bridge.errors import ConfigError, MappingError, TokenFileError
from legacy_bridge.settings import PACKAGED_MAPPINGS, Settings

DATA_DIR = Path(".data")
# opens the /_bridge/ pages; not a legacy token (the course admin's is DEMO_ADMIN_TOKEN)
BRIDGE_ADMIN_TOKEN = "demo-bridge-admin-token"


def _app(settings: Settings) -> Starlette:
    try:
        return create_app(settings)
    except (MappingError, ConfigError, TokenFileError) as exc:
        raise click.ClickException(str(exc)) from None


def _dataset_options(command: Any) -> Any:
    command = click.option("--seed", default=42, show_default=True,
                           help="Seed of the generated data")(command)
    command = click.option("--learners", default=1000, show_default=True,
                           help="Learners to generate")(command)
    command = click.option("--plans", default=3, show_default=True,
                           help="Non-empty plans (an empty one is added)")(command)
    return click.option("--data-dir", default=DATA_DIR, type=click.Path(path_type=Path),
                        show_default=True, help="Where generated datasets are kept")(command)


@click.command()
@_dataset_options
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", default=9000, show_default=True)
@click.option("--api-key", "api_keys", multiple=True, default=[DEMO_API_KEY],
              show_default=True, help="Accepted `Authorization: Token` keys")
@click.option("--controls", is_flag=True, help="Serve the /_emulator/ fault and count controls")
@click.option("--drift", default="", metavar="KINDS",
              help="Make the legacy v2 side differ in known ways, comma-separated: "
                   + "; ".join(f"{k} ({v})" for k, v in DRIFTS.items()))
def emulate(seed: int, learners: int, plans: int, data_dir: Path, host: str, port: int,
            api_keys: tuple[str, ...], controls: bool, drift: str) -> None:
    """Serve the emulated upstream: three GraphQL APIs, the catalog and legacy v2."""
    kinds = frozenset(k for k in drift.split(",") if k)
    if kinds - set(DRIFTS):
        raise click.BadParameter(f"use some of {', '.join(DRIFTS)}", param_hint="--drift")
    dataset = ensure(DatasetSpec(seed, learners, plans), data_dir)
    app = create_emulator_app(EmulatorConfig(dataset, tuple(api_keys), controls=controls,
                                             drift=kinds))
    uvicorn.run(app, host=host, port=port, log_level="warning")


def _demo_tokens(data_dir: Path) -> Path:
    path = data_dir / "demo-tokens.toml"
    rows = [("demo-plan", DEMO_PLAN_TOKEN, f'["{DEMO_PLAN_ID}"]'),
            ("demo-company", DEMO_COMPANY_TOKEN, '["*"]')]
    users = [("ana", DEMO_LEARNER_TOKEN, ANA, "learner"),
             ("ben", DEMO_LEARNER2_TOKEN, BEN, "learner"),
             ("course-admin", DEMO_ADMIN_TOKEN, DEMO_ADMIN_USER, "admin")]
    path.write_text("".join(
        f'[[tokens]]\nlabel = "{label}"\nsha256 = "{digest(token)}"\nplans = {plans}\n\n'
        for label, token, plans in rows) + "".join(
        f'[[tokens]]\nlabel = "{label}"\nsha256 = "{digest(token)}"\nuser_id = "{user}"\n'
        f'role = "{role}"\n\n' for label, token, user, role in users))
    return path


def _demo_learners(data_dir: Path) -> Path:
    """The emulated platform's authToken of each demo learner (BRIDGE_LEARNERS_FILE)."""
    path = data_dir / "demo-learners.toml"
    path.write_text("".join(f'[[learners]]\nuser_id = "{user}"\nauth_token = "{token}"\n\n'
                            for token, user in AUTH_TOKENS.items()))
    return path


def _demo_banner(proxy: str, upstream: str, empty_plan: str) -> str:
    auth = f'-H "Authorization: Bearer {DEMO_PLAN_TOKEN}"'
    base = f"{proxy}/api/v2/plans/{DEMO_PLAN_ID}"
    return f"""
legacy-bridge demo
  proxy     {proxy}
  upstream  {upstream}   (emulated GraphQL APIs + the legacy v2 API, API key {DEMO_API_KEY})
  tokens    {DEMO_PLAN_TOKEN} (plan {DEMO_PLAN_ID}), {DEMO_COMPANY_TOKEN} (every plan)

Try:
  curl -s {proxy}/healthz
  curl -s {auth} "{base}/progress?page=1&per_page=5"
  curl -s {auth} "{base}/users?sort=last_seen&order=desc&per_page=3"
  curl -s {auth} "{base}/assessment-attempts?status=passed,failed&per_page=3"
  curl -s -H "Authorization: Bearer {DEMO_COMPANY_TOKEN}" \\
       "{proxy}/api/v2/plans/{empty_plan}/progress"
The legacy Data API, SQL over roster_v1 (company token):
  curl -s -H "Authorization: Bearer {DEMO_COMPANY_TOKEN}" -H "Content-Type: text/plain" \
       -d "SELECT node_key, COUNT(*) FROM roster_v1 GROUP BY node_key" {proxy}/api/emc/reports/query
Course progress over the Learning Path API (Ana's token; Ben has lesson 101 done):
  curl -s -H "Authorization: Bearer {DEMO_LEARNER_TOKEN}" "{proxy}/api/progress?courseId=42"
  curl -s -H "Authorization: Bearer {DEMO_LEARNER_TOKEN}" -X POST {proxy}/api/progress \
       -d '{{"course_id": 42, "lesson_id": 101, "video_progress": 180, "last_position": 180}}'
  curl -s -H "Authorization: Bearer {DEMO_LEARNER_TOKEN}" -X POST {proxy}/api/progress \
       -d '{{"course_id": 42, "lesson_id": 101, "completed": true}}'
  curl -s -H "Authorization: Bearer {DEMO_ADMIN_TOKEN}" "{proxy}/api/admin/progress/{BEN}"
The old API itself, for comparison:
  curl -s {auth} "{upstream}/api/v2/plans/{DEMO_PLAN_ID}/progress?per_page=5"
What a legacy call becomes in GraphQL, and who still calls what (admin token):
  curl -s -H "Authorization: Bearer {BRIDGE_ADMIN_TOKEN}" \
       "{proxy}/_bridge/explain?url=%2Fapi%2Fv2%2Fplans%2F{DEMO_PLAN_ID}%2Fusers%3Fpage%3D3"
  curl -s -H "Authorization: Bearer {BRIDGE_ADMIN_TOKEN}" "{proxy}/_bridge/usage.json"
  open {proxy}/_bridge/usage in a browser with that header, or: legacy-bridge usage \
       --store-url sqlite:///.data/bridge.sqlite3
Side by side: /users runs in shadow mode against the emulated old API, which drifts
lightly (one record missing); the demo read three pages at start. Open (admin token):
  curl -s -H "Authorization: Bearer {BRIDGE_ADMIN_TOKEN}" {proxy}/_bridge/compare
  legacy-bridge compare report --store-url sqlite:///.data/bridge.sqlite3
Ctrl-C stops both.
"""


@click.command()
@_dataset_options
@click.option("--port", default=8080, show_default=True, help="Proxy port")
@click.option("--upstream-port", default=9000, show_default=True, help="Emulator port")
def demo(seed: int, learners: int, plans: int, data_dir: Path, port: int,
         upstream_port: int) -> None:
    """Start the emulated upstream and the proxy together on loopback."""
    spec = DatasetSpec(seed, learners, plans)
    click.echo(f"generating demo data ({learners} learners, seed {seed}) ...")
    dataset = ensure(spec, data_dir)
    upstream = f"http://127.0.0.1:{upstream_port}"
    settings = Settings(upstream_url=upstream, upstream_api_key=SecretStr(DEMO_API_KEY),
                        tokens_file=_demo_tokens(data_dir), port=port,
                        admin_token=SecretStr(BRIDGE_ADMIN_TOKEN),
                        learners_file=_demo_learners(data_dir),
                        mappings_dir=_demo_tables(data_dir), legacy_url=upstream,
                        store_url=f"sqlite:///{data_dir / 'bridge.sqlite3'}")
    logs.to_stdout("WARNING")
    # the old API drifts lightly (/users misses one record), so /users shows a mismatch
    emulator = create_emulator_app(EmulatorConfig(dataset, controls=True,
                                                  drift=frozenset({"missing"})))
    servers = [
        uvicorn.Server(uvicorn.Config(emulator, host="127.0.0.1", port=upstream_port,
                                      log_level="warning")),
        uvicorn.Server(uvicorn.Config(_app(settings), host="127.0.0.1", port=port,
                                      log_level="warning")),
    ]
    proxy = f"http://127.0.0.1:{port}"
    click.echo(_demo_banner(proxy, upstream, empty_plan_id(spec)))

    async def run() -> None:
        await asyncio.gather(*(s.serve() for s in servers), _first_comparisons(servers, proxy))

    asyncio.run(run())


def _demo_tables(data_dir: Path) -> Path:
    """The packaged tables, with /users in shadow mode: the comparison page has rows."""
    folder = data_dir / "demo-mappings"
    shutil.rmtree(folder, ignore_errors=True)
    shutil.copytree(PACKAGED_MAPPINGS, folder)
    users = folder / "users.toml"
    users.write_text(users.read_text().replace(
        "[route]\n", "[route]\nmode = \"shadow\"   # the demo compares this route\n", 1))
    return folder


async def _first_comparisons(servers: list[uvicorn.Server], proxy: str) -> None:
    """Three pages of /users once both servers listen, so /_bridge/compare shows rows
    on the first visit."""
    while not all(s.started for s in servers):
        if any(s.should_exit for s in servers):
            return
        await asyncio.sleep(0.05)
    async with httpx.AsyncClient(base_url=proxy, timeout=30) as client:
        for page in (1, 2, 3):
            await client.get(f"/api/v2/plans/{DEMO_PLAN_ID}/users",
                             params={"page": page, "per_page": 20},
                             headers={"Authorization": f"Bearer {DEMO_COMPANY_TOKEN}"})
