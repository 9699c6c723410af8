"""Airflow plugin registration for hca-archive: the extra links of its operators.

Airflow 3 stores each link's URL in XCom when a task ends; registering the link classes here also
lets the UI and the API server resolve them by name for task instances of older runs.
"""

from typing import Any, ClassVar

from airflow.plugins_manager import AirflowPlugin

from hca_archive.orchestration.extra_links import (
    ArchiveSubmissionLink,
    DspSubmissionLink,
    FileJobLink,
)


class HcaArchivePlugin(AirflowPlugin):
    name = "hca_archive"
    operator_extra_links: ClassVar[list[Any]] = [
        ArchiveSubmissionLink(),
        DspSubmissionLink(),
        FileJobLink(),
    ]
