"""Sphinx configuration of the appsync-events documentation.

Why Sphinx (and not MkDocs): the API reference is generated from the Google-style
docstrings the code already has (``autodoc`` + ``napoleon``), code examples are kept as
files that the test suite runs and that the pages include (``literalinclude``), the
``doctest`` builder can run the short snippets, and ``intersphinx`` links names to the
Python, aiohttp and websockets documentation.  The build runs with warnings as errors
(``tests/test_docs.py``).

Build::

    python -m sphinx -W --keep-going -b html docs docs/_build/html

Set ``APPSYNC_DOCS_OFFLINE=1`` to build without network access (the intersphinx
inventories are then not fetched, and links into other projects' docs are left out).
"""

from __future__ import annotations

import argparse
import importlib.util
import os
import sys
import textwrap
from pathlib import Path
from types import ModuleType

ROOT = Path(__file__).resolve().parent.parent
# The packages are importable from a checkout without installing them.
for folder in ("src", "emulator"):
    path = str(ROOT / folder)
    if path not in sys.path:
        sys.path.insert(0, path)

project = "appsync-events"
author = "the appsync-events authors"
copyright = "the appsync-events authors"

extensions = [
    "sphinx.ext.autodoc",
    "sphinx.ext.napoleon",
    "sphinx.ext.doctest",
    "sphinx.ext.intersphinx",
    "sphinx.ext.viewcode",
]

exclude_patterns = ["_build", "_generated", "README.md", "section-map.txt", "**/*_example.py"]
templates_path: list[str] = []
html_static_path: list[str] = []
html_theme = "alabaster"
html_title = "appsync-events"
default_role = "literal"
root_doc = "index"

# -- autodoc / napoleon -----------------------------------------------------------------
autodoc_member_order = "bysource"
autodoc_typehints = "description"
autodoc_default_options = {"members": True, "show-inheritance": True}
napoleon_google_docstring = True
napoleon_numpy_docstring = False
napoleon_use_rtype = False
napoleon_attr_annotations = True

# -- intersphinx ------------------------------------------------------------------------
intersphinx_mapping = {
    "python": ("https://docs.python.org/3", None),
    "aiohttp": ("https://docs.aiohttp.org/en/stable", None),
    "websockets": ("https://websockets.readthedocs.io/en/stable", None),
    "pytest": ("https://docs.pytest.org/en/stable", None),
}
if os.environ.get("APPSYNC_DOCS_OFFLINE"):
    intersphinx_mapping = {}

# -- doctest ----------------------------------------------------------------------------
# ``.. doctest::`` blocks, and plain ``>>>`` blocks in pages and docstrings, run with
# ``-b doctest`` (tests/test_docs.py does, after the HTML build); they import from the
# checkout, like autodoc.


# -- docstrings ---------------------------------------------------------------------------
def _fix_docstring(
    app: object, what: str, name: str, obj: object, options: object, lines: list[str]
) -> None:
    # Section citations, and the "docs: page.rst, "Title"" references that replace them
    # in the code, become links to the documentation's sections.
    lines[:] = citations.link_docstring(lines, SECTION_MAP)


def _load_citations() -> ModuleType:
    path = Path(__file__).resolve().parent / "replace_citations.py"
    spec = importlib.util.spec_from_file_location("replace_citations", path)
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up
    spec.loader.exec_module(module)
    return module


citations = _load_citations()
SECTION_MAP = citations.load_map()


# -- generated pages ---------------------------------------------------------------------
# The CLI reference and the example configuration are generated from the code at every
# build, so they cannot drift from it.  They are written to docs/_generated/ (ignored by
# git) before Sphinx reads the sources.
GENERATED = Path(__file__).resolve().parent / "_generated"


def _write_if_changed(path: Path, text: str) -> None:
    # Rewriting an unchanged file would make Sphinx re-read every page that includes it;
    # the rename makes the write atomic when two builds run at once (pytest-xdist).
    if not path.exists() or path.read_text(encoding="utf-8") != text:
        temporary = path.with_name(f".{path.name}.{os.getpid()}")
        temporary.write_text(text, encoding="utf-8")
        os.replace(temporary, path)


def _help_text(parser: argparse.ArgumentParser) -> str:
    return parser.format_help().rstrip() + "\n"


def _write_help(folder: Path, prefix: str, parser: argparse.ArgumentParser) -> None:
    """Write ``PREFIX-help.txt`` and ``PREFIX-subcommands.rst`` (one section per subcommand)."""
    _write_if_changed(folder / f"{prefix}-help.txt", _help_text(parser))
    sections = []
    for action in parser._actions:  # argparse has no public way to list subparsers
        if isinstance(action, argparse._SubParsersAction):
            for name, sub in action.choices.items():
                block = textwrap.indent(_help_text(sub), "   ")
                title = f"``{name}``"
                sections.append(f"{title}\n{'~' * len(title)}\n\n.. code-block:: text\n\n{block}")
    _write_if_changed(folder / f"{prefix}-subcommands.rst", "\n".join(sections))


def generate_cli_pages(folder: Path = GENERATED) -> None:
    """Write the ``--help`` of both commands and their subcommands, and the example config."""
    from appsync_emulator import cli
    from appsync_events import cli as client_cli

    folder.mkdir(exist_ok=True)
    previous = os.environ.get("COLUMNS")
    os.environ["COLUMNS"] = "88"  # argparse wraps to the terminal width
    try:
        _write_help(folder, "cli", cli.build_parser())
        _write_help(folder, "client-cli", client_cli.build_parser())
    finally:
        if previous is None:
            del os.environ["COLUMNS"]
        else:
            os.environ["COLUMNS"] = previous
    _write_if_changed(folder / "example-config.toml", cli.EXAMPLE_CONFIG)


def setup(app: object) -> dict[str, object]:
    generate_cli_pages()
    app.connect("autodoc-process-docstring", _fix_docstring)  # type: ignore[attr-defined]
    return {"parallel_read_safe": True}
