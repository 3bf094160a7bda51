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
        # only from Recipe's one-line display methods; render is a lower, stdlib-only layer
        "zocalo_nb.render",
    },
    "render": {"zocalo_nb.errors", "zocalo_nb._types", "zocalo_nb.states"},
    "transport": {"zocalo_nb.errors", "zocalo_nb._types", "zocalo_nb.config", "zocalo_nb.wire"},
}
#: Third-party packages a low layer may use, besides the standard library.
ALLOWED_EXTERNAL = {"transport": {"stomp", "pika"}}
#: Third-party packages and the only places allowed to import them (the STOMP transport is
#: stomp.py and its helpers, stomp_*.py, as the amqp transport is amqp*.py).
EXCLUSIVE = {
    "stomp": "zocalo_nb/transport/stomp",
    "pika": "zocalo_nb/transport/amqp",
    "ipywidgets": "zocalo_nb/widgets/",
}


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
        for name in runtime_imports(path):
            top = name.split(".")[0]
            if top == "zocalo_nb":
                allowed = ALLOWED_INTERNAL[layer] | {f"zocalo_nb.{layer}"}
                assert any(name == a or name.startswith(a + ".") for a in allowed), (path, name)
            else:
                allowed_external = ALLOWED_EXTERNAL.get(layer, set())
                assert top in sys.stdlib_module_names or top in allowed_external, (path, name)


def test_stomp_pika_and_ipywidgets_are_imported_in_one_place_each() -> None:
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


#: Every part of zocalo_nb, lowest first. A module may import its own part and parts on
#: lower levels only (at any depth, lazily or not; ``if TYPE_CHECKING:`` blocks excepted):
#: so no part imports another in a circle, and none reaches up. Parts on one level never
#: import each other. ``zocalo_nb/__init__.py`` is the facade above them all: no module of
#: the package imports names from it (subpackages are imported by their own names).
LEVELS: list[set[str]] = [
    {"errors", "_version", "wire"},
    {"_types", "states", "config"},
    {"render"},  # knows recipes by shape only
    {"recipe"},
    {"transport"},
    {"dispatch"},
    {"service", "servers"},
    {"wrapper", "sandbox"},
    {"notebook", "cluster"},
    {"dlq"},
    {"monitor"},
    {"widgets", "demo"},
    {"cli"},
]
LEVEL = {part: n for n, parts in enumerate(LEVELS) for part in parts}
SUBPACKAGES = {
    p.stem if p.is_file() else p.name
    for p in PACKAGE.iterdir()
    if p.suffix == ".py" or (p / "__init__.py").is_file()
} - {"__init__"}


def part_of(module: str) -> str | None:
    names = module.split(".")
    return names[1] if names[0] == "zocalo_nb" and len(names) > 1 else None


def runtime_imports(path: Path) -> set[str]:
    """Every module an import statement names (inside functions too), TYPE_CHECKING aside;
    ``from zocalo_nb import x`` names ``zocalo_nb.x`` for a subpackage, else the facade."""
    tree = ast.parse(path.read_text())
    typing_only = {
        id(sub)
        for node in ast.walk(tree)
        if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test)
        for sub in ast.walk(node)
    }
    found: set[str] = set()
    for node in ast.walk(tree):
        if id(node) in typing_only:
            continue
        if isinstance(node, ast.Import):
            found |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            if node.module == "zocalo_nb":
                found |= {
                    f"zocalo_nb.{a.name}" if a.name in SUBPACKAGES else "zocalo_nb"
                    for a in node.names
                }
            else:
                found.add(node.module)
    return found


def test_every_part_has_a_level() -> None:
    assert set(LEVEL) == SUBPACKAGES, SUBPACKAGES ^ set(LEVEL)


def test_no_part_imports_a_part_above_it_or_beside_it() -> None:
    wrong = []
    for path in PACKAGE.rglob("*.py"):
        relative = path.relative_to(PACKAGE.parent).with_suffix("").as_posix().replace("/", ".")
        if relative == "zocalo_nb.__init__":
            continue  # the facade
        source = part_of(relative)
        assert source is not None
        for module in runtime_imports(path):
            if module == "zocalo_nb":
                wrong.append(f"{relative} imports the package facade")
                continue
            target = part_of(module)
            if target is None or target == source:
                continue
            if LEVEL[target] >= LEVEL[source]:
                wrong.append(f"{relative} -> {module} (level {LEVEL[source]} -> {LEVEL[target]})")
    assert wrong == []


