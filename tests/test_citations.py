"""Every reference in the code can be followed inside the repository.

Code comments and docstrings explain themselves in plain words or point to a section of the
project's documentation, written as ``docs: protocol.rst, "Keep-alive"`` (several titles of one
page are separated by ``, `` or `` to ``, several pages by ``; ``).  They never cite numbered
sections of documents the repository does not contain.  ``docs/replace_citations.py`` and
``docs/section-map.txt`` turned the old citations into such references; this module keeps the
old form from coming back and checks that every reference names a page and a section title
that exist.

replace-citations: skip (the old-style citations below are test data, not references)
"""

from __future__ import annotations

import bisect
import importlib.util
import itertools
import re
import sys
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType

import pytest

ROOT = Path(__file__).resolve().parent.parent
DOCS = ROOT / "docs"
SCANNED = ("src", "emulator", "tests", "benchmarks", "scripts", ".ci", "Makefile", "pyproject.toml")
"""Where the code lives; docs/ itself holds the citation map and script, which name the old form."""
SKIP_DIRS = frozenset({"node_modules", "__pycache__", ".venv", "build", "dist", ".git"})
ALLOWED = frozenset({"tests/test_docs.py", "tests/test_readme.py", "tests/test_citations.py"})
"""Files whose citations and references are test data (for docs/replace_citations.py, and here)."""
MAP = DOCS / "section-map.txt"

SECTION = "\u00a7"
_FORBIDDEN = (
    (re.compile(SECTION), "a section-number citation"),
    (re.compile(r"\bPROTOCOL" r"\.md\b"), "a document not in the repository"),
    (re.compile(r"\bSTYLE" r"\.md\b"), "a document not in the repository"),
    (re.compile(r"TESTING-" r"RESEARCH"), "a document not in the repository"),
    (re.compile(r"\.\./" r"shared\b"), "a folder outside the repository"),
)
_RFC_SECTION = re.compile(rf"RFC\s*\d+\s*{SECTION}\s?\d+(?:\.\d+)*")
"""Sections of public RFCs ("RFC 8259 section 6") may be cited."""

_TITLES = r'"[^"]+"(?:(?:, | to )"[^"]+")*'
_PAGE = rf"[\w./-]+\.rst(?:, {_TITLES})?"
_REF = re.compile(rf"\bdocs: (?P<refs>{_PAGE}(?:; {_PAGE})*)")
_PAGE_REF = re.compile(rf"(?P<page>[\w./-]+\.rst)(?:, (?P<titles>{_TITLES}))?")
_UNDERLINE = re.compile(r"^([=\-~^\"'`#*+:.])\1+\s*$")
_CONTINUATION = re.compile(r"[ \t]*\n[ \t]*(?:#[ \t]*)?")
"""A line break inside a comment or docstring, with the next line's indent and ``#``."""


def code_files() -> Iterator[Path]:
    """Every text file of the code, vendored and generated folders left out."""
    for name in SCANNED:
        base = ROOT / name
        if base.is_file():
            yield base
        elif base.is_dir():
            for path in sorted(base.rglob("*")):
                relative = path.relative_to(ROOT)
                if path.is_file() and not set(relative.parts) & SKIP_DIRS:
                    yield path


def read_text(path: Path) -> str | None:
    """The file's text, or ``None`` for a binary file."""
    try:
        return path.read_text(encoding="utf-8")
    except UnicodeDecodeError:
        return None


def code_texts() -> list[tuple[str, str]]:
    """``(relative path, text)`` of every text file of the code, allowed files left out."""
    texts: list[tuple[str, str]] = []
    for path in code_files():
        name = path.relative_to(ROOT).as_posix()
        text = read_text(path)
        if text is not None and name not in ALLOWED:
            texts.append((name, text))
    return texts


