"""The parser of Go's text/template/parse (parse.go): same grammar, same checks, same messages.

Parse errors read `template: NAME:LINE: MESSAGE`, as Go's do; the column of the token where
parsing stopped is kept on the TemplateError as well.
"""

from __future__ import annotations

import re
from collections.abc import Collection
from typing import NoReturn

from . import nodes as n
from .errors import TemplateError
from .lexer import Item, Lexer, T

MAX_STACK_DEPTH = 10000
MAX_PIPELINE_CMDS = 100000


class _ParseError(Exception):
    def __init__(self, message: str, item: Item) -> None:
        super().__init__(message)
        self.message = message
        self.item = item


class Tree:
    """One parsed template (the top-level one or a `define`/`block`)."""

    def __init__(self, name: str, parse_name: str, text: str) -> None:
        self.name = name
        self.parse_name = parse_name
        self.text = text
        self.root: n.ListNode = n.ListNode(0, self)
        # parsing state
        self._lex: Lexer | None = None
        self._token: list[Item] = [Item(T.EOF, 0, "", 1)] * 3
        self._peek_count = 0
        self._vars: list[str] = ["$"]
        self._funcs: Collection[str] = ()
        self._tree_set: dict[str, Tree] = {}
        self._action_line = 0
        self._range_depth = 0
        self._stack_depth = 0

    # --- token stream ----------------------------------------------------------------------

    def _next(self) -> Item:
        if self._peek_count > 0:
            self._peek_count -= 1
        else:
            assert self._lex is not None
            self._token[0] = self._lex.next_item()
        return self._token[self._peek_count]

    def _backup(self) -> None:
        self._peek_count += 1

    def _backup2(self, t1: Item) -> None:
        self._token[1] = t1
        self._peek_count = 2

    def _backup3(self, t2: Item, t1: Item) -> None:
        self._token[1] = t1
        self._token[2] = t2
        self._peek_count = 3

    def _peek(self) -> Item:
        if self._peek_count > 0:
            return self._token[self._peek_count - 1]
        self._peek_count = 1
        assert self._lex is not None
        self._token[0] = self._lex.next_item()
        return self._token[0]

    def _next_non_space(self) -> Item:
        while True:
            token = self._next()
            if token.typ != T.SPACE:
                return token

    def _peek_non_space(self) -> Item:
        token = self._next_non_space()
        self._backup()
        return token

    # --- errors ----------------------------------------------------------------------------

    def _errorf(self, message: str) -> NoReturn:
        raise _ParseError(message, self._token[0])

    def _expect(self, expected: T, context: str) -> Item:
        token = self._next_non_space()
        if token.typ != expected:
            self._unexpected(token, context)
        return token

    def _expect_one_of(self, first: T, second: T, context: str) -> Item:
        token = self._next_non_space()
        if token.typ not in (first, second):
            self._unexpected(token, context)
        return token

    def _unexpected(self, token: Item, context: str) -> NoReturn:
        if token.typ == T.ERROR:
            extra = ""
            if self._action_line != 0 and self._action_line != token.line:
                extra = f" in action started at {self.parse_name}:{self._action_line}"
                if token.val.endswith(" action"):
                    extra = extra[len(" in action") :]
            self._errorf(f"{token}{extra}")
        self._errorf(f"unexpected {token} in {context}")

    # --- parsing ---------------------------------------------------------------------------

    def _start(self, funcs: Collection[str], lexer: Lexer, tree_set: dict[str, Tree]) -> None:
        self._lex = lexer
        self._vars = ["$"]
        self._funcs = funcs
        self._tree_set = tree_set
        self._stack_depth = 0

    def _stop(self) -> None:
        self._lex = None
        self._vars = []
        self._funcs = ()
        self._tree_set = {}

    def _add(self) -> None:
        existing = self._tree_set.get(self.name)
        if existing is None or is_empty_tree(existing.root):
            self._tree_set[self.name] = self
            return
        if not is_empty_tree(self.root):
            self._errorf(f"template: multiple definition of template {_quote(self.name)}")

    def _parse(self) -> None:
        self.root = n.ListNode(self._peek().pos, self)
        while self._peek().typ != T.EOF:
            if self._peek().typ == T.LEFT_DELIM:
                delim = self._next()
                if self._next_non_space().typ == T.DEFINE:
                    new_tree = Tree("definition", self.parse_name, self.text)
                    assert self._lex is not None
                    new_tree._start(self._funcs, self._lex, self._tree_set)
                    new_tree._token = self._token
                    new_tree._peek_count = self._peek_count
                    new_tree._parse_definition()
                    self._peek_count = new_tree._peek_count
                    continue
                self._backup2(delim)
            node = self._text_or_action()
            if isinstance(node, n.EndNode | n.ElseNode):
                self._errorf(f"unexpected {node}")
            self.root.nodes.append(node)

    def _parse_definition(self) -> None:
        context = "define clause"
        name = self._expect_one_of(T.STRING, T.RAW_STRING, context)
        self.name = self._unquote(name.val)
        self._expect(T.RIGHT_DELIM, context)
        self.root, end = self._item_list()
        if not isinstance(end, n.EndNode):
            self._errorf(f"unexpected {end} in {context}")
        self._add()

    def _item_list(self) -> tuple[n.ListNode, n.Node]:
        body = n.ListNode(self._peek_non_space().pos, self)
        while self._peek_non_space().typ != T.EOF:
            node = self._text_or_action()
            if isinstance(node, n.EndNode | n.ElseNode):
                return body, node
            body.nodes.append(node)
        self._errorf("unexpected EOF")
        raise AssertionError("unreachable")

    def _text_or_action(self) -> n.Node:
        token = self._next_non_space()
        if token.typ == T.TEXT:
            return n.TextNode(token.pos, token.val, self)
        if token.typ == T.LEFT_DELIM:
            self._action_line = token.line
            try:
                return self._action()
            finally:
                self._action_line = 0
        if token.typ == T.COMMENT:
            return n.CommentNode(token.pos, token.val, self)
        self._unexpected(token, "input")
        raise AssertionError("unreachable")

    def _action(self) -> n.Node:
        token = self._next_non_space()
        typ = token.typ
        if typ == T.BLOCK:
            return self._block_control()
        if typ == T.BREAK:
            return self._break_control(token.pos, token.line)
        if typ == T.CONTINUE:
            return self._continue_control(token.pos, token.line)
        if typ == T.ELSE:
            return self._else_control()
        if typ == T.END:
            return self._end_control()
        if typ == T.IF:
            return n.IfNode(*self._parse_control("if"), tree=self)
        if typ == T.RANGE:
            return n.RangeNode(*self._parse_control("range"), tree=self)
        if typ == T.TEMPLATE:
            return self._template_control()
        if typ == T.WITH:
            return n.WithNode(*self._parse_control("with"), tree=self)
        self._backup()
        token = self._peek()
        return n.ActionNode(token.pos, token.line, self._pipeline("command", T.RIGHT_DELIM), self)

    def _break_control(self, pos: int, line: int) -> n.Node:
        token = self._next_non_space()
        if token.typ != T.RIGHT_DELIM:
            self._unexpected(token, "{{break}}")
        if self._range_depth == 0:
            self._errorf("{{break}} outside {{range}}")
        return n.BreakNode(pos, line, self)

    def _continue_control(self, pos: int, line: int) -> n.Node:
        token = self._next_non_space()
        if token.typ != T.RIGHT_DELIM:
            self._unexpected(token, "{{continue}}")
        if self._range_depth == 0:
            self._errorf("{{continue}} outside {{range}}")
        return n.ContinueNode(pos, line, self)

    def _pipeline(self, context: str, end: T) -> n.PipeNode:
        token = self._peek_non_space()
        pipe = n.PipeNode(token.pos, token.line, self)
        while True:  # declarations
            v = self._peek_non_space()
            if v.typ != T.VARIABLE:
                break
            self._next()
            token_after_variable = self._peek()
            nxt = self._peek_non_space()
            if nxt.typ in (T.ASSIGN, T.DECLARE):
                pipe.is_assign = nxt.typ == T.ASSIGN
                self._next_non_space()
                pipe.decl.append(n.VariableNode(v.pos, v.val, self))
                self._vars.append(v.val)
            elif nxt.typ == T.CHAR and nxt.val == ",":
                self._next_non_space()
                pipe.decl.append(n.VariableNode(v.pos, v.val, self))
                self._vars.append(v.val)
                if context == "range" and len(pipe.decl) < 2:
                    if self._peek_non_space().typ in (T.VARIABLE, T.RIGHT_DELIM, T.RIGHT_PAREN):
                        continue  # second initialized variable in a range pipeline
                    self._errorf("range can only initialize variables")
                self._errorf(f"too many declarations in {context}")
            elif token_after_variable.typ == T.SPACE:
                self._backup3(v, token_after_variable)
            else:
                self._backup2(v)
            break
        while True:
            token = self._next_non_space()
            if token.typ == end:
                self._check_pipeline(pipe, context)
                return pipe
            if token.typ in (
                T.BOOL,
                T.CHAR_CONSTANT,
                T.COMPLEX,
                T.DOT,
                T.FIELD,
                T.IDENTIFIER,
                T.NUMBER,
                T.NIL,
                T.RAW_STRING,
                T.STRING,
                T.VARIABLE,
                T.LEFT_PAREN,
            ):
                self._backup()
                pipe.cmds.append(self._command())
                if len(pipe.cmds) > MAX_PIPELINE_CMDS:
                    self._errorf("pipeline too long")
            else:
                self._unexpected(token, context)

    def _check_pipeline(self, pipe: n.PipeNode, context: str) -> None:
        if not pipe.cmds:
            self._errorf(f"missing value for {context}")
        for index, cmd in enumerate(pipe.cmds[1:]):
            if isinstance(cmd.args[0], n.BoolNode | n.DotNode | n.NilNode | n.NumberNode | n.StringNode):
                self._errorf(f"non executable command in pipeline stage {index + 2}")

    def _parse_control(self, context: str) -> tuple[int, int, n.PipeNode, n.ListNode, n.ListNode | None]:
        mark = len(self._vars)
        try:
            pipe = self._pipeline(context, T.RIGHT_DELIM)
            if context == "range":
                self._range_depth += 1
            body, nxt = self._item_list()
            if context == "range":
                self._range_depth -= 1
            else_list: n.ListNode | None = None
            if isinstance(nxt, n.ElseNode):
                if context == "if" and self._peek().typ == T.IF:
                    self._next()
                    else_list = n.ListNode(nxt.pos, self)
                    else_list.nodes.append(n.IfNode(*self._parse_control("if"), tree=self))
                elif context == "with" and self._peek().typ == T.WITH:
                    self._next()
                    else_list = n.ListNode(nxt.pos, self)
                    else_list.nodes.append(n.WithNode(*self._parse_control("with"), tree=self))
                else:
                    else_list, nxt = self._item_list()
                    if not isinstance(nxt, n.EndNode):
                        self._errorf(f"expected end; found {nxt}")
            return pipe.pos, pipe.line, pipe, body, else_list
        finally:
            del self._vars[mark:]

    def _end_control(self) -> n.Node:
        return n.EndNode(self._expect(T.RIGHT_DELIM, "end").pos, self)

    def _else_control(self) -> n.Node:
        peek = self._peek_non_space()
        if peek.typ in (T.IF, T.WITH):
            return n.ElseNode(peek.pos, peek.line, self)
        token = self._expect(T.RIGHT_DELIM, "else")
        return n.ElseNode(token.pos, token.line, self)

    def _block_control(self) -> n.Node:
        context = "block clause"
        token = self._next_non_space()
        name = self._parse_template_name(token, context)
        pipe = self._pipeline(context, T.RIGHT_DELIM)
        block = Tree(name, self.parse_name, self.text)
        assert self._lex is not None
        block._start(self._funcs, self._lex, self._tree_set)
        block._token = self._token
        block._peek_count = self._peek_count
        block.root, end = block._item_list()
        if not isinstance(end, n.EndNode):
            self._errorf(f"unexpected {end} in {context}")
        block._add()
        self._peek_count = block._peek_count
        return n.TemplateNode(token.pos, token.line, name, pipe, self)

    def _template_control(self) -> n.Node:
        context = "template clause"
        token = self._next_non_space()
        name = self._parse_template_name(token, context)
        pipe = None
        if self._next_non_space().typ != T.RIGHT_DELIM:
            self._backup()
            pipe = self._pipeline(context, T.RIGHT_DELIM)
        return n.TemplateNode(token.pos, token.line, name, pipe, self)

    def _parse_template_name(self, token: Item, context: str) -> str:
        if token.typ in (T.STRING, T.RAW_STRING):
            return self._unquote(token.val)
        self._unexpected(token, context)
        raise AssertionError("unreachable")

    def _command(self) -> n.CommandNode:
        cmd = n.CommandNode(self._peek_non_space().pos, self)
        while True:
            self._peek_non_space()
            operand = self._operand()
            if operand is not None:
                cmd.args.append(operand)
            token = self._next()
            if token.typ == T.SPACE:
                continue
            if token.typ in (T.RIGHT_DELIM, T.RIGHT_PAREN):
                self._backup()
            elif token.typ != T.PIPE:
                self._unexpected(token, "operand")
            break
        if not cmd.args:
            self._errorf("empty command")
        return cmd

    def _operand(self) -> n.Node | None:
        node = self._term()
        if node is None:
            return None
        if self._peek().typ == T.FIELD:
            chain = n.ChainNode(self._peek().pos, node, self)
            while self._peek().typ == T.FIELD:
                chain.add(self._next().val)
            if isinstance(node, n.FieldNode):
                node = n.FieldNode(chain.pos, str(chain), self)
            elif isinstance(node, n.VariableNode):
                node = n.VariableNode(chain.pos, str(chain), self)
            elif isinstance(node, n.BoolNode | n.StringNode | n.NumberNode | n.NilNode | n.DotNode):
                self._errorf(f"unexpected . after term {_quote(str(node))}")
            else:
                node = chain
        return node

    def _term(self) -> n.Node | None:
        token = self._next_non_space()
        typ = token.typ
        if typ == T.IDENTIFIER:
            if token.val not in self._funcs:
                self._errorf(f"function {_quote(token.val)} not defined")
            return n.IdentifierNode(token.pos, token.val, self)
        if typ == T.DOT:
            return n.DotNode(token.pos, self)
        if typ == T.NIL:
            return n.NilNode(token.pos, self)
        if typ == T.VARIABLE:
            return self._use_var(token.pos, token.val)
        if typ == T.FIELD:
            return n.FieldNode(token.pos, token.val, self)
        if typ == T.BOOL:
            return n.BoolNode(token.pos, token.val == "true", self)
        if typ in (T.CHAR_CONSTANT, T.COMPLEX, T.NUMBER):
            try:
                return new_number(token.pos, token.val, typ, self)
            except ValueError as error:
                self._errorf(str(error))
        if typ == T.LEFT_PAREN:
            if self._stack_depth >= MAX_STACK_DEPTH:
                self._errorf("max expression depth exceeded")
            self._stack_depth += 1
            try:
                return self._pipeline("parenthesized pipeline", T.RIGHT_PAREN)
            finally:
                self._stack_depth -= 1
        if typ in (T.STRING, T.RAW_STRING):
            return n.StringNode(token.pos, token.val, self._unquote(token.val), self)
        self._backup()
        return None

    def _use_var(self, pos: int, name: str) -> n.Node:
        variable = n.VariableNode(pos, name, self)
        if variable.ident[0] in self._vars:
            return variable
        self._errorf(f"undefined variable {_quote(variable.ident[0])}")
        raise AssertionError("unreachable")

    def _unquote(self, text: str) -> str:
        try:
            return unquote(text)
        except ValueError:
            self._errorf("invalid syntax")
            raise AssertionError("unreachable") from None


