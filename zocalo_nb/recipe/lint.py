"""What is valid but probably wrong in a recipe: warnings, never errors.

Checked: placeholders left unresolved, wrapper (job) steps whose ``success``/``failure``
channels lead nowhere, strings with JSON-like braces (left alone by parameter substitution),
topics with a ``transport-delay``, named outputs with no destination or with a name one typo
away from a wrapper channel, and steps that name neither a queue nor a topic.
"""

from __future__ import annotations

import difflib
from collections.abc import Iterator, Mapping
from typing import Any

from zocalo_nb.errors import Finding
from zocalo_nb.recipe._frozen import FrozenMap
from zocalo_nb.recipe._normalise import Entries
from zocalo_nb.recipe.links import PLAIN, channels, is_step_id
from zocalo_nb.recipe.parameters import looks_like_json, placeholders

#: The output channels upstream wrappers send on, in lifecycle order.
WRAPPER_CHANNELS = (
    "starting",
    "updates",
    "success",
    "failure",
    "completed",
    "result-individual-file",
    "result-all-files",
)
#: Parameters that mark a step as one that runs a job through a wrapper.
_JOB_PARAMETERS = ("wrapper", "notebook", "command")
_UNRESOLVED = "placeholders left unresolved: "

#: How lint says that a recipe is a template still waiting for its parameters.
TEMPLATE_NOTE = "template parameters to supply"


def lint_entries(entries: Entries, *, template: bool = False) -> list[Finding]:
    """Warnings for a normalised recipe (run :func:`validate` first for hard errors).

    With ``template``, the recipe is expected to hold placeholders still: they are summed up
    in one finding naming the parameters to supply, instead of one per step.
    """
    findings: list[Finding] = []
    start = entries.get("start")
    if isinstance(start, tuple):
        for index, entry in enumerate(start):
            if isinstance(entry, tuple) and len(entry) == 2:
                findings += _strings("start", f"[{index}]", entry[1])
    for key, step in entries.items():
        if is_step_id(key) and isinstance(step, FrozenMap):
            findings += _lint_step(key, step)
    if template:
        findings = _summarise_placeholders(findings)
    return findings


def _summarise_placeholders(findings: list[Finding]) -> list[Finding]:
    names: list[str] = []
    others = []
    for finding in findings:
        if finding.kind == "unresolved":
            names += [n for n in finding.names if n not in names]
        else:
            others.append(finding)
    if names:
        others.insert(
            0,
            _warn(
                None,
                None,
                f"{TEMPLATE_NOTE}: {', '.join(names)}",
                "apply_parameters({...}) or -s name=value on the command line",
                "template-parameters",
                tuple(names),
            ),
        )
    return others


def _lint_step(key: int, step: Mapping[str, Any]) -> Iterator[Finding]:
    for name, value in step.items():
        if name not in ("output", "error"):
            yield from _strings(key, name, value)
    if "queue" not in step and "topic" not in step:
        yield _warn(
            key,
            None,
            "names neither a queue nor a topic: messages for it go nowhere",
            'add "queue": "<service queue>" (or "topic")',
            "no-destination",
        )
    if "topic" in step and "transport-delay" in step:
        yield _warn(
            key,
            "transport-delay",
            "a delay on a topic: the broadcast is held back, and subscribers that are not "
            "connected when it fires miss it",
            "use a queue for delayed work, or drop the delay",
            "delayed-topic",
        )
    outputs = channels(step.get("output"))
    for channel, targets in outputs.items():
        if channel != PLAIN and not targets:
            yield _warn(
                key,
                f"output[{channel!r}]",
                f"channel '{channel}' has no destination",
                "link it to a step or remove the channel",
                "empty-channel",
            )
    if _is_job(step):
        yield from _lint_job(key, outputs)


def _is_job(step: Mapping[str, Any]) -> bool:
    parameters = step.get("parameters")
    if isinstance(parameters, FrozenMap) and any(p in parameters for p in _JOB_PARAMETERS):
        return True
    output = step.get("output")
    return isinstance(output, FrozenMap) and any(c in WRAPPER_CHANNELS for c in output)


def _lint_job(key: int, outputs: Mapping[str, tuple[Any, ...]]) -> Iterator[Finding]:
    if PLAIN in outputs:
        yield _warn(
            key,
            "output",
            "a job step with plain outputs: its success/failure messages are not routed",
            'use named outputs: "output": {"success": [...], "failure": [...]}',
            "plain-job-outputs",
        )
        return
    for channel in ("success", "failure"):
        if not outputs.get(channel):
            yield _warn(
                key,
                "output",
                f"job step does not wire its '{channel}' channel",
                f'add "{channel}": <step> to the output so {channel} is not lost',
                "unwired-job-channel",
            )
    for channel in outputs:
        if channel in WRAPPER_CHANNELS:
            continue
        close = difflib.get_close_matches(channel, WRAPPER_CHANNELS, n=1, cutoff=0.75)
        if close:
            yield _warn(
                key,
                f"output[{channel!r}]",
                f"channel '{channel}' is not one wrappers send on",
                f"did you mean '{close[0]}'?",
                "unknown-channel",
            )


def _strings(key: int | str, field: str, value: Any) -> Iterator[Finding]:
    unresolved: list[str] = []
    json_like = False
    for text in _walk_strings(value):
        if "{" not in text:
            continue
        if looks_like_json(text):
            json_like = True
        unresolved += [name for name in placeholders(text) if name not in unresolved]
    if unresolved:
        names = ", ".join("{" + name + "}" for name in unresolved)
        yield _warn(
            key,
            field,
            f"{_UNRESOLVED}{names}",
            "supply them as parameters (zocalo-nb ... -s name=value, or apply_parameters)",
            "unresolved",
            tuple("{" + name + "}" for name in unresolved),
        )
    if json_like:
        yield _warn(
            key,
            field,
            "a string holds JSON-like braces; parameter substitution leaves it as is",
            "store structured values as JSON objects, not as text",
            "json-like-text",
        )


def _walk_strings(value: Any) -> Iterator[str]:
    if isinstance(value, str):
        yield value
    elif isinstance(value, FrozenMap):
        for k, v in value.items():
            if isinstance(k, str):
                yield k
            yield from _walk_strings(v)
    elif isinstance(value, tuple):
        for item in value:
            yield from _walk_strings(item)


def _warn(
    key: int | str | None,
    field: str | None,
    message: str,
    hint: str,
    kind: str,
    names: tuple[str, ...] = (),
) -> Finding:
    return Finding(key, field, message, hint, severity="warning", kind=kind, names=names)
