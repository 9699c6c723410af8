"""10x FASTQ <-> lossless unaligned BAM, and the check that a BAM rebuilds its inputs."""

from hca_archive.convert.converter import ConversionResult, convert_fastqs
from hca_archive.convert.errors import ConversionError, VerificationError
from hca_archive.convert.fastq_stream import FastqDigest
from hca_archive.convert.rebuild import rebuild_fastqs, verify_bam

__all__ = [
    "ConversionError",
    "ConversionResult",
    "FastqDigest",
    "VerificationError",
    "convert_fastqs",
    "rebuild_fastqs",
    "verify_bam",
]
