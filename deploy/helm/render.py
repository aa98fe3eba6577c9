"""Render the chart as `helm template` does, and check the manifests against the
Kubernetes schemas: `python deploy/helm/render.py [-f VALUES]... [--validate]`.

Rendering is Helm's own Go engine (the Helm SDK, through helm-python-sdk), so no
`helm` binary is needed; with one installed, `helm template bridge
deploy/helm/legacy-bridge -f VALUES` prints the same manifests.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import kubernetes_validate
import yaml
from helm_python import Chart

CHART = Path(__file__).resolve().parent / "legacy-bridge"
ROOT = CHART.parent.parent.parent
KUBERNETES = "1.31"  # the oldest release the chart targets with native sidecars on by default
# custom resources: no schema in kubernetes-validate; their fields are checked by the tests
CUSTOM_KINDS = {"PodMonitor", "PrometheusRule"}


def merge(base: dict[str, Any], over: dict[str, Any]) -> dict[str, Any]:
    """Values files layered as `helm -f a -f b` layers them: maps merge, the rest is replaced."""
    merged = dict(base)
    for key, value in over.items():
        if isinstance(value, dict) and isinstance(merged.get(key), dict):
            merged[key] = merge(merged[key], value)
        else:
            merged[key] = value
    return merged


def render(values: dict[str, Any], release: str = "bridge",
           namespace: str = "default") -> list[dict[str, Any]]:
    """The chart's Kubernetes objects for `values`, in template order."""
    chart = Chart.load(CHART)
    chart.validate_schema(values)
    rendered = chart.render(values=values, name=release, namespace=namespace, is_install=True)
    objects: list[dict[str, Any]] = []
    for name in sorted(rendered):
        if name.endswith(".yaml"):
            objects += [doc for doc in yaml.safe_load_all(rendered[name]) if doc]
    return objects


def validate(objects: Iterable[dict[str, Any]], version: str = KUBERNETES) -> None:
    """Raise kubernetes_validate.ValidationError for the first object off its schema."""
    for obj in objects:
        if obj["kind"] not in CUSTOM_KINDS:
            kubernetes_validate.validate(obj, version, strict=True)


def manifest(values_files: list[Path]) -> str:
    """The objects as one YAML stream, headed by the first values file's opening comments."""
    values: dict[str, Any] = {}
    for path in values_files:
        values = merge(values, yaml.safe_load(path.read_text()) or {})
    header = ""
    if values_files:
        lines = values_files[0].read_text().splitlines()
        header = "".join(f"{line}\n" for line in lines[:next(
            (i for i, line in enumerate(lines) if not line.startswith("#")), len(lines))])
        named = " ".join(f"-f {path.relative_to(ROOT)}" for path in values_files)
        header += f"# Rendered from the chart by `python deploy/helm/render.py {named}`.\n"
    return header + yaml.safe_dump_all(render(values), sort_keys=False)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("-f", "--values", action="append", type=Path, default=[])
    parser.add_argument("--validate", action="store_true",
                        help=f"check every object against the Kubernetes {KUBERNETES} schemas")
    parser.add_argument("--out", type=Path, help="write here instead of stdout")
    args = parser.parse_args(argv)
    text = manifest([path.resolve() for path in args.values])
    if args.validate:
        validate(doc for doc in yaml.safe_load_all(text) if doc)
    if args.out is None:
        sys.stdout.write(text)
    else:
        args.out.write_text(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
