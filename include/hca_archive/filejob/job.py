"""One job of a file upload plan: download, convert, verify, upload; the outcome as a dict.

A job never raises: whatever goes wrong is reported in its outcome (``status`` "failed" and an
``error`` naming the step), so one failed job cannot hide the results of the others.
"""

from __future__ import annotations

import hashlib
import logging
import re
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, NamedTuple

from hca_archive import convert
from hca_archive.clients import DspClient, TokenSource
from hca_archive.filejob.progress import Progress
from hca_archive.filejob.s3download import DownloadError, FetchedFile, RefusedError, S3Downloader
from hca_archive.filejob.tus import DEFAULT_CHUNK_SIZE, TusClient, TusError
from hca_archive.filejob.workdir import JobDirs, child, read_json, write_json_atomically
from hca_archive.http import ServiceError
from hca_archive.plan import PlanJob, parse_s3_url

if TYPE_CHECKING:
    from hca_archive.convert import ConversionResult

log = logging.getLogger(__name__)

STEPS = ("check", "download", "convert", "verify", "upload")
# The one DSP submission status that accepts files (services.md, section 3).
OPEN_STATUS = "Draft"
# A DSP file record whose content check failed (an uploaded file becomes READY_FOR_ARCHIVE once
# checked, services.md section 3).
FAILED_CHECK_STATUS = "ERROR"
# What ``find_file`` documents may show of DSP's copy in a result (no links: they are DSP's URLs).
ON_DSP_FIELDS = ("id", "totalSize", "uploadedSize", "checksum", "status")
HASH_CHUNK = 1024 * 1024
MD5_HEX = re.compile(r"[0-9a-fA-F]{32}")


class JobError(Exception):
    """A problem with this job's plan entry or its data, found while running it."""


class SubmissionClosedError(JobError):
    """DSP's submission accepts no more files, yet lacks some of the job's: no run can add them."""


class Interrupted(Exception):
    """The process was asked to stop (``bkill`` sends SIGINT, then SIGTERM, then SIGKILL)."""


@dataclass
class JobOutcome:
    index: int
    manifest_id: str
    label: str
    status: str = "running"
    error: str | None = None
    already_archived: bool = False  # DSP held every file before the job started: nothing done
    retryable: bool = (
        True  # False: it failed on what it was given (plan, inputs), as it would again
    )
    files: list[dict[str, Any]] = field(default_factory=list)
    inputs: list[dict[str, Any]] = field(default_factory=list)
    seconds: dict[str, float] = field(default_factory=lambda: dict.fromkeys(STEPS, 0.0))

    def to_dict(self) -> dict[str, Any]:
        return {
            "index": self.index,
            "manifest_id": self.manifest_id,
            "label": self.label,
            "status": self.status,
            "error": self.error,
            "retryable": self.retryable,
            "already_archived": self.already_archived,
            "files": self.files,
            "inputs": self.inputs,
            "seconds": {step: round(value, 3) for step, value in self.seconds.items()},
        }


class _StepFailed(Exception):
    pass


class _AlreadyArchived(Exception):
    """DSP holds every file of the job: it ends before downloading anything."""


class LocalFile(NamedTuple):
    """A file ready for upload: where it is, its MD5 and (for a BAM) its read count."""

    path: Path
    md5: str
    reads: int | None


# Failures running the job again cannot change: the inputs (verified against S3 before
# conversion) are not FASTQ or do not match, S3 refuses or lacks them, or the DSP submission
# lacking a file accepts no more.
PERMANENT_ERRORS = (convert.ConversionError, RefusedError, SubmissionClosedError)
# Failures a step reports in one line; anything else is a bug and is logged with its traceback.
EXPECTED_ERRORS = (
    DownloadError,
    TusError,
    ServiceError,
    convert.ConversionError,
    convert.VerificationError,
    JobError,
    Interrupted,
    OSError,
    ValueError,
)


