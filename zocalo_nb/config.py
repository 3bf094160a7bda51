"""Settings: which broker to use and how, built at the edge and passed explicitly.

Sources, highest precedence first:

1. arguments to :meth:`Settings.build` (or a URL given to ``zocalo_nb.connect``);
2. environment variables ``ZOCALO_NB_BROKER`` (a URL), ``ZOCALO_NB_PREFIX``,
   ``ZOCALO_NB_PREFETCH``, ``ZOCALO_NB_HEARTBEAT``, ``ZOCALO_NB_USERNAME``, ``ZOCALO_NB_PASSWORD``;
3. an upstream zocalo site configuration YAML (``ZOCALO_CONFIG`` or ``ZOCALO_NB_CONFIG``, or the
   ``config_file`` argument): the stomp plugin section of the chosen environment
   (``ZOCALO_NB_ENVIRONMENT``, else the file's ``default`` environment);
4. defaults: the embedded ``memory://`` broker, namespace prefix ``test`` (so nothing written
   by accident lands in production; upstream deployments use ``zocalo``).

Passwords never appear in ``repr``, ``str`` or :meth:`Settings.redacted_url`.

Example::

    settings = Settings.build(broker="stomp://zocalo:secret@127.0.0.1:61613?prefix=test")
"""

from __future__ import annotations

import os
import re
import tempfile
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, quote, unquote, urlsplit

from zocalo_nb.errors import ZocaloNbError

SCHEMES = ("memory", "stomp", "stomp+ssl", "amqp")
DEFAULT_PORT = 61613
#: RabbitMQ's defaults: AMQP port, management API port.
AMQP_PORT, MANAGEMENT_PORT = 5672, 15672
DEFAULT_PREFIX = "test"
ENV_PREFIX = "ZOCALO_NB_"


class ConfigError(ZocaloNbError):
    """Settings could not be built from what was given."""


