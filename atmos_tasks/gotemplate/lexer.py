"""The lexer of Go's text/template/parse (lex.go), state for state.

Positions are indices into the Python string (Go counts bytes; the executor converts to bytes
where Go's messages show a column). Trim markers (`{{- ` and ` -}}`) are handled here, as in Go:
the parser never sees the trimmed space.
"""

from __future__ import annotations

from collections.abc import Callable
from enum import IntEnum
from typing import NamedTuple


class T(IntEnum):
    ERROR = 0
    BOOL = 1
    CHAR = 2
    CHAR_CONSTANT = 3
    COMMENT = 4
    COMPLEX = 5
    ASSIGN = 6
    DECLARE = 7
    EOF = 8
    FIELD = 9
    IDENTIFIER = 10
    LEFT_DELIM = 11
    LEFT_PAREN = 12
    NUMBER = 13
    PIPE = 14
    RAW_STRING = 15
    RIGHT_DELIM = 16
    RIGHT_PAREN = 17
    SPACE = 18
    STRING = 19
    TEXT = 20
    VARIABLE = 21
    # keywords appear after all the rest
    KEYWORD = 22
    BLOCK = 23
    BREAK = 24
    CONTINUE = 25
    DOT = 26
    DEFINE = 27
    ELSE = 28
    END = 29
    IF = 30
    NIL = 31
    RANGE = 32
    TEMPLATE = 33
    WITH = 34


KEYWORDS = {
    ".": T.DOT,
    "block": T.BLOCK,
    "break": T.BREAK,
    "continue": T.CONTINUE,
    "define": T.DEFINE,
    "else": T.ELSE,
    "end": T.END,
    "if": T.IF,
    "range": T.RANGE,
    "nil": T.NIL,
    "template": T.TEMPLATE,
    "with": T.WITH,
}

SPACE_CHARS = " \t\r\n"
LEFT_COMMENT = "/*"
RIGHT_COMMENT = "*/"


class Item(NamedTuple):
    typ: T
    pos: int
    val: str
    line: int

    def __str__(self) -> str:
        from .gofmt import quote

        if self.typ == T.EOF:
            return "EOF"
        if self.typ == T.ERROR:
            return self.val
        if self.typ > T.KEYWORD:
            return f"<{self.val}>"
        if len(self.val) > 10:
            return quote(self.val[:10]) + "..."
        return quote(self.val)


def is_space(char: str) -> bool:
    return char in (" ", "\t", "\r", "\n") and char != ""


def is_alnum(char: str) -> bool:
    return char == "_" or (char != "" and (char.isalpha() or char.isdecimal()))


def _has_left_trim(text: str, pos: int) -> bool:
    return text[pos : pos + 1] == "-" and is_space(text[pos + 1 : pos + 2])


def _has_right_trim(text: str, pos: int) -> bool:
    return is_space(text[pos : pos + 1]) and text[pos + 1 : pos + 2] == "-"


def _go_unicode(char: str) -> str:
    return f"U+{ord(char):04X} {_quote_rune(char)}" if char.isprintable() else f"U+{ord(char):04X}"


def _quote_rune(char: str) -> str:
    from .gofmt import quote

    return quote(char, "'")


State = Callable[["Lexer"], "State | None"]