class JobRunner:
    """Runs plan jobs with one S3 downloader and one AAP token source."""

    def __init__(
        self,
        downloader: S3Downloader,
        tokens: TokenSource,
        *,
        chunk_size: int = DEFAULT_CHUNK_SIZE,
        threads: int = 1,
        progress_interval: float = 10.0,
        dsp_client: Callable[[str, TokenSource], DspClient] = DspClient,
    ) -> None:
        self._downloader = downloader
        self._tokens = tokens
        self._chunk_size = chunk_size
        self._threads = threads
        self._progress_interval = progress_interval
        self._dsp_client = dsp_client
        self.stopped: str | None = None  # why the run was interrupted; no job starts after that

    def run(self, job: PlanJob, workdir: Path) -> JobOutcome:
        outcome = JobOutcome(job.index, job.manifest_id, job.label)
        log.info("job %d (%s): starting", job.index, job.label)
        try:
            self._run_steps(job, JobDirs.create(workdir, job.index), outcome)
        except _StepFailed:
            outcome.status = "failed"
        except _AlreadyArchived:
            outcome.status = "succeeded"
            outcome.already_archived = True
            log.info("job %d (%s): already archived on DSP; nothing to do", job.index, job.label)
        except Exception as error:  # a bad work directory, an interruption: still a job result
            outcome.status = "failed"
            outcome.error = f"job {job.index} ({job.label}): {error}"
            log.error("%s", outcome.error)
            self._note_interruption(error)
        else:
            outcome.status = "succeeded"
            log.info("job %d (%s): succeeded", job.index, job.label)
        return outcome

    def _run_steps(self, job: PlanJob, dirs: JobDirs, outcome: JobOutcome) -> None:
        with self._step("check", job, outcome):
            dsp = self._dsp_client(job.dsp_api_url, self._tokens)
            held = self._held_on_dsp(job, dsp)
        if len(held) == len(job.files):
            outcome.files = [held[item.name] for item in job.files]
            raise _AlreadyArchived
        converting = job.conversion is not None and job.conversion.output_name not in held
        needed = {item.name for item in job.files if item.name not in held}
        if converting:
            assert job.conversion is not None
            needed.update(item.name for item in job.conversion.inputs)
        with self._step("download", job, outcome):
            fetched = self._download(job, dirs, outcome, needed)
        local = {name: LocalFile(item.path, item.md5, None) for name, item in fetched.items()}
        if converting:
            assert job.conversion is not None
            bam = child(dirs.output, job.conversion.output_name)
            marker = child(dirs.output, f"{job.conversion.output_name}.verified.json")
            inputs = {item.name: fetched[item.name].md5 for item in job.conversion.inputs}
            with self._step("verify", job, outcome):
                reused = self._reuse_verified(bam, marker, inputs)
            local[bam.name] = reused or self._convert_and_verify(
                job, fetched, bam, marker, inputs, outcome
            )
        with self._step("upload", job, outcome):
            self._upload(job, dirs, dsp, local, held, outcome)

    def _held_on_dsp(self, job: PlanJob, dsp: DspClient) -> dict[str, dict[str, Any]]:
        """Result entries (:func:`on_dsp_entry`) of the job's files DSP holds complete, by name,
        asked before any download.

        A plain file is compared with S3's size (and MD5, when its ETag is one). A converted BAM
        counts once DSP has all of its bytes under the output name: its bytes depend on the
        converter's version (its header names it), so a BAM made again can differ from the one
        an earlier run verified and uploaded, and would only be a second copy of the same reads.
        When a file is missing, the submission must still accept files (Draft); if it does not,
        uploading cannot succeed and the job fails naming submission, status and file.
        """
        held: dict[str, dict[str, Any]] = {}
        missing: dict[str, str] = {}
        for item in job.files:
            on_dsp = dsp.find_file(job.submission_id, item.name)
            md5 = None
            if on_dsp is None or item.cloud_url is None:  # absent, or the BAM: not made yet
                reason = why_not_complete(on_dsp, None, None)
            else:
                expected = self._downloader.describe(*parse_s3_url(item.cloud_url))
                md5 = expected.md5
                reason = why_not_complete(on_dsp, expected.size, md5)
            if reason is None:
                assert on_dsp is not None
                log.info("%s is already on DSP, complete", item.name)
                held[item.name] = on_dsp_entry(item.name, on_dsp, md5=md5)
            else:
                missing[item.name] = reason
        if missing:
            status = dsp.status(job.submission_id)
            if status != OPEN_STATUS:
                lacking = "; ".join(f"{name} ({reason})" for name, reason in missing.items())
                raise SubmissionClosedError(
                    f"DSP submission {job.submission_id} is {status}, so it accepts no more "
                    f"files, and it lacks {lacking}"
                )
        return held

    def _reuse_verified(self, bam: Path, marker: Path, inputs: dict[str, str]) -> LocalFile | None:
        """The BAM an earlier run converted and verified from these very inputs, if still intact.

        A restarted job then resumes its upload without converting again (and cannot produce
        a BAM with other bytes under an upload that is half done).
        """
        record = read_json(marker)
        if not isinstance(record, dict) or record.get("inputs") != inputs or not bam.exists():
            return None
        if bam.stat().st_size != record.get("bytes") or file_md5(bam) != record.get("md5"):
            log.warning("%s differs from the BAM verified earlier; converting again", bam.name)
            return None
        log.info("reusing %s, converted and verified earlier from the same inputs", bam.name)
        return LocalFile(bam, record["md5"], record.get("reads"))

    def _convert_and_verify(
        self,
        job: PlanJob,
        fetched: dict[str, FetchedFile],
        bam: Path,
        marker: Path,
        inputs: dict[str, str],
        outcome: JobOutcome,
    ) -> LocalFile:
        marker.unlink(missing_ok=True)
        with self._step("convert", job, outcome):
            conversion = self._convert(job, fetched, bam)
        with self._step("verify", job, outcome):
            rebuilt = sum(digest.bytes for digest in conversion.inputs.values())
            with self._progress(f"verify {bam.name}", rebuilt) as progress:
                convert.verify_bam(bam, conversion, progress=progress.advance)
            md5 = file_md5(bam)
            log.info("verified %s (md5 %s): rebuilds every input FASTQ exactly", bam.name, md5)
            write_json_atomically(
                marker,
                {
                    "md5": md5,
                    "bytes": bam.stat().st_size,
                    "reads": conversion.read_count,
                    "inputs": inputs,
                },
            )
        return LocalFile(bam, md5, conversion.read_count)

    @contextmanager
    def _step(self, step: str, job: PlanJob, outcome: JobOutcome) -> Iterator[None]:
        started = time.monotonic()
        try:
            yield
        except Exception as error:
            outcome.error = f"job {job.index} ({job.label}): {step}: {error}"
            outcome.retryable = not isinstance(error, PERMANENT_ERRORS)
            log.error("%s", outcome.error, exc_info=not isinstance(error, EXPECTED_ERRORS))
            self._note_interruption(error)
            raise _StepFailed from error
        finally:
            outcome.seconds[step] += time.monotonic() - started

    @contextmanager
    def _progress(self, label: str, total: int) -> Iterator[Progress]:
        progress = Progress(label, total, interval=self._progress_interval)
        try:
            yield progress
        finally:
            progress.close()

    def _note_interruption(self, error: Exception) -> None:
        if isinstance(error, Interrupted):
            self.stopped = str(error)

    def _download(
        self, job: PlanJob, dirs: JobDirs, outcome: JobOutcome, needed: set[str]
    ) -> dict[str, FetchedFile]:
        """The job's inputs and plain files named in ``needed`` (what DSP does not hold yet)."""
        fetched: dict[str, FetchedFile] = {}
        for name, cloud_url in job.downloads:
            if name not in needed:
                continue
            bucket, key = parse_s3_url(cloud_url)
            result = self._downloader.fetch(bucket, key, child(dirs.inputs, name))
            fetched[name] = result
            outcome.inputs.append(
                {
                    "name": name,
                    "bytes": result.bytes,
                    "md5": result.md5,
                    "verified": result.verified,
                    "reused": result.reused,
                }
            )
        return fetched

    def _convert(
        self, job: PlanJob, fetched: dict[str, FetchedFile], bam: Path
    ) -> ConversionResult:
        """The plan guarantees one read1, one read2 and at most one index1 input."""
        conversion = job.conversion
        assert conversion is not None

        def local(read_index: str) -> Path | None:
            item = conversion.input_for(read_index)
            return fetched[item.name].path if item is not None else None

        started = time.monotonic()
        stored = sum(fetched[item.name].bytes for item in conversion.inputs)
        with self._progress(f"convert to {bam.name}", stored) as progress:
            result = convert.convert_fastqs(
                conversion.schema,
                local("read1"),
                local("read2"),
                local("index1"),
                bam,
                threads=self._threads,
                progress=progress.advance,
            )
        log.info(
            "converted %d reads of %s into %s (%.1f MB) in %.1f s",
            result.read_count,
            ", ".join(item.name for item in conversion.inputs),
            bam.name,
            bam.stat().st_size / 1e6,
            time.monotonic() - started,
        )
        return result

    def _upload(
        self,
        job: PlanJob,
        dirs: JobDirs,
        dsp: DspClient,
        local: dict[str, LocalFile],
        held: dict[str, dict[str, Any]],
        outcome: JobOutcome,
    ) -> None:
        tus = TusClient(
            dsp.tus_endpoint,
            self._tokens,
            chunk_size=self._chunk_size,
            progress_interval=self._progress_interval,
        )
        for item in job.files:
            if item.name in held:
                outcome.files.append(held[item.name])
                continue
            if item.name not in local:
                raise JobError(f"{item.name} is neither the conversion output nor downloaded")
            path, md5, reads = local[item.name]
            size = path.stat().st_size
            on_dsp = dsp.find_file(job.submission_id, item.name)
            reason = why_not_complete(on_dsp, size, md5)
            if reason is None:
                assert on_dsp is not None
                log.info("%s is already on DSP (%d bytes); not uploading", item.name, size)
                outcome.files.append(on_dsp_entry(item.name, on_dsp, md5=md5, reads=reads))
                continue
            log.info("uploading %s: %s", item.name, reason)
            tus.upload(
                path,
                name=item.name,
                submission_id=job.submission_id,
                md5=md5,
                state_file=child(dirs.uploads, f"{item.name}.tus.json"),
            )
            outcome.files.append(
                {"name": item.name, "bytes": size, "md5": md5, "reads": reads, "upload": "uploaded"}
            )


