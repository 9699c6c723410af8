"""Airflow on this machine, for the demo and the end-to-end tests: processes, REST API, wiring."""
