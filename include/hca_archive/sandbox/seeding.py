"""Seeding: ingest submissions in state Archiving whose sequencing runs have FASTQ.gz in S3."""

from __future__ import annotations

import gzip
import json
import secrets
import shutil
import uuid
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

from hca_archive.sandbox.context import Context
from hca_archive.sandbox.fastq_gen import write_10x_fastqs, write_single_fastq
from hca_archive.sandbox.filestate import file_md5
from hca_archive.sandbox.lamanno import LAMANNO_ENV, lamanno_reads_present
from hca_archive.sandbox.s3 import put_object
from hca_archive.sandbox.store import now_iso

DEFAULT_JOBS = ("10xV2", "10xV3-noI1", "plain", "lamanno")
DEFAULT_READS = 2000
MAX_COUNT = 1000
MAX_JOBS = 1000
MAX_READS = 50_000_000
# job kind -> (schema, with I1); "plain" has no conversion and "lamanno" uses real 10xV2 reads.
SYNTHETIC = {"10xV2": ("10xV2", True), "10xV3": ("10xV3", True), "10xV3-noI1": ("10xV3", False)}
JOB_KINDS = (*SYNTHETIC, "plain", "lamanno")


class SeedError(ValueError):
    """A seed request that cannot be carried out; the message says why."""


@dataclass(frozen=True)
class SeedRequest:
    count: int = 1
    jobs: tuple[str, ...] = DEFAULT_JOBS
    reads: int = DEFAULT_READS

    @classmethod
    def from_json(cls, body: Any) -> SeedRequest:
        if not isinstance(body, dict):
            raise SeedError("the seed request must be a JSON object")
        unknown = set(body) - {"count", "jobs", "reads"}
        if unknown:
            raise SeedError(f"unknown seed fields: {', '.join(sorted(unknown))}")
        count = body.get("count", 1)
        jobs = body.get("jobs", list(DEFAULT_JOBS))
        reads = body.get("reads", DEFAULT_READS)
        if not isinstance(count, int) or isinstance(count, bool) or not 1 <= count <= MAX_COUNT:
            raise SeedError(f"count must be an integer from 1 to {MAX_COUNT}, got {count!r}")
        if not isinstance(reads, int) or isinstance(reads, bool) or not 1 <= reads <= MAX_READS:
            raise SeedError(f"reads must be an integer from 1 to {MAX_READS}, got {reads!r}")
        if not isinstance(jobs, list) or not 1 <= len(jobs) <= MAX_JOBS:
            raise SeedError(f"jobs must be a list of 1 to {MAX_JOBS} job kinds")
        bad = sorted({str(job) for job in jobs if job not in JOB_KINDS})
        if bad:
            raise SeedError(f"unknown job kinds {bad} (known: {', '.join(JOB_KINDS)})")
        return cls(count, tuple(jobs), reads)


class Seeder:
    def __init__(self, ctx: Context, s3: Any, lamanno_dir: Path) -> None:
        self._ctx = ctx
        self._s3 = s3
        self._lamanno = lamanno_dir

    def seed(self, request: SeedRequest) -> list[str]:
        if "lamanno" in request.jobs and not lamanno_reads_present(self._lamanno):
            raise SeedError(
                f"lamanno jobs need the real reads in {self._lamanno} (not found; "
                f"the sandbox's --lamanno-dir or ${LAMANNO_ENV} names another folder)"
            )
        return [self._submission(request) for _ in range(request.count)]

    def _submission(self, request: SeedRequest) -> str:
        envelope_uuid = str(uuid.uuid4())
        runs = [
            self._run(envelope_uuid, n, kind, request.reads) for n, kind in enumerate(request.jobs)
        ]
        now = now_iso()
        with self._ctx.store.tx() as db:
            db.execute(
                "INSERT INTO envelopes (id, uuid, state, submission_date, update_date) "
                "VALUES (?, ?, 'Archiving', ?, ?)",
                (secrets.token_hex(12), envelope_uuid, now, now),
            )
            db.executemany(
                "INSERT INTO runs "
                "(manifest_id, envelope_uuid, position, kind, schema, reads, inputs) "
                "VALUES (?, ?, ?, ?, ?, ?, ?)",
                runs,
            )
        return envelope_uuid

    def _run(self, envelope_uuid: str, position: int, kind: str, reads: int) -> tuple[Any, ...]:
        manifest_id = str(uuid.uuid4())
        serial = self._ctx.store.next_number("run-serial")
        run_dir = self._ctx.objects_dir / envelope_uuid / manifest_id
        prefix = f"run{position + 1}_S{position + 1}_L001"
        seed = self._ctx.seed * 1_000_003 + serial
        if kind == "plain":
            path = write_single_fastq(run_dir / f"{prefix}_R1_001.fastq.gz", reads, seed)
            files, schema = {"read1": path}, None
        elif kind == "lamanno":
            files, schema = self._lamanno_files(run_dir, prefix), "10xV2"
            reads = lamanno_reads(self._lamanno)
        else:
            schema, with_i1 = SYNTHETIC[kind]
            files = write_10x_fastqs(schema, run_dir, reads, seed, with_i1, prefix=prefix)
        inputs = []
        for read_index, path in files.items():
            key = f"{envelope_uuid}/{path.name}"
            put_object(self._ctx, self._s3, key, path)
            inputs.append(
                {
                    "name": path.name,
                    "read_index": read_index,
                    "key": key,
                    "md5": file_md5(path),
                    "reads": reads,
                }
            )
        return (manifest_id, envelope_uuid, position, kind, schema, reads, json.dumps(inputs))

    def _lamanno_files(self, run_dir: Path, prefix: str) -> dict[str, Path]:
        """The real reads, under names of this run (copied: restarts re-upload from local files)."""
        run_dir.mkdir(parents=True, exist_ok=True)
        files = {}
        for read_index, read in (("read1", "R1"), ("read2", "R2")):
            target = run_dir / f"{prefix}_{read}_001.fastq.gz"
            shutil.copyfile(self._lamanno / f"{read}.fastq.gz", target)
            files[read_index] = target
        return files


@cache
def lamanno_reads(lamanno_dir: Path) -> int:
    with gzip.open(lamanno_dir / "R2.fastq.gz", "rb") as handle:
        return sum(1 for _ in handle) // 4
