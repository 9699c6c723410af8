"""run-job's result JSON in conditions that need no server: what stdout says when things break."""

from __future__ import annotations

import argparse
import base64
import contextlib
import errno
import hashlib
import io
import json
import logging
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from hca_archive.filejob import cli
from hca_archive.filejob.job import JobOutcome, JobRunner
from hca_archive.filejob.s3download import FetchedFile
from hca_archive.filejob.workdir import write_json_atomically
from tests.plan.builders import DSP, conversion_job, plain_job

CREDENTIALS = {
    "HCA_AAP_URL": "http://127.0.0.1:9/auth",
    "HCA_AAP_USERNAME": "user",
    "HCA_AAP_PASSWORD": "pw-5678",
    "HCA_DSP_URL": DSP,
}


@pytest.fixture(autouse=True)
def fresh_logging():
    """run() sets up the hca_archive logger once, on the stderr of the test that ran it first."""
    handlers = list(cli.log.handlers)
    cli.log.handlers.clear()
    yield
    cli.log.handlers[:] = handlers


class Runner:
    """Stands in for JobRunner: every job succeeds at once and is remembered."""

    stopped: str | None = None

    def __init__(self) -> None:
        self.ran: list[int] = []

    def run(self, job, workdir: Path) -> JobOutcome:
        self.ran.append(job.index)
        return JobOutcome(job.index, job.manifest_id, job.label, status="succeeded")


def run_job_args(plan: Path, workdir: Path) -> argparse.Namespace:
    """``run-job --plan PLAN --workdir WORKDIR`` as the command's own parser reads it."""
    parser = argparse.ArgumentParser()
    cli.add_arguments(parser)
    return parser.parse_args(["--plan", str(plan), "--workdir", str(workdir)])


def write_plan(tmp_path: Path, jobs: list[dict]) -> Path:
    plan = tmp_path / "plan.json"
    plan.write_text(json.dumps({"jobs": jobs}))
    return plan


def run_job(tmp_path: Path, monkeypatch, runner: Runner, jobs: list[dict]) -> int:
    for name, value in CREDENTIALS.items():
        monkeypatch.setenv(name, value)
    monkeypatch.setattr(cli, "_build_runner", lambda args, credentials: runner)
    return cli.run(run_job_args(write_plan(tmp_path, jobs), tmp_path / "work"))


def test_a_result_file_that_cannot_be_written_hides_neither_the_other_jobs_nor_stdout(
    tmp_path, monkeypatch, capsys
):
    """A full disk (the downloads filled it) makes writing job 0's result file fail: job 1 must
    still run, and stdout must still carry the result of both."""

    def write(path: Path, document) -> None:
        if path.name == "result-0.json":
            raise OSError(errno.ENOSPC, "No space left on device", str(path))
        write_json_atomically(path, document)

    monkeypatch.setattr(cli, "write_json_atomically", write)
    runner = Runner()
    jobs = [conversion_job("1f2e3d4c"), conversion_job("5a6b7c8d")]
    try:
        code = run_job(tmp_path, monkeypatch, runner, jobs)
    except OSError as error:
        pytest.fail(f"run-job crashed without a result on stdout: {error!r}")
    assert runner.ran == [0, 1]
    document = json.loads(capsys.readouterr().out)
    assert [job["index"] for job in document["jobs"]] == [0, 1]
    assert code == cli.EXIT_JOB_FAILED  # job 0's result could not be recorded


def test_a_work_directory_that_cannot_be_made_is_a_clear_refusal(tmp_path, monkeypatch, capsys):
    not_a_directory = tmp_path / "file"
    not_a_directory.write_text("")
    monkeypatch.setattr(cli, "_build_runner", lambda args, credentials: Runner())
    for name, value in CREDENTIALS.items():
        monkeypatch.setenv(name, value)
    args = run_job_args(write_plan(tmp_path, [conversion_job()]), not_a_directory / "work")
    assert cli.run(args) == cli.EXIT_NOT_RUN  # was: NotADirectoryError with a traceback
    assert "cannot create work directory" in capsys.readouterr().err


JWT = "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiAieCIsICJleHAiOiA0MTAyNDQ0ODAwfQ.c2lnbmF0dXJl"


