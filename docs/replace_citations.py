"""Rewrite section citations in code comments into references to the documentation.

Code comments used to cite sections of documents that are not part of the repository
("PROTOCOL.md §3.3.2", "EMULATOR-CHOICE §7.1", "STYLE §2").  ``docs/section-map.txt`` says
which documentation page and section now explains each of them; this script applies that
map, turning for example::

    # PROTOCOL.md §3.3.2: a ka follows the ack at once.
    # EMULATOR-CHOICE §3.1: AWS's answer to a binary frame is unknown.

into::

    # docs: protocol.rst, "Keep-alive": a ka follows the ack at once.
    # EMULATOR-CHOICE, docs: emulator-fidelity.rst, "Messages and operations": AWS's ...

A run of citations (``§3.4/§7.1``, ``§2.3-§4``, ``§4, §7.3``) becomes one reference.  On a
line marked ``EMULATOR-CHOICE`` or ``DIVERGENCE`` the map's ``EMULATOR-CHOICE`` entries
win, so such lines point to the fidelity page.  Citations of RFC sections
(``RFC 8259 §6``) are left alone, and so is a file that contains the text
``replace-citations: skip``.

Usage::

    python docs/replace_citations.py --dry-run     # print a diff, change nothing
    python docs/replace_citations.py               # rewrite the files in place
    python docs/replace_citations.py --check       # exit 1 while any citation is left

After a real run, run ``ruff format`` and ``ruff check``: the script lists the lines it
made longer than the line limit, which need rewrapping by hand, and the lines where a
sentence used the citation as a noun ("a rule of §7.1"), which need rewording.
"""

from __future__ import annotations

import argparse
import difflib
import re
import sys
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

__all__ = [
    "SectionMap",
    "link_docstring",
    "load_map",
    "main",
    "render_refs",
    "render_text",
    "rewrite_line",
    "rewrite_text",
]

ROOT = Path(__file__).resolve().parent.parent
MAP_FILE = Path(__file__).resolve().parent / "section-map.txt"
DEFAULT_PATHS = (
    "src",
    "emulator",
    "tests",
    "benchmarks",
    "scripts",
    ".ci",
    "Makefile",
    "pyproject.toml",
)
SKIP_DIRS = frozenset({"node_modules", ".venv", "__pycache__", "build", "dist", ".git"})
SUFFIXES = frozenset({".py", ".pyi", ".toml", ".cfg", ".ini", ".txt", ".md", ".rst", ".mjs"})
LINE_LIMIT = 100
MARKERS = ("EMULATOR-CHOICE", "DIVERGENCE")
SKIP_MARK = "replace-citations: skip"
"""A file containing this text is left alone (its citations are test data)."""

# One citation: §3.3.2, optionally "item 7" / "point 7" / "row 9" / "rows 6-7" after it.
_ONE = r"§\s?\d+(?:\.\d+)*(?:\s+(?:item|point|rows?)\s+\d+(?:-\d+)?)?"
# A run of citations joined by a slash, comma, hyphen, en dash (u2013), 'and' or 'or'.
_SEP = r"\s*(?:/|,|-|\u2013|\band\b|\bor\b)\s*"
_GROUP = re.compile(
    r"(?P<doc>(?:PROTOCOL|STYLE|TESTING-RESEARCH)(?:\.md)?\s+)?"
    r"(?P<mark>EMULATOR-CHOICE[,:]?\s+)?"
    rf"(?P<cites>{_ONE}(?:{_SEP}{_ONE})*)"
)
_CITE = re.compile(
    r"§\s?(?P<num>\d+(?:\.\d+)*)(?:\s+(?P<kind>item|point|rows?)\s+(?P<n>\d+)(?:-\d+)?)?"
)
_RFC_BEFORE = re.compile(r"RFC\s*\d+\s*$")
_AS_NOUN = re.compile(r"\b(?:the|of|per|own|and|from|breaks|breaking|as|in|a) docs: ", re.I)
"""A rewritten citation that a sentence used as a noun ("a rule of §7.1")."""
_BARE_DOC = re.compile(r"\bPROTOCOL\.md\b(?!\s*§)")
"""The protocol document named without a section."""
_KINDS = {"rows": "row", "point": "item", "row": "row", "item": "item"}
"""Suffix words with the same meaning ("§5.4 point 7" is "§5.4 item 7")."""
_OTHER_DOCS = re.compile(r"\b(?:PROTOCOL|TESTING-RESEARCH|STYLE)\.md\b")