@dataclass(frozen=True)
class Settings:
    """How to reach a broker. Build with :meth:`build` or :meth:`from_url`."""

    scheme: str = "memory"
    host: str = "127.0.0.1"
    port: int = DEFAULT_PORT
    username: str | None = None
    password: str | None = field(default=None, repr=False)
    #: Namespace of queues and topics. Defaults to "test", so nothing written by accident
    #: lands in production; upstream deployments use "zocalo" (set it, or use a site config).
    prefix: str = DEFAULT_PREFIX
    #: Messages a consumer may hold unacknowledged (ActiveMQ's default of 1000 makes
    #: transactional commits slow; 1-10 measured best).
    prefetch: int = 10
    #: STOMP heart-beat interval in milliseconds (0 disables).
    heartbeat: int = 10_000
    ca_certs: str | None = None
    #: RabbitMQ (``amqp://``): the virtual host (the URL's path), the management API's port
    #: (statistics, browsing), whether the transport may declare the queues it uses (for
    #: development and tests; deployments declare them with ``zocalo-nb rabbitmq
    #: configure``), and the delivery limit of queues it declares.
    vhost: str = "/"
    management_port: int = MANAGEMENT_PORT
    declare: bool = False
    delivery_limit: int = 5
    #: Where these settings came from, for error messages ("argument", "ZOCALO_NB_BROKER", a file).
    source: str = "defaults"

    @property
    def tls(self) -> bool:
        """True for ``stomp+ssl://``."""
        return self.scheme == "stomp+ssl"

    def redacted_url(self) -> str:
        """The broker URL with any password replaced by ``***``."""
        if self.scheme == "memory":
            return f"memory://?prefix={self.prefix}"
        user = ""
        if self.username:
            user = quote(self.username, safe="") + (":***" if self.password else "") + "@"
        if self.scheme == "amqp":
            vhost = quote(self.vhost, safe="")
            return f"amqp://{user}{self.host}:{self.port}/{vhost}?prefix={self.prefix}"
        return f"{self.scheme}://{user}{self.host}:{self.port}?prefix={self.prefix}"

    def secret_url(self) -> str:
        """The broker URL with its password, for a job that must connect to this broker (a
        cluster job reporting its outcome); never log it."""
        url = self.redacted_url()
        if self.password:
            url = url.replace(":***@", ":" + quote(self.password, safe="") + "@", 1)
        if self.scheme == "amqp" and self.management_port != MANAGEMENT_PORT:
            url += f"&management={self.management_port}"
        return url

    def __str__(self) -> str:
        return f"{self.redacted_url()} (from {self.source})"

    @classmethod
    def from_url(cls, url: str, *, source: str = "argument") -> Settings:
        """Parse ``memory://`` or ``stomp://user:password@host:port?prefix=...&prefetch=...``."""
        try:
            parts = urlsplit(url)
            parts.port  # noqa: B018  (a bad port or IPv6 literal raises here)
        except ValueError as err:
            # urllib's message may quote a piece of the password: say what, not which
            what = "bad port (not a number from 1 to 65535)" if "Port" in str(err) else "bad host"
            raise ConfigError(
                f"cannot read broker URL {_redact(url)} (from {source}): {what}",
                hint="write stomp://user:password@host:61613; a password holding '/', '?', "
                "'#' or '@' must be percent-encoded (%2F, %3F, %23, %40)",
            ) from None
        scheme = parts.scheme.lower()
        if scheme not in SCHEMES:
            raise ConfigError(
                f"unknown broker scheme {parts.scheme!r} in {_redact(url)} (from {source})",
                hint=_did_you_mean(scheme, SCHEMES)
                + "use memory:// or stomp://user:password@host:61613",
            )
        query = {k: v[-1] for k, v in parse_qs(parts.query, keep_blank_values=True).items()}
        options = {"prefix", "prefetch", "heartbeat", "ca_certs"}
        if scheme == "amqp":
            options |= {"management", "declare", "delivery_limit"}
        unknown = set(query) - options
        if unknown:
            raise ConfigError(
                f"unknown option(s) {', '.join(sorted(unknown))} in broker URL (from {source})",
                hint=f"options are {', '.join(sorted(options))}",
            )
        port = parts.port or (AMQP_PORT if scheme == "amqp" else DEFAULT_PORT)
        values: dict[str, Any] = {"scheme": scheme, "source": source}
        if scheme != "memory":
            values.update(host=parts.hostname or "127.0.0.1", port=port)
            if parts.username:
                values["username"] = unquote(parts.username)
            if parts.password:
                values["password"] = unquote(parts.password)
        if "prefix" in query:
            values["prefix"] = query["prefix"]
        for key in ("prefetch", "heartbeat"):
            if key in query:
                values[key] = _int(query[key], key, source)
        if "ca_certs" in query:
            values["ca_certs"] = query["ca_certs"]
        if scheme == "amqp":
            values["vhost"] = unquote(parts.path[1:]) if len(parts.path) > 1 else "/"
            values["prefix"] = query.get("prefix", "")  # upstream's RabbitMQ has no prefix
            if "management" in query:
                values["management_port"] = _int(query["management"], "management", source)
            if "delivery_limit" in query:
                values["delivery_limit"] = _int(query["delivery_limit"], "delivery_limit", source)
            values["declare"] = query.get("declare", "0").lower() in ("1", "true", "yes")
        return cls(**values)._checked()

    @classmethod
    def build(
        cls,
        broker: str | None = None,
        *,
        prefix: str | None = None,
        prefetch: int | None = None,
        username: str | None = None,
        password: str | None = None,
        environ: Mapping[str, str] | None = None,
        config_file: str | os.PathLike[str] | None = None,
        environment: str | None = None,
    ) -> Settings:
        """Settings from arguments, then environment, then a zocalo YAML, then defaults."""
        env = os.environ if environ is None else environ
        settings = cls()
        yaml_path = config_file or env.get(ENV_PREFIX + "CONFIG") or env.get("ZOCALO_CONFIG")
        if yaml_path:
            settings = _from_zocalo_yaml(
                Path(yaml_path), environment or env.get(ENV_PREFIX + "ENVIRONMENT")
            )
        if env.get(ENV_PREFIX + "BROKER"):
            settings = cls.from_url(env[ENV_PREFIX + "BROKER"], source=ENV_PREFIX + "BROKER")
        overrides: dict[str, Any] = {}
        for key in ("prefix", "username", "password"):
            if env.get(ENV_PREFIX + key.upper()):
                overrides[key] = env[ENV_PREFIX + key.upper()]
        for key in ("prefetch", "heartbeat"):
            if env.get(ENV_PREFIX + key.upper()):
                name = ENV_PREFIX + key.upper()
                overrides[key] = _int(env[name], key, name)
        if broker is not None:
            settings = cls.from_url(broker)
        given = {"prefix": prefix, "prefetch": prefetch, "username": username, "password": password}
        overrides.update({k: v for k, v in given.items() if v is not None})
        return replace(settings, **overrides)._checked() if overrides else settings

    def _checked(self) -> Settings:
        if self.prefetch < 1:
            raise ConfigError(
                f"prefetch must be at least 1, not {self.prefetch} (from {self.source})",
                hint="use 1-10 for transactional consumers",
            )
        if (not self.prefix and self.scheme != "amqp") or "/" in self.prefix:
            raise ConfigError(
                f"bad namespace prefix {self.prefix!r} (from {self.source})",
                hint="use a plain name such as zocalo or test",
            )
        return self


