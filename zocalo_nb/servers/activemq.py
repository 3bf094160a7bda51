"""Our own ActiveMQ: install the Debian package, start a private instance, stop only our pid.

The instance lives in one folder (``base``): ``conf/`` (our activemq.xml and log config),
``data/`` (KahaDB), ``lib/`` (the jars the statistics plugin needs), ``activemq.pid`` and
``activemq.log``. Start refuses a port something else already answers on, waits for a real
STOMP CONNECT -> CONNECTED, and fails fast (with the log's tail) if the JVM dies.

Example::

    instance = ActiveMQ(Path(".zocalo-nb/activemq"), stomp_port=61613)
    instance.start()
    ...
    instance.stop()
"""

from __future__ import annotations

import contextlib
import shutil
import socket
import subprocess
import time
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path

from zocalo_nb.servers.system import BrokerError, apt_install, port_in_use, terminate

ACTIVEMQ_HOME = Path("/usr/share/activemq")
ACTIVEMQ_JAR = ACTIVEMQ_HOME / "bin" / "activemq.jar"
DEBIAN_PACKAGES = ("activemq", "libxstream-java", "libjettison-java")
#: Jars the statistics plugin needs for JSON map replies (missing from Debian's classpath).
EXTRA_JARS = (Path("/usr/share/java/xstream.jar"), Path("/usr/share/java/jettison.jar"))


