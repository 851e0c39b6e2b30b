"""Every Python snippet of the README runs as pasted, each as a script of its own."""

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

README = Path(__file__).resolve().parents[1] / "README.md"
SNIPPETS = re.findall(r"```python\n(.*?)```", README.read_text(), flags=re.S)


def test_the_readme_has_its_snippets():
    assert len(SNIPPETS) >= 5


@pytest.mark.parametrize("index", range(len(SNIPPETS)))
def test_readme_snippet_runs_as_pasted(index, tmp_path):
    script = tmp_path / f"snippet_{index}.py"
    script.write_text(SNIPPETS[index])
    root = str(README.parent)
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(p for p in (root, os.environ.get("PYTHONPATH")) if p)}
    done = subprocess.run([sys.executable, str(script)], capture_output=True, text=True, timeout=300, cwd=tmp_path,
                          env=env)
    assert done.returncode == 0, f"snippet {index} failed:\n{SNIPPETS[index]}\n{done.stderr[-3000:]}"


def test_the_readme_names_the_distribution_pyproject_builds():
    """pip's name (``smpc`` on PyPI is someone else's project) and the import name, as the README states them."""
    import tomllib

    name = tomllib.loads((README.parent / "pyproject.toml").read_text())["project"]["name"]
    assert name != "smpc"
    text = " ".join(README.read_text().split())  # wherever the lines break
    assert f"The distribution (what pip installs) is called **`{name}`**; the import name is **`smpc`**" in text
    assert "`pip install smpc` gets an unrelated project" in text


def test_the_threat_model_has_a_row_for_every_registered_protocol():
    from smpc.mpc import registry

    section = README.read_text().split("### Threat model", 1)[1].split("\n## ", 1)[0]
    rows = [line for line in section.splitlines() if line.startswith("| ")]
    for name, spec in registry.protocols().items():
        if spec.in_bench:  # a shipped protocol (the test suite's cleartext reference is not one)
            assert any(row.startswith(f"| {name}") for row in rows), f"no threat-model row for protocol {name!r}"
