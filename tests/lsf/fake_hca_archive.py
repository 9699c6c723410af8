"""Stands in for ``hca-archive`` on the cluster in LSF tests: ``run-job`` as the operator calls it.

It reads and deletes the credentials file like the real job, then runs every job of the plan:
each follows the comma-separated ``key=value`` fields of its manifest id (``<tag>,sleep=SECONDS,
status=succeeded|failed|crash``; a comma, as plan.py refuses ``;`` in names) and writes its durable
``result-<i>.json``; ``crash`` stops at once.
"""

from __future__ import annotations

import argparse
import json
import os
import stat
import sys
import time
from pathlib import Path


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("command", choices=["run-job"])
    parser.add_argument("--plan", type=Path, required=True)
    parser.add_argument("--workdir", type=Path, required=True)
    parser.add_argument("--credentials-file", type=Path, required=True)
    parser.add_argument("--delete-credentials-file", action="store_true")
    parser.add_argument("--lock-dir", type=Path, required=True)
    parser.add_argument("--threads", type=int, required=True)
    args = parser.parse_args()
    mode = stat.S_IMODE(os.stat(args.credentials_file).st_mode)
    credentials = json.loads(args.credentials_file.read_text())
    if args.delete_credentials_file:
        args.credentials_file.unlink()
    statuses = []
    for index, job in enumerate(json.loads(args.plan.read_text())["jobs"]):
        fields = job["manifest_id"].split(",")
        behaviour = dict(field.split("=", 1) for field in fields if "=" in field)
        print(f"fake job {index} {fields[0]} starting", flush=True)
        scratch = args.workdir / f"job-{index}" / "inputs"
        scratch.mkdir(parents=True, exist_ok=True)
        (scratch / "R1.fastq.gz").write_bytes(b"downloaded")
        time.sleep(float(behaviour.get("sleep", 0)))
        status = behaviour.get("status", "succeeded")
        if status == "crash":
            print("fake job crashed", file=sys.stderr)
            return 3
        entry = {
            "index": index,
            "manifest_id": job["manifest_id"],
            "label": f"{fields[0]}/fake",
            "status": status,
            "error": f"fake failure of {fields[0]}" if status == "failed" else None,
            "files": [],
            "seconds": {},
            "credentials_keys": sorted(credentials),
            "credentials_mode": f"{mode:04o}",
            "threads": args.threads,
        }
        succeeded = int(status == "succeeded")
        result = {"jobs": [entry], "succeeded": succeeded, "failed": 1 - succeeded}
        (args.workdir / f"result-{index}.json").write_text(json.dumps(result))
        statuses.append(status)
    return 0 if set(statuses) <= {"succeeded"} else 1


if __name__ == "__main__":
    sys.exit(main())
