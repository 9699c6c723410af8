"""The decisions of an archiving run, one function per step, free of Airflow.

Each function takes the clients it talks to and returns what it saw, so the DAG tasks stay thin
and the logic is unit-testable. ``RunStopped`` means retrying cannot help (bad input, a submission
in the wrong state, validation errors): the task fails at once instead of retrying.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import timedelta
from typing import TYPE_CHECKING, Any

from hca_archive.plan import PlanError, parse_plan

if TYPE_CHECKING:  # the DAG file imports this module; the clients load when a task runs
    from hca_archive.clients.archiver import ArchiverClient, ArchiveSubmission, ValidationReport
    from hca_archive.clients.dsp import Blockers, DspClient
    from hca_archive.clients.ingest import Envelope, IngestClient

log = logging.getLogger(__name__)

ARCHIVING = "Archiving"
ARCHIVED = "Archived"
# Ingest moves an archived envelope on (Archived -> Exporting -> ...): these states come after it.
ARCHIVED_OR_LATER = (ARCHIVED, "Exporting", "Exported", "Cleanup", "Complete")
# DSP processing statuses an item never leaves (the old archiver polled forever on them).
ITEM_FAILURES = ("Rejected", "Error")
# An envelope ingest no longer finds while its DSP submission completes is taken for deleted
# only once ingest has said so for this long: one 404 (a proxy's during a redeploy) or an empty
# answer must not stop a run whose DSP submission is completing.
ENVELOPE_GONE_SECONDS = 600.0


class RunStopped(Exception):
    """A failure no retry can fix; the message is written for a wrangler."""


class ArchiverRefused(RunStopped):
    """The archiver answered the archive request with a 4xx: it made nothing, and the same
    request again would be refused again."""


def plain_duration(span: timedelta) -> str:
    """``2 h``, ``1 h 30 min``, ``45 s``: a duration as a wrangler reads it (``24 h``, not
    ``1 day, 0:00:00``)."""
    seconds = round(span.total_seconds())
    hours, rest = divmod(seconds, 3600)
    minutes, seconds = divmod(rest, 60)
    parts = [f"{hours} h" if hours else "", f"{minutes} min" if minutes else ""]
    parts.append(f"{seconds} s" if seconds or not (hours or minutes) else "")
    return " ".join(filter(None, parts))


@dataclass(frozen=True)
class Progress:
    """One look at what we wait for: ``done`` with a ``value``, or not yet, with a ``status``.

    ``stuck_after``: when the same status has lasted that many seconds, the work that should end
    it has died unseen (the wait would only run out): the wait stops with ``stuck``. With
    ``stuck_noted``, the stop also reports since when the status lasted (the write-back's first
    sighting, which a cleared ``complete_submission`` needs).
    """

    done: bool
    status: str
    value: Any = None
    stuck_after: float | None = None
    stuck: str = ""
    stuck_noted: bool = False


def check_envelope(ingest: IngestClient, submission_uuid: str, environment: str) -> Envelope:
    """The envelope, if it exists and is Archiving or already Archived (or past it)."""
    envelope = ingest.find_envelope(submission_uuid)
    if envelope is None:
        raise RunStopped(
            f"submission {submission_uuid} not found in {environment}: check the UUID (the "
            "ingest submission's, not its project's) and the environment, then start a new run"
        )
    if envelope.state not in (ARCHIVING, *ARCHIVED_OR_LATER):
        raise RunStopped(
            f"submission {submission_uuid} is {envelope.state}, not {ARCHIVING}: nothing archived."
            f" Once ingest shows it {ARCHIVING}, clear check_submission (or start a new run)"
        )
    return envelope


@dataclass(frozen=True)
class ArchiveRequest:
    """What the request step did: reused a record, triggered the archiver, or is still waiting.

    ``record`` is the summary of the reused record (see ``record_summary``).
    """

    action: str  # "reused" | "triggered" | "awaiting-earlier-trigger" | "dry-run"
    record: dict[str, Any] | None = None


def request_archive(
    archiver: ArchiverClient,
    submission_uuid: str,
    *,
    alias_prefix: str,
    exclude_types: list[str] | None,
    triggered_at: float | None,
    trigger_grace_seconds: float,
    mark_triggered: Callable[[], bool],
    dry_run: bool = False,
) -> ArchiveRequest:
    """Ask the archiver to archive the submission's metadata, at most once per grace period.

    The archiver's POST is not idempotent (each call makes a DSP submission) and its record only
    appears once background work is done. So: reuse the latest record when there is one; and when
    an earlier attempt already triggered (``triggered_at``), wait for that one rather than trigger
    again, for ``trigger_grace_seconds``. ``mark_triggered`` records durably that we are about to
    trigger, before the call, so a crash during the call cannot lead to a second one; it answers
    False when another requester claimed the trigger at the same moment.
    """
    record = archiver.latest(submission_uuid)
    if record is not None:
        return ArchiveRequest("reused", usable_record(archiver, record))
    if dry_run:
        return ArchiveRequest("dry-run")
    if triggered_at is not None and time.time() - triggered_at < trigger_grace_seconds:
        return ArchiveRequest("awaiting-earlier-trigger")
    if not mark_triggered():
        return ArchiveRequest("awaiting-earlier-trigger")
    from hca_archive.http import ServiceError

    try:
        archiver.trigger_archive(
            submission_uuid, alias_prefix=alias_prefix, exclude_types=exclude_types
        )
    except ServiceError as error:
        if error.status is not None and 400 <= error.status < 500:
            raise ArchiverRefused(
                f"the archiver refused to archive submission {submission_uuid}: {error}"
            ) from error
        raise
    return ArchiveRequest("triggered")


def dsp_submission_progress(archiver: ArchiverClient, submission_uuid: str) -> Progress:
    """Done when the archive record (DSP submission, entities, plan) exists."""
    record = archiver.latest(submission_uuid)
    if record is None:
        return Progress(False, "no archive submission record yet")
    return Progress(True, f"DSP submission {record.dsp_uuid}", usable_record(archiver, record))


def usable_record(archiver: ArchiverClient, record: ArchiveSubmission) -> dict[str, Any]:
    """The record's summary, unless the archiver noted errors on it or on its entities."""
    summary = record_summary(checked_record(record))
    check_entities(archiver, record.dsp_uuid)
    return summary


