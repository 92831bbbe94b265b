"""Sphinx configuration of the kd-replica documentation.

Build (from the repository root, warning-free)::

    sphinx-build -W --keep-going -b html docs docs/_build/html

The notebooks of ``notebooks/`` are copied into ``docs/notebooks/`` (git-ignored) at each build
and rendered with their stored outputs: they are never executed here.
"""

from __future__ import annotations

import shutil
import sys
import warnings
from pathlib import Path

DOCS = Path(__file__).resolve().parent
ROOT = DOCS.parent
sys.path.insert(0, str(ROOT))


def _copy_notebooks() -> None:
    target = DOCS / "notebooks"
    target.mkdir(exist_ok=True)
    sources = sorted((ROOT / "notebooks").glob("*.ipynb"))
    for stale in target.glob("*.ipynb"):
        if not (ROOT / "notebooks" / stale.name).exists():
            stale.unlink()
    for source in sources:
        shutil.copyfile(source, target / source.name)


# The API reference lists every module of the three packages (new modules appear by
# themselves), in reading order where one is given, then alphabetically.
API_GROUPS = {
    "replica": ("replica: the replica theory", [
        "params", "losses", "errors", "prior", "channel", "teacher", "student", "sweep",
        "thresholds", "phase", "figures", "plotting", "kernel"]),
    "replica.symbolic": ("replica.symbolic: the RS free entropies in sympy", [
        "", "symbols", "moreau", "expectation", "free_entropy", "derive", "closed_forms"]),
    "saddle": ("saddle: generic numerics", [
        "quadrature", "prox", "special", "fixed_point", "continuation", "executor",
        "checkpoint", "linear_dynamics"]),
    "simulations": ("simulations: finite-size checks", [
        "data", "estimators", "monte_carlo", "wide_network"]),
}


API_SKIP = ("replica.cli", "replica.__main__")


def _subpackages() -> list[str]:
    """Sub-packages without a group of their own (e.g. ``replica.kernel_regime``)."""
    found = []
    for top in ("replica", "saddle", "simulations"):
        for init in sorted((ROOT / top).rglob("__init__.py")):
            name = ".".join(init.parent.relative_to(ROOT).parts)
            if name not in API_GROUPS and not name.startswith(API_SKIP) and name != top:
                found.append(name)
    return found


for _package in _subpackages():
    API_GROUPS[_package] = (_package, [""])
API_INTRO = """# API reference

Generated from the docstrings (numpy style) of every module. Docstrings cite the equations
they implement: a paper equation ("paper Eq. N", Saglietti & Zdeborova 2021) or a
numbered section of these pages ("docs/saddle_point.md §4" is {doc}`saddle_point`, section 4).
The public entry points are re-exported by `replica` (`solve_teacher`, `solve_student`,
`teacher_curve`, `student_curve`, ...) and `simulations` (`simulate_teacher`,
`simulate_student`, ...). The command line is documented by `kd-replica --help`.
"""


def _modules(package: str) -> list[str]:
    """Dotted names of the modules directly inside ``package`` (its sub-packages excluded)."""
    folder = ROOT / package.replace(".", "/")
    names = [p.stem for p in folder.glob("*.py") if p.stem != "__init__"]
    return [f"{package}.{n}" for n in names]


def _write_api_page() -> None:
    lines = [API_INTRO]
    for package, (title, order) in API_GROUPS.items():
        ordered = [package if not n else f"{package}.{n}" for n in order]
        found = set(_modules(package))
        ordered = [m for m in ordered if m in found or m == package]
        rest = sorted(found - set(ordered))
        lines += [f"## {title}", ""]
        for module in ordered + rest:
            if module.startswith(API_SKIP):
                continue
            lines += ["```{eval-rst}", f".. automodule:: {module}", "```", ""]
    page = DOCS / "api.md"
    text = "\n".join(lines)
    if not page.is_file() or page.read_text(encoding="utf-8") != text:
        page.write_text(text, encoding="utf-8")


_copy_notebooks()
_write_api_page()

project = "kd-replica"
author = "the kd-replica authors"
copyright = "2026, the kd-replica authors"
release = "0.1.0"

extensions = [
    "sphinx.ext.autodoc",
    "sphinx.ext.mathjax",
    "sphinx.ext.viewcode",
    "numpydoc",
    "myst_nb",
]

source_suffix = {".md": "myst-nb", ".ipynb": "myst-nb", ".rst": "restructuredtext"}
exclude_patterns = ["_build", "README.md", "make_gallery.py", "**/.ipynb_checkpoints"]

# MyST: $...$ and $$...$$ math, labelled headings for cross-references.
myst_enable_extensions = ["dollarmath", "amsmath", "colon_fence", "deflist"]
myst_heading_anchors = 3
myst_dmath_double_inline = True

# Notebooks are rendered with their committed outputs, never executed.
nb_execution_mode = "off"
nb_merge_streams = True

# API reference from the numpy-style docstrings.
# Document what each module defines, not what its __all__ re-exports (aliases, package
# namespaces), so that every object is described once.
autodoc_default_options = {"members": True, "undoc-members": False, "show-inheritance": False,
                           "ignore-module-all": True}
autodoc_member_order = "bysource"
autodoc_typehints = "none"
autodoc_inherit_docstrings = False
numpydoc_show_class_members = False
numpydoc_class_members_toctree = False
numpydoc_validation_checks: set[str] = set()
# sympy's inherited docstrings (e.g. Function.eval) use an "Explanation" section.
warnings.filterwarnings("ignore", message="Unknown section Explanation", category=UserWarning)

html_theme = "alabaster"
html_static_path = ["_static"]
html_theme_options = {"description": "Replica theory of knowledge distillation",
                      "page_width": "1100px", "sidebar_width": "240px"}
html_title = "kd-replica"