def docs_pages() -> dict[str, list[Path]]:
    """Docs pages by file name (as comments usually name them) and by path under docs/."""
    pages: dict[str, list[Path]] = {}
    for path in sorted(DOCS.rglob("*.rst")):
        pages.setdefault(path.name, []).append(path)
        pages.setdefault(path.relative_to(DOCS).as_posix(), []).append(path)
    return pages


def plain_title(text: str) -> str:
    """A section title without its inline markup (``Token expired`` -> Token expired)."""
    return re.sub(r"\s+", " ", text.replace("``", "").replace("\\", "")).strip()


def section_titles(page: Path) -> set[str]:
    """The titles of the page's sections (its own title included)."""
    lines = page.read_text(encoding="utf-8").splitlines()
    titles: set[str] = set()
    for title, underline in itertools.pairwise(lines):
        text = title.strip()
        if text and not _UNDERLINE.match(title) and _UNDERLINE.match(underline):
            if len(underline.strip()) >= len(text):
                titles.add(plain_title(text))
    return titles


def references(text: str) -> Iterator[tuple[int, str, list[str]]]:
    """``(line, page, titles)`` of every ``docs:`` reference, also across line breaks."""
    joined = _CONTINUATION.sub(" ", text)
    breaks: list[int] = []  # where each line break is in ``joined``
    removed = 0
    for match in _CONTINUATION.finditer(text):
        breaks.append(match.start() - removed)
        removed += len(match.group(0)) - 1
    for match in _REF.finditer(joined):
        line = 1 + bisect.bisect_left(breaks, match.start())
        for page_ref in _PAGE_REF.finditer(match.group("refs")):
            titles = re.findall(r'"([^"]+)"', page_ref.group("titles") or "")
            yield line, page_ref.group("page"), titles


def test_code_cites_no_section_numbers_or_outside_documents() -> None:
    """No section-number citation and no document outside the repository is named."""
    found: list[str] = []
    for name, text in code_texts():
        for number, line in enumerate(text.splitlines(), 1):
            line = _RFC_SECTION.sub("RFC", line)
            for pattern, what in _FORBIDDEN:
                if pattern.search(line):
                    found.append(f"{name}:{number}: {what}: {line.strip()}")
    assert not found, "explain in plain words or point to docs/ instead:\n" + "\n".join(found)


def test_every_docs_reference_names_an_existing_page_and_section() -> None:
    """``docs: page.rst, "Title"`` names a page under docs/ and one of its section titles."""
    pages = docs_pages()
    titles = {name: section_titles(paths[0]) for name, paths in pages.items()}
    broken: list[str] = []
    count = 0
    for name, text in code_texts():
        for line, page, wanted in references(text):
            count += 1
            if page not in pages:
                broken.append(f"{name}:{line}: no docs page {page}")
                continue
            if len(pages[page]) > 1:
                broken.append(
                    f"{name}:{line}: several docs pages are named {page}; give its folder"
                )
                continue
            broken.extend(
                f"{name}:{line}: {page} has no section titled {title!r}"
                for title in wanted
                if plain_title(title) not in titles[page]
            )
    assert count > 0, "no docs references found; is the pattern still right?"
    assert not broken, "\n".join(broken)


def test_every_docs_mention_is_a_well_formed_reference() -> None:
    """Each ``docs:`` in a comment has the form the check above can follow."""
    malformed: list[str] = []
    for name, text in code_texts():
        joined = _CONTINUATION.sub(" ", text)
        # ``docs: bool`` (an annotated parameter named ``docs``) is code, not a reference.
        for match in re.finditer(r"\bdocs: (?!(?:bool|str|int|float|Path)\b)", joined):
            if not _REF.match(joined, match.start()):
                malformed.append(f"{name}: {joined[match.start() : match.start() + 60]!r}")
    assert not malformed, "\n".join(malformed)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ('# see docs: protocol.rst, "Keep-alive".', [(1, "protocol.rst", ["Keep-alive"])]),
        (
            '"""Limits (docs: protocol.rst,\n    "Timing and lifecycle", "Limits")."""',
            [(1, "protocol.rst", ["Timing and lifecycle", "Limits"])],
        ),
        (
            '# a\n# (docs: protocol.rst, "A" to "B"; design.rst, "C")',
            [(2, "protocol.rst", ["A", "B"]), (2, "design.rst", ["C"])],
        ),
        ("# the whole page (docs: protocol.rst).", [(1, "protocol.rst", [])]),
        ('# docs: reference/config.rst, "Keys"', [(1, "reference/config.rst", ["Keys"])]),
    ],
)
def test_references_are_parsed_across_lines(
    text: str, expected: list[tuple[int, str, list[str]]]
) -> None:
    """The reference parser reads every form the code uses, also wrapped over two lines."""
    assert list(references(text)) == expected