class JwtTokens:
    def token(self) -> str:
        return JWT

    def invalidate(self) -> None:
        pass


class LocalDownloader:
    """Stands in for S3Downloader: every input is a few bytes written on the spot."""

    def fetch(self, bucket: str, key: str, destination: Path) -> FetchedFile:
        destination.write_bytes(b"ACGT\n")
        md5 = hashlib.md5(b"ACGT\n", usedforsecurity=False).hexdigest()
        return FetchedFile(destination, 5, md5, "test", False, 0, 0.0)


@contextlib.contextmanager
def tus_server_echoing_its_metadata() -> Iterator[str]:
    """A tus endpoint that refuses every creation quoting the request (as tusd v1 passed a
    failed pre-create hook's output, which may print the hook's input, back to the client)."""

    class Handler(BaseHTTPRequestHandler):
        def log_message(self, format: str, *args: object) -> None:
            pass

        def do_POST(self) -> None:
            metadata = dict(
                pair.split(" ", 1) for pair in self.headers.get("Upload-Metadata", "").split(",")
            )
            token = base64.b64decode(metadata["jwtToken"]).decode()
            body = f"pre-create hook failed: exit status 1 (jwtToken={token})".encode()
            self.send_response(400)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/files/"
    finally:
        server.shutdown()
        server.server_close()


def test_a_token_a_server_quotes_in_an_error_reaches_neither_stdout_nor_the_result_file(
    tmp_path, monkeypatch, capsys
):
    """Log lines are masked (RedactSecrets), but the result JSON took the same error text as
    it came: the JWT the tus server quoted back ended up on stdout and in result-0.json."""
    with tus_server_echoing_its_metadata() as endpoint:

        class Dsp:
            tus_endpoint = endpoint

            def find_file(self, submission_id: str, name: str) -> None:
                return None

            def status(self, submission_id: str) -> str:
                return "Draft"

        runner = JobRunner(
            LocalDownloader(),  # type: ignore[arg-type]
            JwtTokens(),
            dsp_client=lambda url, tokens: Dsp(),  # type: ignore[arg-type,return-value]
        )
        code = run_job(tmp_path, monkeypatch, runner, [plain_job()])  # type: ignore[arg-type]
    assert code == cli.EXIT_JOB_FAILED
    out, err = capsys.readouterr()
    (job,) = json.loads(out)["jobs"]
    assert job["error"].startswith("job 0 (") and "pre-create hook failed" in job["error"]
    assert JWT not in err
    assert JWT not in out
    assert JWT not in (tmp_path / "work" / "result-0.json").read_text()


def test_a_traceback_logged_with_a_secret_is_masked_too():
    """_step logs an unexpected error with its traceback, whose last line repeats the error's
    text: the filter masked the message but the formatter appended the traceback as it was."""
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.addFilter(cli.RedactSecrets(["pw-5678"]))
    logger = logging.getLogger("tests.redaction")
    logger.addHandler(handler)
    logger.propagate = False
    try:
        raise RuntimeError(f"header 'Bearer {JWT}' refused, password pw-5678")
    except RuntimeError as error:
        logger.error("job 0: upload: %s", error, exc_info=True)
    finally:
        logger.removeHandler(handler)
    logged = stream.getvalue()
    assert "Traceback" in logged and "RuntimeError" in logged
    assert JWT not in logged
    assert "pw-5678" not in logged


def test_an_unusable_aap_url_is_a_refusal_not_a_traceback(tmp_path, monkeypatch, capsys):
    """Building the runner (boto3 session, AAP token source) happens after the plan was read;
    an AAP URL that is not http(s) raised ValueError out of run(): a traceback and exit 1,
    which reads as 'a job failed', instead of 2, 'nothing could be run'."""
    for name, value in {**CREDENTIALS, "HCA_AAP_URL": "ftp://aap.example.org/auth"}.items():
        monkeypatch.setenv(name, value)
    args = run_job_args(write_plan(tmp_path, [conversion_job()]), tmp_path / "work")
    assert cli.run(args) == cli.EXIT_NOT_RUN
    assert "not an http(s) URL" in capsys.readouterr().err
