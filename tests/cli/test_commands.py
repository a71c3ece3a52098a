"""The table of commands: every command module is in it, and the parser is
built from it alone."""

from __future__ import annotations

import importlib
import pkgutil

import pytest

from chatproviders import _cli
from chatproviders._cli import COMMANDS, _parser


def test_every_command_module_is_in_the_table() -> None:
    """A module that states a NAME is a command, and the table lists it."""
    modules = [
        importlib.import_module(f"chatproviders._cli.{info.name}")
        for info in pkgutil.iter_modules(_cli.__path__)
    ]
    commands = [module for module in modules if hasattr(module, "NAME")]
    assert set(commands) == set(COMMANDS)


def test_each_command_offers_its_arguments_and_its_run() -> None:
    """NAME, a one-line HELP, add_arguments and run: all the parser needs."""
    for command in COMMANDS:
        assert isinstance(command.NAME, str) and command.HELP.strip()
        assert callable(command.add_arguments) and callable(command.run)


def test_the_parser_has_exactly_the_commands_of_the_table(
    capsys: pytest.CaptureFixture[str],
) -> None:
    """Each entry becomes a subcommand that runs its module's run()."""
    parser = _parser()
    for command in COMMANDS:
        args, _ = parser.parse_known_args(
            [command.NAME, "--help"][:1] + _minimal(command.NAME)
        )
        assert args.command is command.run and args.name == command.NAME
    with pytest.raises(SystemExit):
        parser.parse_args(["nothing-here"])
    assert "invalid choice" in capsys.readouterr().err


def _minimal(name: str) -> list[str]:
    """The fewest arguments that command needs to parse."""
    needed = {
        "batch": ["in.jsonl", "-o", "out.jsonl", "-p", "cromicle"],
        "emulate": ["cromicle"],
    }
    return needed.get(name, [])
