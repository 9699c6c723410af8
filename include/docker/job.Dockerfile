# syntax=docker/dockerfile:1
# The file job image: `hca-archive run-job` with the core dependencies only (no Airflow).
#
#   docker build -f include/docker/job.Dockerfile -t hca-archive-job .     (from the repo root)
#   docker run --rm -v "$PWD/work:/work" --env-file job.env hca-archive-job \
#       run-job --plan /work/plan.json --job 0 --workdir /work/job
#
# Secrets go in the environment or a mode-0600 file named by --credentials-file, never in
# arguments. Every runtime package is pinned to its version in requirements.lock; the test
# tests/filejob/test_job_image.py checks that these pins match the lock and cover every
# dependency of the core package. The build context is limited by job.Dockerfile.dockerignore.
#
# Two stages: the package has a C extension (hca_archive.convert._encode_block), so a builder
# with a compiler makes its wheel, and the final image installs only that wheel, without gcc.
FROM python:3.11-slim AS builder

ENV PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1

RUN apt-get update \
    && apt-get install -y --no-install-recommends gcc libc6-dev \
    && rm -rf /var/lib/apt/lists/* \
    && pip install setuptools==84.2.1

COPY pyproject.toml /src/
COPY include/hca_archive /src/include/hca_archive
RUN pip wheel --no-deps --no-build-isolation --wheel-dir /wheels /src

FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1

RUN pip install --only-binary=:all: \
        awscrt==0.38.1 \
        boto3==1.44.8 \
        botocore==1.44.8 \
        certifi==2026.10.19.post1 \
        charset-normalizer==3.5.3 \
        deflate==0.9.0 \
        idna==3.20 \
        isal==1.9.1 \
        jmespath==1.1.0 \
        pysam==0.24.1 \
        python-dateutil==2.9.0.post0 \
        requests==2.34.2 \
        s3transfer==0.19.3 \
        six==1.17.0 \
        urllib3==2.8.0

COPY --from=builder /wheels /wheels
RUN pip install --no-deps /wheels/hca_archive-*.whl \
    && pip check \
    && python -c "import hca_archive.convert._encode_block" \
    && rm -rf /wheels \
    && useradd --create-home --uid 10001 --shell /usr/sbin/nologin hca

USER hca
WORKDIR /home/hca
ENTRYPOINT ["hca-archive"]
CMD ["run-job", "--help"]