class Lexer:
    """Scans a whole template into items; stops after the first error item."""

    def __init__(
        self,
        text: str,
        left: str = "{{",
        right: str = "}}",
        *,
        emit_comment: bool = False,
        break_ok: bool = True,
        continue_ok: bool = True,
    ) -> None:
        self.input = text
        self.left = left or "{{"
        self.right = right or "}}"
        self.emit_comment = emit_comment
        self.break_ok = break_ok
        self.continue_ok = continue_ok
        self.pos = 0
        self.start = 0
        self.line = 1
        self.start_line = 1
        self.paren_depth = 0
        self.items: list[Item] = []
        self._index = 0
        self._state: State | None = lex_text
        self._done = False

    # --- the parser's side -------------------------------------------------------------------

    def next_item(self) -> Item:
        while self._index >= len(self.items):
            if self._state is None:
                # After EOF or an error, keep answering with the last item (as Go's drained lexer).
                return self.items[-1] if self.items else Item(T.EOF, self.pos, "", self.line)
            self._state = self._state(self)
        item = self.items[self._index]
        self._index += 1
        return item

    # --- scanning helpers --------------------------------------------------------------------

    def next(self) -> str:
        if self.pos >= len(self.input):
            self._width = 0
            return ""
        char = self.input[self.pos]
        self._width = 1
        self.pos += 1
        if char == "\n":
            self.line += 1
        return char

    def peek(self) -> str:
        return self.input[self.pos] if self.pos < len(self.input) else ""

    def backup(self) -> None:
        if getattr(self, "_width", 0):
            self.pos -= 1
            if self.input[self.pos] == "\n":
                self.line -= 1
            self._width = 0

    def emit(self, typ: T) -> None:
        self.items.append(Item(typ, self.start, self.input[self.start : self.pos], self.start_line))
        self.start = self.pos
        self.start_line = self.line

    def ignore(self) -> None:
        self.line += self.input.count("\n", self.start, self.pos)
        self.start = self.pos
        self.start_line = self.line

    def accept(self, valid: str) -> bool:
        char = self.next()
        if char and char in valid:
            return True
        self.backup()
        return False

    def accept_run(self, valid: str) -> None:
        while True:
            char = self.next()
            if not char or char not in valid:
                break
        self.backup()

    def errorf(self, message: str) -> None:
        self.items.append(Item(T.ERROR, self.start, message, self.start_line))

    def at_right_delim(self) -> tuple[bool, bool]:
        if _has_right_trim(self.input, self.pos) and self.input.startswith(self.right, self.pos + 2):
            return True, True
        if self.input.startswith(self.right, self.pos):
            return True, False
        return False, False

    def at_terminator(self) -> bool:
        char = self.peek()
        if char == "" or is_space(char) or char in ".,|:)(":
            return True
        return self.input.startswith(self.right, self.pos)


# --- states ----------------------------------------------------------------------------------


def lex_text(lx: Lexer) -> State | None:
    x = lx.input.find(lx.left, lx.pos)
    if x >= 0:
        lx.pos = x
        trim = 0
        if _has_left_trim(lx.input, x + len(lx.left)):
            segment = lx.input[lx.start : x]
            trim = len(segment) - len(segment.rstrip(SPACE_CHARS))
        lx.pos -= trim
        if lx.pos > lx.start:
            lx.line += lx.input.count("\n", lx.start, lx.pos)
            lx.emit(T.TEXT)
        lx.pos += trim
        lx.ignore()
        return lex_left_delim
    lx.pos = len(lx.input)
    if lx.pos > lx.start:
        lx.line += lx.input.count("\n", lx.start, lx.pos)
        lx.emit(T.TEXT)
        return lex_text  # EOF comes next
    lx.emit(T.EOF)
    return None


def lex_left_delim(lx: Lexer) -> State | None:
    lx.pos += len(lx.left)
    trim = _has_left_trim(lx.input, lx.pos)
    after = 2 if trim else 0
    if lx.input.startswith(LEFT_COMMENT, lx.pos + after):
        lx.pos += after
        lx.ignore()
        return lex_comment
    lx.emit(T.LEFT_DELIM)
    lx.pos += after
    lx.ignore()
    lx.paren_depth = 0
    return lex_inside_action


