"""IBM Spectrum LSF (10.1) as the runner needs it: command builders and output parsers.

Pure functions over strings, no SSH and no Airflow: ``orchestration.lsf`` runs what these build.
"""
