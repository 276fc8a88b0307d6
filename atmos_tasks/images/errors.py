"""The one exception of the build layer; the CLI edge turns it into a message and an exit code."""

from __future__ import annotations

from atmos_tasks.errors import EXIT_BAD_INPUT, EXIT_TASK_FAILED, AtmosError, Problem


class BuildError(Exception):
    """A build that cannot be planned (exit 2: bad input) or that failed (exit 1).

    The message names what was looked for and how to fix it, so it can be shown as is.
    """

    def __init__(self, message: str, exit_code: int = EXIT_BAD_INPUT) -> None:
        super().__init__(message)
        self.message = message
        self.exit_code = exit_code

    def to_atmos_error(self) -> AtmosError:
        return AtmosError([Problem(self.message)], self.exit_code)


def build_failed(message: str) -> BuildError:
    return BuildError(message, EXIT_TASK_FAILED)
