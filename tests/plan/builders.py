"""Valid plan jobs to start from; tests change one thing at a time."""

from __future__ import annotations

import copy
from typing import Any

DSP = "https://submission.ebi.ac.uk"


def conversion_job(manifest: str = "1f2e3d4c", submission: str = "b729f228-1", **changes: Any):
    job = {
        "dsp_api_url": DSP,
        "submission_url": f"{DSP}/api/submissions/{submission}",
        "manifest_id": manifest,
        "files": [{"name": f"{manifest}_1.bam"}],
        "conversion": {
            "output_name": f"{manifest}_1.bam",
            "schema": "10xV2",
            "inputs": [
                {
                    "name": "R1.fastq.gz",
                    "read_index": "read1",
                    "cloud_url": f"s3://bkt/{manifest}/R1.fastq.gz",
                },
                {
                    "name": "R2.fastq.gz",
                    "read_index": "read2",
                    "cloud_url": f"s3://bkt/{manifest}/R2.fastq.gz",
                },
                {
                    "name": "I1.fastq.gz",
                    "read_index": "index1",
                    "cloud_url": f"s3://bkt/{manifest}/I1.fastq.gz",
                },
            ],
        },
    }
    job.update(changes)
    return copy.deepcopy(job)


def plain_job(manifest: str = "9a8b7c6d", **changes: Any):
    job = {
        "dsp_api_url": DSP,
        "submission_url": f"{DSP}/api/submissions/b729f228-1",
        "manifest_id": manifest,
        "files": [
            {
                "name": f"{manifest}_R1.fastq.gz",
                "read_index": "read1",
                "cloud_url": f"s3://bkt/{manifest}/R1.fq.gz",
            },
            {
                "name": f"{manifest}_R2.fastq.gz",
                "read_index": "read2",
                "cloud_url": f"s3://bkt/{manifest}/R2.fq.gz",
            },
        ],
    }
    job.update(changes)
    return copy.deepcopy(job)