def checked_record(record: ArchiveSubmission, limit: int = 20) -> ArchiveSubmission:
    """The record, unless the archiver noted errors building it: then its DSP submission lacks
    what failed, and completing it would archive the submission in part."""
    if not record.errors:
        return record
    lines = [f"- {error}" for error in record.errors[:limit]]
    if len(record.errors) > limit:
        lines.append(f"- ... and {len(record.errors) - limit} more")
    raise RunStopped(
        f"the archiver reported {len(record.errors)} error(s) building DSP submission "
        f"{record.dsp_uuid}:\n" + "\n".join(lines)
    )


def check_entities(
    archiver: ArchiverClient, dsp_uuid: str, limit: int = 20, per_entity: int = 3
) -> None:
    """Stop when the archiver noted errors on entities: those are missing from (or wrong in) the
    DSP submission, so completing it would archive the submission in part, for good."""
    from hca_archive.http import one_line

    failed = [entity for entity in archiver.entities(dsp_uuid) if entity.errors]
    if not failed:
        return
    lines = []
    for entity in failed[:limit]:
        errors = "; ".join(map(str, entity.errors[:per_entity]))
        more = len(entity.errors) - per_entity
        errors += f"; ... and {more} more" if more > 0 else ""
        lines.append(f"- {one_line(f'{entity.type} {entity.alias}', 200)}: {errors}")
    if len(failed) > limit:
        lines.append(f"- ... and {len(failed) - limit} more")
    raise RunStopped(
        f"the archiver reported errors on {len(failed)} entit{'y' if len(failed) == 1 else 'ies'} "
        f"of DSP submission {dsp_uuid}:\n" + "\n".join(lines)
    )


def record_summary(record: ArchiveSubmission) -> dict[str, Any]:
    return {
        "dsp_uuid": record.dsp_uuid,
        "dsp_url": record.dsp_url,
        "created": record.created,
        "planned_jobs": len(record.file_upload_plan or []),
        "errors": [str(error) for error in record.errors],
    }


def blocking_errors(report: ValidationReport, blockers: Blockers) -> bool:
    """Whether the report's messages other than missing files block the submission.

    The archiver relays validator warnings as errors, so a message alone proves nothing; DSP's
    blockers summary counts only what blocks. It counts a submittable whose data file is missing
    too, so messages block when DSP counts more blockers than those submittables.
    """
    if not report.metadata_errors:
        return False
    missing = {issue.subject for issue in report.file_reference_errors}
    return blockers.total_metadata_blockers > len(missing)


