"""Repository rules: the linter's settings hold, and CONTRIBUTING.md names files that exist."""

import importlib
import os
import re
import shutil
import subprocess
import sys

import pytest

import mmzoo

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _ruff():
    found = shutil.which("ruff", path=os.path.dirname(sys.executable)) or shutil.which("ruff")
    assert found, "ruff is a test dependency (pip install -e '.[test]')"
    return found


def test_ruff_finds_nothing():
    out = subprocess.run([_ruff(), "check", "--no-cache", "."], cwd=ROOT, capture_output=True, text=True)
    assert out.returncode == 0, out.stdout + out.stderr


def test_ruff_uses_the_repository_settings(tmp_path):
    long_line = "x = " + "1 + " * 40 + "1\n"
    (tmp_path / "bad.py").write_text("import os\n" + long_line)
    out = subprocess.run([_ruff(), "check", "--no-cache", "--config", os.path.join(ROOT, "ruff.toml"),
                          str(tmp_path / "bad.py")], capture_output=True, text=True)
    assert out.returncode == 1 and "F401" in out.stdout and "E501" in out.stdout


def test_contributing_names_files_that_exist():
    text = open(os.path.join(ROOT, "CONTRIBUTING.md"), encoding="utf-8").read()
    paths = set(re.findall(r"`((?:mmzoo|tests)/[\w/]+\.(?:py|md))`", text))
    assert len(paths) >= 15
    missing = [p for p in sorted(paths) if not os.path.exists(os.path.join(ROOT, p))]
    assert not missing, f"CONTRIBUTING.md names files that do not exist: {missing}"
    for heading in ("an encoder", "a fusion", "a task", "an export format", "a data source"):
        assert f"## Add {heading}" in text


@pytest.mark.parametrize("package, table", [("encoders", "ENCODERS"), ("fusion", "FUSIONS")])
def test_every_part_module_is_imported_and_registers(package, table):
    from mmzoo import registry

    importlib.import_module(f"mmzoo.{package}")
    folder = os.path.join(ROOT, "mmzoo", package)
    table_ = getattr(registry, table)
    registered = {table_.get(name).__module__ for name in table_.names()}
    for f in sorted(os.listdir(folder)):
        if f.endswith(".py") and f not in ("__init__.py", "base.py"):
            module = f"mmzoo.{package}.{f[:-3]}"
            assert module in sys.modules, f"{module} is not imported by mmzoo/{package}/__init__.py"
            assert module in registered, f"{module} registers no {table[:-1].lower()}"


def test_every_task_module_registers_a_task():
    from mmzoo.registry import TASKS

    mmzoo.tasks.ensure_tasks_registered()
    modules = {TASKS.get(name).__module__ for name in TASKS.names()}
    folder = os.path.join(ROOT, "mmzoo", "tasks")
    helpers = {"__init__.py", "base.py", "heads.py", "losses.py", "targets.py", "ranking.py", "caption_metrics.py",
               "decoding.py"}
    for f in sorted(os.listdir(folder)):
        if f.endswith(".py") and f not in helpers:
            assert f"mmzoo.tasks.{f[:-3]}" in modules, f"mmzoo/tasks/{f} registers no task"
