"""``--config FILE``: a YAML or JSON mapping of option names to values, for any argparse parser.

Keys are the long option names without the dashes (``batch-size`` or ``batch_size``). The file is
turned into the command-line arguments it stands for and placed before the real ones, so flags
given on the command line win and every value goes through the same parsing and checks. Lists
become comma-separated values (``blocks: [3, 4, 6]``); booleans switch ``--flag`` /
``--no-flag`` options; relative paths are relative to the working directory, as on the command
line.
"""

from __future__ import annotations

import argparse
import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import yaml


def with_config_file(parser: argparse.ArgumentParser, argv: Sequence[str]) -> list[str]:
    """``argv`` preceded by the arguments of the ``--config`` file it names, if any."""
    finder = argparse.ArgumentParser(add_help=False)
    finder.add_argument("--config", type=Path)
    path = finder.parse_known_args(argv)[0].config
    if path is None:
        return list(argv)
    return config_arguments(parser, read_config(parser, path), path) + list(argv)


def read_config(parser: argparse.ArgumentParser, path: Path) -> dict[str, Any]:
    try:
        text = path.read_text()
        values = json.loads(text) if path.suffix.lower() == ".json" else yaml.safe_load(text)
    except (OSError, ValueError, yaml.YAMLError) as error:
        parser.error(f"--config {path}: {error}")
    if not isinstance(values, dict):
        parser.error(f"--config {path}: expected a mapping of option names to values")
    return values


def config_arguments(parser: argparse.ArgumentParser, values: dict[str, Any], path: Path) -> list[str]:
    options = configurable_options(parser)
    unknown = sorted(str(key) for key in values if str(key).replace("-", "_") not in options)
    if unknown:
        parser.error(
            f"--config {path}: unknown key(s) {', '.join(unknown)}; known keys: {', '.join(sorted(options))}"
        )
    arguments: list[str] = []
    for key, value in values.items():
        option = options[str(key).replace("-", "_")]
        try:
            arguments += option_arguments(option, value)
        except ValueError as error:
            parser.error(f"--config {path}: {key}: {error}")
    return arguments


def configurable_options(parser: argparse.ArgumentParser) -> dict[str, argparse.Action]:
    # argparse has no public accessor for its options; _actions is stable across Python versions.
    return {
        action.dest: action
        for action in parser._actions
        if action.option_strings and action.dest not in ("help", "config")
    }


def option_arguments(option: argparse.Action, value: Any) -> list[str]:
    flag = option.option_strings[0]
    if option.nargs == 0:
        if not isinstance(value, bool):
            raise ValueError(f"expected true or false, got {value!r}")
        return [flag] if value else option.option_strings[1:2]  # --no-flag, where there is one
    if isinstance(value, bool):
        if option.nargs == "?":  # an option whose value is optional, e.g. --resume [PATH]
            return [flag] if value else []
        raise ValueError(f"expected a value, got {value!r}")
    if value is None:
        raise ValueError("expected a value, got nothing")
    if isinstance(value, list):
        value = ",".join(str(item) for item in value)
    return [flag, str(value)]
