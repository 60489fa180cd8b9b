"""The package's layers, read from its imports: the tree under `esc50_hf/` is the architecture (docs/architecture.md).

Each subpackage may import only the layers below it; `model/` imports nothing of the package but itself, since its
modules are saved into every model folder and must run there without `esc50_hf` installed.
"""

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "esc50_hf"

# What every layer but `model` may use: the package's own entry (`import esc50_hf` registers the Auto classes;
# `esc50_hf.audio_pipeline`) and top-level modules of constants and helpers that have no layer of their own.
SHARED = {"__init__", "paths", "errors", "publish", "lazy"}
ALLOWED = {
    "model": set(),
    "data": {"model"},
    "evaluation": {"model", "data"},
    "inference": {"model", "data"},
    "training": {"model", "data", "evaluation", "inference"},
    "serving": {"model", "inference"},
}


def package_imports(path: Path) -> set[str]:
    """The first component under `esc50_hf` of every module `path` imports (`__init__` for the package itself)."""
    module_package = ["esc50_hf", *path.relative_to(PACKAGE).parts[:-1]]
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom):
            if node.level:
                base = module_package[: len(module_package) - (node.level - 1)]
                name = ".".join([*base, *([node.module] if node.module else [])])
            else:
                name = node.module or ""
            names = [name] if name != "esc50_hf" else [f"esc50_hf.{alias.name}" for alias in node.names]
        elif isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        else:
            continue
        for imported in names:
            parts = imported.split(".")
            if parts[0] == "esc50_hf":
                found.add(parts[1] if len(parts) > 1 and (PACKAGE / parts[1]).exists() or
                          len(parts) > 1 and (PACKAGE / f"{parts[1]}.py").exists() else "__init__")  # fmt: skip
    return found


@pytest.mark.parametrize("layer", sorted(ALLOWED))
def test_each_layer_imports_only_the_layers_below_it(layer):
    wrong = {
        str(path.relative_to(PACKAGE)): sorted(package_imports(path) - ALLOWED[layer] - SHARED - {layer})
        for path in sorted((PACKAGE / layer).rglob("*.py"))
    }
    assert {name: layers for name, layers in wrong.items() if layers} == {}


def test_the_model_layer_imports_nothing_of_the_package():
    """Saved beside the weights, these modules must load from a folder where `esc50_hf` does not exist."""
    for path in (PACKAGE / "model").glob("*.py"):
        assert package_imports(path) <= {"model"}, path.name


def test_every_subpackage_is_a_known_layer():
    subpackages = {path.parent.name for path in PACKAGE.glob("*/__init__.py")}
    assert subpackages == set(ALLOWED) | {"commands"}
