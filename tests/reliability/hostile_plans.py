"""Hostile upload plans, made from a real sandbox job, and the problem each must be refused with.

Every case turns one real (valid) plain job into a plan the archiver could serve; ``expected`` is
the line of ``PlanError`` the refusal must carry: ``job <n> (manifest <id>): <field>: <what>``.
"""

from __future__ import annotations

import copy
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

Job = dict[str, Any]


@dataclass(frozen=True)
class HostileCase:
    name: str
    make: Callable[[Job], list[Job]]
    expected: Callable[[Job], str]


def _renamed(name: str) -> Callable[[Job], list[Job]]:
    def make(job: Job) -> list[Job]:
        hostile = copy.deepcopy(job)
        hostile["files"][0]["name"] = name
        return [hostile]

    return make


def _sourced(url: str) -> Callable[[Job], list[Job]]:
    def make(job: Job) -> list[Job]:
        hostile = copy.deepcopy(job)
        hostile["files"][0]["cloud_url"] = url
        return [hostile]

    return make


def _unknown_schema(job: Job) -> list[Job]:
    hostile = copy.deepcopy(job)
    inputs = [file for file in hostile["files"] if file["read_index"] in ("read1", "read2")]
    hostile["conversion"] = {"output_name": "out.bam", "schema": "10xV9", "inputs": inputs}
    hostile["files"] = [{"name": "out.bam"}]
    return [hostile]


def _duplicate_output(job: Job) -> list[Job]:
    second = copy.deepcopy(job)
    second["manifest_id"] = f"{job['manifest_id']}-again"
    return [copy.deepcopy(job), second]


def _dsp_elsewhere(job: Job) -> list[Job]:
    hostile = copy.deepcopy(job)
    hostile["dsp_api_url"] = "http://169.254.169.254/"
    return [hostile]


def _first(field: str, what: str) -> Callable[[Job], str]:
    return lambda job: f"job 0 (manifest {job['manifest_id']}): {field}: {what}"


CASES = [
    HostileCase(
        "newline-and-semicolon-name",
        _renamed("R1;\nrm -rf ~.fastq.gz"),
        _first("files[0].name", "contains a control character (U+000A)"),
    ),
    HostileCase(
        "parent-path-name",
        _renamed("../../.ssh/authorized_keys"),
        _first("files[0].name", "contains '/'"),
    ),
    HostileCase(
        "absolute-path-name", _renamed("/etc/passwd"), _first("files[0].name", "contains '/'")
    ),
    HostileCase(
        "name-over-200-bytes",
        _renamed("x" * 300),
        _first("files[0].name", "is 300 bytes in UTF-8 (at most 200)"),
    ),
    HostileCase(
        "file-url",
        _sourced("file:///etc/passwd"),
        _first("files[0].cloud_url", "must be an s3://bucket/key URL, got 'file:///etc/passwd'"),
    ),
    HostileCase(
        "metadata-service-url",
        _sourced("http://169.254.169.254/latest/meta-data/iam"),
        _first("files[0].cloud_url", "must be an s3://bucket/key URL"),
    ),
    HostileCase(
        "dsp-on-metadata-service",
        _dsp_elsewhere,
        _first("dsp_api_url", "points to a link-local address '169.254.169.254'"),
    ),
    HostileCase(
        "unknown-schema",
        _unknown_schema,
        _first("conversion.schema", "'10xV9' is not supported"),
    ),
    HostileCase(
        "duplicate-output-name",
        _duplicate_output,
        lambda job: (
            f"job 1 (manifest {job['manifest_id']}-again): files[0].name: "
            f"'{job['files'][0]['name']}' is also uploaded by job 0"
        ),
    ),
    HostileCase(
        "command-substitution-name",
        _renamed("$(touch pwned-a).fastq.gz"),
        _first("files[0].name", "contains shell metacharacters $ ( )"),
    ),
    HostileCase(
        "backticks-and-semicolon-name",
        _renamed("`touch pwned-b`;touch pwned-c"),
        _first("files[0].name", "contains shell metacharacters ; `"),
    ),
    HostileCase(
        "quotes-and-operators-name",
        _renamed('it\'s "quoted" & |'),
        _first("files[0].name", "contains shell metacharacters \" & ' |"),
    ),
    HostileCase("empty-plan", lambda job: [], lambda job: "plan has no jobs"),
]

# Names a shell would act on (a shell running one would leave a ``pwned-*`` file): plan.py refuses
# them, so the job fails before any download.
SHELL_NAMES = ["$(touch pwned-a).fastq.gz", "`touch pwned-b`;touch pwned-c", 'it\'s "quoted" & |']
