"""Every notebook under notebooks/ executes top to bottom without an error, and is stored with its outputs
(made by ``python tools/refresh_notebooks.py``) so that it reads on the web without being run."""

import json
import os
import re
from pathlib import Path

import nbclient
import nbformat
import pytest

ROOT = Path(__file__).resolve().parent.parent
NOTEBOOKS = sorted((ROOT / "notebooks").glob("*.ipynb"))
IDS = [p.name for p in NOTEBOOKS]
MAX_BYTES = 1_500_000  # outputs are for reading: no huge arrays or images
MACHINE_SPECIFIC = re.compile(r"/home/|/root/|/Users/|/work/|/tmp/|site-packages|[A-Za-z]:\\\\")


def test_notebooks_exist():
    assert NOTEBOOKS, f"no notebooks found in {ROOT / 'notebooks'}"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=IDS)
def test_notebook_runs(path, monkeypatch):
    # The kernel inherits this environment: put the repository first on its path so
    # `import smpc` works whether or not the package is installed.
    existing = os.environ.get("PYTHONPATH")
    monkeypatch.setenv("PYTHONPATH", str(ROOT) if not existing else os.pathsep.join([str(ROOT), existing]))
    stored = path.read_bytes()
    nb = nbformat.reads(stored.decode(), as_version=4)  # executed in memory: the stored file is never rewritten
    client = nbclient.NotebookClient(
        nb, timeout=300, kernel_name="python3", resources={"metadata": {"path": str(ROOT)}}
    )
    client.execute()  # raises CellExecutionError on the first failing cell
    assert path.read_bytes() == stored


@pytest.mark.parametrize("path", NOTEBOOKS, ids=IDS)
def test_notebook_is_stored_with_its_outputs(path):
    nb = nbformat.read(str(path), as_version=4)
    nbformat.validate(nb)
    code = [cell for cell in nb.cells if cell.cell_type == "code" and cell.source.strip()]
    counts = [cell.execution_count for cell in code]
    refresh = "run `python tools/refresh_notebooks.py` and commit the notebooks with their outputs"
    assert counts == list(range(1, len(code) + 1)), f"{path.name} was not executed top to bottom in one go: {refresh}"
    assert 2 * sum(bool(cell.outputs) for cell in code) >= len(code), \
        f"{path.name} is stored without (most of) its outputs: {refresh}"
    outputs = [output for cell in code for output in cell.outputs]
    assert not [o for o in outputs if o.output_type == "error"], f"{path.name} stores an error"
    assert not [o for o in outputs if o.get("name") == "stderr"], f"{path.name} stores stderr: {refresh}"
    assert not any("execution" in cell.metadata for cell in code), f"{path.name} stores execution timing: {refresh}"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=IDS)
def test_stored_outputs_are_small_and_name_nothing_of_the_machine(path):
    assert path.stat().st_size <= MAX_BYTES, f"{path.name} is {path.stat().st_size} bytes"
    nb = json.loads(path.read_text())
    texts = [json.dumps({k: v for k, v in output.items() if k != "data"}) + json.dumps(
        {kind: value for kind, value in output.get("data", {}).items() if kind.startswith("text/")})
        for cell in nb["cells"] for output in cell.get("outputs", [])]
    found = [m.group(0) for text in texts for m in [MACHINE_SPECIFIC.search(text)] if m]
    assert not found, f"{path.name} outputs name machine-specific paths: {found[:5]}"
    assert set(nb["metadata"]) <= {"kernelspec", "language_info"}, nb["metadata"]
