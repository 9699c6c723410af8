# syntax=docker/dockerfile:1
# The Airflow image of docker-compose.yaml: the official Airflow 3.3.2 image plus this project's
# providers, its package (with the sandbox; gcc builds its C extension) and, for the compose `hpc`
# service, OpenSSH and samtools. In production, build it without the sandbox extras if you
# prefer; DAGs, plugins and include/ are mounted by compose, or baked in by the COPY lines below
# for a deployment.
#
#   docker build -f include/docker/airflow.Dockerfile -t hca-archive-airflow .   (repo root)
FROM apache/airflow:3.3.2-python3.11

USER root
RUN apt-get update \
    && apt-get install -y --no-install-recommends openssh-server openssh-client samtools \
        gcc libc6-dev \
    && rm -rf /var/lib/apt/lists/*
USER airflow

# Exact pins: the providers of requirements.txt, constrained by the tested lock file.
COPY requirements.txt requirements.lock /tmp/
RUN pip install --no-cache-dir "apache-airflow==3.3.2" -r /tmp/requirements.txt \
        -c /tmp/requirements.lock asyncpg moto[server] psycopg2-binary

COPY --chown=airflow:0 pyproject.toml /opt/hca-archive/
COPY --chown=airflow:0 include /opt/hca-archive/include
RUN pip install --no-cache-dir --no-deps -e /opt/hca-archive

COPY --chown=airflow:0 dags /opt/airflow/dags
COPY --chown=airflow:0 plugins /opt/airflow/plugins

# Named volumes of docker-compose.yaml take the owner of these directories on first use.
USER root
RUN mkdir -p /sandbox /hpc /opt/airflow/hca-archive-work \
    && chown airflow:0 /sandbox /hpc /opt/airflow/hca-archive-work
USER airflow
