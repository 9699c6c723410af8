"""SSH plumbing to the cluster: host keys are verified, private files are private from creation."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
from pathlib import Path

import pytest

from hca_archive.lsf.outputs import LsfCommandError, parse_bjobs_json
from hca_archive.orchestration.lsf.cluster import (
    Cluster,
    ClusterError,
    connect_async,
    run_async,
)

pytestmark = pytest.mark.integration


@pytest.fixture
def wrong_host_key(tmp_path) -> str:
    key = tmp_path / "other_host_key"
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(key)], check=True)
    return " ".join(key.with_suffix(".pub").read_text().split()[:2])


def use_connection(monkeypatch, conn_id: str, document: str) -> str:
    monkeypatch.setenv(f"AIRFLOW_CONN_{conn_id.upper()}", document)
    return conn_id


def test_a_changed_host_key_fails_clearly(hpc, monkeypatch, wrong_host_key):
    conn_id = use_connection(
        monkeypatch, "hpc_changed", hpc.connection_json(host_key=wrong_host_key)
    )
    with (
        pytest.raises(ClusterError, match=r"host key of 127\.0\.0\.1:\d+ .* has CHANGED"),
        Cluster(conn_id),
    ):
        pass
    with pytest.raises(ClusterError, match="host key of connection hpc_changed is not trusted"):
        asyncio.run(connect_async(conn_id))


def test_an_unknown_host_key_fails_clearly(hpc, monkeypatch, tmp_path):
    monkeypatch.setenv("HOME", str(tmp_path))  # no ~/.ssh/known_hosts to fall back on
    document = json.loads(hpc.connection_json())
    del document["extra"]["host_key"]
    conn_id = use_connection(monkeypatch, "hpc_unknown", json.dumps(document))
    with pytest.raises(ClusterError, match=r"host key of .* is unknown"), Cluster(conn_id):
        pass
    with pytest.raises(ClusterError, match="not trusted"):
        asyncio.run(connect_async(conn_id))


@pytest.mark.parametrize("switch", ["no_host_key_check", "allow_host_key_change"])
def test_a_connection_without_host_key_checking_is_refused(hpc, monkeypatch, switch):
    document = json.loads(hpc.connection_json(**{switch: "true"}))
    del document["extra"]["host_key"]
    conn_id = use_connection(monkeypatch, "hpc_unchecked", json.dumps(document))
    with pytest.raises(ClusterError, match="turns host key checking off"):
        Cluster(conn_id)


def test_private_files_and_directories(hpc, hpc_connection):
    target = hpc.work_root / "private-test" / "deeper"
    with Cluster(hpc_connection) as cluster:
        cluster.make_private_dirs(str(target))
        cluster.write_private(str(target / "secret.json"), b'{"k": "v"}')
        cluster.write_private(str(target / "secret.json"), b'{"k": "w"}')  # replaced, not appended
        assert cluster.mode(str(target)) == 0o700
        assert cluster.mode(str(target.parent)) == 0o700
        assert cluster.mode(str(target / "secret.json")) == 0o600
        assert cluster.read(str(target / "secret.json")) == b'{"k": "w"}'
        assert cluster.read(str(target / "absent")) is None
        assert cluster.tail(str(target / "secret.json"), 4) == '"w"}'
        result = cluster.run(["printf", "%s", "it's $(quoted)"])
    assert (result.returncode, result.stdout) == (0, "it's $(quoted)")


def test_a_private_file_is_never_written_into_one_that_appeared_meanwhile(
    hpc, hpc_connection, monkeypatch
):
    """Between removing the old copy and creating the new one, someone else's file (or symlink)
    may appear at the path: the credentials must not go into it with its owner's mode."""
    target = hpc.work_root / "raced"
    target.mkdir(mode=0o700)
    planted = target / "credentials.json"
    planted.write_bytes(b"theirs")
    planted.chmod(0o644)
    with Cluster(hpc_connection) as cluster:
        monkeypatch.setattr(cluster, "remove", lambda path: None)  # lose the race
        with pytest.raises(OSError):
            cluster.write_private(str(planted), b'{"HCA_AAP_PASSWORD": "pw"}')
    assert planted.read_bytes() == b"theirs"


@pytest.mark.skipif(os.geteuid() != 0, reason="giving a directory to another user needs root")
def test_a_directory_of_another_user_on_the_way_is_refused(hpc, hpc_connection):
    theirs = hpc.work_root / "theirs"
    theirs.mkdir(mode=0o755)
    os.chown(theirs, 54321, 54321)
    with (
        Cluster(hpc_connection) as cluster,
        pytest.raises(ClusterError, match=rf"{theirs} on the cluster belongs to user 54321"),
    ):
        cluster.make_private_dirs(str(theirs / "run" / "job-0"))
    assert not (theirs / "run").exists()


@pytest.mark.parametrize("mode", [0o777, 0o775, 0o757], ids=oct)
def test_a_directory_others_may_write_on_the_way_is_refused(hpc, hpc_connection, mode):
    # Whoever may write there can rename our 0700 run directory and put their own in its place,
    # then swap the staged plan the job runs with our credentials.
    shared = hpc.work_root / f"shared-{mode:o}"
    shared.mkdir()
    shared.chmod(mode)
    with Cluster(hpc_connection) as cluster:
        with pytest.raises(ClusterError, match=rf"{shared} .*writable by others"):
            cluster.make_private_dirs(str(shared / "run" / "job-0"))
        sticky = hpc.work_root / f"sticky-{mode:o}"
        sticky.mkdir()
        sticky.chmod(0o1777)  # like /tmp: others cannot rename what is ours
        cluster.make_private_dirs(str(sticky / "run" / "job-0"))
    assert not (shared / "run").exists()
    assert (sticky / "run" / "job-0").is_dir()


def test_a_command_that_hangs_fails_naming_it_and_the_cluster(hpc, hpc_connection):
    """A bsub or bjobs that hangs (LSF retries while mbatchd does not answer) must not end the
    task with a bare ``TimeoutError()``: the wrangler needs to know what hung, and where."""
    with Cluster(hpc_connection) as cluster:
        with pytest.raises(ClusterError, match=r"sleep on 127\.0\.0\.1:\d+ .*no answer within 1 s"):
            cluster.run(["sleep", "30"], timeout=1)
        assert cluster.run(["echo", "still usable"]).stdout == "still usable\n"


def test_a_session_dropped_mid_command_is_a_failure_not_an_empty_answer(hpc, hpc_connection):
    """The triggerer's SSH session to the cluster dies while bjobs runs (login node rebooted,
    sshd restarted): no exit status ever comes. Read as exit 0 with no output, a poll would tell
    every waiting trigger that LSF no longer knows its job."""
    started = hpc.work_root / "dropped-session.pid"

    def session_process(pid: int) -> int:
        while b"sshd" not in Path(f"/proc/{pid}/cmdline").read_bytes():
            pid = int(Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[1])
        return pid

    async def drop_mid_command():
        connection = await connect_async(hpc_connection)
        try:
            command = f"echo $$ > {started}; exec sleep 30"
            running = asyncio.ensure_future(run_async(connection, ["sh", "-c", command]))
            for _ in range(200):
                if started.exists() and started.read_text().strip():
                    break
                await asyncio.sleep(0.05)
            os.kill(session_process(int(started.read_text())), signal.SIGKILL)
            return await running
        finally:
            connection.close()

    result = asyncio.run(drop_mid_command())
    assert result.returncode != 0
    with pytest.raises(LsfCommandError):
        parse_bjobs_json(result.stdout, result.stderr, result.returncode)
