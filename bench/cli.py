"""Command line: ``python -m bench <command>``; every command has ``--help``.

User errors (a bad name, a bad file) print one line on stderr and exit 2, never a traceback.
"""

from __future__ import annotations

import argparse
import json
import sys

from .tables import format_table


class UsageError(Exception):
    """A mistake in what the user asked for; printed as one line, exit status 2."""


def cmd_models(args: argparse.Namespace) -> int:
    import models

    names = args.names or models.list_models()
    cards = [models.model_card(name) for name in names]  # unknown names raise ValueError
    if args.json:
        print(json.dumps(cards, indent=2))
        return 0
    columns = ["name", "family", "year", "input_size", "min_input_size", "params", "gmacs",
               "top1_error", "top5_error", "error_protocol"]
    headers = ["model", "family", "year", "input", "min", "params", "GMACs", "top-1 err %", "top-5 err %",
               "protocol (paper)"]
    print(format_table(cards, columns, headers))
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__.splitlines()[0])
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    models_parser = commands.add_parser(
        "models", help="print the model zoo's cards (paper, reported error, params, GMACs)",
        description="Print every model's card: family, paper year, native and minimum input size, "
                    "parameters and GMACs (computed, batch 1, native size), and the paper's reported "
                    "ImageNet error.")
    models_parser.add_argument("names", nargs="*", help="models to show (default: all)")
    models_parser.add_argument("--json", action="store_true", help="print a JSON list of cards instead of a table")
    models_parser.set_defaults(func=cmd_models)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return args.func(args)
    except (UsageError, ValueError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