def is_empty_tree(node: n.Node | None) -> bool:
    """Go's IsEmptyTree: nothing but space and comments."""
    if node is None or isinstance(node, n.CommentNode):
        return True
    if isinstance(node, n.ListNode):
        return all(is_empty_tree(child) for child in node.nodes)
    if isinstance(node, n.TextNode):
        return node.text.strip(" \t\n\r\v\f\x85\xa0") == ""
    return False


def _quote(text: str) -> str:
    from .gofmt import quote

    return quote(text)


def parse_trees(
    name: str,
    text: str,
    funcs: Collection[str],
    left: str = "{{",
    right: str = "}}",
    *,
    comments: bool = False,
) -> dict[str, Tree]:
    """Parse a text into its templates: the top-level one under `name`, plus every define."""
    tree = Tree(name, name, text)
    tree_set: dict[str, Tree] = {}
    lexer = Lexer(
        text,
        left,
        right,
        emit_comment=comments,
        break_ok="break" not in funcs,
        continue_ok="continue" not in funcs,
    )
    tree._start(funcs, lexer, tree_set)
    try:
        tree._parse()
        tree._add()
    except _ParseError as error:
        line = error.item.line
        prefix = text[: error.item.pos]
        newline = prefix.rfind("\n")
        column = len(prefix[newline + 1 :].encode("utf-8", "surrogatepass"))
        message = f"template: {name}:{line}: {error.message}"
        raise TemplateError(message, name=name, line=line, column=column, reason=error.message) from None
    finally:
        tree._stop()
    return tree_set


