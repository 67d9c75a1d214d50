"""The import arrow runs downward: no package imports one above it (checked on the source, by AST).

Layers, bottom first (a package may import its own layer and the ones below):

    data, masking, losses, training           building blocks and the training kit
    models                                    the networks
    config                                    the configuration, declared once
    runtime, methods                          run plumbing; the pre-training methods
    interop, probing                          checkpoints in and out; frozen-feature probing
    engine, eval                              the pre-training loop; the evaluation suites
    ablate                                    the paper's tables at small scale
    cli                                       the command line

Packages of one layer do not import each other either: in particular evaluation never depends on
the training loop. Function-level imports count too: a lazy import is still a dependency.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

import latentmim
from latentmim.config.eval_schema import TRANSFER_DATASETS

LAYERS: list[set[str]] = [
    {"data", "masking", "losses", "training"},
    {"models"},
    {"config"},
    {"runtime", "methods"},
    {"interop", "probing"},
    {"engine", "eval"},
    {"ablate"},
    {"cli"},
]
RANK = {pkg: i for i, layer in enumerate(LAYERS) for pkg in layer}
SRC = Path(latentmim.__file__).parent


def _imports(path: Path) -> list[tuple[int, str]]:
    """(line, top-level latentmim package) for every ``latentmim.*`` import in a file."""
    out = []
    for node in ast.walk(ast.parse(path.read_text())):
        names = []
        if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names = [node.module]
        elif isinstance(node, ast.Import):
            names = [a.name for a in node.names]
        out += [(node.lineno, n.split(".")[1]) for n in names if n.startswith("latentmim.")]
    return out


def _forbidden(src: str, dst: str) -> bool:
    if dst not in RANK or src == dst:
        return False
    return RANK[dst] >= RANK[src]


def test_every_package_has_a_layer() -> None:
    packages = {p.name for p in SRC.iterdir() if (p / "__init__.py").exists() and p.name != "configs"}
    assert packages == set(RANK)


@pytest.mark.parametrize("package", sorted(RANK))
def test_no_import_points_upward_or_sideways(package: str) -> None:
    wrong = [
        f"{path.relative_to(SRC)}:{line} imports latentmim.{dst}"
        for path in sorted((SRC / package).rglob("*.py"))
        for line, dst in _imports(path)
        if _forbidden(package, dst)
    ]
    assert wrong == []


def test_the_checker_sees_an_upward_import(tmp_path: Path) -> None:
    # The AST walk finds lazy, function-level imports as well as module-level ones.
    f = tmp_path / "m.py"
    f.write_text("import torch\n\ndef f():\n    from latentmim.eval.knn import suite\n")
    assert _imports(f) == [(4, "eval")]
    assert _forbidden("engine", "eval") and _forbidden("eval", "engine")  # siblings, not allowed
    assert _forbidden("methods", "interop") and not _forbidden("interop", "methods")


def test_config_knows_the_same_transfer_datasets_as_the_fewshot_loader() -> None:
    from latentmim.eval.fewshot.data import TRANSFER

    assert tuple(TRANSFER) == TRANSFER_DATASETS