def named_summary(archiver: ArchiverClient, dsp_uuid: str, report: ValidationReport) -> str:
    """The report's summary with each erring submittable named by its archive entity (type and
    alias, which the wrangler knows), not by its DSP URL alone. The entities are asked for only
    when validation failed; if the archiver cannot list them, the URLs have to do."""
    from hca_archive.http import ServiceError

    try:
        entities = archiver.entities(dsp_uuid)
    except (ServiceError, ValueError) as error:
        log.warning(
            "DSP submission %s: entities not listed, errors named by URL: %s", dsp_uuid, error
        )
        return report.summary()
    by_uuid = {entity.dsp_uuid.lower(): entity for entity in entities if entity.dsp_uuid}
    names = {}
    for issue in report.metadata_errors:
        entity = by_uuid.get(issue.subject.rstrip("/").rsplit("/", 1)[-1].lower())
        if entity is not None:
            names[issue.subject] = f"{entity.type} {entity.alias}".strip()
    return report.summary(names=names)


def metadata_progress(archiver: ArchiverClient, dsp_uuid: str) -> Progress:
    """Done once validation has no pending results; fails on errors other than missing files."""
    report = archiver.validation_errors(dsp_uuid)
    if report.metadata_errors and blocking_errors(report, archiver.blockers(dsp_uuid)):
        raise RunStopped(
            f"metadata validation failed for DSP submission {dsp_uuid}:\n"
            f"{named_summary(archiver, dsp_uuid, report)}"
        )
    if report.pending:
        return Progress(False, f"{len(report.pending)} validation results pending")
    missing = len(report.file_reference_errors)
    return Progress(
        True, f"metadata valid; {missing} data files awaited", {"awaited_files": missing}
    )


@dataclass(frozen=True)
class PlanBatches:
    """The plan's jobs split into mapped-task batches of consecutive jobs."""

    batches: list[list[dict[str, Any]]]
    job_count: int
    problems: list[str] = field(default_factory=list)


