"""Benchmark: load + validate + apply_parameters (+ DOT) for 10, 100 and 1,000-step recipes,
zocalo_nb side by side with upstream python-workflows in the same run.

Run: python benchmarks/bench_recipe.py [--repeat N]
Prints per-size medians and the ratio upstream/ours (> 1 means we are faster).

Shapes: a binary tree (each step fans out to two, as spot finding does) which upstream can
validate, and a linear chain, where upstream's recursive cycle search hits Python's
recursion limit at about 1,000 steps.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from collections.abc import Callable
from typing import Any

from zocalo_nb import Recipe

PARAMETERS = {"dcid": 1234, "beamline": "i03", "files": [f"image_{i:05d}.cbf" for i in range(20)]}


def tree(n: int) -> str:
    data: dict[str, Any] = {}
    for i in range(1, n + 1):
        step: dict[str, Any] = {
            "service": "Per-image analysis",
            "queue": "per_image_analysis",
            "parameters": {"dcid": "{dcid}", "beamline": "{beamline}", "files": "{$REPLACE:files}"},
        }
        children = [c for c in (2 * i, 2 * i + 1) if c <= n]
        if children:
            step["output"] = {"success": children[0], "failure": children[1:]}
        data[str(i)] = step
    data["start"] = [[1, {"image": "{dcid}_{beamline}"}]]
    return json.dumps(data)


def chain(n: int) -> str:
    data: dict[str, Any] = {
        str(i): {"queue": f"q{i}", "parameters": {"dcid": "{dcid}"}, "output": [i + 1]}
        for i in range(1, n)
    }
    data[str(n)] = {"queue": "last"}
    data["start"] = [[1, {}]]
    return json.dumps(data)


def ours(text: str, dot: bool) -> None:
    recipe = Recipe.from_json(text)
    recipe.validate()
    applied = recipe.apply_parameters(PARAMETERS)
    if dot:
        applied.to_dot()


def upstream(text: str) -> None:
    from workflows.recipe.recipe import Recipe as UpstreamRecipe

    recipe = UpstreamRecipe(text)
    recipe.validate()
    recipe.apply_parameters(PARAMETERS)


def median_ms(func: Callable[[], None], repeat: int) -> float | str:
    times = []
    for _ in range(repeat):
        started = time.perf_counter()
        try:
            func()
        except RecursionError:
            return "RecursionError"
        times.append((time.perf_counter() - started) * 1000)
    return statistics.median(times)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--repeat", type=int, default=15)
    args = parser.parse_args()
    try:
        import workflows.recipe.recipe  # noqa: F401
    except ImportError:
        print("upstream 'workflows' is not installed: pip install -e '.[test]'", file=sys.stderr)
        return 2
    header = ("shape", "steps", "ours ms", "ours+DOT", "upstream", "ratio")
    print("{:<6} {:>6} {:>10} {:>10} {:>15} {:>7}".format(*header))
    for shape, make in (("tree", tree), ("chain", chain)):
        for n in (10, 100, 1000):
            text = make(n)
            mine = median_ms(lambda t=text: ours(t, False), args.repeat)
            with_dot = median_ms(lambda t=text: ours(t, True), args.repeat)
            theirs = median_ms(lambda t=text: upstream(t), args.repeat)
            assert isinstance(mine, float) and isinstance(with_dot, float)
            ratio = f"{theirs / mine:6.2f}x" if isinstance(theirs, float) else "   n/a"
            shown = f"{theirs:15.2f}" if isinstance(theirs, float) else f"{theirs:>15}"
            print(f"{shape:<6} {n:>6} {mine:10.2f} {with_dot:10.2f} {shown} {ratio:>7}")
    print("ratio = upstream / ours for load+validate+apply_parameters (> 1: zocalo_nb faster)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
