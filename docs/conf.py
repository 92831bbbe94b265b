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


_copy_notebooks()

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
autodoc_default_options = {"members": True, "undoc-members": False, "show-inheritance": False}
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
