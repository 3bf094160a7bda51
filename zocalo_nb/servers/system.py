"""What our private servers share: the error, installing Debian packages, ports, pids."""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import time
from collections.abc import Sequence
from pathlib import Path

from zocalo_nb.errors import ZocaloNbError


class BrokerError(ZocaloNbError):
    """Installing, starting or stopping our broker failed."""


def apt_install(packages: Sequence[str], *, what: str) -> None:
    """Install Debian packages (needs root); BrokerError with the command to run otherwise."""
    if os.geteuid() != 0:
        raise BrokerError(
            f"{what} is not installed and installing it needs root",
            hint="sudo apt-get install -y --no-install-recommends " + " ".join(packages),
        )
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    command = ["apt-get", "install", "-y", "-q", "--no-install-recommends", *packages]
    done = subprocess.run(command, env=env, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        subprocess.run(["apt-get", "update", "-q"], env=env, capture_output=True, check=False)
        done = subprocess.run(command, env=env, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise BrokerError(
            f"apt-get install {' '.join(packages)} failed: {done.stderr.strip()[-300:]}",
            hint="check the network to the Debian mirror, then retry",
        )


def free_ports(count: int, *, avoid: Sequence[int] = ()) -> list[int]:
    """``count`` distinct free TCP ports on 127.0.0.1, none of them in ``avoid``. The probe
    sockets stay open until all are chosen: two probes opened one after the other can be
    given the same port (found: our RabbitMQ started with one port for AMQP and management,
    and its AMQP listener failed)."""
    probes: list[socket.socket] = []
    ports: list[int] = []
    try:
        while len(ports) < count:
            probe = socket.socket()
            probes.append(probe)
            probe.bind(("127.0.0.1", 0))
            port = int(probe.getsockname()[1])
            if port not in avoid and port not in ports:
                ports.append(port)
    finally:
        for probe in probes:
            probe.close()
    return ports


def port_in_use(port: int, host: str = "127.0.0.1") -> bool:
    """True when something accepts TCP connections on host:port."""
    with socket.socket() as probe:
        probe.settimeout(0.5)
        return probe.connect_ex((host, port)) == 0


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    # A zombie child of ours is dead for our purposes.
    with contextlib.suppress(OSError):
        if Path(f"/proc/{pid}/stat").read_text().split(") ", 1)[1].startswith("Z"):
            with contextlib.suppress(ChildProcessError):
                os.waitpid(pid, os.WNOHANG)
            return False
    return True


def terminate(pid: int, timeout: float) -> None:
    """SIGTERM ``pid``, wait up to ``timeout`` seconds, then SIGKILL it and wait until gone."""
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and alive(pid):
        time.sleep(0.05)
    if alive(pid):
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)
        while alive(pid):
            time.sleep(0.05)
