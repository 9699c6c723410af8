"""Airflow DAGs ``archive_sweep_<environment>``: archive every submission waiting in Archiving.

Thin on purpose: the DAGs are built in ``hca_archive.orchestration.sweep``; parsing this file
does no I/O.
"""

from hca_archive.orchestration.sweep import build_sweep_dags

globals().update(build_sweep_dags())
