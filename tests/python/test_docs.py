"""The README's repository layout and the documentation's links name files that exist."""

import re

from conftest import REPO

# A file or folder named in backticks: a path with a slash, or a name with an extension.
NAMED = re.compile(r"`([A-Za-z0-9_.*/-]+(?:/|\.(?:rs|ts|tsx|mjs|json|toml|yaml|dbc|sh|md|py|png)))`")
LINK = re.compile(r"\]\(([^)#\s]+)(?:#[^)]*)?\)")


def layout_rows():
    text = (REPO / "README.md").read_text()
    section = text.split("## Repository layout", 1)[1].split("\n## ", 1)[0]
    for line in section.splitlines():
        cells = [c.strip() for c in line.strip("|").split("|")]
        if len(cells) == 2 and cells[0].startswith("`"):
            yield cells


def exists_under(bases, name):
    """`name` is a path from the repository, or a file somewhere under one of the row's folders."""
    if list(REPO.glob(name.rstrip("/"))):
        return True
    for base in bases:
        root = REPO / base.split("*", 1)[0]
        if root.is_dir() and (list(root.glob(name.rstrip("/"))) or list(root.rglob(name.rstrip("/")))):
            return True
    return False


def test_the_layout_table_names_only_paths_that_exist():
    rows = list(layout_rows())
    assert len(rows) > 10, "the README's layout table was not found"
    missing = []
    for path_cell, what in rows:
        bases = [p for p in re.findall(r"`([^`]+)`", path_cell)]
        for base in bases:
            if not list(REPO.glob(base.rstrip("/"))):
                missing.append(base)
        for name in NAMED.findall(what):
            if not exists_under(bases, name):
                missing.append(f"{name} (in the row of {path_cell})")
    assert not missing, f"the README's layout names what does not exist: {missing}"


def test_every_link_of_the_readme_and_docs_leads_to_a_file():
    broken = []
    for doc in [REPO / "README.md", REPO / "CHANGELOG.md", *sorted((REPO / "docs").glob("*.md"))]:
        for target in LINK.findall(doc.read_text()):
            if re.match(r"[a-z]+:", target):
                continue
            if not (doc.parent / target).exists():
                broken.append(f"{doc.relative_to(REPO)} -> {target}")
    assert not broken, f"links to nothing: {broken}"
