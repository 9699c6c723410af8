"""Archive Human Cell Atlas ingest submissions to EBI's archives.

The core (clients, plan model, converter, file job) imports no Airflow: the file job runs in a
slim container on an HPC node. Airflow glue lives in ``hca_archive.orchestration``.
"""

__version__ = "0.1.0"
