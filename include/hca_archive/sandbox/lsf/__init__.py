"""A stand-in for IBM Spectrum LSF 10.1: ``bsub``, ``bjobs`` and ``bkill`` that really run jobs.

``python -m hca_archive.sandbox.lsf bsub|bjobs|bkill ARGS`` with ``HCA_LSF_STATE_DIR`` set. Output
follows ``shared/reference/lsf.md``. Every command line it is given is appended to
``<state>/commands.jsonl`` so tests can prove what reached the cluster. For tests and the demo only.
"""