def fetch_plan(
    archiver: ArchiverClient, dsp_uuid: str, max_tasks: int, dsp_url: str | None = None
) -> PlanBatches:
    """Fetch and validate the upload plan; batch it so no more than ``max_tasks`` tasks map.

    With ``dsp_url`` (the environment's DSP), a plan naming another DSP host is refused: the file
    jobs would send that host our AAP token. A job for another DSP submission is refused too: it
    would upload into a submission that is not this run's, with our AAP login.
    """
    data = archiver.file_upload_plan(dsp_uuid)
    try:
        plan = parse_plan(data, dsp_url=dsp_url)
    except PlanError as error:
        raise RunStopped(f"upload plan of DSP submission {dsp_uuid} is invalid:\n{error}") from None
    elsewhere = [job for job in plan.jobs if job.submission_id.lower() != dsp_uuid.lower()]
    if elsewhere:
        named = "; ".join(f"job {job.index} ({job.label})" for job in elsewhere[:20])
        more = f"; ... and {len(elsewhere) - 20} more" if len(elsewhere) > 20 else ""
        raise RunStopped(
            f"upload plan of DSP submission {dsp_uuid} sends files to another submission "
            f"({elsewhere[0].submission_url}): {named}{more}"
        )
    jobs = [job.to_dict() for job in plan.jobs]
    per_batch = -(-len(jobs) // max_tasks)
    batches = [jobs[start : start + per_batch] for start in range(0, len(jobs), per_batch)]
    return PlanBatches(batches, len(jobs))


def batch_label(batch: list[dict[str, Any]]) -> str:
    """The mapped task's label: the job's manifest id and output, or the range of a batch."""
    first = batch[0]
    name = (first.get("conversion") or {}).get("output_name") or first["files"][0]["name"]
    label = f"{first['manifest_id']}/{name}"
    return label if len(batch) == 1 else f"{label} (+{len(batch) - 1} more jobs)"


def validation_progress(archiver: ArchiverClient, dsp_uuid: str) -> Progress:
    """Done when validation is clean and DSP lists no blockers."""
    report = archiver.validation_errors(dsp_uuid)
    blockers = archiver.blockers(dsp_uuid)
    if blocking_errors(report, blockers):
        raise RunStopped(
            f"validation failed for DSP submission {dsp_uuid}:\n"
            f"{named_summary(archiver, dsp_uuid, report)}"
        )
    if blockers.empty_submission:  # the archiver adds the entities before its record appears
        raise RunStopped(f"DSP submission {dsp_uuid} is empty: nothing to archive or complete")
    if report.metadata_errors:
        log.warning("DSP submission %s: not blocking (warnings): %s", dsp_uuid, report.summary())
    if report.file_reference_errors or report.pending or not blockers.ready:
        return Progress(
            False,
            f"{len(report.file_reference_errors)} files not yet valid, "
            f"{len(report.pending)} results pending, blockers: {blockers.summary()}",
        )
    return Progress(True, "validation clean, no blockers")


def complete_submission(
    archiver: ArchiverClient,
    dsp: DspClient,
    ingest: IngestClient,
    dsp_uuid: str,
    submission_uuid: str,
    *,
    requested_at: float | None,
    grace_seconds: float,
    writeback_grace_seconds: float,
    mark_requested: Callable[[], None],
    writeback_seen_at: float | None,
    mark_writeback_seen: Callable[[], None],
    poll_seconds: float = 10.0,
    envelope_gone_seconds: float = ENVELOPE_GONE_SECONDS,
) -> str:
    """Ask the archiver to complete, unless DSP already moved past Draft (a retry or re-run).

    The archiver's ``complete`` is not idempotent and answers before its background work moves
    DSP past Draft, so Draft does not mean "never asked". ``mark_requested`` records durably that
    we are about to ask, before the call. A retry after such a request (``requested_at``) cannot
    tell a lost answer from a request that never arrived: it watches DSP until
    ``grace_seconds`` after that request, and asks again only if DSP is still Draft then.

    A DSP submission Completed while the envelope is still Archiving means the archiver did not
    write the accessions back (it died, unseen). Asking again is safe then: the archiver submits
    only a Draft, so for a Completed one it only writes back and marks the envelope archived.
    The archiver writes back only once DSP has completed, which may be hours after our request:
    so it is asked again only when that state was first seen (``writeback_seen_at``, noted by
    ``mark_writeback_seen`` or by the completion wait that stopped on it) at least
    ``writeback_grace_seconds`` ago, and our last request is at least as old (either write-back
    may still be under way). An envelope ingest does not find is looked for again, every
    ``poll_seconds``, for ``envelope_gone_seconds``: still not found, it was deleted and the run
    stops, asking nothing of the archiver.
    """
    status = dsp.status(dsp_uuid)
    state = None
    if status == "Completed":
        state = envelope_state(ingest, submission_uuid)
        # not found: look again for a while before taking the envelope for deleted
        until = time.time() + envelope_gone_seconds
        while state is None and (left := until - time.time()) > 0:
            time.sleep(min(poll_seconds, left))
            state = envelope_state(ingest, submission_uuid)
        if state is None:
            raise RunStopped(
                envelope_gone(submission_uuid, dsp_uuid, status, envelope_gone_seconds)
            )
    if state is not None and state not in ARCHIVED_OR_LATER:
        now = time.time()
        if writeback_seen_at is None:
            mark_writeback_seen()
            writeback_seen_at = now
        if requested_at is not None and now - requested_at < writeback_grace_seconds:
            asked = plain_duration(timedelta(seconds=now - requested_at))
            return (
                f"DSP submission Completed, envelope {state}; the archiver was asked {asked} ago "
                "and may still be writing the accessions back: not asked again"
            )
        if now - writeback_seen_at < writeback_grace_seconds:
            seen = plain_duration(timedelta(seconds=now - writeback_seen_at))
            grace = plain_duration(timedelta(seconds=writeback_grace_seconds))
            return (
                f"DSP submission Completed, envelope {state}, first seen so {seen} ago: the "
                "archiver may still be writing the accessions back, not asked again. If the "
                f"envelope is not archived {grace} after that, wait_for_completion stops and "
                "says so"
            )
        log.warning("DSP submission %s Completed, envelope %s: asking again", dsp_uuid, state)
        mark_requested()
        archiver.complete(dsp_uuid)
        return (
            f"DSP submission Completed but envelope {state}: asked the archiver again to write "
            "the accessions back (DSP is not submitted again)"
        )
    if requested_at is not None and status == "Draft":
        log.info("completion was asked for earlier; waiting for DSP to leave Draft")
        while status == "Draft" and (left := requested_at + grace_seconds - time.time()) > 0:
            time.sleep(min(poll_seconds, left))
            status = dsp.status(dsp_uuid)
        if status == "Draft":
            log.warning(
                "DSP still Draft %.0f s after asking to complete; asking again", grace_seconds
            )
    if status != "Draft":
        return f"DSP submission already {status}; not completed again"
    mark_requested()
    archiver.complete(dsp_uuid)
    return "completion triggered"


def envelope_state(ingest: IngestClient, submission_uuid: str) -> str | None:
    """The envelope's state while its DSP submission completes; None when ingest does not find
    it. One such answer is not proof of a deletion (see ``ENVELOPE_GONE_SECONDS``)."""
    envelope = ingest.find_envelope(submission_uuid)
    return None if envelope is None else envelope.state


def envelope_gone(submission_uuid: str, dsp_uuid: str, dsp_status: str, lasted: float) -> str:
    """Why the run stops when ingest has not found the envelope for ``lasted`` seconds: it was
    deleted during archiving, and waiting would not bring it back."""
    return (
        f"ingest submission {submission_uuid} is no longer found in ingest (for "
        f"{plain_duration(timedelta(seconds=lasted))}) while DSP submission {dsp_uuid} is "
        f"{dsp_status}: nothing can write the accessions back to it. Ask the ingest team whether "
        "it was deleted, naming both submissions"
    )


def completion_progress(
    archiver: ArchiverClient,
    dsp: DspClient,
    ingest: IngestClient,
    dsp_uuid: str,
    submission_uuid: str,
    writeback_grace: Callable[[], timedelta] | None = None,
) -> Progress:
    """Done when DSP says Completed and the ingest envelope is Archived (or already past it).

    DSP Completed with the envelope not archived for ``writeback_grace`` (read only then) means
    the archiver died before writing the accessions back; DSP still Draft that long after the
    wait began (``complete_submission`` had just asked) means it died before submitting. Either
    way the wait stops, saying what to clear. An envelope ingest has not found for
    ``ENVELOPE_GONE_SECONDS`` was deleted: the wait stops, naming it.
    """
    status = dsp.status(dsp_uuid)
    if status == "Failed":
        raise RunStopped(
            f"DSP submission {dsp_uuid} failed: waiting will not change it; ask DSP's helpdesk "
            "why, naming the DSP submission"
        )
    if status != "Draft":
        failed = [
            item for item in dsp.processing_statuses(dsp_uuid) if item.status in ITEM_FAILURES
        ]
        if failed:
            names = "; ".join(
                f"{item.submittable_type} {item.alias}: {item.status}"
                + (f" by {item.archive}" if item.archive else "")
                for item in failed[:20]
            )
            more = f"; ... and {len(failed) - 20} more" if len(failed) > 20 else ""
            raise RunStopped(
                f"DSP submission {dsp_uuid}: {len(failed)} item(s) will never be accessioned: "
                f"{names}{more}. Ask DSP's helpdesk why, naming the DSP submission and the items"
            )
    state = envelope_state(ingest, submission_uuid)
    if state is None:
        # stuck once ingest has not found it for ENVELOPE_GONE_SECONDS, unchanged
        return Progress(
            False,
            f"DSP status {status}, envelope not found in ingest",
            stuck_after=ENVELOPE_GONE_SECONDS,
            stuck=envelope_gone(submission_uuid, dsp_uuid, status, ENVELOPE_GONE_SECONDS),
        )
    waiting = f"DSP status {status}, envelope {state}"
    written_back = state in ARCHIVED_OR_LATER
    if writeback_grace and (status == "Draft" or (status == "Completed" and not written_back)):
        grace = writeback_grace()
        if status == "Draft":
            stuck = (
                f"DSP submission {dsp_uuid} is still Draft {plain_duration(grace)} after the "
                "archiver was asked to complete it: the archiver did not submit it (its "
                "background work died, or the request never reached it). Clear "
                "complete_submission and the tasks after it: while DSP is Draft it asks the "
                "archiver again"
            )
        else:
            stuck = (
                f"DSP submission {dsp_uuid} is Completed, but ingest submission "
                f"{submission_uuid} is still {state} {plain_duration(grace)} later: the archiver "
                "did not write the accessions back (its background work died). Clear "
                "complete_submission and the tasks after it: for a Completed DSP submission it "
                "asks the archiver only to write the accessions back and archive the submission; "
                "nothing is submitted to DSP again"
            )
        # Only the write-back's first sighting is noted: the cleared step counts its grace from it.
        noted = status == "Completed"
        return Progress(
            False, waiting, stuck_after=grace.total_seconds(), stuck=stuck, stuck_noted=noted
        )
    if status != "Completed" or not written_back:
        return Progress(False, waiting)
    return Progress(True, "Completed and Archived", {"accessions": accessions(archiver, dsp_uuid)})


def accessions(archiver: ArchiverClient, dsp_uuid: str) -> list[dict[str, str | None]]:
    return [
        {"type": entity.type, "alias": entity.alias, "accession": entity.accession}
        for entity in archiver.entities(dsp_uuid)
    ]
