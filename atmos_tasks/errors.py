"""Problems are values with a location; the CLI edge turns them into one message and an exit code.

Exit codes (SPEC §13): 0 success, 1 a task failed, 2 bad input, 3 refused by policy.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

EXIT_OK = 0
EXIT_TASK_FAILED = 1
EXIT_BAD_INPUT = 2
EXIT_REFUSED = 3


@dataclass(frozen=True)
class Location:
    """A place in a user's file; line and column are 1-based when known."""

    file: str
    line: int | None = None
    column: int | None = None

    def __str__(self) -> str:
        if self.line is None:
            return self.file
        if self.column is None:
            return f"{self.file}:{self.line}"
        return f"{self.file}:{self.line}:{self.column}"


class LazyLocation:
    """A location looked up only when it is shown: finding it means parsing a file again."""

    def __init__(self, find: Callable[[], Location]) -> None:
        self._find = find
        self._found: Location | None = None

    def resolve(self) -> Location:
        if self._found is None:
            self._found = self._find()
        return self._found

    @property
    def file(self) -> str:
        return self.resolve().file

    @property
    def line(self) -> int | None:
        return self.resolve().line

    @property
    def column(self) -> int | None:
        return self.resolve().column

    def __str__(self) -> str:
        return str(self.resolve())

    def __eq__(self, other: object) -> bool:
        if isinstance(other, LazyLocation):
            other = other.resolve()
        return self.resolve() == other

    def __hash__(self) -> int:
        return hash(self.resolve())


Where = Location | LazyLocation


@dataclass(frozen=True)
class Problem:
    message: str
    location: Where | None = None
    hint: str | None = None

    def render(self) -> str:
        head = f"{self.location}: {self.message}" if self.location else self.message
        return f"{head}\n  hint: {self.hint}" if self.hint else head


@dataclass
class AtmosError(Exception):
    """One or more problems that stop the command, with the exit code they deserve."""

    problems: list[Problem] = field(default_factory=list)
    exit_code: int = EXIT_BAD_INPUT

    def __str__(self) -> str:
        return "\n".join(p.render() for p in self.problems)

    @classmethod
    def single(
        cls,
        message: str,
        location: Where | None = None,
        hint: str | None = None,
        exit_code: int = EXIT_BAD_INPUT,
    ) -> AtmosError:
        return cls([Problem(message, location, hint)], exit_code)


def bad_input(message: str, location: Where | None = None, hint: str | None = None) -> AtmosError:
    return AtmosError.single(message, location, hint, EXIT_BAD_INPUT)


def refused(message: str, hint: str | None = None) -> AtmosError:
    return AtmosError.single(message, None, hint, EXIT_REFUSED)


def raise_if_any(problems: Iterable[Problem]) -> None:
    found = list(problems)
    if found:
        raise AtmosError(found)


def unique(problems: Iterable[Problem]) -> list[Problem]:
    """Each problem once, in order: one mistake met by several targets or components is one problem."""
    seen: set[str] = set()
    found = []
    for problem in problems:
        text = problem.render()
        if text not in seen:
            seen.add(text)
            found.append(problem)
    return found


def render_error(error: AtmosError) -> str:
    label = "refused" if error.exit_code == EXIT_REFUSED else "error"
    problems = unique(error.problems)
    lines = [f"{label}: {p.render()}" for p in problems]
    if len(problems) > 1:
        lines.append(f"{len(problems)} problems found")
    return "\n".join(lines)
