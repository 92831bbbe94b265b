"""Documentation: the README's equation table points at real objects that cite their equations,
and the code cites nothing a user cannot follow (paper equations and docs/ pages only)."""

from __future__ import annotations

import importlib
import inspect
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
README = ROOT / "README.md"
DOCS = ROOT / "docs"
TABLE_HEADING = "## Where each equation lives"

# A citation of an equation: a paper equation or appendix, or a section of a docs/ page.
PAPER = re.compile(r"\b(?:Eqs?\.|App\.)\s*[A-D0-9]")
DOCS_PAGE = re.compile(r"docs/([a-z_]+)\.md")
DOCS_SECTION = re.compile(r"docs/([a-z_]+)\.md\s*§\s*(\d+)")


def equation_table(text: str) -> list[tuple[str, list[str]]]:
    """Rows ``(equation and derivation cells, [dotted object names])`` of the README's table.

    A bare name in a cell (``bayes_optimal_error`` after ``replica.errors.generalisation_error``)
    lives in the module of the dotted name before it.
    """
    section = text.split(TABLE_HEADING, 1)[1].split("\n## ", 1)[0]
    rows = []
    for line in section.splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if len(cells) < 2 or not line.lstrip().startswith("|") or set(cells[0]) <= set("-: "):
            continue
        names, module = [], None
        for name in re.findall(r"`([A-Za-z_][\w.]*)`", cells[-1]):
            if "." in name:
                module = name if _is_module(name) else name.rsplit(".", 1)[0]
                names.append(name)
            elif module is not None:
                names.append(f"{module}.{name}")
        if names:
            rows.append((" | ".join(cells[:-1]), names))
    return rows


def _is_module(name: str) -> bool:
    try:
        importlib.import_module(name)
    except ImportError:
        return False
    return True


def resolve(name: str):
    """The object a dotted name refers to: a module, or an attribute of one."""
    if _is_module(name):
        return importlib.import_module(name)
    module, attr = name.rsplit(".", 1)
    return getattr(importlib.import_module(module), attr)


def cited_pages(doc: str) -> set[str]:
    return set(DOCS_PAGE.findall(doc))


TABLE = equation_table(README.read_text(encoding="utf-8"))
NAMES = sorted({name for _, names in TABLE for name in names})


def test_the_equation_table_is_parsed():
    assert len(TABLE) >= 10 and len(NAMES) >= 15
    assert "replica.student.solve_student" in NAMES
    assert "replica.errors.bayes_optimal_error" in NAMES  # a bare name in its module


@pytest.mark.parametrize("name", NAMES)
def test_table_objects_cite_an_equation(name):
    obj = resolve(name)
    doc = inspect.getdoc(obj) or ""
    assert PAPER.search(doc) or cited_pages(doc), (
        f"the docstring of {name} cites no paper equation/appendix and no docs/ page"
    )
    for page in cited_pages(doc):
        assert (DOCS / f"{page}.md").is_file(), f"{name} cites docs/{page}.md, which is missing"


def test_table_cites_equations_or_docs_pages_not_the_private_spec():
    section = README.read_text(encoding="utf-8").split(TABLE_HEADING, 1)[1].split("\n## ")[0]
    assert "SPEC" not in section
    for equation, _ in TABLE:
        assert PAPER.search(equation) or cited_pages(equation) or "Fig." in equation, equation
        for page in cited_pages(equation):
            assert (DOCS / f"{page}.md").is_file(), page


def python_sources() -> list[Path]:
    return sorted(p for package in ("replica", "saddle", "simulations")
                  for p in (ROOT / package).rglob("*.py"))  # fmt: skip


def user_visible_files() -> list[Path]:
    """Everything a user reads: code, tests, benchmarks, notebooks, README and docs pages."""
    files = python_sources()
    for folder, pattern in (("tests", "*.py"), ("benchmarks", "*.py"), ("notebooks", "*.ipynb"),
                            ("docs", "*.md"), ("docs", "*.py")):  # fmt: skip
        files += sorted((ROOT / folder).glob(pattern))
    return [p for p in files + [README] if p.name != "test_docs.py"]


def test_no_reference_to_the_private_specification():
    """SPEC.md is not shipped: every reference must be to the paper or to docs/."""
    sources = python_sources()
    assert len(sources) > 30
    offending = [f"{p.relative_to(ROOT)}:{i}: {line.strip()[:100]}"
                 for p in user_visible_files()
                 for i, line in enumerate(p.read_text(encoding="utf-8").splitlines(), 1)
                 if re.search(r"\bSPEC\b", line)]  # fmt: skip
    assert not offending, "\n".join(offending)


def has_section(page: str, number: str) -> bool:
    """Whether docs/``page``.md has a numbered heading ``## number. ...``."""
    path = DOCS / f"{page}.md"
    text = path.read_text(encoding="utf-8") if path.is_file() else ""
    return re.search(rf"^##+ {number}\.? ", text, flags=re.MULTILINE) is not None


def test_has_section_reads_numbered_headings():
    assert has_section("saddle_point", "7") and has_section("model", "3")
    assert not has_section("saddle_point", "42") and not has_section("no_such_page", "1")


def test_docs_pages_and_sections_cited_in_the_code_exist():
    readme = README.read_text(encoding="utf-8")
    texts = {p.relative_to(ROOT).as_posix(): p.read_text(encoding="utf-8")
             for p in python_sources()}  # fmt: skip
    texts["README.md"] = readme
    missing = [f"{where}: docs/{page}.md" for where, text in texts.items()
               for page in cited_pages(text) if not (DOCS / f"{page}.md").is_file()]
    missing += [f"{where}: docs/{page}.md §{n}" for where, text in texts.items()
                for page, n in DOCS_SECTION.findall(text) if not has_section(page, n)]
    assert not missing, "\n".join(missing)


def test_ci_installs_and_builds_the_docs_exactly_as_the_readme_says():
    ci = (ROOT / ".ci" / "run").read_text(encoding="utf-8").splitlines()
    readme = README.read_text(encoding="utf-8")
    install = [line.strip() for line in ci if line.strip().startswith("pip install")]
    build = [line.strip() for line in ci if line.strip().startswith("sphinx-build")]
    assert install == ['pip install ".[test,docs]"'], install
    assert f"&& {install[0]} && python -m pytest -q" in readme
    assert len(build) == 1 and f"\n    {build[0]}\n" in readme
    assert "-W" in build[0].split()  # warnings are errors


def test_the_gallery_is_current():
    """docs/gallery.md lists every figure with the settings the code uses now, and its images
    exist: after changing ``replica.figures``, re-run ``python docs/make_gallery.py``."""
    import importlib.util

    from replica.figures import figure_spec, paper_figures

    spec = importlib.util.spec_from_file_location("make_gallery", DOCS / "make_gallery.py")
    gallery = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(gallery)
    page = (DOCS / "gallery.md").read_text(encoding="utf-8")
    resolution = float(re.search(r"\(resolution ([0-9.e+-]+)\)", page).group(1))
    for number in paper_figures():
        assert (DOCS / "_static" / "gallery" / f"figure{number}.png").stat().st_size > 10_000
        section = gallery._section(figure_spec(number, resolution=resolution),
                                   f"figure{number}.png")  # fmt: skip
        assert section in page, f"figure {number}: docs/gallery.md is stale"
