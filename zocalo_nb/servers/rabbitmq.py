"""Our own RabbitMQ node: Debian's package, a private node, stopped by its pid alone.

The node lives in one folder (``base``): ``rabbitmq.conf`` (listeners on 127.0.0.1, our user,
vhost and delivery limit), ``enabled_plugins`` (management, prometheus), ``mnesia/``,
``log/``, the node's pid file and its own Erlang port mapper (``epmd``, on a port of its own,
so a system RabbitMQ on the same machine is left alone). It runs as the user who starts it
(its Erlang cookie in ``base``). Start waits for the management API to answer.

Example::

    node = RabbitMQ(Path(".zocalo-nb/rabbitmq"), port=5673, management_port=15673)
    node.start()
    node.url          # amqp://zocalo:***@127.0.0.1:5673/zocalo?management=15673
    node.stop()
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import shutil
import subprocess
import time
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

from zocalo_nb.servers.system import (
    BrokerError,
    apt_install,
    free_ports,
    port_in_use,
    terminate,
)

SERVER = Path("/usr/lib/rabbitmq/bin/rabbitmq-server")
EPMD = shutil.which("epmd") or "/usr/lib/erlang/erts/bin/epmd"
DEBIAN_PACKAGES = ("rabbitmq-server",)
PLUGINS = ("rabbitmq_management", "rabbitmq_prometheus")


@dataclass(frozen=True)
class RabbitMQ:
    """A private RabbitMQ node in ``base`` (see module docstring)."""

    base: Path
    port: int = 5672
    management_port: int = 15672
    user: str = "zocalo"
    password: str = field(default="zocalo", repr=False)
    vhost: str = "zocalo"
    #: The Erlang node name; default: one of its own per folder (two nodes of one name on
    #: a machine would disturb each other).
    node: str = ""
    statistics_interval_ms: int = 500

    @property
    def pid_file(self) -> Path:
        return self.base / "rabbitmq.pid"

    @property
    def log_file(self) -> Path:
        return self.base / "rabbitmq.out"

    @property
    def url(self) -> str:
        """The zocalo_nb broker URL of this node (its management port in the query)."""
        return (
            f"amqp://{self.user}:{self.password}@127.0.0.1:{self.port}/{self.vhost}"
            f"?management={self.management_port}"
        )

    # -- install ---------------------------------------------------------------------------
    @staticmethod
    def installed() -> bool:
        return SERVER.exists()

    @classmethod
    def install(cls) -> None:
        """Install Debian's package when missing (needs root). The package's own service is
        left as the package leaves it; ours is a separate node."""
        if not cls.installed():
            apt_install(DEBIAN_PACKAGES, what="RabbitMQ")

    # -- start / stop ----------------------------------------------------------------------
    def pid(self) -> int | None:
        """The pid of our running node (its Erlang VM), or None."""
        try:
            pid = int(self.pid_file.read_text().strip())
        except (OSError, ValueError):
            return None
        try:
            cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
        except OSError:
            return None
        return pid if str(self.base.resolve()).encode() in cmdline else None

    def start(self, *, timeout: float = 90.0) -> int:
        """Start the node in the background, wait until its management API answers; returns
        the node's pid."""
        running = self.pid()
        if running is not None:
            if self.ready():
                return running
            raise BrokerError(
                f"our RabbitMQ (pid {running}) runs but its API does not answer",
                hint=f"stop it (zocalo-nb broker stop --kind rabbitmq --dir {self.base})",
            )
        if self.port == self.management_port:
            raise BrokerError(
                f"AMQP and the management API cannot share port {self.port}",
                hint="give them different ports (--port, --management-port)",
            )
        for port in (self.port, self.management_port):
            if port_in_use(port):
                raise BrokerError(
                    f"something else already listens on 127.0.0.1:{port}",
                    hint="start ours on other ports (--port, --management-port)",
                )
        if not self.installed():
            raise BrokerError(
                "RabbitMQ is not installed",
                hint="run 'zocalo-nb broker install --kind rabbitmq' (as root)",
            )
        epmd_port, dist_port, prometheus_port = free_ports(
            3, avoid=(self.port, self.management_port)
        )
        self._prepare(prometheus_port)
        epmd = subprocess.Popen(
            [EPMD, "-port", str(epmd_port)],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            start_new_session=True,
        )
        (self.base / "epmd.pid").write_text(f"{epmd.pid}\n")
        base = self.base.resolve()  # the node runs in it: relative paths would not do
        env = {
            "HOME": str(base),
            "PATH": "/usr/sbin:/usr/bin:/sbin:/bin",
            "LANG": "C.UTF-8",
            "ERL_EPMD_PORT": str(epmd_port),
            "RABBITMQ_NODENAME": self.node or _node_name(base),
            "RABBITMQ_CONFIG_FILE": str(base / "rabbitmq"),
            "RABBITMQ_ENABLED_PLUGINS_FILE": str(base / "enabled_plugins"),
            "RABBITMQ_MNESIA_BASE": str(base / "mnesia"),
            "RABBITMQ_LOG_BASE": str(base / "log"),
            "RABBITMQ_DIST_PORT": str(dist_port),
            "RABBITMQ_PID_FILE": str(base / self.pid_file.name),
        }
        with self.log_file.open("ab") as log:
            process = subprocess.Popen(
                [str(SERVER)],
                cwd=self.base,
                env=env,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if process.poll() is not None:
                self._stop_epmd()
                raise BrokerError(
                    f"RabbitMQ exited with code {process.returncode} while starting:\n"
                    + self.log_tail(),
                    hint=f"read {self.log_file} and {self.base / 'log'}",
                )
            pid = self.pid()
            if pid is not None and self.ready():
                return pid
            time.sleep(0.3)
        self.stop()
        raise BrokerError(
            f"RabbitMQ did not answer within {timeout:g} s:\n" + self.log_tail(),
            hint=f"read {self.log_file}",
        )

    def ready(self, timeout: float = 2.0) -> bool:
        """True when the AMQP port accepts connections and the management API answers with
        our credentials (the API can answer before the node's AMQP listener is up)."""
        if not port_in_use(self.port):
            return False
        request = urllib.request.Request(
            f"http://127.0.0.1:{self.management_port}/api/overview",
            headers={"Authorization": _basic(self.user, self.password)},
        )
        with contextlib.suppress(OSError), urllib.request.urlopen(request, timeout=timeout) as r:
            return bool(r.status == 200)
        return False

    def stop(self, *, timeout: float = 60.0) -> bool:
        """Stop our node (SIGTERM, then SIGKILL) and our epmd; False if it was not running."""
        pid = self.pid()
        if pid is not None:
            terminate(pid, timeout)
        self.pid_file.unlink(missing_ok=True)
        self._stop_epmd()
        return pid is not None

    def status(self) -> str:
        pid = self.pid()
        if pid is None:
            return f"stopped ({self.base})"
        answers = "answers" if self.ready() else "does NOT answer"
        return (
            f"running, pid {pid}, amqp 127.0.0.1:{self.port}, management "
            f"127.0.0.1:{self.management_port} {answers} ({self.base})"
        )

    def log_tail(self, lines: int = 20) -> str:
        try:
            return "\n".join(self.log_file.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return "(no log)"

    def _prepare(self, prometheus_port: int) -> None:
        for folder in ("mnesia", "log"):
            (self.base / folder).mkdir(parents=True, exist_ok=True)
        (self.base / "rabbitmq.conf").write_text(
            "\n".join(
                [
                    f"listeners.tcp.1 = 127.0.0.1:{self.port}",
                    "management.tcp.ip = 127.0.0.1",
                    f"management.tcp.port = {self.management_port}",
                    "prometheus.tcp.ip = 127.0.0.1",
                    f"prometheus.tcp.port = {prometheus_port}",
                    "loopback_users = none",
                    f"default_user = {self.user}",
                    f"default_pass = {self.password}",
                    f"default_vhost = {self.vhost}",
                    "default_user_tags.administrator = true",
                    "default_permissions.configure = .*",
                    "default_permissions.read = .*",
                    "default_permissions.write = .*",
                    # fresh counters for statistics() (RabbitMQ's default is every 5 s)
                    f"collect_statistics_interval = {self.statistics_interval_ms}",
                    "",
                ]
            )
        )
        (self.base / "rabbitmq.conf").chmod(0o600)
        (self.base / "enabled_plugins").write_text(f"[{','.join(PLUGINS)}].\n")

    def _stop_epmd(self) -> None:
        file = self.base / "epmd.pid"
        with contextlib.suppress(OSError, ValueError):
            pid = int(file.read_text().strip())
            cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
            if b"epmd" in cmdline:
                terminate(pid, 5.0)
        file.unlink(missing_ok=True)


def _node_name(base: Path) -> str:
    digest = hashlib.sha256(str(base).encode()).hexdigest()[:10]
    return f"zocalo-nb-{digest}@localhost"


def _basic(user: str, password: str) -> str:
    return "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()
