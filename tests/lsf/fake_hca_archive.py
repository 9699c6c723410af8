"""Stands in for ``hca-archive`` on the cluster in LSF tests: ``run-job`` as the operator calls it.

It reads and deletes the credentials file like the real job, then follows the ``key=value``
fields of the plan job's manifest id (``sleep=SECONDS;status=succeeded|failed|crash``) and
writes the durable ``result-0.json``, except on ``crash``.
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
    parser.add_argument("--job", type=int, required=True)
    parser.add_argument("--workdir", type=Path, required=True)
    parser.add_argument("--credentials-file", type=Path, required=True)
    parser.add_argument("--delete-credentials-file", action="store_true")
    parser.add_argument("--threads", type=int, required=True)
    args = parser.parse_args()
    mode = stat.S_IMODE(os.stat(args.credentials_file).st_mode)
    credentials = json.loads(args.credentials_file.read_text())
    if args.delete_credentials_file:
        args.credentials_file.unlink()
    job = json.loads(args.plan.read_text())["jobs"][args.job]
    behaviour = dict(field.split("=", 1) for field in job["manifest_id"].split(";") if "=" in field)
    print(f"fake job {job['manifest_id']} starting", flush=True)
    time.sleep(float(behaviour.get("sleep", 0)))
    status = behaviour.get("status", "succeeded")
    if status == "crash":
        print("fake job crashed", file=sys.stderr)
        return 3
    entry = {
        "index": 0,
        "manifest_id": job["manifest_id"],
        "label": f"{job['manifest_id']}/fake",
        "status": status,
        "error": "fake failure" if status == "failed" else None,
        "files": [],
        "seconds": {},
        "credentials_keys": sorted(credentials),
        "credentials_mode": f"{mode:04o}",
    }
    result = {"jobs": [entry], "succeeded": int(status == "succeeded")}
    result["failed"] = 1 - result["succeeded"]
    (args.workdir / "result-0.json").write_text(json.dumps(result))
    print(json.dumps(result))
    return 0 if status == "succeeded" else 1


if __name__ == "__main__":
    sys.exit(main())
