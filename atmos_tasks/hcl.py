"""What a Terraform file declares at its top level, read fast.

Compilation and records read a few facts from HCL files: the variables a module declares and
which are sensitive, the providers a lock file pins, the modules a configuration calls. They are
read with tree-sitter's HCL grammar (a C parser, ready in about 2 ms), not python-hcl2, whose Lark
parser takes about 0.25 s to load before its first file: a cost every fresh CI runner paid once per
process. A file tree-sitter does not read cleanly — a syntax error, a label with an escape — is
read by python-hcl2 instead, so what either returns for a file is what python-hcl2 returned.

`load(text, kinds)` gives python-hcl2's shape for the one-label blocks of the given kinds:
`{"variable": [{"name": {"attribute": value}}]}`, values as literals (str without quotes, int,
float, bool, None, lists of those) and `EXPRESSION` for anything that is not one.
"""

from __future__ import annotations

from functools import cache
from typing import Any

__all__ = ["EXPRESSION", "load"]


class _Expression:
    """An attribute whose value is not a literal (a reference, a call, a template, an object)."""

    def __repr__(self) -> str:
        return "EXPRESSION"


EXPRESSION: Any = _Expression()


class _NotPlain(Exception):
    """tree-sitter's reading of a file is not certain to be python-hcl2's: read it with that."""


@cache
def _parser() -> Any:
    import tree_sitter_hcl
    from tree_sitter import Language, Parser

    return Parser(Language(tree_sitter_hcl.language()))


def load(text: str, kinds: tuple[str, ...]) -> dict[str, list[dict[str, dict[str, Any]]]]:
    """The top-level one-label blocks of `kinds` in an HCL file; raises what python-hcl2 raises on
    a file that is not HCL."""
    try:
        return _read(text, kinds)
    except _NotPlain:
        return _with_hcl2(text, kinds)


def _with_hcl2(text: str, kinds: tuple[str, ...]) -> dict[str, list[dict[str, dict[str, Any]]]]:
    import hcl2

    parsed = hcl2.loads(text)
    found: dict[str, list[dict[str, dict[str, Any]]]] = {}
    for kind in kinds:
        blocks = []
        for block in parsed.get(kind) or []:
            if isinstance(block, dict):
                blocks.append({_unquoted(k): v for k, v in block.items()})
        if blocks:
            found[kind] = blocks
    return found


def _unquoted(text: str) -> str:
    return text[1:-1] if len(text) >= 2 and text[0] == text[-1] == '"' else text


def _read(text: str, kinds: tuple[str, ...]) -> dict[str, list[dict[str, dict[str, Any]]]]:
    tree = _parser().parse(text.encode())
    root = tree.root_node
    if root.has_error:
        raise _NotPlain
    found: dict[str, list[dict[str, dict[str, Any]]]] = {}
    body = next((child for child in root.named_children if child.type == "body"), None)
    for block in body.named_children if body is not None else ():
        if block.type != "block":
            continue
        parts = block.named_children
        kind = parts[0].text.decode()
        if kind not in kinds:
            continue
        labels = [_label(part) for part in parts[1:] if part.type in ("string_lit", "identifier")]
        if len(labels) != 1:
            raise _NotPlain  # not the block Terraform knows by that name: let python-hcl2 say what it is
        inner = next((part for part in parts if part.type == "body"), None)
        attributes = {}
        for item in inner.named_children if inner is not None else ():
            if item.type == "attribute":
                name, expression = item.named_children[0], item.named_children[-1]
                attributes[name.text.decode()] = _value(expression)
        found.setdefault(kind, []).append({labels[0]: attributes})
    return found


def _label(node: Any) -> str:
    if node.type == "identifier":
        return str(node.text.decode())
    literal = _string(node)
    if literal is EXPRESSION:
        raise _NotPlain
    return str(literal)


def _string(node: Any) -> Any:
    """A quoted string without interpolation or escapes, else EXPRESSION."""
    inner = [
        child for child in node.children if child.type not in ("quoted_template_start", "quoted_template_end")
    ]
    if not inner:
        return ""
    if len(inner) != 1 or inner[0].type != "template_literal":
        return EXPRESSION
    text = inner[0].text.decode()
    if "\\" in text or "$${" in text or "%%{" in text:
        return EXPRESSION
    return text


def _value(expression: Any) -> Any:
    children = expression.named_children
    if expression.type != "expression" or len(children) != 1:
        return EXPRESSION
    node = children[0]
    if node.type == "literal_value":
        literal = node.named_children[0]
        if literal.type == "string_lit":
            return _string(literal)
        if literal.type == "bool_lit":
            return literal.text.decode() == "true"
        if literal.type == "null_lit":
            return None
        if literal.type == "numeric_lit":
            number = literal.text.decode()
            try:
                return int(number)
            except ValueError:
                return float(number)
        return EXPRESSION
    if (
        node.type == "template_expr"
        and node.named_children
        and node.named_children[0].type == "quoted_template"
    ):
        return _string(node.named_children[0])
    if node.type == "collection_value" and node.named_children and node.named_children[0].type == "tuple":
        items = [_value(item) for item in node.named_children[0].named_children if item.type == "expression"]
        return EXPRESSION if any(item is EXPRESSION for item in items) else items
    return EXPRESSION
