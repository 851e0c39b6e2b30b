"""Re-execute the notebooks under notebooks/ in place and store their outputs, so they read on the web unrun.

    python tools/refresh_notebooks.py                    # every notebook
    python tools/refresh_notebooks.py notebooks/03_paillier.ipynb

Needs the test extra (nbclient, nbformat, ipykernel). The kernel imports smpc from this checkout. What is stored
is portable and changes only where the computation does (fresh random shares, measured times): paths of this
checkout, of Python's libraries and of the home folder are written relatively or as <site-packages>, <python>
and ~; execution timing and the kernel's version are not stored, and neither is stderr (third-party libraries'
logs and warnings, with timestamps and wording that change with their versions: a notebook prints what it means
to show). Consecutive prints of a cell are stored as one output. tests/test_notebooks.py checks all that.
"""

from __future__ import annotations

import argparse
import copy
import os
import sys
import sysconfig
from pathlib import Path

import nbclient
import nbformat

ROOT = Path(__file__).resolve().parent.parent
NOTEBOOKS = ROOT / "notebooks"
TIMEOUT_S = 600  # per cell


def _replacements() -> list[tuple[str, str]]:
    """Machine-specific path prefixes and what they are written as, longest first."""
    paths = sysconfig.get_paths()
    pairs = [(str(ROOT) + os.sep, ""), (str(ROOT), "."), (paths["purelib"], "<site-packages>"),
             (paths["platlib"], "<site-packages>"), (paths["stdlib"], "<python>"), (sys.prefix, "<python>"),
             (str(Path.home()), "~")]
    return sorted({p: r for p, r in pairs if len(p) > 1}.items(), key=lambda pair: -len(pair[0]))


def portable(text: str, replacements: list[tuple[str, str]]) -> str:
    for prefix, replacement in replacements:
        text = text.replace(prefix, replacement)
    return text


def _scrub_output(output, replacements) -> None:
    if "text" in output:  # streams
        output["text"] = portable(output["text"], replacements)
    if "traceback" in output:
        output["traceback"] = [portable(line, replacements) for line in output["traceback"]]
    for kind, value in output.get("data", {}).items():
        if kind.startswith("text/") and isinstance(value, str):
            output["data"][kind] = portable(value, replacements)


def _stored_outputs(outputs: list) -> list:
    """The outputs without stderr, consecutive stdout prints joined into one (as they were split is timing)."""
    kept = []
    for output in outputs:
        if output.output_type == "stream" and output.name == "stderr":
            continue
        if output.output_type == "stream" and kept and kept[-1].output_type == "stream":
            kept[-1].text += output.text
        else:
            kept.append(output)
    return kept


def execute(path: Path):
    """The notebook at ``path`` run top to bottom (in memory; the file is not touched), kernel started in ROOT with
    this checkout first on its PYTHONPATH. Raises nbclient's CellExecutionError on the first failing cell."""
    nb = nbformat.read(str(path), as_version=4)
    existing = os.environ.get("PYTHONPATH")
    os.environ["PYTHONPATH"] = os.pathsep.join(p for p in (str(ROOT), existing) if p)
    try:
        client = nbclient.NotebookClient(nb, timeout=TIMEOUT_S, kernel_name="python3", record_timing=False,
                                         resources={"metadata": {"path": str(ROOT)}})
        client.execute()
    finally:
        if existing is None:
            del os.environ["PYTHONPATH"]
        else:
            os.environ["PYTHONPATH"] = existing
    return nb


def refresh(path: Path) -> None:
    """Execute ``path`` and write it back with portable outputs and its own (not the kernel's) metadata."""
    stored = nbformat.read(str(path), as_version=4)
    nb = execute(path)
    nb.metadata = copy.deepcopy(stored.metadata)
    replacements = _replacements()
    for cell in nb.cells:
        cell.metadata.pop("execution", None)
        if cell.cell_type == "code":
            cell.outputs = _stored_outputs(cell.outputs)
            for output in cell.outputs:
                _scrub_output(output, replacements)
    nbformat.validate(nb)
    nbformat.write(nb, str(path))


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("notebooks", nargs="*", type=Path, help="notebooks to refresh (default: all of notebooks/)")
    paths = parser.parse_args(argv).notebooks or sorted(NOTEBOOKS.glob("*.ipynb"))
    for path in paths:
        print(f"executing {path.resolve().relative_to(ROOT)} ...", flush=True)
        refresh(path.resolve())
    print(f"refreshed {len(paths)} notebook(s); review `git diff notebooks/` before committing")


if __name__ == "__main__":
    main()
