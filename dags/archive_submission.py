"""Airflow DAG ``archive_submission``: archive one HCA ingest submission to EBI's archives.

Thin on purpose: the DAG is built in ``hca_archive.orchestration.archive_dag``; parsing this file
does no I/O.
"""

from hca_archive.orchestration.archive_dag import build_archive_dag

dag = build_archive_dag()