# --- literals (strconv) --------------------------------------------------------------------

_SIMPLE_ESCAPES = {"a": 7, "b": 8, "f": 12, "n": 10, "r": 13, "t": 9, "v": 11, "\\": 92}


def _unquote_char(text: str, i: int, quote_char: str) -> tuple[int, bool, int]:
    """strconv.UnquoteChar at text[i]: (value, is_byte, next index)."""
    char = text[i]
    if char == quote_char and quote_char in "'\"":
        raise ValueError("invalid syntax")
    if char != "\\":
        return ord(char), False, i + 1
    if i + 1 >= len(text):
        raise ValueError("invalid syntax")
    esc = text[i + 1]
    i += 2
    if esc in _SIMPLE_ESCAPES:
        return _SIMPLE_ESCAPES[esc], False, i
    if esc in "xuU":
        size = {"x": 2, "u": 4, "U": 8}[esc]
        digits = text[i : i + size]
        if len(digits) != size or not all(c in "0123456789abcdefABCDEF" for c in digits):
            raise ValueError("invalid syntax")
        value = int(digits, 16)
        if esc == "x":
            return value, True, i + size
        if value > 0x10FFFF or 0xD800 <= value <= 0xDFFF:
            raise ValueError("invalid syntax")
        return value, False, i + size
    if esc in "01234567":
        digits = text[i - 1 : i + 2]
        if len(digits) != 3 or not all(c in "01234567" for c in digits):
            raise ValueError("invalid syntax")
        value = int(digits, 8)
        if value > 255:
            raise ValueError("invalid syntax")
        return value, True, i + 2
    if esc in "'\"":
        if esc != quote_char:
            raise ValueError("invalid syntax")
        return ord(esc), False, i
    raise ValueError("invalid syntax")


