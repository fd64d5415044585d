"""One pool of worker processes for long jobs (the zoo's models, the scaling study's grid).

On a small CPU one single-threaded process per core beats one process with a thread per core:
these models' matrices are too small to split well, and a thread that waits for a descheduled
sibling stalls the whole step. :func:`run_jobs` starts each job as its own ``python -m`` process
with its output in a log file, keeps ``jobs`` of them running, and reports the ones that failed.
"""
from __future__ import annotations

import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

from tqdm import tqdm

__all__ = ["Job", "last_line", "run_jobs"]


@dataclass(frozen=True)
class Job:
    """One worker: ``python -m <module> <args...>`` with stdout and stderr in ``log``."""

    label: str
    module: str
    args: tuple[str, ...]
    log: Path


def run_jobs(todo: list[Job], *, jobs: int, desc: str, progress: bool = True, poll_s: float = 0.5) -> list[Job]:
    """Run ``todo`` in order, ``jobs`` processes at a time; the jobs whose process failed.

    A job's log file is created (with its folder) when it starts and overwritten if it existed.
    """
    queue = list(todo)
    running: dict[Job, subprocess.Popen] = {}
    failed: list[Job] = []
    bar = tqdm(total=len(queue), desc=f"{desc} ({jobs} jobs)", unit="job", disable=not progress)
    try:
        while queue or running:
            while queue and len(running) < jobs:
                job = queue.pop(0)
                job.log.parent.mkdir(parents=True, exist_ok=True)
                with open(job.log, "w") as fh:
                    running[job] = subprocess.Popen([sys.executable, "-m", job.module, *job.args], stdout=fh,
                                                    stderr=subprocess.STDOUT)
            time.sleep(poll_s)
            for job, proc in list(running.items()):
                if proc.poll() is not None:
                    del running[job]
                    bar.update(1)
                    if proc.returncode != 0:
                        failed.append(job)
    finally:
        for proc in running.values():  # interrupted: no orphan keeps training
            proc.terminate()
        bar.close()
    return failed


def last_line(job: Job) -> str:
    """The last line of a job's log ("" when empty or missing): the error a failed worker printed."""
    try:
        lines = job.log.read_text().strip().splitlines()
    except OSError:
        return ""
    return lines[-1] if lines else ""
