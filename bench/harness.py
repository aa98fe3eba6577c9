"""What the in-process benches share: the emulator and a proxy's settings over
one generated company, and the command line that prints a table and writes it
into README."""

from __future__ import annotations

import argparse
import asyncio
import tempfile
from collections.abc import Awaitable, Callable
from pathlib import Path

from pydantic import SecretStr
from starlette.applications import Starlette

from legacy_bridge.auth import digest
from legacy_bridge.emulator.app import (
    DEMO_API_KEY,
    DEMO_COMPANY_TOKEN,
    EmulatorConfig,
    create_emulator_app,
)
from legacy_bridge.emulator.dataset import DatasetSpec, ensure
from legacy_bridge.settings import Settings
from readme import write_section

ROOT = Path(__file__).resolve().parent.parent
AUTH = {"Authorization": f"Bearer {DEMO_COMPANY_TOKEN}"}


def company(learners: int) -> tuple[Starlette, Settings]:
    """The emulator over one plan of `learners` learners (generated once, kept
    under .data), and settings for a proxy in front of it that knows the
    company token. The proxy's store is a throwaway file."""
    dataset = ensure(DatasetSpec(seed=42, learners=learners, plans=1), ROOT / ".data")
    emulator = create_emulator_app(EmulatorConfig(dataset, controls=True))
    work = Path(tempfile.mkdtemp(prefix="bridge-bench-"))
    tokens = work / "tokens.toml"
    tokens.write_text(f'[[tokens]]\nlabel = "bench"\nsha256 = "{digest(DEMO_COMPANY_TOKEN)}"\n'
                      'plans = ["*"]\n')
    return emulator, Settings(upstream_url="http://upstream",
                              upstream_api_key=SecretStr(DEMO_API_KEY), tokens_file=tokens,
                              mappings_dir=ROOT / "mappings",
                              store_url=f"sqlite:///{work}/store.sqlite3")


def bench_main(doc: str, section: str, command: str,
               run: Callable[[argparse.Namespace], Awaitable[str]], **options: int) -> None:
    """`--option N` for each option (default as given) and `--write-readme`."""
    parser = argparse.ArgumentParser(description=doc.splitlines()[0])
    for name, default in options.items():
        parser.add_argument(f"--{name.replace('_', '-')}", type=int, default=default)
    parser.add_argument("--write-readme", action="store_true")
    args = parser.parse_args()
    table = asyncio.run(run(args))
    print(table)
    if args.write_readme:
        write_section(section, command, table)