def lex_comment(lx: Lexer) -> State | None:
    lx.pos += len(LEFT_COMMENT)
    x = lx.input.find(RIGHT_COMMENT, lx.pos)
    if x < 0:
        lx.errorf("unclosed comment")
        return None
    lx.pos = x + len(RIGHT_COMMENT)
    delim, trim = lx.at_right_delim()
    if not delim:
        lx.errorf("comment ends before closing delimiter")
        return None
    lx.line += lx.input.count("\n", lx.start, lx.pos)
    comment = Item(T.COMMENT, lx.start, lx.input[lx.start : lx.pos], lx.start_line)
    lx.start = lx.pos
    lx.start_line = lx.line
    if lx.emit_comment:
        lx.items.append(comment)
    if trim:
        lx.pos += 2
    lx.pos += len(lx.right)
    if trim:
        rest = lx.input[lx.pos :]
        lx.pos += len(rest) - len(rest.lstrip(SPACE_CHARS))
    lx.ignore()
    return lex_text


def lex_right_delim(lx: Lexer) -> State | None:
    _, trim = lx.at_right_delim()
    if trim:
        lx.pos += 2
        lx.ignore()
    lx.pos += len(lx.right)
    lx.emit(T.RIGHT_DELIM)
    if trim:
        rest = lx.input[lx.pos :]
        lx.pos += len(rest) - len(rest.lstrip(SPACE_CHARS))
        lx.ignore()
    return lex_text


def lex_inside_action(lx: Lexer) -> State | None:
    delim, _ = lx.at_right_delim()
    if delim:
        if lx.paren_depth == 0:
            return lex_right_delim
        lx.errorf("unclosed left paren")
        return None
    char = lx.next()
    if char == "":
        lx.errorf("unclosed action")
        return None
    if is_space(char):
        lx.backup()
        return lex_space
    if char == "=":
        lx.emit(T.ASSIGN)
    elif char == ":":
        if lx.next() != "=":
            lx.errorf("expected :=")
            return None
        lx.emit(T.DECLARE)
    elif char == "|":
        lx.emit(T.PIPE)
    elif char == '"':
        return lex_quote
    elif char == "`":
        return lex_raw_quote
    elif char == "$":
        return lex_variable
    elif char == "'":
        return lex_char
    elif char == "." and lx.peek() != "" and not "0" <= lx.peek() <= "9":
        return lex_field
    elif char in "+-." or "0" <= char <= "9":
        lx.backup()
        return lex_number
    elif is_alnum(char):
        lx.backup()
        return lex_identifier
    elif char == "(":
        lx.emit(T.LEFT_PAREN)
        lx.paren_depth += 1
    elif char == ")":
        lx.paren_depth -= 1
        if lx.paren_depth < 0:
            lx.errorf("unexpected right paren")
            return None
        lx.emit(T.RIGHT_PAREN)
    elif ord(char) < 0x80 and char.isprintable():
        lx.emit(T.CHAR)
    else:
        lx.errorf(f"unrecognized character in action: {_go_unicode(char)}")
        return None
    return lex_inside_action


def lex_space(lx: Lexer) -> State | None:
    spaces = 0
    while is_space(lx.peek()):
        lx.next()
        spaces += 1
    # A trim-marked right delimiter starts with a space: leave that space for it.
    if _has_right_trim(lx.input, lx.pos - 1) and lx.input.startswith(lx.right, lx.pos + 1):
        lx._width = 1
        lx.backup()
        if spaces == 1:
            return lex_right_delim
    lx.emit(T.SPACE)
    return lex_inside_action


def lex_identifier(lx: Lexer) -> State | None:
    while True:
        char = lx.next()
        if is_alnum(char):
            continue
        lx.backup()
        word = lx.input[lx.start : lx.pos]
        if not lx.at_terminator():
            lx.errorf(f"bad character {_go_unicode(char)}")
            return None
        keyword = KEYWORDS.get(word)
        if keyword is not None and keyword > T.KEYWORD:
            if (keyword == T.BREAK and not lx.break_ok) or (keyword == T.CONTINUE and not lx.continue_ok):
                lx.emit(T.IDENTIFIER)
            else:
                lx.emit(keyword)
        elif word[0] == ".":
            lx.emit(T.FIELD)
        elif word in ("true", "false"):
            lx.emit(T.BOOL)
        else:
            lx.emit(T.IDENTIFIER)
        return lex_inside_action


