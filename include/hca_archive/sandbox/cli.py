"""``hca-archive sandbox start|seed``: run the local stand-ins, or seed a running sandbox."""

from __future__ import annotations

import argparse
import json
import logging
import os
import signal
import sys
import threading
from pathlib import Path

import requests

from hca_archive.sandbox.app import ENDPOINTS_FILE, Sandbox, SandboxOptions, StateDirBusy
from hca_archive.sandbox.faults import FaultSpecError, parse_fault_specs
from hca_archive.sandbox.lamanno import LAMANNO_ENV, default_lamanno_dir
from hca_archive.sandbox.seeding import DEFAULT_JOBS, DEFAULT_READS, JOB_KINDS

FAULTS_ENV = "HCA_SANDBOX_FAULTS"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    actions = parser.add_subparsers(dest="action", metavar="ACTION", required=True)
    start = actions.add_parser("start", help="serve the stand-ins in the foreground")
    start.add_argument("--state-dir", type=Path, required=True, help="state and endpoints.json")
    start.add_argument("--seed", type=int, default=0, help="seed of the synthetic reads")
    start.add_argument(
        "--plan-delay", type=float, default=1.0, help="seconds before a triggered plan exists"
    )
    start.add_argument(
        "--process-delay",
        type=float,
        default=0.5,
        help="seconds DSP takes from Submitted to Completed",
    )
    start.add_argument(
        "--token-ttl", type=float, default=3600.0, help="AAP token lifetime, seconds"
    )
    start.add_argument(
        "--fault",
        action="append",
        default=[],
        metavar="SERVICE.KNOB=VALUE",
        help=f"initial fault, e.g. dsp.error_rate=0.2 (also from ${FAULTS_ENV}, comma-separated); "
        "knobs: error_rate, html500_rate, latency, drop_rate, drop_after_rate, hang, "
        "die_after_dsp_completes (archiver)",
    )
    start.add_argument(
        "--lamanno-dir",
        type=Path,
        default=default_lamanno_dir(),
        help=f"folder of the real La Manno reads for lamanno jobs (default: ${LAMANNO_ENV}, "
        "else ../shared/data/10xv2-lamanno beside the repository)",
    )
    seed = actions.add_parser("seed", help="seed ingest submissions into a running sandbox")
    seed.add_argument("--state-dir", type=Path, required=True)
    seed.add_argument("--count", type=int, default=1, help="number of ingest submissions")
    seed.add_argument(
        "--jobs",
        default=",".join(DEFAULT_JOBS),
        help=f"comma-separated job kinds per submission, from {', '.join(JOB_KINDS)}",
    )
    seed.add_argument("--reads", type=int, default=DEFAULT_READS, help="reads per synthetic run")
    seed.add_argument("--timeout", type=float, default=600.0, help="seconds to wait for the seed")


def run(args: argparse.Namespace) -> int:
    if args.action == "start":
        return _start(args)
    return _seed(args)


def _start(args: argparse.Namespace) -> int:
    logging.basicConfig(
        level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    specs = [item for item in os.environ.get(FAULTS_ENV, "").split(",") if item.strip()]
    try:
        faults = parse_fault_specs(specs + args.fault)
        options = SandboxOptions(
            state_dir=args.state_dir,
            seed=args.seed,
            plan_delay=args.plan_delay,
            process_delay=args.process_delay,
            token_ttl=args.token_ttl,
            faults=faults,
            lamanno_dir=args.lamanno_dir,
        )
        sandbox = Sandbox(options)
    except (FaultSpecError, StateDirBusy) as error:
        print(f"hca-archive sandbox start: {error}", file=sys.stderr)
        return 2
    stop = threading.Event()
    for signum in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signum, lambda *_: stop.set())
    try:
        sandbox.start()
        stop.wait()
    finally:
        sandbox.stop()
    return 0


def _seed(args: argparse.Namespace) -> int:
    endpoints_path = args.state_dir / ENDPOINTS_FILE
    if not endpoints_path.exists():
        print(
            f"hca-archive sandbox seed: no running sandbox ({endpoints_path} missing)",
            file=sys.stderr,
        )
        return 2
    admin_url = json.loads(endpoints_path.read_text())["admin_url"]
    body = {
        "count": args.count,
        "jobs": [job.strip() for job in args.jobs.split(",") if job.strip()],
        "reads": args.reads,
    }
    try:
        response = requests.post(f"{admin_url}/seed", json=body, timeout=(5, args.timeout))
    except requests.RequestException as error:
        print(f"hca-archive sandbox seed: {admin_url} did not answer: {error}", file=sys.stderr)
        return 1
    if response.status_code != 200:
        print(f"hca-archive sandbox seed: {_message(response)}", file=sys.stderr)
        return 1
    for uuid in response.json()["submissions"]:
        print(uuid)
    return 0


def _message(response: requests.Response) -> str:
    try:
        return str(response.json()["message"])
    except (ValueError, KeyError, TypeError):
        return f"HTTP {response.status_code}: {response.text[:200]}"
