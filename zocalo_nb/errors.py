"""One error tree for zocalo_nb.

Every error carries the data that locates the problem (a step id, a field, a file) and a
``hint`` telling the user what to do next. Catch :class:`ZocaloNbError` to handle them all.

Example::

    try:
        recipe.validate()
    except RecipeValidationError as err:
        for problem in err.problems:
            print(problem.step, problem.field, problem.message, problem.hint)
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

StepKey = int | str | None
Severity = Literal["error", "warning"]


class ZocaloNbError(Exception):
    """Root of every error raised by zocalo_nb; ``hint`` says what to do about it."""

    def __init__(self, message: str, *, hint: str = "") -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint

    def __str__(self) -> str:
        if self.hint:
            return f"{self.message}\n  hint: {self.hint}"
        return self.message


class InvalidArgument(ZocaloNbError):
    """An argument or setting that cannot be used: ``name`` and the ``value`` given."""

    def __init__(self, message: str, *, hint: str = "", name: str = "", value: object = None):
        super().__init__(message, hint=hint)
        self.name, self.value = name, value


class NotFound(ZocaloNbError):
    """Something looked up is not there: ``what`` (run, step, file...) and its ``key``."""

    def __init__(self, message: str, *, hint: str = "", what: str = "", key: object = None):
        super().__init__(message, hint=hint)
        self.what, self.key = what, key


class RunError(ZocaloNbError):
    """An operation on one run (or one step of it) cannot go ahead."""

    def __init__(
        self, message: str, *, hint: str = "", run_id: str | None = None, step: int | None = None
    ):
        super().__init__(message, hint=hint)
        self.run_id, self.step = run_id, step


class DeadLetterError(ZocaloNbError):
    """A dead letter (or its file) cannot be used as asked: which one, and where it is."""

    def __init__(
        self,
        message: str,
        *,
        hint: str = "",
        message_id: str | None = None,
        queue: str | None = None,
        path: str | None = None,
    ):
        super().__init__(message, hint=hint)
        self.message_id, self.queue, self.path = message_id, queue, path


class HistoryError(ZocaloNbError):
    """The history database cannot be used: ``url`` (without its password)."""

    def __init__(self, message: str, *, hint: str = "", url: str = ""):
        super().__init__(message, hint=hint)
        self.url = url


class WaitTimeout(ZocaloNbError, TimeoutError):
    """Something did not happen in time: ``what``, and the ``seconds`` waited. Also a
    TimeoutError, so ``except TimeoutError`` catches it."""

    def __init__(self, message: str, *, hint: str = "", what: str = "", seconds: float = 0.0):
        super().__init__(message, hint=hint)
        self.what, self.seconds = what, seconds


#: The optional parts of zocalo_nb (``pip install 'zocalo_nb[NAME]'``) and what each enables.
EXTRAS: dict[str, str] = {
    "stomp": "ActiveMQ (stomp:// URLs)",
    "rabbitmq": "RabbitMQ (amqp:// URLs)",
    "notebook": "notebooks as processing steps (kernels, papermill)",
    "sql": "history in PostgreSQL (SQLite history needs no extra)",
    "widgets": "the notebook widgets (zocalo_nb.widgets)",
    "plots": "pictures of runs and services (matplotlib)",
}


class MissingExtra(ZocaloNbError, ImportError):
    """A feature needs an optional part that is not installed: ``extra`` names it (see
    :data:`EXTRAS`), ``module`` the import that failed; the hint is the ``pip install`` to run.

    Example (at the top of a module that needs an extra)::

        try:
            import stomp
        except ImportError as error:
            raise MissingExtra("stomp", error.name) from error
    """

    def __init__(self, extra: str, module: str | None) -> None:
        super().__init__(
            f"{EXTRAS[extra]} needs the {extra!r} extra of zocalo_nb ({module} is not installed)",
            hint=f"pip install 'zocalo_nb[{extra}]'  (or 'zocalo_nb[all]' for everything)",
        )
        self.extra, self.module = extra, module


@dataclass(frozen=True)
class Finding:
    """One problem (validation) or suspicion (lint) in a recipe.

    ``step`` is the step id, or ``"start"``/``"error"`` for the top-level entries, or None for
    the recipe as a whole; ``field`` names the field inside that step.
    """

    step: StepKey
    field: str | None
    message: str
    hint: str
    severity: Severity = "error"
    #: What sort of finding (lint: "unresolved", "no-destination", ...), for code to test
    #: instead of the message's words; ``names`` lists what it is about (placeholders).
    kind: str = ""
    names: tuple[str, ...] = ()

    def location(self) -> str:
        """Where the finding is, for humans: ``step 3, field 'output'``."""
        if self.step is None:
            where = "recipe"
        elif isinstance(self.step, int):
            where = f"step {self.step}"
        elif self.step in ("start", "error"):
            where = self.step
        else:
            where = f"key '{self.step}'"
        return f"{where}, field '{self.field}'" if self.field else where

    def __str__(self) -> str:
        return f"{self.location()}: {self.message} (hint: {self.hint})"


class RecipeError(ZocaloNbError):
    """Base of errors about recipes."""


class RecipeParseError(RecipeError):
    """The input cannot be read as a recipe at all (not JSON, not an object, not JSON data)."""

    def __init__(self, message: str, *, hint: str, source: str | None = None) -> None:
        if source:
            message = f"{source}: {message}"
        super().__init__(message, hint=hint)
        self.source = source


class RecipeValidationError(RecipeError):
    """A recipe breaks the upstream rules; ``problems`` lists every one, not just the first."""

    def __init__(self, problems: Sequence[Finding], *, source: str | None = None) -> None:
        self.problems: tuple[Finding, ...] = tuple(problems)
        self.source = source
        head = f"{source}: " if source else ""
        count = len(self.problems)
        lines = [f"{head}invalid recipe: {count} problem{'s' if count != 1 else ''}"]
        lines += [f"  - {p}" for p in self.problems]
        # one problem: its hint is the error's (``err.hint``), said once, on its line
        super().__init__(
            "\n".join(lines),
            hint=self.problems[0].hint if count == 1 else "fix each problem listed above",
        )

    def __str__(self) -> str:
        if len(self.problems) == 1:  # the problem's line already ends with its hint
            return self.message
        return super().__str__()


class BuilderError(RecipeError):
    """The recipe builder was asked for something that cannot be expressed in a recipe."""


class RenderError(ZocaloNbError):
    """A recipe graph could not be drawn."""


class GraphvizMissingError(RenderError):
    """The graphviz ``dot`` program is not installed, so SVG/PNG cannot be produced."""

    def __init__(self) -> None:
        super().__init__(
            "the graphviz 'dot' program was not found on PATH",
            hint="install graphviz: 'apt-get install graphviz' (Debian/Ubuntu) or "
            "'conda install -c conda-forge graphviz'; DOT text still works without it",
        )
