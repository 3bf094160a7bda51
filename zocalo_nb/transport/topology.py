"""A RabbitMQ deployment's topology from upstream's ``configure_rabbitmq`` YAML, applied
through the management API: what is missing is created, what differs is reported (and
recreated with ``delete=True``), what the file does not list is deleted only with
``delete=True``. A dry run says what would change and changes nothing.

The file (upstream's format, so a site's existing file works)::

    vhosts: [{name: zocalo}]
    policies:
      - {vhost: zocalo, name: redelivery, pattern: "^(?!dlq\\.).*", apply-to: queues,
         definition: {delivery-limit: 5}}
    exchanges: [{name: delayed, vhost: zocalo, type: fanout, durable: true}]
    groups:
      - names: [per_image_analysis, processing_recipe]
        vhost: zocalo
        settings:
          queues: {type: quorum, dead-letter-routing-key-pattern: "dlq.{name}"}
      - names: [transient.status, transient.command]
        vhost: zocalo
        settings: {broadcast: true}

Example::

    plan = Topology.from_mapping(yaml.safe_load(text)).plan(api)
    print(plan)              # + queue zocalo/per_image_analysis ...
    plan.apply(api)
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import quote

from zocalo_nb.errors import InvalidArgument
from zocalo_nb.transport.rabbitmq_api import ManagementAPI

Key = tuple[str, ...]


@dataclass
class Topology:
    """The desired state: vhosts, policies, queues, exchanges, bindings (by their keys)."""

    vhosts: dict[Key, dict[str, Any]] = field(default_factory=dict)
    permissions: dict[Key, dict[str, Any]] = field(default_factory=dict)
    policies: dict[Key, dict[str, Any]] = field(default_factory=dict)
    queues: dict[Key, dict[str, Any]] = field(default_factory=dict)
    exchanges: dict[Key, dict[str, Any]] = field(default_factory=dict)
    bindings: dict[Key, dict[str, Any]] = field(default_factory=dict)

    @classmethod
    def from_mapping(cls, data: Mapping[str, Any], *, source: str = "") -> Topology:
        wanted = cls()
        try:
            for vhost in data.get("vhosts") or []:
                wanted.vhosts[(vhost["name"],)] = {}
            for grant in data.get("permissions") or []:
                wanted.permissions[(grant["vhost"], grant["user"])] = {
                    k: grant.get(k, "") for k in ("configure", "write", "read")
                }
            for policy in data.get("policies") or []:
                key = (policy.get("vhost", "/"), policy["name"])
                if key in wanted.policies:
                    raise InvalidArgument(f"{source}: policy {key} twice", hint="name it once")
                wanted.policies[key] = {
                    "pattern": policy.get("pattern", "^amq."),
                    "definition": policy.get("definition") or {},
                    "priority": policy.get("priority", 0),
                    "apply-to": policy.get("apply-to", "queues"),
                }
            for exchange in data.get("exchanges") or []:
                wanted.exchanges[(exchange.get("vhost", "/"), exchange["name"])] = _exchange(
                    exchange.get("type", "direct"), exchange
                )
            for binding in data.get("bindings") or []:
                wanted._bind(
                    binding.get("vhost", "/"),
                    binding["source"],
                    binding["destination"],
                    binding.get("destination_type", "q"),
                    binding.get("routing_key", binding["destination"]),
                    binding.get("arguments") or {},
                )
            for group in data.get("groups") or []:
                wanted._group(group, source)
        except (KeyError, TypeError) as err:
            raise InvalidArgument(
                f"{source}: an entry lacks {err} or is not a mapping",
                hint="compare with upstream's contrib/rabbitmq-configuration.yaml",
            ) from err
        return wanted

    def _group(self, group: Mapping[str, Any], source: str) -> None:
        vhost = group.get("vhost", "/")
        settings = group.get("settings") or {}
        if settings.get("broadcast"):
            for name in group["names"]:
                self.exchanges[(vhost, name)] = _exchange("fanout", {})
            return
        queues = settings.get("queues") or {}
        kind = queues.get("type", "classic")
        pattern = queues.get("dead-letter-routing-key-pattern")
        for name in group["names"]:
            if (vhost, name) in self.queues:
                raise InvalidArgument(f"{source}: queue {name!r} twice", hint="list it once")
            arguments: dict[str, Any] = {"x-queue-type": kind}
            if kind != "stream":
                arguments["x-single-active-consumer"] = bool(
                    settings.get("single_active_consumer", False)
                )
            if pattern:
                arguments["x-dead-letter-exchange"] = queues.get("dead-letter-exchange", "")
                arguments["x-dead-letter-routing-key"] = pattern.format(name=name)
            self.queues[(vhost, name)] = _queue(arguments)
            if pattern and queues.get("dead-letter-queue-create", True):
                self.queues[(vhost, pattern.format(name=name))] = _queue({"x-queue-type": kind})
            for exchange in group.get("bindings") or []:
                self._bind(vhost, exchange, name, "q", name, {})

    def _bind(
        self,
        vhost: str,
        source: str,
        destination: str,
        kind: str,
        key: str,
        arguments: Mapping[str, Any],
    ) -> None:
        if source:  # the default exchange binds every queue by itself
            kind = "queue" if kind in ("q", "queue") else "exchange"
            self.bindings[(vhost, source, destination, kind, key)] = dict(arguments)

    def plan(self, api: ManagementAPI, *, delete: bool = False) -> Plan:
        """What applying this would change on the broker behind ``api``."""
        return Plan(self, _current(api, self), delete)


@dataclass
class Change:
    action: str  # "create", "recreate", "delete", "differs", "keep"
    kind: str
    key: Key
    spec: dict[str, Any]

    def __str__(self) -> str:
        mark = {"create": "+", "recreate": "~", "delete": "-", "differs": "!", "keep": "?"}
        what = "/".join(self.key)
        note = {
            "differs": " (differs from the file; --delete recreates it, losing its messages)",
            "keep": " (not in the file; --delete removes it)",
        }.get(self.action, "")
        return f"{mark[self.action]} {self.kind} {what}{note}"


class Plan:
    """The changes from the broker's state to a topology, in the order they apply."""

    def __init__(self, wanted: Topology, current: Topology, delete: bool) -> None:
        self.changes: list[Change] = []
        for kind in ("vhosts", "permissions", "policies", "exchanges", "queues", "bindings"):
            want, have = getattr(wanted, kind), getattr(current, kind)
            name = kind.removesuffix("s").replace("policie", "policy")
            for key, spec in want.items():
                if key not in have:
                    self.changes.append(Change("create", name, key, spec))
                elif not _same(kind, spec, have[key]):
                    action = "recreate" if delete or kind == "policies" else "differs"
                    self.changes.append(Change(action, name, key, spec))
            for key, spec in have.items():
                if key not in want:
                    self.changes.append(Change("delete" if delete else "keep", name, key, spec))

    def __str__(self) -> str:
        return "\n".join(map(str, self.changes)) or "nothing to change"

    @property
    def pending(self) -> list[Change]:
        return [c for c in self.changes if c.action in ("create", "recreate", "delete")]

    def apply(self, api: ManagementAPI) -> list[Change]:
        """Carry out the pending changes (deletions last, vhosts very last)."""
        ordered = [c for c in self.pending if c.action != "delete"]
        ordered += sorted(
            (c for c in self.pending if c.action == "delete"), key=lambda c: c.kind == "vhost"
        )
        for change in ordered:
            path = _path(change.kind, change.key)
            if change.action in ("delete", "recreate") and change.kind not in (
                "policy",
                "permission",
            ):
                api.delete(path)
            if change.action != "delete":
                if change.kind == "binding":
                    vhost, source, destination, kind, key = change.key
                    letter = "q" if kind == "queue" else "e"
                    api.request(
                        "POST",
                        f"bindings/{_q(vhost)}/e/{_q(source)}/{letter}/{_q(destination)}",
                        {"routing_key": key, "arguments": change.spec},
                    )
                else:
                    api.put(path, change.spec)
        return ordered


