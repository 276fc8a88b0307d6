"""The one error this package raises: Go's message, plus where it happened."""

from __future__ import annotations


class TemplateError(Exception):
    """A template that does not parse or does not execute.

    `str(error)` is Go's own message (`template: name:3:7: executing "name" at <.foo.bar>: map
    has no entry for key "bar"`). `name` is the template's name, `line` its 1-based line,
    `column` the 0-based byte offset in that line Go reports for execution errors (None when
    unknown), `context` the source of the node being evaluated, `template` the name of the
    (defined) template executing, and `reason` the message without its location.
    """

    def __init__(
        self,
        message: str,
        *,
        name: str,
        line: int | None = None,
        column: int | None = None,
        context: str | None = None,
        template: str | None = None,
        reason: str = "",
    ) -> None:
        super().__init__(message)
        self.message = message
        self.name = name
        self.line = line
        self.column = column
        self.context = context
        self.template = template if template is not None else name
        self.reason = reason or message

    def __str__(self) -> str:
        return self.message


class FunctionError(Exception):
    """Raised by template functions: becomes `error calling NAME: <message>`."""
