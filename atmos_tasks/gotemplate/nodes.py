"""Parse tree nodes (Go's parse/node.go). `str(node)` is Go's `node.String()`: the source form
that execution errors quote (`at <.foo.bar>`)."""

from __future__ import annotations

from typing import Any

from .gofmt import quote


class Node:
    __slots__ = ("pos", "tree")

    def __init__(self, pos: int, tree: Any = None) -> None:
        self.pos = pos
        self.tree = tree

    def write(self, out: list[str], quote_text: bool = False) -> None:
        raise NotImplementedError

    def __str__(self) -> str:
        out: list[str] = []
        self.write(out)
        return "".join(out)

    def source(self, quote_text: bool = True) -> str:
        """The String() of Go's parse tests, where text nodes print quoted."""
        out: list[str] = []
        self.write(out, quote_text)
        return "".join(out)


class ListNode(Node):
    __slots__ = ("nodes",)

    def __init__(self, pos: int, tree: Any = None) -> None:
        super().__init__(pos, tree)
        self.nodes: list[Node] = []

    def write(self, out: list[str], quote_text: bool = False) -> None:
        for node in self.nodes:
            node.write(out, quote_text)


class TextNode(Node):
    __slots__ = ("text",)

    def __init__(self, pos: int, text: str, tree: Any = None) -> None:
        super().__init__(pos, tree)
        self.text = text

    def write(self, out: list[str], quote_text: bool = False) -> None:
        out.append(quote(self.text) if quote_text else self.text)


class CommentNode(Node):
    __slots__ = ("text",)

    def __init__(self, pos: int, text: str, tree: Any = None) -> None:
        super().__init__(pos, tree)
        self.text = text

    def write(self, out: list[str], quote_text: bool = False) -> None:
        out.append("{{" + self.text + "}}")


class VariableNode(Node):
    __slots__ = ("ident",)

    def __init__(self, pos: int, ident: str, tree: Any = None) -> None:
        super().__init__(pos, tree)
        self.ident = ident.split(".")

    def write(self, out: list[str], quote_text: bool = False) -> None:
        out.append(".".join(self.ident))


class PipeNode(Node):
    __slots__ = ("cmds", "decl", "is_assign", "line")

    def __init__(self, pos: int, line: int, tree: Any = None) -> None:
        super().__init__(pos, tree)
        self.line = line
        self.is_assign = False
        self.decl: list[VariableNode] = []
        self.cmds: list[CommandNode] = []

    def write(self, out: list[str], quote_text: bool = False) -> None:
        if self.decl:
            for index, variable in enumerate(self.decl):
                if index:
                    out.append(", ")
                variable.write(out)
            out.append(" = " if self.is_assign else " := ")
        for index, cmd in enumerate(self.cmds):
            if index:
                out.append(" | ")
            cmd.write(out, quote_text)


class ActionNode(Node):
    __slots__ = ("line", "pipe")

    def __init__(self, pos: int, line: int, pipe: PipeNode, tree: Any = None) -> None:
        super().__init__(pos, tree)
        self.line = line
        self.pipe = pipe

    def write(self, out: list[str], quote_text: bool = False) -> None:
        out.append("{{")
        self.pipe.write(out, quote_text)
        out.append("}}")


class CommandNode(Node):
    __slots__ = ("args",)

    def __init__(self, pos: int, tree: Any = None) -> None:
        super().__init__(pos, tree)
        self.args: list[Node] = []

    def write(self, out: list[str], quote_text: bool = False) -> None:
        for index, arg in enumerate(self.args):
            if index:
                out.append(" ")
            if isinstance(arg, PipeNode):
                out.append("(")
                arg.write(out, quote_text)
                out.append(")")
            else:
                arg.write(out, quote_text)


class IdentifierNode(Node):
    __slots__ = ("ident",)

    def __init__(self, pos: int, ident: str, tree: Any = None) -> None:
        super().__init__(pos, tree)
        self.ident = ident

    def write(self, out: list[str], quote_text: bool = False) -> None:
        out.append(self.ident)


class DotNode(Node):
    __slots__ = ()

    def write(self, out: list[str], quote_text: bool = False) -> None:
        out.append(".")


class NilNode(Node):
    __slots__ = ()

    def write(self, out: list[str], quote_text: bool = False) -> None:
        out.append("nil")


class FieldNode(Node):
    __slots__ = ("ident",)

    def __init__(self, pos: int, ident: str, tree: Any = None) -> None:
        super().__init__(pos, tree)
        self.ident = ident[1:].split(".")

    def write(self, out: list[str], quote_text: bool = False) -> None:
        for ident in self.ident:
            out.append("." + ident)


