"""Write a benchmark's table into README.md between its markers."""

from __future__ import annotations

import os
import platform
import re
from datetime import UTC, datetime
from pathlib import Path

README = Path(__file__).resolve().parent.parent / "README.md"


def machine() -> str:
    return f"{os.cpu_count()} cores, Python {platform.python_version()}, {platform.machine()}"


def write_section(name: str, command: str, table: str) -> None:
    """Replace the text between `<!-- bench:name -->` and `<!-- /bench:name -->`."""
    stamp = datetime.now(UTC).strftime("%Y-%m-%d")
    body = (f"<!-- bench:{name} -->\n`{command}` ({machine()}, {stamp}):\n\n"
            f"{table}\n<!-- /bench:{name} -->")
    text = README.read_text()
    pattern = re.compile(rf"<!-- bench:{name} -->.*?<!-- /bench:{name} -->", re.S)
    if not pattern.search(text):
        raise SystemExit(f"README.md has no <!-- bench:{name} --> section")
    README.write_text(pattern.sub(lambda _: body, text))
