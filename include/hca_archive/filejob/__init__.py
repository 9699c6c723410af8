"""One job of a file upload plan, as ``hca-archive run-job`` runs it on an HPC node (no Airflow).

- ``credentials``: AAP and AWS secrets from the environment or an owner-only JSON file.
- ``s3download``: concurrent ranged S3 downloads, resumable, verified against ETag or checksum.
- ``tus``: a tus 1.0.0 client for DSP's ``/files/``, resumable across restarts.
- ``job``: download, convert, verify, upload one plan job; ``JobOutcome`` is its result entry.
- ``selection``: the jobs of a plan to run, invalid ones turned into failed outcomes.
- ``cli``: the ``run-job`` subcommand; result JSON on stdout and ``<workdir>/result-<n>.json``.

Work directory layout: ``job-<n>/inputs/`` (downloads, ``*.part`` while incomplete),
``job-<n>/output/`` (the BAM and its ``*.verified.json``), ``job-<n>/uploads/`` (tus state),
``job-<n>.lock`` (held while a process runs job n), ``result-<n>.json``.
"""
