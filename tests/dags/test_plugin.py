"""The plugin folder registers the project's operator links with Airflow."""

from __future__ import annotations

import importlib.util
from pathlib import Path

PLUGIN = Path(__file__).resolve().parents[2] / "plugins" / "hca_archive_plugin.py"


def test_the_plugin_registers_every_extra_link() -> None:
    spec = importlib.util.spec_from_file_location("hca_archive_plugin", PLUGIN)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    names = {link.name for link in module.HcaArchivePlugin.operator_extra_links}
    assert names == {"Archive submission", "DSP submission", "LSF job / pod"}