def unquote(text: str) -> str:
    """strconv.Unquote for "double-quoted" and `raw` strings."""
    if len(text) < 2 or text[0] != text[-1] or text[0] not in "\"`'":
        raise ValueError("invalid syntax")
    quote_char = text[0]
    body = text[1:-1]
    if quote_char == "`":
        if "`" in body:
            raise ValueError("invalid syntax")
        return body.replace("\r", "")
    if "\n" in body:
        raise ValueError("invalid syntax")
    if "\\" not in body and quote_char not in body:
        if quote_char == "'" and len(body) != 1:
            raise ValueError("invalid syntax")
        return body
    out = bytearray()
    i = 0
    while i < len(body):
        value, is_byte, i = _unquote_char(body, i, quote_char)
        if is_byte:
            out.append(value)
        else:
            out.extend(chr(value).encode("utf-8", "surrogatepass"))
    return out.decode("utf-8", "replace")


def _underscore_ok(text: str) -> bool:
    saw = "^"
    i = 0
    if text[:1] in ("-", "+"):
        text = text[1:]
    hexadecimal = False
    if len(text) >= 2 and text[0] == "0" and text[1].lower() in "box":
        i = 2
        saw = "0"
        hexadecimal = text[1].lower() == "x"
    while i < len(text):
        char = text[i]
        if "0" <= char <= "9" or (hexadecimal and "a" <= char.lower() <= "f"):
            saw = "0"
        elif char == "_":
            if saw != "0":
                return False
            saw = "_"
        else:
            if saw == "_":
                return False
            saw = "!"
        i += 1
    return saw != "_"


