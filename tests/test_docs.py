"""The README is a front door and the documentation in docs/ holds together (no mkdocs build here: CI runs
``mkdocs build --strict``; these checks are the fast part).

- README.md stays short, and its two commands are the ones ``.ci/run`` relies on;
- every relative Markdown link of README.md and docs/ points to a file that exists;
- docs/architecture.md names every subpackage and module of each floor, so it cannot go stale silently;
- mkdocs.yml's nav lists every page, and every page of the API reference documents a module that exists.
"""
from __future__ import annotations

import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PKG = ROOT / "jaxrl_policy"
DOCS = ROOT / "docs"
README = ROOT / "README.md"
MAX_README_LINES = 250

FENCE = re.compile(r"^```[^\n]*\n(.*?)^```", re.S | re.M)
LINK = re.compile(r"!?\[[^\]]*\]\(\s*<?([^)\s>]+)>?(?:\s+\"[^\"]*\")?\s*\)")


def code_blocks(text: str) -> list[str]:
    return [m.group(1).strip() for m in FENCE.finditer(text)]


def prose(text: str) -> str:
    """``text`` without fenced code blocks and inline code (a link shown as code is not a link)."""
    text = FENCE.sub("", text)
    return re.sub(r"(`+)(?:(?!\1).)+?\1", "", text, flags=re.S)


def relative_links(path: Path) -> list[str]:
    return [t for t in LINK.findall(prose(path.read_text()))
            if not re.match(r"^[a-z][a-z0-9+.-]*:", t, re.I) and not t.startswith("#")]


def doc_pages() -> list[Path]:
    return sorted(DOCS.rglob("*.md"))


def ci_test_command() -> str:
    """The pytest command of ``.ci/run`` (the README's test command must end with it)."""
    lines = [ln.strip() for ln in (ROOT / ".ci" / "run").read_text().splitlines()]
    found = [ln for ln in lines if ln.startswith("python -m pytest")]
    assert len(found) == 1, found
    return found[0]


def test_readme_is_a_front_door():
    n = len(README.read_text().splitlines())
    assert n <= MAX_README_LINES, f"README.md has {n} lines (at most {MAX_README_LINES}): move sections to docs/"


def test_readme_commands_are_the_ones_ci_runs():
    blocks = code_blocks(README.read_text())
    assert len(blocks) >= 2
    quick, tests = blocks[0], blocks[1]
    venv = "python3.11 -m venv .venv && . .venv/bin/activate && "
    assert "\n" not in quick and "\n" not in tests, "each command is one line, to copy whole"
    assert quick.startswith(venv + 'pip install -e ".[plots]" && jaxrl-policy compare '), quick
    assert "--algos ppo dqn vtrace --env CartPole-v1" in quick, quick
    assert tests.startswith(venv + 'pip install -e ".[dev]" && '), tests
    assert tests.endswith(ci_test_command()), (tests, ci_test_command())
    assert '-e ".[dev]"' in (ROOT / ".ci" / "run").read_text()


@pytest.mark.parametrize("path", [README, *doc_pages()], ids=lambda p: str(p.relative_to(ROOT)))
def test_relative_links_point_to_files(path):
    missing = []
    for target in relative_links(path):
        file = target.split("#", 1)[0]
        if file and not (path.parent / file).exists():
            missing.append(target)
    assert missing == [], f"{path.relative_to(ROOT)}: links to missing files: {missing}"


def test_the_link_check_can_fail(tmp_path):
    page = tmp_path / "page.md"
    page.write_text("[ok](page.md) [gone](gone.md#part) `[code](nope.md)` [web](https://example.org) [here](#top)\n"
                    "```\n[block](nope2.md)\n```\n")
    assert relative_links(page) == ["page.md", "gone.md#part"]


def subpackages() -> list[str]:
    return sorted(p.parent.name for p in PKG.glob("*/__init__.py"))


def test_architecture_names_every_floor():
    text = (DOCS / "architecture.md").read_text()
    subs = subpackages()
    assert {"core", "io", "algorithms", "loop", "results", "running", "cli"} <= set(subs), subs
    missing = [f"{s}/" for s in subs if f"{s}/" not in text]
    assert missing == [], f"docs/architecture.md does not name the subpackages {missing}: add them to the drawing"


def test_architecture_names_every_module():
    """Each floor's modules and sub-folders are named on the page (a new module gets its line there)."""
    text = (DOCS / "architecture.md").read_text()
    unnamed = []
    subs = subpackages()
    for s in subs:
        for child in sorted((PKG / s).iterdir()):
            name = child.stem if child.suffix == ".py" else child.name if (child / "__init__.py").exists() else None
            if name and not name.startswith("_") and not re.search(rf"(?<![\w/]){re.escape(name)}\b", text):
                unnamed.append(f"{s}/{child.name}")
    assert unnamed == [], f"docs/architecture.md does not name {unnamed}: say what each holds"


def test_mkdocs_nav_lists_every_page():
    nav = set(re.findall(r":\s*([\w./-]+\.md)\s*$", (ROOT / "mkdocs.yml").read_text(), re.M))
    pages = {str(p.relative_to(DOCS)) for p in doc_pages()}
    assert sorted(pages - nav) == [], "pages missing from mkdocs.yml's nav"
    assert sorted(nav - pages) == [], "nav entries without a page"


def test_api_reference_documents_existing_modules():
    directives = [m for p in (DOCS / "api").glob("*.md") for m in re.findall(r"^::: ([\w.]+)", p.read_text(), re.M)]
    assert directives
    missing = []
    for mod in directives:
        base = ROOT / Path(*mod.split("."))
        if not (base.with_suffix(".py").exists() or (base / "__init__.py").exists()):
            missing.append(mod)
    assert missing == [], f"docs/api documents modules that do not exist: {missing}"
    documented = set(directives)
    assert [f"jaxrl_policy.{s}" for s in subpackages() if f"jaxrl_policy.{s}" not in documented] == []
