"""Build the Colab notebooks (``notebooks/*.ipynb``) from their reviewable sources.

    python notebooks/build_notebooks.py          # write every notebook
    python notebooks/build_notebooks.py --check  # exit 1 when a committed notebook is stale

The sources are ``notebooks/src/NN_name.py`` in the "percent" format (as jupytext and VS Code
read it): a line ``# %%`` starts a code cell, ``# %% [markdown]`` a Markdown cell whose lines
are comments (``# `` is removed). IPython magics (``%pip``, ``!mmzoo ...``) are written as they
are typed in a notebook, so the sources are not importable Python.

The notebooks are written without outputs (``execution_count`` null), with stable cell ids, so
git diffs show only real changes. `tests/test_notebooks.py` checks that the committed notebooks
equal this script's output and executes each of them.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from typing import Dict, List

HERE = os.path.dirname(os.path.abspath(__file__))
SOURCES = os.path.join(HERE, "src")
COLAB_URL = "https://colab.research.google.com/github/mmzoo-dev/mmzoo/blob/main/notebooks/{name}.ipynb"

METADATA = {
    "colab": {"provenance": [], "toc_visible": True},
    "kernelspec": {"display_name": "Python 3", "language": "python", "name": "python3"},
    "language_info": {"name": "python"},
}


def notebook_names() -> List[str]:
    """The notebooks, by source name (``01_quickstart`` ...), sorted."""
    return sorted(f[:-3] for f in os.listdir(SOURCES) if f.endswith(".py") and f[:2].isdigit())


def parse_cells(text: str) -> List[Dict[str, str]]:
    """Split a percent-format source into ``[{"cell_type", "source"}]``."""
    cells: List[Dict[str, str]] = []
    kind, lines = None, []

    def flush():
        while lines and not lines[-1].strip():
            lines.pop()
        while lines and not lines[0].strip():
            lines.pop(0)
        if kind is not None and lines:
            cells.append({"cell_type": kind, "source": "\n".join(lines)})

    for line in text.splitlines():
        stripped = line.strip()
        if stripped.startswith("# %%"):
            flush()
            kind, lines = ("markdown" if "[markdown]" in stripped else "code"), []
            continue
        if kind is None:
            continue  # the file's header (a comment saying what it is) is not a cell
        if kind == "markdown":
            if line.startswith("# "):
                line = line[2:]
            elif line.strip() == "#":
                line = ""
        lines.append(line)
    flush()
    return cells


def to_notebook(name: str, cells: List[Dict[str, str]]) -> dict:
    out = []
    for i, cell in enumerate(cells):
        source = cell["source"].replace("{COLAB_URL}", COLAB_URL.format(name=name))
        lines = source.split("\n")
        entry = {
            "cell_type": cell["cell_type"],
            "id": f"{name.split('_')[0]}-{i:02d}",
            "metadata": {},
            "source": [line + "\n" for line in lines[:-1]] + [lines[-1]],
        }
        if cell["cell_type"] == "code":
            entry["execution_count"] = None
            entry["outputs"] = []
        out.append(entry)
    return {"cells": out, "metadata": METADATA, "nbformat": 4, "nbformat_minor": 5}


def render(name: str) -> str:
    """The ``.ipynb`` text of one notebook, exactly as committed."""
    with open(os.path.join(SOURCES, name + ".py"), encoding="utf-8") as f:
        cells = parse_cells(f.read())
    return json.dumps(to_notebook(name, cells), indent=1, ensure_ascii=False) + "\n"


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="fail when a notebook differs from its source")
    args = parser.parse_args(argv)
    stale = []
    for name in notebook_names():
        path = os.path.join(HERE, name + ".ipynb")
        text = render(name)
        current = open(path, encoding="utf-8").read() if os.path.exists(path) else None
        if current == text:
            continue
        if args.check:
            stale.append(name)
        else:
            with open(path, "w", encoding="utf-8") as f:
                f.write(text)
            print(f"wrote {os.path.relpath(path)}")
    if stale:
        print(f"stale notebooks: {', '.join(stale)}; run: python notebooks/build_notebooks.py", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
