"""``zocalo-nb demo``: the project's main job, end to end on the embedded default.

Validates and draws every example recipe, then runs the pipeline of :mod:`zocalo_nb.demo`
(dispatcher, services, a command job, a notebook job, a failing step, its rerun) on the
embedded broker, or on ``--broker stomp://...``, writing everything to the folder it names.
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from zocalo_nb.cli.exitcodes import ExitCode
from zocalo_nb.errors import RecipeError
from zocalo_nb.recipe import Recipe
from zocalo_nb.recipe.lint import TEMPLATE_NOTE
from zocalo_nb.render import dot_available


def add_commands(commands: Any) -> None:
    """Register ``demo`` on the top-level parser."""
    demo = commands.add_parser("demo", help="run the end-to-end demo")
    demo.add_argument(
        "--recipes", help="folder of example recipes (default: the ones installed with us)"
    )
    demo.add_argument(
        "-o", "--output", default="out/demo", help="folder for results (default: out/demo)"
    )
    demo.add_argument("--notebooks", help="job notebooks (default: the one installed with us)")
    demo.add_argument("--broker", help="run against this broker instead of memory://")
    demo.add_argument(
        "--cluster",
        metavar="SCHEDULER",
        help="run the command job as a cluster job (slurm, slurm-rest, local); needs --broker",
    )
    demo.add_argument(
        "--recipes-only", action="store_true", help="only validate and draw the recipes"
    )
    demo.set_defaults(run=run_demo)


def run_demo(args: argparse.Namespace) -> int:
    from zocalo_nb.demo import EXAMPLE_NOTEBOOKS, EXAMPLE_RECIPES

    source = Path(args.recipes) if args.recipes else EXAMPLE_RECIPES
    notebooks = Path(args.notebooks) if args.notebooks else EXAMPLE_NOTEBOOKS
    files = sorted(source.glob("*.json"))
    if not files:
        raise RecipeError(
            f"no recipes (*.json) in {source}",
            hint="run from the repository root or pass --recipes DIR",
        )
    output = Path(args.output)
    output.mkdir(parents=True, exist_ok=True)
    suffix = ".svg" if dot_available() else ".dot"
    if suffix == ".dot":
        print(
            "graphviz 'dot' not found: writing DOT files instead of SVG "
            "(install graphviz to get pictures)"
        )
    failed = 0
    for index, path in enumerate(files, 1):
        prefix = f"[{index}/{len(files)}] {path.name}"
        try:
            recipe = Recipe.load(path).validate()
        except RecipeError as err:
            failed += 1
            print(f"{prefix}: INVALID\n{err}")
            continue
        warnings = recipe.lint()
        target = recipe.render(output / (path.stem + suffix))
        needs = [w for w in warnings if w.message.startswith(TEMPLATE_NOTE)]
        notes = [w for w in warnings if w not in needs]
        print(f"{prefix}: valid, {len(recipe)} steps, {len(notes)} lint note(s) -> {target}")
        for need in needs:  # a template, as most example recipes are: not a fault
            print(f"    a template: {need.message.removeprefix(TEMPLATE_NOTE + ': ')} to supply")
        for note in notes:
            print(f"    {note}")
    print(f"\n{len(files) - failed} of {len(files)} recipes valid; graphs in {output.resolve()}")
    if failed:
        return ExitCode.FAILED
    if args.recipes_only:
        return ExitCode.OK
    from zocalo_nb import demo

    print("\n== the pipeline ==")
    completed = demo.run(
        output / "pipeline",
        recipes=source,
        notebooks=notebooks,
        broker=args.broker,
        cluster=args.cluster,
    )
    return ExitCode.OK if completed else ExitCode.FAILED