def why_not_complete(
    on_dsp: dict[str, Any] | None, size: int | None, md5: str | None
) -> str | None:
    """Why DSP's file document does not show our complete file, or None when it does.

    The document exists while an upload is still in progress (``uploadedSize`` < ``totalSize``).
    Complete means DSP has every byte (``uploadedSize`` = ``totalSize``) or, for a document
    without ``uploadedSize``, has checked the file (services.md: it "becomes READY_FOR_ARCHIVE");
    a size alone proves nothing. Its ``checksum``, once DSP has computed it, must be our MD5
    (other formats are not compared). ``size`` or ``md5`` None: ours is not known (a BAM not
    converted yet, an S3 object whose ETag is no MD5), so DSP's is not compared with it. A copy
    DSP's content check failed (status ERROR) is complete only when its checksum is our MD5:
    otherwise nothing shows that it holds our bytes, and counting it as held would report the
    job archived with a broken file (uploading the same bytes again could not help).
    """
    if on_dsp is None:
        return "DSP does not have it yet"
    total, uploaded, checksum, status = (
        on_dsp.get(key) for key in ("totalSize", "uploadedSize", "checksum", "status")
    )
    if not isinstance(total, int):
        return f"DSP's record has no size ({total!r})"
    if size is not None and total != size:
        return f"DSP's copy has {total} bytes, ours {size}"
    if uploaded is None and status != "READY_FOR_ARCHIVE":
        return f"DSP's record shows neither its uploaded size nor a checked file (status {status})"
    if uploaded is not None and uploaded != total:
        return f"DSP has {uploaded} of its {total} bytes"
    dsp_md5 = (
        checksum.lower() if isinstance(checksum, str) and MD5_HEX.fullmatch(checksum) else None
    )
    if md5 is not None and dsp_md5 is not None and dsp_md5 != md5:
        return f"DSP's copy has MD5 {checksum}, ours {md5}"
    if status == FAILED_CHECK_STATUS and (md5 is None or dsp_md5 != md5):
        return f"DSP's check of its copy failed (status {status})"
    return None


def on_dsp_entry(
    name: str, on_dsp: dict[str, Any], *, md5: str | None = None, reads: int | None = None
) -> dict[str, Any]:
    """A result's entry for a file DSP already holds: ours where known, else what DSP says.

    A file found complete before the job downloaded anything has no local copy: its bytes are
    DSP's, its MD5 S3's ETag or else DSP's checksum (None when neither is an MD5, as for a BAM
    DSP has not checked yet), its reads unknown.
    """
    checksum = on_dsp.get("checksum")
    dsp_md5 = (
        checksum.lower() if isinstance(checksum, str) and MD5_HEX.fullmatch(checksum) else None
    )
    return {
        "name": name,
        "bytes": on_dsp.get("totalSize"),
        "md5": md5 or dsp_md5,
        "reads": reads,
        "upload": "already-on-dsp",
        "on_dsp": {key: on_dsp.get(key) for key in ON_DSP_FIELDS if key in on_dsp},
    }


def file_md5(path: Path) -> str:
    digest = hashlib.md5(usedforsecurity=False)
    with open(path, "rb") as handle:
        while chunk := handle.read(HASH_CHUNK):
            digest.update(chunk)
    return digest.hexdigest()