@dataclass(frozen=True, slots=True)
class Target:
    """Where a cited section is explained now."""

    path: str
    """The page, relative to the repository root (``docs/topics/protocol.rst``)."""
    label: str
    """The Sphinx label of the section."""
    title: str
    """The section's title, written into the comment."""

    @property
    def page(self) -> str:
        """The page's file name, as comments name it."""
        return self.path.rsplit("/", 1)[-1]


SectionMap = dict[str, Target]


def load_map(path: Path = MAP_FILE) -> SectionMap:
    """Read ``KEY -> docs/page.rst#label | Title`` lines; ``#`` starts a comment line."""
    mapping: SectionMap = {}
    for number, raw in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        try:
            key, rest = (part.strip() for part in line.split("->", 1))
            where, title = (part.strip() for part in rest.split("|", 1))
            page, label = where.split("#", 1)
        except ValueError:
            raise SystemExit(f"{path}:{number}: expected 'KEY -> page.rst#label | Title'") from None
        mapping[_normalise(key)] = Target(page, label, title)
    return mapping


def _normalise(key: str) -> str:
    key = re.sub(r"\s+", " ", key.replace("§ ", "§")).strip()
    key = re.sub(r"\.md\b", "", key)
    return re.sub(r"\b(?:rows|point)\b", lambda m: _KINDS[m.group(0)], key)


def _keys(doc: str, num: str, kind: str | None, n: str | None, marked: bool) -> Iterator[str]:
    """Map keys to try for one citation, most specific first."""
    prefix = "" if doc in ("", "PROTOCOL") else f"{doc} "
    kind = _KINDS.get(kind, kind) if kind else None
    bases = [f"{prefix}§{num} {kind} {n}"] if kind else []
    bases.append(f"{prefix}§{num}")
    if marked and not prefix:
        yield from (f"EMULATOR-CHOICE {base}" for base in bases)
    yield from bases
    parts = num.split(".")
    while len(parts) > 1:  # an unknown subsection falls back to its parent
        parts.pop()
        yield f"{prefix}§{'.'.join(parts)}"


Render = Callable[[Sequence[Target], bool, bool], str]
"""Turns the targets of one run of citations into text: ``(targets, marked, ranged)``."""


def render_text(targets: Sequence[Target], marked_inline: bool, ranged: bool) -> str:
    """The form written into code: ``docs: protocol.rst, "Keep-alive"``."""
    pages: dict[str, list[str]] = {}
    for target in targets:
        titles = pages.setdefault(target.page, [])
        if f'"{target.title}"' not in titles:
            titles.append(f'"{target.title}"')
    joiner = " to " if ranged and len(pages) == 1 else ", "
    text = "; ".join(f"{page}, {joiner.join(titles)}" for page, titles in pages.items())
    return f"EMULATOR-CHOICE, docs: {text}" if marked_inline else f"docs: {text}"


def render_refs(targets: Sequence[Target], marked_inline: bool, ranged: bool) -> str:
    """The form the docs build shows in docstrings: Sphinx ``:ref:`` links."""
    refs: list[str] = []
    for target in targets:
        ref = f":ref:`{target.title} <{target.label}>`"
        if ref not in refs:
            refs.append(ref)
    text = (" to " if ranged else ", ").join(refs)
    return f"EMULATOR-CHOICE, {text}" if marked_inline else text


