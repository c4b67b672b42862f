"""The package's layering, read from its source: the harness names no task or data set,
tasks reach data sets only through the registry, no layer of the one-way flow imports an
earlier one (methods may import the task interface ``tasks.base``, the leaderboard the run
folder ``results``), and no source file grows past 600 lines."""

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


#: The one-way flow (docs/architecture.md), first to last; a layer's helper package with it.
LAYERS = (("cli",), ("harness",), ("tasks",), ("datasets",), ("methods", "training"),
          ("metrics",), ("results",), ("leaderboard",))
#: Modules of an earlier layer that later ones may import: the interfaces they share.
INTERFACES = ("xhbench.tasks.base",  # TaskSpec and the like: what a method is built for
              "xhbench.results")     # the run folder the harness writes, the leaderboard reads


def sources(package: str) -> list[Path]:
    """The source files of ``package``: a folder's modules, or the one module."""
    return modules(package) if (PACKAGE / package).is_dir() else [PACKAGE / f"{package}.py"]


def upward(names: set[str], earlier: set[str]) -> list[str]:
    """The ``names`` that reach into the ``earlier`` packages, their interfaces aside."""
    return sorted(name for name in names
                  if name.startswith("xhbench.") and name.split(".")[1] in earlier
                  and not any(name == i or name.startswith(f"{i}.") for i in INTERFACES))


@pytest.mark.parametrize("index", range(1, len(LAYERS)), ids=lambda i: "+".join(LAYERS[i]))
def test_no_layer_imports_an_earlier_one(index):
    earlier = {package for layer in LAYERS[:index] for package in layer}
    found = {str(path.relative_to(PACKAGE)): upward(imported(path), earlier)
             for package in LAYERS[index] for path in sources(package)}
    assert {path: names for path, names in found.items() if names} == {}


def test_an_import_of_an_earlier_layer_is_upward_but_its_interface_is_not():
    names = {"xhbench.harness.config", "xhbench.harness.config.resolve", "xhbench.tasks",
             "xhbench.tasks.base", "xhbench.tasks.base.TaskSpec", "xhbench.training.budget",
             "xhbench.resultsx", "xhbench", "torch.nn"}
    assert upward(names, {"cli", "harness", "tasks"}) == [
        "xhbench.harness.config", "xhbench.harness.config.resolve", "xhbench.tasks"]
    assert all(sources(package)[0].exists() for layer in LAYERS for package in layer)


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