class ChainNode(Node):
    __slots__ = ("field", "node")

    def __init__(self, pos: int, node: Node, tree: Any = None) -> None:
        super().__init__(pos, tree)
        self.node = node
        self.field: list[str] = []

    def add(self, field: str) -> None:
        self.field.append(field[1:])

    def write(self, out: list[str], quote_text: bool = False) -> None:
        if isinstance(self.node, PipeNode):
            out.append("(")
            self.node.write(out, quote_text)
            out.append(")")
        else:
            self.node.write(out, quote_text)
        for field in self.field:
            out.append("." + field)


class BoolNode(Node):
    __slots__ = ("true",)

    def __init__(self, pos: int, true: bool, tree: Any = None) -> None:
        super().__init__(pos, tree)
        self.true = true

    def write(self, out: list[str], quote_text: bool = False) -> None:
        out.append("true" if self.true else "false")


class NumberNode(Node):
    """A number constant, with every Go type that can represent it (Go's ideal constants)."""

    __slots__ = (
        "complex128",
        "float64",
        "int64",
        "is_complex",
        "is_float",
        "is_int",
        "is_uint",
        "text",
        "uint64",
    )

    def __init__(self, pos: int, text: str, tree: Any = None) -> None:
        super().__init__(pos, tree)
        self.text = text
        self.is_int = self.is_uint = self.is_float = self.is_complex = False
        self.int64 = 0
        self.uint64 = 0
        self.float64 = 0.0
        self.complex128 = 0j

    def write(self, out: list[str], quote_text: bool = False) -> None:
        out.append(self.text)


class StringNode(Node):
    __slots__ = ("quoted", "text")

    def __init__(self, pos: int, quoted: str, text: str, tree: Any = None) -> None:
        super().__init__(pos, tree)
        self.quoted = quoted
        self.text = text

    def write(self, out: list[str], quote_text: bool = False) -> None:
        out.append(self.quoted)


class EndNode(Node):
    __slots__ = ()

    def write(self, out: list[str], quote_text: bool = False) -> None:
        out.append("{{end}}")


class ElseNode(Node):
    __slots__ = ("line",)

    def __init__(self, pos: int, line: int, tree: Any = None) -> None:
        super().__init__(pos, tree)
        self.line = line

    def write(self, out: list[str], quote_text: bool = False) -> None:
        out.append("{{else}}")


class BranchNode(Node):
    __slots__ = ("else_list", "line", "list", "pipe")
    keyword = ""

    def __init__(
        self,
        pos: int,
        line: int,
        pipe: PipeNode,
        body: ListNode,
        else_list: ListNode | None,
        tree: Any = None,
    ) -> None:
        super().__init__(pos, tree)
        self.line = line
        self.pipe = pipe
        self.list = body
        self.else_list = else_list

    def write(self, out: list[str], quote_text: bool = False) -> None:
        out.append("{{" + self.keyword + " ")
        self.pipe.write(out, quote_text)
        out.append("}}")
        self.list.write(out, quote_text)
        if self.else_list is not None:
            out.append("{{else}}")
            self.else_list.write(out, quote_text)
        out.append("{{end}}")


class IfNode(BranchNode):
    __slots__ = ()
    keyword = "if"


class RangeNode(BranchNode):
    __slots__ = ()
    keyword = "range"


class WithNode(BranchNode):
    __slots__ = ()
    keyword = "with"


class BreakNode(Node):
    __slots__ = ("line",)

    def __init__(self, pos: int, line: int, tree: Any = None) -> None:
        super().__init__(pos, tree)
        self.line = line

    def write(self, out: list[str], quote_text: bool = False) -> None:
        out.append("{{break}}")


class ContinueNode(Node):
    __slots__ = ("line",)

    def __init__(self, pos: int, line: int, tree: Any = None) -> None:
        super().__init__(pos, tree)
        self.line = line

    def write(self, out: list[str], quote_text: bool = False) -> None:
        out.append("{{continue}}")


class TemplateNode(Node):
    __slots__ = ("line", "name", "pipe")

    def __init__(self, pos: int, line: int, name: str, pipe: PipeNode | None, tree: Any = None) -> None:
        super().__init__(pos, tree)
        self.line = line
        self.name = name
        self.pipe = pipe

    def write(self, out: list[str], quote_text: bool = False) -> None:
        out.append("{{template " + quote(self.name))
        if self.pipe is not None:
            out.append(" ")
            self.pipe.write(out, quote_text)
        out.append("}}")
