"""``zocalo-nb validate``, ``lint`` and ``graph``: recipe files from the command line.

``validate`` is usable as a pre-commit hook: one line per file, non-zero exit if any fails.
"""

from __future__ import annotations

import argparse
import sys
from typing import Any

from zocalo_nb.cli.exitcodes import ExitCode
from zocalo_nb.errors import InvalidArgument, RecipeError
from zocalo_nb.recipe import Recipe


def add_commands(commands: Any) -> None:
    """Register the recipe subcommands on the top-level parser."""
    validate = commands.add_parser("validate", help="check recipe files against upstream's rules")
    validate.add_argument("files", nargs="+", metavar="FILE")
    validate.add_argument("-q", "--quiet", action="store_true", help="print only failures")
    validate.set_defaults(run=run_validate)

    lint = commands.add_parser("lint", help="warn about valid but suspicious recipe content")
    lint.add_argument("files", nargs="+", metavar="FILE")
    add_parameter_option(lint)
    lint.add_argument("--strict", action="store_true", help="exit non-zero on warnings too")
    lint.set_defaults(run=run_lint)

    graph = commands.add_parser("graph", help="draw a recipe as SVG, PNG, PDF or DOT")
    graph.add_argument("recipe", metavar="RECIPE")
    graph.add_argument("-o", "--output", required=True, help="output file (.svg .png .pdf .dot)")
    add_parameter_option(graph)
    graph.set_defaults(run=run_graph)


def add_parameter_option(parser: argparse.ArgumentParser) -> None:
    """``-s key=value`` as in upstream's ``zocalo.go`` (values are strings)."""
    parser.add_argument(
        "-s",
        "--set",
        dest="parameters",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="set a recipe parameter (repeatable)",
    )


def parse_parameters(pairs: list[str]) -> dict[str, str]:
    """Turn ``["a=1", "b=x"]`` into ``{"a": "1", "b": "x"}``."""
    result = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key:
            raise InvalidArgument(
                f"parameter {pair!r} is not KEY=VALUE", hint="write e.g. -s ispyb_dcid=1234"
            )
        result[key] = value
    return result


def run_validate(args: argparse.Namespace) -> int:
    failed = 0
    for path in args.files:
        try:
            Recipe.load(path).validate()
        except RecipeError as err:
            failed += 1
            print(f"FAIL {err}", file=sys.stdout)
            continue
        if not args.quiet:
            print(f"ok   {path}")
    if failed:
        print(f"{failed} of {len(args.files)} recipe file(s) invalid")
        return ExitCode.FAILED
    return ExitCode.OK


def run_lint(args: argparse.Namespace) -> int:
    parameters = parse_parameters(args.parameters)
    invalid = warned = 0
    for path in args.files:
        try:
            recipe = Recipe.load(path)
            problems = recipe.problems()
            findings = problems + recipe.lint(parameters if args.parameters else None)
        except RecipeError as err:
            invalid += 1
            print(f"FAIL {err}")
            continue
        invalid += bool(problems)
        warned += bool(findings) and not problems
        for finding in findings:
            print(f"{path}: {finding.severity}: {finding}")
        if not findings:
            print(f"ok   {path}")
    if invalid or (args.strict and warned):
        return ExitCode.FAILED
    return ExitCode.OK


def run_graph(args: argparse.Namespace) -> int:
    recipe = Recipe.load(args.recipe)
    parameters = parse_parameters(args.parameters)
    if parameters:
        recipe = recipe.apply_parameters(parameters)
    problems = recipe.problems()
    for problem in problems:
        print(f"warning: {problem.location()}: {problem.message} (hint: {problem.hint})",
              file=sys.stderr)  # fmt: skip
    path = recipe.render(args.output)
    print(f"wrote {path}" + (f" (an invalid recipe: {len(problems)} problem(s); links to "
                             "missing steps drawn dashed red)" if problems else ""))  # fmt: skip
    return ExitCode.FAILED if problems else ExitCode.OK
