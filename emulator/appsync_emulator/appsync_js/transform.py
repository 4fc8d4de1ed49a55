"""Turn an APPSYNC_JS handler module into a script, refusing what the runtime forbids.

The embedded engine runs scripts, not ES modules, so :func:`compile_module` rewrites the
file with a real parser (tree-sitter-javascript) into one expression::

    (function (__require, util, runtime, extensions, console) { return (function () {
    "use strict"; ...the module, imports turned into __require()...
    ;return { onPublish: onPublish, ... }; })(); })

Line numbers are kept, so V8 stack traces and load errors point into the user's file.
``util``, ``runtime`` and ``extensions`` are also parameters because "Supported runtime
features", section "Globals", lists them as globals: the AWS examples call
``util.error(...)`` without importing it.

Before that, :func:`check_source` enforces the restrictions of
:data:`RESTRICTIONS`; every violation is reported with its line, all at once.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Final, Protocol

__all__ = [
    "MAX_CODE_CHARS",
    "RESTRICTIONS",
    "CodeError",
    "JsCodeError",
    "Restriction",
    "check_source",
    "compile_module",
]

MAX_CODE_CHARS: Final = 32_768
"""``ChannelNamespace.codeHandlers`` length limit (AWS AppSync API Reference,
"ChannelNamespace": Length Constraints: Minimum length of 1, maximum length of 32768)."""


@dataclass(frozen=True, slots=True)
class Restriction:
    """One documented APPSYNC_JS restriction that the emulator checks at load time."""

    rule: str
    """A short id, as in ``@aws-appsync/eslint-plugin`` where it has a rule of that name."""
    message: str
    source: str
    """The AWS page that documents it."""


_FEATURES: Final = "Supported runtime features (eventapi/runtime-supported-features.html)"
_ESLINT: Final = "Configuring utilities for APPSYNC_JS (eventapi/configure-utilities.html)"
_API: Final = "AWS AppSync API Reference, ChannelNamespace (APIReference/API_ChannelNamespace.html)"

RESTRICTIONS: Final[tuple[Restriction, ...]] = (
    Restriction("code-size", "the code is longer than 32768 characters", _API),
    Restriction("syntax", "the code does not parse as an ES module", _FEATURES),
    Restriction("no-try", "try/catch/finally is not supported", _FEATURES),
    Restriction("no-throw", "throw is not supported: use util.error()", _FEATURES),
    Restriction("no-continue", "continue is not supported", _FEATURES),
    Restriction("no-while", "while and do-while loops are not supported", _FEATURES),
    Restriction("no-for", "for(;;) is not supported (for-in and for-of are)", _FEATURES),
    Restriction("no-labels", "labeled statements are not supported", _FEATURES),
    Restriction(
        "no-disallowed-unary-operators", "the ++, -- and ~ operators are not supported", _FEATURES
    ),
    Restriction(
        "no-in-operator", "the in operator is not supported: use Object.hasOwn()", _FEATURES
    ),
    Restriction(
        "no-disallowed-binary-operators", "the instanceof operator is not supported", _ESLINT
    ),
    Restriction("no-async", "async functions are not supported", _FEATURES),
    Restriction("no-await", "await is not supported", _FEATURES),
    Restriction("no-promise", "promises are not supported", _FEATURES),
    Restriction("no-classes", "classes are not supported", _ESLINT),
    Restriction("no-generators", "generators are not supported", _ESLINT),
    Restriction("no-yield", "yield is not supported", _ESLINT),
    Restriction("no-this", "the this keyword is not supported", _ESLINT),
    Restriction("no-regex", "regular expression literals are not supported", _ESLINT),
    Restriction(
        "no-function-constructor", "function constructors (Function) are not supported", _FEATURES
    ),
    Restriction(
        "no-recursion", "recursive function calls are not supported (direct recursion)", _FEATURES
    ),
    Restriction(
        "no-re-exports", "export ... from is not supported (bundle the code first)", _FEATURES
    ),
)
"""Every restriction :func:`check_source` enforces, with the page that documents it.

