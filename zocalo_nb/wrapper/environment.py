"""The environment a job (a command, a notebook kernel) gets: the service's, without the
broker's and database's URLs and without anything that looks like a credential. A job that
needs one gets it from its step's ``environment`` parameter, explicitly."""

from __future__ import annotations

import os
import re
from collections.abc import Mapping

#: Names a job never inherits from its service.
SECRET_NAMES = re.compile(
    r"PASSWORD|PASSCODE|PASSWD|SECRET|TOKEN|CREDENTIAL|^ZOCALO_NB_BROKER$|^ZOCALO_NB_HISTORY$",
    re.IGNORECASE,
)


def job_environment(extra: Mapping[str, object] | None = None) -> dict[str, str]:
    """The service's environment without secrets, plus ``extra`` (the step's own)."""
    env = {k: v for k, v in os.environ.items() if not SECRET_NAMES.search(k)}
    env.update({str(k): str(v) for k, v in (extra or {}).items()})
    return env