def rewrite_line(
    line: str, mapping: SectionMap, render: Render = render_text
) -> tuple[str, list[str]]:
    """Return ``line`` with its citations rewritten, and the keys the map lacks."""
    marked = any(marker in line for marker in MARKERS)
    missing: list[str] = []

    def replace(match: re.Match[str]) -> str:
        if _RFC_BEFORE.search(line[: match.start()]):
            return match.group(0)
        doc = re.sub(r"(\.md)?\s+$", "", match.group("doc") or "")
        targets: list[Target] = []
        for cite in _CITE.finditer(match.group("cites")):
            keys = list(_keys(doc, cite["num"], cite["kind"], cite["n"], marked))
            found = next((mapping[k] for k in keys if k in mapping), None)
            if found is None:
                missing.append(keys[0])
                return match.group(0)
            targets.append(found)
        ranged = bool(re.search(r"§[\d.]+\s*[-\u2013]\s*§", match.group("cites")))
        return render(targets, match.group("mark") is not None, ranged)

    def replace_bare(match: re.Match[str]) -> str:
        target = mapping.get(_normalise(match.group(0)))
        return render([target], False, False) if target else match.group(0)

    return _BARE_DOC.sub(replace_bare, _GROUP.sub(replace, line)), missing


def rewrite_text(text: str, mapping: SectionMap) -> tuple[str, list[tuple[int, str]]]:
    """Rewrite every line of ``text``; return the new text and ``(line, key)`` misses."""
    out: list[str] = []
    misses: list[tuple[int, str]] = []
    text = _join_dangling(text)
    for number, line in enumerate(text.splitlines(keepends=True), 1):
        if "§" in line or "PROTOCOL.md" in line:
            line, missing = rewrite_line(line, mapping)
            misses.extend((number, key) for key in missing)
        out.append(line)
    return "".join(out), misses


_DOCS_REF = re.compile(
    r'docs: (?P<refs>[\w.-]+\.rst, "[^"]+"(?:(?:, | to )"[^"]+")*'
    r'(?:; [\w.-]+\.rst, "[^"]+"(?:(?:, | to )"[^"]+")*)*)'
)
_PAGE_REFS = re.compile(r'(?P<page>[\w.-]+\.rst), (?P<titles>"[^"]+"(?:(?:, | to )"[^"]+")*)')
_DANGLING_DOC = re.compile(r"\b((?:PROTOCOL|STYLE|TESTING-RESEARCH)(?:\.md)?)\n(\s*(?:#\s*)?)(?=§)")
"""A document name at the end of a line whose section number starts the next line."""
_WRAPPED_REF = re.compile(r'(docs: [\w.-]+\.rst(?:, "[^"\n]+")*,)[ \t]*\n[ \t]*(?=")')
"""A ``docs:`` reference wrapped after a comma: ``(docs: protocol.rst,`` / ``"Keep-alive")``."""


def _link_written_refs(line: str, mapping: SectionMap) -> str:
    """Turn ``docs: page.rst, "Title"`` references (already in the code) into links."""
    by_title = {(target.page, target.title): target for target in mapping.values()}

    def replace(match: re.Match[str]) -> str:
        targets: list[Target] = []
        for page_refs in _PAGE_REFS.finditer(match.group("refs")):
            for title in re.findall(r'"([^"]+)"', page_refs.group("titles")):
                target = by_title.get((page_refs.group("page"), title))
                if target is None:
                    return match.group(0)
                targets.append(target)
        return render_refs(targets, False, " to " in match.group("refs"))

    return _DOCS_REF.sub(replace, line)


def _join_dangling(text: str) -> str:
    """Move a document name that ends a line to the section number on the next line."""
    return _DANGLING_DOC.sub(lambda m: f"\n{m.group(2)}{m.group(1)} ", text)


