"""The package layout: ``saddle/`` (generic numerics) imports nothing from ``replica`` or
``simulations``; the kernel-regime model is a subpackage of its own."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
FORBIDDEN = ("replica", "simulations")
SADDLE = sorted((ROOT / "saddle").rglob("*.py"))


def imported_modules(path: Path) -> set[str]:
    """Top-level names of every module imported anywhere in ``path`` (also inside functions)."""
    tree = ast.parse(path.read_text(), filename=str(path))
    names = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names.add(node.module.split(".")[0])
    return names


def test_parser_sees_nested_imports(tmp_path):
    f = tmp_path / "m.py"
    f.write_text("import os\ndef g():\n    from replica.params import x\n"
                 "    import simulations.data\n")
    assert imported_modules(f) == {"os", "replica", "simulations"}


@pytest.mark.parametrize("path", SADDLE, ids=[p.name for p in SADDLE])
def test_saddle_imports_nothing_from_the_physics(path):
    bad = imported_modules(path) & set(FORBIDDEN)
    assert not bad, f"{path.relative_to(ROOT)} imports {sorted(bad)}"


def test_kernel_regime_is_a_subpackage():
    pkg = ROOT / "replica" / "kernel_regime"
    for module in ["gram", "dynamics", "proportional", "data", "teachers", "experiments",
                   "trajectory", "lottery"]:
        assert (pkg / f"{module}.py").is_file()
    # the finite network does not depend on the kernel theory
    tree = ast.parse((ROOT / "simulations" / "wide_network.py").read_text())
    modules = {n.module for n in ast.walk(tree) if isinstance(n, ast.ImportFrom) and n.module}
    assert not any("kernel" in m for m in modules)
