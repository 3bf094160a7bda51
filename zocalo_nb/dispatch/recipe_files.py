"""``$RECIPEWRAP``, ``$RECIPEFILE`` and ``$RECIPEENV``: the files upstream's cluster submission
writes for a job (the step's whole recipe message, the recipe alone, the run's environment),
and a command line with their paths in place of the names. Used by command jobs and cluster
submission alike."""

from __future__ import annotations

import json
import shlex
from collections.abc import Mapping
from pathlib import Path
from typing import Any

#: Placeholders for files written for the job (upstream's cluster submission names).
RECIPE_FILES = ("$RECIPEWRAP", "$RECIPEFILE", "$RECIPEENV")


def recipe_file(stem: Path, name: str) -> Path:
    """Where the file for placeholder ``name`` of the job ``stem`` goes."""
    return stem.with_name(f"{stem.name}.{name[1:].lower()}.json")


def with_recipe_files(
    argv: list[str], body: Mapping[str, Any], stem: Path, shell: bool, always: bool = False
) -> list[str]:
    """``argv`` with the placeholders of :data:`RECIPE_FILES` replaced by files written for
    it from the recipe message ``body`` (only those it uses; ``$RECIPEWRAP`` also when
    ``always``); shell-quoted when ``shell``."""
    used = [n for n in RECIPE_FILES if any(n in a for a in argv) or (always and n == "$RECIPEWRAP")]
    content = {
        "$RECIPEWRAP": body,
        "$RECIPEFILE": body["recipe"],
        "$RECIPEENV": body["environment"],
    }
    replaced = list(argv)
    for name in used:
        path = recipe_file(stem, name)
        path.write_text(json.dumps(content[name], indent=2))
        value = shlex.quote(str(path)) if shell else str(path)
        replaced = [arg.replace(name, value) for arg in replaced]
    return replaced