def link_docstring(lines: list[str], mapping: SectionMap) -> list[str]:
    """Return docstring ``lines`` with citations and ``docs:`` references as links.

    Used by the Sphinx build (``docs/conf.py``), so the API reference links to the
    sections whether or not the code has been rewritten yet.  Inside literal blocks
    (after ``::``) the plain ``docs:`` form is used, since links cannot render there.
    """
    text = _WRAPPED_REF.sub(r"\1 ", _join_dangling("\n".join(lines)))
    out: list[str] = []
    literal_indent: int | None = None
    for line in text.split("\n"):
        indent = len(line) - len(line.lstrip())
        if literal_indent is not None and line.strip() and indent <= literal_indent:
            literal_indent = None
        if literal_indent is not None and line.strip():
            out.append(rewrite_line(line, mapping)[0])
        else:
            if "§" in line or "PROTOCOL.md" in line:
                line = rewrite_line(line, mapping, render_refs)[0]
            out.append(_link_written_refs(line, mapping) if "docs: " in line else line)
        if line.rstrip().endswith("::") and literal_indent is None:
            literal_indent = indent
    return out


def _is_code_text(path: Path) -> bool:
    """A source or text file: a known suffix, a Makefile, or a script starting with ``#!``."""
    if path.suffix in SUFFIXES or path.name == "Makefile":
        return True
    if path.suffix:
        return False
    with path.open("rb") as file:
        return file.read(2) == b"#!"


def iter_files(paths: Sequence[Path]) -> Iterator[Path]:
    """Text files under ``paths`` that may hold citations (vendored folders skipped)."""
    for base in paths:
        if base.is_file():
            yield base
            continue
        for path in sorted(base.rglob("*")):
            parts = set(path.relative_to(base).parts)
            if path.is_file() and _is_code_text(path) and not parts & SKIP_DIRS:
                yield path


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; return the exit status."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("paths", nargs="*", type=Path, help="files or folders (default: code)")
    parser.add_argument("--dry-run", action="store_true", help="print a diff, write nothing")
    parser.add_argument("--check", action="store_true", help="exit 1 if citations remain")
    parser.add_argument("--map", type=Path, default=MAP_FILE, help="the section map")
    args = parser.parse_args(argv)
    mapping = load_map(args.map)
    paths = args.paths or [ROOT / name for name in DEFAULT_PATHS]
    changed = remaining = 0
    for path in iter_files(paths):
        text = path.read_text(encoding="utf-8")
        if ("§" not in text and "PROTOCOL.md" not in text) or SKIP_MARK in text:
            continue
        new, misses = rewrite_text(text, mapping)
        for number, line in enumerate(new.splitlines(), 1):
            if _OTHER_DOCS.search(line):
                print(
                    f"{path}:{number}: still names a document outside the repository",
                    file=sys.stderr,
                )
        for number, key in misses:
            print(f"{path}:{number}: no map entry for {key!r}", file=sys.stderr)
        remaining += len(misses)
        if new == text:
            continue
        changed += 1
        for number, line in enumerate(new.splitlines(), 1):
            if line in text:
                continue
            if len(line) > LINE_LIMIT:
                print(f"{path}:{number}: now {len(line)} characters long", file=sys.stderr)
            if _AS_NOUN.search(line):
                print(
                    f"{path}:{number}: the citation was part of the sentence; reword it",
                    file=sys.stderr,
                )
        if args.check:
            remaining += 1
        elif args.dry_run:
            name = str(path.relative_to(ROOT) if path.is_relative_to(ROOT) else path)
            sys.stdout.writelines(
                difflib.unified_diff(
                    text.splitlines(keepends=True), new.splitlines(keepends=True), name, name
                )
            )
        else:
            path.write_text(new, encoding="utf-8")
    verb = "would change" if args.dry_run or args.check else "changed"
    print(f"{verb} {changed} file(s); {remaining} citation(s) left", file=sys.stderr)
    return 1 if args.check and remaining else 0


if __name__ == "__main__":
    sys.exit(main())