@dataclass(frozen=True)
class ActiveMQ:
    """A private ActiveMQ instance in ``base`` (see module docstring)."""

    base: Path
    stomp_port: int = 61613
    user: str = "zocalo"
    password: str = field(default="zocalo", repr=False)
    #: Redeliveries after a NACK before the message goes to DLQ.<queue>.
    redeliveries: int = 5
    #: Milliseconds between redeliveries (ActiveMQ refuses to start below 1000).
    redelivery_delay_ms: int = 1000
    #: KahaDB journal sync: "always" (safest), "periodic" or "never" (fast, for tests).
    journal_sync: str = "periodic"
    heap: str = "512M"

    @property
    def pid_file(self) -> Path:
        return self.base / "activemq.pid"

    @property
    def log_file(self) -> Path:
        return self.base / "activemq.log"

    @property
    def url(self) -> str:
        """The zocalo_nb broker URL of this instance."""
        return f"stomp://{self.user}:{self.password}@127.0.0.1:{self.stomp_port}"

    # -- install ---------------------------------------------------------------------------
    @staticmethod
    def installed() -> bool:
        """True when ActiveMQ and Java are on this machine."""
        return ACTIVEMQ_JAR.exists() and shutil.which("java") is not None

    @classmethod
    def install(cls) -> None:
        """Install the Debian packages when missing (needs root)."""
        if cls.installed() and all(jar.exists() for jar in EXTRA_JARS):
            return
        apt_install(DEBIAN_PACKAGES, what="ActiveMQ")

    # -- start / stop ----------------------------------------------------------------------
    def pid(self) -> int | None:
        """The pid of our running instance, or None (stale pid files are ignored)."""
        try:
            pid = int(self.pid_file.read_text().strip())
        except (OSError, ValueError):
            return None
        try:
            cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
        except OSError:
            return None
        marker = f"-Dactivemq.base={self.base.resolve()}".encode()
        return pid if marker in cmdline else None

    def start(self, *, timeout: float = 60.0) -> int:
        """Start the instance in the background and wait until STOMP answers; returns its pid."""
        running = self.pid()
        if running is not None:
            if stomp_ready(self.stomp_port, self.user, self.password, timeout=timeout):
                return running
            raise BrokerError(
                f"our ActiveMQ (pid {running}) runs but does not answer STOMP on {self.stomp_port}",
                hint=f"stop it (zocalo-nb broker stop --dir {self.base}) and start again",
            )
        if port_in_use(self.stomp_port):
            raise BrokerError(
                f"something else already listens on 127.0.0.1:{self.stomp_port}",
                hint="stop it, or start ours on another port with --port",
            )
        if not self.installed():
            raise BrokerError(
                "ActiveMQ is not installed", hint="run 'zocalo-nb broker install' (as root)"
            )
        self._prepare()
        log = self.log_file.open("ab")
        process = subprocess.Popen(
            self._command(),
            cwd=self.base,
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        log.close()
        self.pid_file.write_text(f"{process.pid}\n")
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if process.poll() is not None:
                raise BrokerError(
                    f"ActiveMQ exited with code {process.returncode} while starting:\n"
                    + self.log_tail(),
                    hint=f"read {self.log_file}",
                )
            if stomp_ready(self.stomp_port, self.user, self.password, timeout=1.0):
                return process.pid
            time.sleep(0.2)
        self.stop()
        raise BrokerError(
            f"ActiveMQ did not answer STOMP within {timeout:g} s:\n" + self.log_tail(),
            hint=f"read {self.log_file}",
        )

    def stop(self, *, timeout: float = 30.0) -> bool:
        """Stop our instance (SIGTERM, then SIGKILL after ``timeout``); False if not running."""
        pid = self.pid()
        if pid is None:
            self.pid_file.unlink(missing_ok=True)
            return False
        terminate(pid, timeout)
        self.pid_file.unlink(missing_ok=True)
        return True

    def status(self) -> str:
        """One line: running or not, pid, port, whether STOMP answers."""
        pid = self.pid()
        if pid is None:
            return f"stopped ({self.base})"
        ready = stomp_ready(self.stomp_port, self.user, self.password, timeout=2.0)
        return (
            f"running, pid {pid}, stomp 127.0.0.1:{self.stomp_port} "
            f"{'answers' if ready else 'does NOT answer'} ({self.base})"
        )

    def log_tail(self, lines: int = 20) -> str:
        """The last lines of the instance's log."""
        try:
            return "\n".join(self.log_file.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return "(no log)"

    def _prepare(self) -> None:
        for folder in ("conf", "data", "lib", "tmp"):
            (self.base / folder).mkdir(parents=True, exist_ok=True)
        package = resources.files("zocalo_nb.servers")
        for name in ("activemq.xml", "log4j.properties"):
            (self.base / "conf" / name).write_text(package.joinpath(name).read_text())
        # Credentials in a file only we can read, never on the java command line (ps shows
        # it, and ActiveMQ writes its JVM arguments into its log).
        credentials = self.base / "conf" / "credentials.properties"
        credentials.touch(mode=0o600)
        credentials.chmod(0o600)
        credentials.write_text(
            f"zocalo.user={_java_property(self.user)}\n"
            f"zocalo.password={_java_property(self.password)}\n"
        )
        self.log_file.touch(mode=0o600)
        self.log_file.chmod(0o600)
        for jar in EXTRA_JARS:
            link = self.base / "lib" / jar.name
            if jar.exists() and not link.exists():
                link.symlink_to(jar)

    def _command(self) -> list[str]:
        base = self.base.resolve()
        properties = {
            "activemq.base": base,
            "activemq.home": ACTIVEMQ_HOME,
            "activemq.conf": base / "conf",
            "activemq.data": base / "data",
            "java.io.tmpdir": base / "tmp",
            "log4j.configuration": f"file:{base / 'conf' / 'log4j.properties'}",
            "zocalo.stomp.port": self.stomp_port,
            "zocalo.redeliveries": self.redeliveries,
            "zocalo.redelivery.delay": self.redelivery_delay_ms,
            "zocalo.journal.sync": self.journal_sync,
        }
        return [
            "java",
            f"-Xmx{self.heap}",
            f"-Xms{self.heap}",
            "-XX:+UseParallelGC",
            *(f"-D{key}={value}" for key, value in properties.items()),
            "-jar",
            str(ACTIVEMQ_JAR),
            "start",
            f"xbean:file:{base / 'conf' / 'activemq.xml'}?validate=false",
        ]


def _java_property(value: str) -> str:
    """``value`` escaped for a Java properties file (backslashes, separators, non-ASCII)."""
    out = []
    for char in value:
        if char in "\\:=#! ":
            out.append("\\" + char)
        elif not (32 <= ord(char) < 127):
            out.append("".join(f"\\u{unit:04x}" for unit in _utf16(char)))
        else:
            out.append(char)
    return "".join(out)


def _utf16(char: str) -> list[int]:
    data = char.encode("utf-16-be")
    return [int.from_bytes(data[i : i + 2], "big") for i in range(0, len(data), 2)]


def stomp_ready(port: int, user: str, password: str, *, timeout: float = 2.0) -> bool:
    """True when a STOMP CONNECT on 127.0.0.1:port is answered with CONNECTED."""
    frame = (
        f"CONNECT\naccept-version:1.2\nhost:localhost\nlogin:{user}\npasscode:{password}\n\n\0"
    ).encode()
    with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), timeout) as s:
        s.settimeout(timeout)
        s.sendall(frame)
        reply = s.recv(4096)
        with contextlib.suppress(OSError):
            s.sendall(b"DISCONNECT\n\n\0")
        return reply.startswith(b"CONNECTED")
    return False