def string_constants(path: Path) -> list[str]:
    """The string literals of a module, docstrings left out."""
    tree = ast.parse(path.read_text())
    docstrings = {
        id(node.body[0].value)
        for node in ast.walk(tree)
        if isinstance(node, (ast.Module, ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef))
        and node.body
        and isinstance(node.body[0], ast.Expr)
        and isinstance(node.body[0].value, ast.Constant)
    }
    return [
        node.value
        for node in ast.walk(tree)
        if isinstance(node, ast.Constant)
        and isinstance(node.value, str)
        and id(node) not in docstrings
    ]


def test_each_wire_name_and_event_state_is_spelled_once_in_the_package() -> None:
    from zocalo_nb.wire import EventState, headers

    names = {
        value
        for key, value in vars(headers).items()
        if key.isupper()
        and isinstance(value, str)
        and key
        not in {
            "DESTINATION",
            "SUBSCRIPTION",
            "TIMESTAMP",
            "EXPIRES",
            "REDELIVERED",
            "BROKER_MESSAGE_ID",
        }  # broker words, also used as column names
    } | {state.value for state in EventState}
    spelled: dict[str, list[str]] = {name: [] for name in names}
    for path in PACKAGE.rglob("*.py"):
        for text in string_constants(path):
            if text in spelled:
                spelled[text].append(path.relative_to(PACKAGE).as_posix())
    # The same words in other roles: a notebook cell's metadata
    # flag, columns of the runs frame, a function named in __all__.
    other_roles = {
        "failed": ["notebook/prepare.py", "cluster/jobs.py"],  # a job's state
        "job": ["cluster/slurm_rest.py"],  # slurmrestd's request field
        "succeeded": ["monitor/history.py", "monitor/history.py"],
        "submitted": ["dispatch/events.py"],
    }
    for name, files in other_roles.items():
        for file in files:
            spelled[name].remove(file)
    twice = {name: where for name, where in spelled.items() if len(where) != 1}
    assert twice == {}


def test_the_package_offers_what_a_notebook_needs_without_loading_pandas() -> None:
    code = (
        "import sys, zocalo_nb as z\n"
        "assert 'pandas' not in sys.modules\n"
        "from zocalo_nb.monitor import Run\n"
        "assert z.Run is Run and callable(z.sandbox) and callable(z.submit)\n"
        "assert z.dlq.frame and z.Service and z.ServiceRunner and z.StepContext\n"
        "print('ok')\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert done.stdout.strip() == "ok", done.stderr


#: Where the environment may be read: the settings module and the command line (the edge),
#: and the two places that copy it for a child process (a job, apt-get).
ENVIRONMENT_READERS = {
    "config.py",
    "wrapper/environment.py",
    "servers/system.py",
}


def test_the_environment_is_read_at_the_edge_only() -> None:
    readers = set()
    for path in PACKAGE.rglob("*.py"):
        relative = path.relative_to(PACKAGE).as_posix()
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Attribute) and node.attr in ("environ", "getenv"):
                readers.add(relative)
    below_the_edge = {r for r in readers if not r.startswith("cli/")}
    assert below_the_edge <= ENVIRONMENT_READERS, below_the_edge - ENVIRONMENT_READERS


def test_no_module_keeps_a_registry_and_the_long_lived_objects_are_context_managers() -> None:
    from zocalo_nb.monitor import LiveRun, Tap, Tracker
    from zocalo_nb.sandbox import Sandbox

    for kind in (Tap, Tracker, LiveRun, Sandbox):
        assert hasattr(kind, "__enter__") and hasattr(kind, "__exit__"), kind
    tap_module = (PACKAGE / "monitor" / "tap.py").read_text()
    assert "WeakKeyDictionary" not in tap_module and "_TAPS" not in tap_module


def test_errors_are_raised_as_subclasses_that_carry_data() -> None:
    bare = []
    for path in PACKAGE.rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if (
                isinstance(node, ast.Raise)
                and isinstance(node.exc, ast.Call)
                and isinstance(node.exc.func, ast.Name)
                and node.exc.func.id in ("ZocaloNbError", "TimeoutError")
            ):
                bare.append(f"{path.relative_to(PACKAGE)}:{node.lineno}")
    assert bare == []
    from zocalo_nb.errors import DeadLetterError, WaitTimeout, ZocaloNbError

    timeout = WaitTimeout("late", what="run r1", seconds=3.0)
    assert isinstance(timeout, TimeoutError) and isinstance(timeout, ZocaloNbError)
    assert DeadLetterError("x", path="/tmp/f").path == "/tmp/f"
