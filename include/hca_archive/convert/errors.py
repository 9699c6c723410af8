"""Errors of the FASTQ <-> BAM conversion."""

from __future__ import annotations


class ConversionError(Exception):
    """The inputs cannot be converted; the message names the file and the read number."""


class VerificationError(Exception):
    """The FASTQ files rebuilt from a BAM differ from the inputs it was made from."""
