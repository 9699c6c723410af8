"""What DSP knows about a submission's data files: arrival, content checks, validation, blockers."""

from __future__ import annotations

import hashlib
import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pysam
from pysam.utils import SamtoolsError

from hca_archive.sandbox.context import Context
from hca_archive.sandbox.store import Store

log = logging.getLogger(__name__)

RUN_COLLECTION = "sequencingRuns"
NOT_FIRST_RECORD = 0x80 | 0x100 | 0x800  # second of a pair, secondary, supplementary


def missing_file_message(name: str) -> str:
    return f"file {name} referenced in the metadata is not exists on the file storage area"


def content_error_message(name: str, error: str | None) -> str:
    return f"file {name} failed the content check: {error}"


@dataclass(frozen=True)
class FileState:
    name: str
    entity_uuid: str
    state: str  # missing | pending | ready | failed
    error: str | None = None


def file_states(store: Store, dsp_uuid: str) -> list[FileState]:
    """The state of every file the submission's metadata references."""
    states = []
    expected = store.all(
        "SELECT name, entity_uuid FROM expected_files WHERE dsp_uuid = ? ORDER BY name", (dsp_uuid,)
    )
    for row in expected:
        uploads = store.all(
            "SELECT check_state, check_error FROM uploads WHERE dsp_uuid = ? AND name = ? "
            "AND completed IS NOT NULL ORDER BY completed DESC",
            (dsp_uuid, row["name"]),
        )
        checks = [upload["check_state"] for upload in uploads]
        if "ok" in checks:
            state, error = "ready", None
        elif not uploads:
            state, error = "missing", None
        elif checks[0] in ("none", "pending"):
            state, error = "pending", None
        else:
            state, error = "failed", uploads[0]["check_error"]
        states.append(FileState(row["name"], row["entity_uuid"], state, error))
    return states


def validation_report(ctx: Context, dsp_uuid: str) -> dict[str, Any]:
    """The archiver's ``validationErrors`` answer: file errors keyed by submittable URL."""
    errors: dict[str, list[dict[str, list[str]]]] = {}
    pending: list[str] = []
    for file in file_states(ctx.store, dsp_uuid):
        url = f"{ctx.urls.dsp}/api/{RUN_COLLECTION}/{file.entity_uuid}"
        if file.state == "missing":
            errors.setdefault(url, []).append({"FileReference": [missing_file_message(file.name)]})
        elif file.state == "failed":
            message = content_error_message(file.name, file.error)
            errors.setdefault(url, []).append({"FileContent": [message]})
        elif file.state == "pending":
            pending.append(url)
    return {"errors": errors, "pending": pending}


def blockers_summary(ctx: Context, dsp_uuid: str) -> dict[str, Any]:
    """DSP's ``submissionBlockersSummary`` for the submission."""
    states = file_states(ctx.store, dsp_uuid)
    runs_with_issues = {f.entity_uuid for f in states if f.state in ("missing", "failed")}
    per_type = {}
    if runs_with_issues:
        per_type[RUN_COLLECTION] = {
            "displayName": "Sequencing runs",
            "count": len(runs_with_issues),
        }
    entities = ctx.store.one("SELECT COUNT(*) AS n FROM entities WHERE dsp_uuid = ?", (dsp_uuid,))
    return {
        "notReadyFileCount": sum(1 for f in states if f.state != "ready"),
        "validationIssuesPerDataTypeId": per_type,
        "totalMetadataBlockers": len(runs_with_issues),
        "emptySubmission": entities is None or entities["n"] == 0,
        "anyPendingValidationResult": any(f.state == "pending" for f in states),
    }


def is_ready(summary: dict[str, Any]) -> bool:
    return (
        summary["notReadyFileCount"] == 0
        and summary["totalMetadataBlockers"] == 0
        and not summary["anyPendingValidationResult"]
        and not summary["emptySubmission"]
    )


def file_document(ctx: Context, dsp_uuid: str, name: str) -> dict[str, Any] | None:
    """DSP's file document for ``name``: the latest checked upload, else the latest upload."""
    row = ctx.store.one(
        "SELECT * FROM uploads WHERE dsp_uuid = ? AND name = ? "
        "ORDER BY check_state = 'ok' DESC, created DESC LIMIT 1",
        (dsp_uuid, name),
    )
    if row is None:
        return None
    if row["offset"] < row["length"]:
        status = "UPLOADING"
    else:
        status = {"ok": "READY_FOR_ARCHIVE", "failed": "ERROR"}.get(row["check_state"], "UPLOADED")
    return {
        "id": row["id"],
        "filename": name,
        "submissionId": dsp_uuid,
        "totalSize": row["length"],
        "uploadedSize": row["offset"],
        "checksum": row["md5"],
        "status": status,
        "createdDate": row["created"],
        "_links": {"self": {"href": f"{ctx.urls.dsp}/api/files/{row['id']}"}},
    }


def check_upload(ctx: Context, upload_id: str) -> None:
    """The FileContent check DSP runs on an arrived file; records md5 and the verdict."""
    upload = ctx.store.one("SELECT * FROM uploads WHERE id = ?", (upload_id,))
    if upload is None:
        return
    path = ctx.uploads_dir / upload_id
    md5 = file_md5(path)
    expected = ctx.store.one(
        "SELECT kind, reads, md5 FROM expected_files WHERE dsp_uuid = ? AND name = ?",
        (upload["dsp_uuid"], upload["name"]),
    )
    problem = _content_problem(path, upload["length"], md5, expected)
    if problem:
        log.info("upload %s (%s) failed its content check: %s", upload_id, upload["name"], problem)
    with ctx.store.tx() as db:
        db.execute(
            "UPDATE uploads SET md5 = ?, check_state = ?, check_error = ? WHERE id = ?",
            (md5, "failed" if problem else "ok", problem, upload_id),
        )


def _content_problem(path: Path, length: int, md5: str, expected: Any) -> str | None:
    size = path.stat().st_size
    if size != length:
        return f"size is {size} bytes, {length} declared"
    if expected is None:
        return None
    if expected["md5"] and expected["md5"] != md5:
        return f"md5 is {md5}, the submitted file has {expected['md5']}"
    try:
        reads = _count_bam_reads(path) if expected["kind"] == "bam" else _count_fastq_reads(path)
    except (OSError, ValueError, SamtoolsError) as error:
        reason = str(error).strip().splitlines()[-1] if str(error).strip() else type(error).__name__
        return f"not a readable {expected['kind'].upper()} file: {reason}"
    if reads != expected["reads"]:
        return f"holds {reads} reads, the sequencing run has {expected['reads']}"
    return None


def _count_bam_reads(path: Path) -> int:
    """Reads (templates) in a BAM: a read pair and a single record with tags both count once."""
    with pysam.AlignmentFile(str(path), "rb", check_sq=False):
        pass  # refuses what is not BAM at all, with a clearer message than samtools'
    return int(pysam.view("-c", "-F", str(NOT_FIRST_RECORD), str(path)).strip())


def _count_fastq_reads(path: Path) -> int:
    with pysam.FastxFile(str(path)) as fastq:
        count = 0
        for entry in fastq:
            if entry.quality is None:
                raise ValueError(f"record {entry.name} has no qualities")
            count += 1
        return count


def file_md5(path: Path) -> str:
    digest = hashlib.md5()  # noqa: S324 - DSP's checksum, not a security measure
    with path.open("rb") as handle:
        while block := handle.read(1 << 20):
            digest.update(block)
    return digest.hexdigest()