_INT_BASES = {"x": 16, "o": 8, "b": 2}


def parse_int(text: str, signed: bool = True) -> int:
    """strconv.ParseInt(text, 0, 64) (ParseUint with signed=False)."""
    body = text
    negative = False
    if body[:1] in ("+", "-"):
        if not signed:
            raise ValueError("invalid syntax")
        negative = body[0] == "-"
        body = body[1:]
    if not body:
        raise ValueError("invalid syntax")
    base = 10
    if len(body) >= 2 and body[0] == "0" and body[1].lower() in _INT_BASES:
        base = _INT_BASES[body[1].lower()]
        digits = body[2:]
    elif len(body) >= 2 and body[0] == "0":
        base = 8
        digits = body[1:]
    else:
        digits = body
    if "_" in digits:
        if not _underscore_ok(text):
            raise ValueError("invalid syntax")
        digits = digits.replace("_", "")
    if not digits or not all(
        c in "0123456789abcdefABCDEF"[: base if base <= 10 else base + 6] for c in digits
    ):
        raise ValueError("invalid syntax")
    value = int(digits, base)
    if negative:
        value = -value
    if signed and not -(1 << 63) <= value < (1 << 63):
        raise ValueError("value out of range")
    if not signed and value >= 1 << 64:
        raise ValueError("value out of range")
    return value


