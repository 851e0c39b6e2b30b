"""A Flower App project for ``flwr run``: smpc's deployed ServerApp and ClientApp, with the run's config.

``python -m smpc flower-app --out DIR --registry registry.json --test test.csv [--set key=value ...]``
(or :func:`write_project`) writes ``DIR/pyproject.toml`` naming ``smpc.fl.flower.deploy:server_app`` and
``smpc.fl.flower.deploy:client_app`` as the app's components, with ``[tool.flwr.app.config]`` holding
the run config that :mod:`smpc.fl.flower.deploy` reads. The app has no code of its own and no extra
dependencies: every node needs smpc (with its ``flower`` extra) installed.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

#: the run config a project starts from (see smpc.fl.flower.deploy)
DEFAULTS = {"rounds": 3, "local-epochs": 2, "lr": 0.1, "batch-size": 32, "model": "logistic_regression",
            "typical-rows": 100, "standardize": True, "timeout": 300.0}
_KEY = re.compile(r"[a-z][a-z0-9-]*")


def write_project(out_dir: str | os.PathLike[str], registry_path: str, test_path: str, **config) -> Path:
    """Write the project's ``pyproject.toml`` into ``out_dir`` (created; an existing file is refused).
    ``config`` adds to or replaces :data:`DEFAULTS` (keys with dashes, e.g. ``**{"history-path": ...}``)."""
    values = {**DEFAULTS, **config, "registry-path": os.fspath(os.path.abspath(registry_path)),
              "test-path": os.fspath(os.path.abspath(test_path))}
    lines = []
    for key, value in values.items():
        if not _KEY.fullmatch(key):
            raise ValueError(f"run config keys are lowercase words joined by dashes, got {key!r}")
        lines.append(f"{key} = {_toml(value)}")
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    target = out / "pyproject.toml"
    if target.exists():
        raise FileExistsError(f"{target} exists already")
    target.write_text(_TEMPLATE.format(config="\n".join(lines)), encoding="utf-8")
    return target


def _toml(value) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return repr(value)
    text = str(value)
    if any(ord(c) < 0x20 for c in text):
        raise ValueError("run config values may not hold control characters")
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'


_TEMPLATE = """[build-system]
requires = ["hatchling"]
build-backend = "hatchling.build"

[project]
name = "smpc-fedavg"
version = "1.0.0"
description = "FedAvg with smpc's secure aggregation (signed keys, consistency check) on Flower"
license = "Apache-2.0"
dependencies = []

[tool.hatch.build.targets.wheel]
packages = ["."]

[tool.flwr.app]
publisher = "smpc"

[tool.flwr.app.components]
serverapp = "smpc.fl.flower.deploy:server_app"
clientapp = "smpc.fl.flower.deploy:client_app"

[tool.flwr.app.config]
{config}
"""
