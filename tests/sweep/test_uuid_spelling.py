"""One submission typed two ways must not get two runs (and two DSP submissions).

Ingest's ``findByUuidUuid`` takes a java ``UUID`` (Spring trims the text, ``UUID.fromString``
ignores case), so ``2A0F...`` and ``2a0f...\\n`` find the same envelope as ``2a0f...``. Every
lock of the pipeline (the run claim the sweep respects, the archiver request marker) is keyed on
the text typed in the trigger form, so such a run is invisible to the sweep and to other runs.
"""

from __future__ import annotations

import copy

import pytest
from airflow.sdk.exceptions import ParamValidationError

from hca_archive.orchestration.archive_dag import build_archive_dag

UUID = "2a0f5c1e-9d1b-4c7a-8f1e-3b6d2c9a7e10"


@pytest.fixture(scope="module")
def dag_params():
    return build_archive_dag().params


def _validated(dag_params, **values):
    params = copy.deepcopy(dag_params)
    for key, value in values.items():
        params[key] = value
    return params.validate()


@pytest.mark.parametrize("typed", [UUID.upper(), UUID + "\n"])
def test_the_form_refuses_another_spelling_of_a_uuid(dag_params, typed: str) -> None:
    with pytest.raises(ParamValidationError):
        _validated(dag_params, submission_uuid=typed)


@pytest.mark.parametrize("values", [{"alias_prefix": "HCA\n"}, {"exclude_types": ["project\n"]}])
def test_the_form_refuses_a_trailing_line_break(dag_params, values: dict) -> None:
    """JSON Schema ``pattern`` is checked with ``re.search``: ``$`` matches before a final \\n."""
    with pytest.raises(ParamValidationError):
        _validated(dag_params, submission_uuid=UUID, **values)
