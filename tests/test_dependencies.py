"""Every install is reproducible: pyproject.toml states bounds, the locks state versions."""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

ROOT = Path(__file__).resolve().parent.parent
PROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text())
PIN = re.compile(r"^([A-Za-z0-9._-]+)==([^\s;\\]+)", re.M)


def pins(lock: str) -> dict[str, str]:
    return {canonicalize_name(name): version
            for name, version in PIN.findall((ROOT / lock).read_text())}


def requirements() -> list[Requirement]:
    declared = [*PROJECT["project"]["dependencies"],
                *(r for extra in PROJECT["project"]["optional-dependencies"].values()
                  for r in extra)]
    return [r for r in map(Requirement, declared) if r.name != "legacy-bridge"]


def test_the_lock_pins_every_declared_dependency_within_its_bounds() -> None:
    locked = pins("requirements.lock")
    for requirement in requirements():
        name = canonicalize_name(requirement.name)
        assert name in locked, f"{name} is not in requirements.lock: run `make lock`"
        assert requirement.specifier.contains(locked[name], prereleases=True), (
            f"requirements.lock has {name}=={locked[name]}, outside {requirement}: "
            "run `make lock`")


def test_the_image_lock_is_the_runtime_part_of_the_same_pins_with_hashes() -> None:
    image, full = pins("requirements-image.lock"), pins("requirements.lock")
    assert {name: full[name] for name in image} == image
    assert {"redis", "psycopg"} <= set(image)  # the image has every extra
    assert not {"pytest", "ruff", "mypy", "uv"} & set(image)
    text = (ROOT / "requirements-image.lock").read_text()
    assert text.count("--hash=sha256:") >= len(image)


def test_the_build_backend_is_pinned_exactly() -> None:
    for requirement in map(Requirement, PROJECT["build-system"]["requires"]):
        assert str(requirement.specifier).startswith("=="), requirement


def test_make_and_ci_install_from_the_lock() -> None:
    makefile = (ROOT / "Makefile").read_text()
    assert "--constraint $(LOCK) -e '.[dev]'" in makefile
    assert "requirements-image.lock" in (ROOT / "Dockerfile").read_text()
