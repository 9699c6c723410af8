"""Airflow glue for running plan jobs on an LSF cluster over SSH.

``LsfFileJobOperator`` (operator.py) stages and submits one job and defers to ``LsfJobTrigger``
(trigger.py), whose waits share one SSH connection and one ``bjobs`` per poll per cluster
(poller.py). cluster.py holds the SSH and SFTP plumbing.
"""
