"""Our own single-node Slurm: Debian's packages, a private munge, stopped by its pids alone.

Everything lives in one folder (``base``): ``slurm.conf``, the controller's state, the compute
daemon's spool, logs, the munge key and socket, and the completion log (``jobcomp.txt``, read
with ``sacct -c``: no database). Daemons run in the foreground as children we track by pid,
listening on ports of their own; clients find this cluster through ``SLURM_CONF`` (see
:meth:`Slurm.environment`). Settings from ../shared/SLURM.md: ``batch_sched_delay=0`` (else
every batch job waits ~3 s more), finished jobs visible for an hour, ``cpus`` advertised
(``config_overrides``) so that many one-CPU jobs run at once on a small machine.

Example::

    cluster = Slurm(Path(".zocalo-nb/slurm"))
    cluster.start()
    subprocess.run(["sbatch", "--wrap", "true"], env={**os.environ, **cluster.environment()})
    cluster.stop()
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

from zocalo_nb.servers.system import BrokerError, alive, apt_install, free_ports, terminate

DEBIAN_PACKAGES = (
    "slurmctld",
    "slurmd",
    "slurm-client",
    "munge",
    "slurmrestd",
    "slurm-wlm-jwt-plugin",  # auth/jwt, which slurm.conf names for slurmrestd tokens
)
DAEMONS = ("munged", "slurmctld", "slurmd")


def _listening(port: int) -> bool:
    with socket.socket() as probe:
        return probe.connect_ex(("127.0.0.1", port)) == 0


def _memory_mb() -> int:
    pages, size = os.sysconf("SC_PHYS_PAGES"), os.sysconf("SC_PAGE_SIZE")
    return max(1024, int(pages * size / 2**20) - 512)


@dataclass(frozen=True)
class Slurm:
    """A private single-node Slurm cluster in ``base`` (see module docstring)."""

    base: Path
    #: CPUs the node advertises (one-CPU jobs that run at once).
    cpus: int = 8
    #: Seconds between SIGTERM and SIGKILL for a job past its time limit or cancelled.
    kill_wait: int = 5

    @property
    def conf(self) -> Path:
        return self.base / "slurm.conf"

    def environment(self) -> dict[str, str]:
        """What a client command (sbatch, squeue, scontrol, sacct) needs to find us."""
        return {"SLURM_CONF": str(self.conf.resolve())}

    @staticmethod
    def installed() -> bool:
        return all(shutil.which(tool) for tool in ("slurmctld", "slurmd", "sbatch", "munged"))

    @staticmethod
    def install() -> None:
        """Debian's packages (as root); installing starts no daemon."""
        apt_install(DEBIAN_PACKAGES, what="Slurm")

    def pids(self) -> dict[str, int]:
        """Our daemons that run, by name."""
        running = {}
        for name in (*DAEMONS, "slurmrestd"):
            path = self.base / f"{name}.pid"
            try:
                pid = int(path.read_text().split()[0])
            except (OSError, ValueError, IndexError):
                continue
            if alive(pid):
                running[name] = pid
        return running

    def start(self, timeout: float = 60.0) -> None:
        """Start munged, slurmctld and slurmd; return once the node takes jobs."""
        if all(name in self.pids() for name in DAEMONS):
            return
        if not self.installed():
            raise BrokerError(
                "Slurm is not installed",
                hint="run 'zocalo-nb broker install --kind slurm' (as root)",
            )
        self.stop()
        base = self.base.resolve()
        for folder in ("state", "spool", "log", "munge"):
            (base / folder).mkdir(parents=True, exist_ok=True)
        base.chmod(0o755)
        (base / "munge").chmod(0o755)
        key = base / "munge" / "munge.key"
        if not key.exists():
            key.write_bytes(os.urandom(1024))
        key.chmod(0o600)
        jwt = base / "jwt.key"
        if not jwt.exists():
            jwt.write_bytes(os.urandom(32))
        jwt.chmod(0o600)
        self.conf.write_text(self._config(base))
        socket_path = base / "munge" / "munge.socket"
        self._spawn(
            "munged",
            ["munged", "--foreground", "--force", f"--socket={socket_path}",
             f"--key-file={key}", f"--pid-file={base / 'munge' / 'munged.pid'}",
             f"--log-file={base / 'log' / 'munged.log'}", f"--seed-file={base / 'munge' / 'seed'}"],
        )  # fmt: skip
        deadline = time.monotonic() + timeout
        while not socket_path.exists():
            self._check(deadline, "munged")
        self._spawn("slurmctld", ["slurmctld", "-D", "-f", str(self.conf)])
        self._spawn("slurmd", ["slurmd", "-D", "-f", str(self.conf)])
        while not self.ready():
            self._check(deadline, "the node")

    def _check(self, deadline: float, what: str) -> None:
        missing = [name for name in DAEMONS if (self.base / f"{name}.pid").exists()]
        dead = [name for name in missing if name not in self.pids()]
        if dead or time.monotonic() > deadline:
            self.stop()
            raise BrokerError(
                f"Slurm did not start ({what}: "
                f"{'exited: ' + ', '.join(dead) if dead else 'no answer'})",
                hint=f"read the logs in {self.base / 'log'}",
            )
        time.sleep(0.2)

    def _spawn(self, name: str, argv: list[str], env: dict[str, str] | None = None) -> None:
        with (self.base / "log" / f"{name}.out").open("ab") as out:
            process = subprocess.Popen(
                argv,
                cwd=self.base,
                env={"PATH": "/usr/sbin:/usr/bin:/sbin:/bin", "LANG": "C.UTF-8", **(env or {})},
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        (self.base / f"{name}.pid").write_text(f"{process.pid}\n")

    def ready(self) -> bool:
        """True when the node is idle or allocated (takes jobs)."""
        try:
            answer = subprocess.run(
                ["sinfo", "-h", "-o", "%T"],
                env={"PATH": "/usr/sbin:/usr/bin:/sbin:/bin", **self.environment()},
                capture_output=True,
                text=True,
                timeout=10,
            )
        except (OSError, subprocess.TimeoutExpired):
            return False
        states = answer.stdout.split()
        return (
            answer.returncode == 0
            and bool(states)
            and all(s.rstrip("*") in ("idle", "mixed", "allocated", "completing") for s in states)
        )

    def start_rest(self, *, port: int | None = None) -> str:
        """Start slurmrestd (API v0.0.38) and return its URL: on a Unix socket in ``base``
        with local authentication (the caller's uid), or with ``port`` on 127.0.0.1 with JWT
        authentication (tokens from :meth:`token`)."""
        if port is None:
            url, argv = f"unix://{self.base.resolve() / 'rest.sock'}", ["-a", "rest_auth/local"]
            (self.base / "rest.sock").unlink(missing_ok=True)
            listen = f"unix:{self.base.resolve() / 'rest.sock'}"
        else:
            url, argv, listen = (
                f"http://127.0.0.1:{port}",
                ["-a", "rest_auth/jwt"],
                f"127.0.0.1:{port}",
            )
            argv = ["-u", "nobody", *argv]
        self._spawn(
            "slurmrestd",
            ["slurmrestd", *argv, "-s", "openapi/v0.0.38", listen],
            {**self.environment(), "SLURMRESTD_SECURITY": "disable_user_check",
             **({"SLURM_JWT": "daemon"} if port is not None else {})},
        )  # fmt: skip
        deadline = time.monotonic() + 30
        while not (self.base / "rest.sock").exists() if port is None else not _listening(port):
            if "slurmrestd" not in self.pids() or time.monotonic() > deadline:
                raise BrokerError(
                    "slurmrestd did not start", hint=f"read {self.base / 'log' / 'slurmrestd.out'}"
                )
            time.sleep(0.1)
        return url

    def stop_rest(self) -> None:
        """Stop our slurmrestd (by its pid), leaving the cluster running."""
        pid = self.pids().get("slurmrestd")
        if pid is not None:
            terminate(pid, timeout=15)
        (self.base / "slurmrestd.pid").unlink(missing_ok=True)

    def token(self, user: str = "root", lifespan: int = 3600) -> str:
        """A JWT for ``user`` (``scontrol token``), for slurmrestd over TCP."""
        answer = subprocess.run(
            ["scontrol", "token", f"username={user}", f"lifespan={lifespan}"],
            env={"PATH": "/usr/sbin:/usr/bin:/sbin:/bin", **self.environment()},
            capture_output=True,
            text=True,
            check=True,
        )
        return answer.stdout.strip().partition("=")[2]

    def stop(self) -> None:
        """Stop our daemons (by the pids we started), the node first."""
        for name in ("slurmrestd", *reversed(DAEMONS)):
            pid = self.pids().get(name)
            if pid is not None:
                terminate(pid, timeout=15)
            (self.base / f"{name}.pid").unlink(missing_ok=True)

    def _config(self, base: Path) -> str:
        host = socket.gethostname().split(".")[0]
        controller, node = free_ports(2)
        return "\n".join(
            [
                "# written by zocalo_nb.servers.slurm: a private single-node cluster",
                "ClusterName=zocalonb",
                f"SlurmctldHost={host}(127.0.0.1)",
                f"SlurmctldPort={controller}",
                f"SlurmdPort={node}",
                "SlurmUser=root",
                "SlurmdUser=root",
                "AuthType=auth/munge",
                f"AuthInfo=socket={base / 'munge' / 'munge.socket'}",
                "AuthAltTypes=auth/jwt",
                f"AuthAltParameters=jwt_key={base / 'jwt.key'}",
                f"StateSaveLocation={base / 'state'}",
                f"SlurmdSpoolDir={base / 'spool'}",
                f"SlurmctldPidFile={base / 'state' / 'slurmctld.pid'}",
                f"SlurmdPidFile={base / 'spool' / 'slurmd.pid'}",
                f"SlurmctldLogFile={base / 'log' / 'slurmctld.log'}",
                f"SlurmdLogFile={base / 'log' / 'slurmd.log'}",
                "ProctrackType=proctrack/linuxproc",
                "TaskPlugin=task/none",
                "SelectType=select/cons_tres",
                "SelectTypeParameters=CR_Core",
                "JobAcctGatherType=jobacct_gather/none",
                "AccountingStorageType=accounting_storage/none",
                "JobCompType=jobcomp/filetxt",
                f"JobCompLoc={base / 'jobcomp.txt'}",
                "MpiDefault=none",
                "ReturnToService=2",
                "SchedulerParameters=batch_sched_delay=0",
                "DependencyParameters=kill_invalid_depend",
                "MinJobAge=3600",
                f"KillWait={self.kill_wait}",
                "SlurmdParameters=config_overrides",
                f"NodeName={host} NodeAddr=127.0.0.1 CPUs={self.cpus} "
                f"RealMemory={_memory_mb()} State=UNKNOWN",
                f"PartitionName=main Nodes={host} Default=YES MaxTime=INFINITE State=UP",
                "",
            ]
        )
