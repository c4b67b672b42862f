"""The package's layering, read from its source: the harness names no task or data set,
tasks reach data sets only through the registry, the leaderboard reads run folders without
the harness, methods import no task module but the task interface (``tasks.base``), and no
source file grows past 600 lines."""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

from xhbench.plugins import get_plugins

PACKAGE = Path(__file__).parents[1] / "src" / "xhbench"


def modules(folder: str) -> list[Path]:
    return sorted((PACKAGE / folder).rglob("*.py"))


def imported(path: Path) -> set[str]:
    """Absolute module names ``path`` imports (relative imports resolved)."""
    package = ["xhbench", *path.relative_to(PACKAGE).parent.parts]
    names = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = package[:len(package) - node.level + 1] if node.level else []
            module = ".".join([*base, *([node.module] if node.module else [])])
            names.add(module)
            names.update(f"{module}.{alias.name}" for alias in node.names)
    return names


def test_the_harness_names_no_task_and_no_data_set():
    registry = get_plugins().registry
    names = [entry.name for kind in ("task", "dataset") for entry in registry.entries(kind)
             if entry.plugin.startswith("xhbench.")]
    pattern = re.compile(r"\b(" + "|".join(map(re.escape, names)) + r")\b", re.IGNORECASE)
    found = {str(path.relative_to(PACKAGE)): sorted(set(pattern.findall(path.read_text())))
             for path in modules("harness")}
    assert {path: hits for path, hits in found.items() if hits} == {}


def test_tasks_import_no_data_set_module():
    allowed = {"xhbench.datasets", "xhbench.datasets.base", "xhbench.datasets.checks"}
    for path in modules("tasks"):
        reached = {name for name in imported(path) if name.startswith("xhbench.datasets.")}
        concrete = {name for name in reached
                    if name not in allowed and not name.startswith("xhbench.datasets.base.")}
        assert not concrete, f"{path.name} imports {sorted(concrete)}"


def test_methods_import_no_task_module_but_the_task_interface():
    interface = {"xhbench.tasks", "xhbench.tasks.base"}
    for path in modules("methods"):
        reached = {name for name in imported(path) if name.startswith("xhbench.tasks.")}
        concrete = {name for name in reached
                    if name not in interface and not name.startswith("xhbench.tasks.base.")}
        assert not concrete, f"methods/{path.relative_to(PACKAGE / 'methods')} imports " \
                             f"{sorted(concrete)}"


@pytest.mark.parametrize("folder, forbidden", [
    ("leaderboard", "xhbench.harness"),
    ("datasets", "xhbench.harness"),
    ("datasets", "xhbench.tasks"),
])
def test_lower_layers_do_not_import_upper_ones(folder, forbidden):
    for path in modules(folder):
        upward = sorted(name for name in imported(path) if name.startswith(forbidden))
        assert not upward, f"{folder}/{path.name} imports {upward}"


def test_no_source_file_is_over_600_lines():
    long = {str(path.relative_to(PACKAGE)): len(path.read_text().splitlines())
            for path in PACKAGE.rglob("*.py")}
    assert {path: lines for path, lines in long.items() if lines > 600} == {}


def test_each_builtin_config_class_is_named_after_its_owner():
    registry = get_plugins().registry
    generic = [f"{kind} {entry.name}" for kind in ("task", "method")
               for entry in registry.entries(kind) if entry.plugin.startswith("xhbench.")
               and entry.load().Config.__name__ == "Config"]
    assert generic == []
