"""Wrappers: one-off jobs (command lines; notebooks in zocalo_nb.notebook) with upstream's
lifecycle."""

from __future__ import annotations

from zocalo_nb.wrapper.command import CommandWrapper
from zocalo_nb.wrapper.lifecycle import Job, JobFailed, Outcome, Wrapper, run_job
from zocalo_nb.wrapper.registry import find_wrapper
from zocalo_nb.wrapper.service import wrapper_service

__all__ = [
    "CommandWrapper",
    "Job",
    "JobFailed",
    "Outcome",
    "Wrapper",
    "find_wrapper",
    "run_job",
    "wrapper_service",
]