def _exchange(kind: str, spec: Mapping[str, Any]) -> dict[str, Any]:
    return {
        "type": kind,
        "durable": bool(spec.get("durable", True)),
        "auto_delete": bool(spec.get("auto_delete", False)),
        "internal": bool(spec.get("internal", False)),
        "arguments": dict(spec.get("arguments") or {}),
    }


def _queue(arguments: dict[str, Any]) -> dict[str, Any]:
    return {"durable": True, "auto_delete": False, "arguments": arguments}


def _same(kind: str, want: Mapping[str, Any], have: Mapping[str, Any]) -> bool:
    if kind == "queues":  # the broker adds arguments of its own only when asked
        return bool(want["arguments"].items() <= have.get("arguments", {}).items())
    return all(have.get(k) == v for k, v in want.items())


def _current(api: ManagementAPI, wanted: Topology) -> Topology:
    """The broker's state, in the vhosts the file speaks of (temporary things left out)."""
    vhosts = {key[0] for key in wanted.vhosts} | {
        key[0]
        for part in (wanted.policies, wanted.queues, wanted.exchanges, wanted.bindings)
        for key in part
    }
    have = Topology()
    for vhost in api.get("vhosts") or []:
        if vhost["name"] in vhosts and vhost["name"] != "/":
            have.vhosts[(vhost["name"],)] = {}
    for vhost in sorted(vhosts):
        if (vhost,) not in have.vhosts and vhost != "/":
            continue  # it does not exist yet: nothing in it either
        for grant in api.get(f"vhosts/{_q(vhost)}/permissions") or []:
            have.permissions[(vhost, grant["user"])] = {
                k: grant.get(k, "") for k in ("configure", "write", "read")
            }
        for policy in api.get(f"policies/{_q(vhost)}") or []:
            have.policies[(vhost, policy["name"])] = {
                "pattern": policy["pattern"],
                "definition": policy["definition"],
                "priority": policy["priority"],
                "apply-to": policy["apply-to"],
            }
        for queue in api.queues(vhost):
            if queue.get("exclusive") or queue.get("auto_delete"):
                continue
            if queue["name"].startswith(("amq.", "zocalo-nb.delay.")):
                continue
            have.queues[(vhost, queue["name"])] = {
                "durable": queue.get("durable"),
                "auto_delete": queue.get("auto_delete"),
                "arguments": queue.get("arguments") or {},
            }
        for exchange in api.get(f"exchanges/{_q(vhost)}") or []:
            name = exchange["name"]
            if not name or name.startswith(("amq.", "zocalo-nb.delay.")):
                continue
            have.exchanges[(vhost, name)] = _exchange(exchange["type"], exchange)
        temporary = {k[1] for k in have.queues}
        for binding in api.get(f"bindings/{_q(vhost)}") or []:
            source, destination = binding["source"], binding["destination"]
            if not source or source.startswith(("amq.", "zocalo-nb.delay.")):
                continue
            if binding["destination_type"] == "queue" and destination not in temporary:
                continue  # bound to a temporary queue (a topic subscriber)
            key = (vhost, source, destination, binding["destination_type"], binding["routing_key"])
            have.bindings[key] = binding.get("arguments") or {}
    return have


def _path(kind: str, key: Key) -> str:
    if kind == "vhost":
        return f"vhosts/{_q(key[0])}"
    if kind == "binding":
        vhost, source, destination, dtype, routing = key
        letter = "q" if dtype == "queue" else "e"
        return f"bindings/{_q(vhost)}/e/{_q(source)}/{letter}/{_q(destination)}/{_q(routing)}"
    section = {
        "policy": "policies",
        "permission": "permissions",
        "queue": "queues",
        "exchange": "exchanges",
    }[kind]
    return f"{section}/{_q(key[0])}/{_q(key[1])}"


def _q(text: str) -> str:
    return quote(text, safe="")