@pytest.mark.parametrize(
    ("line", "bad"),
    [
        (f"# see {SECTION}3.3.2", True),
        (f"# EMULATOR-CHOICE {SECTION}7.1", True),
        ("# PROTOCOL.md says so", True),
        ("# as STYLE.md asks", True),
        ("# TESTING-RESEARCH 4", True),
        ("# ../shared/x", True),
        (f"# not JSON (RFC 8259 {SECTION}6)", False),
        ('# docs: protocol.rst, "Keep-alive"', False),
    ],
)
def test_forbidden_patterns(line: str, bad: bool) -> None:
    """The forbidden patterns catch old citations and let RFC sections through."""
    line = _RFC_SECTION.sub("RFC", line)
    assert any(pattern.search(line) for pattern, _ in _FORBIDDEN) is bad


def test_section_map_titles_are_the_titles_under_its_labels() -> None:
    """Each entry of docs/section-map.txt names a label that exists and that section's title."""
    wrong: list[str] = []
    for number, raw in enumerate(MAP.read_text(encoding="utf-8").splitlines(), 1):
        if not raw.strip() or raw.startswith("#"):
            continue
        where, title = (part.strip() for part in raw.split("->", 1)[1].split("|", 1))
        page, label = where.split("#", 1)
        lines = (ROOT / page).read_text(encoding="utf-8").splitlines()
        if f".. _{label}:" not in lines:
            wrong.append(f"section-map.txt:{number}: no label {label} in {page}")
            continue
        after = lines[lines.index(f".. _{label}:") + 1 :]
        heading = next(line for line in after if line.strip() and not _UNDERLINE.match(line))
        if plain_title(heading) != title:
            wrong.append(f"section-map.txt:{number}: {label} is titled {plain_title(heading)!r}")
    assert not wrong, "\n".join(wrong)


def _load_script() -> ModuleType:
    spec = importlib.util.spec_from_file_location(
        "replace_citations_for_test_citations", DOCS / "replace_citations.py"
    )
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up
    spec.loader.exec_module(module)
    return module


def test_docs_build_links_a_reference_wrapped_over_two_lines() -> None:
    """The API reference links a ``docs:`` reference even when a comma ends its first line."""
    script = _load_script()
    lines = [
        "Listed (EMULATOR-CHOICE, docs: emulator-fidelity.rst,",
        '"Events a handler filtered out").',
    ]
    linked = script.link_docstring(lines, script.load_map())
    assert linked == [
        "Listed (EMULATOR-CHOICE, :ref:`Events a handler filtered out <fidelity-filtered-events>`)."
    ]


def test_citation_script_scans_suffixless_scripts_but_not_data(tmp_path: Path) -> None:
    """Scripts without a suffix are scanned when they start with ``#!``; other files are not."""
    script = _load_script()
    (tmp_path / "run").write_text("#!/bin/sh\n# see docs\n", encoding="utf-8")
    (tmp_path / "blob").write_bytes(b"\x00\xff")
    (tmp_path / "Makefile").write_text("all:\n", encoding="utf-8")
    found = sorted(path.name for path in script.iter_files([tmp_path]))
    assert found == ["Makefile", "run"]
