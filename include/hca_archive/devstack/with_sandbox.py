"""Run a command with the sandbox's Airflow connections in its environment (compose services).

    python -m hca_archive.devstack.with_sandbox --endpoints /sandbox/endpoints.json \\
        [--ssh-connection /hpc/ssh-connection.json] -- airflow scheduler

Waits for the sandbox (and the hpc service) to have written their files, then replaces itself
with the command. Credentials travel in the environment, never in argv.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

from hca_archive.devstack.sandbox_connections import sandbox_connections
from hca_archive.orchestration.connections import conn_id

ENVIRONMENT = "sandbox"


def wait_for(path: Path, timeout: float) -> dict:
    deadline = time.monotonic() + timeout
    while not path.exists():
        if time.monotonic() > deadline:
            raise SystemExit(f"with_sandbox: {path} did not appear within {timeout:.0f}s")
        time.sleep(1)
    return json.loads(path.read_text())


def connection_environment(endpoints: Path, ssh_connection: Path | None, timeout: float) -> dict:
    """``AIRFLOW_CONN_*`` of environment ``sandbox``; the LSF login node's too when given."""
    env = sandbox_connections(wait_for(endpoints, timeout), ENVIRONMENT)
    if ssh_connection is not None:
        ssh_id = conn_id(ENVIRONMENT, "ssh").upper()
        env[f"AIRFLOW_CONN_{ssh_id}"] = json.dumps(wait_for(ssh_connection, timeout))
    return env


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="with_sandbox", description=__doc__.splitlines()[0])
    parser.add_argument("--endpoints", type=Path, required=True)
    parser.add_argument("--ssh-connection", type=Path)
    parser.add_argument("--timeout", type=float, default=300.0)
    parser.add_argument("command", nargs=argparse.REMAINDER)
    args = parser.parse_args(argv)
    command = args.command[1:] if args.command[:1] == ["--"] else args.command
    if not command:
        parser.error("no command given after --")
    os.environ.update(connection_environment(args.endpoints, args.ssh_connection, args.timeout))
    os.execvp(command[0], command)  # noqa: S606 - the command is ours (compose), no shell


if __name__ == "__main__":
    main(sys.argv[1:])