Not checked, because no static check is reliable: passing a named function as an argument,
``apply``/``bind``/``call``, the list of supported built-in methods, indirect recursion."""

_BY_RULE: Final = {r.rule: r for r in RESTRICTIONS}

_NODE_RULES: Final = {
    "try_statement": "no-try",
    "throw_statement": "no-throw",
    "continue_statement": "no-continue",
    "while_statement": "no-while",
    "do_statement": "no-while",
    "for_statement": "no-for",
    "labeled_statement": "no-labels",
    "update_expression": "no-disallowed-unary-operators",
    "class_declaration": "no-classes",
    "class": "no-classes",
    "generator_function_declaration": "no-generators",
    "generator_function": "no-generators",
    "yield_expression": "no-yield",
    "await_expression": "no-await",
    "this": "no-this",
    "regex": "no-regex",
}
_ASYNC_CAPABLE: Final = frozenset(
    {"function_declaration", "function_expression", "arrow_function", "method_definition"}
)


@dataclass(frozen=True, slots=True)
class CodeError:
    """One problem in handler code, shaped like the AppSync API's ``CodeError``.

    (AWS AppSync API Reference, "CodeError": ``errorType``, ``value``, ``location`` with
    ``line``, ``column``, ``span``.)
    """

    error_type: str
    """``"PARSER_ERROR"`` for syntax, ``"UNSUPPORTED_FEATURE"`` for a restriction,
    ``"CODE_SIZE"`` for the length limit."""
    value: str
    line: int
    """1-based."""
    column: int
    """1-based."""
    span: int = 0
    rule: str | None = None

    def format(self, filename: str) -> str:
        """``file:line:column: message [rule]``."""
        suffix = f" [{self.rule}]" if self.rule else ""
        return f"{filename}:{self.line}:{self.column}: {self.value}{suffix}"


class JsCodeError(ValueError):
    """The handler code cannot be loaded: it has syntax errors or forbidden features.

    Attributes:
        filename: the file (or label) the code came from.
        errors: every problem found, in source order.
    """

    def __init__(self, filename: str, errors: tuple[CodeError, ...]) -> None:
        self.filename = filename
        self.errors = errors
        lines = "\n".join("  " + e.format(filename) for e in errors)
        super().__init__(f"The code contains one or more errors ({filename}):\n{lines}")

    def __reduce__(
        self,
    ) -> tuple[type[JsCodeError], tuple[str, tuple[CodeError, ...]], dict[str, object]]:
        return type(self), (self.filename, self.errors), self.__dict__


# --- parsing ------------------------------------------------------------------------------


class _Node(Protocol):
    """The part of ``tree_sitter.Node`` used here (typed without importing tree-sitter)."""

    @property
    def type(self) -> str: ...
    @property
    def text(self) -> bytes | None: ...
    @property
    def children(self) -> list[_Node]: ...
    @property
    def named_children(self) -> list[_Node]: ...
    @property
    def parent(self) -> _Node | None: ...
    @property
    def start_point(self) -> tuple[int, int]: ...
    @property
    def start_byte(self) -> int: ...
    @property
    def end_byte(self) -> int: ...
    @property
    def is_error(self) -> bool: ...
    @property
    def is_missing(self) -> bool: ...
    def child_by_field_name(self, name: str, /) -> _Node | None: ...


class _Tree(Protocol):
    @property
    def root_node(self) -> _Node: ...


class _Parser(Protocol):
    """The part of ``tree_sitter.Parser`` used here."""

    def parse(self, source: bytes, /) -> _Tree: ...


_parser: _Parser | None = None


def _get_parser() -> _Parser:
    global _parser
    if _parser is None:
        from ._deps import require_tree_sitter

        tree_sitter, grammar = require_tree_sitter()
        _parser = tree_sitter.Parser(tree_sitter.Language(grammar.language()))
    return _parser


def _walk(node: _Node) -> Iterator[_Node]:
    yield node
    for child in node.children:
        yield from _walk(child)


def _error_at(node: _Node, error_type: str, value: str, rule: str | None = None) -> CodeError:
    line, column = node.start_point
    return CodeError(
        error_type=error_type,
        value=value,
        line=line + 1,
        column=column + 1,
        span=node.end_byte - node.start_byte,
        rule=rule,
    )


def _violation(node: _Node, rule: str) -> CodeError:
    return _error_at(node, "UNSUPPORTED_FEATURE", _BY_RULE[rule].message, rule)


def _text(node: _Node | None) -> str:
    return "" if node is None else (node.text or b"").decode()


def _rule_for(node: _Node) -> str | None:
    # One case per node kind that a restriction names.  Most map one-to-one (the table);
    # operators and "async" are tokens inside the node, and Function/Promise are
    # identifiers in a call, `new` or member position.
    kind = node.type
    if kind in _NODE_RULES:
        return _NODE_RULES[kind]
    if kind == "unary_expression" and _text(node.child_by_field_name("operator")) == "~":
        return "no-disallowed-unary-operators"
    if kind == "binary_expression":
        operator = _text(node.child_by_field_name("operator"))
        if operator == "in":
            return "no-in-operator"
        if operator == "instanceof":
            return "no-disallowed-binary-operators"
    if kind in _ASYNC_CAPABLE and any(child.type == "async" for child in node.children):
        return "no-async"
    if kind == "method_definition" and any(child.type == "*" for child in node.children):
        return "no-generators"
    if kind == "identifier" and node.parent is not None:
        name, parent = _text(node), node.parent
        if name == "Function" and parent.type in ("new_expression", "call_expression"):
            return "no-function-constructor"
        if name == "Promise" and parent.type in (
            "new_expression",
            "call_expression",
            "member_expression",
        ):
            return "no-promise"
    return None


def _recursive_calls(root: _Node) -> Iterator[_Node]:
    """Calls of a function to itself by name, directly inside its own body."""
    for node in _walk(root):
        name_node: _Node | None = None
        body: _Node | None = None
        if node.type == "function_declaration":
            name_node, body = node.child_by_field_name("name"), node.child_by_field_name("body")
        elif node.type == "variable_declarator":
            value = node.child_by_field_name("value")
            if value is not None and value.type in ("arrow_function", "function_expression"):
                name_node, body = node.child_by_field_name("name"), value
        if name_node is None or body is None or name_node.type != "identifier":
            continue
        name = _text(name_node)
        for inner in _walk(body):
            callee = (
                inner.child_by_field_name("function") if inner.type == "call_expression" else None
            )
            if callee is not None and callee.type == "identifier" and _text(callee) == name:
                yield inner


def check_source(source: str) -> tuple[CodeError, ...]:
    """Every syntax error and forbidden feature in ``source``, in source order.

    Raises:
        ImportError: tree-sitter is not installed (the message names the extra).
    """
    if len(source) > MAX_CODE_CHARS:
        return (
            CodeError(
                error_type="CODE_SIZE",
                value=(
                    "1 validation error detected: Value at 'codeHandlers' failed to satisfy "
                    f"constraint: Member must have length less than or equal to {MAX_CODE_CHARS}"
                ),
                line=1,
                column=1,
                rule="code-size",
            ),
        )
    tree = _get_parser().parse(source.encode())
    errors: list[CodeError] = []
    for node in _walk(tree.root_node):
        if node.is_missing:
            errors.append(_error_at(node, "PARSER_ERROR", f"missing {node.type}", "syntax"))
        elif node.is_error:
            errors.append(_error_at(node, "PARSER_ERROR", "unexpected token", "syntax"))
        elif (rule := _rule_for(node)) is not None:
            errors.append(_violation(node, rule))
        elif node.type == "export_statement" and node.child_by_field_name("source"):
            errors.append(_violation(node, "no-re-exports"))
    errors.extend(_violation(call, "no-recursion") for call in _recursive_calls(tree.root_node))
    errors.sort(key=lambda e: (e.line, e.column))
    return tuple(errors)


# --- the rewrite --------------------------------------------------------------------------


def _field(node: _Node, name: str) -> _Node:
    child = node.child_by_field_name(name)
    assert child is not None, f"{node.type} has no {name}"  # the parse had no error
    return child


def _bound_names(node: _Node) -> list[str]:
    """Names bound by ``a``, ``{a, b: c}``, ``[a, ...b]``, ``{a = 1}``."""
    if node.type in ("identifier", "shorthand_property_identifier_pattern"):
        return [_text(node)]
    if node.type == "pair_pattern":
        return _bound_names(_field(node, "value"))
    if node.type in ("assignment_pattern", "object_assignment_pattern"):
        return _bound_names(_field(node, "left"))
    return [name for child in node.named_children for name in _bound_names(child)]


def _import_replacement(stmt: _Node) -> str:
    spec = json.dumps(_text(_field(stmt, "source"))[1:-1])
    consts = []
    for clause in (c for c in stmt.named_children if c.type == "import_clause"):
        for part in clause.named_children:
            if part.type == "identifier":  # import d from '...'
                consts.append(f"const {_text(part)} = __require({spec}).default;")
            elif part.type == "namespace_import":  # import * as ns from '...'
                consts.append(f"const {_text(part.named_children[-1])} = __require({spec});")
            else:  # import { a, b as c } from '...'
                pairs = []
                for spec_node in part.named_children:
                    alias = spec_node.child_by_field_name("alias")
                    name = _text(_field(spec_node, "name"))
                    pairs.append(f"{name}: {_text(alias)}" if alias else name)
                consts.append(f"const {{ {', '.join(pairs)} }} = __require({spec});")
    return " ".join(consts) or f"__require({spec});"  # bare `import '...'`


def _export_edits(stmt: _Node, exports: dict[str, str]) -> list[tuple[int, int, str]]:
    is_default = any(c.type == "default" for c in stmt.children)
    decl, value = stmt.child_by_field_name("declaration"), stmt.child_by_field_name("value")
    if decl is not None:  # export [default] function f / const a = ...
        if decl.type in ("lexical_declaration", "variable_declaration"):
            for d in (d for d in decl.named_children if d.type == "variable_declarator"):
                exports.update((n, n) for n in _bound_names(_field(d, "name")))
        else:
            name = _text(_field(decl, "name"))
            exports["default" if is_default else name] = name
        return [(stmt.start_byte, decl.start_byte, "")]
    if value is not None:  # export default <expression>
        exports["default"] = "__default"
        return [
            (stmt.start_byte, value.start_byte, "const __default = ("),
            (value.end_byte, stmt.end_byte, ");"),
        ]
    for clause in (c for c in stmt.named_children if c.type == "export_clause"):
        for spec_node in clause.named_children:  # export { a, b as c };
            exported = spec_node.child_by_field_name("alias") or _field(spec_node, "name")
            exports[_text(exported)] = _text(_field(spec_node, "name"))
    return [(stmt.start_byte, stmt.end_byte, "")]


PRELUDE_PARAMS: Final = "__require, util, runtime, extensions, console"
"""The parameters of the factory: what the prelude passes to every handler module."""


def compile_module(source: str, filename: str) -> tuple[str, tuple[str, ...]]:
    """Check ``source`` and rewrite it into a factory expression.

    Returns:
        ``(script, exported names)``; evaluating the script gives a function of
        :data:`PRELUDE_PARAMS` that returns the module's exports.

    Raises:
        JsCodeError: a syntax error or a forbidden feature (see :data:`RESTRICTIONS`).
        ImportError: tree-sitter is not installed.
    """
    errors = check_source(source)
    if errors:
        raise JsCodeError(filename, errors)
    src = source.encode()
    tree = _get_parser().parse(src)
    edits: list[tuple[int, int, str]] = []
    exports: dict[str, str] = {}
    for stmt in tree.root_node.named_children:
        if stmt.type == "import_statement":
            edits.append((stmt.start_byte, stmt.end_byte, _import_replacement(stmt)))
        elif stmt.type == "export_statement":
            edits.extend(_export_edits(stmt, exports))
    out = bytearray(src)
    for start, end, new in sorted(edits, reverse=True):
        out[start:end] = (new + "\n" * src.count(b"\n", start, end)).encode()  # keep lines
    returned = ", ".join(f"{json.dumps(k)}: {v}" for k, v in exports.items())
    script = (
        f"(function ({PRELUDE_PARAMS}) {{ return (function () {{ "
        f'"use strict"; {out.decode()}\n;return {{ {returned} }};\n}})(); }})'
        f"\n//# sourceURL={filename}\n"
    )
    return script, tuple(exports)
