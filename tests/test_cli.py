"""The command line's parser: every command and every option says what it does in `--help`."""

from __future__ import annotations

import argparse
from collections.abc import Iterator

from atmos_tasks.cli import build_parser


def parsers(parser: argparse.ArgumentParser) -> Iterator[argparse.ArgumentParser]:
    """The parser and, depth first, the parser of each subcommand (`vendor pull`, `example init`)."""
    yield parser
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for sub in action.choices.values():
                yield from parsers(sub)


def test_every_option_of_every_command_has_help() -> None:
    missing = []
    seen = 0
    for parser in parsers(build_parser()):
        for action in parser._actions:
            if isinstance(action, argparse._SubParsersAction):
                described = {choice.dest for choice in action._choices_actions if choice.help}
                missing += [f"{parser.prog} {name}" for name in action.choices if name not in described]
                continue
            seen += 1
            if not action.help or action.help == argparse.SUPPRESS:
                missing.append(f"{parser.prog} {'/'.join(action.option_strings) or action.dest}")
    assert seen > 100  # the walk reached every command's options
    assert missing == []


def test_help_names_what_the_rollout_options_do() -> None:
    rollout = next(p for p in parsers(build_parser()) if p.prog.endswith(" rollout"))
    shown = rollout.format_help()
    for option in ("--promote-from", "--git-sha", "--approve", "--allow-dirty", "--remote"):
        assert option in shown
    assert "rollback" in shown and "approval" in shown and "promotion rules" in shown
