# One entry point for people and CI. Every target installs what it needs first.
SHELL := /bin/bash
PYTHON ?= python3.11
VENV := .venv
BIN := $(VENV)/bin
UV_VERSION := 0.13.8

.PHONY: install build-packages system-packages lint format test bench demo demo-stop lock clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)

# Bytecode is compiled once here, as pip would: uv does not by default, and where
# PYTHONDONTWRITEBYTECODE is set every Airflow process would compile Airflow anew (5-7 s to import
# airflow.models instead of 3).
# The editable install builds the converter's C extension in place (include/hca_archive/convert);
# reinstalled each time, so that a changed .c file is always rebuilt, whatever uv has cached.
$(VENV)/.installed: $(BIN)/python requirements.lock pyproject.toml \
		include/hca_archive/convert/_encode_block.c
	$(BIN)/pip install -q uv==$(UV_VERSION)
	$(BIN)/uv pip sync -q --compile-bytecode --python $(BIN)/python requirements.lock
	$(BIN)/uv pip install -q --python $(BIN)/python --no-deps --reinstall-package hca-archive -e .
	$(BIN)/python -m compileall -q include/hca_archive
	touch $@

install: system-packages $(VENV)/.installed

# Debian packages: what the install needs, first so it is there for it (gcc and the Python headers
# for the converter's C extension, and venv: Debian's own python3.11 has neither without
# python3.11-dev and -venv); and for `install`, what the tests use: a real sshd for the LSF runner,
# samtools as the reference converter, Chromium for the browser test (Playwright cannot download
# browsers here). The demo needs only the first.
PYTHON_INCLUDE = $$($(PYTHON) -c 'import sysconfig; print(sysconfig.get_path("include"))' 2>/dev/null)
BUILD_CHECKS = test -f "$(PYTHON_INCLUDE)/Python.h" || missing="$$missing $(notdir $(PYTHON))-dev"; \
	$(PYTHON) -c 'import ensurepip' 2>/dev/null || missing="$$missing $(notdir $(PYTHON))-venv"; \
	command -v gcc >/dev/null || missing="$$missing gcc"
APT_INSTALL_MISSING = if [ -n "$$missing" ]; then \
	  echo "installing:$$missing"; \
	  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $$missing; \
	fi

build-packages:
	@missing=""; $(BUILD_CHECKS); $(APT_INSTALL_MISSING)

system-packages:
	@missing=""; $(BUILD_CHECKS); \
	command -v samtools >/dev/null || missing="$$missing samtools"; \
	test -x /usr/sbin/sshd || missing="$$missing openssh-server"; \
	command -v chromium >/dev/null || missing="$$missing chromium"; \
	$(APT_INSTALL_MISSING)

lint: install
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

format: install
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

test: lint
	$(BIN)/pytest $(PYTEST_ARGS)

bench: install
	$(BIN)/python -m bench $(BENCH_ARGS)

demo: build-packages $(VENV)/.installed
	$(BIN)/python -m hca_archive.devstack.demo --keep-running

demo-stop: build-packages $(VENV)/.installed
	$(BIN)/python -m hca_archive.devstack.demo --stop

# Re-resolve the pinned dependency set after editing requirements.in.
lock: $(BIN)/python
	$(BIN)/pip install -q uv==$(UV_VERSION)
	$(BIN)/uv pip compile -q --python-version 3.11 requirements.in -o requirements.lock

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache build include/hca_archive/convert/*.so