_DECIMAL_FLOAT = re.compile(r"[+-]?(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?\Z")
_HEX_FLOAT = re.compile(r"[+-]?0[xX](?:[0-9a-fA-F]+\.?[0-9a-fA-F]*|\.[0-9a-fA-F]+)[pP][+-]?\d+\Z")


def parse_float(text: str) -> float:
    """strconv.ParseFloat(text, 64) for Go's literal syntax (decimal and hexadecimal)."""
    body = text
    if "_" in body:
        if not _underscore_ok(body):
            raise ValueError("invalid syntax")
        body = body.replace("_", "")
    if _DECIMAL_FLOAT.match(body):
        value = float(body)
    elif _HEX_FLOAT.match(body):
        sign = -1.0 if body.startswith("-") else 1.0
        value = sign * float.fromhex(body.lstrip("+-"))
    else:
        raise ValueError("invalid syntax")
    if value in (float("inf"), float("-inf")):
        raise ValueError("value out of range")
    return value


def _simplify_complex(node: n.NumberNode) -> None:
    node.is_float = node.complex128.imag == 0
    if node.is_float:
        node.float64 = node.complex128.real
        node.is_int = node.float64 == int(node.float64) and -(1 << 63) <= node.float64 < (1 << 63)
        if node.is_int:
            node.int64 = int(node.float64)
        node.is_uint = node.float64 == int(node.float64) and 0 <= node.float64 < (1 << 64)
        if node.is_uint:
            node.uint64 = int(node.float64)


def new_number(pos: int, text: str, typ: T, tree: Tree | None = None) -> n.NumberNode:
    """Go's newNumber: every type the constant fits, or ValueError with Go's message."""
    node = n.NumberNode(pos, text, tree)
    if typ == T.CHAR_CONSTANT:
        body = text[1:]
        if not body:
            raise ValueError("invalid syntax")
        value, _, i = _unquote_char(body, 0, "'")
        if body[i:] != "'":
            raise ValueError(f"malformed character constant: {text}")
        node.int64 = node.uint64 = value
        node.float64 = float(value)
        node.is_int = node.is_uint = node.is_float = True
        return node
    if typ == T.COMPLEX:
        try:
            node.complex128 = complex(text.replace("_", "").replace("i", "j"))
        except ValueError:
            raise ValueError(f"expected integer; found {text}") from None
        node.is_complex = True
        _simplify_complex(node)
        return node
    if text.endswith("i"):
        try:
            node.complex128 = complex(0, parse_float(text[:-1]))
        except ValueError:
            pass
        else:
            node.is_complex = True
            _simplify_complex(node)
            return node
    try:
        node.uint64 = parse_int(text, signed=False)
        node.is_uint = True
    except ValueError:
        pass
    try:
        node.int64 = parse_int(text)
        node.is_int = True
        if node.int64 == 0:
            node.is_uint = True
            node.uint64 = 0
    except ValueError:
        pass
    if node.is_int:
        node.is_float = True
        node.float64 = float(node.int64)
    elif node.is_uint:
        node.is_float = True
        node.float64 = float(node.uint64)
    else:
        try:
            parsed = parse_float(text)
        except ValueError:
            pass
        else:
            if not any(c in text for c in ".eEpP"):
                raise ValueError(f"integer overflow: {_quote(text)}")
            node.is_float = True
            node.float64 = parsed
            if parsed == int(parsed) and -(1 << 63) <= parsed < (1 << 63):
                node.is_int = True
                node.int64 = int(parsed)
            if parsed == int(parsed) and 0 <= parsed < (1 << 64):
                node.is_uint = True
                node.uint64 = int(parsed)
    if not (node.is_int or node.is_uint or node.is_float):
        raise ValueError(f"illegal number syntax: {_quote(text)}")
    return node