def lex_field(lx: Lexer) -> State | None:
    return _lex_field_or_variable(lx, T.FIELD)


def lex_variable(lx: Lexer) -> State | None:
    if lx.at_terminator():
        lx.emit(T.VARIABLE)
        return lex_inside_action
    return _lex_field_or_variable(lx, T.VARIABLE)


def _lex_field_or_variable(lx: Lexer, typ: T) -> State | None:
    if lx.at_terminator():
        lx.emit(T.VARIABLE if typ == T.VARIABLE else T.DOT)
        return lex_inside_action
    char = ""
    while True:
        char = lx.next()
        if not is_alnum(char):
            lx.backup()
            break
    if not lx.at_terminator():
        lx.errorf(f"bad character {_go_unicode(char)}")
        return None
    lx.emit(typ)
    return lex_inside_action


def lex_char(lx: Lexer) -> State | None:
    while True:
        char = lx.next()
        if char == "\\":
            nxt = lx.next()
            if nxt not in ("", "\n"):
                continue
            lx.errorf("unterminated character constant")
            return None
        if char in ("", "\n"):
            lx.errorf("unterminated character constant")
            return None
        if char == "'":
            break
    lx.emit(T.CHAR_CONSTANT)
    return lex_inside_action


def lex_number(lx: Lexer) -> State | None:
    if not _scan_number(lx):
        lx.errorf(f"bad number syntax: {_go_quote(lx.input[lx.start : lx.pos])}")
        return None
    sign = lx.peek()
    if sign in ("+", "-") and sign != "":
        if not _scan_number(lx) or lx.input[lx.pos - 1] != "i":
            lx.errorf(f"bad number syntax: {_go_quote(lx.input[lx.start : lx.pos])}")
            return None
        lx.emit(T.COMPLEX)
    else:
        lx.emit(T.NUMBER)
    return lex_inside_action


def _go_quote(text: str) -> str:
    from .gofmt import quote

    return quote(text)


def _scan_number(lx: Lexer) -> bool:
    lx.accept("+-")
    digits = "0123456789_"
    if lx.accept("0"):
        if lx.accept("xX"):
            digits = "0123456789abcdefABCDEF_"
        elif lx.accept("oO"):
            digits = "01234567_"
        elif lx.accept("bB"):
            digits = "01_"
    lx.accept_run(digits)
    if lx.accept("."):
        lx.accept_run(digits)
    if len(digits) == 11 and lx.accept("eE"):
        lx.accept("+-")
        lx.accept_run("0123456789_")
    if len(digits) == 23 and lx.accept("pP"):
        lx.accept("+-")
        lx.accept_run("0123456789_")
    lx.accept("i")
    if is_alnum(lx.peek()):
        lx.next()
        return False
    return True


def lex_quote(lx: Lexer) -> State | None:
    while True:
        char = lx.next()
        if char == "\\":
            nxt = lx.next()
            if nxt not in ("", "\n"):
                continue
            lx.errorf("unterminated quoted string")
            return None
        if char in ("", "\n"):
            lx.errorf("unterminated quoted string")
            return None
        if char == '"':
            break
    lx.emit(T.STRING)
    return lex_inside_action


def lex_raw_quote(lx: Lexer) -> State | None:
    end = lx.input.find("`", lx.pos)
    if end < 0:
        lx.errorf("unterminated raw quoted string")
        return None
    lx.line += lx.input.count("\n", lx.pos, end + 1)
    lx.pos = end + 1
    lx.emit(T.RAW_STRING)
    return lex_inside_action


def lex(text: str, left: str = "{{", right: str = "}}", *, emit_comment: bool = True) -> list[Item]:
    """Every item of a text, up to EOF or the first error (for tests and tools)."""
    lexer = Lexer(text, left, right, emit_comment=emit_comment)
    items = []
    while True:
        item = lexer.next_item()
        items.append(item)
        if item.typ in (T.EOF, T.ERROR):
            return items
