"""The demo archives the real La Manno reads when they are there, and runs without them."""

from __future__ import annotations

import shutil

from hca_archive.devstack.demo import SYNTHETIC_JOBS, demo_jobs
from hca_archive.sandbox.lamanno import LAMANNO_ENV


def test_without_the_real_reads_the_demo_seeds_synthetic_reads_and_says_why(
    tmp_path, monkeypatch, capsys
):
    monkeypatch.setenv(LAMANNO_ENV, str(tmp_path / "nowhere"))
    assert demo_jobs() == SYNTHETIC_JOBS
    out = capsys.readouterr().out
    assert f"La Manno reads not found in {tmp_path / 'nowhere'}" in out
    assert LAMANNO_ENV in out


def test_the_folder_the_environment_names_adds_the_lamanno_job(tmp_path, monkeypatch, lamanno_dir):
    for read in ("R1", "R2"):
        shutil.copy(lamanno_dir / f"{read}.fastq.gz", tmp_path)
    monkeypatch.setenv(LAMANNO_ENV, str(tmp_path))
    assert demo_jobs() == [*SYNTHETIC_JOBS, "lamanno"]
