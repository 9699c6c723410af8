"""10x FASTQ <-> lossless unaligned BAM, and the check that a BAM rebuilds its inputs.

The names below are imported on first use: `hca-archive convert` then loads only the converter,
whose start-up counts on small inputs. For the same reason the converter's modules import neither
pathlib nor typing (~15 ms together): paths are str, records collections.namedtuple classes.
"""

from __future__ import annotations

import importlib

TYPE_CHECKING = False  # typing.TYPE_CHECKING, without importing typing
if TYPE_CHECKING:
    from typing import Any

_HOMES = {
    "ConversionError": "errors",
    "ConversionResult": "converter",
    "FastqDigest": "fastq_stream",
    "VerificationError": "errors",
    "convert_fastqs": "converter",
    "rebuild_fastqs": "rebuild",
    "verify_bam": "rebuild",
}
__all__ = sorted(_HOMES)


def __getattr__(name: str) -> Any:
    if name not in _HOMES:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(importlib.import_module(f"{__name__}.{_HOMES[name]}"), name)
