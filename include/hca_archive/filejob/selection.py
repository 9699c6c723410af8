"""Choose the jobs to run from a plan document, so that one bad job cannot stop the others.

``parse_plan`` refuses a whole plan when any job is wrong. Here each problem is attributed to
its job (by the contract's ``job <n> ...`` prefix); the other jobs still run, and the bad ones
become failed outcomes that carry their problems (for example an unsupported conversion schema).
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Mapping
from typing import Any

from hca_archive.filejob.job import JobOutcome
from hca_archive.plan import PlanError, PlanJob, parse_plan

_JOB_PROBLEM = re.compile(r"^job (\d+)\b")


class PlanUnusable(ValueError):
    """No job of the plan can be told apart (not a job list, no jobs, unknown job index)."""


def select_jobs(
    document: Any, index: int | None = None, *, dsp_url: str | None = None
) -> tuple[list[PlanJob], list[JobOutcome]]:
    """``(jobs to run, failed outcomes of invalid jobs)`` for job ``index`` or every job.

    With ``dsp_url``, a job that targets another DSP is invalid.
    """
    try:
        plan = parse_plan(document, dsp_url=dsp_url)
    except PlanError as error:
        return _valid_part(document, error, index, dsp_url)
    jobs = [job for job in plan.jobs if index is None or job.index == index]
    if not jobs:
        raise PlanUnusable(f"the plan has no job {index} (it has {len(plan.jobs)})")
    return jobs, []


def _valid_part(
    document: Any, error: PlanError, index: int | None, dsp_url: str | None
) -> tuple[list[PlanJob], list[JobOutcome]]:
    problems_by_job: dict[int, list[str]] = {}
    for problem in error.problems:
        match = _JOB_PROBLEM.match(problem)
        if match is None:
            raise PlanUnusable("the plan is not usable: " + "; ".join(error.problems)) from None
        problems_by_job.setdefault(int(match.group(1)), []).append(problem)
    raw_jobs = document["jobs"] if isinstance(document, Mapping) else document
    if index is not None and not 0 <= index < len(raw_jobs):
        raise PlanUnusable(f"the plan has no job {index} (it has {len(raw_jobs)})")
    jobs: list[PlanJob] = []
    refused: list[JobOutcome] = []
    for position, raw_job in enumerate(raw_jobs):
        if index is not None and position != index:
            continue
        if position in problems_by_job:
            refused.append(_refused(position, raw_job, problems_by_job[position]))
        else:
            (job,) = parse_plan({"jobs": [raw_job]}, dsp_url=dsp_url).jobs
            jobs.append(dataclasses.replace(job, index=position))
    return jobs, refused


def _refused(position: int, raw_job: Any, problems: list[str]) -> JobOutcome:
    manifest_id = raw_job.get("manifest_id") if isinstance(raw_job, Mapping) else None
    manifest_id = manifest_id if isinstance(manifest_id, str) else ""
    return JobOutcome(
        index=position,
        manifest_id=manifest_id,
        label=manifest_id or f"job {position}",
        status="failed",
        error="invalid plan entry: " + "; ".join(problems),
        retryable=False,  # the plan is the same on every try
    )