def _from_zocalo_yaml(path: Path, environment: str | None) -> Settings:
    import yaml  # only needed for site configuration files

    try:
        data = yaml.safe_load(path.read_text())
    except (OSError, yaml.YAMLError) as err:
        raise ConfigError(
            f"cannot read zocalo configuration {path}: {err}",
            hint="point ZOCALO_CONFIG at a readable zocalo site configuration YAML",
        ) from err
    if not isinstance(data, dict):
        raise ConfigError(f"{path} is not a zocalo configuration", hint="expected a YAML mapping")
    sections = _environment_sections(data, environment, path)
    for name in sections:
        section = data.get(name)
        if isinstance(section, dict) and section.get("plugin") == "stomp":
            try:
                return Settings(
                    scheme="stomp",
                    host=str(section["host"]),
                    port=int(section["port"]),
                    username=str(section["username"]),
                    password=str(section["password"]),
                    prefix=str(section["prefix"]),
                    source=f"{path} section {name!r}",
                )._checked()
            except (KeyError, ValueError) as err:
                raise ConfigError(
                    f"stomp section {name!r} in {path} is incomplete or wrong: {err}",
                    hint="it needs host, port, username, password and prefix",
                ) from err
    raise ConfigError(
        f"no stomp plugin section in the chosen environment of {path}",
        hint="add a section with 'plugin: stomp' and list it under environments",
    )


def _environment_sections(data: dict[str, Any], name: str | None, path: Path) -> list[str]:
    environments = data.get("environments") or {}
    wanted = name or "default"
    seen: set[str] = set()
    while isinstance(environments.get(wanted), str) and wanted not in seen:  # an alias
        seen.add(wanted)
        wanted = environments[wanted]
    chosen = environments.get(wanted)
    if chosen is None:
        if name is None:  # no environments: every section is in play
            return [k for k in data if k not in ("version", "environments")]
        raise ConfigError(
            f"environment {name!r} is not defined in {path}",
            hint=_did_you_mean(name, list(environments)) + "set ZOCALO_NB_ENVIRONMENT",
        )
    if isinstance(chosen, dict):
        chosen = chosen.get("plugins", [])
    return [str(item) for item in chosen]


def _int(text: str, key: str, source: str) -> int:
    try:
        return int(text)
    except ValueError as err:
        raise ConfigError(
            f"{key} must be a whole number, not {text!r} (from {source})", hint=f"e.g. {key}=10"
        ) from err


def _did_you_mean(word: str, options: Any) -> str:
    import difflib

    close = difflib.get_close_matches(word, list(options), n=1, cutoff=0.6)
    return f"did you mean {close[0]!r}? " if close else ""


def _redact(url: str) -> str:
    """``url`` with everything between the user's ``:`` and the last ``@`` hidden: robust
    to passwords holding ``?``, ``#``, ``@`` or spaces, which urlsplit cuts elsewhere."""
    return _CREDENTIALS.sub(r"\1***@", url)


_CREDENTIALS = re.compile(r"^([A-Za-z][A-Za-z0-9+.-]*://[^:/@]*:).*@", re.DOTALL)


# -- settings of the services and tools, from the environment (read here and in the CLI only) --
def history_url() -> str:
    """``ZOCALO_NB_HISTORY``, else SQLite in ``~/.zocalo-nb/history.sqlite``."""
    url = os.environ.get("ZOCALO_NB_HISTORY")
    return url or f"sqlite:///{Path.home() / '.zocalo-nb' / 'history.sqlite'}"


def workdir_roots() -> list[Path]:
    """Where command jobs may work: ``ZOCALO_NB_WORKDIR_ROOTS`` (``:``-separated), else the
    current folder and the temporary folder."""
    configured = os.environ.get("ZOCALO_NB_WORKDIR_ROOTS")
    if configured:
        return [Path(p) for p in configured.split(":") if p]
    return [Path.cwd(), Path(tempfile.gettempdir())]


def notebook_directories() -> list[str]:
    """Where notebook jobs are found: ``ZOCALO_NB_NOTEBOOKS`` (``:``-separated), else
    ``notebooks/jobs``."""
    return [d for d in os.environ.get("ZOCALO_NB_NOTEBOOKS", "notebooks/jobs").split(":") if d]


def notebook_output() -> str:
    """Where executed notebooks are saved: ``ZOCALO_NB_NOTEBOOK_OUTPUT``, else
    ``notebook-runs``."""
    return os.environ.get("ZOCALO_NB_NOTEBOOK_OUTPUT") or "notebook-runs"


def scheduler_name() -> str:
    """``ZOCALO_NB_SCHEDULER``: the cluster service's scheduler (default ``local``)."""
    return os.environ.get("ZOCALO_NB_SCHEDULER") or "local"


def broker_url() -> str | None:
    """``ZOCALO_NB_BROKER``, when set."""
    return os.environ.get("ZOCALO_NB_BROKER") or None
