"""What an LSF job asks for: memory, cores, queue, wall time, and what it runs.

Values come from the operator's parameters first, then from the SSH connection's extra
(keys prefixed ``lsf_``), then from the defaults below.

Memory: the conversion streams reads from FASTQ to BAM and back for verification, so its
resident size is roughly constant (htslib buffers per thread plus Python); a small per-GiB term
covers larger reads and upload buffers. ``memory_mb = clamp(floor + per_gib * input GiB, floor,
cap)`` with floor 4096 MB, 64 MB per GiB of input and a cap of 16384 MB, instead of the old
blanket 64 GB. An explicit ``memory_mb`` overrides the formula; an unknown input size gets the
floor.
"""

from __future__ import annotations

import math
import re
import shlex
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from hca_archive.job_image import release_job_image

MEMORY_FLOOR_MB = 4096
MEMORY_PER_GIB_MB = 64
MEMORY_CAP_MB = 16384
DEFAULT_CORES = 2
DEFAULT_WORK_ROOT = "/tmp/hca-archive"  # noqa: S108 - a default the cluster's extra replaces

_WALL_TIME = re.compile(r"^(\d{1,4}):([0-5]\d)$")
_SHELL_SAFE = re.compile(r"^[A-Za-z0-9_./:=@%+,-]+$")


class LsfSettingsError(ValueError):
    """A parameter or connection extra for LSF is malformed; the message names it."""


def memory_mb(
    input_bytes: int | None,
    *,
    floor_mb: int = MEMORY_FLOOR_MB,
    per_gib_mb: int = MEMORY_PER_GIB_MB,
    cap_mb: int = MEMORY_CAP_MB,
) -> int:
    """Memory limit for a job reading ``input_bytes`` (unknown: the floor). See module doc."""
    if input_bytes is None:
        return floor_mb
    if input_bytes < 0:
        raise LsfSettingsError(f"input size must not be negative, got {input_bytes}")
    wanted = floor_mb + math.ceil(per_gib_mb * input_bytes / 2**30)
    return max(floor_mb, min(cap_mb, wanted))


def wall_time(value: str | int | None) -> str | None:
    """``HH:MM`` for ``bsub -W`` from ``"HH:MM"`` or a number of minutes."""
    if value is None or value == "":
        return None
    if isinstance(value, int) and not isinstance(value, bool):
        if value <= 0:
            raise LsfSettingsError(f"wall time must be positive, got {value} minutes")
        return f"{value // 60}:{value % 60:02d}"
    match = _WALL_TIME.match(str(value))
    if not match or match.group(0) == "0:00":
        raise LsfSettingsError(f"wall time must look like HH:MM or be minutes, got {value!r}")
    return str(value)


def shell_safe(token: str, what: str) -> str:
    """``token`` unchanged if a shell reads it as itself: LSF re-joins a job's words for a shell."""
    if not isinstance(token, str) or not _SHELL_SAFE.match(token):
        raise LsfSettingsError(
            f"{what} {token!r} may only use letters, digits and _./:=@%+,- "
            "(LSF runs the job command through a shell)"
        )
    return token


@dataclass(frozen=True)
class LsfSettings:
    """Resolved settings for one job; build with :meth:`resolve`."""

    queue: str | None
    memory_mb: int
    cores: int
    wall_time: str | None
    work_root: str
    command_prefix: tuple[str, ...]

    @classmethod
    def resolve(
        cls,
        params: Mapping[str, Any],
        extra: Mapping[str, Any],
        *,
        input_bytes: int | None = None,
    ) -> LsfSettings:
        """Settings from ``params`` (operator arguments; None = unset), then ``lsf_*`` extras."""

        def pick(name: str, default: Any = None) -> Any:
            value = params.get(name)
            if value is None:
                value = extra.get(f"lsf_{name}")
            return default if value is None or value == "" else value

        memory = pick("memory_mb")
        if memory is None:
            memory = memory_mb(
                input_bytes,
                floor_mb=_positive(pick("memory_floor_mb", MEMORY_FLOOR_MB), "memory_floor_mb"),
                per_gib_mb=_positive(pick("memory_per_gib_mb", MEMORY_PER_GIB_MB), "per_gib_mb"),
                cap_mb=_positive(pick("memory_cap_mb", MEMORY_CAP_MB), "memory_cap_mb"),
            )
        queue = pick("queue")
        return cls(
            queue=shell_safe(str(queue), "LSF queue") if queue is not None else None,
            memory_mb=_positive(memory, "memory_mb"),
            cores=_positive(pick("cores", DEFAULT_CORES), "cores"),
            wall_time=wall_time(pick("wall_time")),
            work_root=str(pick("work_root", DEFAULT_WORK_ROOT)),
            command_prefix=command_prefix(pick("command_prefix"), pick("image")),
        )


def command_prefix(
    prefix: str | list[str] | tuple[str, ...] | None, image: str | None
) -> tuple[str, ...]:
    """What runs ``hca-archive``: a configured prefix, else the job image (``image``, or this
    release's) under Singularity. ``exec``, not ``run``: the image's entrypoint is
    ``hca-archive`` already, and ``run`` would put it before the words we give."""
    if prefix is None:
        image = image or release_job_image()
        if image is None:
            raise LsfSettingsError(
                "no job image: hca-archive is not installed, so set the image parameter or the "
                "SSH connection's extra lsf_image"
            )
        words = ["singularity", "exec", f"docker://{image}", "hca-archive"]
    elif isinstance(prefix, str):
        words = shlex.split(prefix)
    else:
        words = list(prefix)
    if not words:
        raise LsfSettingsError("LSF command prefix is empty")
    return tuple(shell_safe(word, "LSF command prefix word") for word in words)


def _positive(value: Any, name: str) -> int:
    try:
        number = int(value)
    except (TypeError, ValueError):
        raise LsfSettingsError(f"LSF {name} must be a whole number, got {value!r}") from None
    if number <= 0 or str(number) != str(value).strip():
        raise LsfSettingsError(f"LSF {name} must be a positive whole number, got {value!r}")
    return number
