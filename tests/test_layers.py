"""The layering rule: lower layers never import higher ones or heavy third-party packages."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parent.parent / "zocalo_nb"
#: What each low layer may import from zocalo_nb (at any depth, lazily or not).
ALLOWED_INTERNAL = {
    "recipe": {
        "zocalo_nb.errors",
        "zocalo_nb._types",
        "zocalo_nb.states",
        "zocalo_nb.recipe",
        # only from Recipe's one-line display methods; render is standard library only
        "zocalo_nb.render",
    },
    "render": {"zocalo_nb.errors", "zocalo_nb._types", "zocalo_nb.states", "zocalo_nb.recipe"},
    "transport": {"zocalo_nb.errors", "zocalo_nb._types", "zocalo_nb.config"},
}
#: Third-party packages a low layer may use, besides the standard library.
ALLOWED_EXTERNAL = {"transport": {"stomp"}}
#: Third-party packages and the only places allowed to import them.
EXCLUSIVE = {"stomp": "zocalo_nb/transport/stomp.py", "ipywidgets": "zocalo_nb/widgets/"}


def imports(path: Path) -> set[str]:
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            found |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.add(node.module)
    return found


@pytest.mark.parametrize("layer", sorted(ALLOWED_INTERNAL))
def test_low_layers_import_only_the_standard_library_and_layers_below(layer: str) -> None:
    for path in (PACKAGE / layer).rglob("*.py"):
        for name in imports(path):
            top = name.split(".")[0]
            if top == "zocalo_nb":
                allowed = ALLOWED_INTERNAL[layer] | {f"zocalo_nb.{layer}"}
                assert any(name == a or name.startswith(a + ".") for a in allowed), (path, name)
            else:
                allowed_external = ALLOWED_EXTERNAL.get(layer, set())
                assert top in sys.stdlib_module_names or top in allowed_external, (path, name)


def test_stomp_and_ipywidgets_are_imported_in_one_place_each() -> None:
    for path in PACKAGE.rglob("*.py"):
        relative = path.relative_to(PACKAGE.parent).as_posix()
        for name in imports(path):
            top = name.split(".")[0]
            if top in EXCLUSIVE:
                assert relative.startswith(EXCLUSIVE[top]), (relative, name)


def test_using_recipes_and_their_display_loads_no_third_party_module() -> None:
    code = (
        "import sys, zocalo_nb.recipe as r\n"
        "x = r.Recipe.from_dict({'1': {'queue': 'a'}, 'start': [[1, {}]]})\n"
        "x.validate(); x.lint(); x.to_dot(); x._repr_mimebundle_()\n"
        "print('\\n'.join(sorted(sys.modules)))\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    third_party = {
        name.split(".")[0]
        for name in done.stdout.split()
        if name.split(".")[0] not in sys.stdlib_module_names
        and not name.startswith(("zocalo_nb", "_"))
    }
    assert third_party == set()
